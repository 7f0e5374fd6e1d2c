"""The STOMP server adapter: one :class:`ServerSession` per accepted connection.

``serve(handler, host, port)`` listens (through the shared listener of
``_listener.py``) and runs ``await handler(session)`` for each client. The
session is pull-based, like the core: the application asks for the next event
and sends events back. A client that breaks the protocol gets the ERROR frame
the core builds for it (one ERROR per session, always the last frame), then
the connection is closed, and the session's iteration ends with
:attr:`ServerSession.error` set.

The handler runs in the connection's task; two helpers run beside it, each
only while it has work, so that an idle connection is one task (issue 14).
The *writer* is the only one that writes: it is started when a frame is
posted and nothing is being written, sends what is queued a batch at a time,
and ends once everything is written. The *timer* exists while a deadline does,
the core's (heart-beats, a silent peer) or the session's own (CONNECT must
arrive by ``connect_deadline``): it sleeps until the deadline and never waits
for the writer, so no backlog can keep a dead client connected (issue 9,
items 9, 10, 13). Events to wait on are made only when someone waits.

For the operator, each session records why it ended (:attr:`ServerSession.close_reason`,
one of :data:`CLOSE_REASONS`, the first cause seen), the ERROR frame it sent if
any, and how many frames of each kind went each way: plain counters, read by
the broker's logs, stats line and metrics.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import ssl as _ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

import anyio
import anyio.abc

from .. import (
    NEED_DATA,
    PAUSED,
    SUPPORTED_VERSIONS,
    Connect,
    Connected,
    ConnectionClosed,
    Disconnect,
    Error,
    Event,
    Limits,
    LocalProtocolError,
    Message,
    ProtocolError,
    RemoteProtocolError,
    Send,
    ServerConnection,
    State,
)
from ._listener import Start, listen, server_log
from ._transport import StreamTransport, Transport
from ._wsstream import WebSocketStream

__all__ = ["CLOSE_REASONS", "ServerSession", "serve"]

#: Why a session ends, as :attr:`ServerSession.close_reason` says it; the
#: adapter sets the first six, an application (the broker) the others.
CLOSE_REASONS = (
    "disconnect",  # the client sent DISCONNECT
    "eof",  # the client closed the connection without DISCONNECT
    "reset",  # the connection was reset (or a write to it failed)
    "protocol-error",  # the client broke the protocol: the core's ERROR went out
    "heart-beat-timeout",  # the client was silent past its heart-beat deadline
    "connect-timeout",  # no CONNECT frame in time
    "error",  # the application sent an ERROR (a refused frame)
    "login-refused",  # the application refused the CONNECT
    "slow-consumer",  # the application cut off a client that did not keep up
    "shutdown",  # the server is stopping
    "internal-error",  # the application's handler failed
)

#: Long writes go out in pieces of this size, each one a sign that the peer reads.
_CHUNK = 256 * 1024
#: How long a dead peer's session may take to close (a write in flight, a
#: WebSocket Close): it is not waited for beyond this.
_DROP_TIMEOUT = 0.25
#: The shortest pause between two timer calls (see ``_tick``).
_MIN_TICK = 0.001


class ServerSession:
    """The server side of one client connection.

    Outgoing events are serialized by the core at once, in call order, and
    queued; a writer task sends what is queued in one write per batch. So
    :meth:`post` never blocks (a broker can fan a message out to many
    sessions without waiting on the slowest), :attr:`pending_bytes` says how
    far a client is behind, and :meth:`send` is :meth:`post` plus waiting
    until the bytes are written.

    The writer is the only task that writes. The heart-beat timer never waits
    for it: a heart-beat due while frames are queued or a write is in flight
    is skipped (those bytes are traffic), and the peer's liveness is judged
    without the writer, so a client that neither reads nor sends is dropped
    on time however much is queued for it (issue 9, item 10). :meth:`abort`
    drops the backlog and ends the session within a bounded time.
    """

    #: Seconds the session waits for its last frames (a RECEIPT for
    #: DISCONNECT, the ERROR for a protocol violation) to be written before
    #: it closes anyway.
    flush_timeout: float = 5.0

    # Slots: a session's forty-odd attributes otherwise make a 1.6 KiB dict
    # per connection (issue 14); ``__dict__`` keeps other attributes possible.
    __slots__ = (
        "__dict__",
        "__weakref__",
        "_accepts",
        "_beat",
        "_closed",
        "_connect_timeout",
        "_connects",
        "_drained",
        "_error_posted",
        "_joined",
        "_messages",
        "_nowait",
        "_outbox",
        "_pending",
        "_reading",
        "_received",
        "_scheme",
        "_sends",
        "_sent",
        "_tg",
        "_tick_wake",
        "_tick_wakeups",
        "_timer_on",
        "_write_nowait",
        "_writer_on",
        "_writing",
        "close_reason",
        "conn",
        "connect",
        "connect_deadline",
        "error",
        "error_frame",
        "peer",
        "posted_bytes",
        "received_bytes",
        "transport",
    )

    def __init__(
        self,
        transport: Transport,
        conn: ServerConnection,
        peer: object = None,
        *,
        connect_deadline: float | None = None,
        connect_timeout: float | None = None,
        scheme: str | None = None,
    ) -> None:
        self.transport = transport
        self.conn = conn
        self.peer = peer
        #: When (on AnyIO's clock) the CONNECT frame must have arrived; after
        #: it the session is aborted with ERROR "no CONNECT within N s".
        self.connect_deadline = connect_deadline
        self._connect_timeout = connect_timeout
        #: The CONNECT (or STOMP) event, once received.
        self.connect: Connect | None = None
        #: The protocol error that ended the session, if one did.
        self.error: ProtocolError | None = None
        self._reading = False
        self._writing = False  # the writer is in transport.send()
        self._beat = b""  # a heart-beat for the writer, when nothing else is queued
        self._closed = False
        self._outbox: list[bytes] = []
        self._pending = 0
        #: Bytes posted since the session began: minus :attr:`pending_bytes`,
        #: what was written to the transport (a broker's record of what
        #: reached a client). Read it; only :meth:`post` changes it.
        self.posted_bytes = 0
        self._joined = transport.joins_writes
        # A byte stream the writer may write to without a task (asyncio TCP:
        # _aiostream.py), and the transport's way to write a batch to it.
        self._nowait: NoWait | None = getattr(transport, "nowait", None)
        self._write_nowait: Callable[[list[bytes]], bool | None] | None = (
            None if self._nowait is None else transport.write_batch_nowait  # type: ignore[attr-defined]
        )
        self._error_posted = False  # an ERROR is queued: it is the last frame
        # The helpers' task group (set by _run), and whether each helper runs.
        self._tg: anyio.abc.TaskGroup | None = None
        self._writer_on = False
        self._timer_on = False
        self._drained: anyio.Event | None = None  # made by drain() when it must wait
        self._tick_wake: anyio.CancelScope | None = None  # the timer's wait, to wake it
        self._tick_wakeups = 0  # how often the timer woke up (tests count them)
        self._scheme = scheme
        #: Why the session ended (one of :data:`CLOSE_REASONS`), once known:
        #: the first cause wins (an EOF after a DISCONNECT is a DISCONNECT).
        #: An application may set it before it closes or aborts the session.
        self.close_reason: str | None = None
        #: The ERROR frame sent to the client, if one was (the core's for a
        #: protocol error, or the application's).
        self.error_frame: Error | None = None
        # Frames by event class, each way. The commonest kinds (SEND in,
        # MESSAGE out) are plain ints, the cheapest count on the hot path, and
        # so are CONNECT and CONNECTED; the dicts of the others are made at the
        # first one (an idle session has none: issue 14).
        self._received: dict[type[Event], int] | None = None
        self._connects = 0
        self._sends = 0
        self._sent: dict[type[Event], int] | None = None
        self._accepts = 0
        self._messages = 0
        #: Bytes read from the transport.
        self.received_bytes = 0

    @property
    def state(self) -> State:
        return self.conn.state

    @property
    def version(self) -> str | None:
        return self.conn.version

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def scheme(self) -> str:
        """The transport, for logs: ``tcp``, ``tls``, ``ws`` or ``wss`` (or what
        the session was created with, an ASGI server's ``scope["scheme"]``)."""
        if self._scheme is None:
            self._scheme = _scheme_of(self.transport)
        return self._scheme

    @property
    def frames_received(self) -> dict[type[Event], int]:
        """Event class -> how many the client sent (heart-beats included)."""
        found: dict[type[Event], int] = {Connect: self._connects} if self._connects else {}
        found.update(self._received or ())
        if self._sends:
            found[Send] = self._sends
        return found

    @property
    def frames_sent(self) -> dict[type[Event], int]:
        """Event class -> how many were posted to the client."""
        found: dict[type[Event], int] = {Connected: self._accepts} if self._accepts else {}
        found.update(self._sent or ())
        if self._messages:
            found[Message] = self._messages
        return found

    def ending(self, reason: str) -> None:
        """Record ``reason`` as :attr:`close_reason` unless one is recorded already."""
        if self.close_reason is None:
            self.close_reason = reason

    @property
    def pending_bytes(self) -> int:
        """Bytes posted and not yet written to the transport.

        After :meth:`abort` or :meth:`close` it keeps what was dropped: bytes
        that were posted and never written (so posted minus pending is what
        the client may have received).
        """
        return self._pending

    async def next_event(self) -> Event:
        """The next event from the client; :class:`ConnectionClosed` when it is over.

        A protocol violation is answered with ERROR and the connection closed
        before :class:`ConnectionClosed` is returned (see :attr:`error`).
        """
        return await self._receive_event(False)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self  # no generator object per connection

    def __anext__(self) -> Awaitable[Event]:
        # One coroutine frame while an idle session waits (issue 14).
        return self._receive_event(True)

    async def _receive_event(self, stop: bool) -> Event:
        """next_event(); with ``stop``, StopAsyncIteration instead of ConnectionClosed."""
        conn = self.conn
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                await self._fail(exc)
                return _closed_event(stop)
            if event is NEED_DATA:
                if self._closed:
                    return _closed_event(stop)
                self._reading = True
                try:
                    data = await self.transport.receive()
                finally:
                    self._reading = False
                if data:
                    self.received_bytes += len(data)
                elif self.close_reason is None:
                    reset = getattr(self.transport, "reset", False)
                    self.close_reason = "reset" if reset else "eof"
                conn.receive_data(data, anyio.current_time())
                continue
            if event is PAUSED:
                if self._closed or conn.state is not State.CONNECTING:
                    await self._flush_and_close()
                    return _closed_event(stop)
                raise LocalProtocolError("answer the CONNECT (accept() or reject()) first")
            kind = type(event)
            if kind is Send:
                self._sends += 1
                return event
            if kind is Connect:
                self._connects += 1
                self.connect = event  # type: ignore[assignment]
                if self.connect_deadline is not None:
                    self._wake_timer()  # the CONNECT deadline is met
                return event
            counts = self._received
            if counts is None:
                counts = self._received = {}
            counts[kind] = counts.get(kind, 0) + 1
            if kind is Disconnect:
                self.ending("disconnect")
            elif kind is ConnectionClosed:
                await self._flush_and_close()  # the last RECEIPT or ERROR goes out first
                if stop:
                    raise StopAsyncIteration
            return event

    def post(self, event: Event) -> bool:
        """Queue ``event`` to be written; return False if it will never be.

        The core checks and serializes it now, so events leave in the order
        they were posted. After an ERROR or the RECEIPT for DISCONNECT, the
        connection closes once everything queued is written. One ERROR per
        session: once an ERROR is posted it is the last frame, and every later
        post() returns False (as it does once the session is closed).
        """
        if self._closed or self._error_posted:
            return False
        # No clock read per frame: the core stamps sends with the latest time it
        # has seen (from received data and timer calls), which only ever makes
        # a heart-beat come early, never late.
        data = self.conn.send(event)
        kind = type(event)
        if kind is Message:
            self._messages += 1
        elif kind is Connected:
            self._accepts += 1
        else:
            counts = self._sent
            if counts is None:
                counts = self._sent = {}
            counts[kind] = counts.get(kind, 0) + 1
        if kind is Error:
            self._error_posted = True
            self.error_frame = event  # type: ignore[assignment]
            self.ending("error")
        elif kind is Connected and self.conn.next_deadline() is not None:
            self._start_timer()  # heart-beats start now
        self._outbox.append(data)
        self._pending += len(data)
        self.posted_bytes += len(data)
        if not self._writer_on:
            self._start_writer()
        return True

    async def send(self, event: Event) -> None:
        """Send ``event`` and wait until it is written."""
        if self.post(event):
            await self.drain()

    async def drain(self) -> None:
        """Wait until everything posted is written (or the connection is gone)."""
        if self._closed or not self._writer_on:
            return
        if self._drained is None:
            self._drained = anyio.Event()
        await self._drained.wait()

    def _set_drained(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None:
            drained.set()

    async def accept(self, **options: Any) -> None:
        """Answer the CONNECT with CONNECTED (options as :meth:`ServerConnection.accept`)."""
        await self.send(self.conn.accept(**options))

    async def reject(self, message: str, detail: str = "") -> None:
        """Answer with ERROR (say, bad credentials) and close."""
        await self.send(
            Error(message=message, content_type="text/plain", body=(detail or message).encode())
        )

    async def _fail(self, exc: RemoteProtocolError) -> None:
        # Kept without its traceback: the traceback's frames hold this session,
        # and a cycle would keep every failed session until the cycle collector
        # runs (issue 9 item 12).
        self.error = exc.with_traceback(None)
        self.ending("protocol-error")  # unless the stream had ended: then it is an EOF
        server_log("protocol error", logging.WARNING, "protocol error from %s: %s", self.peer, exc)
        if not self._closed:
            with contextlib.suppress(LocalProtocolError):
                self.post(self.conn.error_for(exc))
        await self._flush_and_close()

    async def _flush_and_close(self) -> None:
        with anyio.move_on_after(self.flush_timeout):
            await self.drain()
        await self.close()

    async def close(self) -> None:
        """Close the connection now (what is still queued is not written)."""
        await self._close()

    async def _close(self, linger: float | None = None) -> None:
        if not self._closed:
            self._closed = True
            self._set_drained()
            self._wake_timer()
            await self.transport.aclose(error=self._error_posted, linger=linger)

    async def abort(self, error: Error | None = None, *, timeout: float = 0.5) -> None:
        """End the session now, whatever its backlog: a slow or stuck client, a policy.

        What is queued and not yet being written is dropped (it stays counted
        in :attr:`pending_bytes`: it was never written); ``error``, if given,
        is queued alone behind the write in flight, and the connection is
        closed once it is written or after ``timeout`` seconds, whichever is
        first (the closing handshake of a WebSocket shares the same time).
        A write blocked on a full socket does not hold it up.
        """
        if self._closed:
            return
        self._outbox.clear()
        self._beat = b""
        if error is not None:
            with contextlib.suppress(LocalProtocolError):
                self.post(error)
        deadline = anyio.current_time() + timeout
        with anyio.move_on_at(deadline):
            await self.drain()
        await self._close(linger=max(0.0, deadline - anyio.current_time()))

    async def _connect_expired(self) -> None:
        timeout = self._connect_timeout
        text = "no CONNECT" if timeout is None else f"no CONNECT within {timeout:g} s"
        self.ending("connect-timeout")
        server_log("connect timeout", logging.INFO, "%s from %s", text, self.peer)
        await self.abort(Error(message=text, content_type="text/plain", body=text.encode()))

    def _start_writer(self) -> None:
        if self._tg is not None and not self._closed:
            self._writer_on = True
            if self._nowait is not None:
                self._nowait.call_soon(self._flush)
            else:
                self._tg.start_soon(self._helper, self._writer)

    def _flush(self) -> None:
        """The writer without a task, where the transport can (asyncio TCP,
        and WebSocket over it).

        Runs on the event loop once the posting task yields, so a batch is
        still one write: everything queued goes to the kernel now. A writer
        task takes over only when it must wait: the kernel took part of it, a
        batch too long for one piece, the last frame (the writer closes after
        it), a write of the transport's own in progress, or a failed write
        (the writer meets the failure as it always did). So no task is made
        per message at 1,000 messages a second (issue 14).
        """
        tg = self._tg
        if self._closed or tg is None:
            self._writer_on = False
            self._set_drained()
            return
        try:
            batch = self._outbox
            frames = batch or ([self._beat] if self._beat else batch)
            size = sum(map(len, frames))
            if not frames or size > _CHUNK or self.conn.state is State.CLOSED:
                tg.start_soon(self._helper, self._writer)
                return
            write = self._write_nowait
            assert write is not None
            self._writing = True
            if not self._reading:
                self._progress()  # from here, silence counts only while this write is stuck
            try:
                done = write(frames)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                done = None  # nothing was taken: the writer meets the failure again
            if done is None:
                self._writing = False
                tg.start_soon(self._helper, self._writer)
                return
            self._outbox, self._beat = [], b""
            written = size if batch else 0
            if not done:
                tg.start_soon(self._helper, functools.partial(self._finish_write, written))
                return
            self._writing = False
            self._pending -= written
            if not self._reading:
                self._progress()
            self._writer_on = False
            self._set_drained()
        except Exception:  # a bug here must end this session, never the event loop's callback
            self.ending("internal-error")
            server_log(
                "session helper", logging.ERROR, "session of %s failed", self.peer, exc_info=True
            )
            tg.start_soon(self._helper, self.close)

    async def _finish_write(self, written: int) -> None:
        """A batch the kernel did not take at once: wait for it, then go on as
        the writer."""
        nowait = self._nowait
        assert nowait is not None
        try:
            await nowait.flushed()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            self._writing = False
            self._writer_on = False
            if not self._closed:
                self.ending("reset")
            self._set_drained()
            await self.close()
            return
        self._writing = False
        self._pending -= written
        if not self._reading:
            self._progress()
        await self._writer()

    async def _writer(self) -> None:
        """Write what is posted, a batch at a time, until all is written; close
        after the last frame."""
        transport = self.transport
        # A transport of one frame per message that writes many at once (ours).
        send_frames = None if self._joined else getattr(transport, "send_frames", None)
        try:
            while not self._closed:
                batch, self._outbox = self._outbox, []
                if not batch and not self._beat:
                    return  # all written: the next post() starts a writer again
                self._writing = True
                if not self._reading:
                    self._progress()  # from here, silence counts only while this write is stuck
                try:
                    pieces: Iterable[bytes]
                    if batch:
                        self._beat = b""  # the frames are traffic enough
                        if send_frames is not None:
                            await send_frames(batch, self._wrote_piece)  # a message each, one write
                            pieces = ()
                        elif not self._joined:
                            pieces = batch  # one frame per send (a WebSocket message each)
                        else:
                            data = batch[0] if len(batch) == 1 else b"".join(batch)
                            if len(data) <= _CHUNK:
                                pieces = (data,)
                            else:
                                pieces = (data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK))
                    else:
                        pieces = (self._beat,)
                        self._beat = b""
                    for piece in pieces:
                        await transport.send(piece)
                        if not self._reading:
                            self._progress()
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    if not self._closed:
                        self.ending("reset")
                    await self.close()
                    return
                finally:
                    self._writing = False
                if batch:
                    self._pending -= sum(map(len, batch))
                if not self._outbox and self.conn.state is State.CLOSED:
                    self._writer_on = False
                    self._set_drained()  # the last frame is out
                    await self.close()
                    return
        finally:
            self._writer_on = False
            self._set_drained()

    def _wrote_piece(self) -> None:
        if not self._reading:
            self._progress()

    def _progress(self) -> None:
        """A write starts, or went out (a whole one, or a piece of a long one).

        Only called while nobody reads the transport, when the peer's
        heart-beats would go unseen: the core is told that the silence so far
        is not the peer's. So its silence counts against it only while we read,
        or while one write to it has been stuck for the whole timeout.
        """
        self.conn.handle_timer(anyio.current_time(), reading=False)

    def _start_timer(self) -> None:
        """A deadline appeared (or came earlier): the timer takes it into account."""
        if self._timer_on:
            self._wake_timer()
        elif self._tg is not None and not self._closed:
            self._timer_on = True
            self._tg.start_soon(self._helper, self._tick)

    def _wake_timer(self) -> None:
        """End the timer's wait now (it looks at its deadlines again)."""
        scope = self._tick_wake
        if scope is not None:
            scope.cancel()

    async def _sleep_until(self, deadline: float) -> None:
        """Sleep until ``deadline``, or until :meth:`_wake_timer`."""
        with anyio.CancelScope(deadline=deadline) as scope:
            self._tick_wake = scope
            await anyio.sleep_forever()
        self._tick_wake = None

    async def _tick(self) -> None:
        """Sleep until the next deadline; never wait for the writer; end when
        there is none.

        No polling (issue 9, item 13): with no deadline the timer ends, and
        only two things bring one: CONNECTED going out (heart-beats start:
        :meth:`post` starts the timer) and the CONNECT arriving (its deadline
        ends: the timer, waiting for it, is woken), as closing does. Traffic only
        ever moves a deadline later, so it wakes nobody: the timer wakes at the
        old deadline, finds nothing due and sleeps again.
        """
        conn = self.conn
        handled = -math.inf  # the time of the last handle_timer() call
        try:
            while not self._closed:
                self._tick_wakeups += 1
                if self.connect_deadline is not None:
                    if conn.state is not State.AWAITING_CONNECT:
                        self.connect_deadline = None
                    elif anyio.current_time() >= self.connect_deadline:
                        await self._connect_expired()
                        return
                    else:
                        await self._sleep_until(self.connect_deadline)
                        continue
                deadline = conn.next_deadline()
                if deadline is None:
                    return  # nothing is due: post(Connected) starts a timer again
                if deadline <= handled:
                    # Still due at the time just handled (float rounding in the core's
                    # deadline arithmetic): never spin, come back a moment later.
                    deadline = handled + _MIN_TICK
                await self._sleep_until(deadline)
                if self._closed:
                    return
                handled = anyio.current_time()
                # The peer's silence counts while we wait in receive() and also while
                # a write to it is in flight (the writer reset the count when it began
                # and after each piece): a peer that neither reads nor sends is dead,
                # whatever we were doing. A pause of ours (the handler busy, nothing
                # being written) is not held against it.
                try:
                    beat = conn.handle_timer(handled, reading=self._reading or self._writing)
                except RemoteProtocolError as exc:
                    self.error = exc.with_traceback(None)  # no cycle through the frames
                    self.ending("heart-beat-timeout")
                    server_log("silent", logging.INFO, "dropping %s: %s", self.peer, exc)
                    await self.abort(timeout=_DROP_TIMEOUT)
                    return
                if beat and not self._writing and not self._outbox:
                    self._beat = beat
                    if not self._writer_on:
                        self._start_writer()
        finally:
            self._timer_on = False

    async def _run(self, handler: Handler, helpers: anyio.abc.TaskGroup | None = None) -> None:
        """Run ``handler``; the writer and the timer run beside it when needed.

        ``helpers``: the task group to start them in (a listener's, shared by
        its connections: no task group per connection); without it the
        session makes its own.
        """
        if helpers is None:
            async with anyio.create_task_group() as tg:
                try:
                    await self._run(handler, tg)
                finally:
                    tg.cancel_scope.cancel()
            return
        self._tg = helpers
        if self.connect_deadline is not None:
            self._start_timer()
        if self._outbox:  # posted before the session ran
            self._start_writer()
        try:
            await handler(self)
            await self.drain()
        except Exception:  # one broken session must not take the listener down
            self.ending("internal-error")
            server_log(
                f"handler {handler!r}",
                logging.ERROR,
                "STOMP session handler failed (peer %s)",
                self.peer,
                exc_info=True,
            )
        finally:
            with anyio.CancelScope(shield=True):
                await self.close()
            self._tg = None

    async def _helper(self, run: Callable[[], Awaitable[None]]) -> None:
        """Run the writer or the timer: a bug in one ends its session, never
        the task group it shares with other sessions."""
        try:
            await run()
        except Exception:
            self.ending("internal-error")
            server_log(
                "session helper", logging.ERROR, "session of %s failed", self.peer, exc_info=True
            )
            with anyio.CancelScope(shield=True):
                await self.close()


Handler = Callable[[ServerSession], Awaitable[None]]


class NoWait(Protocol):
    """A transport's ``nowait`` (its byte stream, when the writer may write
    without a task): the transport's ``write_batch_nowait(frames)`` writes the
    frames as its ``send`` would (joined, or a WebSocket message each) and says
    whether the kernel took all of it (True), or some waits for
    :meth:`flushed` (False); None when it cannot write now (nothing taken:
    the writer task does it)."""

    async def flushed(self) -> None: ...  # pragma: no cover

    def call_soon(self, callback: Callable[[], object]) -> None: ...  # pragma: no cover


def _closed_event(stop: bool) -> ConnectionClosed:
    if stop:
        raise StopAsyncIteration
    return ConnectionClosed()


def _scheme_of(transport: Transport) -> str:
    named = getattr(transport, "scheme", None)
    if isinstance(named, str):
        return named
    from anyio.streams.tls import TLSAttribute

    stream = getattr(transport, "stream", None)
    tls = stream is not None and stream.extra(TLSAttribute.ssl_object, None) is not None
    # A transport of one frame per message is a WebSocket (ours, or an ASGI
    # server's: one that knows better has a ``scheme``).
    if isinstance(transport, WebSocketStream) or not transport.joins_writes:
        return "wss" if tls else "ws"
    return "tls" if tls else "tcp"


async def serve(
    handler: Handler,
    host: str = "127.0.0.1",
    port: int = 61613,
    *,
    ssl: _ssl.SSLContext | None = None,
    versions: Sequence[str] = SUPPORTED_VERSIONS,
    heart_beat: tuple[int, int] = (0, 0),
    grace: float = 2.0,
    limits: Limits | None = None,
    connect_timeout: float | None = 5.0,
    handshake_timeout: float | None = 10.0,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve STOMP over TCP (or TLS): ``await handler(session)`` per connection.

    A connection whose CONNECT frame has not arrived within
    ``connect_timeout`` seconds of the accept (TLS handshake included) is sent
    ERROR ("no CONNECT within 5 s") and closed; None disables the deadline. A
    client that has not completed the TLS handshake within
    ``handshake_timeout`` seconds is dropped. The listener survives accept
    errors such as running out of file descriptors (it logs, backs off and
    goes on). With ``await task_group.start(serve, handler, host, 0)`` the
    bound port is returned.
    """

    async def upgrade(stream: anyio.abc.ByteStream) -> Transport:
        return StreamTransport(stream)

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


def session_starter(
    handler: Handler,
    versions: Sequence[str],
    heart_beat: tuple[int, int],
    grace: float,
    limits: Limits | None,
    connect_timeout: float | None,
) -> Start:
    """What a listener runs for each upgraded transport: a :class:`ServerSession`."""
    versions = tuple(versions)
    # Built once now, so that bad options fail at start-up, not per connection.
    ServerConnection(versions=versions, heart_beat=heart_beat, grace=grace, limits=limits)

    def start(
        transport: Transport,
        peer: object,
        deadline: float | None,
        helpers: anyio.abc.TaskGroup | None = None,
    ) -> Awaitable[None]:
        conn = ServerConnection(
            versions=versions, heart_beat=heart_beat, grace=grace, limits=limits
        )
        session = ServerSession(
            transport, conn, peer, connect_deadline=deadline, connect_timeout=connect_timeout
        )
        return session._run(handler, helpers)  # a coroutine, not one more frame around it

    return start
