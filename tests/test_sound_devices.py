"""System sound devices (cpal through ALSA) against a real sound server: a private PulseAudio
with null sinks (tests/soundserver.py). Speech played into the server's source reaches a remote
renderer through `Daily.create_system_microphone_device`; a remote participant's speech reaches
the server's sink through `Daily.create_system_speaker_device`; and `daily-call` does both as a
command. Skipped only when the sound server's Debian packages are missing."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import soundserver
import speechmetrics as sm
from conftest import SPEECH_16K, Capture, Watch, join, leave, mic_settings
from daily import CallClient, CustomAudioSource, CustomAudioTrack, Daily

_why = soundserver.missing()
pytestmark = pytest.mark.skipif(_why is not None, reason=f"no sound server: {_why}")

SECONDS = 4


@pytest.fixture(scope="module")
def pulse():
    with soundserver.PulseServer() as p:
        yield p


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """4 s of real speech at 16 kHz, as samples and as a WAV file for paplay."""
    pcm, rate = sm.read_wav_mono16(SPEECH_16K)
    assert rate == 16000
    pcm = pcm[: rate * SECONDS]
    path = str(tmp_path_factory.mktemp("sound") / "speech.wav")
    sm.write_wav_mono16(path, pcm, rate)
    return pcm, path


def wait_line(proc: subprocess.Popen, text: str, timeout: float) -> None:
    """Reads `proc`'s stdout until a line contains `text` (bounded by `timeout` seconds)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            seen += line
            if text in line:
                return
    raise AssertionError(f"no {text!r} from the command in {timeout} s; stdout {seen!r}")


def wait_running(device, timeout: float = 5.0) -> None:
    """Waits until `device`'s stream moves audio. A new ALSA stream on the test's PulseAudio
    server stalls for about 2 s before its first periods (measured on this machine, both
    directions, not later streams' starts): tests wait that out rather than speak into it."""
    deadline = time.monotonic() + timeout
    last = device.stats()["frames"]
    moving = 0
    while time.monotonic() < deadline and moving < 3:
        time.sleep(0.1)
        now = device.stats()["frames"]
        moving = moving + 1 if now > last else 0
        last = now
    assert moving >= 3, f"{device!r} did not start in {timeout} s: {device.stats()}"


def read_raw(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype="<i2")


def test_list_devices_shows_the_servers_default_input_and_output(pulse):
    devices = Daily.list_sound_devices()
    inputs = [d for d in devices if d["direction"] == "input"]
    outputs = [d for d in devices if d["direction"] == "output"]
    assert any(d["name"] == "default" and d["is_default"] for d in inputs), devices
    assert any(d["name"] == "default" and d["is_default"] for d in outputs), devices
    d = next(d for d in outputs if d["name"] == "default")
    assert set(d) == {"name", "direction", "is_default", "default_sample_rate", "default_channels",
                      "sample_rate_range", "channel_counts"}
    lo, hi = d["sample_rate_range"]
    assert lo <= 48000 <= hi
    assert d["default_channels"] in d["channel_counts"]


def test_unknown_device_raises_value_error_naming_the_devices(pulse):
    with pytest.raises(ValueError, match=r"no input sound device named \"no-such-device\" \(available: .*default"):
        Daily.create_system_microphone_device("m", system_device="no-such-device")
    with pytest.raises(ValueError, match="no output sound device"):
        Daily.create_system_speaker_device("s", system_device="no-such-device")
    with pytest.raises(ValueError, match="device_name must not be empty"):
        Daily.create_system_microphone_device("")
    with pytest.raises(TypeError):
        Daily.create_system_microphone_device("m", system_device=3)  # type: ignore[arg-type]


def test_speech_played_into_the_source_reaches_a_remote_renderer(pulse, speech, server):
    pcm, wav = speech
    url = server.room_url("sound-in")
    mic = Daily.create_system_microphone_device("system-mic")
    wait_running(mic)
    assert (mic.name, mic.system_device, mic.channels) == ("system-mic", "default", 1)
    assert 8000 <= mic.sample_rate <= 48000 and mic.error is None
    watch = Watch()
    listener = CallClient(event_handler=watch)
    caller = CallClient()
    caller.set_user_name("caller")
    try:
        join(listener, url)
        join(caller, url, client_settings={"inputs": {"microphone": {"isEnabled": True, "settings": {"deviceId": "system-mic"}}}})
        watch.wait(lambda: "caller" in watch.joined)
        cap = Capture()
        listener.set_audio_renderer(watch.joined["caller"]["id"], cap, sample_rate=16000, callback_interval_ms=20)
        time.sleep(0.3)
        pulse.play(wav, sink="mic")
        time.sleep(0.6)
        got = cap.pcm()
        score = sm.similarity(pcm, got, 16000)
        st = mic.stats()
        print(f"system microphone -> renderer: similarity {score:.3f}, {mic.sample_rate} Hz, stats {st}")
        assert score >= 0.8, f"similarity {score:.3f}"
        # The device ran the whole time at its rate (frames counted by the cpal callback).
        assert st["frames"] >= mic.sample_rate * SECONDS, st
        assert st["error"] is None
        leave(caller)
        leave(listener)
    finally:
        mic.close()
        mic.close()  # idempotent
        caller.release()
        listener.release()
    assert mic.stats()["frames"] == 0


