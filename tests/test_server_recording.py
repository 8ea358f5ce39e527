"""Server-side recording (``CallClient.start_recording``) against a real room server.

Two bots speak different LibriVox passages at known times while an owner records the room;
the raw track files and the mixed file are decoded with third-party decoders (``opusdec`` and
``opusinfo`` from Debian's opus-tools, ``soundfile``'s libsndfile) and must carry each speaker's
speech at the time it was spoken. Also: who may record, the events every participant (and a
late joiner) gets, and how a recording ends when the call ends, the server stops, or its disk
fills (a real full tmpfs in a private mount namespace).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest

import speechmetrics as sm
from conftest import SPEECH_16K, Waiter, join, leave, mic_settings
from daily import CallClient, CustomAudioSource, CustomAudioTrack, EventHandler
from daily.server import RoomServer

KEY = "recording-test-key"
RATE = 16000

opus_tools = pytest.mark.skipif(
    not (shutil.which("opusdec") and shutil.which("opusinfo")), reason="opus-tools (opusdec, opusinfo) not installed"
)


class Rec(EventHandler):
    """Keeps the recording events, in order, with their arrival time."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple, float]] = []
        self.cond = threading.Condition()

    def _add(self, name: str, *args) -> None:
        with self.cond:
            self.events.append((name, args, time.monotonic()))
            self.cond.notify_all()

    def on_recording_started(self, status):
        self._add("started", status)

    def on_recording_stopped(self, stream_id):
        self._add("stopped", stream_id)

    def on_recording_error(self, stream_id, message):
        self._add("error", stream_id, message)

    def wait(self, name: str, timeout: float = 10.0) -> tuple:
        with self.cond:
            ok = self.cond.wait_for(lambda: any(e[0] == name for e in self.events), timeout)
            assert ok, f"no on_recording_{name} within {timeout} s: {self.events}"
            return next(e for e in self.events if e[0] == name)[1]

    def names(self) -> list[str]:
        with self.cond:
            return [e[0] for e in self.events]


