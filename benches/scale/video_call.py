"""A 640x360@30 video call (one sender, one viewer) in a process of its own, against a given
room: the background load of `daily_pairs.py --video-call WxH`, which asks whether audio bots
on the same server notice a video call beside them (issue 17).

    python benches/scale/video_call.py --url http://127.0.0.1:PORT/video-bg [--size 640x360]

Prints `{"ready": true}` once the viewer renders frames, then runs until stdin closes or it is
killed; at the end prints `{"frames_written", "frames_rendered", "cpu_s"}`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "examples"))
import videopattern as vp  # noqa: E402

from daily import CallClient, CustomVideoSource, CustomVideoTrack, Daily  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--size", default="640x360")
    a = p.parse_args()
    w, h = (int(x) for x in a.size.split("x"))
    Daily.init()
    src = CustomVideoSource(w, h, "RGBA")
    track = CustomVideoTrack(src)
    frames = [vp.make_frame(n, w, h, "RGBA") for n in range(30)]  # a second of pattern, looped
    sender, viewer = CallClient(), CallClient()
    stop = threading.Event()
    written = [0]
    rendered = [0]
    first = threading.Event()

    def write() -> None:
        t0 = time.monotonic()
        while not stop.is_set():
            src.write_frame(frames[written[0] % len(frames)])
            written[0] += 1
            delay = t0 + written[0] / 30 - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def on_frame(participant_id, frame, video_source) -> None:
        rendered[0] += 1
        first.set()

    done = threading.Event()
    sender.join(a.url, client_settings={"inputs": {"camera": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}},
                completion=lambda d, e: done.set())
    done.wait(15)
    threading.Thread(target=write, daemon=True).start()
    done.clear()
    viewer.join(a.url, completion=lambda d, e: done.set())
    done.wait(15)
    viewer.set_video_renderer(sender.participants()["local"]["id"], on_frame)
    first.wait(15)
    print(json.dumps({"ready": first.is_set()}), flush=True)
    c0 = time.process_time()
    sys.stdin.read()  # until the driver closes our stdin
    stop.set()
    cpu = time.process_time() - c0
    for c in (viewer, sender):
        c.leave()
    time.sleep(0.3)
    for c in (viewer, sender):
        c.release()
    print(json.dumps({"frames_written": written[0], "frames_rendered": rendered[0], "cpu_s": round(cpu, 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
