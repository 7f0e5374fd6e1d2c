"""Byte transports for the adapters: TCP, TLS and WebSocket, over AnyIO streams.

A transport moves STOMP bytes and nothing else: ``send(data)``, ``receive()``
(``b""`` at EOF) and ``aclose()``. WebSocket framing is done with wsproto (the
sans-IO WebSocket library, the same architecture as ours): each outgoing
STOMP frame is one WebSocket message, text when it is valid UTF-8 and binary
otherwise; incoming text and binary messages are both accepted, and frames
split across messages or several frames in one message are handled by the
STOMP parser, which sees one byte stream.
"""

from __future__ import annotations

import contextlib
import ssl as _ssl
from typing import Protocol
from urllib.parse import urlsplit

import anyio
import anyio.abc

__all__ = ["STOMP_SUBPROTOCOLS", "Transport", "open_transport"]

#: The WebSocket subprotocols a client offers, best first.
STOMP_SUBPROTOCOLS = ("v12.stomp", "v11.stomp", "v10.stomp")
_READ_SIZE = 65536


class Transport(Protocol):
    """What the client and server need from a byte transport.

    ``joins_writes`` says whether one ``send()`` may carry several frames
    (a byte stream: the server joins a batch into one write) or must carry
    exactly one (WebSocket: one frame per message). ``aclose(error=True)``
    says the session ended with an ERROR frame (WebSocket closes with 1002
    instead of 1000); ``linger`` bounds how long a closing handshake may wait
    for the peer (None: the transport's own default).
    """

    joins_writes: bool

    async def send(self, data: bytes) -> None: ...  # pragma: no cover

    async def receive(self) -> bytes: ...  # pragma: no cover

    async def aclose(
        self, *, error: bool = False, linger: float | None = None
    ) -> None: ...  # pragma: no cover


class StreamTransport:
    """STOMP over a TCP (or TLS) byte stream."""

    joins_writes = True

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def receive(self) -> bytes:
        try:
            return await self.stream.receive(_READ_SIZE)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return b""

    async def aclose(self, *, error: bool = False, linger: float | None = None) -> None:
        with anyio.CancelScope(shield=True):
            await self.stream.aclose()


class WebSocketTransport:
    """STOMP over a WebSocket client connection (wsproto)."""

    joins_writes = False

    def __init__(self, stream: anyio.abc.ByteStream, ws: object) -> None:
        self.stream = stream
        self.ws = ws
        self.subprotocol: str | None = None
        #: Why we failed the connection, when we did.
        self.failure: str | None = None
        self._pending: list[bytes] = []
        self._closed = False

    @classmethod
    async def open(
        cls, stream: anyio.abc.ByteStream, host: str, path: str, max_message_size: int
    ) -> WebSocketTransport:
        try:
            from wsproto import ConnectionType, WSConnection
            from wsproto.events import AcceptConnection, RejectConnection, Request
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "STOMP over WebSocket needs: pip install 'stomp-proto[websocket]'"
            ) from exc
        ws = WSConnection(ConnectionType.CLIENT)
        self = cls(stream, ws)
        await stream.send(
            ws.send(Request(host=host, target=path, subprotocols=list(STOMP_SUBPROTOCOLS)))
        )
        while True:
            data = await self._read_raw()
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    self.subprotocol = event.subprotocol
                    return self
                if isinstance(event, RejectConnection):
                    raise ConnectionError(f"WebSocket handshake rejected: HTTP {event.status_code}")
            if not data:
                raise ConnectionError(
                    "the server closed the connection during the WebSocket handshake"
                )

    async def _read_raw(self) -> bytes:
        try:
            return await self.stream.receive(_READ_SIZE)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return b""

    async def send(self, data: bytes) -> None:
        from wsproto.events import BytesMessage, TextMessage

        message: TextMessage | BytesMessage
        try:
            message = TextMessage(data=data.decode())
        except UnicodeDecodeError:
            message = BytesMessage(data=data)
        await self.stream.send(self.ws.send(message))  # type: ignore[attr-defined]

    async def receive(self) -> bytes:
        from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

        while not self._pending:
            if self._closed:
                return b""
            data = await self._read_raw()
            self.ws.receive_data(data or None)  # type: ignore[attr-defined]
            for event in self.ws.events():  # type: ignore[attr-defined]
                if isinstance(event, TextMessage):
                    self._pending.append(event.data.encode())
                elif isinstance(event, BytesMessage):
                    self._pending.append(bytes(event.data))
                elif isinstance(event, Ping):
                    await self.stream.send(self.ws.send(event.response()))  # type: ignore[attr-defined]
                elif isinstance(event, CloseConnection):
                    self._closed = True
                    if event.code == 1007:  # we are failing the connection
                        self.failure = (
                            "the server sent a WebSocket text message that is not valid UTF-8 "
                            "(a binary body; RabbitMQ needs web_stomp.ws_frame = binary)"
                        )
                    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                        await self.stream.send(self.ws.send(event.response()))  # type: ignore[attr-defined]
            if not data:
                self._closed = True
        return self._pending.pop(0)

    async def aclose(self, *, error: bool = False, linger: float | None = None) -> None:
        from wsproto.events import CloseConnection

        with anyio.CancelScope(shield=True):
            if not self._closed:
                self._closed = True
                with contextlib.suppress(Exception):  # closing anyway
                    await self.stream.send(self.ws.send(CloseConnection(code=1000)))  # type: ignore[attr-defined]
            await self.stream.aclose()


async def open_transport(
    target: str,
    port: int,
    *,
    ssl: bool | _ssl.SSLContext,
    server_hostname: str | None,
    max_message_size: int,
) -> Transport:
    """Open a transport to ``target``: a host name, or a ``ws://`` / ``wss://`` URL."""
    if target.startswith(("ws://", "wss://")):
        url = urlsplit(target)
        secure = url.scheme == "wss"
        host = url.hostname or "localhost"
        ws_port = url.port or (443 if secure else 80)
        context = _context(ssl if ssl is not False else secure)
        stream = await _connect(host, ws_port, context, server_hostname or host)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        return await WebSocketTransport.open(stream, url.netloc, path, max_message_size)
    stream = await _connect(target, port, _context(ssl), server_hostname or target)
    return StreamTransport(stream)


async def _connect(
    host: str, port: int, context: _ssl.SSLContext | None, server_hostname: str
) -> anyio.abc.ByteStream:
    stream: anyio.abc.ByteStream
    if context is None:
        stream = await anyio.connect_tcp(host, port)
    else:
        stream = await anyio.connect_tcp(
            host,
            port,
            ssl_context=context,
            tls_hostname=server_hostname,
            tls_standard_compatible=False,
        )
    _nodelay(stream)
    return stream


def _context(ssl: bool | _ssl.SSLContext) -> _ssl.SSLContext | None:
    if ssl is True:
        # Verifies the certificate chain and the host name against the system trust store.
        return _ssl.create_default_context()
    if ssl is False:
        return None
    return ssl


def _nodelay(stream: anyio.abc.ByteStream) -> None:
    import socket

    raw = stream.extra(anyio.abc.SocketAttribute.raw_socket, None)
    if raw is not None and raw.family in (socket.AF_INET, socket.AF_INET6):
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
