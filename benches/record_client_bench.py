"""What client-side recording (`daily.AudioBufferProcessor`) costs, per minute of a 2-party call.

A room server runs in a child process; each measured run is a fresh Python process holding both
participants: a "bot" and a "user" client, each sending speech (data/librivox_16k.wav, looped)
through a custom track in real time and receiving the other. The run measures the process's CPU
time (user + system, `resource.getrusage`, all threads) and its RSS (`/proc/self/status`) over
`--seconds` of steady call, in one of these modes:

- ``baseline``: no processor;
- ``chunks``: a processor (16 kHz mono) with ``buffer_size`` 32000 (1 s per track) and an
  ``on_track_audio_data`` handler that drops the chunks;
- ``keep``: ``buffer_size=0`` and an ``on_audio_data`` handler: everything is kept until stop
  (memory grows with the call);
- ``wav`` / ``ogg``: ``record_to`` a WAV / Ogg file, no chunk handler (nothing accumulates).

The figures per minute are (mode − baseline) × 60 / seconds; the script prints every run and
the min / median per mode.

    python benches/record_client_bench.py --seconds 20 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEECH = os.path.join(ROOT, "data", "librivox_16k.wav")
MODES = ("baseline", "chunks", "keep", "wav", "ogg")


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_one(url: str, mode: str, seconds: float, tmp: str) -> dict:
    import wave

    from daily import AudioBufferProcessor, CallClient, CustomAudioSource, CustomAudioTrack, Daily

    with wave.open(SPEECH) as w:
        speech = w.readframes(w.getnframes())
    Daily.init()
    clients, sources, stop = [], [], threading.Event()

    def speak(src) -> None:
        step = 16000 * 2  # 1 s per write, paced by the source
        i = 0
        while not stop.is_set():
            chunk = speech[i : i + step]
            if len(chunk) < step:
                i = 0
                continue
            src.write_frames(chunk)
            i += step

    for name in ("bot", "user"):
        src = CustomAudioSource(16000, 1)
        track = CustomAudioTrack(src)
        c = CallClient()
        done = threading.Event()
        c.set_user_name(name)
        c.join(
            url,
            client_settings={"inputs": {"microphone": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}},
            completion=lambda data, error: done.set(),
        )
        assert done.wait(15)
        clients.append(c)
        sources.append((src, track))
    threads = [threading.Thread(target=speak, args=(s,), daemon=True) for s, _ in sources]
    for t in threads:
        t.start()
    time.sleep(3.0)  # transports up, jitter buffers settled
    proc = None
    if mode != "baseline":
        proc = AudioBufferProcessor(clients[0], buffer_size=32000 if mode == "chunks" else 0)
        if mode == "chunks":
            proc.add_event_handler("on_track_audio_data", lambda p, u, b, sr, nch: None)
        elif mode == "keep":
            proc.add_event_handler("on_audio_data", lambda p, a, sr, nch: None)
        elif mode in ("wav", "ogg"):
            proc.record_to(os.path.join(tmp, f"bench.{mode}"))
    rss0, cpu0, t0 = rss_kb(), cpu_s(), time.monotonic()
    assert seconds > 5.0, "--seconds must exceed the 5 s start window"
    if proc is not None:
        proc.start_recording()
    time.sleep(5.0)
    rss5 = rss_kb()
    time.sleep(max(0.0, seconds - 5.0))
    rss_end = rss_kb()
    if proc is not None:
        proc.stop_recording()
        proc.wait_stopped(10)
    cpu1, t1, rss1 = cpu_s(), time.monotonic(), rss_kb()
    stop.set()
    for c in clients:
        c.release()
    Daily.deinit()
    return {
        "mode": mode,
        "wall_s": t1 - t0,
        "cpu_s": cpu1 - cpu0,
        # RSS: what starting cost (first 5 s), then how fast it grew while recording.
        "rss_start_kb": rss5 - rss0,
        "rss_kb_per_min": (rss_end - rss5) / max(1e-9, seconds - 5.0) * 60,
        "rss_total_kb": rss1 - rss0,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ", ".join(MODES))
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run_one(a.url, a.one, a.seconds, tmp)))
        return
    from daily.server import RoomServer

    server = subprocess.Popen(
        [sys.executable, "-c", "import time; from daily.server import RoomServer\n"
         "s = RoomServer(host='127.0.0.1', port=0); s.start(); print(s.room_url('x').rsplit('/', 1)[0], flush=True)\n"
         "time.sleep(100000)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    del RoomServer
    try:
        base = server.stdout.readline().strip()
        modes = [m for m in a.modes.split(",") if m]
        unknown = set(modes) - set(MODES)
        if unknown or "baseline" not in modes:
            raise SystemExit(f"--modes takes {', '.join(MODES)} and must include baseline")
        results: dict[str, list[dict]] = {m: [] for m in modes}
        for run in range(a.runs):
            for mode in modes:
                url = f"{base}/bench-{run}-{mode}"
                out = subprocess.run(
                    [sys.executable, __file__, "--one", mode, "--url", url, "--seconds", str(a.seconds)],
                    capture_output=True, text=True, timeout=a.seconds + 120,
                )
                line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
                if not line.startswith("{"):
                    raise SystemExit(f"{mode} failed: {out.stdout}\n{out.stderr}")
                r = json.loads(line)
                results[mode].append(r)
                print(f"run {run} {mode:8s} cpu {r['cpu_s']:.3f} s over {r['wall_s']:.1f} s, "
                      f"RSS +{r['rss_start_kb']} KB in the first 5 s, then {r['rss_kb_per_min']:.0f} KB/min "
                      f"(+{r['rss_total_kb']} KB after stop)", flush=True)
        base_cpu = [r["cpu_s"] / r["wall_s"] for r in results["baseline"]]
        print("\nper minute of call (CPU s: the mode's minus the baseline's median; RSS growth):")
        for mode in modes:
            per_min = [r["cpu_s"] / r["wall_s"] * 60 for r in results[mode]]
            extra = [(c / 60 - statistics.median(base_cpu)) * 60 for c in per_min]
            rss = [r["rss_kb_per_min"] for r in results[mode]]
            start = [r["rss_start_kb"] for r in results[mode]]
            print(f"  {mode:8s} CPU {min(per_min):.2f} / {statistics.median(per_min):.2f} s/min (min/median), "
                  f"extra {min(extra):+.2f} / {statistics.median(extra):+.2f} s/min; "
                  f"RSS +{min(start)} / {statistics.median(start):.0f} KB at start, "
                  f"then {min(rss):.0f} / {statistics.median(rss):.0f} KB/min")
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    main()
