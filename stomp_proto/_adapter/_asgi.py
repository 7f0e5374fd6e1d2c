"""STOMP over a WebSocket that an ASGI server holds: the handshake's answer and the transport.

Under uvicorn, hypercorn or daphne the server owns the socket and the
WebSocket framing; the application sees ASGI messages (the ASGI spec's
WebSocket section). This module turns them into what the server side of the
adapter already runs on: a :class:`~._transport.Transport`, so that the
session over it is a plain :class:`~._server.ServerSession`, with the same
writer, timers, back-pressure and close rules as over our own WebSocket
listener (``_websocket.py``):

* Subprotocol: the best STOMP one the client offered (``v12.stomp`` >
  ``v11.stomp`` > ``v10.stomp``), echoed in ``websocket.accept``'s
  ``subprotocol`` key; none when the client offered none of them (the STOMP
  version is negotiated by ``accept-version`` either way).
* Refusal before the accept: ``websocket.http.response.start`` / ``.body``
  (the status and a plain-text body saying why) when the server offers that
  extension, ``websocket.close`` otherwise, which servers answer with 403.
* Incoming text and binary messages are one byte stream for the STOMP parser;
  one over ``max_message_size`` closes with 1009 (servers enforce their own
  limit, and invalid UTF-8 in a text message, before it reaches us).
* Each STOMP frame goes out as one ``websocket.send``: ``text`` when it is
  valid UTF-8, ``bytes`` otherwise (always ``bytes`` with ``binary=True``).
* Back-pressure: :meth:`AsgiWebSocketTransport.send` returns when the
  server's ``send`` does, which waits while the socket is full (uvicorn and
  hypercorn both do): nothing is buffered here, so a slow client's backlog
  stays in the session, where the broker's slow-consumer policy sees it.
* Close codes: 1000, or 1002 when the session ended with an ERROR frame, 1009
  for a message too big. After ``websocket.close`` the transport waits briefly
  (``close_timeout``) for the server's ``websocket.disconnect``, so that the
  last frames are not lost to a TCP reset; a write stuck on a full socket is
  given up at once (its frame counts as never written).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from ._websocket import choose_subprotocol
from ._wsstream import MESSAGE_TOO_BIG, NORMAL_CLOSURE, PROTOCOL_ERROR

__all__ = [
    "ASGIReceive",
    "ASGISend",
    "AsgiWebSocketTransport",
    "accept_asgi_websocket",
    "refuse_asgi_websocket",
]

#: An ASGI message: a dict with a ``type`` key.
Message = MutableMapping[str, Any]
#: ``await receive()``: the next ASGI message from the server.
ASGIReceive = Callable[[], Awaitable[Message]]
#: ``await send(message)``: an ASGI message to the server.
ASGISend = Callable[[Message], Awaitable[None]]

_HTTP_RESPONSE = "websocket.http.response"
#: How long handing ``websocket.close`` to the server may take when the
#: session leaves no time to linger (an aborted slow consumer).
_HAND_OVER = 0.1


class AsgiWebSocketTransport:
    """STOMP bytes over an accepted ASGI WebSocket connection (see the module docstring).

    :attr:`close_code` is the code we close with (or the one the client
    closed with); :attr:`framing_error` is 1009 when the client sent a message
    over ``max_message_size``.
    """

    joins_writes = False

    def __init__(
        self,
        receive: ASGIReceive,
        send: ASGISend,
        *,
        subprotocol: str | None,
        max_message_size: int,
        binary: bool | None = None,
        close_timeout: float = 2.0,
        scheme: str = "ws",
    ) -> None:
        #: ``ws`` or ``wss``, from the ASGI scope (what the broker's logs name).
        self.scheme = scheme
        self._receive = receive
        self._send = send
        self.subprotocol = subprotocol
        self.max_message_size = max_message_size
        self.binary = binary
        self.close_timeout = close_timeout
        #: The close code sent (or to be sent) to the client, or the one it closed with.
        self.close_code = NORMAL_CLOSURE
        #: 1009 when the client's message was over ``max_message_size``.
        self.framing_error: int | None = None
        self._done = False  # no more input or output: closing, or closed by the client
        self._closed = False  # aclose() has finished
        self._close_sent = False
        self._broken = False  # a send failed: the client is gone, no Close to exchange
        self._disconnected = anyio.Event()  # websocket.disconnect was received
        self._lock = anyio.Lock()  # one websocket.send at a time, then the close
        self._read_lock = anyio.Lock()  # one receive() at a time: the session's, or aclose()'s
        self._sending: anyio.CancelScope | None = None  # the write in flight
        self._receiving: anyio.CancelScope | None = None  # the read in flight
        self._closing: anyio.Event | None = None  # set once aclose() is done

    async def send(self, data: bytes) -> None:
        """Send ``data`` (one STOMP frame or heart-beat) as one WebSocket message.

        Returns when the server has taken it (it waits while the client's
        socket is full); raises :exc:`anyio.ClosedResourceError` once the
        transport is closed, or when :meth:`aclose` gave up on this write, and
        :exc:`anyio.BrokenResourceError` when the client is gone.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        if self._done:
            return  # closing: what the client would get after the Close is dropped
        message: Message = {"type": "websocket.send"}
        if self.binary:
            message["bytes"] = data
        else:
            try:
                message["text"] = data.decode()
            except UnicodeDecodeError:
                message["bytes"] = data
        async with self._lock:
            if self._done:
                return
            with anyio.CancelScope() as scope:
                self._sending = scope
                try:
                    await self._send(message)
                except Exception as exc:
                    # The client is gone: servers say so each their own way
                    # (uvicorn's ClientDisconnected, an OSError; Starlette's
                    # WebSocketDisconnect, when its WebSocket object is handed over).
                    self._done = self._broken = True
                    raise anyio.BrokenResourceError from exc
                finally:
                    self._sending = None
            if scope.cancelled_caught:  # given up by aclose(): never written
                raise anyio.ClosedResourceError

    async def receive(self) -> bytes:
        """The next STOMP bytes from the client; ``b""`` once the connection is closing."""
        while not self._done:
            message = await self._next_message()
            if message is None:
                break
            if message["type"] != "websocket.receive":
                continue
            chunk: bytes | str | None = message.get("bytes")
            if chunk is None:
                chunk = message.get("text") or ""
            data = chunk.encode() if isinstance(chunk, str) else bytes(chunk)
            if len(data) > self.max_message_size:
                self.close_code = self.framing_error = MESSAGE_TOO_BIG
                self._done = True
                break
            if data:
                return data
        return b""

    async def _next_message(self) -> Message | None:
        """The next ASGI message; None when the client is gone or we closed."""
        async with self._read_lock:
            if self._disconnected.is_set() or self._closed:
                return None
            with anyio.CancelScope() as scope:
                self._receiving = scope
                try:
                    message = await self._receive()
                finally:
                    self._receiving = None
        if scope.cancelled_caught:  # aclose() took over the reading
            return None
        if message["type"] == "websocket.disconnect":
            if not self._done:  # the client closed first: its code is the close code
                self.close_code = int(message.get("code", NORMAL_CLOSURE))
            self._done = True
            self._disconnected.set()
            return None
        return message

    async def aclose(self, *, error: bool = False, linger: float | None = None) -> None:
        """Send ``websocket.close`` with :attr:`close_code` and wait for the
        disconnect, within ``linger`` seconds (default ``close_timeout``).

        ``error``: the session ended with an ERROR frame, so the code is 1002
        unless the transport already chose one. A write in flight (stuck on a
        full socket) is given up first. A second call waits for the first.
        """
        with anyio.CancelScope(shield=True):
            if self._closing is not None:
                await self._closing.wait()
                return
            self._closing = anyio.Event()
            try:
                await self._close(error, linger)
            finally:
                self._closed = True
                if self._receiving is not None:  # a reader still waiting: it gets b""
                    self._receiving.cancel()
                self._closing.set()

    async def _close(self, error: bool, linger: float | None) -> None:
        if error and self.close_code == NORMAL_CLOSURE:
            self.close_code = PROTOCOL_ERROR
        self._done = True
        if self._broken:
            return
        wait = self.close_timeout if linger is None else min(linger, self.close_timeout)
        deadline = anyio.current_time() + wait
        # Handing the Close to the server is not waiting for the client: it
        # gets a moment even with no linger (what makes the server close).
        with anyio.move_on_after(max(wait, _HAND_OVER)):
            if self._sending is not None:  # a write stuck on a full socket: given up
                self._sending.cancel()
            async with self._lock:
                if not self._disconnected.is_set() and not self._close_sent:
                    self._close_sent = True
                    with contextlib.suppress(Exception):  # the client may be gone: closing anyway
                        await self._send({"type": "websocket.close", "code": self.close_code})
        with anyio.move_on_at(deadline):
            if self._receiving is not None:  # the session's reader: it gets b"" now
                self._receiving.cancel()
            while await self._next_message() is not None:  # until the disconnect
                pass


