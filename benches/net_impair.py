"""Calls over an impaired network: the matrix of issue 16 item 8, as a markdown table.

    sudo python3 benches/net_impair.py [--only SUBSTRING ...] [--runs N] [--json out.json] [--loss-proto udp|all]

Each condition runs on a fresh NetLab (``tests/netimpair``): ``daily-server`` in one network
namespace, a bot and a listener (one ``peer.py`` process) in another, a veth pair between
them, nftables dropping on each side's ingress. The bot speaks real speech
(``data/librivox_16k.wav``, 16 kHz, 20 ms writes); the listener records it with
``set_audio_renderer`` (16 kHz, 20 ms callbacks). Needs root.

Columns:
- join L / join B: ``join()`` call -> completion (ms) for the listener (joins first, no
  microphone) and the bot (publishes a custom track). recv: from the bot's completion until the
  listener's receive transport reports ``connected`` (ms); speech starts after it.
- intell.: fraction of 250 ms speech windows whose best correlation with the received audio,
  searched within 300 ms of the previous window's alignment, is >= 0.7 (clean: 0.95-0.999;
  unrelated speech: <= 0.51). For outages, windows sent during the outage and the 1.5 s after
  it are left out; for the server restart, only those sent before the kill.
- steps / skipped: offset changes >= 10 ms between consecutive matched windows, and the sum of
  the backward ones (audio skipped, ms). shifted: fraction of matched windows >= 10 ms off the
  first one's alignment. lat: median per-window latency (sender's clock consumed the window's
  last sample -> renderer delivered it), ms.
- lost / rcvd / conc.: the listener's ``media_stats()`` for the bot's track (packetsLost,
  packetsReceived, concealedMs).
- int. / conn.: the first ``interrupted`` network event after the outage's start (s after it),
  the first ``connected`` after the link's return (s after it). back: the first intelligible
  window sent after the return, arrival minus return (s). err / left: first ``on_error`` /
  ``left`` call state after the impairment began (s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "examples"))

from netimpair import netlab_unavailable  # noqa: E402
from netimpair import scenario as sc  # noqa: E402

COLUMNS = [
    ("condition", "condition"), ("join_listener_ms", "join L"), ("join_bot_ms", "join B"),
    ("recv_ready_ms", "recv"), ("intelligible", "intell."), ("windows", "win"), ("steps", "steps"),
    ("skipped_ms", "skipped"), ("shifted", "shifted"), ("latency_p50_ms", "lat"),
    ("packets_lost", "lost"), ("packets_received", "rcvd"), ("concealed_ms", "conc."),
    ("interrupted_after_s", "int."), ("connected_after_s", "conn."), ("audio_back_s", "back"),
    ("error_after_s", "err"), ("left_after_s", "left"), ("note", "note"),
]


def build_id() -> str:
    """The installed ``daily`` extension the peers load: path, size and mtime (the package is
    reinstalled by other work on a shared machine; a run must not straddle two builds)."""
    import importlib.util

    spec = importlib.util.find_spec("daily")
    d = os.path.dirname(spec.origin) if spec and spec.origin else ""
    for f in sorted(os.listdir(d)) if d else []:
        if f.startswith("daily.") and f.endswith(".so"):
            st = os.stat(os.path.join(d, f))
            return f"{os.path.join(d, f)} {st.st_size} B, mtime {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(st.st_mtime))} UTC"
    return "unknown"


def fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v).strip().replace("|", "/")


def table(rows: list[dict]) -> str:
    out = ["| " + " | ".join(h for _, h in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        out.append("| " + " | ".join(fmt(r.get(k)) for k, _ in COLUMNS) + " |")
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", help="run the conditions whose name contains one of these")
    p.add_argument("--json", help="also write every row (with events) to this file")
    p.add_argument("--runs", type=int, default=1, help="runs of each condition (one table row each)")
    p.add_argument("--loss-proto", choices=["udp", "all"], default="udp",
                   help="random loss on UDP only (default) or on every packet (TCP signalling too)")
    a = p.parse_args()
    why = netlab_unavailable()
    if why:
        print(f"net_impair: {why}", file=sys.stderr)
        return 2
    rows = []
    conds = sc.matrix(loss_proto=a.loss_proto)
    if a.only:
        conds = [(n, f) for n, f in conds if any(s in n for s in a.only)]
    conds = [c for c in conds for _ in range(a.runs)]
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    build = build_id()
    print(f"net_impair: {len(conds)} conditions, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"harness commit {commit}, {platform.python_version()}, loss on {a.loss_proto}", flush=True)
    print(f"daily build: {build}", flush=True)
    for name, run in conds:
        t = time.monotonic()
        try:
            row = run()
        except Exception as e:  # one broken condition does not lose the others
            row = {"condition": name, "note": f"harness error: {type(e).__name__}: {e}"}
        row["run_s"] = round(time.monotonic() - t, 1)
        rows.append(row)
        brief = {k: v for k, v in row.items() if k not in ("events", "observer_events")}
        print(json.dumps(brief, default=str), flush=True)
    if build_id() != build:
        print(f"WARNING: the installed daily package changed during the run (now {build_id()}); "
              "later conditions ran on the new build", flush=True)
    print()
    print(table(rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, default=str, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
