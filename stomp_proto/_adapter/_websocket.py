"""STOMP over WebSocket, server side: the upgrade handshake and the transport (wsproto).

``serve_websocket(handler, host, port, path="/ws")`` is :func:`serve` for
browsers: it answers the HTTP/1.1 Upgrade request, then runs
``await handler(session)`` with a :class:`ServerSession` whose transport
speaks WebSocket. What stompjs, RabbitMQ Web-STOMP and Spring agree on:

* Subprotocols: when the client offers some, the best STOMP one it offered is
  echoed (``v12.stomp`` > ``v11.stomp`` > ``v10.stomp``; browsers fail the
  handshake otherwise). With no STOMP offer the connection is accepted without
  one; the STOMP version is negotiated by ``accept-version`` either way.
* Incoming text and binary messages are one byte stream for the STOMP parser,
  so a frame may span messages and a message may hold several frames and
  heart-beats. A message larger than ``max_message_size`` closes with 1009,
  invalid UTF-8 in a text message with 1007.
* Each STOMP frame (and each heart-beat EOL) goes out as one message: text when
  it is valid UTF-8, binary otherwise (or always binary with ``binary=True``).
* Close codes: 1000, or 1002 when the session ended with an ERROR (the session
  says so when it closes; the transport never reads the STOMP bytes). The server
  waits briefly for the client's Close reply before closing TCP, so that what
  was written last (the RECEIPT for DISCONNECT, an ERROR) is not lost to a reset.
"""

from __future__ import annotations

import contextlib
import logging
import ssl as _ssl
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from .. import SUPPORTED_VERSIONS, Limits
from ._listener import listen
from ._server import Handler, session_starter
from ._transport import STOMP_SUBPROTOCOLS

log = logging.getLogger("stomp_proto.server")

if TYPE_CHECKING:
    from wsproto import WSConnection
    from wsproto.events import Request

__all__ = ["WebSocketServerTransport", "accept_websocket", "choose_subprotocol", "serve_websocket"]

_READ_SIZE = 65536
#: Close codes (RFC 6455 §7.4.1).
NORMAL_CLOSURE = 1000
PROTOCOL_ERROR = 1002
MESSAGE_TOO_BIG = 1009


def choose_subprotocol(offered: Sequence[str]) -> str | None:
    """The STOMP subprotocol to echo for ``offered``: the best one offered, or None."""
    for name in STOMP_SUBPROTOCOLS:
        if name in offered:
            return name
    return None


