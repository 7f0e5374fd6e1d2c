"""STOMP over WebSocket, server side: the upgrade handshake (wsproto) and the transport.

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
  it is valid UTF-8, binary otherwise (or always binary with ``binary=True``);
  the frames the session's writer has queued go out in one socket write.
* Close codes: 1000, or 1002 when the session ended with an ERROR (the session
  says so when it closes; the transport never reads the STOMP bytes). The server
  waits briefly for the client's Close reply before closing TCP, so that what
  was written last (the RECEIPT for DISCONNECT, an ERROR) is not lost to a reset.

The handshake is wsproto's (h11 parses the request); once it is answered, the
wsproto connection is dropped and the open connection is framed by
``_wsstream.py`` (websockets' sans-IO protocol).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import ssl as _ssl
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from .. import SUPPORTED_VERSIONS, Limits
from ._listener import listen, server_log
from ._server import Handler, session_starter
from ._transport import STOMP_SUBPROTOCOLS
from ._wsstream import WebSocketStream

if TYPE_CHECKING:
    from wsproto.events import Request

__all__ = ["WebSocketServerTransport", "accept_websocket", "choose_subprotocol", "serve_websocket"]

_READ_SIZE = 65536


def choose_subprotocol(offered: Sequence[str]) -> str | None:
    """The STOMP subprotocol to echo for ``offered``: the best one offered, or None."""
    for name in STOMP_SUBPROTOCOLS:
        if name in offered:
            return name
    return None


class WebSocketServerTransport(WebSocketStream):
    """STOMP over the server end of an accepted WebSocket connection.

    Made by :func:`accept_websocket`. ``request`` is the client's upgrade request
    (a wsproto ``Request``: ``target``, ``host``, ``extra_headers``);
    ``subprotocol`` is what was echoed; ``initial`` what the client sent
    after its request, before the answer.
    """

    __slots__ = ("request", "subprotocol")

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        request: Request,
        *,
        subprotocol: str | None,
        max_message_size: int,
        binary: bool | None = None,
        close_timeout: float = 2.0,
        initial: bytes = b"",
    ) -> None:
        super().__init__(
            stream,
            client=False,
            max_message_size=max_message_size,
            binary=binary,
            close_timeout=close_timeout,
            initial=initial,
        )
        self.request = request
        self.subprotocol = subprotocol


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
                if http is not None and head.startswith(b"POST ") and hasattr(http, "post"):
                    head = await _read_body(stream, head)
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
            return WebSocketServerTransport(
                stream,
                event,
                subprotocol=subprotocol,
                max_message_size=max_message_size,
                binary=binary,
                close_timeout=close_timeout,
                initial=trailing,
            )


#: ``http(target) -> (status, headers, body)`` or None (404): plain HTTP GETs
#: on a WebSocket listener (a page that opens the WebSocket, its scripts). A
#: handler with a ``post(target, body)`` method of the same answers also gets
#: the POSTs (a body of at most 64 KiB, sized by Content-Length).
HttpHandler = Callable[[str], tuple[int, Sequence[tuple[str, str]], bytes] | None]
_MAX_HTTP_HEAD = 16384
_MAX_HTTP_BODY = 65536
_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    304: "Not Modified",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    426: "Upgrade Required",
}


async def _read_body(stream: anyio.abc.ByteStream, head: bytes) -> bytes:
    """``head`` and the rest of the request's body, as its Content-Length
    says (none beyond :data:`_MAX_HTTP_BODY`: the handler never sees it)."""
    while True:
        top, blank, body = head.partition(b"\r\n\r\n")
        if blank:
            length = _content_length(top)
            if length is None or length > _MAX_HTTP_BODY or len(body) >= length:
                return head
        elif len(head) > _MAX_HTTP_HEAD:
            return head
        try:
            head += await stream.receive(_READ_SIZE)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return head


def _content_length(top: bytes) -> int | None:
    for line in top.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value) if value.strip().isdigit() else None
    return 0


def _plain_http(head: bytes, http: HttpHandler) -> bytes | None:
    """The response to a plain (non-upgrade) GET/HEAD request (or a POST, for
    a handler with ``post``), or None if it is not one."""
    line, _, _ = head.partition(b"\r\n")
    parts = line.split(b" ")
    post = getattr(http, "post", None) if parts[0] == b"POST" else None
    methods = (b"GET", b"HEAD", b"POST") if post is not None else (b"GET", b"HEAD")
    if len(parts) != 3 or parts[0] not in methods or not parts[2].startswith(b"HTTP/1."):
        return None
    target = parts[1].decode("latin-1")
    try:
        if post is None:
            answer = http(target)
        else:
            top, _, body = head.partition(b"\r\n\r\n")
            length = _content_length(top)
            if length is None or length > _MAX_HTTP_BODY:
                answer = (413, [("content-type", "text/plain")], b"body too large")
            elif len(body) < length:
                answer = (400, [("content-type", "text/plain")], b"incomplete body")
            else:
                answer = post(target, body[:length])
    except Exception:
        server_log(
            "http handler", logging.ERROR, "HTTP handler failed for %r", target[:200], exc_info=True
        )
        answer = (500, [("content-type", "text/plain")], b"internal error")
    if answer is None:
        answer = (404, [("content-type", "text/plain")], b"not found")
    status, headers, body = answer
    out = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}".encode()]
    out += [f"{k}: {v}".encode("latin-1") for k, v in headers]
    out += [f"content-length: {len(body)}".encode(), b"connection: close", b"", b""]
    return b"\r\n".join(out) + (body if parts[0] != b"HEAD" else b"")


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
    for module in ("wsproto", "websockets"):  # at start, not at the first connection
        if importlib.util.find_spec(module) is None:
            raise RuntimeError(
                f"STOMP over WebSocket needs {module}: pip install 'stomp-proto[websocket]'"
            )
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
