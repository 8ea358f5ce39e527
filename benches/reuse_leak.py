"""Threads and memory of a process whose clients join and leave the same room many times.

    python3 benches/reuse_leak.py [--cycles 100] [--mode both|same|fresh] [--every 10] [--hold S]

- ``same``: one bot (a CustomAudioTrack as its microphone) and one listener (a renderer on the
  bot) are made once; each cycle both join the room, the bot speaks 0.3 s of speech, the
  listener waits (bounded) for the first rendered audio, both leave. The same CallClient
  objects every cycle (issue 16 item 7).
- ``fresh``: the same cycle with new CallClient objects (and a new track) each time, released
  at the end of the cycle: the contrast.
- ``both`` (default) runs ``same`` then ``fresh``, each in a fresh child process.

The room server is a separate ``daily-server`` process on loopback, so the figures are the
clients' only. Every ``--every`` cycles the process prints its thread count
(``len(os.listdir('/proc/self/task'))``), VmRSS from ``/proc/self/status`` and the thread names
(``/proc/self/task/*/comm``) that changed since cycle 0, and how many of the renderer
callbacks handed to ``set_audio_renderer`` (one per cycle: the bot has a new participant id
each time) are still alive after a garbage collection, i.e. still held by the client. ``--hold S`` keeps the process alive
S seconds after the last cycle (its pid printed) for ``py-spy dump --pid PID`` or gdb.
``--netns`` puts the server and the clients in two network namespaces (``tests/netimpair``,
root): the client then joins a non-loopback address, as on a real network (on loopback it
gathers loopback candidates only). ``--embedded`` runs the server inside the measured process instead (its threads and memory
then count too); ``--speak S`` sets the speech per cycle,
``--call-seconds S`` keeps each cycle in the call S seconds after its first audio.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import subprocess
import sys
import threading
import time
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPEECH = os.path.join(ROOT, "data", "librivox_16k.wav")
RATE = 16000


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def names() -> collections.Counter:
    c: collections.Counter = collections.Counter()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                c[f.read().strip()] += 1
        except OSError:
            pass
    return c


def start_server() -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen([sys.executable, "-u", "-m", "daily.cli", "--host", "127.0.0.1", "--port", "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    deadline = time.monotonic() + 20
    assert p.stdout is not None
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if "listening on" in line:
            return p, line.split("listening on", 1)[1].strip()
        if not line and p.poll() is not None:
            break
    p.kill()
    raise SystemExit("reuse_leak: daily-server did not start")


def child(mode: str, cycles: int, every: int, hold: float, url: str, speak: float = 0.3,
          call_seconds: float = 0.0) -> int:
    from daily import CallClient, CustomAudioSource, CustomAudioTrack, Daily, EventHandler

    with wave.open(SPEECH, "rb") as w:
        speech = w.readframes(int(speak * RATE))

    class Listener(EventHandler):
        def __init__(self) -> None:
            self.client: CallClient | None = None
            self.heard = threading.Event()

        def on_participant_joined(self, participant):
            if participant["info"].get("userName") == "bot" and self.client is not None:
                self.client.set_audio_renderer(participant["id"], Sink(self.heard),
                                               sample_rate=RATE, callback_interval_ms=20)

    class Sink:
        """A renderer callback that counts its instances still alive (held by the client)."""

        alive = 0

        def __init__(self, heard: threading.Event) -> None:
            self.heard = heard
            Sink.alive += 1

        def __call__(self, *a) -> None:
            self.heard.set()

        def __del__(self) -> None:
            Sink.alive -= 1

    def wait(fn, timeout=15.0):
        done = threading.Event()
        box: list = []

        def completion(*args):
            box.append(args)
            done.set()

        fn(completion)
        if not done.wait(timeout):
            raise RuntimeError("completion did not fire in time")
        return box[0]

    Daily.init()
    embedded = None
    if url == "embedded":  # the server in this process: its threads and memory count too
        from daily.server import RoomServer

        embedded = RoomServer(host="127.0.0.1", port=0).start()
        url = embedded.url
    room = f"{url}/leak-{mode}-{os.getpid()}"

    def make():
        source = CustomAudioSource(RATE, 1)
        track = CustomAudioTrack(source)
        handler = Listener()
        listener = CallClient(event_handler=handler)
        handler.client = listener
        listener.set_user_name("listener")
        bot = CallClient()
        bot.set_user_name("bot")
        return source, track, handler, listener, bot

    rows: list[dict] = []

    def report(cycle: int, extra: str = "") -> None:
        gc.collect()
        row = {"mode": mode, "cycle": cycle, "threads": threads(), "rss_mb": round(rss_mb(), 1),
               "renderer_sinks_alive": Sink.alive}
        diff = names() - base_names
        row["new_threads"] = dict(diff)
        rows.append(row)
        print(json.dumps(row) + extra, flush=True)

    objs = make() if mode == "same" else None
    time.sleep(0.2)  # threads started by init/make name themselves
    base_names = names()
    report(0)
    t_start = time.monotonic()
    unheard = 0
    for cycle in range(1, cycles + 1):
        source, track, handler, listener, bot = objs if objs is not None else make()
        handler.heard.clear()
        data, err = wait(lambda c: listener.join(room, completion=c))
        if err:
            raise RuntimeError(f"cycle {cycle}: listener join: {err}")
        settings = {"inputs": {"camera": False, "microphone": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}}
        data, err = wait(lambda c: bot.join(room, client_settings=settings, completion=c))
        if err:
            raise RuntimeError(f"cycle {cycle}: bot join: {err}")
        source.write_frames(speech, completion=lambda n: None)
        if not handler.heard.wait(5):
            unheard += 1
        if call_seconds > 0:  # stay in the call (network stats, the jitter buffer, RTCP run)
            time.sleep(call_seconds)
        (err,) = wait(lambda c: bot.leave(completion=c))
        (err2,) = wait(lambda c: listener.leave(completion=c))
        if objs is None:
            bot.release()
            listener.release()
            del source, track, handler, listener, bot
        if cycle % every == 0:
            report(cycle)
    took = time.monotonic() - t_start
    print(json.dumps({"mode": mode, "cycles": cycles, "seconds": round(took, 1), "cycles_without_audio": unheard}),
          flush=True)
    if hold > 0:
        print(f"holding {hold:g} s: pid {os.getpid()}", flush=True)
        time.sleep(hold)
    if objs is not None:
        objs[3].release()
        objs[4].release()
    if embedded is not None:
        embedded.stop()
    Daily.deinit()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cycles", type=int, default=100)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--mode", choices=["both", "same", "fresh"], default="both")
    p.add_argument("--hold", type=float, default=0.0, help="seconds to stay alive after the last cycle")
    p.add_argument("--speak", type=float, default=0.3, help="seconds of speech the bot writes per cycle")
    p.add_argument("--call-seconds", type=float, default=0.0,
                   help="seconds each cycle stays in the call after the first audio (default 0)")
    p.add_argument("--embedded", action="store_true",
                   help="run the room server inside the measured process (daily.server.RoomServer)")
    p.add_argument("--netns", action="store_true",
                   help="server and clients in two network namespaces (tests/netimpair; root): the "
                        "clients then use a non-loopback address, as on a real network")
    p.add_argument("--url", help="(internal) the server's URL for a child run")
    a = p.parse_args()
    if a.url:
        return child(a.mode, a.cycles, a.every, a.hold, a.url, a.speak, a.call_seconds)
    lab = None
    prefix: list[str] = []
    if a.netns:
        sys.path.insert(0, os.path.join(ROOT, "tests"))
        from netimpair import NetLab, netlab_unavailable

        why = netlab_unavailable()
        if why:
            raise SystemExit(f"reuse_leak: {why}")
        lab = NetLab()
        server, url = None, lab.base_url
        prefix = ["ip", "netns", "exec", lab.cli_ns]
    else:
        server, url = (None, "embedded") if a.embedded else start_server()
    try:
        modes = ["same", "fresh"] if a.mode == "both" else [a.mode]
        for mode in modes:
            r = subprocess.run(prefix + [sys.executable, os.path.abspath(__file__), "--mode", mode, "--cycles", str(a.cycles),
                                "--every", str(a.every), "--hold", str(a.hold), "--speak", str(a.speak), "--call-seconds", str(a.call_seconds),
                                "--url", url],
                               timeout=60 + a.cycles * 20 + a.hold)
            if r.returncode != 0:
                return r.returncode
    finally:
        if lab is not None:
            lab.close()
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
