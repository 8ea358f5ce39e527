"""The room server, embedded in this Python process.

    from daily.server import RoomServer

    with RoomServer(host="127.0.0.1", port=0) as server:
        url = server.room_url("demo")   # what a CallClient joins

The server (HTTP + WebSocket signalling and an audio SFU that forwards Opus RTP without
transcoding) runs on its own threads; ``start`` returns once it accepts connections. It binds
loopback unless told otherwise. Joining any room URL creates the room (public rooms).

With an ``api_key`` the server also offers Daily's REST API for rooms and meeting tokens at
``server.api_url`` (``Authorization: Bearer <api_key>``), so private rooms and owner tokens work
as on Daily, e.g. with pipecat's ``DailyRESTHelper`` given
``daily_api_url=server.api_url``. See ``docs/rest-api.md``.

With ``tls_cert`` and ``tls_key`` the server speaks HTTPS and WSS itself and its URLs start
with ``https://``; clients verify it against the system's roots, or the PEM bundle named by
``SSL_CERT_FILE`` (a private or test CA). The connection limits (idle timeouts, caps) are
described in ``docs/server-limits.md``.
"""

from __future__ import annotations

import os
from types import TracebackType

from daily.daily import _RoomServer

__all__ = ["RoomServer"]


class RoomServer:
    """A room server running inside this process.

    :param host: IP address to bind (default ``127.0.0.1``).
    :param port: TCP port for HTTP/WebSocket; 0 picks a free one.
    :param api_key: the REST API's bearer key and the key meeting tokens are signed with
        (1-1024 visible ASCII characters). ``None`` (default): no REST API (it answers 401),
        every meeting token is refused and only public rooms exist. Not read from
        ``DAILY_API_KEY``: pass it explicitly.
    :param tls_cert: PEM certificate chain (server certificate first); with ``tls_key`` the
        server serves HTTPS and WSS. Both or neither.
    :param tls_key: PEM private key of the certificate (PKCS#8, PKCS#1 or SEC1).
    :param http_idle_timeout: seconds an HTTP connection may wait for a request's headers, new
        or kept alive (also bounds the TLS handshake). Default 20.
    :param join_timeout: seconds a signalling WebSocket may take to send ``join``. Default 10.
    :param max_connections: open TCP connections in all (beyond it, 503). Default half the
        process's file-descriptor limit, 64-4096.
    :param max_connections_per_ip: open TCP connections from one address, IPv6 by /64
        (beyond it, 429). Default 512.
    :param max_pending_joins: signalling WebSockets not yet joined (beyond it, 503). Default 256.
    :param resume_grace: seconds a participant whose signalling dropped without ``leave`` is
        kept, waiting for its client to resume the session. Default 60.
    :param app_message_rate: app messages per second per participant, in bursts of twice that;
        past it the sender's completion fails with "rate limited". 0: no limit. Default 20.
    :param update_rate: participant updates (rename, subscriptions, permissions, eject) per
        second per participant, bursts of twice that. 0: no limit. Default 5.
    :param recordings_dir: directory for server-side recordings (created if missing), which
        turns on ``CallClient.start_recording``: each recording is a subdirectory named by its
        recording id with one Ogg/Opus file per audio track (the RTP payloads as received, 48 kHz
        granules), ``mix.ogg`` (all tracks mixed, mono 48 kHz Opus) and ``recording.json`` (Daily's
        recording object plus each track's file and ``start_offset_ms``), listed by
        ``GET /v1/recordings`` (needs ``api_key``). ``None`` (default): ``start_recording`` fails
        with an error saying so. Only owners (and ``canAdmin: streaming``) may record when the
        server has an ``api_key``; without one, every participant may.
    :param redis_url: cluster mode (``docs/scaling.md``): ``redis://[:password@]HOST:PORT[/db]``
        of the Redis the nodes share. The server registers there as a node (heartbeat every
        1 s, entry expires 4 s after the last) and ``GET /v1/nodes`` lists the live nodes.
        ``None`` (default): a single server, nothing in Redis.
    :param node_url: with ``redis_url``: the base URL clients reach this node on. ``None``
        (default): the server's own ``url``.
    :raises ValueError: for a host that is not an IP address, a port outside 0-65535, an
        unusable ``api_key``, a certificate or key that cannot be loaded, a limit out of
        range, a ``recordings_dir`` that cannot be created, or a ``redis_url`` that is not a Redis
        URL (raised by ``start``).
    :raises RuntimeError: when the address cannot be bound or Redis cannot be reached within 5 s.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        *,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        http_idle_timeout: float | None = None,
        join_timeout: float | None = None,
        max_connections: int | None = None,
        max_connections_per_ip: int | None = None,
        max_pending_joins: int | None = None,
        resume_grace: float | None = None,
        app_message_rate: int | None = None,
        update_rate: int | None = None,
        recordings_dir: str | os.PathLike[str] | None = None,
        redis_url: str | None = None,
        node_url: str | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._api_key = api_key
        self._options = {
            "tls_cert": tls_cert,
            "tls_key": tls_key,
            "http_idle_timeout": http_idle_timeout,
            "join_timeout": join_timeout,
            "max_connections": max_connections,
            "max_connections_per_ip": max_connections_per_ip,
            "max_pending_joins": max_pending_joins,
            "resume_grace": resume_grace,
            "app_message_rate": app_message_rate,
            "update_rate": update_rate,
            "recordings_dir": recordings_dir,
            "redis_url": redis_url,
            "node_url": node_url,
        }
        self._core: _RoomServer | None = None

    def start(self) -> "RoomServer":
        """Starts the server; returns once it accepts connections (``self``, for chaining).
        Idempotent. Raises ``ValueError`` or ``RuntimeError`` as the class says."""
        if self._core is None:
            self._core = _RoomServer(self._host, self._port, self._api_key, **self._options)
        return self

    def drain(self) -> None:
        """Cluster mode (``redis_url``): starts draining. The node stops taking new rooms (it
        is listed as ``draining`` in ``GET /v1/nodes``, placement skips it, and rooms placed on
        it without a call here go to other nodes at their next join); running calls go on and
        still take joins. Poll :meth:`is_drained`, then :meth:`stop`; ``daily-server`` does
        this on SIGTERM (``--drain-timeout``). Idempotent. Raises ``RuntimeError`` without
        ``redis_url`` (a single server has nowhere to send new rooms) or when not running."""
        if self._core is None:
            raise RuntimeError("the server is not running")
        self._core.drain()

    def is_drained(self) -> bool:
        """Whether no participant is left on this server (counting those within their resume
        grace) and it relays no signalling to other nodes. Takes at most 2 s (``False`` if the
        server does not answer within it); ``True`` when not running."""
        if self._core is None:
            return True
        return self._core.is_drained()

    def stop(self) -> None:
        """Tells every participant the call ended and stops the server. Idempotent."""
        if self._core is not None:
            self._core.shutdown()
            self._core = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (``https://`` with TLS) of the running server, with the port
        actually bound (useful with ``port=0``). Raises ``RuntimeError`` when not running."""
        if self._core is None:
            raise RuntimeError("the server is not running")
        return self._core.url

    @property
    def api_url(self) -> str:
        """``http(s)://HOST:PORT/v1``: the REST API's base URL (Daily's
        ``https://api.daily.co/v1``); it answers only with an ``api_key``. Raises
        ``RuntimeError`` when not running."""
        return f"{self.url}/v1"

    def room_url(self, room: str) -> str:
        """The URL a client joins for ``room``: ``url + "/" + room``. Joining creates the
        room. Raises ``ValueError`` unless ``room`` is 1-128 characters of A-Z a-z 0-9 - _ .,
        ``RuntimeError`` when the server is not running."""
        if self._core is None:
            raise RuntimeError("the server is not running")
        return self._core.room_url(room)

    def __enter__(self) -> "RoomServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
