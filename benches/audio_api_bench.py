"""Audio API figures of issue 3, ours and the peers', measured in one run.

    python3 benches/audio_api_bench.py --peer-python /tmp/peer-venv/bin/python [--json FILE]

Run it with the Python that has *our* `daily` installed (the system Python 3.11). The peers live
in a separate venv, because daily-python's import name is also `daily`:

    python3 -m venv /tmp/peer-venv
    /tmp/peer-venv/bin/pip install daily-python==0.36.0 webrtcvad soxr numpy onnxruntime
    /tmp/peer-venv/bin/pip install --no-deps silero-vad    # only for its ONNX model; no torch

Each measurement runs in a fresh subprocess, one after another (never two at once): the script
re-invokes itself as `--worker NAME`, the worker prints one JSON line. Ours run under
`--ours-python` (default: the interpreter running this script), the peers under `--peer-python`.
All workers run `--rounds` times (default 3), interleaved (ours, daily-python, ..., then again),
and each figure is the median over rounds of that statistic; the table also lists each round's
value, because this VM's speed drifts by tens of % from minute to minute (each worker reports a
fixed pure-Python loop's time, `calib_us`, to show it). A run during which other processes used
more than `--max-others` % of the machine (see below) is kept but marked contended and re-run
(up to `--retries` times while the whole run is younger than `--retry-budget-s`); medians use
the clean runs, contended ones only when a figure has no clean run (the table then says so).
About 70 s on a quiet machine with the defaults, up to ~3 min on a busy one.
A figure whose API or package is missing is skipped with a note, never guessed.

Figures (all times per call, measured around the call itself):
- write_frames: `Daily.init()`, `CustomAudioSource(16000, 1)`, no call joined (pacing still
  applies); 20 ms chunks (640 bytes) written with a completion callback, the writer kept at most
  100 ms (5 chunks) ahead of consumption by waiting on completions. Caller CPU of each
  `write_frames` call = `time.thread_time_ns()` delta (median, p95 in µs) over `--calls` calls
  after 10 warm-up calls; also its wall time, and the whole process's CPU (getrusage, user+sys,
  all threads) per second of audio over the measured calls.
  The median of an empty pair of `thread_time_ns()` reads is reported too (it is included in
  the per-call figure, for both SDKs). For context, two more figures per SDK: a pure-Python
  no-op called in the same place (the thread just woke from waiting on a completion, so caches
  and TLB are cold: on this VM that alone costs several µs), and 100 back-to-back writes queued
  ahead without waiting (caches warm).
- VAD per 10 ms frame over data/librivox_16k.wav (16 kHz mono, 24.7 s), `time.perf_counter_ns()`
  around each call, after a 100-frame warm-up on a separate instance:
  `Daily.create_native_vad(1000, 16000, 1).analyze_frames(320 bytes)` (ours, daily-python);
  webrtcvad `Vad(2).is_speech(320 bytes, 16000)`; Silero v5 ONNX (the model file shipped in the
  silero-vad package) run with onnxruntime directly, 1 intra-op and 1 inter-op thread, on its
  native 512-sample (32 ms) window plus 64 samples of context: the timed step is int16 → float32,
  prepend context, `session.run`, keep state; reported per call and per 10 ms (call / 3.2).
- soxr streaming (`soxr.ResampleStream(in, out, 1, dtype='int16', quality=Q)`, Q = HQ and VHQ):
  `resample_chunk` time per 10 ms chunk, 16k→48k on the speech file and 48k→16k on the speech
  file brought to 48 kHz (soxr VHQ, outside the timing), 3 passes with a fresh stream each.
  soxr's stream is bursty (most calls only buffer their input, every 3rd (HQ) or 7th (VHQ) call
  returns a block), so the *mean* (total time / chunks) is its cost per 10 ms of audio and the
  median only the cost of a call that buffers. Quality: SNR (dB) of the output against the
  analytic sine, tones of amplitude 0.5 full scale and 1 s fed in 10 ms chunks (no flush),
  output from 100 ms on; the resampler's delay is found by a least-squares fit of the tone's phase
  (a continuous-lag cross-correlation for a pure tone) while the reference amplitude stays the
  nominal one, so a gain error counts as noise; the fitted gain and delay are reported too. Done
  with int16 in and out (what an SDK passes around; soxr dithers its int16 output) and with
  float32 in and out (the filter alone).
  Our Rust resampler's figures come from a Rust bench, not from this script.

Prints a markdown table (and the machine, date, interpreters) on stdout; `--json FILE` also writes
every figure as JSON (`--json -` writes the JSON to stdout and the table to stderr). The machine
is shared: for each worker the script records how much CPU *other* processes used meanwhile
(/proc/stat minus the worker's own rusage, `others_busy_pct`, % of all cores) and prints the
worst; figures taken while that is high are not worth quoting.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
SPEECH = os.path.join(HERE, "..", "data", "librivox_16k.wav")
DEFAULT_PEER_PYTHON = "/tmp/peer-venv/bin/python"
WARMUP_CALLS = 10
AHEAD_CHUNKS = 5  # 5 x 20 ms = 100 ms ahead of consumption


# --------------------------------------------------------------------------------------------
# helpers shared by the workers (standard library only: ours runs without numpy)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def summary_us(ns: list[int]) -> dict:
    us = [v / 1000.0 for v in ns]
    return {
        "n": len(us),
        "median_us": statistics.median(us),
        "p95_us": pct(us, 95),
        "mean_us": statistics.fmean(us),
        "min_us": min(us),
        "max_us": max(us),
    }


def read_speech() -> bytes:
    with wave.open(SPEECH, "rb") as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2, SPEECH
        return w.readframes(w.getnframes())


def frames_10ms(pcm: bytes, rate: int = 16000) -> list[bytes]:
    n = rate // 100 * 2
    return [pcm[i : i + n] for i in range(0, len(pcm) - n + 1, n)]


def sdk_identity() -> dict:
    import daily

    info = {"daily_file": daily.__file__}
    try:
        from importlib import metadata

        for dist in ("daily-python", "open-daily"):
            try:
                info["dist"] = f"{dist} {metadata.version(dist)}"
                break
            except metadata.PackageNotFoundError:
                pass
    except Exception:  # pragma: no cover - best effort only
        pass
    return info


# --------------------------------------------------------------------------------------------
# workers: each runs in its own process and returns a JSON-able dict


def worker_writeframes(calls: int) -> dict:
    import resource
    import threading

    import daily

    out = sdk_identity()
    daily.Daily.init()
    src = daily.CustomAudioSource(16000, 1)
    chunk = bytes(640)  # 20 ms at 16 kHz mono; silence (the source does not look at the content)
    slots = threading.Semaphore(AHEAD_CHUNKS)
    completed = [0]
    all_done = threading.Event()
    total = WARMUP_CALLS + calls

    def on_done(_n):
        completed[0] += 1
        slots.release()
        if completed[0] == total:
            all_done.set()

    cpu_ns: list[int] = []
    wall_ns: list[int] = []
    returned = set()
    ru0 = t0 = None
    for i in range(total):
        if i == WARMUP_CALLS:
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
        slots.acquire()
        w0 = time.perf_counter_ns()
        c0 = time.thread_time_ns()
        r = src.write_frames(chunk, completion=on_done)
        c1 = time.thread_time_ns()
        w1 = time.perf_counter_ns()
        returned.add(r)
        if i >= WARMUP_CALLS:
            cpu_ns.append(c1 - c0)
            wall_ns.append(w1 - w0)
    if not all_done.wait(timeout=AHEAD_CHUNKS * 0.02 + 5.0):
        raise RuntimeError(f"only {completed[0]} of {total} completions fired")
    t1 = time.perf_counter()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    audio_s = calls * 0.020
    empty: list[int] = []  # the cost of the two clock reads themselves, for context
    for _ in range(calls):
        c0 = time.thread_time_ns()
        c1 = time.thread_time_ns()
        empty.append(c1 - c0)

    # Baseline in the same position: the thread has just woken from waiting on a completion
    # (caches cold), then calls a pure-Python no-op with the same arguments. The pacing write
    # happens before the timed call, outside the timing.
    def noop(frames, completion=None):
        return 320

    pace = daily.CustomAudioSource(16000, 1)
    noop_ns: list[int] = []
    for i in range(WARMUP_CALLS + calls):
        slots.acquire()
        pace.write_frames(chunk, completion=lambda _n: slots.release())
        c0 = time.thread_time_ns()
        noop(chunk, completion=on_done)
        c1 = time.thread_time_ns()
        if i >= WARMUP_CALLS:
            noop_ns.append(c1 - c0)
    # Hot: back-to-back writes queued ahead (no wait between calls, caches warm).
    # Every completion is awaited before the sources go away: daily-python deadlocks when a
    # source with pending completions is freed (its destructor waits for them with the GIL held).
    hot_src = daily.CustomAudioSource(16000, 1)
    hot_ns: list[int] = []
    hot_total = WARMUP_CALLS + 100
    hot_done = threading.Semaphore(0)
    for i in range(hot_total):
        c0 = time.thread_time_ns()
        hot_src.write_frames(chunk, completion=lambda _n: hot_done.release())
        c1 = time.thread_time_ns()
        if i >= WARMUP_CALLS:
            hot_ns.append(c1 - c0)
    for _ in range(hot_total):
        if not hot_done.acquire(timeout=hot_total * 0.02 + 5.0):
            raise RuntimeError("back-to-back writes did not complete")
    for _ in range(AHEAD_CHUNKS):
        if not slots.acquire(timeout=5.0):
            raise RuntimeError("the pacing writes did not complete")
    proc_cpu_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    out.update(
        {
            "calls": calls,
            "warmup_calls": WARMUP_CALLS,
            "returned": sorted(returned),
            "caller_cpu": summary_us(cpu_ns),
            "caller_wall": summary_us(wall_ns),
            "clock_overhead": summary_us(empty),
            "noop_after_wake": summary_us(noop_ns),
            "hot_back_to_back": summary_us(hot_ns),
            "audio_s": audio_s,
            "wall_s": t1 - t0,
            "process_cpu_ms_per_audio_s": proc_cpu_s * 1000.0 / audio_s,
        }
    )
    return out


def worker_nativevad() -> dict:
    import daily

    out = sdk_identity()
    if not hasattr(daily.Daily, "create_native_vad"):
        return {**out, "skipped": "Daily.create_native_vad is missing from this daily package"}
    frames = frames_10ms(read_speech())
    warm = daily.Daily.create_native_vad(reset_period_ms=1000, sample_rate=16000, channels=1)
    for f in frames[:100]:
        warm.analyze_frames(f)
    vad = daily.Daily.create_native_vad(reset_period_ms=1000, sample_rate=16000, channels=1)
    ns: list[int] = []
    speech = 0
    for f in frames:
        t0 = time.perf_counter_ns()
        c = vad.analyze_frames(f)
        t1 = time.perf_counter_ns()
        ns.append(t1 - t0)
        speech += c >= 0.5
    out.update({"per_call": summary_us(ns), "speech_frames_pct": 100.0 * speech / len(frames)})
    return out


def worker_webrtcvad() -> dict:
    try:
        import webrtcvad
    except ImportError as e:
        return {"skipped": f"webrtcvad not importable: {e}"}
    frames = frames_10ms(read_speech())
    warm = webrtcvad.Vad(2)
    for f in frames[:100]:
        warm.is_speech(f, 16000)
    vad = webrtcvad.Vad(2)
    ns: list[int] = []
    speech = 0
    for f in frames:
        t0 = time.perf_counter_ns()
        s = vad.is_speech(f, 16000)
        t1 = time.perf_counter_ns()
        ns.append(t1 - t0)
        speech += bool(s)
    return {"per_call": summary_us(ns), "speech_frames_pct": 100.0 * speech / len(frames)}


def silero_model_path() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = os.path.join(list(spec.submodule_search_locations)[0], "data", "silero_vad.onnx")
    return p if os.path.exists(p) else None


def worker_silero() -> dict:
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as e:
        return {"skipped": f"numpy/onnxruntime not importable: {e}"}
    path = silero_model_path()
    if path is None:
        return {"skipped": "silero-vad package (its silero_vad.onnx) not installed"}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
    pcm = np.frombuffer(read_speech(), dtype=np.int16)
    win, ctx_len = 512, 64
    windows = [pcm[i : i + win] for i in range(0, len(pcm) - win + 1, win)]
    sr = np.array(16000, dtype=np.int64)

    def make_step():
        st = {"state": np.zeros((2, 1, 128), dtype=np.float32), "ctx": np.zeros((1, ctx_len), dtype=np.float32)}

        def step(w: np.ndarray) -> float:
            x = np.concatenate((st["ctx"], (w.astype(np.float32) / 32768.0)[None, :]), axis=1)
            prob, st["state"] = sess.run(None, {"input": x, "state": st["state"], "sr": sr})
            st["ctx"] = x[:, -ctx_len:]
            return float(prob[0, 0])

        return step

    warm = make_step()
    for w in windows[:30]:
        warm(w)
    step = make_step()
    ns: list[int] = []
    speech = 0
    for w in windows:
        t0 = time.perf_counter_ns()
        p = step(w)
        t1 = time.perf_counter_ns()
        ns.append(t1 - t0)
        speech += p >= 0.5
    per_call = summary_us(ns)
    per_10ms = {k: (v / 3.2 if k.endswith("_us") else v) for k, v in per_call.items()}
    return {
        "model": os.path.basename(path),
        "onnxruntime": ort.__version__,
        "window_samples": win,
        "per_call": per_call,
        "per_10ms": per_10ms,
        "speech_windows_pct": 100.0 * speech / len(windows),
    }


def tone_snr(np, soxr, quality: str, rin: int, rout: int, freq: float, dtype: str = "int16") -> dict:
    """SNR of soxr's streamed output against the analytic tone (see the module docstring)."""
    full = 32767.0 if dtype == "int16" else 1.0
    amp = 0.5 * full
    n = rin  # 1 s
    t = np.arange(n) / rin
    x = amp * np.sin(2 * np.pi * freq * t)
    x = np.round(x).astype(np.int16) if dtype == "int16" else x.astype(np.float32)
    rs = soxr.ResampleStream(rin, rout, 1, dtype=dtype, quality=quality)
    step = rin // 100
    y = np.concatenate([rs.resample_chunk(x[i : i + step]) for i in range(0, n, step)])
    skip = rout // 10  # the first 100 ms of output
    yy = y[skip:].astype(np.float64)
    ty = (np.arange(len(y)) / rout)[skip:]
    w = 2 * np.pi * freq
    basis = np.stack([np.sin(w * ty), np.cos(w * ty)], axis=1)
    (a, b), *_ = np.linalg.lstsq(basis, yy, rcond=None)
    phase = math.atan2(b, a)  # y ~ A sin(w t + phase) = A sin(w (t - d)), d = -phase / w
    period = 1.0 / freq
    delay_s = (-phase / w + period / 2) % period - period / 2  # in (-period/2, period/2]
    ref = amp * np.sin(w * ty + phase)
    err = yy - ref
    snr = 10 * math.log10(float(np.sum(ref**2)) / float(np.sum(err**2)))
    return {
        "quality": quality,
        "dtype": dtype,
        "in_rate": rin,
        "out_rate": rout,
        "freq_hz": freq,
        "snr_db": snr,
        "gain_db": 20 * math.log10(math.hypot(a, b) / amp),
        "delay_out_samples_mod_period": delay_s * rout,
        "output_samples": int(len(y)),
        "analysed_samples": int(len(yy)),
    }


