"""The video benchmark (issue 17): one sender → one receiver, our SDK and aiortc side by side.

    python benches/video_bench.py [--seconds 20] [--sizes 640x360,1280x720] [--warmup 3]
                                  [--repeat K] [--no-aiortc | --only-aiortc] [--json FILE]

For every size, the same scenario on each stack, one pair at a time (--repeat K: K rounds, each
running every size and stack once, so that a busy spell of the machine does not land on one
stack only), every party in a process of its own (this script run with --role; the driver talks to them over stdin/stdout):

- ours: the room server (`daily.server.RoomServer`, embedded in a Python process of its own), a
  sender `CallClient` publishing `CustomVideoTrack(CustomVideoSource(W, H, "RGBA"))` as its
  camera, and a receiver `CallClient` with `set_video_renderer(sender, cb, "camera", "RGBA")`.
  The sender writes from a worker thread at 30 fps (`source.write_frame(frame)`, one write every
  1/30 s on an absolute schedule). All on 127.0.0.1; the server forwards VP8 without transcoding.
- aiortc (PyPI): two `RTCPeerConnection`s, one per process, connected directly on 127.0.0.1 (no
  server: the offer and answer go through this driver; aioice restricted to 127.0.0.1, no STUN).
  The sender's track is a `VideoStreamTrack` subclass whose `recv()` paces itself like aiortc's
  own (`next_timestamp()`, 30 fps) and returns `av.VideoFrame.from_ndarray(frame, "rgba")`;
  aiortc converts it to I420 and encodes VP8 with libvpx through PyAV (its defaults: 500 kbit/s
  at start, adapted by REMB between 250 kbit/s and 1.5 Mbit/s). The receiver pulls
  `track.recv()` and converts every decoded frame with `frame.to_ndarray(format="rgba")`, as a
  renderer would.

The frames are examples/videopattern.py's (a moving textured scene with mild noise and the frame
number in a CRC-checked band). Frames start with the connection; the window of --seconds starts
--warmup s after the receiver's first frame. Figures, over the window:

- CPU %: each process's utime + stime (/proc/PID/stat, all threads) over the window / wall, in %
  of one core; "pair" = sender + receiver. The room server's CPU is reported apart ("server");
  aiortc's peers talk directly, so there is no server CPU on that side. The bench's own work is
  left out: the sender's pattern generation (`make_frame`) and the receiver's frame-number
  reading, each timed with `time.thread_time()` around the call and subtracted (raw figures in
  the JSON). PSNR is computed after the window.
- latency p50 / p95 (ms): per frame written in the window and rendered, the receiver's callback
  (ours; after `frame.buffer`) or the return of `to_ndarray("rgba")` (aiortc) minus the moment
  the sender handed it over (`write_frame` called; `recv()` returning it). The frame number read
  from each rendered frame identifies it; both stamps are CLOCK_MONOTONIC (`time.monotonic()`),
  which is one clock for every process on the machine.
- delivered %: distinct frame numbers rendered / frames written in the window (first arrival of
  each counts; a frame rendered after the window ends still counts, up to --grace s later).
  Unreadable: rendered frames whose number band failed its check.
- PSNR mean / min (dB): BT.601 luma below the number band, rendered frame vs the frame with the
  same number regenerated, on every frame whose number is a multiple of 10 (first arrival).
- skipped (ours): frames the sender's encoder skipped during the window
  (`media_stats()["send"]["video"]["camera"]["framesSkipped"]`: a write replaced the frame
  before the encoder took it, or came within 90 % of a frame interval of the last encode);
  aiortc's sender pulls each frame when its encoder is ready, so it has no such count.
- kbit/s: what the sender's encoder put out over the window (ours: `media_stats()["send"]["video"]
  ["camera"]["bytes"]`, encoded VP8 bytes; aiortc: outbound-rtp `bytesSent` of `getStats()`, RTP
  payload bytes = VP8 plus its 4-6 byte payload descriptor per packet). The receiver's figure is
  used instead when its stats carry `bytesReceived` (neither stack's do today). The stacks do
  not aim at the same rate: ours caps the encoder at the camera layer's `maxBitrate` (Daily's
  default send settings) and follows the send transport's estimate below it; aiortc starts at
  500 kbit/s and follows REMB up to 1.5 Mbit/s. Read each PSNR with the bit rate beside it.
- steal %: CPU the hypervisor took from this VM during the window (/proc/stat), % of all cores;
  other %: CPU used by processes other than the measured ones, % of all cores.

Prints the machine and date, a Markdown table and (with --json) every figure and raw count.
Figures are measured, never asserted. aiortc comes from PyPI (`pip install aiortc`: it brings
av, aioice, pylibsrtp); numpy is needed on both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import math
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))

import videopattern as vp  # noqa: E402
from main_job_bench import cpu_model  # noqa: E402  (same folder: the machine line every bench prints)

FPS = 30
PSNR_EVERY = 10  # PSNR on frames whose number is a multiple of this


# ---------------------------------------------------------------------------------------------
# child side: each role prints JSON lines ({"kind": ...}) and reads JSON commands from stdin


def say(kind: str, **kw) -> None:
    sys.stdout.write(json.dumps({"kind": kind, **kw}) + "\n")
    sys.stdout.flush()


def stdin_commands() -> queue.Queue[dict]:
    """Commands from the driver, read by a daemon thread (EOF reads as a stop)."""
    q: queue.Queue[dict] = queue.Queue()

    def pump() -> None:
        for line in sys.stdin:
            line = line.strip()
            if line:
                q.put(json.loads(line))
        q.put({"cmd": "stop", "eof": True})

    threading.Thread(target=pump, daemon=True, name="stdin").start()
    return q


class Received:
    """What a receiver records: per rendered frame (number or -1, monotonic time, bench CPU),
    and the buffers of the frames whose PSNR is computed after the window."""

    def __init__(self, w: int, h: int) -> None:
        self.w, self.h = w, h
        self.rows: list[tuple[int, float, float]] = []
        self.samples: dict[int, object] = {}
        self.last = 0
        self.first = threading.Event()

    def frame(self, buf, t: float) -> None:
        c0 = time.thread_time()
        low = vp.read_frame_number(buf, self.w, self.h, "RGBA")
        n = -1
        if low is not None:
            n = vp.unwrap_number(low, self.last)
            self.last = n
            if n % PSNR_EVERY == 0 and n not in self.samples:
                self.samples[n] = buf
        self.rows.append((n, t, time.thread_time() - c0))
        self.first.set()

    def result(self) -> dict:
        psnr = [
            (n, round(vp.psnr_luma(buf, vp.make_frame(n, self.w, self.h, "RGBA"), self.w, self.h, "RGBA"), 3))
            for n, buf in sorted(self.samples.items())
        ]
        return {"rows": self.rows, "psnr": psnr}


def role_aiortc(a) -> None:
    import aioice
    import av
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
    from aiortc.mediastreams import MediaStreamError

    # aioice never offers 127.0.0.1; offer exactly that, so every packet stays on loopback.
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]
    w, h = a.width, a.height
    cmds = stdin_commands()

    async def next_cmd() -> dict:
        return await asyncio.get_running_loop().run_in_executor(None, cmds.get)

    class PatternTrack(VideoStreamTrack):
        def __init__(self) -> None:
            super().__init__()
            self.n = 0
            self.sent: list[tuple[int, float, float]] = []  # (number, handed over, pattern CPU)

        async def recv(self):
            pts, time_base = await self.next_timestamp()
            c0 = time.thread_time()
            arr = vp.make_frame(self.n, w, h, "RGBA")
            gen = time.thread_time() - c0
            frame = av.VideoFrame.from_ndarray(arr, format="rgba")
            frame.pts, frame.time_base = pts, time_base
            self.sent.append((self.n, time.monotonic(), gen))
            self.n += 1
            return frame

    async def rtp_bytes(pc, which: str) -> int | None:
        """RTP payload bytes sent (outbound-rtp bytesSent; aiortc's inbound stats have no byte count)."""
        for st in (await pc.getStats()).values():
            if getattr(st, "type", "") == which:
                return int(st.bytesSent)
        return None

    async def main() -> None:
        pc = RTCPeerConnection(configuration=RTCConfiguration(iceServers=[]))
        if a.role == "aiortc-send":
            track = PatternTrack()
            pc.addTrack(track)
            await pc.setLocalDescription(await pc.createOffer())
            say("offer", sdp=pc.localDescription.sdp, type=pc.localDescription.type)
            ans = await next_cmd()
            await pc.setRemoteDescription(RTCSessionDescription(sdp=ans["sdp"], type=ans["type"]))
            marks = []
            while True:
                c = await next_cmd()
                if c["cmd"] == "mark":
                    marks.append((time.monotonic(), await rtp_bytes(pc, "outbound-rtp")))
                elif c["cmd"] == "stop":
                    break
            say("result", sent=track.sent, marks=marks)
        else:
            rx = Received(w, h)

            async def consume(track) -> None:
                while True:
                    try:
                        frame = await track.recv()
                    except MediaStreamError:  # the track ended
                        return
                    arr = frame.to_ndarray(format="rgba")
                    rx.frame(arr, time.monotonic())
                    if len(rx.rows) == 1:
                        say("first_frame", t=rx.rows[0][1])

            @pc.on("track")
            def on_track(track) -> None:
                if track.kind == "video":
                    asyncio.ensure_future(consume(track))

            offer = await next_cmd()
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type=offer["type"]))
            await pc.setLocalDescription(await pc.createAnswer())
            say("answer", sdp=pc.localDescription.sdp, type=pc.localDescription.type)
            while (await next_cmd())["cmd"] != "stop":
                pass
            await pc.close()
            say("result", **rx.result())
        await pc.close()

    asyncio.run(main())


