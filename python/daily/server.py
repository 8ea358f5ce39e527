"""The room server, embedded in this Python process.

    from daily.server import RoomServer

    with RoomServer(host="127.0.0.1", port=0) as server:
        url = server.room_url("demo")   # what a CallClient joins

The server (HTTP + WebSocket signalling and an audio SFU that forwards Opus RTP without
transcoding) runs on its own threads; ``start`` returns once it accepts connections. It binds
loopback unless told otherwise. Joining any room URL creates the room (public rooms).

With an ``api_key`` the server also offers Daily's REST API for rooms and meeting tokens at
``server.api_url`` (``Authorization: Bearer <api_key>``), so private rooms and owner tokens work
as on Daily, e.g. with pipecat's ``DailyRESTHelper(daily_api_key=key,
daily_api_url=server.api_url, ...)``. See ``docs/rest-api.md``.
"""

from __future__ import annotations

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
    :raises ValueError: for a host that is not an IP address, a port outside 0-65535 or an
        unusable ``api_key`` (raised by ``start``).
    :raises RuntimeError: when the address cannot be bound.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str | None = None) -> None:
        self._host = host
        self._port = port
        self._api_key = api_key
        self._core: _RoomServer | None = None

    def start(self) -> "RoomServer":
        """Starts the server; returns once it accepts connections. Idempotent."""
        if self._core is None:
            self._core = _RoomServer(self._host, self._port, self._api_key)
        return self

    def stop(self) -> None:
        """Tells every participant the call ended and stops the server. Idempotent."""
        if self._core is not None:
            self._core.shutdown()
            self._core = None

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self._core is None:
            raise RuntimeError("the server is not running")
        return self._core.url

    @property
    def api_url(self) -> str:
        """``http://HOST:PORT/v1``: the REST API's base URL (Daily's ``https://api.daily.co/v1``)."""
        return f"{self.url}/v1"

    def room_url(self, room: str) -> str:
        """The URL a client joins for ``room`` (1-128 characters of A-Z a-z 0-9 - _ .)."""
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