SOXR_PASSES = 3


def worker_soxr() -> dict:
    try:
        import numpy as np
        import soxr
    except ImportError as e:
        return {"skipped": f"soxr/numpy not importable: {e}"}
    speech16 = np.frombuffer(read_speech(), dtype=np.int16)
    speech48 = soxr.resample(speech16, 16000, 48000, quality="VHQ").astype(np.int16)
    timing = []
    for quality in ("HQ", "VHQ"):
        for rin, rout, sig in ((16000, 48000, speech16), (48000, 16000, speech48)):
            step = rin // 100
            chunks = [np.ascontiguousarray(sig[i : i + step]) for i in range(0, len(sig) - step + 1, step)]
            warm = soxr.ResampleStream(rin, rout, 1, dtype="int16", quality=quality)
            for c in chunks[:100]:
                warm.resample_chunk(c)
            ns: list[int] = []
            with_output_ns: list[int] = []
            block_sizes = set()
            pass_means = []
            for _ in range(SOXR_PASSES):  # a fresh stream per pass
                rs = soxr.ResampleStream(rin, rout, 1, dtype="int16", quality=quality)
                pass_ns = []
                for c in chunks:
                    t0 = time.perf_counter_ns()
                    o = rs.resample_chunk(c)
                    t1 = time.perf_counter_ns()
                    pass_ns.append(t1 - t0)
                    if len(o):
                        with_output_ns.append(t1 - t0)
                        block_sizes.add(len(o))
                ns += pass_ns
                pass_means.append(statistics.fmean(pass_ns) / 1000.0)
            timing.append(
                {
                    "quality": quality,
                    "in_rate": rin,
                    "out_rate": rout,
                    "chunks_per_pass": len(chunks),
                    "passes": SOXR_PASSES,
                    "per_chunk": summary_us(ns),
                    "pass_mean_us": pass_means,
                    "calls_with_output_pct": 100.0 * len(with_output_ns) / len(ns),
                    "output_block_samples": sorted(block_sizes),
                    "calls_with_output": summary_us(with_output_ns) if with_output_ns else None,
                }
            )
    snr = []
    for dtype in ("int16", "float32"):
        for quality in ("HQ", "VHQ"):
            for rin, rout, f in ((16000, 48000, 1000.0), (16000, 48000, 6000.0), (48000, 16000, 1000.0)):
                snr.append(tone_snr(np, soxr, quality, rin, rout, f, dtype))
    return {"soxr": soxr.__version__, "timing": timing, "snr": snr}