async def accept_asgi_websocket(
    scope: Message,
    receive: ASGIReceive,
    send: ASGISend,
    *,
    max_message_size: int,
    binary: bool | None = None,
    close_timeout: float = 2.0,
) -> AsgiWebSocketTransport | None:
    """Accept the WebSocket of ``scope`` (its ``websocket.connect`` is read
    here) with the best STOMP subprotocol the client offered; the transport,
    or None when the client went away first."""
    message = await receive()
    if message["type"] != "websocket.connect":  # websocket.disconnect: it gave up
        return None
    subprotocol = choose_subprotocol(scope.get("subprotocols") or ())
    accept: Message = {"type": "websocket.accept"}
    if subprotocol is not None:
        accept["subprotocol"] = subprotocol
    try:
        await send(accept)
    except OSError:
        return None
    return AsgiWebSocketTransport(
        receive,
        send,
        subprotocol=subprotocol,
        max_message_size=max_message_size,
        binary=binary,
        close_timeout=close_timeout,
        scheme="wss" if scope.get("scheme") == "wss" else "ws",
    )


async def refuse_asgi_websocket(
    scope: Message, receive: ASGIReceive, send: ASGISend, status: int, reason: str
) -> None:
    """Refuse the WebSocket of ``scope`` before accepting it: an HTTP
    ``status`` with ``reason`` as a plain-text body when the server offers the
    ``websocket.http.response`` extension; otherwise ``websocket.close``,
    which the server turns into 403 (and ``reason`` is lost)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    with contextlib.suppress(OSError):
        if _HTTP_RESPONSE in (scope.get("extensions") or {}):
            body = reason.encode() + b"\n"
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})
