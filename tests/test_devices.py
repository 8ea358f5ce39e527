"""Virtual microphone and speaker devices, and renderers, on a real server over loopback."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import speechmetrics as sm
from conftest import SPEECH_16K, Capture, Waiter, Watch, join, leave
from daily import CallClient, CustomAudioSource, CustomAudioTrack, Daily


def mic_device_settings(name: str) -> dict:
    return {"inputs": {"microphone": {"isEnabled": True, "settings": {"deviceId": name}}}}


def test_virtual_microphone_reaches_a_renderer_and_the_speaker(server):
    url = server.room_url("devices")
    speech, _ = sm.read_wav_mono16(SPEECH_16K)
    speech = speech[: 16000 * 4]
    mic = Daily.create_microphone_device("bot-mic", sample_rate=16000, channels=1)
    speaker = Daily.create_speaker_device("listener-speaker", sample_rate=16000, channels=1)
    Daily.select_speaker_device("listener-speaker")
    assert (mic.name, mic.sample_rate, mic.channels) == ("bot-mic", 16000, 1)
    watch = Watch()
    listener = CallClient(event_handler=watch)
    bot = CallClient()
    bot.set_user_name("bot")
    heard: list[bytes] = []
    stop = threading.Event()

    def read_speaker():
        while not stop.is_set():
            chunk = speaker.read_frames(320)  # 20 ms, blocking
            if not chunk:
                time.sleep(0.01)
            heard.append(chunk)

    try:
        join(listener, url)
        join(bot, url, client_settings=mic_device_settings("bot-mic"))
        watch.wait(lambda: "bot" in watch.joined)
        bot_id = watch.joined["bot"]["id"]
        cap = Capture()
        listener.set_audio_renderer(bot_id, cap, sample_rate=16000, callback_interval_ms=20)
        reader = threading.Thread(target=read_speaker)
        reader.start()
        time.sleep(0.2)
        step = 320 * 2
        data = speech.astype("<i2").tobytes()
        t0 = time.monotonic()
        for k in range(0, len(data), step):
            mic.write_frames(data[k : k + step])  # blocking device: paced
        assert 3.8 <= time.monotonic() - t0 <= 4.3
        time.sleep(0.4)
        stop.set()
        reader.join(2)
        assert not reader.is_alive()
        assert sm.similarity(speech, cap.pcm(), 16000) >= 0.8
        received = np.frombuffer(b"".join(heard), dtype="<i2")
        assert sm.similarity(speech, received, 16000) >= 0.8
        leave(bot)
        leave(listener)
        # No call in the process: the speaker reads empty at once.
        t0 = time.monotonic()
        assert speaker.read_frames(1600) == b""
        assert time.monotonic() - t0 < 0.1
    finally:
        stop.set()
        bot.release()
        listener.release()


def test_update_inputs_switches_to_a_microphone_device_mid_call(server):
    url = server.room_url("switch-mic")
    speech, _ = sm.read_wav_mono16(SPEECH_16K)
    speech = speech[: 16000 * 3]
    mic = Daily.create_microphone_device("late-mic", sample_rate=24000, channels=1, non_blocking=True)
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
        listener.set_audio_renderer(bot_id, cap, sample_rate=16000, callback_interval_ms=20)
        w = Waiter()
        bot.update_inputs(mic_device_settings("late-mic")["inputs"], completion=w)
        assert w.wait(10) == (None,)
        # A non-blocking device returns at once; completions say when frames were consumed.
        t = np.arange(int(len(speech) * 1.5)) / 1.5
        up = np.interp(t, np.arange(len(speech)), speech.astype(np.float64)).astype("<i2").tobytes()
        done = Waiter()
        t0 = time.monotonic()
        assert mic.write_frames(up, completion=done) == len(up) // 2
        assert time.monotonic() - t0 < 0.1
        done.wait(6)
        time.sleep(0.4)
        assert sm.similarity(speech, cap.pcm(), 16000) >= 0.8
        # Disabling the microphone stops the sending.
        w = Waiter()
        bot.update_inputs({"microphone": False}, completion=w)
        assert w.wait(10) == (None,)
        with pytest.raises(ValueError, match="no-such-device"):
            bot.update_inputs(mic_device_settings("no-such-device")["inputs"])
        with pytest.raises(ValueError, match="unknown input"):
            bot.update_inputs(mic_device_settings("late-mic"))  # client_settings, not inputs
        with pytest.raises(TypeError):
            bot.update_inputs("microphone")  # type: ignore[arg-type]
    finally:
        bot.release()
        listener.release()


def test_renderers_count_frames_at_every_rate_and_interval(server):
    url = server.room_url("renderer-rates")
    watch = Watch()
    listener = CallClient(event_handler=watch)
    source = CustomAudioSource(24000, 1)
    track = CustomAudioTrack(source)
    bot = CallClient()
    bot.set_user_name("bot")
    cases = [(8000, 10), (24000, 20), (24000, 30), (48000, 40), (44100, 10), (16000, 100)]
    caps = [Capture() for _ in cases]
    try:
        join(listener, url)
        join(bot, url, client_settings={"inputs": {"microphone": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}})
        watch.wait(lambda: "bot" in watch.joined)
        bid = watch.joined["bot"]["id"]
        # Several renderers on the same participant and source.
        for (rate, interval), cap in zip(cases, caps):
            listener.set_audio_renderer(bid, cap, sample_rate=rate, callback_interval_ms=interval)
        speech, _ = sm.read_wav_mono16(SPEECH_16K)
        x = speech[:16000].astype(np.float64)
        y = np.interp(np.arange(24000) / 1.5, np.arange(len(x)), x).astype("<i2").tobytes()
        source.write_frames(y)
        time.sleep(0.4)
        for (rate, interval), cap in zip(cases, caps):
            assert cap.frames, (rate, interval)
            assert set(cap.frames) == {rate * interval // 1000}, (rate, interval)
            assert cap.rates == {rate}
            assert all(len(c) == 2 * rate * interval // 1000 for c in cap.chunks)
    finally:
        bot.release()
        listener.release()


@pytest.mark.parametrize("interval", [0, -10, 15, 5, 25])
def test_renderer_interval_not_a_multiple_of_10_raises(interval):
    c = CallClient()
    try:
        with pytest.raises(ValueError, match="multiple of 10"):
            c.set_audio_renderer("6f1c2a9e-2a52-4c55-9a5e-9f7c4f1d7a10", lambda *a: None, callback_interval_ms=interval)
    finally:
        c.release()


@pytest.mark.parametrize("rate", [0, 7000, 48100, 16001])
def test_renderer_bad_rate_raises(rate):
    c = CallClient()
    try:
        with pytest.raises(ValueError, match="sample_rate"):
            c.set_audio_renderer("6f1c2a9e-2a52-4c55-9a5e-9f7c4f1d7a10", lambda *a: None, sample_rate=rate)
    finally:
        c.release()


def test_device_bad_arguments_raise():
    for make in (Daily.create_microphone_device, Daily.create_speaker_device):
        with pytest.raises(ValueError, match="sample_rate"):
            make("x", sample_rate=1234)
        with pytest.raises(ValueError, match="channels"):
            make("x", channels=3)
        with pytest.raises(ValueError, match="device_name"):
            make("")
    with pytest.raises(RuntimeError, match="no speaker device"):
        Daily.select_speaker_device("never-created")
    speaker = Daily.create_speaker_device("bad-reads")
    with pytest.raises(ValueError, match="num_frames"):
        speaker.read_frames(-1)
    mic = Daily.create_microphone_device("bad-writes", channels=2)
    with pytest.raises(ValueError, match="whole number"):
        mic.write_frames(bytes(6))
    with pytest.raises(TypeError):
        mic.write_frames([0, 0])  # type: ignore[arg-type]
    c = CallClient()
    try:
        w = Waiter()
        with pytest.raises(ValueError, match="nope"):
            c.join("http://127.0.0.1:9/x", client_settings=mic_device_settings("nope"), completion=w)
    finally:
        c.release()


def test_speaker_not_in_a_call_reads_empty_at_once():
    speaker = Daily.create_speaker_device("idle-speaker", sample_rate=48000, channels=2, non_blocking=True)
    Daily.select_speaker_device("idle-speaker")
    assert (speaker.sample_rate, speaker.channels) == (48000, 2)
    t0 = time.monotonic()
    assert speaker.read_frames(480) == b""
    w = Waiter()
    assert speaker.read_frames(480, completion=w) == b""
    assert w.wait(2) == (b"",)
    assert time.monotonic() - t0 < 0.5


@pytest.mark.parametrize("auto_silence", [True, False])
def test_auto_silence_decides_whether_an_idle_track_keeps_sending(server, auto_silence):
    url = server.room_url(f"auto-silence-{auto_silence}")
    watch = Watch()
    listener = CallClient(event_handler=watch)
    source = CustomAudioSource(16000, 1, auto_silence)
    track = CustomAudioTrack(source)
    bot = CallClient()
    bot.set_user_name("bot")
    try:
        join(listener, url)
        join(bot, url, client_settings={"inputs": {"microphone": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}})
        watch.wait(lambda: "bot" in watch.joined)
        bid = watch.joined["bot"]["id"]
        source.write_frames(bytes(16000))  # 0.5 s, then idle

        def received() -> int:
            return listener.media_stats()["receive"].get(bid, {}).get("microphone", {}).get("packetsReceived", 0)

        time.sleep(0.3)
        before = received()
        time.sleep(0.6)
        after = received()
        if auto_silence:
            assert after - before >= 25  # 20 ms packets keep flowing: ~30 in 0.6 s
        else:
            assert before > 0 and after - before <= 1
    finally:
        bot.release()
        listener.release()