def api(server_url: str, path: str, method: str = "GET", body=None, key: str = KEY):
    """JSON from the REST API (raises urllib's HTTPError on an error status)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{server_url}/v1{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def fetch(url: str, key: str | None = None) -> bytes:
    req = urllib.request.Request(url)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def owner_token(server_url: str) -> str:
    return api(server_url, "/meeting-tokens", "POST", {"properties": {"is_owner": True}})["token"]


def speech(offset_s: float, seconds: float) -> np.ndarray:
    pcm, rate = sm.read_wav_mono16(SPEECH_16K)
    assert rate == RATE
    return pcm[int(offset_s * RATE) : int((offset_s + seconds) * RATE)]


def speak(source: CustomAudioSource, pcm: np.ndarray) -> None:
    """Writes 16 kHz mono PCM in 20 ms chunks; write_frames paces it in real time."""
    data = pcm.astype("<i2").tobytes()
    for k in range(0, len(data), 640):
        source.write_frames(data[k : k + 640])


def wait_finished(server_url: str, rec_id: str, timeout: float = 10.0) -> dict:
    """The recording's REST object once the recorder finished it (it closes the files after
    the stop was acknowledged)."""
    deadline = time.monotonic() + timeout
    while True:
        r = api(server_url, f"/recordings/{rec_id}")
        if r["status"] == "finished" or time.monotonic() > deadline:
            return r
        time.sleep(0.1)


def opusdec16k(path: str, tmp) -> np.ndarray:
    """Decodes an Ogg/Opus file with opusdec (opus-tools) to 16 kHz mono."""
    out = os.path.join(str(tmp), os.path.basename(path) + ".wav")
    p = subprocess.run(["opusdec", "--quiet", "--rate", "16000", path, out], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    pcm, rate = sm.read_wav_mono16(out)
    assert rate == RATE
    return pcm


def opusinfo(path: str) -> str:
    p = subprocess.run(["opusinfo", path], capture_output=True, text=True, timeout=30)
    return p.stdout + p.stderr


def check_ogg(path: str, tmp, *, eos: bool = True) -> np.ndarray:
    """The file decodes with libsndfile (soundfile) and opusdec; with ``eos`` opusinfo finds a
    clean stream (end-of-stream page, no errors or warnings). Returns 16 kHz mono PCM."""
    import soundfile

    data, rate = soundfile.read(path, dtype="int16")
    assert rate == 48000 and len(data) > 0
    info = opusinfo(path)
    if eos:
        assert "WARNING" not in info and "ERROR" not in info, info
    pcm = opusdec16k(path, tmp)
    assert abs(len(pcm) / RATE - len(data) / 48000) < 0.05
    return pcm


@pytest.fixture(scope="module")
def rec_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("recordings")
    with RoomServer(api_key=KEY, recordings_dir=str(d)) as s:
        s.dir = str(d)
        yield s


def make_bot(name: str, handler=None):
    source = CustomAudioSource(RATE, 1)
    track = CustomAudioTrack(source)
    client = CallClient(event_handler=handler)
    client.set_user_name(name)
    return client, source, track


@opus_tools
def test_two_speakers_recorded_as_raw_tracks_and_a_mix(rec_server, tmp_path):
    url = rec_server.room_url("rec-two")
    a_ev, b_ev, c_ev = Rec(), Rec(), Rec()
    a, a_src, a_track = make_bot("alice", a_ev)
    b, b_src, b_track = make_bot("bob", b_ev)
    c = CallClient(event_handler=c_ev)
    clip_a, clip_b = speech(0.0, 2.5), speech(20.0, 2.5)
    try:
        join(a, url, meeting_token=owner_token(rec_server.url), client_settings=mic_settings(a_track))
        join(b, url, client_settings=mic_settings(b_track))
        # A non-owner may not record on a server with an API key.
        w = Waiter()
        b.start_recording(completion=w)
        sid, err = w.wait(10)
        assert sid is None and "owners" in err, err
        # Bad arguments fail clearly.
        w = Waiter()
        a.stop_recording("nothing-running", completion=w)
        (err,) = w.wait(10)
        assert "nothing-running" in err and "none is running" in err, err
        with pytest.raises(TypeError):
            a.start_recording(streaming_settings=42)

        w = Waiter()
        t_call = time.monotonic()
        a.start_recording(completion=w)
        sid, err = w.wait(10)
        t_done = time.monotonic()
        assert err is None and sid, err
        # Event before completion, for the owner; the non-owner gets it too.
        status = a_ev.wait("started")[0]
        assert a_ev.events[0][2] <= t_done
        assert b_ev.wait("started")[0] == status
        assert status["streamId"] == sid and status["instanceId"] == sid
        assert status["type"] == "raw-tracks" and status["layout"] == {"preset": "audio-only"}
        assert status["startedBy"] == a.participants()["local"]["id"]
        rec_id = status["recordingId"]
        # Same stream id again: refused unless force_new.
        w = Waiter()
        a.start_recording(stream_id=sid, completion=w)
        assert w.wait(10)[0] is None and "already running" in w.args[1]

        # The recording starts between the call and its completion; speakers start 0.5 s and
        # 3.5 s after the call returned.
        t_a = t_call + 0.5
        t_b = t_call + 3.5
        def talk(src, clip, at, out):
            time.sleep(max(0.0, at - time.monotonic()))
            out.append(time.monotonic())
            speak(src, clip)
        started_a, started_b = [], []
        ta = threading.Thread(target=talk, args=(a_src, clip_a, t_a, started_a))
        tb = threading.Thread(target=talk, args=(b_src, clip_b, t_b, started_b))
        ta.start()
        tb.start()
        # A late joiner is told about the running recording (as Daily's join state does).
        time.sleep(1.0)
        join(c, url)
        assert c_ev.wait("started")[0] == status
        ta.join(15)
        tb.join(15)
        time.sleep(0.4)
        w = Waiter()
        a.stop_recording(completion=w)
        assert w.wait(10) == (None,)
        for ev in (a_ev, b_ev, c_ev):
            assert ev.wait("stopped") == (sid,)
            assert ev.names().count("started") == 1 and "error" not in ev.names()
        w = Waiter()
        a.stop_recording(completion=w)
        (err,) = w.wait(10)
        assert err and "none is running" in err
    finally:
        for cl in (a, b, c):
            try:
                leave(cl)
            finally:
                cl.release()

    meta = wait_finished(rec_server.url, rec_id)
    assert meta["status"] == "finished" and meta["ended_by"] == "stopped", meta
    assert meta["room_name"] == "rec-two" and meta["type"] == "raw-tracks"
    assert meta["max_participants"] == 3 and meta["duration"] >= 6
    listing = api(rec_server.url, "/recordings?room_name=rec-two")
    assert listing["total_count"] == 1 and listing["data"][0]["id"] == rec_id
    rdir = os.path.join(rec_server.dir, rec_id)
    tracks = {t["user_name"]: t for t in meta["tracks"]}
    assert set(tracks) == {"alice", "bob"}, meta["tracks"]
    for who, clip, t_spoke in (("alice", clip_a, started_a[0]), ("bob", clip_b, started_b[0])):
        t = tracks[who]
        assert t["source"] == "microphone" and t["packets"] > 0
        pcm = check_ogg(os.path.join(rdir, t["file"]), tmp_path)
        score = sm.similarity(clip, pcm, RATE)
        print(f"{who}: raw track similarity {score:.3f}, start offset {t['start_offset_ms']} ms")
        assert score >= 0.85, (who, score)
        # Where the speech sits in the file, plus the track's offset, is when it was spoken
        # (relative to the recording's start, which lies between t_call and t_done).
        at_ms = sm.best_lag(clip, pcm) / RATE * 1000 + t["start_offset_ms"]
        want_lo, want_hi = (t_spoke - t_done) * 1000, (t_spoke - t_call) * 1000
        # 250 ms: the sender's 20 ms packets and its send queue, loopback transit and the
        # recorder's 60 ms reorder wait do not move a packet's place (RTP timestamps do), so
        # what remains is the first packet's arrival vs. the call's start, measured on a
        # loaded 2-core machine.
        assert want_lo - 250 <= at_ms <= want_hi + 250, (who, at_ms, want_lo, want_hi)
    # The mix: both speakers, each at its time.
    mix = check_ogg(os.path.join(rdir, "mix.ogg"), tmp_path)
    assert abs(len(mix) / RATE * 1000 - meta["mix"]["duration_ms"]) < 100
    for who, clip, t_spoke in (("alice", clip_a, started_a[0]), ("bob", clip_b, started_b[0])):
        lag = sm.best_lag(clip, mix)
        score = sm.similarity(clip, mix, RATE, lag=lag)
        at_ms = lag / RATE * 1000
        print(f"{who}: mix similarity {score:.3f} at {at_ms:.0f} ms")
        assert score >= 0.9, (who, score)
        # The mix adds the jitter buffer's delay (20-60 ms) to the same bound.
        want_lo, want_hi = (t_spoke - t_done) * 1000, (t_spoke - t_call) * 1000
        assert want_lo - 250 <= at_ms <= want_hi + 300, (who, at_ms, want_lo, want_hi)

    # Access link: a signed, expiring token serves the files without the key; nothing else.
    link = api(rec_server.url, f"/recordings/{rec_id}/access-link?valid_for_secs=60")
    assert link["expires"] > time.time() and link["download_link"].endswith("")
    assert fetch(link["download_link"])[:4] == b"OggS"
    assert all(fetch(t["download_link"])[:4] == b"OggS" for t in link["tracks"])
    bad = link["download_link"].rsplit("token=", 1)[0] + "token=forged"
    with pytest.raises(urllib.error.HTTPError) as e:
        fetch(bad)
    assert e.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as e:
        fetch(f"{rec_server.url}/v1/recordings/{rec_id}/files/recording.json", key=KEY)
    assert e.value.code == 404
    assert fetch(f"{rec_server.url}/v1/recordings/{rec_id}/files/mix.ogg", key=KEY)[:4] == b"OggS"


@opus_tools
def test_call_end_finishes_the_recording(rec_server, tmp_path):
    url = rec_server.room_url("rec-end")
    ev = Rec()
    a, src, track = make_bot("solo", ev)
    try:
        join(a, url, meeting_token=owner_token(rec_server.url), client_settings=mic_settings(track))
        w = Waiter()
        a.start_recording(stream_id="mine", force_new=True, completion=w)
        assert w.wait(10) == ("mine", None)
        rec_id = ev.wait("started")[0]["recordingId"]
        speak(src, speech(5.0, 1.0))
        leave(a)  # the last participant leaves: the call ends
    finally:
        a.release()
    meta = wait_finished(rec_server.url, rec_id)
    assert meta["status"] == "finished" and meta["ended_by"] == "call-ended", meta
    rdir = os.path.join(rec_server.dir, rec_id)
    pcm = check_ogg(os.path.join(rdir, meta["tracks"][0]["file"]), tmp_path)
    assert sm.similarity(speech(5.0, 1.0), pcm, RATE) >= 0.85
    check_ogg(os.path.join(rdir, "mix.ogg"), tmp_path)
    on_disk = json.load(open(os.path.join(rdir, "recording.json")))
    assert on_disk["ended_by"] == "call-ended"
    # REST: filters, limits, errors, delete.
    assert api(rec_server.url, "/recordings?room_name=rec-end&limit=1")["data"][0]["id"] == rec_id
    assert api(rec_server.url, "/recordings?room_name=nobody")["total_count"] == 0
    for bad in ("/recordings?limit=0", "/recordings?limit=101", f"/recordings/{rec_id}/access-link?valid_for_secs=x"):
        with pytest.raises(urllib.error.HTTPError) as e:
            api(rec_server.url, bad)
        assert e.value.code == 400, bad
    with pytest.raises(urllib.error.HTTPError) as e:
        api(rec_server.url, "/recordings", key="wrong")
    assert e.value.code == 401
    assert api(rec_server.url, f"/recordings/{rec_id}", "DELETE") == {"deleted": True, "id": rec_id}
    assert not os.path.exists(rdir)
    with pytest.raises(urllib.error.HTTPError) as e:
        api(rec_server.url, f"/recordings/{rec_id}")
    assert e.value.code == 404


@opus_tools
def test_server_stop_and_open_server_rules(tmp_path):
    """Without an API key everybody may record; stopping the server ends the recording
    cleanly (participants get on_recording_stopped before the call ends)."""
    d = tmp_path / "recs"
    server = RoomServer(recordings_dir=str(d)).start()
    ev = Rec()
    a, src, track = make_bot("guest", ev)
    try:
        join(a, server.room_url("open"), client_settings=mic_settings(track))
        w = Waiter()
        a.start_recording(completion=w)
        sid, err = w.wait(10)
        assert err is None
        rec_id = ev.wait("started")[0]["recordingId"]
        speak(src, speech(10.0, 1.0))
        server.stop()
        assert ev.wait("stopped") == (sid,)
    finally:
        a.release()
        server.stop()
    meta = json.load(open(d / rec_id / "recording.json"))
    assert meta["status"] == "finished" and meta["ended_by"] == "server-stopped", meta
    pcm = check_ogg(str(d / rec_id / meta["tracks"][0]["file"]), tmp_path)
    assert sm.similarity(speech(10.0, 1.0), pcm, RATE) >= 0.85
    check_ogg(str(d / rec_id / "mix.ogg"), tmp_path)


def test_not_in_a_call_completes_once_with_an_error():
    c = CallClient()
    try:
        for call, n in ((lambda w: c.start_recording(completion=w), 2), (lambda w: c.stop_recording(completion=w), 1)):
            w = Waiter()
            assert call(w) is None
            args = w.wait(5)
            time.sleep(0.05)  # a second completion would land here
            assert w.calls == 1 and len(args) == n and "not in a call" in args[-1], args
    finally:
        c.release()
    with pytest.raises(RuntimeError):
        c.start_recording()


def test_recording_disabled_without_a_directory(server):
    a = CallClient()
    try:
        join(a, server.room_url("no-recording"))
        w = Waiter()
        a.start_recording(completion=w)
        sid, err = w.wait(10)
        assert sid is None and "--recordings-dir" in err, err
        w = Waiter()
        a.update_recording({"layout": {"preset": "default"}}, completion=w)
        (err,) = w.wait(10)
        assert "update_recording" in err and "raw-tracks" in err
        leave(a)
    finally:
        a.release()


def _can_unshare() -> str | None:
    if not shutil.which("unshare") or os.geteuid() != 0:
        return "needs root and unshare(1)"
    p = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt && umount /mnt"],
                       capture_output=True, text=True)
    return None if p.returncode == 0 else f"unshare -m / mount tmpfs not permitted here: {p.stderr.strip()}"


@opus_tools
def test_disk_full_ends_the_recording_readable(tmp_path):
    why = _can_unshare()
    if why:
        pytest.skip(why)
    d = tmp_path / "full"
    d.mkdir()
    # The daily-server command in a private mount namespace whose recordings dir is a 64 KiB
    # tmpfs: speech (a raw track of about 20 kbit/s and the mix of about 64) fills it within
    # about 6 s.
    cmd = (
        f"mount -t tmpfs -o size=64k tmpfs {d} && exec {sys.executable} -m daily.cli "
        f"--host 127.0.0.1 --port 0 --api-key {KEY} --recordings-dir {d}"
    )
    p = subprocess.Popen(["unshare", "-m", "sh", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ev = Rec()
    a, src, track = make_bot("filler", ev)
    try:
        line = p.stdout.readline()
        assert line.startswith("daily-server listening on "), (line, p.stderr.read() if p.poll() is not None else "")
        url = line.split()[-1]
        join(a, url + "/full", meeting_token=owner_token(url), client_settings=mic_settings(track))
        w = Waiter()
        a.start_recording(completion=w)
        sid, err = w.wait(10)
        assert err is None
        rec_id = ev.wait("started")[0]["recordingId"]
        stop = threading.Event()

        def talk():
            data = speech(0.0, 24.0).astype("<i2").tobytes()
            for k in range(0, len(data), 640):
                if stop.is_set():
                    return
                src.write_frames(data[k : k + 640])

        t = threading.Thread(target=talk)
        t.start()
        try:
            sid_err, message = ev.wait("error", timeout=25)
        finally:
            stop.set()
            t.join(25)
        assert sid_err == sid and ("space" in message.lower() or "full" in message.lower()), message
        assert ev.wait("stopped") == (sid,)
        assert ev.names().index("error") < ev.names().index("stopped")
        meta = api(url, f"/recordings/{rec_id}")
        assert meta["status"] == "finished" and meta["ended_by"] == "error" and meta["error"], meta
        # The files, fetched from the server (they live in its namespace), still decode.
        for name in ["mix.ogg"] + [tr["file"] for tr in meta["tracks"]]:
            body = fetch(f"{url}/v1/recordings/{rec_id}/files/{name}", key=KEY)
            path = tmp_path / name
            path.write_bytes(body)
            pcm = check_ogg(str(path), tmp_path, eos=False)
            assert len(pcm) > RATE // 2, name  # more than half a second made it to disk
        # The call goes on.
        assert a.participants()["local"]["id"]
        leave(a)
    finally:
        a.release()
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@opus_tools
def test_sigterm_to_the_daily_server_command_finishes_the_recording(tmp_path):
    d = tmp_path / "term"
    p = subprocess.Popen(
        [sys.executable, "-m", "daily.cli", "--host", "127.0.0.1", "--port", "0", "--recordings-dir", str(d)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ev = Rec()
    a, src, track = make_bot("term", ev)
    try:
        url = p.stdout.readline().split()[-1]
        join(a, url + "/term", client_settings=mic_settings(track))
        w = Waiter()
        a.start_recording(completion=w)
        sid, err = w.wait(10)
        assert err is None
        rec_id = ev.wait("started")[0]["recordingId"]
        speak(src, speech(15.0, 1.0))
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=15) == 0
        assert ev.wait("stopped") == (sid,)
    finally:
        a.release()
        if p.poll() is None:
            p.kill()
            p.wait()
    meta = json.load(open(d / rec_id / "recording.json"))
    assert meta["status"] == "finished" and meta["ended_by"] == "server-stopped", meta
    check_ogg(str(d / rec_id / meta["tracks"][0]["file"]), tmp_path)
    check_ogg(str(d / rec_id / "mix.ogg"), tmp_path)
