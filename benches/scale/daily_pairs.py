"""N pairs of our CallClients in one process: the SDK's side of the scale benchmark (issue 6).

    python benches/scale/daily_pairs.py --pairs N [--seconds 20] [--server embedded|process]

Each pair is a sender and a receiver in a room of its own on our room server: embedded in this
process (its CPU counts in the process figure) or `daily-server` in a separate process (its CPU
read from /proc and reported apart). Every sender publishes a CustomAudioTrack as its microphone
and writes real speech (data/librivox_16k.wav, looped) the way pipecat does: 20 ms writes with a
completion, at most 100 ms queued; one feeder thread drives every sender. Every receiver renders
the sender's microphone at 16 kHz in 20 ms callbacks.

Prints one JSON line (the last line of stdout) with the keys of benches/scale/aiortc_pairs.py:

- cpu_pct_per_pair: process user+sys CPU over the measured window / wall time / pairs, in % of
  one core (with the embedded server this includes the server);
- server_cpu_pct: the separate server process's CPU over the window (% of one core), or null;
- rt_ratio_worst / rt_ratio_median: per receiver, frames rendered from received audio (rendered
  minus concealed by the jitter buffer's PLC) / frames due, between its last callbacks before
  and at the end of the window (so the 20 ms callback granularity does not enter the ratio).
  Stricter than the issue's definition: audio that arrived, but later than the jitter buffer's
  delay, counts as missing for the PLC played while waiting for it;
- rx_ratio_worst / rx_ratio_median: per receiver, RTP packets (20 ms frames) received during the
  window / packets expected, expected being received + lost from the sequence numbers (RFC 3550
  appendix A.3): the issue's "frames received / expected". It does not see lateness; the played
  ratio above and the latency do;
- steal_pct: CPU time the hypervisor took from this VM during the window (/proc/stat steal), in
  % of all cores. While it is high, every thread here loses the CPU at unpredictable moments and
  audio arrives in bursts: such a run says more about the machine than about the SDK;
- rss_kb_per_client: RSS after every client joined and audio flowed for the warm-up, minus RSS
  before the first client was made, / 2N; rss_kb_first_pair: what the first pair added (it
  joins alone first); rss_kb_per_client_beyond_first_pair: the rest / (2N - 2);
- latency_ms_p50 / p95: from the moment the sender's media clock consumed a sample (its write's
  completion) to the renderer callback delivering it, aligned by cross-correlation
  (speechmetrics.latencies_ms, the main job's method), over up to --latency-pairs pairs spread
  evenly (their received PCM is kept; the other receivers only count frames), leaving out pairs
  below 0.99 of real time and pairs whose received audio matches the sent speech with a
  similarity below 0.8 (their alignment is unreliable; counted in latency_pairs_skipped), null
  when none is left;
- join_ms_p50 / p95: CallClient.join -> completion, every client (senders publish, so theirs
  include the send transport's ICE + DTLS);
- threads, fds: of this process, with every client in the call.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "examples"))
import speechmetrics as sm  # noqa: E402
from hoststat import steal_s  # noqa: E402  (same folder)

from daily import CallClient, CustomAudioSource, CustomAudioTrack, Daily, EventHandler  # noqa: E402

RATE = 16000
CHUNK = RATE // 50  # 20 ms per write and per render callback
AHEAD = 5  # writes queued per sender (100 ms)
LATENCY_MIN_SIMILARITY = 0.8  # a latency pair's audio must match what was sent this well
CLK_TCK = os.sysconf("SC_CLK_TCK")


def rss_kb(pid: str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


class Receiver(EventHandler):
    def __init__(self, keep_pcm: bool) -> None:
        self.client: CallClient | None = None
        self.frames = 0
        self.last_t = 0.0  # time of the latest callback
        self.keep_pcm = keep_pcm
        self.pcm: list[bytes] = []
        self.callbacks: list[tuple[int, int, float]] = []
        self.sender_id: str | None = None
        self.rendering = threading.Event()

    def on_participant_joined(self, participant):
        self.sender_id = participant["id"]
        self.client.set_audio_renderer(participant["id"], self.on_audio, audio_source="microphone",
                                       sample_rate=RATE, callback_interval_ms=20)

    def on_audio(self, participant_id, audio, audio_source):
        n = audio.num_audio_frames
        if self.keep_pcm:
            self.callbacks.append((self.frames, n, time.monotonic()))
            self.pcm.append(audio.audio_frames)
        self.frames += n
        self.last_t = time.monotonic()
        self.rendering.set()

    def snapshot(self) -> tuple[int, float, int, int, int]:
        """(frames rendered, time of the latest callback, ms concealed so far, RTP packets
        received so far, packets lost so far)."""
        frames, t = self.frames, self.last_t
        st = self.client.media_stats()["receive"].get(self.sender_id or "", {}).get("microphone", {})
        return frames, t, int(st.get("concealedMs", 0)), int(st.get("packetsReceived", 0)), int(st.get("packetsLost", 0))


class Sender:
    def __init__(self, keep_times: bool) -> None:
        self.source = CustomAudioSource(RATE, 1)
        self.track = CustomAudioTrack(self.source)
        self.client = CallClient()
        self.pos = 0  # samples written
        self.in_flight = 0
        self.lock = threading.Lock()
        self.keep_times = keep_times
        self.consumed: list[tuple[int, float]] = []
        self.consumed_end = 0  # samples the media clock has consumed
        self._done = self._completion  # one bound method, not a closure per write

    def _completion(self, num_frames: int) -> None:
        t = time.monotonic()
        with self.lock:
            self.in_flight -= 1
            if self.keep_times:
                self.consumed.append((self.consumed_end + num_frames, t))
                self.consumed_end += num_frames


JOIN_ERRORS: list[str] = []
JOIN_FAILED: set[int] = set()  # id() of clients whose join failed


def join_all(clients: list[tuple[CallClient, dict | None, str]], parallel: int, timeout: float) -> list[float]:
    """Joins every client, at most `parallel` joins outstanding; returns join times (ms)."""
    if not clients:
        return []
    sem = threading.Semaphore(parallel)
    times: list[float] = []
    errors: list[str] = []
    done = threading.Event()
    remaining = [len(clients)]
    lock = threading.Lock()

    def completion_for(t0: float, client):
        def completion(data, error):
            ms = (time.monotonic() - t0) * 1000
            with lock:
                (errors.append(str(error)) if error else times.append(ms))
                if error:
                    JOIN_FAILED.add(id(client))
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set()
            sem.release()
        return completion

    for client, settings, url in clients:
        if not sem.acquire(timeout=timeout):
            raise RuntimeError("joins stopped completing")
        client.join(url, client_settings=settings, completion=completion_for(time.monotonic(), client))
    if not done.wait(timeout):
        raise RuntimeError(f"{remaining[0]} joins did not complete in {timeout} s")
    if errors:
        # Reported, not fatal: the run goes on with the pairs that joined (see `errors`).
        print(f"{len(errors)} joins failed, first: {errors[0]}", file=sys.stderr)
        JOIN_ERRORS.extend(errors)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, required=True)
    p.add_argument("--seconds", type=float, default=20.0, help="measured window (s)")
    p.add_argument("--warmup", type=float, default=3.0, help="audio flowing before the window (s)")
    p.add_argument("--server", choices=["embedded", "process"], default="embedded")
    p.add_argument("--server-bin", default=None, help="daily-server binary for --server process")
    p.add_argument("--latency-pairs", type=int, default=10)
    p.add_argument("--join-parallel", type=int, default=8)
    p.add_argument("--worker-threads", type=int, default=None)
    p.add_argument("--video-call", default=None, metavar="WxH",
                   help="also run a WxH@30 video call (sender + viewer, benches/scale/video_call.py, a process of "
                        "its own) in a room of the same server for the whole run; its CPU is not counted here")
    a = p.parse_args()
    n = a.pairs

    speech, rate = sm.read_wav_mono16(os.path.join(ROOT, "data", "librivox_16k.wav"))
    assert rate == RATE
    total = int((a.warmup + a.seconds + 10) * RATE)
    sent = np.tile(speech, total // len(speech) + 1)[:total]
    pcm = sent.astype("<i2").tobytes()

    if a.worker_threads:
        Daily.init(worker_threads=a.worker_threads)
    else:
        Daily.init()
    server = None
    proc = None
    if a.server == "embedded":
        from daily.server import RoomServer
        server = RoomServer(host="127.0.0.1", port=0).start()
        base = server.url
    else:
        exe = a.server_bin or shutil.which("daily-server")
        proc = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", "0"], stdout=subprocess.PIPE, text=True)
        # Whatever happens below, the server process must not outlive this one.
        import atexit
        atexit.register(lambda: proc.poll() is None and proc.kill())
        line = proc.stdout.readline()
        base = next(w for w in line.split() if w.startswith("http://")).rstrip("/")

    video = None
    if a.video_call:
        video = subprocess.Popen([sys.executable, os.path.join(HERE, "video_call.py"), "--url", f"{base}/video-bg", "--size", a.video_call],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        import atexit
        atexit.register(lambda: video.poll() is None and video.kill())
        ready = json.loads(video.stdout.readline() or "{}")
        if not ready.get("ready"):
            print("the video call did not start", file=sys.stderr)
            return 1

    sample = set(np.linspace(0, n - 1, min(n, a.latency_pairs)).round().astype(int).tolist())
    rss0 = rss_kb()
    receivers = []
    for i in range(n):
        r = Receiver(keep_pcm=i in sample)
        r.client = CallClient(event_handler=r)
        receivers.append(r)
    senders = [Sender(keep_times=i in sample) for i in range(n)]
    for s in senders:
        s.client.set_user_name("sender")

    url_of = lambda i: f"{base}/pair-{i}"  # noqa: E731
    mic = lambda s: {"inputs": {"microphone": {"isEnabled": True, "settings": {"customTrack": {"id": s.track.id}}}}}  # noqa: E731
    # The first pair alone, so that what every further client costs can be told apart from
    # what the first one brings (engine threads, server, codec tables).
    join_ms = join_all([(receivers[0].client, None, url_of(0)), (senders[0].client, mic(senders[0]), url_of(0))], 1, 30)
    receivers[0].rendering.wait(5)
    rss_first = rss_kb()
    t_join = time.monotonic()
    join_ms += join_all([(r.client, None, url_of(i)) for i, r in enumerate(receivers) if i], a.join_parallel, 60 + n)
    join_ms += join_all([(s.client, mic(s), url_of(i)) for i, s in enumerate(senders) if i], a.join_parallel, 60 + n)
    joined_s = time.monotonic() - t_join

    stop = threading.Event()
    step = 2 * CHUNK

    def feeder() -> None:
        # Every 20 ms, top every sender up to AHEAD writes; a sender whose queue is full (its
        # completions are late) is skipped this round, as a real bot would wait.
        tick = time.monotonic()
        while not stop.is_set():
            for s in senders:
                with s.lock:
                    if s.in_flight >= AHEAD:
                        continue
                    s.in_flight += 1
                k = s.pos % len(sent)
                s.source.write_frames(pcm[2 * k : 2 * k + step], completion=s._done)
                s.pos += CHUNK
            tick += 0.02
            delay = tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                tick = time.monotonic()

    th = threading.Thread(target=feeder, name="feeder", daemon=True)
    th.start()
    time.sleep(a.warmup)
    not_rendering = sum(not r.rendering.is_set() for r in receivers)
    rss1 = rss_kb()
    threads = threading.active_count()
    native_threads = len(os.listdir("/proc/self/task"))
    fds = len(os.listdir("/proc/self/fd"))

    f0 = [r.snapshot() for r in receivers]
    c0, w0, st0 = self_cpu_s(), time.monotonic(), steal_s()
    s0 = proc_cpu_s(proc.pid) if proc else None
    time.sleep(a.seconds)
    f1 = [r.snapshot() for r in receivers]
    c1, w1, st1 = self_cpu_s(), time.monotonic(), steal_s()
    s1 = proc_cpu_s(proc.pid) if proc else None
    stop.set()
    th.join(5)

    wall = w1 - w0
    # Pairs whose sender and receiver both joined (a failed join is counted in `errors`).
    ok = [i for i in range(n) if id(senders[i].client) not in JOIN_FAILED
          and id(receivers[i].client) not in JOIN_FAILED and receivers[i].sender_id is not None]
    ratio = {
        i: ((f1[i][0] - f0[i][0]) - (f1[i][2] - f0[i][2]) * RATE // 1000) / max((f1[i][1] - f0[i][1]) * RATE, 1.0)
        for i in ok
    }
    ratios = sorted(ratio.values()) or [0.0]
    # The issue's own definition, frames received / expected, as RFC 3550 appendix A.3 counts
    # it: expected = received + lost (the gaps in the sequence numbers), whether or not a packet
    # came in time to be played.
    rx = sorted(((f1[i][3] - f0[i][3]) / max((f1[i][3] - f0[i][3]) + (f1[i][4] - f0[i][4]), 1) for i in ok)) or [0.0]
    cores = os.cpu_count() or 1
    steal_pct = (st1 - st0) / wall / cores * 100
    # Latency only where audio kept flowing: an overloaded pair's received audio is mostly PLC,
    # and aligning it to the sent speech gives meaningless (even negative) figures.
    lat = []
    lat_skipped = 0
    for i in sorted(i for i in set(sample) & set(ok) if ratio[i] >= 0.99):
        r, s = receivers[i], senders[i]
        got = np.frombuffer(b"".join(r.pcm), dtype="<i2")
        if len(got) < RATE:
            continue
        with s.lock:
            consumed = sorted(s.consumed)
        lag = sm.best_lag(sent[: len(got) + 3 * RATE], got, max_lag=3 * RATE)
        # An alignment is only as good as the audio: where concealment or time-stretching
        # reshaped it, the best lag can be far off (runs printed latencies of -6 s).
        if sm.similarity(sent[: len(got) + 3 * RATE], got, RATE, lag=lag) < LATENCY_MIN_SIMILARITY:
            lat_skipped += 1
            continue
        lat.extend(sm.latencies_ms(consumed, r.callbacks, lag, RATE, RATE // 100).tolist())

    # Where audio went missing, if it did: totals over every sender and receiver.
    diag = {"framesSent": 0, "framesDropped": 0, "packetsReceived": 0, "packetsLost": 0, "packetsLate": 0, "concealedMs": 0}
    for s in senders:
        st = s.client.media_stats().get("send", {})
        for k in ("framesSent", "framesDropped"):
            diag[k] += int(st.get(k, 0))
    for r in receivers:
        st = r.client.media_stats()["receive"].get(r.sender_id or "", {}).get("microphone", {})
        for k in ("packetsReceived", "packetsLost", "packetsLate", "concealedMs"):
            diag[k] += int(st.get(k, 0))

    for c in [s.client for s in senders] + [r.client for r in receivers]:
        c.leave()
    time.sleep(0.5)
    for c in [s.client for s in senders] + [r.client for r in receivers]:
        c.release()
    video_out = None
    if video:
        video.stdin.close()
        video_out = json.loads(video.stdout.readline() or "{}")
        video.wait(10)
    if server:
        server.stop()
    if proc:
        proc.terminate()
        proc.wait(5)

    def pct(v, q):
        return round(float(np.percentile(v, q)), 1) if len(v) else None

    out = {
        "stack": "daily",
        "pairs": n,
        "server": a.server,
        "seconds": round(wall, 2),
        "cpu_pct_per_pair": round((c1 - c0) / wall / n * 100, 3),
        "server_cpu_pct": round((s1 - s0) / wall * 100, 2) if proc else None,
        "rt_ratio_worst": round(ratios[0], 4),
        "rt_ratio_median": round(ratios[len(ratios) // 2], 4),
        "rx_ratio_worst": round(rx[0], 4),
        "rx_ratio_median": round(rx[len(rx) // 2], 4),
        "steal_pct": round(steal_pct, 1),
        "rss_kb_per_client": round((rss1 - rss0) / (2 * n), 1),
        "rss_kb_first_pair": rss_first - rss0,
        "rss_kb_per_client_beyond_first_pair": round((rss1 - rss_first) / (2 * (n - 1)), 1) if n > 1 else None,
        "latency_ms_p50": pct(lat, 50),
        "latency_ms_p95": pct(lat, 95),
        "latency_pairs_skipped": lat_skipped,
        "join_ms_p50": pct(join_ms, 50),
        "join_ms_p95": pct(join_ms, 95),
        "joined_all_s": round(joined_s, 2),
        "not_rendering_at_window_start": not_rendering,
        "threads_python": threads,
        "threads": native_threads,
        "fds": fds,
        "errors": len(JOIN_ERRORS),
        "pairs_measured": len(ok),
        "totals": diag,
        "video_call": a.video_call,
        "video_call_result": video_out,
    }
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
