"""The scale and latency benchmark (issue 6): N pairs of our CallClients against aiortc.

    python benches/scale_bench.py [--pairs 1,10,50,100,150] [--seconds 20] [--repeat K]
                                  [--aiortc-pairs 1,10,30,50,100,150] [--no-aiortc] [--json FILE]

Runs, each in a fresh process and one after another:
- benches/scale/daily_pairs.py for every N, with the room server embedded (its CPU counted in
  the process; --repeat K runs of it, since one run on a shared VM says little: runs of the same
  code differ by tens of percent, with the hypervisor's CPU steal) and once with `daily-server`
  as a separate process (its CPU reported apart);
- benches/scale/aiortc_pairs.py (the same scenario with aiortc clients against our server in a
  separate process) for increasing N until a run no longer holds real time (worst receiver
  below 0.999 of its frames), which is where aiortc's column ends;
- benches/scale/opus_floor.py: libopus encode + decode of one 20 ms frame, called directly,
  the floor under any stack's CPU per pair.

Prints the machine and date, then a table with one row per N and ratios to aiortc, ready for
benches/README.md. Definitions of every figure: the docstring of benches/scale/daily_pairs.py.
Figures are measured, never asserted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys

from main_job_bench import cpu_model  # same folder: the machine line both benches print

HERE = os.path.dirname(os.path.abspath(__file__))
SCALE = os.path.join(HERE, "scale")
RT = 0.999  # "held in real time": the worst receiver got at least this share of its frames


def run(script: str, args: list[str], timeout: float) -> dict | None:
    cmd = [sys.executable, os.path.join(SCALE, script), *args]
    print("$", " ".join(cmd[1:]), file=sys.stderr, flush=True)
    # Own session, so that a timeout also ends the run's server process and any other child.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        print(f"  timed out after {timeout:.0f} s", file=sys.stderr)
        return None
    r = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    lines = [ln for ln in r.stdout.strip().splitlines() if ln.startswith("{")]
    if r.returncode != 0 or not lines:
        print(f"  failed ({r.returncode}): {r.stderr.strip()[-800:]}", file=sys.stderr)
        return None
    row = json.loads(lines[-1])
    print("  " + lines[-1], file=sys.stderr, flush=True)
    return row


def fmt(v, nd=1) -> str:
    if v is None:
        return "–"
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def ratio(a, b) -> str:
    return f"{a / b:.2f}" if a is not None and b else "–"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", default="1,10,50,100,150")
    p.add_argument("--aiortc-pairs", default="1,10,30,50,100,150")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--repeat", type=int, default=1, help="runs of each N with the server embedded")
    p.add_argument("--no-aiortc", action="store_true")
    p.add_argument("--no-daily", action="store_true", help="skip our SDK's runs (aiortc and the floor only)")
    p.add_argument("--server-bin", default=shutil.which("daily-server"),
                   help="the daily-server binary for the separate-process runs (default: the installed one)")
    p.add_argument("--no-process-server", action="store_true")
    p.add_argument("--json", default=None, help="also write every result row to FILE")
    a = p.parse_args()
    ours = [int(x) for x in a.pairs.split(",")]
    secs = ["--seconds", str(a.seconds)]
    rows: list[dict] = []

    server_bin = ["--server-bin", a.server_bin] if a.server_bin else []
    for n in [] if a.no_daily else ours:
        t = 120 + n * 2 + a.seconds
        for _ in range(max(a.repeat, 1)):
            r = run("daily_pairs.py", ["--pairs", str(n), *secs], t)
            if r:
                rows.append(r)
        if not a.no_process_server:
            r = run("daily_pairs.py", ["--pairs", str(n), "--server", "process", *server_bin, *secs], t)
            if r:
                rows.append(r)
    if not a.no_aiortc:
        for n in [int(x) for x in a.aiortc_pairs.split(",")]:
            r = run("aiortc_pairs.py", ["--pairs", str(n), *server_bin, *secs], 180 + n * 4 + a.seconds)
            if r is None:
                break
            rows.append(r)
            if r.get("rt_ratio_worst") is None or r["rt_ratio_worst"] < RT:
                break
    floor = run("opus_floor.py", [], 300)
    if floor:
        rows.append(floor)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)

    print(f"\n{datetime.datetime.now():%Y-%m-%d %H:%M}, {cpu_model()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, window {a.seconds:g} s")
    aio = {r["pairs"]: r for r in rows if r.get("stack") == "aiortc"}
    print("\n| pairs | stack | CPU/pair % (server) | RT worst: played / received | RSS/client kB (beyond 1st pair) "
          "| latency p50/p95 ms | join p50/p95 ms | CPU vs aiortc | steal % |")
    print("|---|---|---|---|---|---|---|---|---|")
    order = {("daily", "embedded"): 0, ("daily", "process"): 1, ("aiortc", None): 2}
    table = sorted((r for r in rows if "pairs" in r), key=lambda r: (r["pairs"], order.get((r.get("stack"), r.get("server")), 3)))
    for r in table:
        n, key = r["pairs"], (r.get("stack"), r.get("server"))
        name = "ours, server in process" if key[1] == "embedded" else "ours, server apart" if key[0] == "daily" else "aiortc, server apart"
        cpu = r.get("cpu_pct_per_pair")
        srv = r.get("server_cpu_pct")
        cpu_s = fmt(cpu, 2) + (f" (+{srv / n:.2f})" if srv is not None else "")
        rss = fmt(r.get("rss_kb_per_client"), 0)
        beyond = r.get("rss_kb_per_client_beyond_first_pair")
        if beyond is not None:
            rss += f" ({beyond:.0f})"
        vs = ""
        if key[0] == "daily" and n in aio:
            # compare like with like: client CPU, plus the server's share when it is apart
            mine = cpu + (srv / n if srv is not None else 0.0)
            theirs = aio[n]["cpu_pct_per_pair"] + (aio[n]["server_cpu_pct"] or 0.0) / n
            vs = ratio(mine, theirs)
        print(f"| {n} | {name} | {cpu_s} | {fmt(r.get('rt_ratio_worst'), 4)} / {fmt(r.get('rx_ratio_worst'), 4)} | {rss} "
              f"| {fmt(r.get('latency_ms_p50'))} / {fmt(r.get('latency_ms_p95'))} "
              f"| {fmt(r.get('join_ms_p50'))} / {fmt(r.get('join_ms_p95'))} | {vs} | {fmt(r.get('steal_pct'))} |")
    if floor:
        print(f"\nOpus floor (libopus direct, encode + decode per 20 ms mono frame): {json.dumps(floor)}")
    held_aio = [r["pairs"] for r in rows if r.get("stack") == "aiortc" and r.get("rt_ratio_worst", 0) >= RT]
    print(f"\nHeld in real time (worst receiver >= {RT}), ours with the server embedded, runs per N:")
    for n in ours:
        runs = [r for r in rows if r.get("stack") == "daily" and r.get("server") == "embedded" and r.get("pairs") == n]
        if runs:
            played = sum(r.get("rt_ratio_worst", 0) >= RT for r in runs)
            received = sum(r.get("rx_ratio_worst", 0) >= RT for r in runs)
            print(f"- {n} pairs: received {received} of {len(runs)}, played from received audio {played} of {len(runs)}; "
                  f"steal {', '.join(fmt(r.get('steal_pct')) for r in runs)} %")
    print(f"aiortc up to {max(held_aio) if held_aio else 0} pairs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