class WebSocketServerTransport:
    """STOMP over the server end of an accepted WebSocket connection (wsproto).

    Made by :func:`accept_websocket`. ``request`` is the client's upgrade request
    (``target``, ``host``, ``extra_headers``); ``subprotocol`` is what was echoed.
    """

    joins_writes = False

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        ws: WSConnection,
        request: Request,
        *,
        subprotocol: str | None,
        max_message_size: int,
        binary: bool | None = None,
        close_timeout: float = 2.0,
    ) -> None:
        self.stream = stream
        self.ws = ws
        self.request = request
        self.subprotocol = subprotocol
        self.max_message_size = max_message_size
        self.binary = binary
        self.close_timeout = close_timeout
        #: The close code sent (or to be sent) to the client.
        self.close_code = NORMAL_CLOSURE
        self._pending: list[bytes] = []
        self._message_size = 0
        self._done = False  # no more input: the peer closed, or we decided to close
        self._broken = False  # the peer broke WebSocket framing: don't wait for its Close
        self._stream_closed = False
        self._receiving = False
        self._peer_closed = anyio.Event()
        self._send_lock = anyio.Lock()

    async def _write(self, data: bytes) -> None:
        async with self._send_lock:
            await self.stream.send(data)

    async def _read_raw(self) -> bytes:
        self._receiving = True
        try:
            return await self.stream.receive(_READ_SIZE)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return b""
        finally:
            self._receiving = False

    async def send(self, data: bytes) -> None:
        """Send ``data`` (one STOMP frame or heart-beat) as one WebSocket message."""
        from wsproto.connection import ConnectionState
        from wsproto.events import BytesMessage, TextMessage

        if self._stream_closed:
            raise anyio.ClosedResourceError
        if self._done or self.ws.state is not ConnectionState.OPEN:
            return  # closing: what the client would get after the Close is dropped
        message: TextMessage | BytesMessage
        if self.binary:
            message = BytesMessage(data=data)
        else:
            try:
                message = TextMessage(data=data.decode())
            except UnicodeDecodeError:
                message = BytesMessage(data=data)
        await self._write(self.ws.send(message))

    async def receive(self) -> bytes:
        """The next STOMP bytes from the client; ``b""`` once the connection is closing."""
        while not self._pending:
            await self._handle_events()
            if self._pending:
                break
            if self._done:
                return b""
            data = await self._read_raw()
            if self._stream_closed:
                self._done = True
                continue
            self.ws.receive_data(data or None)
        return self._pending.pop(0)

    async def _handle_events(self) -> None:
        from wsproto.connection import ConnectionState
        from wsproto.events import BytesMessage, CloseConnection, Message, Ping

        ws = self.ws
        for event in ws.events():
            if self._done:
                if isinstance(event, CloseConnection) and ws.state is ConnectionState.CLOSED:
                    self._peer_closed.set()  # the reply to our Close, read for aclose()
                continue
            if isinstance(event, Message):
                chunk = (
                    bytes(event.data) if isinstance(event, BytesMessage) else event.data.encode()
                )
                self._message_size += len(chunk)
                if self._message_size > self.max_message_size:
                    self.close_code = MESSAGE_TOO_BIG
                    self._done = True
                    continue
                if event.message_finished:
                    self._message_size = 0
                if chunk:
                    self._pending.append(chunk)
            elif isinstance(event, Ping):
                with contextlib.suppress(Exception):  # the connection may be going away
                    await self._write(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self._done = True
                if ws.state is ConnectionState.REMOTE_CLOSING:  # the client closes: reply
                    self.close_code = event.code
                    with contextlib.suppress(Exception):
                        await self._write(ws.send(event.response()))
                elif ws.state is ConnectionState.OPEN:  # wsproto found bad framing (1002, 1007)
                    self.close_code = event.code
                    self._broken = True
                self._peer_closed.set()

    async def aclose(self, *, error: bool = False, linger: float | None = None) -> None:
        """Close with :attr:`close_code`, wait for the reply, close TCP.

        ``error``: the session ended with an ERROR frame, so the code is 1002
        unless the transport already chose one (1009, 1007, the client's). The
        Close frame and its reply get ``linger`` seconds (default
        ``close_timeout``); with a message half-written (a writer blocked on a
        full socket) no Close can be framed, and TCP is closed at once.
        """
        from wsproto.connection import ConnectionState
        from wsproto.events import CloseConnection

        with anyio.CancelScope(shield=True):
            if self._stream_closed:
                return
            self._done = True
            if error and self.close_code == NORMAL_CLOSURE:
                self.close_code = PROTOCOL_ERROR
            wait = self.close_timeout if linger is None else min(linger, self.close_timeout)
            with anyio.move_on_after(wait):
                if self.ws.state is ConnectionState.OPEN and not self._send_lock.locked():
                    with contextlib.suppress(Exception):  # closing anyway
                        await self._write(self.ws.send(CloseConnection(code=self.close_code)))
                if self.ws.state is ConnectionState.LOCAL_CLOSING and not self._broken:
                    await self._await_close_reply()
            self._stream_closed = True
            await self.stream.aclose()

    async def _await_close_reply(self) -> None:
        if self._receiving:  # another task is reading and will see the reply
            await self._peer_closed.wait()
            return
        while not self._peer_closed.is_set():
            data = await self._read_raw()
            if not data:
                return
            self.ws.receive_data(data)
            await self._handle_events()


async def accept_websocket(
    stream: anyio.abc.ByteStream,
    *,
    path: str = "/ws",
    max_message_size: int,
    binary: bool | None = None,
    close_timeout: float = 2.0,
    http: HttpHandler | None = None,
) -> WebSocketServerTransport | None:
    """Answer the HTTP/1.1 Upgrade request on ``stream``.

    Returns the transport, or None when the request was rejected (another path:
    404; not a WebSocket upgrade: 400) or the client went away; the caller then
    closes ``stream``. Put a timeout around it. With ``http``, a plain GET or
    HEAD request (no upgrade) is answered by ``http(target)``: a ``(status,
    headers, body)`` triple, or None for 404; then the connection closes.
    """
    try:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, RejectConnection, Request
        from wsproto.utilities import RemoteProtocolError
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "STOMP over WebSocket needs: pip install 'stomp-proto[websocket]'"
        ) from exc
    ws = WSConnection(ConnectionType.SERVER)
    head = b""
    while True:
        try:
            data = await stream.receive(_READ_SIZE)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return None
        if http is not None and len(head) < _MAX_HTTP_HEAD:
            head += data
        try:
            ws.receive_data(data)
            events = list(ws.events())
        except RemoteProtocolError as exc:  # not HTTP, or not a WebSocket upgrade
            with contextlib.suppress(Exception):
                response = _plain_http(head, http) if http is not None else None
                if response is not None:
                    await stream.send(response)
                else:
                    await stream.send(ws.send(exc.event_hint or RejectConnection(status_code=400)))
            return None
        for event in events:
            if not isinstance(event, Request):  # pragma: no cover - a server sees requests only
                continue
            if event.target.partition("?")[0] != path:
                await stream.send(ws.send(RejectConnection(status_code=404)))
                return None
            # wsproto drops bytes that came after the request (a client must wait
            # for the 101, but one that doesn't should not lose its CONNECT).
            h11_conn = getattr(ws.handshake, "_h11_connection", None)
            trailing = bytes(h11_conn.trailing_data[0]) if h11_conn is not None else b""
            subprotocol = choose_subprotocol(event.subprotocols)
            await stream.send(ws.send(AcceptConnection(subprotocol=subprotocol)))
            if trailing:
                ws.receive_data(trailing)
            return WebSocketServerTransport(
                stream,
                ws,
                event,
                subprotocol=subprotocol,
                max_message_size=max_message_size,
                binary=binary,
                close_timeout=close_timeout,
            )


