"""`daily.AudioBufferProcessor` (issue 19) in a real call on the loopback room server.

One conversation (module fixture) is recorded by several processors on the bot's client at
once, each configured differently: the bot writes speech clip A through its custom track (with a
1 s stall in the middle, then the rest as one burst), a user who joins after recording started
speaks clip B. The tests then check each recording against the clips and the call's timing.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time

import numpy as np
import pytest
import speechmetrics as sm
from conftest import SPEECH_16K, Waiter, join, leave, mic_settings

from daily import AudioBufferProcessor, CallClient, CustomAudioSource, CustomAudioTrack

RATE = 16000
A_FIRST_S = 1.0  # clip A: 1.0 s, then the writer stalls STALL_S, then 1.5 s in one burst
A_REST_S = 1.5
STALL_S = 1.0
B_S = 2.0  # clip B (the user)


def clip(start_s: float, dur_s: float) -> np.ndarray:
    pcm, rate = sm.read_wav_mono16(SPEECH_16K)
    assert rate == RATE
    return pcm[int(start_s * RATE) : int((start_s + dur_s) * RATE)].copy()


# Two different stretches of the LibriVox reading, each one continuous utterance.
CLIP_A = clip(2.0, A_FIRST_S + A_REST_S)
CLIP_B = clip(12.0, B_S)


class Rec:
    """A processor and everything its handlers received."""

    def __init__(self, client, **kw) -> None:
        self.p = AudioBufferProcessor(client, **kw)
        self.merged: list[bytes] = []
        self.user: list[bytes] = []
        self.bot: list[bytes] = []
        self.turns: list[tuple[str, bytes, int, int]] = []
        self.started = 0
        self.stopped = threading.Event()
        self.stopped_count = 0
        self.args: list[tuple] = []
        self.threads: set[str] = set()
        self.span = (0.0, 0.0, 0.0, 0.0)  # monotonic s: before/after start, before/after stop

    def check_duration(self, frames: int, rate: int) -> None:
        """The recording lasts as long as the call between this processor's start and stop."""
        b0, a0, b1, a1 = self.span
        got = frames / rate
        assert b1 - a0 - 0.03 <= got <= a1 - b0 + 0.03, (got, self.span)

    def track_handlers(self) -> "Rec":
        @self.p.event_handler("on_audio_data")
        def on_audio(processor, audio, sample_rate, num_channels):
            assert processor is self.p
            self.threads.add(threading.current_thread().name)
            self.merged.append(audio)
            self.args.append((sample_rate, num_channels))

        def on_tracks(processor, user_audio, bot_audio, sample_rate, num_channels):
            self.user.append(user_audio)
            self.bot.append(bot_audio)

        self.p.add_event_handler("on_track_audio_data", on_tracks)
        return self

    def lifecycle(self) -> "Rec":
        def started(processor):
            self.started += 1

        def stopped(processor):
            self.stopped_count += 1
            self.stopped.set()

        self.p.add_event_handler("on_recording_started", started)
        self.p.add_event_handler("on_recording_stopped", stopped)
        return self

    def pcm(self, parts: list[bytes]) -> np.ndarray:
        return np.frombuffer(b"".join(parts), dtype="<i2")


def lag_of(part: np.ndarray, track: np.ndarray) -> int:
    """Where `part` starts in `track` (samples), by cross-correlation."""
    return sm.best_lag(part, track)


