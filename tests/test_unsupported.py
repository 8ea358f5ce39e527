"""Calls our rooms do not offer: each completes exactly once, after the call returned, on
another thread, with its exact error string, before and during a call; after release() they
raise RuntimeError. (Server-side recording is offered: start_recording and stop_recording are
tested in test_server_recording.py; only update_recording, which Daily applies to cloud
recordings' layouts, stays unsupported.)"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest

from conftest import join, leave
from daily import CallClient, CustomVideoSource, CustomVideoTrack, Daily, LogLevel

UPDATE_RECORDING = (
    'update_recording is not supported: Daily applies it to the layout of "cloud" recordings only, '
    'and this room server records "raw-tracks" audio (one file per track and a mix), which has no '
    "layout to update"
)
LIVE = "live streaming is not supported by this room server"
TRANSCRIPTION = "transcription is not supported by this room server"
DIALOUT = "dial-out is not supported by this room server"
DTMF = "DTMF is not supported by this room server"
SIP = "SIP is not supported by this room server"
PROXY = "proxies are not supported by this SDK"


def _track() -> CustomVideoTrack:
    return CustomVideoTrack(CustomVideoSource(4, 4))


# (method, positional args, keyword args, expected completion arguments)
CASES = [
    ("update_recording", ({"layout": {"preset": "default"}},), {"stream_id": "s1"}, (UPDATE_RECORDING,)),
    ("start_live_stream_with_endpoints", ([{"endpoint": "x"}],), {}, (LIVE,)),
    ("start_live_stream_with_endpoints", (["x"], {"video": {}}, "s1", False), {}, (LIVE,)),
    ("start_live_stream_with_rtmp_urls", (["rtmp://example.invalid/live"],), {}, (LIVE,)),
    ("start_live_stream_with_rtmp_urls", (["rtmp://a"],), {"streaming_settings": {}, "stream_id": "s", "force_new": True}, (LIVE,)),
    ("stop_live_stream", (), {}, (LIVE,)),
    ("stop_live_stream", (), {"stream_id": "s1"}, (LIVE,)),
    ("update_live_stream", ({"layout": {}},), {}, (LIVE,)),
    ("add_live_streaming_endpoints", (["x"],), {"stream_id": "s1"}, (LIVE,)),
    ("remove_live_streaming_endpoints", (["x"],), {}, (LIVE,)),
    ("start_transcription", (), {}, (TRANSCRIPTION,)),
    ("start_transcription", ({"language": "en"},), {}, (TRANSCRIPTION,)),
    ("stop_transcription", (), {}, (TRANSCRIPTION,)),
    ("update_transcription", (), {}, (TRANSCRIPTION,)),
    ("update_transcription", (["p1"],), {"instance_id": "i1"}, (TRANSCRIPTION,)),
    ("start_dialout", ({"phoneNumber": "+15555550100"},), {}, (None, DIALOUT)),
    ("stop_dialout", (str(uuid.uuid4()),), {}, (DIALOUT,)),
    ("send_dtmf", ({"sessionId": "x", "tones": "123"},), {}, (DTMF,)),
    ("sip_call_transfer", ({"toEndPoint": "sip:x"},), {}, (SIP,)),
    ("sip_refer", ({"toEndPoint": "sip:x"},), {}, (SIP,)),
    ("set_proxy_url", (), {}, (None,)),
    ("set_proxy_url", (None,), {}, (None,)),
    ("set_proxy_url", ("http://proxy.invalid:3128",), {}, (PROXY,)),
]


class Recorder:
    """A completion that records every call and its thread. It first waits on `gate`, which
    the caller holds until its call has returned: run on the caller's stack it would time out
    (a plain Lock is not re-entrant), run on another thread it proceeds once the call returned."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.threads: list[int] = []
        self.gate_ok: list[bool] = []
        self.gate = threading.Lock()
        self.event = threading.Event()

    def __call__(self, *args) -> None:
        ok = self.gate.acquire(timeout=2)
        if ok:
            self.gate.release()
        self.gate_ok.append(ok)
        self.calls.append(args)
        self.threads.append(threading.get_ident())
        self.event.set()


def _run(client, name, args, kwargs, expected):
    args = tuple(_track() if a == "TRACK" else a for a in args)
    rec = Recorder()
    with rec.gate:
        assert getattr(client, name)(*args, completion=rec, **kwargs) is None
        assert rec.calls == [], f"{name}: completion ran before the call returned"
    assert rec.event.wait(5), f"{name}: completion did not fire"
    time.sleep(0.05)  # a second (wrong) completion would land here
    assert rec.calls == [expected], (name, rec.calls)
    assert rec.threads[0] != threading.get_ident(), f"{name}: completion ran on the caller's thread"
    assert rec.gate_ok == [True], f"{name}: completion ran on the caller's stack"


def _run_all(client):
    for name, args, kwargs, expected in CASES:
        _run(client, name, args, kwargs, expected)


def test_not_joined():
    c = CallClient()
    try:
        _run_all(c)
    finally:
        c.release()


def test_in_call(server):
    c = CallClient()
    try:
        join(c, server.room_url("unsupported"))
        _run_all(c)
        leave(c)
    finally:
        c.release()


def test_without_completion_does_not_raise():
    c = CallClient()
    try:
        for name, args, kwargs, _ in CASES:
            args = tuple(_track() if a == "TRACK" else a for a in args)
            assert getattr(c, name)(*args, **kwargs) is None
    finally:
        c.release()


def test_completion_exception_is_reported(monkeypatch):
    seen = []
    monkeypatch.setattr("sys.unraisablehook", lambda u: seen.append(u.exc_value))
    c = CallClient()
    try:
        ok = threading.Event()

        def boom(error):
            raise RuntimeError("from completion")

        c.stop_recording(completion=boom)
        c.stop_recording(completion=lambda e: ok.set())
        assert ok.wait(5)
        assert any(isinstance(e, RuntimeError) and "from completion" in str(e) for e in seen), seen
    finally:
        c.release()


def test_after_release_raises():
    c = CallClient()
    c.release()
    for name, args, kwargs, _ in CASES:
        args = tuple(_track() if a == "TRACK" else a for a in args)
        with pytest.raises(RuntimeError, match="released"):
            getattr(c, name)(*args, **kwargs)
    with pytest.raises(RuntimeError, match="released"):
        c.set_video_renderer(str(uuid.uuid4()), lambda *a: None)