#: ``http(target) -> (status, headers, body)`` or None (404): plain HTTP GETs
#: on a WebSocket listener (a page that opens the WebSocket, its scripts).
HttpHandler = Callable[[str], tuple[int, Sequence[tuple[str, str]], bytes] | None]
_MAX_HTTP_HEAD = 16384
_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    304: "Not Modified",
    404: "Not Found",
}


def _plain_http(head: bytes, http: HttpHandler) -> bytes | None:
    """The response to a plain (non-upgrade) GET/HEAD request, or None if it is not one."""
    line, _, _ = head.partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or parts[0] not in (b"GET", b"HEAD") or not parts[2].startswith(b"HTTP/1."):
        return None
    target = parts[1].decode("latin-1")
    try:
        answer = http(target)
    except Exception:
        log.exception("HTTP handler failed for %r", target[:200])
        answer = (500, [("content-type", "text/plain")], b"internal error")
    if answer is None:
        answer = (404, [("content-type", "text/plain")], b"not found")
    status, headers, body = answer
    out = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}".encode()]
    out += [f"{k}: {v}".encode("latin-1") for k, v in headers]
    out += [f"content-length: {len(body)}".encode(), b"connection: close", b"", b""]
    return b"\r\n".join(out) + (body if parts[0] == b"GET" else b"")


async def serve_websocket(
    handler: Handler,
    host: str = "127.0.0.1",
    port: int = 15674,
    *,
    path: str = "/ws",
    ssl: _ssl.SSLContext | None = None,
    versions: Sequence[str] = SUPPORTED_VERSIONS,
    heart_beat: tuple[int, int] = (0, 0),
    grace: float = 2.0,
    limits: Limits | None = None,
    max_message_size: int | None = None,
    binary: bool | None = None,
    connect_timeout: float | None = 5.0,
    handshake_timeout: float = 10.0,
    close_timeout: float = 2.0,
    http: HttpHandler | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve STOMP over WebSocket (``ws://host:port/path``; ``wss://`` with ``ssl``).

    With ``http``, plain HTTP GETs on the same port are answered by it (see
    :func:`accept_websocket`): how a page and the WebSocket it opens share
    one address.

    ``await handler(session)`` runs per connection, as with :func:`serve`.
    ``max_message_size`` bounds one incoming WebSocket message (default: the
    largest frame ``limits`` allow); ``binary=True`` sends every frame as a
    binary message. A client that has not completed the upgrade (and the TLS
    handshake) within ``handshake_timeout`` seconds is dropped, and one whose
    CONNECT frame has not arrived within ``connect_timeout`` seconds of the
    accept (handshakes included) is sent ERROR and closed (None: no deadline). With
    ``await task_group.start(serve_websocket, handler, host, 0)`` the bound port
    is returned.
    """
    if max_message_size is None:
        lim = limits if limits is not None else Limits()
        max_message_size = lim.max_header_size + lim.max_body_size
    size = max_message_size

    async def upgrade(stream: anyio.abc.ByteStream) -> WebSocketServerTransport | None:
        return await accept_websocket(
            stream,
            path=path,
            max_message_size=size,
            binary=binary,
            close_timeout=close_timeout,
            http=http,
        )

    await listen(
        host,
        port,
        upgrade=upgrade,
        start=session_starter(handler, versions, heart_beat, grace, limits, connect_timeout),
        ssl=ssl,
        connect_timeout=connect_timeout,
        handshake_timeout=handshake_timeout,
        task_status=task_status,
    )
