"""Custom audio tracks added and removed during a call, user-name updates, source formats."""

from __future__ import annotations

import time

import numpy as np

import speechmetrics as sm
from conftest import SPEECH_16K, Capture, Waiter, Watch, join, leave, mic_settings
from daily import CallClient, CustomAudioSource, CustomAudioTrack


def _speak(source: CustomAudioSource, pcm16k: np.ndarray, rate: int, channels: int) -> None:
    """Writes 16 kHz mono speech to `source` at its own rate and channel count (blocking)."""
    x = pcm16k.astype(np.float64)
    if rate != 16000:
        t = np.arange(int(len(x) * rate / 16000)) * 16000 / rate
        x = np.interp(t, np.arange(len(x)), x)
    y = np.repeat(x[:, None], channels, axis=1).reshape(-1) if channels == 2 else x
    data = np.clip(y, -32768, 32767).astype("<i2").tobytes()
    step = rate // 50 * 2 * channels  # 20 ms
    for k in range(0, len(data), step):
        source.write_frames(data[k : k + step])


def test_custom_track_added_mid_call_reaches_a_renderer(server):
    url = server.room_url("custom-mid-call")
    speech, _ = sm.read_wav_mono16(SPEECH_16K)
    speech = speech[: 16000 * 4]
    watch = Watch()
    listener = CallClient(event_handler=watch)
    bot = CallClient()
    bot.set_user_name("bot")
    try:
        join(listener, url)
        join(bot, url)
        watch.wait(lambda: "bot" in watch.joined)
        bot_id = watch.joined["bot"]["id"]
        cap = Capture()
        listener.set_audio_renderer(bot_id, cap, audio_source="music", sample_rate=16000, callback_interval_ms=20)
        # 48 kHz stereo source: resampled and down-mixed on the way.
        source = CustomAudioSource(48000, 2)
        track = CustomAudioTrack(source)
        w = Waiter()
        bot.add_custom_audio_track("music", track, completion=w)
        assert w.wait(10) == (None,)
        watch.wait(lambda: any("music" in p["media"]["customAudio"] for p in watch.updated))
        assert bot.participants()["local"]["media"]["customAudio"]["music"]["track"]["id"] == track.id
        _speak(source, speech, 48000, 2)
        time.sleep(0.3)
        received = cap.pcm()
        assert set(cap.frames) == {320}
        assert sm.similarity(speech, received, 16000) >= 0.8
        w = Waiter()
        bot.remove_custom_audio_track("music", completion=w)
        assert w.wait(10) == (None,)
        watch.wait(lambda: "music" not in watch.updated[-1]["media"]["customAudio"])
        w = Waiter()
        bot.remove_custom_audio_track("music", completion=w)
        (error,) = w.wait(5)
        assert error and "music" in error
        leave(bot)
        leave(listener)
    finally:
        bot.release()
        listener.release()


def test_user_name_change_reaches_others(server):
    url = server.room_url("names")
    watch = Watch()
    a, b = CallClient(event_handler=watch), CallClient()
    b.set_user_name("before")
    try:
        join(a, url)
        join(b, url)
        watch.wait(lambda: "before" in watch.joined)
        b.set_user_name("after")
        watch.wait(lambda: any(p["info"].get("userName") == "after" for p in watch.updated))
        bid = watch.joined["before"]["id"]
        assert a.participants()[bid]["info"]["userName"] == "after"
    finally:
        a.release()
        b.release()


def test_renderer_at_other_rates_counts_frames(server):
    url = server.room_url("rates")
    watch = Watch()
    listener = CallClient(event_handler=watch)
    source = CustomAudioSource(24000, 1)  # pipecat's TTS rate
    track = CustomAudioTrack(source)
    bot = CallClient()
    bot.set_user_name("bot")
    caps = {rate: Capture() for rate in (8000, 48000)}
    try:
        join(listener, url)
        join(bot, url, client_settings=mic_settings(track))
        watch.wait(lambda: "bot" in watch.joined)
        bid = watch.joined["bot"]["id"]
        listener.set_audio_renderer(bid, caps[8000], sample_rate=8000, callback_interval_ms=10)
        listener.set_audio_renderer(bid, caps[48000], sample_rate=48000, callback_interval_ms=40)
        speech, _ = sm.read_wav_mono16(SPEECH_16K)
        _speak(source, speech[:16000], 24000, 1)
        time.sleep(0.3)
        assert caps[8000].frames and set(caps[8000].frames) == {80}
        assert caps[48000].frames and set(caps[48000].frames) == {1920}
    finally:
        bot.release()
        listener.release()
