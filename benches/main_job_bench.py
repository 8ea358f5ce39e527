"""Runs the main job N times (each in a fresh process) and summarises its figures.

    python benches/main_job_bench.py [--runs 5] [--seconds S]

Prints one line per run and the median/min/max of join time (ms), end-to-end latency p50/p95
(ms), similarity and packets lost, plus the machine (CPU model, cores) and date, ready to paste
into benches/README.md. Figures are measured, never asserted: the tests assert behaviour.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MAIN = os.path.join(HERE, "..", "examples", "main_job.py")
FIELDS = ["join_ms_bot", "latency_ms_p50", "latency_ms_p95", "similarity", "similarity_strict", "packets_lost", "concealed_ms"]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--seconds", type=float, default=None)
    a = p.parse_args()
    rows = []
    for i in range(a.runs):
        cmd = [sys.executable, MAIN, "--json", "--out", os.path.join("out", f"bench_{i}.wav")]
        if a.seconds:
            cmd += ["--seconds", str(a.seconds)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return 1
        row = json.loads(r.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"run {i + 1}: " + ", ".join(f"{k}={row[k]}" for k in FIELDS))
    print(f"\n{datetime.date.today()} on {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| figure | median | min | max |")
    print("|---|---|---|---|")
    for k in FIELDS:
        v = [float(r[k]) for r in rows if r[k] is not None]
        print(f"| {k} | {statistics.median(v):g} | {min(v):g} | {max(v):g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