WORKERS = {
    "writeframes": lambda a: worker_writeframes(a.calls),
    "nativevad": lambda a: worker_nativevad(),
    "webrtcvad": lambda a: worker_webrtcvad(),
    "silero": lambda a: worker_silero(),
    "soxr": lambda a: worker_soxr(),
}


# --------------------------------------------------------------------------------------------
# driver


def calibrate() -> float:
    """Median time (µs) of a fixed pure-Python loop: this VM's speed drifts by tens of % from
    minute to minute, so every worker reports it next to its figures."""
    ts = []
    for _ in range(200):
        t0 = time.perf_counter_ns()
        acc = 0
        for i in range(2000):
            acc += i * i
        ts.append(time.perf_counter_ns() - t0)
    return statistics.median(ts) / 1000.0


def agg(vals: list):
    """Field-wise median of several rounds' results (numbers); other values from the first round."""
    v0 = vals[0]
    if isinstance(v0, bool) or v0 is None or not isinstance(v0, (int, float, dict, list)):
        return v0
    if all(v == v0 for v in vals):
        return v0  # keeps ints ints
    if isinstance(v0, (int, float)):
        nums = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return statistics.median(nums) if nums else None
    if isinstance(v0, dict):
        return {k: agg([v[k] for v in vals if isinstance(v, dict) and k in v]) for k in v0}
    if all(isinstance(v, list) and len(v) == len(v0) for v in vals):
        return [agg([v[i] for v in vals]) for i in range(len(v0))]
    return v0


