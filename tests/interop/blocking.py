"""The sans-IO core driven over a plain blocking socket (no adapters).

Used by the broker fixtures' readiness probe and by the smoke tests, so that
the broker infrastructure depends on nothing but ``stomp_proto``'s core.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from typing import TypeVar

from stomp_proto import (
    NEED_DATA,
    PAUSED,
    ClientConnection,
    Connect,
    Connected,
    ConnectionClosed,
    Disconnect,
    Error,
    Event,
    Heartbeat,
    LocalProtocolError,
    Receipt,
)

E = TypeVar("E", bound=Event)


class StompError(Exception):
    """The broker answered with an ERROR frame (kept in ``.error``)."""

    def __init__(self, error: Error) -> None:
        detail = error.body[:500].decode("utf-8", "replace").strip()
        super().__init__(f"ERROR {error.message!r}" + (f": {detail}" if detail else ""))
        self.error = error


class BlockingStompClient:
    """A :class:`ClientConnection` over a blocking socket.

    Every wait has a timeout (``socket.timeout`` / ``TimeoutError`` when it
    runs out); heart-beats from the broker are skipped, none are sent.
    """

    def __init__(self, sock: socket.socket, *, timeout: float = 10.0) -> None:
        self.sock = sock
        self.timeout = timeout
        self.conn = ClientConnection()
        self.connected: Connected | None = None

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        *,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> BlockingStompClient:
        sock = socket.create_connection((host, port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if ssl_context is not None:
                sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or host)
        except BaseException:
            sock.close()
            raise
        return cls(sock, timeout=timeout)

    # -- I/O -----------------------------------------------------------------

    def send(self, event: Event) -> None:
        data = self.conn.send(event)
        if data:
            self.sock.sendall(data)

    def next_event(self, timeout: float | None = None) -> Event:
        """The next event that is not a heart-beat; EOF is ConnectionClosed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            event = self.conn.next_event()
            if event is NEED_DATA:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no complete frame from the broker in time")
                self.sock.settimeout(remaining)
                try:
                    data = self.sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                self.conn.receive_data(data)
                continue
            if event is PAUSED:  # pragma: no cover - a client never pauses
                raise AssertionError("client connection paused")
            assert isinstance(event, Event)
            if isinstance(event, Heartbeat):
                continue
            return event

    def expect(self, kind: type[E], timeout: float | None = None) -> E:
        """The next event, which must be a ``kind`` (an ERROR raises StompError)."""
        event = self.next_event(timeout)
        if isinstance(event, Error) and kind is not Error:
            raise StompError(event)
        if not isinstance(event, kind):
            raise AssertionError(f"expected {kind.__name__}, got {event!r}")
        return event

    # -- session -------------------------------------------------------------

    def connect(self, connect: Connect, timeout: float | None = None) -> Connected:
        self.send(connect)
        self.connected = self.expect(Connected, timeout)
        return self.connected

    def disconnect(self, receipt: str | None = "bye", timeout: float | None = None) -> None:
        """DISCONNECT (with a receipt, awaited), then close the socket."""
        try:
            self.send(Disconnect(receipt=receipt))
            if receipt is not None:
                self.expect(Receipt, timeout)
        finally:
            self.close()

    def close(self) -> None:
        with contextlib.suppress(LocalProtocolError):  # already in ERROR
            self.conn.send(ConnectionClosed())
        self.sock.close()

    def __enter__(self) -> BlockingStompClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
