"""A leaner TCP stream for servers on asyncio (issue 14: the latency tail).

AnyIO's asyncio socket stream pauses reading after every ``receive()`` and
resumes it before the next (two ``epoll_ctl`` calls per read), makes each
``send()`` a checkpoint (one more trip through the event loop), and leaves a
server nothing but an ``await`` to write with. At 1,000 messages a second a
message then costs the broker ~250 us of CPU where a bare asyncio forwarder
needs ~50, and every extra microsecond after the write delays the consumer's
wake-up on a 2-core machine.

:class:`AsyncioSocketStream` is an :class:`anyio.abc.SocketStream` over an
asyncio transport and a small protocol of its own: it reads until
:data:`READ_LIMIT` bytes are buffered (then pauses: the kernel's buffer holds
the peer back), and adds two synchronous calls for the server's writer:
:meth:`~AsyncioSocketStream.write_nowait` (hand bytes to the kernel now, say
whether all of them went) and :meth:`~AsyncioSocketStream.call_soon`. The
semantics a session relies on are AnyIO's: a write counts as done once the
kernel has taken every byte (write-buffer limit 0), ``receive()`` is a
checkpoint, ``aclose()`` aborts. TLS and the WebSocket layer run over it
unchanged; on trio the listener keeps AnyIO's streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import weakref
from collections import deque
from collections.abc import Callable

import anyio
import anyio.abc

try:
    import sniffio
except ImportError:  # pragma: no cover - AnyIO 4.16 runs without it, on asyncio only
    sniffio = None  # type: ignore[assignment]

__all__ = ["READ_LIMIT", "AsyncioSocketStream", "FastAccepting", "fast_listeners"]

#: Bytes read ahead of the session before reading pauses.
READ_LIMIT = 256 * 1024
#: The most one read takes from the kernel.
_READ_SIZE = 256 * 1024


class _Protocol(asyncio.BufferedProtocol):
    # Buffered: the kernel copies into one buffer per listener, not into a
    # fresh 256 KiB object per read (asyncio's Protocol path costs an mmap, an
    # mremap and a munmap per recv at that size).
    __slots__ = (
        "buffer",
        "chunks",
        "eof",
        "exception",
        "lost",
        "read_paused",
        "reader",
        "size",
        "transport",
        "write_paused",
        "writer",
    )

    def __init__(self, buffer: memoryview) -> None:
        self.buffer = buffer  # shared by a listener's connections: filled and copied at once
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.reader: asyncio.Future[None] | None = None  # receive() waiting for data
        self.writer: asyncio.Future[None] | None = None  # a send waiting for the kernel
        self.eof = False
        self.lost = False
        self.exception: BaseException | None = None
        self.read_paused = False
        self.write_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        # Written means taken by the kernel: anything left over pauses us.
        transport.set_write_buffer_limits(0)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        data = bytes(self.buffer[:nbytes])
        self.chunks.append(data)
        self.size += len(data)
        if self.size >= READ_LIMIT and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return True  # half-close: what is queued for the peer may still go out

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.exception = exc
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_writer()

    def _wake_reader(self) -> None:
        waiter, self.reader = self.reader, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_writer(self) -> None:
        waiter, self.writer = self.writer, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Deferred:
    """Callbacks for the event loop to run soon, or sooner: a task about to
    wait for input runs them first (one trip through the loop fewer).

    The server's writers go here: a batch posted while a task handles what it
    read is written when that task waits for more (so a read of 500 SENDs is
    still one write per client), not one loop iteration later.
    """

    __slots__ = ("callbacks", "loop", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.callbacks: list[Callable[[], object]] = []
        self.scheduled = False

    def add(self, callback: Callable[[], object]) -> None:
        self.callbacks.append(callback)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self._scheduled)

    def _scheduled(self) -> None:
        self.scheduled = False
        if not self.callbacks:
            return
        # A bare loop callback, outside any task: AnyIO (the writers call it)
        # finds its backend through sniffio, which without a current task only
        # knows it from this variable (set under anyio.run, not under uvicorn).
        if sniffio is None:  # pragma: no cover - AnyIO then assumes asyncio
            self.run()
            return
        token = sniffio.current_async_library_cvar.set("asyncio")
        try:
            self.run()
        finally:
            sniffio.current_async_library_cvar.reset(token)

    def run(self) -> None:
        callbacks = self.callbacks
        while callbacks:
            self.callbacks = []
            for callback in callbacks:
                callback()
            callbacks = self.callbacks


_deferred: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deferred] = (
    weakref.WeakKeyDictionary()
)


def _deferred_for(loop: asyncio.AbstractEventLoop) -> _Deferred:
    found = _deferred.get(loop)
    if found is None:
        found = _deferred[loop] = _Deferred(loop)
    return found


class AsyncioSocketStream(anyio.abc.SocketStream):
    """A connected TCP socket on asyncio, as an AnyIO socket stream."""

    __slots__ = ("_closed", "_deferred", "_loop", "_protocol", "_transport")

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._loop = loop = asyncio.get_running_loop()
        self._deferred = _deferred_for(loop)
        self._closed = False

    @property
    def _raw_socket(self) -> socket.socket:
        sock: socket.socket = self._transport.get_extra_info("socket")
        return sock

    async def receive(self, max_bytes: int = 65536) -> bytes:
        protocol = self._protocol
        if protocol.chunks:
            await asyncio.sleep(0)  # a checkpoint, as every receive() is
        elif not (self._closed or protocol.lost or protocol.eof):
            if self._deferred.callbacks:
                self._deferred.run()  # what this task posted goes out before it waits
            waiter = protocol.reader = self._loop.create_future()
            try:
                await waiter
            finally:
                protocol.reader = None
        chunks = protocol.chunks
        if not chunks:
            if self._closed:
                raise anyio.ClosedResourceError
            if protocol.exception is not None:
                raise anyio.BrokenResourceError from protocol.exception
            raise anyio.EndOfStream
        data = chunks.popleft()
        while chunks and len(data) + len(chunks[0]) <= max_bytes:
            data += chunks.popleft()  # a few small reads arrived at once: one piece
        if len(data) > max_bytes:
            data, rest = data[:max_bytes], data[max_bytes:]
            chunks.appendleft(rest)
        protocol.size -= len(data)
        if protocol.read_paused and protocol.size < READ_LIMIT // 2 and not protocol.lost:
            protocol.read_paused = False
            self._transport.resume_reading()
        return data

    def write_nowait(self, data: bytes) -> bool:
        """Give ``data`` to the kernel now; False if some of it waits in the
        transport's buffer (then :meth:`flushed` waits for it).

        Raises :class:`anyio.BrokenResourceError` (or ClosedResourceError)
        when the connection is gone, and then takes nothing.
        """
        self._check_open()
        self._transport.write(data)
        return not self._protocol.write_paused

    async def flushed(self) -> None:
        """Wait until everything written has gone to the kernel."""
        protocol = self._protocol
        while protocol.write_paused and not protocol.lost:
            waiter = protocol.writer = self._loop.create_future()
            try:
                await waiter
            finally:
                protocol.writer = None
        self._check_open()

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run ``callback()`` soon: when the running task waits for input, or
        on the event loop's next turn, whichever comes first."""
        self._deferred.add(callback)

    def _check_open(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        protocol = self._protocol
        if protocol.lost or self._transport.is_closing():
            raise anyio.BrokenResourceError from protocol.exception

    async def send(self, item: bytes) -> None:
        if self.write_nowait(item):
            await asyncio.sleep(0)  # a checkpoint, as every send() is
        else:
            await self.flushed()

    async def send_eof(self) -> None:
        with contextlib.suppress(OSError):
            self._transport.write_eof()

    async def aclose(self) -> None:
        self._closed = True
        self._transport.abort()
        await asyncio.sleep(0)


class FastAccepting:
    """Accepts on one of AnyIO's TCP listeners, yielding :class:`AsyncioSocketStream`."""

    __slots__ = ("_buffer", "_loop", "_sock")

    def __init__(self, listener: anyio.abc.SocketListener) -> None:
        self._sock: socket.socket = listener.extra(anyio.abc.SocketAttribute.raw_socket)
        self._loop = asyncio.get_running_loop()
        # One read buffer for all of this listener's connections (one loop,
        # one thread: each read is copied out before the next one starts).
        self._buffer = memoryview(bytearray(_READ_SIZE))

    def _protocol(self) -> _Protocol:
        return _Protocol(self._buffer)

    async def accept(self) -> AsyncioSocketStream:
        loop = self._loop
        try:
            client, _ = await loop.sock_accept(self._sock)
        except asyncio.CancelledError:
            # bpo-41317 (as AnyIO does): a cancelled sock_accept may leave its reader behind.
            with contextlib.suppress(ValueError, NotImplementedError):
                loop.remove_reader(self._sock)
            raise
        try:
            if client.family in (socket.AF_INET, socket.AF_INET6):
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            transport, protocol = await loop.connect_accepted_socket(self._protocol, client)
        except BaseException:
            client.close()
            raise
        assert isinstance(transport, asyncio.Transport)
        return AsyncioSocketStream(transport, protocol)


def fast_listeners(listeners: list[anyio.abc.SocketListener]) -> list[FastAccepting] | None:
    """FastAccepting for each listener when running on asyncio's own loop; else None."""
    if sniffio is not None and sniffio.current_async_library() != "asyncio":
        return None  # trio (which needs sniffio): AnyIO's streams
    return [FastAccepting(each) for each in listeners]
