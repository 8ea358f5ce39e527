"""The soak: N pairs join, talk and leave in a loop; RSS, threads and file descriptors must stay flat.

    python benches/scale/soak.py [--pairs 50] [--minutes 10] [--talk 10]

One process, the room server embedded. Each cycle makes N fresh pairs (sender with a
CustomAudioTrack microphone writing real speech, receiver rendering it at 16 kHz, each pair in a
room of its own), lets them talk for --talk seconds, then leaves and releases every client. After
each cycle it prints RSS (kB), native threads and open fds, measured once the clients are
released. The last line is JSON: the first, middle and last cycle's figures, the largest growth
of each after the first cycle, RSS growth over the second half, and `flat`: threads and fds back
to their cycle-1 values, and RSS at the end within 5 % of the middle cycle's (the first cycles
grow the allocator's arenas to their working size; a leak would keep growing). Not run by CI:
it takes --minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from daily_pairs import RATE, Receiver, Sender, join_all, rss_kb  # noqa: E402

import speechmetrics as sm  # noqa: E402  (daily_pairs put examples/ on the path)
from daily import Daily  # noqa: E402
from daily.server import RoomServer  # noqa: E402
from daily import CallClient  # noqa: E402


def counts() -> tuple[int, int, int]:
    return rss_kb(), len(os.listdir("/proc/self/task")), len(os.listdir("/proc/self/fd"))


def cycle(base: str, n: int, talk: float, pcm: bytes, k: int) -> int:
    """One join-talk-leave cycle; returns how many receivers rendered audio."""
    receivers = []
    for _ in range(n):
        r = Receiver(keep_pcm=False)
        r.client = CallClient(event_handler=r)
        receivers.append(r)
    senders = [Sender(keep_times=False) for _ in range(n)]
    mic = lambda s: {"inputs": {"microphone": {"isEnabled": True, "settings": {"customTrack": {"id": s.track.id}}}}}  # noqa: E731
    url = lambda i: f"{base}/soak-{k}-{i}"  # noqa: E731
    join_all([(r.client, None, url(i)) for i, r in enumerate(receivers)], 8, 60 + n)
    join_all([(s.client, mic(s), url(i)) for i, s in enumerate(senders)], 8, 60 + n)
    step = RATE // 50
    t_end = time.monotonic() + talk
    tick = time.monotonic()
    pos = 0
    while time.monotonic() < t_end:
        chunk = pcm[2 * pos : 2 * (pos + step)]
        for s in senders:
            with s.lock:
                if s.in_flight >= 5:
                    continue
                s.in_flight += 1
            s.source.write_frames(chunk, completion=s._done)
        pos = (pos + step) % (len(pcm) // 2 - step)
        tick += 0.02
        time.sleep(max(0.0, tick - time.monotonic()))
    rendered = sum(r.rendering.is_set() for r in receivers)
    left = threading.Semaphore(0)
    clients = [s.client for s in senders] + [r.client for r in receivers]
    for c in clients:
        c.leave(completion=lambda error: left.release())
    for _ in clients:
        left.acquire(timeout=10)
    for c in clients:
        c.release()
    return rendered


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=50)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--talk", type=float, default=10.0)
    a = p.parse_args()
    speech, _ = sm.read_wav_mono16(os.path.join(os.path.dirname(os.path.dirname(HERE)), "data", "librivox_16k.wav"))
    pcm = speech.astype("<i2").tobytes()
    Daily.init()
    rows = []
    with RoomServer(host="127.0.0.1", port=0) as server:
        t_end = time.monotonic() + a.minutes * 60
        k = 0
        while time.monotonic() < t_end:
            k += 1
            t0 = time.monotonic()
            rendered = cycle(server.url, a.pairs, a.talk, pcm, k)
            time.sleep(1.0)  # transports close asynchronously after release
            rss, threads, fds = counts()
            rows.append({"cycle": k, "rss_kb": rss, "threads": threads, "fds": fds, "rendered": rendered,
                         "seconds": round(time.monotonic() - t0, 1)})
            print(json.dumps(rows[-1]), flush=True)
    first, mid, last = rows[0], rows[len(rows) // 2], rows[-1]
    growth = {key: max(r[key] for r in rows) - first[key] for key in ("rss_kb", "threads", "fds")}
    # RSS climbs over the first cycles while the allocator's arenas reach their working size;
    # a leak keeps climbing. So RSS is judged over the second half of the run.
    second_half_rss_kb = last["rss_kb"] - mid["rss_kb"]
    flat = (last["threads"] == first["threads"] and last["fds"] == first["fds"]
            and last["rss_kb"] <= mid["rss_kb"] * 1.05)
    print(json.dumps({"pairs": a.pairs, "cycles": len(rows), "first": first, "middle": mid, "last": last,
                      "max_growth_after_first": growth, "rss_growth_second_half_kb": second_half_rss_kb,
                      "flat": flat}), flush=True)
    Daily.deinit()
    return 0 if flat else 1


if __name__ == "__main__":
    raise SystemExit(main())