def test_remote_speech_reaches_the_sink(pulse, speech, server, tmp_path):
    pcm, _ = speech
    url = server.room_url("sound-out")
    spk = Daily.create_system_speaker_device("system-speaker")
    wait_running(spk)
    Daily.select_speaker_device("system-speaker")
    assert spk.system_device == "default" and spk.channels in (1, 2)
    source = CustomAudioSource(16000, 1)
    track = CustomAudioTrack(source)
    bot = CallClient()
    bot.set_user_name("bot")
    watch = Watch()
    listener = CallClient(event_handler=watch)
    out = str(tmp_path / "spk.raw")
    rec = None
    try:
        join(listener, url)
        join(bot, url, client_settings=mic_settings(track))
        watch.wait(lambda: "bot" in watch.joined)
        time.sleep(0.3)
        rec = pulse.record(out, "spk.monitor", 16000)
        time.sleep(0.3)
        source.write_frames(pcm.astype("<i2").tobytes())  # blocks for 4 s (real time)
        time.sleep(0.8)
        rec.terminate()
        rec.wait(5)
        got = read_raw(out)
        assert len(got) >= 16000 * SECONDS, len(got)
        score = sm.similarity(pcm, got, 16000)
        st = spk.stats()
        print(f"remote bot -> system speaker: similarity {score:.3f}, {spk.sample_rate} Hz {spk.channels} ch, stats {st}")
        assert score >= 0.8, f"similarity {score:.3f}"
        assert st["frames"] >= spk.sample_rate * SECONDS and st["error"] is None, st
        leave(bot)
        leave(listener)
    finally:
        if rec is not None and rec.poll() is None:
            rec.kill()
            rec.wait(5)
        spk.close()
        bot.release()
        listener.release()


def test_daily_call_command_talks_both_ways_and_exits_on_sigterm(pulse, speech, server, tmp_path):
    """`daily-call URL` as a person would run it: it joins, what is said into the machine's
    input reaches the room, the room's speech reaches the machine's output, SIGTERM leaves."""
    pcm, wav = speech
    url = server.room_url("sound-cli")
    left = threading.Event()

    class W(Watch):
        def on_participant_left(self, participant, reason):
            left.set()

    watch = W()
    bot = CallClient(event_handler=watch)
    bot.set_user_name("bot")
    source = CustomAudioSource(16000, 1)
    track = CustomAudioTrack(source)
    out = str(tmp_path / "cli.raw")
    proc = rec = None
    try:
        join(bot, url, client_settings=mic_settings(track))
        proc = subprocess.Popen(
            [sys.executable, "-m", "daily.call_cli", url, "--name", "person"],
            env=pulse.client_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=str(tmp_path),
        )
        watch.wait(lambda: "person" in watch.joined, timeout=20)
        time.sleep(2.0)  # the command's new streams start (see wait_running)
        cap = Capture()
        bot.set_audio_renderer(watch.joined["person"]["id"], cap, sample_rate=16000, callback_interval_ms=20)
        time.sleep(0.3)
        # The person speaks into the machine's input...
        pulse.play(wav, sink="mic")
        time.sleep(0.6)
        score_in = sm.similarity(pcm, cap.pcm(), 16000)
        # ... and hears the bot on the machine's output.
        rec = pulse.record(out, "spk.monitor", 16000)
        time.sleep(0.3)
        source.write_frames(pcm.astype("<i2").tobytes())
        time.sleep(0.8)
        rec.terminate()
        rec.wait(5)
        score_out = sm.similarity(pcm, read_raw(out), 16000)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=15)
        print(f"daily-call: input similarity {score_in:.3f}, output similarity {score_out:.3f}; {stdout.strip().splitlines()[-1]}")
        assert proc.returncode == 0, stderr
        assert "joined" in stdout and "daily-call: left" in stdout, stdout
        assert score_in >= 0.8, f"input similarity {score_in:.3f}"
        assert score_out >= 0.8, f"output similarity {score_out:.3f}"
        assert left.wait(5), "the command's participant did not leave"
        leave(bot)
    finally:
        for p in (proc, rec):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(5)
        bot.release()


def test_daily_call_exits_cleanly_when_the_room_ends(pulse):
    from daily.server import RoomServer

    server = RoomServer(host="127.0.0.1", port=0).start()
    proc = None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daily.call_cli", server.room_url("ending"), "--name", "person"],
            env=pulse.client_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        wait_line(proc, "daily-call: joined", 20)
        server.stop()
        stdout, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 0, stderr
        assert "the call ended" in stdout and "daily-call: left" in stdout, stdout
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)
        server.stop()


def test_daily_call_lists_devices_and_rejects_a_bad_one(pulse, server):
    env = pulse.client_env()
    r = subprocess.run([sys.executable, "-m", "daily.call_cli", "--list-devices"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "input  default (default)" in r.stdout and "output default (default)" in r.stdout, r.stdout
    r = subprocess.run([sys.executable, "-m", "daily.call_cli", server.room_url("x"), "--input", "nope"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert 'no input sound device named "nope"' in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", "daily.call_cli"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "room URL is required" in r.stderr


def test_a_device_that_goes_away_reports_an_error_not_a_crash():
    """The sound server dies under an open microphone and speaker (as a USB headset is pulled):
    each device reports the stream error through `error` and `stats()`; nothing raises on a
    callback thread, and closing still works. Uses a server of its own, not the module's."""
    own = soundserver.PulseServer().start()
    try:
        mic = Daily.create_system_microphone_device("doomed-mic")
        spk = Daily.create_system_speaker_device("doomed-speaker")
        time.sleep(0.3)
        assert mic.error is None and spk.error is None
        assert own.proc is not None
        own.proc.kill()
        own.proc.wait(5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (mic.error is None or spk.error is None):
            time.sleep(0.1)
        print(f"after the server died: microphone {mic.error!r}, speaker {spk.error!r}")
        assert mic.error, "the microphone did not report its stream error"
        assert spk.error, "the speaker did not report its stream error"
        assert mic.stats()["error"] == mic.error
        mic.close()
        spk.close()
    finally:
        own.stop()
