"""What cluster mode costs (issue 20, docs/scaling.md): Redis commands per join and per second
per node, Redis memory per room, node CPU with calls (direct and relayed), and what one Redis
answers per second on this machine.

Starts a real ``redis-server`` on a free loopback port and ``--nodes`` ``daily-server --redis``
processes (``python -m daily.cli``), then:

1. idle: Redis commands per second per node (heartbeats), from ``INFO commandstats`` counts;
2. memory: ``--rooms`` rooms created through REST (round-robin over the nodes), Redis
   ``used_memory`` before and after, per room; and commands per creation;
3. joins: ``--pairs`` ad-hoc rooms, in each a bot joining through node ``i`` and a listener
   through node ``i+1`` (so at least one of the two is relayed), commands per join (the idle
   rate subtracted);
4. calls: the bots speak LibriVox speech for ``--seconds``; CPU of every node process
   (``/proc/PID/stat`` user + system) with its participants, and Redis commands per second;
5. capacity: ``redis-benchmark`` (Debian's, same machine) for SET, GET, HSET and EVALSHA-like
   requests per second with 50 clients, no pipelining (the scripts are not simulated).

Counts are exact; CPU and throughput figures depend on the machine and what else runs.

    python benches/cluster_bench.py --nodes 3 --pairs 15 --seconds 20 --rooms 1000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))

import speechmetrics as sm  # noqa: E402
from daily import CallClient, CustomAudioSource, CustomAudioTrack, Daily  # noqa: E402

KEY = "bench-key"
TICK = os.sysconf("SC_CLK_TCK")
RATE = 16000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(port: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True).stdout


def commandstats(port: int) -> dict[str, int]:
    out = cli(port, "INFO", "commandstats")
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"cmdstat_(\w+(?:\|\w+)?):calls=(\d+)", out)}


def total(stats: dict[str, int]) -> int:
    return sum(stats.values())


def used_memory(port: int) -> int:
    return int(re.search(r"used_memory:(\d+)", cli(port, "INFO", "memory")).group(1))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def request(url: str, method: str = "GET", body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {KEY}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def join(client: CallClient, url: str, settings: dict | None = None) -> None:
    done = threading.Event()
    result: list = []

    def completion(data, error):
        result.append(error)
        done.set()

    client.join(url, client_settings=settings, completion=completion)
    if not done.wait(20) or result[0] is not None:
        raise RuntimeError(f"join {url} failed: {result}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rooms", type=int, default=1000)
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    redis = shutil.which("redis-server")
    if redis is None:
        raise SystemExit("redis-server not installed (apt-get install redis-server)")

    port = free_port()
    rp = subprocess.Popen([redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                          stdout=subprocess.DEVNULL)
    nodes: list[tuple[subprocess.Popen, str]] = []
    clients: list[CallClient] = []
    result: dict = {"nodes": args.nodes, "pairs": args.pairs, "date": time.strftime("%Y-%m-%d %H:%M")}
    Daily.init()
    try:
        time.sleep(0.5)
        base_mem = used_memory(port)
        for _ in range(args.nodes):
            p = subprocess.Popen([sys.executable, "-m", "daily.cli", "--port", "0", "--api-key", KEY,
                                  "--redis", f"redis://127.0.0.1:{port}"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            url = re.search(r"(http://\S+)", p.stdout.readline()).group(1)
            nodes.append((p, url))
        time.sleep(2.5)
        result["redis_memory_bytes_nodes_only"] = used_memory(port) - base_mem

        # 1. Idle.
        cli(port, "CONFIG", "RESETSTAT")
        time.sleep(args.idle_seconds)
        idle = commandstats(port)
        idle_rate = total(idle) / args.idle_seconds
        result["idle_commands_per_s_per_node"] = round(idle_rate / args.nodes, 2)
        result["idle_commands"] = idle

        # 2. Rooms: memory and commands per creation.
        mem0 = used_memory(port)
        cli(port, "CONFIG", "RESETSTAT")
        t0 = time.monotonic()
        for i in range(args.rooms):
            request(f"{nodes[i % args.nodes][1]}/v1/rooms", "POST", {"name": f"bench-room-{i}"})
        took = time.monotonic() - t0
        created = total(commandstats(port)) - idle_rate * took
        result["room_create_commands"] = round(created / args.rooms, 2)
        result["room_create_ms_mean"] = round(took / args.rooms * 1000, 2)
        time.sleep(1.5)  # the heartbeats now list the rooms
        result["redis_bytes_per_room"] = round((used_memory(port) - mem0) / args.rooms, 1)

        # 3. Joins: ad-hoc rooms, bot through node i, listener through node i+1.
        sent, rate = sm.read_wav_mono16(os.path.join(ROOT, "data", "librivox_16k.wav"))
        assert rate == RATE
        pcm = sent.astype("<i2").tobytes()
        sources = []
        cli(port, "CONFIG", "RESETSTAT")
        t0 = time.monotonic()
        for i in range(args.pairs):
            src = CustomAudioSource(RATE, 1)
            track = CustomAudioTrack(src)
            bot, listener = CallClient(), CallClient()
            clients += [bot, listener]
            settings = {"inputs": {"microphone": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}}
            join(bot, f"{nodes[i % args.nodes][1]}/pair-{i}", settings)
            join(listener, f"{nodes[(i + 1) % args.nodes][1]}/pair-{i}")
            sources.append((src, track))
        took = time.monotonic() - t0
        joined = total(commandstats(port)) - idle_rate * took
        result["join_commands"] = round(joined / (2 * args.pairs), 2)
        result["join_commandstats"] = commandstats(port)

        # 4. Calls: speech for --seconds.
        stop = threading.Event()

        def speak(src):
            step = 2 * RATE // 50
            k = 0
            while not stop.is_set():
                src.write_frames(pcm[k : k + step])
                k = (k + step) % (len(pcm) - step)

        threads = [threading.Thread(target=speak, args=(s,), daemon=True) for s, _ in sources]
        for t in threads:
            t.start()
        time.sleep(2.0)
        listing = request(f"{nodes[0][1]}/v1/nodes")["data"]
        by_url = {e["url"]: e for e in listing}
        cpu0 = [cpu_seconds(p.pid) for p, _ in nodes]
        cli(port, "CONFIG", "RESETSTAT")
        time.sleep(args.seconds)
        calls = commandstats(port)
        cpu1 = [cpu_seconds(p.pid) for p, _ in nodes]
        stop.set()
        result["calls_commands_per_s_per_node"] = round(total(calls) / args.seconds / args.nodes, 2)
        result["calls_commands"] = calls
        result["node_cpu"] = [
            {
                "participants": by_url[url]["participants"],
                "rooms": len(by_url[url]["rooms"]),
                "cpu_percent_of_one_core": round((c1 - c0) / args.seconds * 100, 1),
            }
            for (p, url), c0, c1 in zip(nodes, cpu0, cpu1)
        ]
        for t in threads:
            t.join(2)
    finally:
        for c in clients:
            c.leave()
            c.release()
        for p, _ in nodes:
            p.terminate()
        for p, _ in nodes:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        Daily.deinit()

    # 5. One Redis's capacity here.
    try:
        out = subprocess.run(["redis-benchmark", "-p", str(port), "-q", "-n", "100000", "-c", "50", "-t", "set,get,hset"],
                             capture_output=True, text=True, timeout=120).stdout
        result["redis_benchmark_requests_per_s"] = {
            m.group(1): float(m.group(2)) for m in re.finditer(r"(\w+): ([\d.]+) requests per second", out)
        }
    finally:
        rp.kill()
        rp.wait()
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
