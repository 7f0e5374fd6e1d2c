"""Byte transports for the adapters: TCP, TLS and WebSocket, over AnyIO streams.

A transport moves STOMP bytes and nothing else: ``send(data)``, ``receive()``
(``b""`` at EOF) and ``aclose()``. Over WebSocket (the handshake by wsproto,
the framing by websockets' sans-IO protocol: ``_wsstream.py``) each outgoing
STOMP frame is one WebSocket message, text when it is valid UTF-8 and binary
otherwise; incoming text and binary messages are both accepted, and frames
split across messages or several frames in one message are handled by the
STOMP parser, which sees one byte stream.
"""

from __future__ import annotations

import ssl as _ssl
from typing import Protocol
from urllib.parse import urlsplit

import anyio
import anyio.abc

from ._aiostream import AsyncioSocketStream
from ._wsstream import INVALID_PAYLOAD, MESSAGE_TOO_BIG, WebSocketStream

__all__ = ["STOMP_SUBPROTOCOLS", "Transport", "open_transport"]

#: The WebSocket subprotocols a client offers, best first.
STOMP_SUBPROTOCOLS = ("v12.stomp", "v11.stomp", "v10.stomp")
_READ_SIZE = 65536


class Transport(Protocol):
    """What the client and server need from a byte transport.

    ``joins_writes`` says whether one ``send()`` may carry several frames
    (a byte stream: the server joins a batch into one write) or must carry
    exactly one (WebSocket: one frame per message). A transport of one frame
    per message may also have ``send_frames(frames, progress)``, which sends
    each frame as its own message but all of them in one write (calling
    ``progress()`` after each piece of a long one); the server's writer uses
    it when it is there. ``aclose(error=True)``
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
        #: True once a read found the connection reset (not a clean EOF).
        self.reset = False

    @property
    def nowait(self) -> AsyncioSocketStream | None:
        """The stream, when the writer may write without a task (a server's
        TCP stream on asyncio): then :meth:`write_batch_nowait` writes."""
        stream = self.stream
        return stream if isinstance(stream, AsyncioSocketStream) else None

    def write_batch_nowait(self, frames: list[bytes]) -> bool:
        """The frames joined, to the kernel now (see AsyncioSocketStream.write_nowait)."""
        stream = self.stream
        assert isinstance(stream, AsyncioSocketStream)
        return stream.write_nowait(frames[0] if len(frames) == 1 else b"".join(frames))

    async def send(self, data: bytes) -> None:
        await self.stream.send(data)

    async def receive(self) -> bytes:
        try:
            return await self.stream.receive(_READ_SIZE)
        except anyio.BrokenResourceError:
            self.reset = True
            return b""
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return b""

    async def aclose(self, *, error: bool = False, linger: float | None = None) -> None:
        with anyio.CancelScope(shield=True):
            await self.stream.aclose()


class WebSocketTransport(WebSocketStream):
    """STOMP over a WebSocket client connection.

    :meth:`open` does the handshake (wsproto); from then on this is the
    :class:`~._wsstream.WebSocketStream` both roles share (``max_message_size``
    enforced, Pings answered, the Close handshake).
    """

    __slots__ = ("subprotocol",)

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        *,
        max_message_size: int,
        subprotocol: str | None = None,
        initial: bytes = b"",
    ) -> None:
        super().__init__(stream, client=True, max_message_size=max_message_size, initial=initial)
        self.subprotocol = subprotocol

    @property
    def failure(self) -> str | None:
        """Why the connection failed at the WebSocket level, in words; None if it did not."""
        code = self.framing_error
        if code is None:
            return None
        if code == INVALID_PAYLOAD:
            return (
                "the server sent a WebSocket text message that is not valid UTF-8 "
                "(a binary body; RabbitMQ needs web_stomp.ws_frame = binary)"
            )
        if code == MESSAGE_TOO_BIG:
            return (
                f"the server sent a WebSocket message larger than max_message_size "
                f"({self.max_message_size} bytes)"
            )
        return f"WebSocket protocol error (close code {code})"

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
        await stream.send(
            ws.send(Request(host=host, target=path, subprotocols=list(STOMP_SUBPROTOCOLS)))
        )
        while True:
            try:
                data = await stream.receive(_READ_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                data = b""
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    # What came after the 101 (h11 keeps it) is the first WebSocket data.
                    h11_conn = getattr(ws.handshake, "_h11_connection", None)
                    trailing = bytes(h11_conn.trailing_data[0]) if h11_conn is not None else b""
                    return cls(
                        stream,
                        max_message_size=max_message_size,
                        subprotocol=event.subprotocol,
                        initial=trailing,
                    )
                if isinstance(event, RejectConnection):
                    raise ConnectionError(f"WebSocket handshake rejected: HTTP {event.status_code}")
            if not data:
                raise ConnectionError(
                    "the server closed the connection during the WebSocket handshake"
                )


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