def role_daily_server(a) -> None:
    from daily.server import RoomServer

    cmds = stdin_commands()
    with RoomServer(host="127.0.0.1", port=0) as server:
        say("url", url=server.room_url("video-bench"))
        while cmds.get()["cmd"] != "stop":
            pass
    say("result")


def _join(client, url: str, **kw) -> dict:
    done = threading.Event()
    out: dict = {}

    def completion(data, error):
        out["data"], out["error"] = data, error
        done.set()

    client.join(url, completion=completion, **kw)
    if not done.wait(20):
        raise RuntimeError("join did not complete within 20 s")
    if out["error"]:
        raise RuntimeError(f"join failed: {out['error']}")
    return out["data"]


def _leave(client) -> None:
    done = threading.Event()
    client.leave(completion=lambda error: done.set())
    done.wait(10)


def _stats(client) -> dict:
    try:
        return json.loads(json.dumps(client.media_stats(), default=str))
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        return {"error": str(e)}


def _deep_find(d, key: str):
    """The first value of ``key`` in nested dicts (breadth first), or None."""
    todo = [d]
    while todo:
        x = todo.pop(0)
        if isinstance(x, dict):
            if key in x:
                return x[key]
            todo.extend(x.values())
    return None


def role_daily_send(a) -> None:
    import daily

    w, h = a.width, a.height
    cmds = stdin_commands()
    daily.Daily.init()
    source = daily.CustomVideoSource(w, h, "RGBA")
    track = daily.CustomVideoTrack(source)
    client = daily.CallClient()
    client.set_user_name("video-sender")
    data = _join(
        client,
        a.url,
        client_settings={
            "inputs": {
                "camera": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}},
                "microphone": False,
            },
            # --ours-max-bitrate: the camera layer's cap (Daily's default high layer: 680 kbit/s).
            **({"publishing": {"camera": {"sendSettings": {"maxQuality": "high", "encodings": {"high": {"maxBitrate": a.ours_max_bitrate}}}}}}
               if a.ours_max_bitrate else {}),
        },
    )
    me = data["participants"]["local"]["id"] if data and "participants" in data else client.participants()["local"]["id"]
    stop = threading.Event()
    sent: list[tuple[int, float, float]] = []

    def writer() -> None:
        n, due = 0, time.monotonic()
        while not stop.is_set():
            c0 = time.thread_time()
            frame = vp.make_frame(n, w, h, "RGBA")
            gen = time.thread_time() - c0
            now = time.monotonic()
            if now < due:
                time.sleep(due - now)
            t = time.monotonic()
            source.write_frame(frame)
            sent.append((n, t, gen))
            n += 1
            due += 1.0 / FPS
            if time.monotonic() - due > 1.0:  # more than a second behind: start the schedule anew
                due = time.monotonic()

    th = threading.Thread(target=writer, name="video-writer")
    th.start()
    say("joined", participant_id=me)
    marks = []
    while True:
        c = cmds.get()
        if c["cmd"] == "mark":
            st = _stats(client)
            cam = ((st.get("send") or {}).get("video") or {}).get("camera") or {}
            marks.append((time.monotonic(), cam.get("bytes", _deep_find(st.get("send", st), "bytesSent")), st))
        elif c["cmd"] == "stop":
            break
    stop.set()
    th.join()
    _leave(client)
    client.release()
    say("result", sent=sent, marks=marks)
    daily.Daily.deinit()


