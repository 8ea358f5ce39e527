"""Where a join's time goes: joins a room on the embedded server N times (a bot with a custom
microphone track, as the main job) with the core's debug logs forwarded to Python, prints the
join times and, for the last join, each client and server log line with its time since
`join()` was called (ms).

    python3 benches/join_timeline.py [--joins 6]

Log forwarding itself costs a little; compare versions with this script, not with the main
job's figures.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time

from daily import CallClient, CustomAudioSource, CustomAudioTrack, Daily, LogLevel
from daily.server import RoomServer


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[float, str, str]] = []

    def emit(self, r: logging.LogRecord) -> None:
        self.records.append((r.created, r.name, r.getMessage()[:90]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--joins", type=int, default=6)
    args = p.parse_args()
    rec = Records()
    logging.getLogger("daily").addHandler(rec)
    logging.getLogger("daily").setLevel(logging.DEBUG)
    Daily.init()
    Daily.set_log_level(LogLevel.Debug)
    times = []
    try:
        with RoomServer(host="127.0.0.1", port=0) as server:
            url = server.room_url("timeline")
            for i in range(args.joins):
                track = CustomAudioTrack(CustomAudioSource(16000, 1))
                client = CallClient()
                done = threading.Event()
                at: list[float] = []
                rec.records.clear()
                t0 = time.time()
                settings = {"inputs": {"microphone": {"isEnabled": True, "settings": {"customTrack": {"id": track.id}}}}}
                client.join(url, client_settings=settings, completion=lambda d, e: (at.append(time.time()), done.set()))
                assert done.wait(15), "join did not complete"
                times.append((at[0] - t0) * 1000)
                if i == args.joins - 1:
                    for t, name, msg in rec.records:
                        if name in ("daily.daily_client", "daily.daily_server"):
                            print(f"{(t - t0) * 1000:8.1f} ms  {name}  {msg}")
                left = threading.Event()
                client.leave(completion=lambda e: left.set())
                left.wait(5)
                client.release()
    finally:
        Daily.set_log_level(LogLevel.Off)
    print("join ms", [round(x, 1) for x in times])


if __name__ == "__main__":
    main()
