"""One WebSocket stream for both roles: STOMP bytes over wsproto, after the handshake.

The client (:class:`~._transport.WebSocketTransport`) and the server
(:class:`~._websocket.WebSocketServerTransport`) differ only in their
handshake; from then on both are this class. Incoming text and binary
messages are one byte stream for the STOMP parser (a frame may span messages,
a message may hold several frames), a message over ``max_message_size`` fails
the connection with 1009, a Ping is answered with a Pong, and a Close is
answered (or, when we close first, waited for within ``close_timeout``) so
that the last frames written are not lost to a TCP reset. Each outgoing STOMP
frame is one message: text when it is valid UTF-8, binary otherwise (always
binary with ``binary=True``). wsproto is imported lazily: it is an optional
extra.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import TYPE_CHECKING

import anyio
import anyio.abc

if TYPE_CHECKING:
    from wsproto import WSConnection

__all__ = [
    "INVALID_PAYLOAD",
    "MESSAGE_TOO_BIG",
    "NORMAL_CLOSURE",
    "PROTOCOL_ERROR",
    "WebSocketStream",
]

_READ_SIZE = 65536
#: Close codes (RFC 6455 §7.4.1).
NORMAL_CLOSURE = 1000
PROTOCOL_ERROR = 1002
INVALID_PAYLOAD = 1007
MESSAGE_TOO_BIG = 1009


class WebSocketStream:
    """STOMP bytes over an open WebSocket connection (wsproto), for either role.

    ``stream`` is the TCP (or TLS) stream after the handshake, ``ws`` the
    wsproto connection that did it. :attr:`close_code` is the code we close
    with (or the peer closed with); :attr:`framing_error` is set when the
    connection failed at the WebSocket level: 1009 (a message over
    ``max_message_size``), 1007 (a text message not valid UTF-8), 1002 (bad
    framing).
    """

    joins_writes = False

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        ws: WSConnection,
        *,
        max_message_size: int,
        binary: bool | None = None,
        close_timeout: float = 2.0,
    ) -> None:
        self.stream = stream
        self.ws = ws
        self.max_message_size = max_message_size
        self.binary = binary
        self.close_timeout = close_timeout
        #: The close code sent (or to be sent) to the peer, or the one it closed with.
        self.close_code = NORMAL_CLOSURE
        #: Why the connection failed at the WebSocket level, when it did.
        self.framing_error: int | None = None
        #: True once a read found the TCP connection reset (not a clean EOF).
        self.reset = False
        self._pending: deque[bytes] = deque()
        self._message_size = 0
        self._done = False  # no more input: the peer closed, or we decided to close
        self._broken = False  # the peer broke WebSocket framing: don't wait for its Close
        self._stream_closed = False
        self._receiving = False
        self._peer_closed = anyio.Event()
        self._send_lock = anyio.Lock()
        self._closing: anyio.Event | None = None  # set once aclose() is done

    async def _write(self, data: bytes) -> None:
        async with self._send_lock:
            await self.stream.send(data)

    async def _read_raw(self) -> bytes:
        self._receiving = True
        try:
            return await self.stream.receive(_READ_SIZE)
        except anyio.BrokenResourceError:
            self.reset = True
            return b""
        except (anyio.EndOfStream, anyio.ClosedResourceError):
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
        """The next STOMP bytes from the peer; ``b""`` once the connection is closing."""
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
        return self._pending.popleft()

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
                    self.close_code = self.framing_error = MESSAGE_TOO_BIG
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
                if ws.state is ConnectionState.REMOTE_CLOSING:  # the peer closes: reply
                    self.close_code = event.code
                    with contextlib.suppress(Exception):
                        await self._write(ws.send(event.response()))
                elif ws.state is ConnectionState.OPEN:  # wsproto found bad framing (1002, 1007)
                    self.close_code = self.framing_error = event.code
                    self._broken = True
                self._peer_closed.set()

    async def aclose(self, *, error: bool = False, linger: float | None = None) -> None:
        """Close with :attr:`close_code`, wait for the reply, close TCP.

        ``error``: the session ended with an ERROR frame, so the code is 1002
        unless the transport already chose one (1009, 1007, the peer's). The
        Close frame and its reply get ``linger`` seconds (default
        ``close_timeout``); with a message half-written (a writer blocked on a
        full socket) no Close can be framed, and TCP is closed at once. A
        second call waits for the first.
        """
        with anyio.CancelScope(shield=True):
            if self._closing is not None:  # another task is closing: wait for it
                await self._closing.wait()
                return
            self._closing = anyio.Event()
            try:
                await self._close(error, linger)
            finally:
                self._closing.set()

    async def _close(self, error: bool, linger: float | None) -> None:
        from wsproto.connection import ConnectionState
        from wsproto.events import CloseConnection

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
