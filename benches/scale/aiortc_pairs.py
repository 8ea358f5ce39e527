"""N sender/receiver pairs of aiortc clients against our room server, in one asyncio process.

    python benches/scale/aiortc_pairs.py --pairs N --seconds S \
        [--server-url http://127.0.0.1:PORT | --server-bin PATH]

The aiortc half of issue 6's benchmark: the same scenario as our SDK's harness, with aiortc
(PyPI) as the client stack. aiortc speaks our signalling protocol (docs/signalling.md) through a
small client written here: one WebSocket per participant (`websockets`), a send peer connection
that offers the microphone track (`publishOffer` / `publishAnswer`) and a receive peer connection
that answers the server's offers (`subscribeOffer` / `subscribeAnswer`), complete SDPs, no trickle.

Each pair (sender, receiver) sits in its own room. Every sender plays data/librivox_16k.wav
(16 kHz mono, looped; each sender starts at a different offset) at real-time pace, 20 ms frames
through a MediaStreamTrack whose recv() sleeps until the frame is due (as aiortc's own
AudioStreamTrack does, catching up without sleeping when late). Every receiver pulls the remote
track and resamples each frame to 16 kHz mono with av.AudioResampler, as a renderer would.

Joins ramp up with at most --concurrency pairs joining at a time (sender first, then its
receiver). Once every pair is up, at least --warmup seconds pass, and more (up to --warmup-max)
until every sender track is less than 40 ms behind its clock (the ramp stalls the event loop and
the tracks then hand over their backlog in a burst, which must not land in the window); then the
window of --seconds is measured.
The last line on stdout is one JSON object (keys below); a human summary goes to stderr.

Figures (all over the measured window unless said otherwise):
- cpu_pct_per_pair: this process's user+sys CPU (getrusage, all threads) / wall / pairs * 100,
  in % of one core. server_cpu_pct: the server process's utime+stime from /proc/PID/stat over
  the same window, % of one core (null when the server is not ours: --server-url).
- rt_ratio_worst / rt_ratio_median: per receiver, 16 kHz samples out of its resampler during
  the window / 320, divided by the frames expected (window * 50). A pair that failed counts 0.
- steal_pct: CPU time the hypervisor took from this VM during the window (/proc/stat steal), in
  % of all cores (it is also inside the "other processes" figure on stderr).
- rss_kb_per_client: VmRSS after every client joined minus VmRSS before the first client was
  created (after imports, the speech file, the calibration and the server start), / (2 N).
- latency_ms_p50 / _p95: per 10 ms of received audio, pooled over all pairs: the moment the
  receiver's recv() returned the decoded frame minus the moment aiortc pulled, from the sender's
  track, the 20 ms input frame that holds the first sample of that 10 ms. How a received frame is
  mapped to input samples: the SFU forwards the publisher's RTP timestamp unchanged, and aiortc's
  sender stamps packet m with origin + 960 m (origin = a random 32-bit value; its first packet
  carries exactly the origin, so we read it from the first RTP packet the sender hands to its
  DTLS transport). On the receiving side aiortc rebases timestamps to the first one received; we
  add that base back (its TimestampMapper's origin) to get the raw RTP timestamp, hence m. Which
  input samples packet m decodes to is fixed by the codec path (aiortc's Opus encoder with its
  16k->48k resampler, libopus lookahead, the decoder, the receiver's 48k->16k resampler): it is
  measured at start-up by running that exact path offline on the same speech and aligning the
  output to the input by cross-correlation (`calibrate()`): the received frame m starts with
  input sample 320 m - D (D = 120 samples at 16 kHz with aiortc 1.16 / PyAV 18). With
  --check-audio the first pair's received audio is also recorded and aligned against what its
  sender sent, as an independent check of that mapping.
- join_ms_p50 / _p95: per client, over senders and receivers together. A sender: from the start
  of its WebSocket connect to `joined` received, `publishAnswer` applied and the send peer
  connection `connected` (ICE + DTLS). A receiver: from the start of its connect to `joined`
  received, the first `subscribeOffer` answered and the receive peer connection `connected`.
  Receivers join after their sender publishes, so their first offer comes right after `joined`.
  (stderr also shows the receivers' time to the first remote frame.)
- errors: clients that failed (join error or timeout, fatal signalling error, peer connection
  failed or closed during the run). When a sender fails its receiver is not started and counts
  as failed too.

Loopback: aioice (aiortc's ICE) never gathers 127.0.0.1, and our server on loopback has only a
127.0.0.1 candidate, so aioice's host address lookup is replaced by one that returns 127.0.0.1
only (see `use_loopback_only`). No STUN server is configured (aiortc would otherwise default to a
public one): all traffic stays on 127.0.0.1.

Relies on aiortc internals in two places (checked at start-up, and the run stops if they are
missing): RTCDtlsTransport._send_rtp (wrapped on one instance to see the first RTP timestamp)
and RTCRtpReceiver's private TimestampMapper (to undo the rebasing).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import fractions
import json
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import wave

import aioice.ice
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.opus import OpusDecoder, OpusEncoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from websockets.asyncio.client import connect as ws_connect

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
SPEECH = os.path.join(ROOT, "data", "librivox_16k.wav")
sys.path.insert(0, os.path.join(ROOT, "examples"))
from speechmetrics import best_lag  # noqa: E402
from hoststat import steal_s  # noqa: E402  (same folder)

RATE = 16000
FRAME = 320  # 20 ms at 16 kHz
FRAME_S = 0.020
RTP_PER_FRAME = 960  # 20 ms at the Opus RTP clock (48 kHz)
JOIN_TIMEOUT_S = 20.0
STEP_TIMEOUT_S = 10.0


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def use_loopback_only() -> None:
    """aioice skips 127.0.0.1 when listing host addresses; our server on loopback only has a
    127.0.0.1 candidate, so offer exactly that (docs/signalling.md: a client on loopback must
    offer a 127.0.0.1 candidate). Also keeps every socket on loopback."""
    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=True: ["127.0.0.1"]


def pct(values, p: float):
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def proc_cpu_s(pid: int, tid: int | None = None) -> float:
    """utime + stime in seconds (fields 14 and 15 of /proc/PID/stat, or of one thread's
    /proc/PID/task/TID/stat)."""
    with open(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """Non-idle CPU time of the whole machine (all cores) in seconds, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user..steal; guest is inside user


