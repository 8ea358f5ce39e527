"""Server CPU and memory of server-side recording (issue 19 part 2).

Runs the ``daily-server`` command (``python -m daily.cli``, the installed entry point) as its own
process with ``--recordings-dir``, joins two bots that speak LibriVox speech at 16 kHz into one
room, and measures the server process over a window of ``--seconds`` of call:

- plain: nobody records;
- recorded: an owner started ``start_recording`` before the window (two raw tracks + the mix).

Per run a fresh server. CPU is the server's user + system time over the window
(``/proc/PID/stat``), as seconds of CPU per minute of call, and the part of it spent on the
recorder thread (``daily-recorder``: decode, mix, encode, file writes); memory is the server's resident set
(``VmRSS``) at the end of the window minus at its start, and its peak (``VmHWM``). Prints one
line per run and min/median per mode.

    python benches/record_server_bench.py --runs 3 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))

import speechmetrics as sm  # noqa: E402
from daily import CallClient, CustomAudioSource, CustomAudioTrack, Daily  # noqa: E402

KEY = "bench-key"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_cpu_seconds(pid: int, name: str) -> float:
    """CPU seconds of the process's threads called ``name`` (e.g. ``daily-recorder``)."""
    total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().strip() != name:
                    continue
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
        except OSError:
            pass
    return total


def mem_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def wait(event: threading.Event, what: str, timeout: float = 15) -> None:
    if not event.wait(timeout):
        raise RuntimeError(f"{what} did not complete")


def call(fn, *args, **kw):
    done = threading.Event()
    out: list = []

    def completion(*a):
        out.append(a)
        done.set()

    fn(*args, completion=completion, **kw)
    wait(done, fn.__name__)
    if out[0][-1] is not None:
        raise RuntimeError(f"{fn.__name__}: {out[0][-1]}")
    return out[0]


def run(record: bool, seconds: float, speech) -> dict:
    rec_dir = tempfile.mkdtemp(prefix="rec-bench-")
    p = subprocess.Popen(
        [sys.executable, "-m", "daily.cli", "--port", "0", "--api-key", KEY, "--recordings-dir", rec_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    bots = []
    stop = threading.Event()
    try:
        url = p.stdout.readline().split()[-1]
        req = urllib.request.Request(
            f"{url}/v1/meeting-tokens",
            data=json.dumps({"properties": {"is_owner": True}}).encode(),
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
        token = json.loads(urllib.request.urlopen(req, timeout=10).read())["token"]
        threads = []
        for i in range(2):
            src = CustomAudioSource(16000, 1)
            track = CustomAudioTrack(src)
            c = CallClient()
            settings = {"inputs": {"microphone": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}}
            call(c.join, f"{url}/bench", meeting_token=token if i == 0 else None, client_settings=settings)
            bots.append(c)
            data = speech[i * len(speech) // 2 :].astype("<i2").tobytes() + speech.astype("<i2").tobytes()

            def talk(src=src, data=data):
                while not stop.is_set():
                    for k in range(0, len(data), 640):
                        if stop.is_set():
                            return
                        src.write_frames(data[k : k + 640])

            t = threading.Thread(target=talk, daemon=True)
            t.start()
            threads.append(t)
        if record:
            call(bots[0].start_recording)
        time.sleep(2.0)  # past the start: transports up, recorder files open
        cpu0, rss0 = cpu_seconds(p.pid), mem_kib(p.pid, "VmRSS")
        rec0 = thread_cpu_seconds(p.pid, "daily-recorder")
        time.sleep(seconds)
        cpu1, rss1, hwm = cpu_seconds(p.pid), mem_kib(p.pid, "VmRSS"), mem_kib(p.pid, "VmHWM")
        rec1 = thread_cpu_seconds(p.pid, "daily-recorder")
        if record:
            call(bots[0].stop_recording)
        return {
            "mode": "recorded" if record else "plain",
            "cpu_s_per_min": (cpu1 - cpu0) / seconds * 60,
            "recorder_cpu_s_per_min": (rec1 - rec0) / seconds * 60,
            "rss_growth_kib": rss1 - rss0,
            "rss_kib": rss1,
            "peak_kib": hwm,
        }
    finally:
        stop.set()
        for c in bots:
            try:
                call(c.leave)
            except RuntimeError:
                pass
            c.release()
        p.terminate()
        p.wait(15)
        subprocess.run(["rm", "-rf", rec_dir])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    speech, rate = sm.read_wav_mono16(os.path.join(ROOT, "data", "librivox_16k.wav"))
    assert rate == 16000
    Daily.init()
    results: dict[str, list[dict]] = {"plain": [], "recorded": []}
    try:
        for _ in range(args.runs):
            for record in (False, True):
                r = run(record, args.seconds, speech)
                results[r["mode"]].append(r)
                print(json.dumps(r), flush=True)
    finally:
        Daily.deinit()
    for mode, rs in results.items():
        for k in ("cpu_s_per_min", "recorder_cpu_s_per_min", "rss_growth_kib", "rss_kib", "peak_kib"):
            v = [r[k] for r in rs]
            print(f"{mode:9s} {k:15s} min {min(v):10.3f}  median {statistics.median(v):10.3f}")


if __name__ == "__main__":
    main()
