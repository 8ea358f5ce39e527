"""``daily-server``: run the room server until Ctrl-C (SIGINT) or SIGTERM (which, in cluster
mode, drains the node first)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

from daily.server import RoomServer


def _drain(server: RoomServer, timeout: float, signals: list[int]) -> None:
    """Drains a cluster node (``RoomServer.drain``) until it is empty, ``timeout`` seconds
    pass, or a second signal arrives."""
    server.drain()
    print(f"daily-server draining (up to {timeout:g} s)", flush=True)
    deadline = time.monotonic() + timeout
    while len(signals) == 1 and time.monotonic() < deadline and not server.is_drained():
        time.sleep(0.25)


def main(argv: list[str] | None = None) -> int:
    """Runs ``daily-server`` with the command line ``argv`` (default ``sys.argv[1:]``; ``--help``
    lists the options): starts a ``RoomServer``, prints its URL and serves until SIGINT or
    SIGTERM, then tells participants the call ended. Returns the exit status: 0, or 1 (message
    on stderr) when the server cannot start (bad option, address in use)."""
    p = argparse.ArgumentParser(prog="daily-server", description="Room server for the open Daily SDK.")
    p.add_argument("--host", default="127.0.0.1", help="IP address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7880, help="TCP port (default 7880; 0 = any free port)")
    p.add_argument(
        "--api-key",
        default=None,
        help="enables the REST API (/v1) and signs meeting tokens; default: $DAILY_API_KEY "
        "(preferred: command lines are visible to other users); the flag wins",
    )
    p.add_argument("--tls-cert", default=None, help="serve HTTPS/WSS with this PEM certificate chain (with --tls-key)")
    p.add_argument("--tls-key", default=None, help="the PEM private key of --tls-cert")
    p.add_argument(
        "--recordings-dir",
        default=None,
        metavar="DIR",
        help="turns on server-side recording (CallClient.start_recording): a directory per "
        "recording under DIR with an Ogg/Opus file per audio track, mix.ogg and recording.json "
        "(GET /v1/recordings, with --api-key); without it start_recording fails",
    )
    p.add_argument(
        "--redis",
        default=None,
        metavar="URL",
        help="cluster mode (docs/scaling.md): redis://[:password@]HOST:PORT[/db] of the Redis the "
        "nodes share; the server registers as a node (heartbeat 1 s, expiry 4 s), GET /v1/nodes "
        "lists the live nodes; fails to start if Redis is unreachable",
    )
    p.add_argument("--node-url", default=None, metavar="URL",
                   help="with --redis: the base URL clients reach this node on (default: its own URL)")
    p.add_argument("--drain-timeout", type=float, default=300.0, metavar="SECS",
                   help="with --redis, SIGTERM drains the node: no new rooms, calls go on until they end "
                   "or SECS pass, then it stops (default 300; a second SIGTERM or SIGINT stops at once); "
                   "without --redis SIGTERM stops at once")
    lim = p.add_argument_group("limits", "connection limits (docs/server-limits.md); default: the server's")
    lim.add_argument("--http-idle-timeout", type=float, default=None, metavar="SECS",
                     help="close an HTTP connection that sends no request head for SECS (default 20)")
    lim.add_argument("--join-timeout", type=float, default=None, metavar="SECS",
                     help="close a signalling WebSocket that sends no join for SECS (default 10)")
    lim.add_argument("--max-connections", type=int, default=None, metavar="N",
                     help="open TCP connections in all; past it 503 (default: half the fd limit, 64-4096)")
    lim.add_argument("--max-connections-per-ip", type=int, default=None, metavar="N",
                     help="open TCP connections from one address (IPv6: /64); past it 429 (default 512)")
    lim.add_argument("--max-pending-joins", type=int, default=None, metavar="N",
                     help="signalling WebSockets not yet joined; past it 503 (default 256)")
    lim.add_argument("--resume-grace", type=float, default=None, metavar="SECS",
                     help="keep a participant whose signalling dropped without leave for SECS (default 60)")
    lim.add_argument("--app-message-rate", type=int, default=None, metavar="N",
                     help="app messages per second per participant, bursts of 2N; 0: no limit (default 20)")
    lim.add_argument("--update-rate", type=int, default=None, metavar="N",
                     help="participant updates per second per participant, bursts of 2N; 0: no limit (default 5)")
    args = p.parse_args(argv)
    api_key = args.api_key if args.api_key is not None else (os.environ.get("DAILY_API_KEY") or None)
    if args.drain_timeout < 0:
        p.error("--drain-timeout must be 0 or more")
    stop = threading.Event()
    signals: list[int] = []

    def on_signal(sig: int, _frame: object) -> None:
        signals.append(sig)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        server = RoomServer(
            args.host,
            args.port,
            api_key=api_key,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            http_idle_timeout=args.http_idle_timeout,
            join_timeout=args.join_timeout,
            max_connections=args.max_connections,
            max_connections_per_ip=args.max_connections_per_ip,
            max_pending_joins=args.max_pending_joins,
            resume_grace=args.resume_grace,
            app_message_rate=args.app_message_rate,
            update_rate=args.update_rate,
            recordings_dir=args.recordings_dir,
            redis_url=args.redis,
            node_url=args.node_url,
        ).start()
    except (RuntimeError, ValueError) as e:
        print(f"daily-server: {e}", file=sys.stderr)
        return 1
    print(f"daily-server listening on {server.url}", flush=True)
    if api_key is not None:
        print(f"REST API at {server.api_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
        if args.redis is not None and signals[:1] == [signal.SIGTERM]:
            _drain(server, args.drain_timeout, signals)
    finally:
        server.stop()
    print("daily-server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