def self_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def read_speech() -> np.ndarray:
    with wave.open(SPEECH, "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2, SPEECH
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    n = len(pcm) // FRAME
    return pcm[: n * FRAME].reshape(n, FRAME)


def make_frame(samples: np.ndarray, k: int) -> av.AudioFrame:
    f = av.AudioFrame.from_ndarray(samples.reshape(1, FRAME), format="s16", layout="mono")
    f.sample_rate = RATE
    f.pts = k * FRAME
    f.time_base = fractions.Fraction(1, RATE)
    return f


def calibrate(frames: np.ndarray) -> tuple[int, float]:
    """D such that the received frame of packet m starts with input sample 320 m - D.

    Runs aiortc's own Opus encoder and decoder (the classes its sender and receiver use) and the
    receiver's resampler on 6 s of the speech, offline, frames numbered as the sender track
    numbers them, and aligns the concatenated output to the input by cross-correlation."""
    enc, dec = OpusEncoder(), OpusDecoder()
    res = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    start = 50  # skip the first second (near-silence at the start of the file)
    count = 300
    inp = frames[start : start + count].reshape(-1)
    outs, first_idx = [], {}
    pos = 0
    for k in range(count):
        payloads, ts = enc.encode(make_frame(frames[start + k], k))
        for p in payloads:
            m = ts // RTP_PER_FRAME
            for d in dec.decode(JitterFrame(p, ts)):
                chunk = [x.to_ndarray().reshape(-1) for x in res.resample(d)]
                first_idx[m] = pos  # 16 kHz output index of the first sample of frame m
                for c in chunk:
                    outs.append(c)
                    pos += len(c)
    out = np.concatenate(outs)
    lag = best_lag(inp, out, max_lag=4 * FRAME)  # out[j] ~ inp[j - lag]
    # output index of frame m's first sample, minus lag = input index; steady state from m = 2
    ds = {FRAME * m - (first_idx[m] - lag) for m in first_idx if m >= 2}
    if len(ds) != 1:
        raise RuntimeError(f"codec path delay not constant: {sorted(ds)}")
    # correlation at that lag, as a sanity figure
    if lag < 0:
        raise RuntimeError(f"negative codec path delay {lag}")
    n = min(len(inp), len(out) - lag)
    a = inp[:n].astype(np.float64)
    b = out[lag : lag + n].astype(np.float64)
    corr = float(np.corrcoef(a, b)[0, 1])
    return ds.pop(), corr


class SpeechTrack(MediaStreamTrack):
    """20 ms frames of speech at real-time pace. recv() sleeps until frame k is due
    (start + k * 20 ms, start = the first recv()) and records when it handed frame k to aiortc."""

    kind = "audio"

    def __init__(self, frames: np.ndarray, offset: int):
        super().__init__()
        self._frames = frames
        self._offset = offset
        self._k = 0
        self.start: float | None = None
        self.consumed = array.array("d")  # consumed[k] = monotonic time frame k was handed over
        self.max_lag_s = 0.0  # worst lateness of a hand-over vs its due time (loop overload)

    def behind_s(self) -> float:
        """How late the next frame is already (0 when the track is on time)."""
        return max(0.0, time.monotonic() - (self.start + self._k * FRAME_S))

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        k = self._k
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + k * FRAME_S
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        frame = make_frame(self._frames[(self._offset + k) % len(self._frames)], k)
        now = time.monotonic()
        self.max_lag_s = max(self.max_lag_s, now - due)
        self.consumed.append(now)
        self._k = k + 1
        return frame


class Client:
    """One participant: WebSocket signalling, send and/or receive peer connection."""

    def __init__(self, bench: "Bench", room_ws: str, name: str, publish: bool, offset: int = 0):
        self.bench = bench
        self.ws_url = room_ws
        self.name = name
        self.publish = publish
        self.offset = offset
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.participant_id: str | None = None
        self.joined = asyncio.Event()
        self.publish_answer: asyncio.Future | None = None
        self.pc_send: RTCPeerConnection | None = None
        self.pc_recv: RTCPeerConnection | None = None
        self.send_connected = asyncio.Event()
        self.recv_connected = asyncio.Event()
        self.first_offer_done = asyncio.Event()
        self.failed: str | None = None
        self.fail_event = asyncio.Event()
        self.track: SpeechTrack | None = None
        self.rtp_origin: int | None = None  # sender: RTP timestamp of its first packet
        # receiver state
        self.mid_map: dict[str, dict] = {}  # mid -> tracks entry of the last subscribeOffer
        self.consumers: list[asyncio.Task] = []
        self.samples16 = 0  # 16 kHz samples out of the resampler
        self.first_frame_t: float | None = None
        self.t_start: float | None = None
        self.join_ms: float | None = None
        self.lat_ms = array.array("d")  # per 10 ms of received audio, inside the window only
        self.unmapped = 0
        self.record: list | None = None  # --check-audio: [(recv_time, raw_ts, int16 16k)]

    # ------------------------------------------------------------------ signalling
    def fail(self, why: str) -> None:
        if self.failed is None:
            self.failed = why
            self.fail_event.set()

    async def send(self, msg: dict) -> None:
        await asyncio.wait_for(self.ws.send(json.dumps(msg)), STEP_TIMEOUT_S)

    async def wait(self, ev_or_fut, what: str):
        """Waits for an event/future, failing fast if the client failed meanwhile."""
        waiter = asyncio.ensure_future(ev_or_fut.wait() if isinstance(ev_or_fut, asyncio.Event) else ev_or_fut)
        failw = asyncio.ensure_future(self.fail_event.wait())
        try:
            done, _ = await asyncio.wait({waiter, failw}, timeout=STEP_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            failw.cancel()
        if waiter in done:
            return waiter.result()
        waiter.cancel()
        if self.failed:
            raise RuntimeError(f"{self.name}: {self.failed} (while waiting for {what})")
        raise TimeoutError(f"{self.name}: timed out waiting for {what}")

    async def run_reader(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                t = msg.get("type")
                if t == "joined":
                    self.participant_id = msg["participant"]["id"]
                    self.joined.set()
                elif t == "publishAnswer":
                    if self.publish_answer and not self.publish_answer.done():
                        self.publish_answer.set_result(msg["sdp"])
                elif t == "subscribeOffer":
                    await self.on_subscribe_offer(msg)
                elif t == "error":
                    if msg.get("fatal"):
                        self.fail(f"fatal error: {msg.get('message')}")
                    else:
                        log(f"{self.name}: non-fatal error: {msg.get('message')}")
                elif t == "callEnded":
                    self.fail(f"callEnded: {msg.get('reason')}")
                # participantJoined/Updated/Left, participantCounts, activeSpeaker: not needed
        except asyncio.CancelledError:
            raise
        except Exception as e:  # socket closed or a handler failed
            if not self.bench.stopping:
                self.fail(f"signalling: {type(e).__name__}: {e}")
            return
        if not self.bench.stopping:
            self.fail("signalling socket closed")

    async def connect_ws(self) -> None:
        # No compression (the server does not need it; saves client CPU), no proxy (loopback).
        self.ws = await ws_connect(self.ws_url, open_timeout=STEP_TIMEOUT_S, compression=None, proxy=None, max_size=2**20)
        self.reader = asyncio.create_task(self.run_reader())
        await self.send({"type": "join", "protocolVersion": 1, "userName": self.name})
        await self.wait(self.joined, "joined")

    def new_pc(self, connected: asyncio.Event) -> RTCPeerConnection:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no default public STUN server

        @pc.on("connectionstatechange")
        def _state():
            if pc.connectionState == "connected":
                connected.set()
            elif pc.connectionState in ("failed", "closed") and not self.bench.stopping:
                self.fail(f"peer connection {pc.connectionState}")

        return pc

    # ------------------------------------------------------------------ sender
    async def join_sender(self) -> None:
        self.t_start = time.monotonic()
        await self.connect_ws()
        self.bench.senders_by_pid[self.participant_id] = self
        self.pc_send = self.new_pc(self.send_connected)
        self.track = SpeechTrack(self.bench.frames, self.offset)
        tr = self.pc_send.addTransceiver(self.track, direction="sendonly")
        await asyncio.wait_for(self.pc_send.setLocalDescription(await self.pc_send.createOffer()), STEP_TIMEOUT_S)
        self.publish_answer = asyncio.get_running_loop().create_future()
        await self.send(
            {
                "type": "publishOffer",
                "sdp": self.pc_send.localDescription.sdp,  # complete: aiortc gathered already
                "tracks": [{"mid": tr.mid, "trackId": self.track.id, "source": "microphone"}],
            }
        )
        sdp = await self.wait(self.publish_answer, "publishAnswer")
        await asyncio.wait_for(self.pc_send.setRemoteDescription(RTCSessionDescription(sdp, "answer")), STEP_TIMEOUT_S)
        self.hook_first_rtp(tr.sender)
        await self.wait(self.send_connected, "send transport connected")
        self.join_ms = (time.monotonic() - self.t_start) * 1000.0

    def hook_first_rtp(self, sender) -> None:
        """Reads the RTP timestamp of the first packet this sender sends (= aiortc's random
        timestamp origin, since the first packet's offset is 0). The sender calls
        `self.transport._send_rtp(bytes)`; the DTLS transport starts only after
        setRemoteDescription returns, so wrapping that one instance here sees every packet."""
        transport = sender.transport
        orig = transport._send_rtp

        async def send_rtp(data: bytes) -> None:
            if self.rtp_origin is None and len(data) >= 12:
                self.rtp_origin = int.from_bytes(data[4:8], "big")
                transport._send_rtp = orig  # only the first packet is needed
            await orig(data)

        transport._send_rtp = send_rtp

    # ------------------------------------------------------------------ receiver
    async def join_receiver(self) -> None:
        self.t_start = time.monotonic()
        await self.connect_ws()
        await self.wait(self.first_offer_done, "first subscribeOffer")
        await self.wait(self.recv_connected, "receive transport connected")
        self.join_ms = (time.monotonic() - self.t_start) * 1000.0

    async def on_subscribe_offer(self, msg: dict) -> None:
        # The mapping in the last answered offer is authoritative: re-read it on every offer.
        # Consumers look a frame's mid up in it, so a reused m-line maps to its new participant.
        self.mid_map = {t["mid"]: t for t in msg.get("tracks", [])}
        if self.pc_recv is None:
            self.pc_recv = self.new_pc(self.recv_connected)

            @self.pc_recv.on("track")
            def _on_track(track):
                tr = next((t for t in self.pc_recv.getTransceivers() if t.receiver.track is track), None)
                self.consumers.append(asyncio.create_task(self.consume(track, tr)))

        pc = self.pc_recv
        await asyncio.wait_for(pc.setRemoteDescription(RTCSessionDescription(msg["sdp"], "offer")), STEP_TIMEOUT_S)
        await asyncio.wait_for(pc.setLocalDescription(await pc.createAnswer()), STEP_TIMEOUT_S)
        await self.send({"type": "subscribeAnswer", "sdp": pc.localDescription.sdp})
        self.first_offer_done.set()

    async def consume(self, track, transceiver) -> None:
        """Pulls decoded frames, resamples them to 16 kHz mono, counts and times them."""
        res = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        receiver = transceiver.receiver if transceiver is not None else None
        mapper = getattr(receiver, "_RTCRtpReceiver__timestamp_mapper", None)
        bench = self.bench
        D = bench.codec_delay
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                n = 0
                for f in res.resample(frame):
                    n += f.samples
                    if self.record is not None:
                        self.record.append((now, None, f.to_ndarray().reshape(-1).copy()))
                self.samples16 += n
                if self.first_frame_t is None:
                    self.first_frame_t = now
                if not bench.in_window:
                    continue
                # which sender? (mid -> participant from the last subscribeOffer)
                entry = self.mid_map.get(transceiver.mid) if transceiver is not None else None
                snd = bench.senders_by_pid.get(entry["participantId"]) if entry else None
                if snd is None or snd.rtp_origin is None or mapper is None or mapper._origin is None:
                    self.unmapped += 1
                    continue
                raw = (mapper._origin + frame.pts) & 0xFFFFFFFF  # undo aiortc's rebasing
                m = ((raw - snd.rtp_origin) & 0xFFFFFFFF) // RTP_PER_FRAME
                consumed = snd.track.consumed
                for half in (0, FRAME // 2):  # per 10 ms of received audio
                    k = (FRAME * m - D + half) // FRAME  # input frame holding its first sample
                    if 0 <= k < len(consumed):
                        self.lat_ms.append((now - consumed[k]) * 1000.0)
                    else:
                        self.unmapped += 1
        except (MediaStreamError, asyncio.CancelledError):
            return

    # ------------------------------------------------------------------ shutdown
    async def close(self) -> None:
        for t in self.consumers:
            t.cancel()
        for pc in (self.pc_send, self.pc_recv):
            if pc is not None:
                try:
                    await asyncio.wait_for(pc.close(), 5.0)
                except Exception:
                    pass
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.send(json.dumps({"type": "leave"})), 2.0)
            except Exception:
                pass
            try:
                await asyncio.wait_for(self.ws.close(), 3.0)
            except Exception:
                pass
        if self.reader is not None:
            self.reader.cancel()


class Bench:
    def __init__(self, a, frames: np.ndarray, codec_delay: int):
        self.a = a
        self.frames = frames
        self.codec_delay = codec_delay
        self.senders_by_pid: dict[str, Client] = {}
        self.in_window = False
        self.window: tuple[float, float] | None = None
        self.stopping = False
        self.pairs: list[tuple[Client, Client]] = []

    async def setup_pair(self, i: int, base_http: str, run_id: str, sem: asyncio.Semaphore) -> None:
        room = f"aiortc-{run_id}-{i}"
        ws = base_http.replace("http://", "ws://", 1).rstrip("/") + "/ws/" + room
        # spread the senders over the file so that they do not all speak/pause together
        offset = (i * 97) % len(self.frames)
        snd = Client(self, ws, f"s{i}", publish=True, offset=offset)
        rcv = Client(self, ws, f"r{i}", publish=False)
        if self.a.check_audio and i == 0:
            rcv.record = []
        self.pairs.append((snd, rcv))
        async with sem:
            try:
                await asyncio.wait_for(snd.join_sender(), JOIN_TIMEOUT_S)
            except Exception as e:
                snd.fail(f"join: {type(e).__name__}: {e}")
                rcv.fail("not started: its sender failed")
                log(f"pair {i}: sender failed: {snd.failed}")
                return
            try:
                await asyncio.wait_for(rcv.join_receiver(), JOIN_TIMEOUT_S)
            except Exception as e:
                rcv.fail(f"join: {type(e).__name__}: {e}")
                log(f"pair {i}: receiver failed: {rcv.failed}")


def start_server(path: str) -> tuple[subprocess.Popen, str, str]:
    """Starts our server on 127.0.0.1, port 0; returns (process, http url, log path)."""
    logf = tempfile.NamedTemporaryFile(prefix="daily-server-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [path, "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=logf,  # a file, not a pipe nobody reads (a full pipe would block the server)
        text=True,
        env={k: v for k, v in os.environ.items() if k != "DAILY_API_KEY"},
    )
    deadline = time.monotonic() + 10
    url = None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on" in line:
            url = line.strip().rsplit(" ", 1)[1]
            break
    if url is None:
        stop_server(proc)
        raise RuntimeError(f"server did not print its URL (log: {logf.name})")
    return proc, url, logf.name


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def run(a, bench: Bench, base_http: str, server_pid: int | None) -> dict:
    run_id = uuid.uuid4().hex[:8]
    sem = asyncio.Semaphore(a.concurrency)
    rss0 = rss_kb()
    t_ramp = time.monotonic()
    await asyncio.gather(*(bench.setup_pair(i, base_http, run_id, sem) for i in range(a.pairs)))
    ramp_s = time.monotonic() - t_ramp
    rss1 = rss_kb()
    clients = [c for p in bench.pairs for c in p]
    log(f"ramp: {a.pairs} pairs in {ramp_s:.1f} s, {sum(1 for c in clients if c.failed)} clients failed")

    # Warm-up: at least --warmup seconds, then until every sender has caught up with its clock
    # (the ramp stalls the loop and the tracks then hand over their backlog at once, which
    # would otherwise land in the window and count as more than real time), at most
    # --warmup-max seconds: a stack that never catches up is measured as it is.
    await asyncio.sleep(a.warmup)
    senders = [s.track for s, _ in bench.pairs if s.track is not None and s.track.start is not None]
    t_w = time.monotonic()
    while True:
        behind = max((s.behind_s() for s in senders), default=0.0)
        if behind < 2 * FRAME_S or time.monotonic() - t_w > a.warmup_max - a.warmup:
            break
        await asyncio.sleep(0.25)
    log(f"warm-up {a.warmup + time.monotonic() - t_w:.1f} s; senders at most {behind * 1000:.0f} ms behind their clock at the window's start")
    # window
    receivers = [r for _, r in bench.pairs]
    m0, st0 = machine_busy_s(), steal_s()
    main0 = proc_cpu_s(os.getpid(), os.getpid())
    c0 = self_cpu_s()
    s0 = proc_cpu_s(server_pid) if server_pid else None
    n0 = [r.samples16 for r in receivers]
    t0 = time.monotonic()
    bench.in_window = True
    await asyncio.sleep(a.seconds)
    bench.in_window = False
    t1 = time.monotonic()
    bench.window = (t0, t1)
    n1 = [r.samples16 for r in receivers]
    c1 = self_cpu_s()
    s1 = proc_cpu_s(server_pid) if server_pid else None
    m1, st1 = machine_busy_s(), steal_s()
    main1 = proc_cpu_s(os.getpid(), os.getpid())
    wall = t1 - t0
    # CPU that other processes used meanwhile (the machine is shared), % of all cores: a figure
    # taken while this is high is not worth quoting.
    others = ((m1 - m0) - (c1 - c0) - ((s1 - s0) if server_pid else 0.0)) / wall / os.cpu_count() * 100.0

    expected = wall / FRAME_S
    ratios = [((b - a_) / FRAME) / expected if not r.failed else 0.0 for a_, b, r in zip(n0, n1, receivers)]
    lat = [v for r in receivers for v in r.lat_ms]
    joins = [c.join_ms for c in clients if c.join_ms is not None and not c.failed]
    errors = sum(1 for c in clients if c.failed)
    first_frame = [(r.first_frame_t - r.t_start) * 1000 for r in receivers if r.first_frame_t and r.t_start]
    sender_lag = [s.track.max_lag_s * 1000 for s, _ in bench.pairs if s.track]
    log(
        f"window {wall:.2f} s; other processes used {others:.1f} % of the machine ({os.cpu_count()} cores); "
        f"loadavg {os.getloadavg()[0]:.2f}; this process {(c1 - c0) / wall * 100:.1f} % of a core, of which the "
        f"main (asyncio) thread {(main1 - main0) / wall * 100:.1f} %; receivers' time to first frame p50 {pct(first_frame, 50)} p95 {pct(first_frame, 95)} ms; "
        f"worst sender hand-over lateness {max(sender_lag) if sender_lag else None} ms; "
        f"latency samples {len(lat)}, unmapped {sum(r.unmapped for r in receivers)}; rt ratios min {min(ratios):.4f} max {max(ratios):.4f}"
    )
    for c in clients:
        if c.failed:
            log(f"  {c.name}: {c.failed}")

    if a.check_audio:
        check_audio(bench)

    return {
        "stack": "aiortc",
        "pairs": a.pairs,
        "seconds": round(wall, 3),
        "cpu_pct_per_pair": (c1 - c0) / wall / a.pairs * 100.0,
        "server_cpu_pct": ((s1 - s0) / wall * 100.0) if server_pid else None,
        "rt_ratio_worst": min(ratios),
        "rt_ratio_median": statistics.median(ratios),
        "steal_pct": round((st1 - st0) / wall / os.cpu_count() * 100.0, 1),
        "rss_kb_per_client": (rss1 - rss0) / (2 * a.pairs),
        "latency_ms_p50": pct(lat, 50),
        "latency_ms_p95": pct(lat, 95),
        "join_ms_p50": pct(joins, 50),
        "join_ms_p95": pct(joins, 95),
        "errors": errors,
    }


def check_audio(bench: Bench) -> None:
    """Independent check of the RTP mapping on pair 0: align the received 16 kHz audio with what
    the sender's track handed over (one lag for the whole run, by cross-correlation) and derive
    the latency over the window from the audio alone: for received sample j (timestamped with the recv() of its frame) the aligned input
    sample j - lag was handed over with its 20 ms frame."""
    snd, rcv = bench.pairs[0]
    if not rcv.record or snd.track is None:
        log("check-audio: nothing recorded")
        return
    recv_audio = np.concatenate([x[2] for x in rcv.record])
    n_in = len(snd.track.consumed)
    sent = np.concatenate([bench.frames[(snd.offset + k) % len(bench.frames)] for k in range(n_in)])
    lag = best_lag(sent, recv_audio, max_lag=RATE * 2)
    # recv_audio index j was received at the time of its chunk; sample j ~ sent[j - lag]
    lat = []
    pos = 0
    w0, w1 = bench.window
    for t, _, chunk in rcv.record:
        for h in range(0, len(chunk) if w0 <= t <= w1 else 0, FRAME // 2):
            s = pos + h - lag
            k = s // FRAME
            if 0 <= k < n_in:
                lat.append((t - snd.track.consumed[k]) * 1000.0)
        pos += len(chunk)
    log(
        f"check-audio (pair 0, window): lag {lag} samples; latency from the audio alignment p50 {pct(lat, 50):.1f} "
        f"p95 {pct(lat, 95):.1f} ms; from the RTP mapping (window) p50 {pct(list(rcv.lat_ms), 50)} p95 {pct(list(rcv.lat_ms), 95)} ms"
    )


async def shutdown(bench: Bench) -> None:
    bench.stopping = True
    clients = [c for p in bench.pairs for c in p]
    sem = asyncio.Semaphore(20)

    async def one(c):
        async with sem:
            await c.close()

    try:
        await asyncio.wait_for(asyncio.gather(*(one(c) for c in clients), return_exceptions=True), 60.0)
    except asyncio.TimeoutError:
        log("shutdown: some clients did not close within 60 s")


async def amain(a, bench: Bench, base_http: str, server_pid: int | None) -> dict:
    try:
        return await run(a, bench, base_http, server_pid)
    finally:
        await shutdown(bench)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=1)
    p.add_argument("--seconds", type=float, default=20.0, help="measured window (s)")
    p.add_argument("--warmup", type=float, default=3.0, help="minimum seconds between the last join and the window")
    p.add_argument("--warmup-max", type=float, default=15.0, help="maximum warm-up while senders are still behind their clock")
    p.add_argument("--concurrency", type=int, default=10, help="pairs joining at a time")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--server-url", help="an already running server, http://127.0.0.1:PORT")
    g.add_argument("--server-bin", help="start this daily-server binary on 127.0.0.1 port 0 and measure its CPU")
    p.add_argument("--check-audio", action="store_true", help="also check the latency mapping on pair 0 from its audio")
    p.add_argument("--max-run-s", type=float, default=None, help="hard limit for the whole run (default: computed)")
    a = p.parse_args()

    use_loopback_only()
    for name in ("_send_rtp",):
        from aiortc.rtcdtlstransport import RTCDtlsTransport

        assert hasattr(RTCDtlsTransport, name), f"aiortc changed: RTCDtlsTransport.{name} is gone"
    from aiortc import rtcrtpreceiver

    assert hasattr(rtcrtpreceiver, "TimestampMapper"), "aiortc changed: no TimestampMapper"

    frames = read_speech()
    codec_delay, corr = calibrate(frames)
    log(f"codec path delay D = {codec_delay} samples at 16 kHz ({codec_delay / 16:.2f} ms), correlation {corr:.3f}")

    server = None
    server_pid = None
    if a.server_bin:
        server, base_http, server_log = start_server(a.server_bin)
        server_pid = server.pid
        log(f"server {base_http} pid {server_pid}, log {server_log}")
    else:
        base_http = a.server_url

    # Hard limit: ramp (each client bounded by JOIN_TIMEOUT_S, pairs joining `concurrency` at
    # a time), warm-up, window, shutdown. Beyond it: kill the server and exit.
    max_run = a.max_run_s or (math.ceil(a.pairs / a.concurrency) * 2 * JOIN_TIMEOUT_S + max(a.warmup, a.warmup_max) + a.seconds + 90)
    done = threading.Event()

    def watchdog():
        if not done.wait(max_run):
            log(f"watchdog: the run exceeded {max_run:.0f} s, giving up")
            if server is not None:
                server.kill()
            os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()
    bench = Bench(a, frames, codec_delay)
    try:
        result = asyncio.run(amain(a, bench, base_http, server_pid))
    finally:
        if server is not None:
            stop_server(server)
            # keep the server's log only when it says something worth reading
            with open(server_log, errors="replace") as f:
                notable = [line for line in f if " WARN " in line or " ERROR " in line]
            if notable:
                log(f"server log kept ({len(notable)} WARN/ERROR lines): {server_log}")
                for line in notable[:10]:
                    log("  " + line.rstrip())
            else:
                os.unlink(server_log)
        done.set()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