def role_daily_recv(a) -> None:
    import daily

    w, h = a.width, a.height
    cmds = stdin_commands()
    daily.Daily.init()
    rx = Received(w, h)
    sizes: dict[tuple[int, int], int] = {}

    def on_frame(participant_id, frame, video_source) -> None:
        buf = frame.buffer
        t = time.monotonic()
        if (frame.width, frame.height) != (w, h):  # counted, not read
            sizes[(frame.width, frame.height)] = sizes.get((frame.width, frame.height), 0) + 1
            return
        rx.frame(buf, t)
        if len(rx.rows) == 1:
            say("first_frame", t=t)

    client = daily.CallClient()
    client.set_user_name("video-receiver")
    _join(client, a.url, client_settings={"inputs": {"camera": False, "microphone": False}})
    client.set_video_renderer(a.peer, on_frame, video_source="camera", color_format="RGBA")
    say("joined")

    marks = []
    while True:
        c = cmds.get()
        if c["cmd"] == "mark":
            st = _stats(client)
            cam = st.get("receive", {}).get(a.peer, {}).get("camera", {}) if isinstance(st.get("receive"), dict) else {}
            marks.append((time.monotonic(), _deep_find(cam, "bytesReceived"), st))
        elif c["cmd"] == "stop":
            break
    _leave(client)
    client.release()
    res = rx.result()
    say("result", marks=marks, other_sizes=[[k[0], k[1], v] for k, v in sizes.items()], **res)
    daily.Daily.deinit()


