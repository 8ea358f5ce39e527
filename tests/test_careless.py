"""Careless calls get clear errors at the call (issue 16, item 5): worker threads capped, no
PanicException, every completion exactly once (also across release() and Daily.deinit()),
names checked against the server's limits, callables checked, settings dicts checked against
Daily's shapes without refusing what pipecat sends."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from conftest import Waiter, join, leave, mic_settings
from daily import CallClient, CustomAudioSource, CustomAudioTrack, Daily, EventHandler

PID = str(uuid.uuid4())


def _run_script(code: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter (for what needs its own engine: init, deinit)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "RUST_BACKTRACE": "0"})


def _silent_listener() -> tuple[socket.socket, str]:
    """A TCP listener that never answers: a join to it stays in `joining`."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s, f"http://127.0.0.1:{s.getsockname()[1]}/hold"


# ---- worker threads ----------------------------------------------------------------------


def test_worker_threads_out_of_range_raise_before_anything_starts():
    r = _run_script("""
        from daily import Daily, CallClient
        for bad in (10**12, 2**62, 2**64, 0, -1, 65):
            try:
                Daily.init(worker_threads=bad)
            except ValueError as e:
                assert "64" in str(e), e
            else:
                raise SystemExit(f"accepted {bad}")
        for bad in (2.0, "4", None.__class__, True):
            try:
                Daily.init(worker_threads=bad)
            except TypeError as e:
                assert "worker_threads" in str(e), e
            else:
                raise SystemExit(f"accepted {bad!r}")
        try:
            CallClient()
        except RuntimeError:
            pass
        else:
            raise SystemExit("a refused init started the engine")
        Daily.init(worker_threads=64)
        CallClient().release()
        Daily.deinit()
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stdout, r.stderr[-2000:])


def test_worker_threads_checked_even_when_already_initialised():
    with pytest.raises(ValueError, match="64"):
        Daily.init(worker_threads=10**12)
    with pytest.raises(TypeError):
        Daily.init(worker_threads="2")  # type: ignore[arg-type]
    Daily.init()  # still a no-op


# ---- no PanicException -------------------------------------------------------------------


def _calls(c: CallClient, src: CustomAudioSource, track: CustomAudioTrack):
    """One call of every method that does work, with valid arguments."""
    w = lambda *a: None  # noqa: E731
    return [
        ("CallClient()", lambda: CallClient()),
        ("join", lambda: c.join("not a url", completion=w)),
        ("leave", lambda: c.leave()),
        ("participants", lambda: c.participants()),
        ("participant_counts", lambda: c.participant_counts()),
        ("inputs", lambda: c.inputs()),
        ("publishing", lambda: c.publishing()),
        ("subscriptions", lambda: c.subscriptions()),
        ("subscription_profiles", lambda: c.subscription_profiles()),
        ("get_network_stats", lambda: c.get_network_stats()),
        ("active_speaker", lambda: c.active_speaker()),
        ("set_user_name", lambda: c.set_user_name("bot")),
        ("update_inputs", lambda: c.update_inputs({"camera": False})),
        ("update_publishing", lambda: c.update_publishing({"camera": False})),
        ("update_subscriptions", lambda: c.update_subscriptions()),
        ("update_subscription_profiles", lambda: c.update_subscription_profiles({"base": {"camera": "unsubscribed"}})),
        ("update_permissions", lambda: c.update_permissions({"hasPresence": True})),
        ("update_remote_participants", lambda: c.update_remote_participants({})),
        ("send_app_message", lambda: c.send_app_message({"a": 1})),
        ("add_custom_audio_track", lambda: c.add_custom_audio_track("t", track)),
        ("remove_custom_audio_track", lambda: c.remove_custom_audio_track("t")),
        ("set_audio_renderer", lambda: c.set_audio_renderer(PID, w)),
        ("start_recording", lambda: c.start_recording()),
        ("media_stats", lambda: c.media_stats()),
        ("CustomAudioSource", lambda: CustomAudioSource(16000, 1)),
        ("CustomAudioTrack", lambda: CustomAudioTrack(src)),
        ("write_frames", lambda: src.write_frames(b"\0\0" * 160, completion=lambda n: None)),
        ("clear_queue", lambda: src.clear_queue()),
        ("create_native_vad", lambda: Daily.create_native_vad()),
        ("create_microphone_device", lambda: Daily.create_microphone_device("careless-mic")),
        ("Daily.init", lambda: Daily.init()),
    ]


def test_a_panic_reaches_python_as_runtime_error():
    c = CallClient()
    src = CustomAudioSource(16000, 1)
    track = CustomAudioTrack(src)
    try:
        for name, call in _calls(c, src, track):
            Daily._inject_panic()
            try:
                call()
            except RuntimeError as e:
                assert "internal error" in str(e), (name, e)
            except BaseException as e:  # PanicException derives from BaseException
                pytest.fail(f"{name}: {type(e).__name__}: {e}")
            else:
                pytest.fail(f"{name} is not guarded: the injected panic did not fire in it")
        # The flag is consumed: calls work again.
        assert c.participants()["local"]["id"]
    finally:
        c.release()


# ---- completions exactly once across release ---------------------------------------------


class Calls:
    def __init__(self) -> None:
        self.args: list[tuple] = []
        self.event = threading.Event()

    def __call__(self, *args) -> None:
        self.args.append(args)
        self.event.set()


@pytest.mark.parametrize("where", ["server", "silent"])
def test_join_then_release_at_once_completes_exactly_once(server, where):
    if where == "server":
        listener, url = None, server.room_url("careless-release")
    else:
        listener, url = _silent_listener()
    try:
        for _ in range(5):
            c = CallClient()
            done = Calls()
            c.join(url, client_settings={"inputs": {"microphone": False}}, completion=done)
            c.release()
            assert done.event.wait(10), "the join completion never fired"
            time.sleep(0.2)
            assert len(done.args) == 1, done.args
            data, error = done.args[0]
            assert (data is None) != (error is None)
            with pytest.raises(RuntimeError, match="released"):
                c.participants()
    finally:
        if listener:
            listener.close()


def test_completions_pending_at_release_fire(server):
    url = server.room_url("careless-pending")
    c = CallClient()
    join(c, url)
    fired = [Calls() for _ in range(4)]
    c.send_app_message({"hello": 1}, completion=fired[0])
    c.update_subscription_profiles({"base": {"microphone": "subscribed"}}, completion=fired[1])
    c.update_permissions({"hasPresence": True}, completion=fired[2])
    c.leave(completion=fired[3])
    c.release()
    for f in fired:
        assert f.event.wait(10)
    time.sleep(0.2)
    assert all(len(f.args) == 1 for f in fired)


# ---- names against the server's limits ---------------------------------------------------


def test_names_over_the_server_limits_raise(server):
    src = CustomAudioSource(16000, 1)
    track = CustomAudioTrack(src)
    c = CallClient()
    try:
        for name in ("x" * 1025, "é" * 513):
            with pytest.raises(ValueError, match="1024"):
                c.set_user_name(name)
        c.set_user_name("x" * 1024)
        for name in ("t" * 257, "t" * 300_000):
            with pytest.raises(ValueError, match="256"):
                c.add_custom_audio_track(name, track)
            with pytest.raises(ValueError, match="256"):
                c.update_custom_audio_track(name, track)
        with pytest.raises(ValueError, match="256"):
            c.update_publishing({"customAudio": {"t" * 257: True}})
        with pytest.raises(ValueError, match="256"):
            c.update_subscriptions(participant_settings={PID: {"media": {"customAudio": {"t" * 300_000: "subscribed"}}}})
        # While joined the client stays in the call (the server used to drop it).
        join(c, server.room_url("careless-names"), client_settings=mic_settings(track))
        with pytest.raises(ValueError, match="1024"):
            c.set_user_name("x" * 1025)
        t0 = time.monotonic()
        with pytest.raises(ValueError, match="256"):
            c.add_custom_audio_track("y" * 300_000, track)
        assert time.monotonic() - t0 < 0.5
        w = Waiter()
        c.add_custom_audio_track("y" * 256, track, completion=w)
        assert w.wait(10) == (None,)
        time.sleep(0.5)
        w = Waiter()
        c.send_app_message({"still": "here"}, completion=w)
        assert w.wait(10) == (None,), "the client was dropped from the call"
        leave(c)
    finally:
        c.release()


# ---- callables ---------------------------------------------------------------------------


def test_callables_checked_at_the_call():
    c = CallClient()
    src = CustomAudioSource(16000, 1)
    spk = Daily.create_speaker_device("careless-spk")
    try:
        with pytest.raises(TypeError, match="callback"):
            c.set_audio_renderer(PID, 42)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="callback"):
            c.set_video_renderer(PID, "nope")  # type: ignore[arg-type]
        for call in (
            lambda: c.join("http://127.0.0.1:9/x", completion=42),
            lambda: c.leave(completion=42),
            lambda: c.update_inputs({"camera": False}, completion=42),
            lambda: c.update_publishing({"camera": False}, completion="x"),
            lambda: c.update_subscriptions(completion=42),
            lambda: c.update_subscription_profiles({}, completion=42),
            lambda: c.send_app_message({}, completion=42),
            lambda: c.start_recording(completion=42),
            lambda: c.stop_recording(completion=42),
            lambda: src.write_frames(b"\0\0" * 160, completion=42),
            lambda: spk.read_frames(160, completion=42),
        ):
            with pytest.raises(TypeError, match="completion"):
                call()  # type: ignore[arg-type]
        # Any callable is fine: objects with __call__, partials, bound methods.
        w = Waiter()
        c.update_inputs({"camera": False}, completion=functools.partial(w))
        assert w.wait(5) == (None,)
        w2 = Waiter()
        c.leave(completion=w2)
        assert w2.wait(5) == (None,)
        c.set_audio_renderer(PID, Calls())
    finally:
        c.release()


# ---- settings shapes ---------------------------------------------------------------------

BAD = [
    # (method, args, kwargs, exception, words the message must contain)
    ("update_publishing", ({"microphone": "x"},), {}, TypeError, 'publishing_settings["microphone"]'),
    ("update_publishing", ({"microphone": {"isPublishing": "yes"}},), {}, TypeError, "isPublishing"),
    ("update_publishing", ({"microphone": {"sendSettings": {"bitrate": "high"}}},), {}, TypeError, "bitrate"),
    ("update_publishing", ({"microphone": {"sendSettings": {"loudness": 3}}},), {}, ValueError, "loudness"),
    ("update_publishing", ({"microphone": {"sendSettings": 5}},), {}, TypeError, "sendSettings"),
    ("update_publishing", ({"micropone": True},), {}, ValueError, "micropone"),
    ("update_publishing", ({"microphone": {"isPublishing": True, "extra": 1}},), {}, ValueError, "extra"),
    ("update_publishing", ({"customAudio": {"a": "x"}},), {}, TypeError, "customAudio"),
    ("update_inputs", ({"microphone": {"isEnabled": 1}},), {}, TypeError, "isEnabled"),
    ("update_inputs", ({"microphone": {"settings": {"deviceId": 3}}},), {}, TypeError, "deviceId"),
    ("update_inputs", ({"microphone": {"settings": {"bogus": 3}}},), {}, ValueError, "bogus"),
    ("update_inputs", ({"camera": "on"},), {}, TypeError, "camera"),
    ("update_inputs", ({"customAudio": {"a": {"isEnabled": True, "settings": {"customTrack": "id"}}}},), {}, TypeError, "customTrack"),
    ("update_subscriptions", (), {"participant_settings": {"not-an-id": {"media": {}}}}, ValueError, "not-an-id"),
    ("update_subscriptions", (), {"participant_settings": {PID: "subscribed"}}, TypeError, PID),
    ("update_subscriptions", (), {"participant_settings": {PID: {"media": {"microphone": "yes"}}}}, ValueError, "microphone"),
    ("update_subscriptions", (), {"participant_settings": {PID: {"media": {"microphone": 1}}}}, TypeError, "microphone"),
    ("update_subscriptions", (), {"participant_settings": {PID: {"medium": {}}}}, ValueError, "medium"),
    ("update_subscriptions", (), {"participant_settings": {PID: {"profile": 3}}}, TypeError, "profile"),
    ("update_subscriptions", (), {"profile_settings": {"base": {"mic": "subscribed"}}}, ValueError, "mic"),
    ("update_subscriptions", (), {"profile_settings": {"base": "subscribed"}}, TypeError, "base"),
    ("update_subscription_profiles", ({"base": {"camera": "off"}},), {}, ValueError, "camera"),
    ("update_subscription_profiles", ({"base": {"camera": {"subscriptionState": "subscribed", "x": 1}}},), {}, ValueError, '"x"'),
    ("update_subscription_profiles", ({"base": 1},), {}, TypeError, "base"),
    ("update_remote_participants", ({PID: {"bogus": True}},), {}, ValueError, "bogus"),
    ("update_remote_participants", ({"nobody": {"permissions": {}}},), {}, ValueError, "nobody"),
    ("update_remote_participants", ({PID: {"permissions": {"canSend": 3}}},), {}, TypeError, "canSend"),
    ("update_remote_participants", ({PID: {"permissions": {"canSned": []}}},), {}, ValueError, "canSned"),
    ("update_remote_participants", ({PID: {"inputsEnabled": {"microphone": "no"}}},), {}, TypeError, "microphone"),
    ("update_remote_participants", ({PID: "x"},), {}, TypeError, PID),
    ("update_permissions", ({"hasPresence": "yes"},), {}, TypeError, "hasPresence"),
    ("update_permissions", ({"canTeleport": True},), {}, ValueError, "canTeleport"),
    ("update_permissions", ({"canSend": [1]},), {}, TypeError, "canSend"),
    ("send_app_message", ({"a": 1}, "x" * 300_000), {}, ValueError, "participant_id"),
    ("eject_remote_participants", (["x" * 300_000],), {}, ValueError, "64 bytes"),
    ("join", ("http://127.0.0.1:9/x",), {"client_settings": {"inputs": {"microphone": "x"}}}, TypeError, "microphone"),
    ("join", ("http://127.0.0.1:9/x",), {"client_settings": {"userName": "bot"}}, ValueError, "userName"),
    ("join", ("http://127.0.0.1:9/x",), {"client_settings": {"publishing": {"microphone": {"sendSettings": {"bitrate": 1.5}}}}}, TypeError, "bitrate"),
]


@pytest.mark.parametrize("method,args,kwargs,exc,words", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_garbage_settings_raise_naming_the_key(method, args, kwargs, exc, words):
    c = CallClient()
    before = (c.inputs(), c.publishing(), c.subscriptions(), c.subscription_profiles())
    fired = Calls()
    try:
        with pytest.raises(exc) as info:
            getattr(c, method)(*args, completion=fired, **kwargs)
        assert words in str(info.value), str(info.value)
        time.sleep(0.05)
        assert not fired.args, "a refused call must not complete"
        assert (c.inputs(), c.publishing(), c.subscriptions(), c.subscription_profiles()) == before
    finally:
        c.release()


def test_shapes_pipecat_sends_are_accepted():
    """The dicts pipecat's DailyTransport passes (src/pipecat/transports/daily/transport.py),
    and our own getters' values fed back."""
    src = CustomAudioSource(24000, 1)
    track = CustomAudioTrack(src)
    c = CallClient()
    calls = []
    done = lambda name: lambda *a: calls.append((name, a))  # noqa: E731
    try:
        c.update_subscription_profiles({"base": {"camera": "unsubscribed", "screenVideo": "unsubscribed"}}, completion=done("profiles"))
        c.update_subscriptions(participant_settings={PID: {"media": {"microphone": "subscribed"}}}, completion=done("subs-mic"))
        c.update_subscriptions(participant_settings={PID: {"media": {"screenAudio": "subscribed"}}}, completion=done("subs-screen"))
        c.update_subscriptions(participant_settings={PID: {"media": {"customAudio": {"music": "subscribed"}}}}, completion=done("subs-custom"))
        c.update_subscriptions(participant_settings={PID: {"media": {"camera": "subscribed"}}}, completion=done("subs-camera"))
        c.update_subscriptions(participant_settings={PID: {"media": {"customVideo": {"cam2": "subscribed"}}}}, completion=done("subs-cv"))
        c.update_subscriptions(participant_settings={PID: {"profile": "base", "media": {"microphone": {"subscriptionState": "staged"}}}},
                               profile_settings={"quiet": {"microphone": "unsubscribed", "customAudio": {"*": "unsubscribed"}}},
                               completion=done("subs-both"))
        c.update_publishing({"customAudio": {"music": True}}, completion=done("pub-custom"))
        c.update_publishing({"customAudio": {"music": {"sendSettings": {"channelConfig": "stereo", "bitrate": 128000}}}}, completion=done("pub-custom-ss"))
        c.update_publishing({"screenAudio": True}, completion=done("pub-screen-audio"))
        c.update_publishing({"screenAudio": {"sendSettings": "music"}}, completion=done("pub-screen-audio-ss"))
        c.update_publishing({"screenVideo": True}, completion=done("pub-screen-video"))
        c.update_publishing({"screenVideo": {"sendSettings": {"maxQuality": "low", "encodings": {"low": {"maxBitrate": 100000}}}}}, completion=done("pub-sv-ss"))
        c.update_publishing({"customVideo": {"cam2": True}}, completion=done("pub-cv"))
        c.update_publishing({"camera": {"isPublishing": False, "sendSettings": {}}}, completion=done("pub-camera"))
        c.update_publishing({"microphone": {"isPublishing": True, "sendSettings": {"channelConfig": "mono", "bitrate": None}}}, completion=done("pub-mic-none"))
        c.update_inputs({"screenAudio": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}, completion=done("in-screen-audio"))
        c.update_inputs({"screenVideo": {"isEnabled": True, "settings": {"customTrack": {"id": "no-video-track"}}}}, completion=done("in-screen-video"))
        c.update_inputs(c.inputs(), completion=done("in-roundtrip"))
        c.update_publishing(c.publishing(), completion=done("pub-roundtrip"))
        c.update_subscription_profiles(c.subscription_profiles(), completion=done("profiles-roundtrip"))
        c.update_permissions({"canSend": {"microphone", "customAudio"}, "canAdmin": False, "canReceive": {"base": True}, "hasPresence": True},
                             completion=done("perm"))
        c.update_remote_participants({PID: {"permissions": {"canSend": ["microphone"]}, "inputsEnabled": {"microphone": False}}},
                                     completion=done("remote"))
        c.eject_remote_participants([PID], completion=done("eject"))
        c.send_app_message({"x": 1}, "*", completion=done("app-all"))
        c.send_app_message({"x": 1}, PID, completion=done("app-one"))
        joined = Calls()
        c.join("http://127.0.0.1:9/x", "token", completion=joined, client_settings={
            "inputs": {
                "camera": {"isEnabled": False, "settings": {"customTrack": {"id": "no-camera-track"}}},
                "microphone": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}},
            },
            "publishing": {
                "camera": {"isPublishing": False, "sendSettings": {}},
                "microphone": {"isPublishing": True, "sendSettings": {"channelConfig": "mono", "bitrate": 96000}},
            },
        })
        assert joined.event.wait(10)
        deadline = time.monotonic() + 10
        while len(calls) < 26 and time.monotonic() < deadline:
            time.sleep(0.05)
        names = [n for n, _ in calls]
        assert len(calls) == 26, names
        # Offline: settings apply locally; requests that need a call complete with an error.
        errors = {n: a[0] for n, a in calls if a[0] is not None}
        assert set(errors) <= {"perm", "remote", "eject", "app-all", "app-one"}, errors
    finally:
        c.release()


