"""The reference broker's runtime: listeners, sessions, writers and timers.

Built only on the public core and the adapter: each connection is a
:class:`~stomp_proto.asyncio.ServerSession`; the core enforces the protocol
(and answers violations with ERROR), the sans-IO :class:`~._router.Router`
decides what every frame means, and this module performs what the router
returns (posting frames to sessions, in order) and feeds it the client's
frames. It holds no rule about what a frame means; it owns I/O: listeners,
authentication's awaiting, writers, the drained-backlog wake-ups, the
slow-consumer policy and rate-limited logs.

What reached a client's socket is known from the writer: the runtime counts
the bytes it posts to each session, and when a session ends it tells the
router how many were written, so queue messages still in the outgoing
backlog go back to their queues (in every ack mode).

Slow consumers: each session's writer reports how many bytes wait to go out
(``pending_bytes``). Beyond ``max_pending_bytes`` the session is *full*: with
the default policy ``"drop"`` it gets no topic copies (counted and logged)
and no queue messages (those go to other consumers or wait) until its backlog
is written, then it is resumed; with ``"disconnect"`` a client that misses a
topic copy, or whose backlog does not drain below the limit within
``slow_consumer_timeout``, gets an ERROR and is closed at once, its backlog
discarded and its queue messages given to others.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import logging
import os
import ssl as _ssl
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel

from .. import (
    Connect,
    Error,
    Event,
    Limits,
    LocalProtocolError,
    State,
    __version__,
)
from .._adapter import ServerSession, serve, serve_websocket
from .._adapter._websocket import HttpHandler
from ._router import Authorizer, Post, Route, Router, Session
from ._store import Store
from ._store_runner import StoreRunner, open_store

__all__ = ["Authenticator", "Broker"]

log = logging.getLogger("stomp_proto.broker")
T = TypeVar("T")

#: ``connect -> principal`` (truthy), or None/False to refuse; may be async.
Authenticator = Callable[[Connect], object]

#: How long a session's last frames (a RECEIPT, an ERROR) may take to be
#: written when it ends, before the connection is closed regardless.
_FLUSH_TIMEOUT = 5.0
_NEVER = 1 << 62  # a mark no write reaches: the frame was never posted


class _LogLimit:
    """At most ``burst`` lines per cause per ``period`` seconds, then a count."""

    def __init__(self, burst: int = 5, period: float = 10.0) -> None:
        self.burst = burst
        self.period = period
        self._seen: dict[str, list[float]] = {}

    def __call__(self, cause: str, level: int, message: str, *args: object) -> None:
        now = time.monotonic()
        state = self._seen.get(cause)
        if state is None or now - state[0] >= self.period:
            if state is not None and state[2]:
                log.log(level, "%s: %d more such lines suppressed", cause, int(state[2]))
            if len(self._seen) > 1000:
                self._seen.clear()
            state = self._seen[cause] = [now, 0.0, 0.0]
        if state[1] < self.burst:
            state[1] += 1
            log.log(level, message, *args)
        else:
            state[2] += 1


@dataclass(eq=False)
class _Link:
    session: ServerSession
    state: Session
    waiting: bool = False  # for its backlog to drain (slow consumer)
    logged_drops: int = 0


class Broker:
    """A STOMP broker: ``/topic`` pub-sub with patterns, ``/queue`` point to point.

    Args:
        tcp: ``(host, port)`` pairs to serve STOMP over TCP on.
        ws: ``(host, port, path)`` triples to serve STOMP over WebSocket on.
        users: login -> passcode; None accepts any login (unless
            ``authenticate`` is given).
        authenticate: ``connect -> principal`` (or an awaitable of it), None
            to refuse the login; replaces ``users``.
        authorize: ``(session, event) -> None`` to allow a SEND or SUBSCRIBE,
            or the reason for denying it (an ERROR names frame and destination).
        ssl: a server SSLContext for every listener (TLS and WSS).
        heart_beat: what CONNECTED offers, ``(sx, sy)`` ms (Spring's default).
        grace: intervals of silence before a client is dropped.
        limits: frame and session limits (the core's defaults otherwise).
        connect_timeout: seconds a connection may take to complete CONNECT.
        max_pending_bytes: outgoing backlog beyond which a client is "full".
        slow_consumer: ``"drop"`` or ``"disconnect"`` (see the module docstring).
        slow_consumer_timeout: under ``"disconnect"``, how long a full
            client's backlog may take to drain below ``max_pending_bytes``.
        max_queue_bytes: what one queue may hold (whole frames) while nobody
            takes it; a SEND beyond it gets ERROR.
        max_transaction_frames: SEND/ACK/NACK frames one transaction may hold.
        max_transaction_bytes: bytes one transaction may hold.
        max_memory_bytes: broker-wide, queued plus held bytes beyond which a
            SEND or COMMIT gets ERROR.
        routes: destination families to serve instead of ``/topic/`` and
            ``/queue/`` (see :class:`~stomp_proto.broker.Router`).
        on_start: ``async def hook(broker)`` callables awaited, in order, once
            every listener is up (start background work with :meth:`spawn`).
        http: ``http(target) -> (status, headers, body)`` or None (404):
            answers plain HTTP GETs on the WebSocket listeners (the page that
            opens the WebSocket, its scripts).
        inbound: ``(session, event) -> event or None`` hooks run on every
            client frame before the router applies it (see
            :attr:`Router.inbound <stomp_proto.broker.Router.inbound>`).
        outbound: the same, on every frame before it is posted to a client
            (add headers, log, drop).
        store: a durable store: a path (an
            :class:`~stomp_proto.broker.SQLiteStore` file) or a
            :class:`~stomp_proto.broker.Store`. Persistent queue messages and
            durable topic subscriptions are kept there and restored at start
            (see the docs' Durability page). None (default): nothing is kept.
        max_store_bytes: with a store: the persistent messages it may hold,
            whole frames; a persistent SEND beyond it gets ERROR.
        max_queue_messages: messages one queue (or durable subscription) may
            hold waiting; a SEND beyond it gets ERROR.
        max_durable_subscriptions: with a store: durable topic subscriptions
            kept, beyond which a new one gets ERROR.
    """

    def __init__(
        self,
        *,
        tcp: Sequence[tuple[str, int]] = (("127.0.0.1", 61613),),
        ws: Sequence[tuple[str, int, str]] = (("127.0.0.1", 15674, "/ws"),),
        users: dict[str, str] | None = None,
        authenticate: Authenticator | None = None,
        authorize: Authorizer | None = None,
        ssl: _ssl.SSLContext | None = None,
        heart_beat: tuple[int, int] = (10_000, 10_000),
        grace: float = 2.0,
        limits: Limits | None = None,
        connect_timeout: float | None = 5.0,
        max_pending_bytes: int = 4 << 20,
        slow_consumer: str = "drop",
        slow_consumer_timeout: float = 5.0,
        max_queue_bytes: int = 64 << 20,
        max_transaction_frames: int = 10_000,
        max_transaction_bytes: int = 32 << 20,
        max_memory_bytes: int = 256 << 20,
        routes: Iterable[Route] | None = None,
        on_start: Sequence[Callable[[Broker], Awaitable[None]]] = (),
        inbound: Sequence[Callable[[Session, Event], Event | None]] = (),
        outbound: Sequence[Callable[[Session, Event], Event | None]] = (),
        http: HttpHandler | None = None,
        store: str | os.PathLike[str] | Store | None = None,
        max_store_bytes: int = 1 << 30,
        max_queue_messages: int = 1_000_000,
        max_durable_subscriptions: int = 10_000,
    ) -> None:
        if slow_consumer not in ("drop", "disconnect"):
            raise ValueError("slow_consumer must be 'drop' or 'disconnect'")
        self.tcp = list(tcp)
        self.ws = list(ws)
        self.users = users
        if authenticate is None and users is not None:
            authenticate = partial(_static_login, users)
        self.authenticate = authenticate
        self.ssl = ssl
        self.heart_beat = heart_beat
        self.grace = grace
        self.limits = limits or Limits()
        self.connect_timeout = connect_timeout
        self.max_pending_bytes = max_pending_bytes
        self.slow_consumer = slow_consumer
        self.slow_consumer_timeout = slow_consumer_timeout
        self.router = Router(
            routes=routes,
            max_pending_bytes=max_pending_bytes,
            max_unacknowledged=self.limits.max_unacknowledged,
            max_queue_bytes=max_queue_bytes,
            max_transaction_frames=max_transaction_frames,
            max_transaction_bytes=max_transaction_bytes,
            max_memory_bytes=max_memory_bytes,
            authorize=authorize,
            durable=store is not None,
            max_store_bytes=max_store_bytes,
            max_queue_messages=max_queue_messages,
            max_durable_subscriptions=max_durable_subscriptions,
        )
        #: The durable store's runner (None without a store): with one, posts
        #: that wait for a commit are held (see ``_store_runner.py``).
        self._store: StoreRunner | None = None
        if store is not None:
            self._store = StoreRunner(self, open_store(store), partial(Broker._perform, self))
            self._perform = self._store.perform  # type: ignore[method-assign]
        self.router.on_emit = self._perform
        #: Bound addresses once serving: ("tcp" | "ws", host, port).
        self.addresses: list[tuple[str, str, int]] = []
        self._links: dict[str, _Link] = {}
        self._sids = itertools.count(1)
        self._tg: anyio.abc.TaskGroup | None = None
        self._connections = 0
        self._stopping = False
        self._log = _LogLimit()
        self.on_start = list(on_start)
        self.http = http
        self.router.inbound.extend(inbound)
        self.router.outbound.extend(outbound)
        self._token: object = None
        self._thread: int | None = None

    # -- running ---------------------------------------------------------------------

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[Broker] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve on every listener until cancelled."""
        if self._store is not None:
            await self._store.open()  # before any listener: StoreError if it cannot be used
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self.addresses = []
            if self._store is not None:
                tg.start_soon(self._store.run)  # it closes the store when the broker stops
            options: dict[str, Any] = {
                "heart_beat": self.heart_beat,
                "grace": self.grace,
                "limits": self.limits,
                "ssl": self.ssl,
                "connect_timeout": self.connect_timeout,
            }
            for host, port in self.tcp:
                bound = await tg.start(
                    lambda task_status, h=host, p=port: serve(
                        self._session, h, p, task_status=task_status, **options
                    )
                )
                self.addresses.append(("tcp", host, bound))
                log.info("STOMP over TCP on %s:%d", host, bound)
            for host, port, path in self.ws:
                bound = await tg.start(
                    partial(
                        serve_websocket,
                        self._session,
                        host,
                        port,
                        path=path,
                        http=self.http,
                        **options,
                    )
                )
                self.addresses.append(("ws", host, bound))
                log.info("STOMP over WebSocket on ws://%s:%d%s", host, bound, path)
            self._token = anyio.lowlevel.current_token()
            self._thread = threading.get_ident()
            tg.start_soon(self._clock)
            for hook in self.on_start:
                await hook(self)
            task_status.started(self)

    async def __aenter__(self) -> Broker:
        self._outer = anyio.create_task_group()
        await self._outer.__aenter__()
        try:
            await self._outer.start(self.serve)
        except BaseException as exc:  # a busy port, an unusable store: leave no task group open
            self._outer.cancel_scope.cancel()
            with contextlib.suppress(BaseException):
                await self._outer.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        self._outer.cancel_scope.cancel()
        await self._outer.__aexit__(None, None, None)

    async def start(self) -> Broker:
        """Start serving in the background (``await broker.stop()`` to end)."""
        return await self.__aenter__()

    async def stop(self) -> None:
        """Flush what is queued to each client, close every connection, stop listening."""
        self._stopping = True  # no new sessions from here on
        with anyio.move_on_after(5, shield=True):
            for link in list(self._links.values()):
                if self._store is not None:
                    await self._store.settle(link.state)  # what waits for a commit first
                await link.session.drain()
                await link.session.close()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()  # the listeners, and anything left under them
        self._thread = None

    async def _clock(self) -> None:
        """Tell the router the time once a second (what its deadlines, a user's
        offline backlog, are measured against); no clock read per frame."""
        router = self.router
        while True:
            router.now = anyio.current_time()
            await anyio.sleep(1.0)

    def spawn(self, function: Callable[..., Coroutine[Any, Any, object]], *args: object) -> None:
        """Run ``await function(*args)`` in the broker's task group, until it
        returns or the broker stops (background work: a price feed, a relay).
        From the broker's event loop only."""
        if self._tg is None or self._thread is None:
            raise RuntimeError("the broker is not running: start it first")
        self._tg.start_soon(function, *args)

    def call_soon(self, function: Callable[..., T], *args: object) -> T:
        """Call ``function(*args)`` on the broker's event loop and return its
        result: directly from the loop's thread, and through the loop (waiting
        for it) from any other thread. What makes :meth:`publish` thread-safe."""
        if self._thread is None:
            raise RuntimeError("the broker is not running: start it first")
        if threading.get_ident() == self._thread:
            return self._on_loop(function, *args)
        return anyio.from_thread.run_sync(self._on_loop, function, *args, token=self._token)  # type: ignore[arg-type]

    def _on_loop(self, function: Callable[..., T], *args: object) -> T:
        self.router.now = anyio.current_time()  # the router reads no clock: it is told
        return function(*args)

    # -- application API ---------------------------------------------------------------

    def publish(
        self,
        destination: str,
        body: bytes | str,
        *,
        content_type: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> int:
        """Publish from application code, as Spring's SimpMessagingTemplate does.

        Safe to call from any thread (from another thread it waits for the
        broker's loop to route the message). Returns how many copies were
        sent. ValueError for a destination no route serves; OverflowError
        when the queue or the broker is full; RuntimeError before the broker
        has started or after it stopped."""
        if isinstance(body, str):
            body = body.encode()
            content_type = content_type or "text/plain;charset=utf-8"
        return self.call_soon(self._publish_now, destination, body, content_type, tuple(headers))

    def _publish_now(
        self,
        destination: str,
        body: bytes,
        content_type: str | None,
        headers: tuple[tuple[str, str], ...],
    ) -> int:
        deliveries = self.router.publish(destination, body, content_type, headers)
        self._perform(deliveries)
        return len(deliveries)

    @property
    def stats(self) -> dict[str, int]:
        """Counters: connections, sessions, published (accepted), delivered, dropped,
        redelivered, requeued, refused, queued (waiting now) and memory (bytes
        queued or held in transactions)."""
        return {
            "connections": self._connections,
            "sessions": len(self._links),
            **self.router.stats,
            "queued": self.router.queued(),
            "memory": self.router.memory,
        }

    # -- sessions --------------------------------------------------------------------------

    async def _session(self, session: ServerSession) -> None:
        if self._stopping:
            return
        self._connections += 1
        connect = await session.next_event()
        if not isinstance(connect, Connect):
            return
        principal: object = connect.login
        if self.authenticate is not None:
            principal = self.authenticate(connect)
            if inspect.isawaitable(principal):
                principal = await principal
            if principal is None or principal is False:
                await session.reject("access refused", "unknown login or wrong passcode")
                return
        sid = f"session-{next(self._sids)}"
        await session.accept(
            heart_beat=self.heart_beat, server=f"stomp-proto/{__version__}", session=sid
        )
        assert session.version is not None
        state = self.router.open(
            sid,
            session.version,
            user=connect.login,
            principal=principal,
            ack_key=session.conn.ack_key,  # the core names messages in ACKs, per version
        )
        link = _Link(session, state)
        state.io = link
        self._links[sid] = link
        try:
            router = self.router
            store = self._store
            async for event in session:
                self._perform(router.handle(state, event))
                if state.ended:
                    break
                if store is not None and store.held(state) >= store.max_held:
                    await store.pace(state)  # far ahead of the disk: wait for it
        finally:
            with anyio.CancelScope(shield=True):
                # What was posted before the end (a RECEIPT, an ERROR, messages
                # the client reads up to them) goes out first, within bounds.
                with anyio.move_on_after(_FLUSH_TIMEOUT):
                    if self._store is not None:
                        await self._store.settle(state)  # what waits for a commit
                    await session.drain()
                await session.close()
                written = session.posted_bytes - session.pending_bytes
                del self._links[sid]
                state.io = None
                self._perform(self.router.close(state, written=written))

    def _perform(self, posts: list[Post]) -> None:
        """Post the router's frames, in order; then apply the slow-consumer policy."""
        touched: dict[str, _Link] = {}
        if self.router.outbound:
            posts = self._outbound(posts)
        for state, event in posts:
            link: _Link | None = state.io
            if link is None:  # gone: the router hears of it from the session's end
                if state.unmarked:
                    self._mark(state, event, None)
                continue
            session = link.session
            try:
                posted = session.post(event)
            except LocalProtocolError as exc:
                posted = False
                self._unsendable(state, session, exc)
            if state.unmarked:  # an auto-mode queue message: note where it ends
                self._mark(state, event, session if posted else None)
            if posted:
                touched[state.sid] = link
        router = self.router
        for link in touched.values():
            state = link.state
            session = link.session
            state.pending = pending = session.pending_bytes  # the writer's figure
            if len(state.unwritten) > 32:  # what was written need not be remembered
                router.written(state, session.posted_bytes - pending)
            if (pending >= self.max_pending_bytes or state.throttled) and not link.waiting:
                # Deliveries were held back: resume once the backlog is written.
                link.waiting = True
                assert self._tg is not None
                self._tg.start_soon(self._resume_when_drained, link)
        if router.dropping:
            self._dropped(router.dropping)
            router.dropping.clear()

    def _outbound(self, posts: list[Post]) -> list[Post]:
        """The router's outbound hooks over each frame, in order (None drops it)."""
        out: list[Post] = []
        hooks = self.router.outbound
        seen: dict[int, int] = {}  # per session: tracked records of this batch passed
        for state, event in posts:
            original: Event | None = event
            changed: Event | None = event
            for hook in hooks:
                try:
                    changed = hook(state, changed)  # type: ignore[arg-type]
                except Exception:
                    log.exception("outbound hook %r failed; the frame goes as it was", hook)
                    changed = original
                    break
                if changed is None:
                    break
            if state.unmarked:  # an auto-mode queue message the router is tracking?
                unwritten = state.unwritten
                at = len(unwritten) - state.unmarked + seen.get(id(state), 0)
                if at < len(unwritten) and unwritten[at][4] is event:
                    if changed is None:  # consumed by the hook: nothing to write, or requeue
                        self.router.consumed(unwritten[at][1])
                        del unwritten[at]
                        state.unmarked -= 1
                    else:
                        unwritten[at][4] = changed  # the frame that goes is the hook's
                        seen[id(state)] = seen.get(id(state), 0) + 1
            if changed is not None:
                out.append((state, changed))
        return out

    @staticmethod
    def _mark(state: Session, event: Event, session: ServerSession | None) -> None:
        """Record where ``event`` ends in what was posted to the client (never,
        if ``session`` is None), if it is the MESSAGE the router is tracking."""
        unwritten = state.unwritten
        record = unwritten[len(unwritten) - state.unmarked]
        if record[4] is event:
            record[3] = _NEVER if session is None else session.posted_bytes
            state.unmarked -= 1

    def _unsendable(self, state: Session, session: ServerSession, exc: LocalProtocolError) -> None:
        """``session`` refused a frame: its session ends (nobody else's)."""
        if state.ended:
            return
        state.ended = True
        if session.conn.state is State.CLOSED:
            return  # it is going already (a DISCONNECT, an ERROR): nothing to say
        # This client's version cannot carry the message (say, an LF in a
        # header for a 1.0 client).
        with contextlib.suppress(LocalProtocolError):
            session.post(session.conn.error_for(exc))
        self._log("unsendable", logging.WARNING, "%s: %s", state.sid, exc)

    def _dropped(self, sessions: Iterable[Session]) -> None:
        """Sessions that missed topic copies: logged; under "disconnect", ended."""
        for state in sessions:
            link: _Link | None = state.io
            if link is None or state.dropped == link.logged_drops:
                continue
            self._log(
                f"drop {state.sid}",
                logging.WARNING,
                "%s: slow consumer, %d topic copies dropped so far (%d bytes waiting)",
                state.sid,
                state.dropped,
                state.pending,
            )
            link.logged_drops = state.dropped
            if self.slow_consumer == "disconnect":
                self._disconnect(link, "missed a topic message")

    def _disconnect(self, link: _Link, why: str) -> None:
        state = link.state
        if state.ended:
            return
        state.ended = True
        error = Router.error(
            state, None, f"slow consumer: over {self.max_pending_bytes} bytes waiting ({why})"
        )
        self._log("slow", logging.WARNING, "%s: disconnected (slow consumer, %s)", state.sid, why)
        assert self._tg is not None
        self._tg.start_soon(self._abort, link, error)

    async def _abort(self, link: _Link, error: Error) -> None:
        # The ERROR goes out alone, ahead of the backlog it is about; what was
        # never written is handed back to the router when the session ends.
        # A stuck client's socket is full: the ERROR gets a moment, not more.
        await link.session.abort(error, timeout=0.25)

    async def _resume_when_drained(self, link: _Link) -> None:
        if self.slow_consumer == "disconnect":
            # A consumer that cannot work off its backlog in time is cut off,
            # and what it held goes to others; one that can (a burst, a
            # queue's backlog handed over at once) carries on.
            with anyio.move_on_after(self.slow_consumer_timeout):
                await link.session.drain()
            if link.session.pending_bytes >= self.max_pending_bytes:
                link.waiting = False
                self._disconnect(
                    link, f"backlog not written within {self.slow_consumer_timeout:g} s"
                )
                return
        await link.session.drain()
        link.waiting = False
        state = link.state
        state.pending = link.session.pending_bytes
        if state.sid in self._links and not state.ended:
            self._perform(self.router.resume(state))


def _static_login(users: dict[str, str], connect: Connect) -> str | None:
    """The ``users`` table as an authenticator: the login is the principal."""
    if connect.login is not None and users.get(connect.login) == connect.passcode:
        return connect.login
    return None