# ---------------------------------------------------------------------------------------------
# driver side


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, all threads, in s (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_s() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine, all cores (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    tck = os.sysconf("SC_CLK_TCK")
    return (sum(v[:8]) - v[3] - v[4]) / tck, v[7] / tck


class Child:
    def __init__(self, role: str, a, *extra: str) -> None:
        self.role = role
        self.err = tempfile.TemporaryFile(mode="w+")
        cmd = [a.python or sys.executable, os.path.abspath(__file__), "--role", role, *extra]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True, bufsize=1)
        self.q: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.p.stdout:
            if line.startswith("{"):
                self.q.put(json.loads(line))
        self.q.put(None)

    def stderr_tail(self) -> str:
        self.err.seek(0)
        return self.err.read()[-1500:]

    def expect(self, kind: str, timeout: float) -> dict:
        end = time.monotonic() + timeout
        while True:
            try:
                m = self.q.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                m = None
                if time.monotonic() < end:
                    continue
            if m is None:
                state = "exited" if self.p.poll() is not None else "timed out"
                raise RuntimeError(f"{self.role}: no {kind!r} ({state}):\n{self.stderr_tail()}")
            if m.get("kind") == kind:
                return m

    def send(self, **msg) -> None:
        try:
            self.p.stdin.write(json.dumps(msg) + "\n")
            self.p.stdin.flush()
        except OSError as e:
            raise RuntimeError(f"{self.role}: {e}:\n{self.stderr_tail()}") from e

    def close(self) -> None:
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def pct(values: list[float], p: float):
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))]