# ---- deinit ------------------------------------------------------------------------------


def test_deinit_ends_calls_and_later_use_raises():
    r = _run_script("""
        import socket, threading, time
        from daily import CallClient, CustomAudioSource, CustomAudioTrack, Daily, EventHandler
        from daily.server import RoomServer

        class H(EventHandler):
            def __init__(self):
                self.states = []
            def on_call_state_updated(self, state):
                self.states.append(state)

        Daily.init()
        hold = socket.socket(); hold.bind(("127.0.0.1", 0)); hold.listen(4)
        with RoomServer(host="127.0.0.1", port=0) as server:
            src = CustomAudioSource(16000, 1)
            track = CustomAudioTrack(src)
            h = H()
            a = CallClient(h)
            ev = threading.Event(); got = []
            a.join(server.room_url("deinit"), client_settings={"inputs": {"microphone": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}},
                   completion=lambda d, e: (got.append(e), ev.set()))
            assert ev.wait(15) and got == [None], got
            b = CallClient()
            pending = []
            b.join(f"http://127.0.0.1:{hold.getsockname()[1]}/hold", completion=lambda d, e: pending.append((d, e)))
            t0 = time.monotonic()
            Daily.deinit()
            took = time.monotonic() - t0
            assert took < 8, took
            assert h.states[-1] == "left", h.states
            time.sleep(0.3)
            assert len(pending) == 1 and pending[0][0] is None and pending[0][1], pending
            for call in (lambda: a.participants(), lambda: a.send_app_message({"x": 1}),
                         lambda: a.join(server.room_url("deinit")), lambda: b.leave(),
                         lambda: src.write_frames(b"\\0\\0" * 160), lambda: CustomAudioTrack(src)):
                try:
                    call()
                except RuntimeError as e:
                    assert "deinitialised" in str(e), e
                else:
                    raise SystemExit("used after deinit without an error")
            a.release(); b.release()   # allowed, no-ops
            # Later init: new objects work, old ones still refuse.
            Daily.init()
            c = CallClient()
            ev2 = threading.Event(); got2 = []
            c.join(server.room_url("deinit"), completion=lambda d, e: (got2.append(e), ev2.set()))
            assert ev2.wait(15) and got2 == [None], got2
            try:
                a.participants()
            except RuntimeError:
                pass
            else:
                raise SystemExit("an old client works after a new init")
            c.release()
            Daily.deinit()
        print("ok")
    """, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), (r.returncode, r.stdout, r.stderr[-3000:])


def test_huge_ids_give_short_errors():
    c = CallClient()
    try:
        with pytest.raises(ValueError) as info:
            c.update_inputs({"microphone": {"isEnabled": True, "settings": {"customTrack": {"id": "z" * 300_000}}}})
        assert len(str(info.value)) < 500
        with pytest.raises(ValueError) as info:
            c.send_app_message({}, "z" * 300_000)
        assert len(str(info.value)) < 500
    finally:
        c.release()
