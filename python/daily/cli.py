"""``daily-server``: run the room server until Ctrl-C (SIGINT) or SIGTERM."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from daily.server import RoomServer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="daily-server", description="Room server for the open Daily SDK.")
    p.add_argument("--host", default="127.0.0.1", help="IP address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7880, help="TCP port (default 7880; 0 = any free port)")
    p.add_argument(
        "--api-key",
        default=None,
        help="enables the REST API (/v1) and signs meeting tokens; default: $DAILY_API_KEY "
        "(preferred: command lines are visible to other users); the flag wins",
    )
    args = p.parse_args(argv)
    api_key = args.api_key if args.api_key is not None else (os.environ.get("DAILY_API_KEY") or None)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server = RoomServer(args.host, args.port, api_key=api_key).start()
    except (RuntimeError, ValueError) as e:
        print(f"daily-server: {e}", file=sys.stderr)
        return 1
    print(f"daily-server listening on {server.url}", flush=True)
    if api_key is not None:
        print(f"REST API at {server.api_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    print("daily-server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
