"""Audio renderer callbacks of many clients share one dispatcher thread; a client whose callback
blocks is moved to its own thread, so it cannot hold up the others again (crates/daily-py,
`Completer::post_audio`)."""

from __future__ import annotations

import threading
import time

from conftest import Watch, join, leave, mic_settings

from daily import CallClient, CustomAudioSource, CustomAudioTrack

BLOCK_S = 0.6  # longer than the 100 ms after which a client gets its own thread


class Timed:
    """Renderer callback recording when each 20 ms chunk arrived; blocks on chosen calls."""

    def __init__(self, block_on: tuple[int, ...] = ()) -> None:
        self.times: list[float] = []
        self.frames = 0
        self.threads: list[int] = []  # thread ids, in order of first use
        self.block_on = block_on
        self.blocked_at: list[float] = []
        self.blocked_until: list[float] = []

    def __call__(self, participant_id, audio, audio_source):
        self.times.append(time.monotonic())
        self.frames += audio.num_audio_frames
        if threading.get_ident() not in self.threads:
            self.threads.append(threading.get_ident())
        if len(self.times) in self.block_on:
            self.blocked_at.append(time.monotonic())
            time.sleep(BLOCK_S)
            self.blocked_until.append(time.monotonic())


def max_gap(times: list[float], start: float, end: float) -> float:
    ts = [t for t in times if start <= t <= end]
    return max((b - a for a, b in zip(ts, ts[1:])), default=float("inf"))


def test_a_blocking_renderer_does_not_hold_up_other_clients_twice(server):
    url = server.room_url("renderers-block")
    source = CustomAudioSource(16000, 1)  # auto-silence: packets flow without writes
    track = CustomAudioTrack(source)
    watch_a, watch_b = Watch(), Watch()
    a, b = CallClient(event_handler=watch_a), CallClient(event_handler=watch_b)
    bot = CallClient()
    bot.set_user_name("bot")
    slow = Timed(block_on=(10, 60))
    fast = Timed()
    try:
        join(a, url)
        join(b, url)
        join(bot, url, client_settings=mic_settings(track))
        watch_a.wait(lambda: "bot" in watch_a.joined)
        watch_b.wait(lambda: "bot" in watch_b.joined)
        bot_id = watch_a.joined["bot"]["id"]
        a.set_audio_renderer(bot_id, slow, sample_rate=16000, callback_interval_ms=20)
        b.set_audio_renderer(bot_id, fast, sample_rate=16000, callback_interval_ms=20)
        deadline = time.monotonic() + 15
        while len(slow.blocked_until) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(slow.blocked_until) == 2, "the slow renderer was not called 60 times in 15 s"
        t_end = time.monotonic() + 0.5
        time.sleep(0.5)

        # The first block may hold up the client sharing the thread (nothing had blocked
        # before, so it is not asserted); the second must not: by then the slow client has a
        # thread of its own.
        second = max_gap(fast.times, slow.blocked_at[1] - 0.1, slow.blocked_until[1] + 0.3)
        assert second < BLOCK_S / 2, f"the other client's callbacks stalled {second:.3f} s during the second block"
        assert max_gap(fast.times, slow.blocked_until[0] + 0.5, t_end) < BLOCK_S / 2
        # The blocking client lost nothing: every 20 ms chunk still reached it, late.
        span = slow.times[-1] - slow.times[0]
        assert slow.frames >= 16000 * (span - 0.2), (slow.frames, span)
        # Both started on one shared thread; the slow client then moved to a thread of its own.
        assert fast.threads == slow.threads[:1]
        assert len(slow.threads) == 2
        leave(bot)
        leave(a)
        leave(b)
    finally:
        bot.release()
        a.release()
        b.release()


def test_release_stops_queued_renderer_callbacks(server):
    url = server.room_url("renderers-release")
    source = CustomAudioSource(16000, 1)
    track = CustomAudioTrack(source)
    watch = Watch()
    listener = CallClient(event_handler=watch)
    bot = CallClient()
    bot.set_user_name("bot")
    cap = Timed()
    try:
        join(listener, url)
        join(bot, url, client_settings=mic_settings(track))
        watch.wait(lambda: "bot" in watch.joined)
        listener.set_audio_renderer(watch.joined["bot"]["id"], cap, sample_rate=16000, callback_interval_ms=20)
        deadline = time.monotonic() + 10
        while len(cap.times) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(cap.times) >= 10
        listener.release()
        n = len(cap.times)
        time.sleep(0.3)
        assert len(cap.times) == n, "a renderer callback ran after release()"
    finally:
        bot.release()
        listener.release()