@pytest.fixture(scope="module")
def call(server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rec")
    url = server.room_url("record")
    bot_src = CustomAudioSource(RATE, 1)
    bot_track = CustomAudioTrack(bot_src)
    user_src = CustomAudioSource(RATE, 1)
    user_track = CustomAudioTrack(user_src)
    bot, user = CallClient(), CallClient()
    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, daemon=True)
    loop_thread.start()
    recs: dict[str, Rec] = {}
    try:
        join(bot, url, client_settings=mic_settings(bot_track))
        recs["mono"] = Rec(bot).track_handlers().lifecycle()
        recs["mono"].p.record_to(str(tmp / "mono.wav"))
        recs["stereo"] = Rec(bot, sample_rate=24000, num_channels=2, buffer_size=9600).track_handlers().lifecycle()
        recs["stereo"].p.record_to(str(tmp / "stereo.ogg"))
        recs["turns"] = Rec(bot, enable_turn_audio=True).lifecycle()
        recs["gated"] = Rec(bot, user_continuous_stream=False).track_handlers().lifecycle()
        for rate in (8000, 48000):
            recs[f"r{rate}"] = Rec(bot, sample_rate=rate).track_handlers().lifecycle()
        # Turn handlers are coroutine functions, registered on a running asyncio loop.
        turn_loops: set[int] = set()

        async def register():
            async def user_turn(processor, audio, sample_rate, num_channels):
                turn_loops.add(id(asyncio.get_running_loop()))
                recs["turns"].turns.append(("user", audio, sample_rate, num_channels))

            async def bot_turn(processor, audio, sample_rate, num_channels):
                turn_loops.add(id(asyncio.get_running_loop()))
                recs["turns"].turns.append(("bot", audio, sample_rate, num_channels))

            recs["turns"].p.add_event_handler("on_user_turn_audio_data", user_turn)
            recs["turns"].p.add_event_handler("on_bot_turn_audio_data", bot_turn)

        asyncio.run_coroutine_threadsafe(register(), loop).result(5)
        # A chunked recording whose dispatcher stalls 2 s on its first chunk (a slow handler).
        stall = Rec(bot, buffer_size=3200).track_handlers().lifecycle()
        stall.p.record_to(str(tmp / "stall.wav"))

        @stall.p.event_handler("on_audio_data")
        def slow(processor, audio, sample_rate, num_channels):
            if len(stall.merged) == 1:
                time.sleep(2.0)

        recs["stall"] = stall

        t_rec = time.monotonic()
        for r in recs.values():
            t0 = time.monotonic()
            r.p.start_recording()
            r.span = (t0, time.monotonic(), 0.0, 0.0)
        recs["mono"].p.start_recording()  # idempotent
        # The user joins after recording started.
        join(user, url, client_settings=mic_settings(user_track))
        time.sleep(1.0)  # both transports up, the user's track forwarded
        # The bot speaks A: 1 s paced, a 1 s stall, then the rest in one non-blocking burst.
        a = CLIP_A.tobytes()
        n1 = int(A_FIRST_S * RATE) * 2
        t_a1 = time.monotonic()
        bot_src.write_frames(a[:n1])  # blocking: returns when the clock has taken it
        time.sleep(STALL_S)
        t_a2 = time.monotonic()
        done = Waiter()
        bot_src.write_frames(a[n1:], completion=done)
        done.wait(10)
        time.sleep(0.5)
        t_b = time.monotonic()
        user_src.write_frames(CLIP_B.tobytes())
        time.sleep(1.5)  # the user's turn ends (0.8 s of silence) and is final (0.5 s)
        t_stop = time.monotonic()
        for r in recs.values():
            t0 = time.monotonic()
            r.p.stop_recording()
            r.span = (r.span[0], r.span[1], t0, time.monotonic())
        recs["mono"].p.stop_recording()  # idempotent
        for r in recs.values():
            assert r.p.wait_stopped(15)
            assert r.stopped.wait(5)
        yield {
            "recs": recs,
            "tmp": tmp,
            "t_rec": t_rec,
            "t_a1": t_a1,
            "t_a2": t_a2,
            "t_b": t_b,
            "t_stop": t_stop,
            "turn_loops": turn_loops,
            "loop": loop,
        }
    finally:
        for r in recs.values():
            r.p.stop_recording()
        for c in (user, bot):
            c.release()
        loop.call_soon_threadsafe(loop.stop)
        loop_thread.join(5)


