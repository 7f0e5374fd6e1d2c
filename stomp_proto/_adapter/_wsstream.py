"""One WebSocket stream for both roles: STOMP bytes over an open WebSocket connection.

The opening handshake is wsproto's (``_websocket.py`` for the server,
``_transport.py`` for the client). From the 101 on, this class frames the
connection with the sans-IO protocol of the ``websockets`` package
(:class:`websockets.protocol.Protocol`, started OPEN): it parses and unmasks
a message in about a third of wsproto's time (C speedups for masking) and
holds a quarter of its memory per connection (``python -m
benchmarks.broker.wslayer``; docs/broker.rst says why). Both libraries are
optional extras, imported lazily.

Incoming text and binary messages are one byte stream for the STOMP parser
(a frame may span messages, a message may hold several frames), and what one
read brought is handed over in one piece. A message over
``max_message_size`` fails the connection with 1009 (checked on each frame's
header, before its payload is read), a text message that is not UTF-8 with
1007, bad framing with 1002; after a failure the Close goes out, TCP is
half-closed and what the peer still sends is read and dropped (within
``close_timeout``), so that the Close is not lost to a reset. A Ping is
answered with a Pong; a Close is answered, and when we close first the reply
is waited for within ``close_timeout``, so that the last frames written are
not lost to a TCP reset.

Each outgoing STOMP frame is one message: text when it is valid UTF-8,
binary otherwise (always binary with ``binary=True``); :meth:`send_frames`
writes a batch of them in one socket write. A server's messages are
unmasked and no extension is ever negotiated, so they are framed here: a
2- to 10-byte header before the payload, with no object per message. A
client's messages are masked by the protocol.

The protocol logs to ``stomp_proto.websocket``, at INFO and above unless that
logger is lowered to DEBUG (which logs every frame).
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

import anyio
import anyio.abc

from ._aiostream import AsyncioSocketStream

if TYPE_CHECKING:
    from websockets.frames import Frame
    from websockets.protocol import Protocol

__all__ = [
    "INVALID_PAYLOAD",
    "MESSAGE_TOO_BIG",
    "NORMAL_CLOSURE",
    "PROTOCOL_ERROR",
    "WebSocketStream",
]

_READ_SIZE = 65536
#: Long writes go out in pieces of this size, each one a sign that the peer reads
#: (as over TCP: ``_server.py``'s writer).
_CHUNK = 256 * 1024
#: Close codes (RFC 6455 §7.4.1).
NORMAL_CLOSURE = 1000
PROTOCOL_ERROR = 1002
INVALID_PAYLOAD = 1007
MESSAGE_TOO_BIG = 1009

_log = logging.getLogger("stomp_proto.websocket")
if _log.level == logging.NOTSET:  # the protocol logs each frame at DEBUG: opt in to it
    _log.setLevel(logging.INFO)

# The headers of unmasked server messages: FIN + opcode, then the length.
_TEXT, _BINARY = 0x81, 0x82
_SHORT_TEXT = [bytes((_TEXT, n)) for n in range(126)]
_SHORT_BINARY = [bytes((_BINARY, n)) for n in range(126)]
_MEDIUM = struct.Struct("!BBH").pack
_LONG = struct.Struct("!BBQ").pack


def _server_messages(frames: Sequence[bytes], binary: bool | None) -> bytes:
    """``frames`` as unmasked WebSocket messages, one each, joined."""
    parts: list[bytes] = []
    append = parts.append
    for data in frames:
        text = not binary
        if text and not data.isascii():
            try:
                data.decode()
            except UnicodeDecodeError:
                text = False
        n = len(data)
        if n < 126:
            append((_SHORT_TEXT if text else _SHORT_BINARY)[n])
        elif n < 65536:
            append(_MEDIUM(_TEXT if text else _BINARY, 126, n))
        else:
            append(_LONG(_TEXT if text else _BINARY, 127, n))
        append(data)
    return b"".join(parts)


class WebSocketStream:
    """STOMP bytes over an open WebSocket connection, for either role.

    ``stream`` is the TCP (or TLS) stream after the handshake; ``client``
    says which end we are (a client masks what it sends); ``initial`` is
    what arrived after the handshake, before the stream was handed over.
    :attr:`close_code` is the code we close with (or the peer closed with);
    :attr:`framing_error` is set when the connection failed at the WebSocket
    level: 1009 (a message over ``max_message_size``), 1007 (a text message
    not valid UTF-8), 1002 (bad framing).
    """

    __slots__ = (
        "_broken",
        "_client",
        "_close_seen",
        "_closing",
        "_decoder",
        "_done",
        "_eof",
        "_pending",
        "_read_done",
        "_receiving",
        "_sending",
        "_stream_closed",
        "_text",
        "_unlocked",
        "_ws",
        "binary",
        "close_code",
        "close_timeout",
        "framing_error",
        "max_message_size",
        "reset",
        "stream",
    )

    joins_writes = False

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        *,
        client: bool,
        max_message_size: int,
        binary: bool | None = None,
        close_timeout: float = 2.0,
        initial: bytes = b"",
    ) -> None:
        try:
            from websockets.protocol import CLIENT, OPEN, SERVER, Protocol
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "STOMP over WebSocket needs: pip install 'stomp-proto[websocket]'"
            ) from exc
        self.stream = stream
        self.max_message_size = max_message_size
        self.binary = binary
        self.close_timeout = close_timeout
        #: The close code sent (or to be sent) to the peer, or the one it closed with.
        self.close_code = NORMAL_CLOSURE
        #: Why the connection failed at the WebSocket level, when it did.
        self.framing_error: int | None = None
        #: True once a read found the TCP connection reset (not a clean EOF).
        self.reset = False
        self._ws: Protocol = Protocol(
            CLIENT if client else SERVER, state=OPEN, max_size=max_message_size, logger=_log
        )
        self._client = client
        self._pending: list[bytes] = []
        self._text = False  # the message being received is text (its UTF-8 is checked)
        self._decoder: codecs.IncrementalDecoder | None = None  # a text message in pieces
        self._done = False  # no more input: the peer closed, or we decided to close
        self._broken = False  # we failed the connection: no Close reply will be parsed
        self._eof = False  # the peer closed TCP
        self._close_seen = False  # the peer's Close frame arrived
        self._stream_closed = False
        self._receiving = False  # a task is in stream.receive()
        self._sending = False  # a task is in stream.send(): the others wait
        self._unlocked: anyio.Event | None = None  # set when that send is over
        self._read_done: anyio.Event | None = None  # set when that receive is over
        self._closing: anyio.Event | None = None  # set once aclose() is done
        if initial:
            self._absorb(initial)  # anything it asks to send goes with the next flush

    # -- writing ---------------------------------------------------------------

    async def _write(self, data: bytes, progress: Callable[[], None] | None = None) -> None:
        """Write ``data`` alone: a write by another task (a Pong, a Close, a
        batch) never lands in the middle of it."""
        while self._sending:  # a lock, allocated only when two writers meet
            if self._unlocked is None:
                self._unlocked = anyio.Event()
            await self._unlocked.wait()
        self._sending = True
        try:
            if len(data) <= _CHUNK:
                await self.stream.send(data)
            else:
                for i in range(0, len(data), _CHUNK):
                    await self.stream.send(data[i : i + _CHUNK])
                    if progress is not None:
                        progress()
        finally:
            self._sending = False
            waiting, self._unlocked = self._unlocked, None
            if waiting is not None:
                waiting.set()

    async def send(self, data: bytes) -> None:
        """Send ``data`` (one STOMP frame or heart-beat) as one WebSocket message."""
        await self.send_frames((data,))

    async def send_frames(
        self, frames: Sequence[bytes], progress: Callable[[], None] | None = None
    ) -> None:
        """Send each of ``frames`` as one WebSocket message, all in one write
        (pieces of 256 KiB for a long batch, ``progress()`` after each)."""
        from websockets.protocol import OPEN

        if self._stream_closed:
            raise anyio.ClosedResourceError
        ws = self._ws
        if self._done or ws.state is not OPEN:
            return  # closing: what the peer would get after the Close is dropped
        if not self._client:
            data = _server_messages(frames, self.binary)
        else:
            for frame in frames:
                if self.binary or not _is_utf8(frame):
                    ws.send_binary(frame)
                else:
                    ws.send_text(frame)
            data = b"".join(ws.data_to_send())
        await self._write(data, progress)

    # -- writing without a task (the server's writer, over asyncio TCP) --------

    @property
    def nowait(self) -> AsyncioSocketStream | None:
        """The TCP stream, when the writer may write without a task (a
        server's, over :class:`~._aiostream.AsyncioSocketStream`): then
        :meth:`write_batch_nowait` writes."""
        stream = self.stream
        return stream if not self._client and isinstance(stream, AsyncioSocketStream) else None

    def write_batch_nowait(self, frames: list[bytes]) -> bool | None:
        """``send_frames(frames)`` now: True if the kernel took it all, False
        if some waits in the stream's buffer; None (nothing taken) while another
        write is in progress."""
        from websockets.protocol import OPEN

        if self._stream_closed:
            raise anyio.ClosedResourceError
        if self._done or self._ws.state is not OPEN:
            return True  # closing: what the peer would get after the Close is dropped
        if self._sending:
            return None
        stream = self.stream
        assert isinstance(stream, AsyncioSocketStream)
        return stream.write_nowait(_server_messages(frames, self.binary))

    async def _flush(self) -> None:
        """Write what the protocol has to send (a Pong, a Close reply or ours)."""
        data = b"".join(self._ws.data_to_send())  # an EOF mark is b"": we close TCP ourselves
        if data:
            with contextlib.suppress(Exception):  # the connection may be going away
                await self._write(data)

    # -- reading ---------------------------------------------------------------

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
            done, self._read_done = self._read_done, None
            if done is not None:
                done.set()

    async def receive(self) -> bytes:
        """The next STOMP bytes from the peer; ``b""`` once the connection is closing."""
        while True:
            pending = self._pending
            if pending:
                data = pending[0] if len(pending) == 1 else b"".join(pending)
                pending.clear()
                return data
            if self._done:
                return b""
            data = await self._read_raw()
            if self._stream_closed:  # aclose() closed it meanwhile
                self._done = True
                continue
            await self._feed(data)

    async def _feed(self, data: bytes) -> None:
        """Give ``data`` (b"": EOF) to the protocol, act on what it found and
        write its answers."""
        if not data:
            self._eof = self._done = True
            return
        self._absorb(data)
        await self._flush()

    def _absorb(self, data: bytes) -> None:
        ws = self._ws
        ws.receive_data(data)
        events = ws.events_received()
        if events:  # frames only: the handshake was done before
            self._take(cast("list[Frame]", events))
        if ws.parser_exc is not None and not self._broken:  # bad framing, too big
            close = ws.close_sent
            self._failed(close.code if close is not None else PROTOCOL_ERROR)

    def _take(self, frames: list[Frame]) -> None:
        from websockets.frames import Opcode

        pending = self._pending
        for frame in frames:
            opcode = frame.opcode
            if opcode is Opcode.CLOSE:
                self._close_seen = True
                if not self._done:  # the peer closes first (the protocol answers)
                    self._done = True
                    close = self._ws.close_rcvd
                    if close is not None:
                        self.close_code = close.code
                continue
            if self._done or opcode is Opcode.PING or opcode is Opcode.PONG:
                continue  # the protocol queued the Pong itself
            data = frame.data  # bytes once unmasked; a bytearray when it was not masked
            if type(data) is not bytes:
                data = bytes(data)
            if opcode is not Opcode.CONT:
                self._text = opcode is Opcode.TEXT
            if self._text and (self._decoder is not None or not data.isascii()):
                if self._decoder is None:
                    self._decoder = codecs.getincrementaldecoder("utf-8")()
                try:
                    self._decoder.decode(data, frame.fin)
                except UnicodeDecodeError:
                    self._ws.fail(INVALID_PAYLOAD, "invalid UTF-8 in a text message")
                    self._failed(INVALID_PAYLOAD)
                    continue
            if frame.fin:
                self._decoder = None
            if data:
                pending.append(data)

    def _failed(self, code: int) -> None:
        """The connection failed at the WebSocket level: the protocol has
        queued its Close and parses nothing more."""
        self.close_code = self.framing_error = code
        self._done = self._broken = True

    # -- closing ---------------------------------------------------------------

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
        from websockets.protocol import CLOSING, OPEN

        if self._stream_closed:
            return
        self._done = True
        if error and self.close_code == NORMAL_CLOSURE:
            self.close_code = PROTOCOL_ERROR
        ws = self._ws
        wait = self.close_timeout if linger is None else min(linger, self.close_timeout)
        with anyio.move_on_after(wait):
            if not self._sending:
                if ws.state is OPEN:
                    with contextlib.suppress(Exception):  # an unsendable code: closing anyway
                        ws.send_close(self.close_code)
                await self._flush()  # our Close, or the reply to the peer's not yet written
            if self._broken:
                # Nothing more is parsed: say we are done (FIN after the Close)
                # and drop what the peer still sends until it closes too.
                with contextlib.suppress(Exception):
                    await self.stream.send_eof()
                await self._read_until(lambda: self._eof)
            elif ws.state is CLOSING and not self._close_seen:
                await self._read_until(lambda: self._close_seen or self._eof)
        self._stream_closed = True
        await self.stream.aclose()

    async def _read_until(self, done: Callable[[], bool]) -> None:
        """Read (or let the task already reading read) until ``done()``."""
        while not done():
            if self._receiving:  # another task reads: it feeds the protocol
                if self._read_done is None:
                    self._read_done = anyio.Event()
                await self._read_done.wait()
                continue
            await self._feed(await self._read_raw())


def _is_utf8(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True
