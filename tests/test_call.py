"""End-to-end behaviour of CallClient against a real room server on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import SPEECH_16K, EventLog, Waiter, join, leave, mic_settings
from daily import CallClient, CustomAudioSource, CustomAudioTrack, EventHandler


class Recorder(EventHandler, EventLog):
    def __init__(self) -> None:
        EventLog.__init__(self)

    def on_call_state_updated(self, state):
        self._add("state", state)

    def on_participant_joined(self, participant):
        self._add("joined", participant)

    def on_participant_left(self, participant, reason):
        self._add("left", participant, reason)

    def on_participant_updated(self, participant):
        self._add("updated", participant)

    def on_error(self, message):
        self._add("error", message)


def test_speech_reaches_listener(tmp_path):
    import main_job

    r = main_job.run(SPEECH_16K, str(tmp_path / "received.wav"), seconds=8, manage_engine=False)
    assert r["similarity"] >= 0.8, r
    assert r["packets_received"] and r["packets_received"] > 300, r


def test_joined_left_events_and_participants(server):
    url = server.room_url("events")
    ha, hb = Recorder(), Recorder()
    a, b = CallClient(event_handler=ha), CallClient(event_handler=hb)
    a.set_user_name("alice")
    b.set_user_name("bob")
    try:
        data = join(a, url)
        assert set(data) >= {"meetingSession", "participants"}
        assert data["participants"]["local"]["info"]["isLocal"] is True
        ha.wait_for(lambda e: e == ("state", "joined"))
        join(b, url)
        ev = ha.wait_for(lambda e: e[0] == "joined")
        bob_id = ev[1]["id"]
        assert ev[1]["info"]["userName"] == "bob"
        assert ev[1]["info"]["isLocal"] is False
        # bob sees alice once, as already present
        ev = hb.wait_for(lambda e: e[0] == "joined")
        alice_id = ev[1]["id"]
        assert ev[1]["info"]["userName"] == "alice"
        pa, pb = a.participants(), b.participants()
        assert set(pa) == {"local", bob_id} and pa["local"]["id"] == alice_id
        assert set(pb) == {"local", alice_id} and pb["local"]["id"] == bob_id
        assert pa["local"]["info"]["userName"] == "alice"
        leave(b)
        ev = ha.wait_for(lambda e: e[0] == "left")
        assert ev[1]["id"] == bob_id and ev[2] == "leftCall"
        assert set(a.participants()) == {"local"}
        states = [e[1] for e in hb.events if e[0] == "state"]
        assert states == ["joining", "joined", "leaving", "left"], states
        assert sum(1 for e in hb.events if e[0] == "joined") == 1
    finally:
        a.release()
        b.release()


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _sockets() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def test_join_leave_release_cycles_leave_nothing_behind(server):
    url = server.room_url("cycles")
    source = CustomAudioSource(16000, 1)
    track = CustomAudioTrack(source)
    settings = mic_settings(track)
    # Warm up once so lazily created process-wide threads exist before counting.
    c = CallClient()
    join(c, url, client_settings=settings)
    leave(c)
    c.release()
    time.sleep(0.5)
    threads0, sockets0 = _threads(), _sockets()
    for _ in range(20):
        c = CallClient()
        join(c, url, client_settings=settings)
        leave(c)
        c.release()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (_threads() > threads0 or _sockets() > sockets0):
        time.sleep(0.2)
    assert _threads() <= threads0, (threads0, _threads())
    assert _sockets() <= sockets0, (sockets0, _sockets())


@pytest.mark.parametrize("url", ["", "not a url", "ftp://127.0.0.1/room", "http://127.0.0.1:1/", "http://127.0.0.1:99999/r"])
def test_join_malformed_url_completes_at_once(url):
    c = CallClient()
    w = Waiter()
    try:
        c.join(url, completion=w)
        # The completion runs on the client's dispatcher; it is posted before join returns.
        data, error = w.wait(2)
        assert data is None
        assert isinstance(error, str) and error
    finally:
        c.release()


def test_join_closed_port_errors_within_5s():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    h = Recorder()
    c = CallClient(event_handler=h)
    w = Waiter()
    try:
        t0 = time.monotonic()
        c.join(f"http://127.0.0.1:{port}/room", completion=w)
        data, error = w.wait(5)
        assert data is None and error
        h.wait_for(lambda e: e[0] == "error", timeout=max(0.1, 5 - (time.monotonic() - t0)))
    finally:
        c.release()


def test_write_frames_rejects_partial_frames():
    mono = CustomAudioSource(16000, 1)
    with pytest.raises(ValueError, match="2 bytes"):
        mono.write_frames(b"\x00" * 3)
    stereo = CustomAudioSource(16000, 2)
    with pytest.raises(ValueError, match="4 bytes"):
        stereo.write_frames(b"\x00" * 6)
    with pytest.raises(TypeError):
        stereo.write_frames("not bytes")


def test_custom_audio_source_rejects_bad_format():
    with pytest.raises(ValueError):
        CustomAudioSource(16000, 3)
    with pytest.raises(ValueError):
        CustomAudioSource(0, 1)
    with pytest.raises(ValueError):
        CustomAudioSource(16050, 1)


def test_write_frames_paces_in_real_time():
    src = CustomAudioSource(16000, 1)
    t0 = time.monotonic()
    for _ in range(25):
        src.write_frames(b"\x00\x00" * 640)  # 40 ms each: 1 s in all
    took = time.monotonic() - t0
    assert 0.9 <= took <= 1.2, took


def test_write_frames_completion_fires_once_with_count():
    src = CustomAudioSource(16000, 1)
    w = Waiter()
    n = src.write_frames(b"\x00\x00" * 480, completion=w)
    assert n == 480
    assert w.wait(2) == (480,)
    time.sleep(0.1)
    assert w.calls == 1


def test_set_audio_renderer_validates():
    c = CallClient()
    try:
        with pytest.raises(ValueError):
            c.set_audio_renderer("not-a-uuid", lambda *a: None)
        pid = "2b0a6d6e-8f7e-4b7e-9a53-5c7c3f0e9a11"
        with pytest.raises(ValueError):
            c.set_audio_renderer(pid, lambda *a: None, callback_interval_ms=15)
        with pytest.raises(ValueError):
            c.set_audio_renderer(pid, lambda *a: None, sample_rate=1000)
    finally:
        c.release()


def test_released_client_raises():
    c = CallClient()
    c.release()
    with pytest.raises(RuntimeError):
        c.participants()
    c.release()  # idempotent


def test_event_handler_type_checked():
    with pytest.raises(TypeError):
        CallClient(event_handler=object())


def _run_py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_call_client_before_init_raises():
    r = _run_py(
        "from daily import CallClient\n"
        "try:\n    CallClient()\nexcept RuntimeError as e:\n    print('raised', e)\n"
    )
    assert r.returncode == 0, r.stderr
    assert "raised" in r.stdout and "Daily.init" in r.stdout


def test_second_init_does_not_abort():
    r = _run_py("from daily import Daily, CallClient\nDaily.init()\nDaily.init()\nCallClient().release()\nDaily.deinit()\nprint('ok')")
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout


def test_import_paths_share_classes():
    import daily
    import daily.daily

    for name in daily.__all__:
        assert getattr(daily, name) is getattr(daily.daily, name)


def test_leave_during_join_cancels_it(server):
    h = Recorder()
    c = CallClient(event_handler=h)
    source = CustomAudioSource(16000, 1)
    track = CustomAudioTrack(source)
    try:
        w = Waiter()
        c.join(
            server.room_url("cancel"),
            client_settings=mic_settings(track),
            completion=w,
        )
        lw = Waiter()
        c.leave(completion=lw)
        assert lw.wait(10) == (None,)
        data, error = w.wait(10)
        # Either the join won the race and leave() then left, or leave() cancelled it.
        assert (data is None) == (error is not None)
        h.wait_for(lambda e: e == ("state", "left"))
        time.sleep(0.3)
        states = [e[1] for e in h.events if e[0] == "state"]
        assert states[-1] == "left", states
        # The client is usable again.
        join(c, server.room_url("cancel"))
        leave(c)
    finally:
        c.release()
