"""The room server, embedded in this Python process.

    from daily.server import RoomServer

    with RoomServer(host="127.0.0.1", port=0) as server:
        url = server.room_url("demo")   # what a CallClient joins

The server (HTTP + WebSocket signalling and an audio SFU that forwards Opus RTP without
transcoding) runs on its own threads; ``start`` returns once it accepts connections. It binds
loopback unless told otherwise. Joining any room URL creates the room (public rooms).
"""

from __future__ import annotations

from types import TracebackType

from daily.daily import _RoomServer

__all__ = ["RoomServer"]


class RoomServer:
    """A room server running inside this process.

    :param host: IP address to bind (default ``127.0.0.1``).
    :param port: TCP port for HTTP/WebSocket; 0 picks a free one.
    :raises ValueError: for a host that is not an IP address or a port outside 0-65535.
    :raises RuntimeError: when the address cannot be bound.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._core: _RoomServer | None = None

    def start(self) -> "RoomServer":
        """Starts the server; returns once it accepts connections. Idempotent."""
        if self._core is None:
            self._core = _RoomServer(self._host, self._port)
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