def sleep_until(t: float) -> None:
    while True:
        d = t - time.monotonic()
        if d <= 0:
            return
        time.sleep(min(d, 0.5))


def run_pair(stack: str, w: int, h: int, a) -> dict:
    """One sender → receiver run on one stack; returns its figures."""
    size = ["--width", str(w), "--height", str(h)]
    if stack != "aiortc" and a.ours_max_bitrate:
        size += ["--ours-max-bitrate", str(a.ours_max_bitrate)]
    kids: list[Child] = []
    server = None
    try:
        if stack == "aiortc":
            snd = Child("aiortc-send", a, *size)
            kids.append(snd)
            rcv = Child("aiortc-recv", a, *size)
            kids.append(rcv)
            offer = snd.expect("offer", 30)
            rcv.send(cmd="offer", sdp=offer["sdp"], type=offer["type"])
            ans = rcv.expect("answer", 30)
            snd.send(cmd="answer", sdp=ans["sdp"], type=ans["type"])
        else:
            server = Child("daily-server", a)
            kids.append(server)
            url = server.expect("url", 30)["url"]
            snd = Child("daily-send", a, *size, "--url", url)
            kids.append(snd)
            sid = snd.expect("joined", 40)["participant_id"]
            rcv = Child("daily-recv", a, *size, "--url", url, "--peer", sid)
            kids.append(rcv)
        first = rcv.expect("first_frame", 40)["t"]
        t0 = first + a.warmup
        t1 = t0 + a.seconds
        pids = {"sender": snd.p.pid, "receiver": rcv.p.pid}
        if server:
            pids["server"] = server.p.pid
        sleep_until(t0)
        snd.send(cmd="mark")
        rcv.send(cmd="mark")
        c0 = {k: proc_cpu_s(p) for k, p in pids.items()}
        m0, w0 = machine_s(), time.monotonic()
        sleep_until(t1)
        snd.send(cmd="mark")
        rcv.send(cmd="mark")
        c1 = {k: proc_cpu_s(p) for k, p in pids.items()}
        m1, w1 = machine_s(), time.monotonic()
        time.sleep(a.grace)
        for k in (snd, rcv):
            k.send(cmd="stop")
        sres = snd.expect("result", 60)
        rres = rcv.expect("result", 120)
        if server:
            server.send(cmd="stop")
            server.expect("result", 30)
    finally:
        for k in kids:
            k.close()

    wall = w1 - w0
    cpu_raw = {k: (c1[k] - c0[k]) / wall * 100.0 for k in pids}
    sent = {n: (t, g) for n, t, g in sres["sent"]}
    in_window = {n for n, (t, _) in sent.items() if t0 <= t < t1}
    gen_s = sum(g for n, (t, g) in sent.items() if t0 <= t < t1)
    read_s = sum(c for n, t, c in rres["rows"] if t0 <= t < t1)
    cpu = dict(cpu_raw)
    cpu["sender"] -= gen_s / wall * 100.0
    cpu["receiver"] -= read_s / wall * 100.0
    first_seen: dict[int, float] = {}
    unreadable = 0
    rendered_in_window = 0
    for n, t, _ in rres["rows"]:
        if t0 <= t < t1:
            rendered_in_window += 1
            unreadable += n < 0
        if n >= 0 and n not in first_seen:
            first_seen[n] = t
    got = [n for n in in_window if n in first_seen]
    lat = [(first_seen[n] - sent[n][0]) * 1000.0 for n in got]
    psnr = [p for n, p in rres["psnr"] if n in in_window]
    enc = {}
    smarks = sres.get("marks") or []
    if len(smarks) >= 2 and len(smarks[0]) > 2:  # ours: the encoder's counters over the window
        cams = [((m[2].get("send") or {}).get("video") or {}).get("camera") or {} for m in (smarks[0], smarks[-1])]
        for key in ("framesEncoded", "framesSkipped", "framesDropped", "keyframes"):
            if key in cams[0] and key in cams[1]:
                enc[key] = cams[1][key] - cams[0][key]
    kbps, kbps_from = None, None
    for side, res in (("received", rres), ("sent", sres)):
        marks = res.get("marks") or []
        if len(marks) >= 2 and isinstance(marks[0][1], (int, float)) and isinstance(marks[-1][1], (int, float)):
            kbps = (marks[-1][1] - marks[0][1]) * 8 / (marks[-1][0] - marks[0][0]) / 1000.0
            kbps_from = side
            break
    ours = sum(c1[k] - c0[k] for k in pids)
    busy, steal = m1[0] - m0[0], m1[1] - m0[1]
    ncpu = os.cpu_count() or 1
    return {
        "stack": stack,
        "width": w,
        "height": h,
        "seconds": round(wall, 3),
        "cpu_pct": {k: round(v, 2) for k, v in cpu.items()},
        "cpu_pct_raw": {k: round(v, 2) for k, v in cpu_raw.items()},
        "cpu_pct_pair": round(cpu["sender"] + cpu["receiver"], 2),
        "bench_cpu_pct": {"pattern": round(gen_s / wall * 100.0, 2), "number_reading": round(read_s / wall * 100.0, 2)},
        "frames_written": len(in_window),
        "frames_delivered": len(got),
        "delivered_pct": round(100.0 * len(got) / len(in_window), 2) if in_window else None,
        "rendered_in_window": rendered_in_window,
        "rendered_fps": round(rendered_in_window / wall, 2),
        "unreadable": unreadable,
        "latency_ms_p50": round(pct(lat, 50), 1) if lat else None,
        "latency_ms_p95": round(pct(lat, 95), 1) if lat else None,
        "latency_ms_max": round(max(lat), 1) if lat else None,
        "psnr_db_mean": round(sum(psnr) / len(psnr), 2) if psnr else None,
        "psnr_db_min": round(min(psnr), 2) if psnr else None,
        "psnr_frames": len(psnr),
        "encoder_in_window": enc or None,
        "kbps": round(kbps, 1) if kbps is not None else None,
        "kbps_from": kbps_from,
        "steal_pct": round(steal / wall / ncpu * 100.0, 1),
        "other_pct": round(max(0.0, busy - ours) / wall / ncpu * 100.0, 1),
        "stats_at_end": {
            side: (res.get("marks") or [[None, None, None]])[-1][2:] for side, res in (("sender", sres), ("receiver", rres))
        },
        "other_sizes": rres.get("other_sizes"),
    }