def test_user_and_bot_tracks_carry_b_and_a_at_the_calls_timing(call):
    r = call["recs"]["mono"]
    user, bot = r.pcm(r.user), r.pcm(r.bot)
    assert len(user) == len(bot) > 0
    r.check_duration(len(user), RATE)
    a1, a2 = CLIP_A[: int(A_FIRST_S * RATE)], CLIP_A[int(A_FIRST_S * RATE) :]
    la1, la2, lb = lag_of(a1, bot), lag_of(a2, bot), lag_of(CLIP_B, user)
    # Similarity as elsewhere (tests/test_aio.py): the bot's own audio is taken before the codec,
    # so it is exact; the user's went through Opus and the jitter buffer.
    assert sm.similarity(a1, bot, RATE, lag=la1) >= 0.99
    assert sm.similarity(a2, bot, RATE, lag=la2) >= 0.99
    assert sm.similarity(CLIP_B, user, RATE, lag=lb) >= 0.8
    # The stall is in the bot track exactly as long as it was in the call (the burst is paced).
    gap_written = call["t_a2"] - call["t_a1"]
    gap_rec = (la2 - la1) / RATE
    assert abs(gap_rec - gap_written) < 0.03, (gap_rec, gap_written)
    # The user's B relative to the bot's A: as written, plus the receive path's delay (loopback
    # network < 5 ms, 20 ms Opus frames, the jitter buffer's 20-200 ms), so 0-300 ms later.
    offset_written = call["t_b"] - call["t_a2"]
    offset_rec = (lb - la2) / RATE
    delay = offset_rec - offset_written
    print(f"receive-path delay {delay * 1000:.1f} ms, stall in the call {gap_written * 1000:.1f} ms, in the recording {gap_rec * 1000:.1f} ms")
    assert 0.0 <= delay < 0.3, (offset_rec, offset_written)
    # The bot's track is silent while the user speaks and vice versa (no crosstalk).
    b0 = lb + len(CLIP_B) // 4
    assert np.abs(bot[b0 : b0 + RATE // 2]).max() == 0


def test_mono_is_the_clipped_sum_and_chunks_are_equal_length(call):
    r = call["recs"]["mono"]
    user, bot, merged = r.pcm(r.user), r.pcm(r.bot), r.pcm(r.merged)
    want = np.clip(user.astype(np.int32) + bot.astype(np.int32), -32768, 32767).astype(np.int16)
    assert np.array_equal(merged, want)
    # buffer_size 0: one chunk, at stop.
    assert len(r.merged) == 1 and r.args == [(16000, 1)]
    assert r.started == 1 and r.stopped_count == 1  # start and stop were called twice
    assert r.threads and all(not n.startswith("daily-media") for n in r.threads)


def test_stereo_puts_user_left_bot_right_and_cuts_buffer_size_chunks(call):
    r = call["recs"]["stereo"]
    assert r.args and set(r.args) == {(24000, 2)}
    sizes = [len(u) for u in r.user]
    assert sizes[:-1] == [9600] * (len(sizes) - 1) and 0 < sizes[-1] <= 9600
    assert [len(b) for b in r.bot] == sizes
    assert [len(m) for m in r.merged] == [2 * s for s in sizes]
    merged = r.pcm(r.merged).reshape(-1, 2)
    assert np.array_equal(merged[:, 0], r.pcm(r.user))
    assert np.array_equal(merged[:, 1], r.pcm(r.bot))
    # The tracks hold the right voices at 24 kHz.
    user, bot = r.pcm(r.user), r.pcm(r.bot)
    b24 = np.interp(np.arange(0, len(CLIP_B) * 1.5) / 1.5, np.arange(len(CLIP_B)), CLIP_B).astype(np.int16)
    assert sm.similarity(b24, user, 24000) >= 0.8
    assert sm.similarity(b24, bot, 24000) < 0.3


@pytest.mark.parametrize("rate", [8000, 48000])
def test_other_sample_rates(call, rate):
    r = call["recs"][f"r{rate}"]
    mono = call["recs"]["mono"]
    assert set(r.args) == {(rate, 1)}
    user, bot = r.pcm(r.user), r.pcm(r.bot)
    assert len(user) == len(bot)
    r.check_duration(len(user), rate)
    # Back at 16 kHz, the recording matches the 16 kHz one.
    t = np.arange(len(bot)) / rate
    t16 = np.arange(int(len(bot) * RATE / rate)) / RATE
    bot16 = np.interp(t16, t, bot).astype(np.int16)
    user16 = np.interp(t16, t, user).astype(np.int16)
    assert sm.similarity(mono.pcm(mono.bot), bot16, RATE) >= 0.9
    assert sm.similarity(mono.pcm(mono.user), user16, RATE) >= 0.9


def test_turn_audio_gives_a_bot_turn_and_a_user_turn_on_the_loop(call):
    r = call["recs"]["turns"]
    assert call["turn_loops"] == {id(call["loop"])}, "coroutine handlers ran on their loop"
    bots = [t for t in r.turns if t[0] == "bot"]
    users = [t for t in r.turns if t[0] == "user"]
    assert users and bots, [(t[0], len(t[1])) for t in r.turns]
    assert all(t[2:] == (16000, 1) for t in r.turns)
    user_turn = max(users, key=lambda t: len(t[1]))
    audio = np.frombuffer(user_turn[1], dtype="<i2")
    # The user's turn is clip B (plus at most the 0.1 s pre-roll and 0.2 s hang-over).
    assert len(audio) < len(CLIP_B) + 0.5 * RATE
    assert sm.similarity(CLIP_B, audio, RATE) >= 0.8
    bot_audio = np.frombuffer(b"".join(t[1] for t in bots), dtype="<i2")
    assert sm.similarity(CLIP_A[: int(A_FIRST_S * RATE)], bot_audio, RATE) >= 0.9


def test_user_continuous_stream_false_keeps_only_speech(call):
    gated, mono = call["recs"]["gated"], call["recs"]["mono"]
    user, full = gated.pcm(gated.user), mono.pcm(mono.user)
    assert len(user) == len(gated.pcm(gated.bot))
    gated.check_duration(len(user), RATE)
    lb = lag_of(CLIP_B, full)
    assert sm.similarity(CLIP_B, user, RATE) >= 0.8  # the speech is kept
    assert np.abs(user[: max(0, lb - RATE // 5)]).max() == 0  # before it: silence inserted


def test_stalled_dispatcher_loses_nothing_and_chunks_equal_the_wav(call):
    import soundfile as sf

    r = call["recs"]["stall"]
    sizes = [len(m) for m in r.merged]
    assert sizes[:-1] == [3200] * (len(sizes) - 1)
    assert [len(u) for u in r.user] == [len(b) for b in r.bot] == sizes
    data, rate = sf.read(str(call["tmp"] / "stall.wav"), dtype="int16")
    assert rate == 16000 and data.ndim == 1
    assert np.array_equal(data, r.pcm(r.merged)), "the file holds exactly the chunks' audio"
    r.check_duration(len(data), RATE)


def test_record_to_wav_is_valid_and_matches(call):
    import soundfile as sf

    data, rate = sf.read(str(call["tmp"] / "mono.wav"), dtype="int16")
    r = call["recs"]["mono"]
    assert rate == 16000
    assert np.array_equal(data, r.pcm(r.merged))


def test_record_to_ogg_is_valid_opus_and_matches(call):
    import soundfile as sf

    path = str(call["tmp"] / "stereo.ogg")
    info = subprocess.run(["opusinfo", path], capture_output=True, text=True, timeout=30)
    assert info.returncode == 0, info.stdout + info.stderr
    assert "WARNING" not in info.stdout and "ERROR" not in info.stdout, info.stdout
    data, rate = sf.read(path, dtype="int16")
    assert data.ndim == 2 and data.shape[1] == 2
    r = call["recs"]["stereo"]
    user = r.pcm(r.user)
    # Decoded at 48 kHz (Opus), back to 24 kHz.
    left = data[:, 0][:: rate // 24000] if rate != 24000 else data[:, 0]
    assert sm.similarity(user, left, 24000) >= 0.8
    assert abs(len(left) - len(user)) < 24000 // 10


def test_bad_arguments_raise_clear_errors(tmp_path):
    c = CallClient()
    try:
        with pytest.raises(TypeError):
            AudioBufferProcessor("client")
        with pytest.raises(ValueError, match="sample_rate"):
            AudioBufferProcessor(c, sample_rate=44_150)
        with pytest.raises(ValueError, match="sample_rate"):
            AudioBufferProcessor(c, sample_rate=96_000)
        with pytest.raises(ValueError, match="num_channels"):
            AudioBufferProcessor(c, num_channels=3)
        with pytest.raises(ValueError, match="buffer_size"):
            AudioBufferProcessor(c, buffer_size=-2)
        with pytest.raises(TypeError):
            AudioBufferProcessor(c, buffer_size="big")
        with pytest.raises(TypeError):
            AudioBufferProcessor(c, enable_turn_audio=1)
        p = AudioBufferProcessor(c)
        with pytest.raises(ValueError, match="unknown event"):
            p.add_event_handler("on_audio", print)
        with pytest.raises(ValueError, match="unknown event"):
            p.event_handler("on_nothing")
        with pytest.raises(TypeError):
            p.add_event_handler("on_audio_data", 42)
        with pytest.raises(ValueError, match=r"\.wav"):
            p.record_to(str(tmp_path / "x.mp3"))
        with pytest.raises(FileNotFoundError):
            p.record_to(str(tmp_path / "missing" / "x.wav"))
        with pytest.raises(TypeError):
            p.record_to(42)
        # Not in a call: recording works (silence) and stops cleanly.
        stopped = threading.Event()
        p.add_event_handler("on_recording_stopped", lambda proc: stopped.set())
        p.record_to(tmp_path / "idle.wav")
        p.start_recording()
        time.sleep(0.7)
        p.stop_recording()
        assert stopped.wait(5)
        import soundfile as sf

        data, rate = sf.read(str(tmp_path / "idle.wav"), dtype="int16")
        assert rate == 16000 and 0 < len(data) and not data.any()
        # A rate libopus does not take (44.1 kHz) is resampled to 48 kHz for an .ogg file.
        q = AudioBufferProcessor(c, sample_rate=44_100)
        q.record_to(tmp_path / "idle.opus")
        q.start_recording()
        time.sleep(0.3)
        q.stop_recording()
        info = subprocess.run(["opusinfo", str(tmp_path / "idle.opus")], capture_output=True, text=True, timeout=30)
        assert info.returncode == 0 and "WARNING" not in info.stdout, info.stdout + info.stderr
        assert "44100 Hz" in info.stdout, info.stdout
    finally:
        c.release()
    with pytest.raises(RuntimeError):
        AudioBufferProcessor(c).start_recording()


def test_leaving_closes_the_file_and_stops(server, tmp_path):
    import soundfile as sf

    url = server.room_url("record-leave")
    src = CustomAudioSource(RATE, 1)
    track = CustomAudioTrack(src)
    c = CallClient()
    try:
        join(c, url, client_settings=mic_settings(track))
        p = AudioBufferProcessor(c)
        stopped = threading.Event()
        p.add_event_handler("on_recording_stopped", lambda proc: stopped.set())
        p.record_to(str(tmp_path / "leave.wav"))
        p.start_recording()
        src.write_frames(CLIP_A[:RATE].tobytes())
        leave(c)
        assert stopped.wait(5), "leaving ended the recording"
        assert not p.recording
        data, rate = sf.read(str(tmp_path / "leave.wav"), dtype="int16")
        assert sm.similarity(CLIP_A[:RATE], data, RATE) >= 0.99
    finally:
        c.release()


def test_custom_audio_tracks_published_while_recording_are_in_the_bot_track(server):
    """The bot track is everything the client sends: a custom audio track published after
    recording started is tapped too, and its audio lands in the bot track (exact: taken before
    the codec), summed with the (silent) microphone."""
    url = server.room_url("record-custom")
    mic_src, extra_src = CustomAudioSource(RATE, 1), CustomAudioSource(24000, 2)
    mic, extra = CustomAudioTrack(mic_src), CustomAudioTrack(extra_src)
    c = CallClient()
    try:
        join(c, url, client_settings=mic_settings(mic))
        r = Rec(c).track_handlers().lifecycle()
        r.p.start_recording()
        w = Waiter()
        c.add_custom_audio_track("extra", extra, completion=w)
        (error,) = w.wait(10)
        assert error is None, error
        time.sleep(0.3)
        # 1 s of A at 24 kHz stereo (the same in both channels): resampled to 16 kHz mono.
        a24 = np.interp(np.arange(0, RATE * 1.5) / 1.5, np.arange(RATE), CLIP_A[:RATE]).astype(np.int16)
        extra_src.write_frames(np.repeat(a24, 2).tobytes())
        r.p.stop_recording()
        assert r.p.wait_stopped(10)
        bot, user = r.pcm(r.bot), r.pcm(r.user)
        assert sm.similarity(CLIP_A[:RATE], bot, RATE) >= 0.95
        assert not user.any(), "nobody else is in the call"
    finally:
        c.release()


@pytest.mark.slow
def test_a_long_call_stays_aligned_to_the_end(server, tmp_path):
    """A 10-minute call (``DAILY_REC_MINUTES`` to change it): every 7 s the bot says A, the user
    answers B; every 7th time the bot's writer stalls 1.5 s mid-utterance and then bursts the
    rest. Recorded in stereo to a WAV file with 1 s chunks: every chunk has equal tracks, and at
    the start and at the end of the call each utterance sits where the call's clock says (A within
    30 ms, B 0-300 ms later: the receive path), so nothing drifts over the call."""
    import soundfile as sf

    minutes = float(os.environ.get("DAILY_REC_MINUTES", "10"))
    url = server.room_url("record-long")
    bot_src, user_src = CustomAudioSource(RATE, 1), CustomAudioSource(RATE, 1)
    bot_track, user_track = CustomAudioTrack(bot_src), CustomAudioTrack(user_src)
    bot, user = CallClient(), CallClient()
    path = str(tmp_path / "long.wav")
    try:
        join(bot, url, client_settings=mic_settings(bot_track))
        join(user, url, client_settings=mic_settings(user_track))
        time.sleep(1.0)
        p = AudioBufferProcessor(bot, num_channels=2, buffer_size=32000)
        unequal = []
        chunks = [0]

        def on_tracks(proc, u, b, sr, nch):
            chunks[0] += 1
            if len(u) != len(b):
                unequal.append((len(u), len(b)))

        p.add_event_handler("on_track_audio_data", on_tracks)
        p.record_to(path)
        t0 = time.monotonic()
        p.start_recording()
        t_start = (t0 + time.monotonic()) / 2
        a, n1 = CLIP_A.tobytes(), int(A_FIRST_S * RATE) * 2
        marks: list[tuple[str, float]] = []  # (clip, written at, s after start)
        cycle = 0
        while time.monotonic() - t_start < minutes * 60 - 6:
            c0 = time.monotonic()
            marks.append(("A", c0 - t_start))
            if cycle % 7 == 6:
                bot_src.write_frames(a[:n1])
                time.sleep(1.5)
                marks.append(("A2", time.monotonic() - t_start))
                done = Waiter()
                bot_src.write_frames(a[n1:], completion=done)
                done.wait(10)
            else:
                bot_src.write_frames(a)
            time.sleep(0.2)
            marks.append(("B", time.monotonic() - t_start))
            user_src.write_frames(CLIP_B.tobytes())
            time.sleep(max(0.0, 7.0 - (time.monotonic() - c0)))
            cycle += 1
        p.stop_recording()
        assert p.wait_stopped(15)
        data, rate = sf.read(path, dtype="int16")
        assert rate == RATE and data.shape[1] == 2
        user_ch, bot_ch = data[:, 0], data[:, 1]
        assert abs(len(data) / RATE - (time.monotonic() - t_start)) < 2.0
        assert not unequal and chunks[0] == -(-len(data) // RATE)  # 1 s chunks, the last partial
        parts = {"A": CLIP_A, "A2": CLIP_A[int(A_FIRST_S * RATE) :], "B": CLIP_B}
        checked = [m for m in marks[:9]] + [m for m in marks[-9:]]
        offsets: dict[str, list[float]] = {"A": [], "B": []}
        for name, at in checked:
            clip_ = parts[name] if name != "A" else CLIP_A[: int(A_FIRST_S * RATE)]
            track = user_ch if name == "B" else bot_ch
            lo = max(0, int((at - 0.5) * RATE))
            seg = track[lo : lo + len(clip_) + RATE]
            found = (lo + lag_of(clip_, seg)) / RATE
            offsets["B" if name == "B" else "A"].append(found - at)
            if name == "B":
                assert 0.0 <= found - at < 0.3, (name, at, found)
            else:
                assert abs(found - at) < 0.03, (name, at, found)
        print({k: (round(min(v) * 1000, 1), round(max(v) * 1000, 1)) for k, v in offsets.items()}, "ms")
    finally:
        for c in (user, bot):
            c.release()