def dig(d, path: tuple):
    for k in path:
        d = d[k]
    return d


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_cpu_s() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat (Linux only)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(v) - v[3] - v[4]) / hz, sum(v) / hz


def others_busy_pct(before, after, own_s: float) -> float | None:
    """CPU used by other processes while a worker ran, in % of the whole machine (all cores)."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return max(0.0, 100.0 * ((after[0] - before[0]) - own_s) / (after[1] - before[1]))


def run_worker(python: str, name: str, a: argparse.Namespace) -> dict:
    import resource

    m0 = machine_cpu_s()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = _run_worker(python, name, a)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    out["others_busy_pct"] = others_busy_pct(m0, machine_cpu_s(), own)
    return out


def _run_worker(python: str, name: str, a: argparse.Namespace) -> dict:
    cmd = [python, os.path.abspath(__file__), "--worker", name, "--calls", str(a.calls)]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    print(f"... {name} under {python}", file=sys.stderr, flush=True)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=150, env=env)
    except FileNotFoundError:
        return {"skipped": f"interpreter {python} not found"}
    except subprocess.TimeoutExpired:
        return {"skipped": f"worker {name} timed out (150 s)"}
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"worker {name} failed (exit {r.returncode}): {tail}"}
    return json.loads(lines[-1])


def fmt(v: float | None, nd: int = 1) -> str:
    return "n/a" if v is None else f"{round(v, nd) + 0.0:.{nd}f}"  # + 0.0: no "-0.0"


def render(res: dict) -> str:
    L = []
    la0, la1 = res["loadavg_start"], res["loadavg_end"]
    runs = [(k, r) for k, rs in res["rounds"].items() for r in rs if "skipped" not in r]
    busy = [(k, r["others_busy_pct"]) for k, r in runs if r.get("others_busy_pct") is not None and r.get("used")]
    worst = max(busy, key=lambda kv: kv[1]) if busy else None
    calib = [c for _, r in runs for c in (r.get("calib_us"), r.get("calib_end_us")) if c is not None]
    L.append(
        f"{res['date']} on {res['machine']}, {res['cores']} cores; {res['n_rounds']} rounds, figures = medians over the "
        f"uncontended runs (other processes <= {res['max_others']:g} % of the machine; contended ones only where no other); "
        f"load average (1 min) {la0[0]:.2f} at start, {la1[0]:.2f} at end; other processes' CPU during a run used: at most "
        + (f"{worst[1]:.1f} % of the machine ({worst[0]})" if worst else "unknown")
        + (f"; speed reference (pure-Python loop) {min(calib):.0f}-{max(calib):.0f} µs across workers" if calib else "")
        + f"; ours: {res['ours_python']}, peers: {res['peer_python']}"
    )
    L.append("")
    L.append("| figure | implementation | median (µs) | p95 (µs) | mean (µs) | notes | goal (issue 3) |")
    L.append("|---|---|---|---|---|---|---|")
    notes = []

    def per_round(key: str, path: tuple) -> str:
        r = res[key]
        vals = [dig(x, path) for x in res["rounds"][key] if x.get("used")]
        head = "" if r["runs_clean"] == r["runs_total"] else (
            f"{r['runs_clean']} of {r['runs_total']} runs clean, " if r["runs_clean"] else f"ALL {r['runs_total']} runs contended, "
        )
        return head + " / ".join(fmt(v) for v in vals)

    def row(fig, impl, st, note, goal=""):
        L.append(f"| {fig} | {impl} | {fmt(st['median_us'])} | {fmt(st['p95_us'])} | {fmt(st['mean_us'])} | {note} | {goal} |")

    def skipped(fig: str, impl: str, r: dict, goal: str) -> bool:
        if "skipped" in r:
            L.append(f"| {fig} | {impl} | not measured | | | {r['skipped']} | {goal} |")
            notes.append(f"{fig}, {impl}: {r['skipped']}")
            return True
        return False

    fig = "`write_frames` caller CPU per call (20 ms, completion path)"
    for key, impl, goal in (("ours_writeframes", "ours", "<= 5 µs"), ("peer_writeframes", "daily-python", "")):
        r = res[key]
        if skipped(fig, impl, r, goal):
            continue
        w = r["caller_wall"]
        note = (
            f"median per run {per_round(key, ('caller_cpu', 'median_us'))}; {r['calls']} calls a round; "
            f"wall per call median {fmt(w['median_us'])} / p95 {fmt(w['p95_us'])} µs; "
            f"process CPU {fmt(r['process_cpu_ms_per_audio_s'])} ms per s of audio; "
            f"empty thread_time_ns pair {fmt(r['clock_overhead']['median_us'], 2)} µs (included)"
        )
        if "noop_after_wake" in r:
            note += (
                f"; a pure-Python no-op in the same place (just woken by a completion) "
                f"{fmt(r['noop_after_wake']['median_us'])} µs; back-to-back writes (caches warm) "
                f"{fmt(r['hot_back_to_back']['median_us'])} µs"
            )
        row(fig, f"{impl} ({r.get('dist', '?')})", r["caller_cpu"], note, goal)

    fig = "VAD per 10 ms frame"
    for key, impl, goal in (("ours_nativevad", "ours NativeVad", "<= 10 µs"), ("peer_nativevad", "daily-python NativeVad", "")):
        r = res[key]
        if skipped(fig, impl, r, goal):
            continue
        p = r["per_call"]
        note = f"median per run {per_round(key, ('per_call', 'median_us'))}; {p['n']} frames; confidence >= 0.5 on {fmt(r['speech_frames_pct'])} %"
        row(fig, f"{impl} ({r.get('dist', '?')})", p, note, goal)
    key = "peer_webrtcvad"
    r = res[key]
    if not skipped(fig, "webrtcvad", r, ""):
        p = r["per_call"]
        note = f"median per run {per_round(key, ('per_call', 'median_us'))}; {p['n']} frames; speech on {fmt(r['speech_frames_pct'])} %"
        row(fig, "webrtcvad (mode 2, yes/no only)", p, note)
    key = "peer_silero"
    r = res[key]
    if not skipped(fig, "Silero (onnxruntime)", r, ""):
        p, q = r["per_call"], r["per_10ms"]
        row(
            fig,
            f"Silero v5 ONNX (onnxruntime {r['onnxruntime']}, 1 thread)",
            q,
            f"per 32 ms call / 3.2; median per run {per_round(key, ('per_10ms', 'median_us'))}; per call median {fmt(p['median_us'])} / "
            f"p95 {fmt(p['p95_us'])} / mean {fmt(p['mean_us'])} µs over {p['n']} windows; prob >= 0.5 on {fmt(r['speech_windows_pct'])} %",
        )

    fig = "resampler per 10 ms chunk"
    key = "peer_soxr"
    r = res[key]
    if not skipped(fig, "soxr", r, "<= soxr at comparable quality"):
        for i, t in enumerate(r["timing"]):
            f = f"{fig} {t['in_rate'] // 1000}k→{t['out_rate'] // 1000}k"
            wo = t["calls_with_output"]
            note = (
                f"mean per run {per_round(key, ('timing', i, 'per_chunk', 'mean_us'))}; {t['passes']} x {t['chunks_per_pass']} chunks of "
                f"speech a round; bursty: {fmt(t['calls_with_output_pct'])} % of calls return output "
                f"({'/'.join(str(b) for b in t['output_block_samples'])} samples, median {fmt(wo['median_us'])} µs), the rest nothing"
            )
            row(f, f"soxr {r['soxr']} {t['quality']} (ResampleStream, int16)", t["per_chunk"], note)
        L.append(f"| {fig} | ours | not measured here | | | Rust bench (crates/), not this harness | <= soxr at comparable quality |")
        L.append("")
        L.append(
            "soxr quality: tone at 0.5 full scale, 1 s, fed in 10 ms chunks, output from 100 ms on; delay fitted, "
            "amplitude nominal (int16 = int16 in and out; float32 = unquantised float32 in and out):"
        )
        L.append("")
        L.append("| conversion | tone | quality | samples | SNR (dB) | gain (dB) | delay (out samples, mod period) |")
        L.append("|---|---|---|---|---|---|---|")
        for q in r["snr"]:
            L.append(
                f"| {q['in_rate'] // 1000}k→{q['out_rate'] // 1000}k | {q['freq_hz'] / 1000:g} kHz | {q['quality']} | {q['dtype']} | "
                f"{fmt(q['snr_db'])} | {fmt(q['gain_db'], 5)} | {fmt(q['delay_out_samples_mod_period'], 3)} |"
            )
    ratios = []
    for label, ours_key, peer_key, path in (
        ("write_frames caller CPU", "ours_writeframes", "peer_writeframes", ("caller_cpu", "median_us")),
        ("NativeVad", "ours_nativevad", "peer_nativevad", ("per_call", "median_us")),
    ):
        o = {x["round"]: x for x in res["rounds"][ours_key] if x.get("final_of_round") and "skipped" not in x}
        q = {x["round"]: x for x in res["rounds"][peer_key] if x.get("final_of_round") and "skipped" not in x}
        vals = [dig(o[i], path) / dig(q[i], path) for i in sorted(set(o) & set(q))]
        if vals:
            ratios.append(f"{label} " + " / ".join(f"{v:.2f}" for v in vals))
    if ratios:
        L.append("")
        L.append("Median ours / median daily-python, per round (the two runs adjacent in time): " + "; ".join(ratios) + ".")
    if notes:
        L.append("")
        L.append("Not measured: " + "; ".join(notes))
    return "\n".join(L)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-python", default=DEFAULT_PEER_PYTHON, help="interpreter of the peers' venv")
    p.add_argument("--ours-python", default=sys.executable, help="interpreter with our daily (default: this one)")
    p.add_argument("--calls", type=int, default=500, help="measured write_frames calls per SDK")
    p.add_argument("--rounds", type=int, default=3, help="rounds of all workers, interleaved; figures are medians over rounds")
    p.add_argument("--max-others", type=float, default=10.0, help="a run during which other processes used more than this %% of the machine is 'contended'")
    p.add_argument("--retries", type=int, default=2, help="re-runs of a contended worker (within --retry-budget-s)")
    p.add_argument("--retry-budget-s", type=float, default=150.0, help="no retries once the run is this old")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON ('-' = stdout, table to stderr)")
    p.add_argument("--only", help="comma-separated subset of: " + ",".join(WORKERS))
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    a = p.parse_args()

    if a.worker:
        calib = calibrate()
        try:
            out = WORKERS[a.worker](a)
        except Exception as e:  # reported as a skip by the driver, with the reason
            out = {"skipped": f"{type(e).__name__}: {e}"}
        out["python"] = sys.executable
        out["calib_us"] = calib
        out["calib_end_us"] = calibrate()
        print(json.dumps(out))
        return 0

    only = set(a.only.split(",")) if a.only else set(WORKERS)
    plan = [
        ("ours_writeframes", a.ours_python, "writeframes"),
        ("peer_writeframes", a.peer_python, "writeframes"),
        ("ours_nativevad", a.ours_python, "nativevad"),
        ("peer_nativevad", a.peer_python, "nativevad"),
        ("peer_webrtcvad", a.peer_python, "webrtcvad"),
        ("peer_silero", a.peer_python, "silero"),
        ("peer_soxr", a.peer_python, "soxr"),
    ]
    t0 = time.monotonic()
    res: dict = {
        "loadavg_start": os.getloadavg(),
        "date": str(datetime.date.today()),
        "machine": cpu_model(),
        "cores": os.cpu_count(),
        "ours_python": a.ours_python,
        "peer_python": a.peer_python,
        "n_rounds": a.rounds,
        "max_others": a.max_others,
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
    }
    def contended(r: dict) -> bool:
        return (r.get("others_busy_pct") or 0.0) > a.max_others

    rounds: dict = {key: [] for key, _, _ in plan}
    for rnd in range(a.rounds):
        for key, python, name in plan:
            if name not in only:
                rounds[key].append({"skipped": "not selected (--only)"})
                continue
            r = run_worker(python, name, a)
            r["round"] = rnd
            for _ in range(a.retries):  # another process took CPU meanwhile: keep the run, try again
                if "skipped" in r or not contended(r) or time.monotonic() - t0 > a.retry_budget_s:
                    break
                r["contended"] = True
                rounds[key].append(r)
                print(f"    other processes used {r['others_busy_pct']:.0f} % of the machine: again", file=sys.stderr)
                time.sleep(3)
                r = run_worker(python, name, a)
                r["round"] = rnd
            r["contended"] = contended(r)
            r["final_of_round"] = True
            rounds[key].append(r)
    for key, runs in rounds.items():
        ok = [r for r in runs if "skipped" not in r]
        clean = [r for r in ok if not r["contended"]]
        used = clean or ok  # contended runs count only when no clean one exists
        for r in ok:
            r["used"] = r in used
        res[key] = agg(used) if used else runs[0]
        res[key]["runs_used"] = len(used)
        res[key]["runs_clean"] = len(clean)
        res[key]["runs_total"] = len(ok)
    res["rounds"] = rounds
    res["elapsed_s"] = time.monotonic() - t0
    res["loadavg_end"] = os.getloadavg()
    table = render(res)
    if a.json == "-":
        print(table, file=sys.stderr)
        print(json.dumps(res, indent=1))
    else:
        print(table)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=1)
    print(f"(elapsed {res['elapsed_s']:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