def fmt(v, nd=1) -> str:
    if v is None:
        return "–"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--role", default=None, help=argparse.SUPPRESS)
    p.add_argument("--width", type=int, default=640, help=argparse.SUPPRESS)
    p.add_argument("--ours-max-bitrate", type=int, default=None,
                   help="our sender's camera cap in bit/s (sendSettings maxBitrate; default Daily's 680000), "
                        "e.g. aiortc's measured rate for a PSNR comparison at an equal bit rate")
    p.add_argument("--height", type=int, default=360, help=argparse.SUPPRESS)
    p.add_argument("--url", default=None, help=argparse.SUPPRESS)
    p.add_argument("--peer", default=None, help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=20.0, help="measured window per run (s)")
    p.add_argument("--warmup", type=float, default=3.0, help="s from the receiver's first frame to the window")
    p.add_argument("--grace", type=float, default=2.0, help="s after the window for frames still in flight")
    p.add_argument("--sizes", default="640x360,1280x720")
    p.add_argument("--repeat", type=int, default=1, help="rounds; each round runs every size and stack once")
    p.add_argument("--no-aiortc", action="store_true")
    p.add_argument("--only-aiortc", action="store_true")
    p.add_argument("--python", default=None, help="interpreter for the parties (default: this one)")
    p.add_argument("--json", default=None, help="also write every figure to FILE")
    a = p.parse_args()
    if a.role:
        {
            "aiortc-send": role_aiortc,
            "aiortc-recv": role_aiortc,
            "daily-server": role_daily_server,
            "daily-send": role_daily_send,
            "daily-recv": role_daily_recv,
        }[a.role](a)
        return 0

    stacks = ["aiortc"] if a.only_aiortc else ["ours"] + ([] if a.no_aiortc else ["aiortc"])
    sizes = [tuple(int(v) for v in s.split("x")) for s in a.sizes.split(",")]
    rows = []
    started = datetime.datetime.now()
    for rnd, (w, h), stack in [(i, sz, st) for i in range(max(1, a.repeat)) for sz in sizes for st in stacks]:
        print(f"round {rnd + 1}: {stack} {w}x{h} ...", file=sys.stderr, flush=True)
        try:
            r = run_pair(stack, w, h, a)
        except Exception as e:  # noqa: BLE001 - one failed run is reported, the rest go on
            print(f"  failed: {e}", file=sys.stderr, flush=True)
            rows.append({"stack": stack, "width": w, "height": h, "error": str(e)})
            continue
        print("  " + json.dumps({k: v for k, v in r.items() if k != "stats_at_end"}), file=sys.stderr, flush=True)
        r["round"] = rnd + 1
        rows.append(r)
    if a.repeat > 1:  # one table, sizes together
        rows.sort(key=lambda r: (r["width"] * r["height"], r["stack"] != "ours", r.get("round", 0)))
    versions = {}
    for mod in ("aiortc", "av", "numpy"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = "not installed"
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"started": started.isoformat(timespec="seconds"), "machine": cpu_model(), "cores": os.cpu_count(),
                       "python": platform.python_version(), "versions": versions, "argv": sys.argv[1:], "runs": rows}, f, indent=1)

    print(f"\n{started:%Y-%m-%d %H:%M}, {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"window {a.seconds:g} s after {a.warmup:g} s warm-up, 30 fps RGBA in and out; "
          + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print("\nCPU in % of one core over the window, pattern generation and frame-number reading excluded; "
          "ours has a room server (its CPU apart), aiortc's peers connect directly (no server).\n")
    print("| size | stack | CPU sender % | CPU receiver % | CPU pair % | CPU server % | latency p50 / p95 ms "
          "| delivered % (frames) | skipped | PSNR mean / min dB | kbit/s | steal % | other % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        name = "ours" if r["stack"] == "ours" else "aiortc"
        if "error" in r:
            print(f"| {r['width']}x{r['height']} | {name} | failed: {r['error'].splitlines()[0][:80]} ||||||||||||")
            continue
        c = r["cpu_pct"]
        srv = fmt(c.get("server"), 2) if "server" in c else "none (direct)"
        print(f"| {r['width']}x{r['height']} | {name} | {fmt(c['sender'], 2)} | {fmt(c['receiver'], 2)} | {fmt(r['cpu_pct_pair'], 2)} "
              f"| {srv} | {fmt(r['latency_ms_p50'])} / {fmt(r['latency_ms_p95'])} "
              f"| {fmt(r['delivered_pct'], 2)} ({r['frames_delivered']}/{r['frames_written']}) "
              f"| {fmt((r.get('encoder_in_window') or {}).get('framesSkipped'))} "
              f"| {fmt(r['psnr_db_mean'], 2)} / {fmt(r['psnr_db_min'], 2)} | {fmt(r['kbps'], 0)} "
              f"| {fmt(r['steal_pct'])} | {fmt(r['other_pct'])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
