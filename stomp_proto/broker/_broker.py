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

Operability (``_stats.py``, ``metrics.py``): one log line per connection
accepted, login accepted or refused and connection closed (with its cause,
from the session's :attr:`~stomp_proto.asyncio.ServerSession.close_reason`),
rate-limited; a stats line every ``stats_interval`` seconds; and Prometheus
metrics read from the same counters at scrape time.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import logging
import os
import ssl as _ssl
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel

if sys.version_info < (3, 11):  # pragma: no cover - anyio brings the backport
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

from .. import (
    Connect,
    Error,
    Event,
    Limits,
    LocalProtocolError,
    Send,
    State,
    __version__,
)
from .._adapter import ServerSession, serve, serve_websocket
from .._adapter._log import RateLimitedLog
from .._adapter._transport import Transport
from .._adapter._websocket import HttpHandler
from ._relay import Relay, Upstream, relay_from, replace_routes
from ._relay_io import relay_room, run_relay
from ._router import Authorizer, Post, Route, Router, Session
from ._stats import (
    BY_CLIENT,
    NORMAL_CLOSES,
    Counters,
    connection_log,
    fields,
    peer_text,
    stats_line,
    stats_log,
)
from ._store import Store
from ._store_runner import StoreRunner, open_store

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .metrics import ASGIApp, BrokerCollector

__all__ = ["Authenticator", "Broker"]

log = logging.getLogger("stomp_proto.broker")
T = TypeVar("T")

#: ``connect -> principal`` (truthy), or None/False to refuse; may be async.
Authenticator = Callable[[Connect], object]

#: How long a session's last frames (a RECEIPT, an ERROR) may take to be
#: written when it ends, before the connection is closed regardless.
_FLUSH_TIMEOUT = 5.0
_NEVER = 1 << 62  # a mark no write reaches: the frame was never posted


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
        stats_interval: seconds between two stats lines (logger
            ``stomp_proto.broker.stats``); 0 or None: none.
        metrics: ``(host, port)`` to serve Prometheus metrics on
            (``GET /metrics``; needs the ``metrics`` extra), or None.
        relay: hand ``/topic`` and ``/queue`` to an upstream broker (RabbitMQ,
            ActiveMQ): a :class:`~stomp_proto.broker.Relay`, or its upstream
            addresses (``stomp://LOGIN:PASSCODE@HOST:PORT[/vhost]``, tried in
            turn) for one with the defaults (see the docs' "Scaling out").
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
        stats_interval: float | None = 1800.0,
        metrics: tuple[str, int] | None = None,
        relay: Relay | Sequence[str | Upstream] | str | None = None,
    ) -> None:
        if slow_consumer not in ("drop", "disconnect"):
            raise ValueError("slow_consumer must be 'drop' or 'disconnect'")
        if stats_interval is not None and not stats_interval >= 0:  # NaN too
            raise ValueError("stats_interval must be 0 (none) or a number of seconds")
        if metrics is not None:
            from . import metrics as _needs_prometheus_client  # noqa: F401  # fail now, not later
        if store is not None and relay is not None:
            raise ValueError(
                "store= and relay= do not go together: with a relay, the upstream broker "
                "keeps the /topic and /queue messages"
            )
        #: The relay to the upstream broker, or None.
        self.relay = relay_from(relay)
        if self.relay is not None:
            routes = replace_routes(self.relay, routes)
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
        self._log = RateLimitedLog(log)
        self._counters = Counters()
        #: Connections being served, by session id (logged in or not yet).
        self._open: dict[str, ServerSession] = {}
        #: Seconds between two stats lines (0 or None: none).
        self.stats_interval = stats_interval
        #: Where Prometheus metrics are served, if anywhere.
        self.metrics = metrics
        self._collector: BrokerCollector | None = None
        self._own_registry: CollectorRegistry | None = None
        self._registries: list[CollectorRegistry] = []  # the collector is registered on
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
            self._stopping = False  # a broker stopped before may serve again
            if self.relay is not None:
                await tg.start(partial(run_relay, self.relay))
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
                bound = await _listen(
                    "STOMP",
                    host,
                    port,
                    tg.start(
                        lambda task_status, h=host, p=port: serve(
                            self._session, h, p, task_status=task_status, **options
                        )
                    ),
                )
                self.addresses.append(("tcp", host, bound))
                log.info("STOMP over %s on %s:%d", "TLS" if self.ssl else "TCP", host, bound)
            for host, port, path in self.ws:
                bound = await _listen(
                    "WebSocket",
                    host,
                    port,
                    tg.start(
                        partial(
                            serve_websocket,
                            self._session,
                            host,
                            port,
                            path=path,
                            http=self.http,
                            **options,
                        )
                    ),
                )
                self.addresses.append(("ws", host, bound))
                scheme = "wss" if self.ssl else "ws"
                log.info("STOMP over WebSocket on %s://%s:%d%s", scheme, host, bound, path)
            if self.metrics is not None:
                from .metrics import serve_metrics

                host, port = self.metrics
                bound = await _listen(
                    "metrics", host, port, tg.start(serve_metrics, self.metrics_app(), host, port)
                )
                self.addresses.append(("metrics", host, bound))
                log.info("Prometheus metrics on http://%s:%d/metrics", host, bound)
            self._token = anyio.lowlevel.current_token()
            self._thread = threading.get_ident()
            tg.start_soon(self._clock)
            if self.stats_interval:
                tg.start_soon(self._report, self.stats_interval)
            for hook in self.on_start:
                await hook(self)
            task_status.started(self)

    async def __aenter__(self) -> Broker:
        outer = anyio.create_task_group()
        await outer.__aenter__()
        try:
            await outer.start(self.serve)
        except BaseException as exc:
            failure: BaseException = exc
            # A listener that cannot start (a busy port): leave the task group
            # here, so that no cancel scope of ours is left open in the caller's
            # task (a FastAPI lifespan would fail on it), and raise the error.
            self._thread = None
            outer.cancel_scope.cancel()
            with contextlib.suppress(BaseException):
                await outer.__aexit__(None, None, None)
            while isinstance(failure, BaseExceptionGroup) and len(failure.exceptions) == 1:
                failure = failure.exceptions[0]  # the OSError of the one listener that failed
            if failure is exc:
                raise
            raise failure from None
        self._outer = outer
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
        for session in self._open.values():
            session.ending("shutdown")
        if self.stats_interval and self._thread is not None:
            stats_log.info("%s", stats_line(self))  # the last word on this run
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

    async def _report(self, interval: float) -> None:
        """The stats line every ``interval`` seconds (Spring's
        ``WebSocketMessageBrokerStats``)."""
        while True:
            await anyio.sleep(interval)
            stats_log.info("%s", stats_line(self))

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
        redelivered, requeued, refused, denied, queued (waiting now) and memory
        (bytes queued or held in transactions)."""
        return {
            "connections": self._connections,
            "sessions": len(self._links),
            **self.router.stats,
            "queued": self.router.queued(),
            "memory": self.router.memory,
        }

    def stats_line(self) -> str:
        """The line the broker logs every ``stats_interval`` seconds: sessions,
        closes by cause, frames by command, queues, drops (see the docs'
        "Operating the broker")."""
        return stats_line(self)

    # -- metrics -----------------------------------------------------------------------

    def collector(self) -> BrokerCollector:
        """This broker's Prometheus collector (one per broker), for a registry of
        your own: ``REGISTRY.register(broker.collector())``. Needs the
        ``metrics`` extra."""
        if self._collector is None:
            from .metrics import BrokerCollector

            self._collector = BrokerCollector(self)
        return self._collector

    def metrics_app(self, registry: CollectorRegistry | None = None) -> ASGIApp:
        """An ASGI application serving this broker's metrics (Prometheus text
        format; ``prometheus_client.make_asgi_app``), to mount at ``/metrics`` in
        any ASGI application. ``registry``: what to serve, with this broker's
        collector registered on it once (default: a registry of the broker's
        own, so that two brokers in one process never collide; pass
        ``prometheus_client.REGISTRY`` to serve the process's other metrics too)."""
        from .metrics import make_metrics_app

        if registry is None:
            if self._own_registry is None:
                from prometheus_client import CollectorRegistry

                self._own_registry = CollectorRegistry()
            registry = self._own_registry
        if not any(known is registry for known in self._registries):
            registry.register(self.collector())
            self._registries.append(registry)
        return make_metrics_app(self, registry)

    # -- sessions --------------------------------------------------------------------------

    async def _session(self, session: ServerSession) -> None:
        if self._stopping:
            return
        self._connections += 1
        # One id per connection, in every log line about it and in CONNECTED.
        sid = f"session-{next(self._sids)}"
        counters = self._counters
        scheme = session.scheme
        counters.connections[scheme] = counters.connections.get(scheme, 0) + 1
        self._open[sid] = session
        started = anyio.current_time()
        counters.info(
            "accepted",
            logging.INFO,
            "connection accepted %s",
            fields((("session", sid), ("peer", peer_text(session.peer)), ("transport", scheme))),
        )
        link: _Link | None = None
        try:
            link = await self._login(session, sid)
        except anyio.get_cancelled_exc_class():
            session.ending("shutdown")
            raise
        except Exception:
            session.ending("internal-error")  # the session's runner logs the traceback
            raise
        finally:
            del self._open[sid]
            reason = session.close_reason or "eof"
            counters.ended(session, reason)
            self._closed(session, sid, link, reason, anyio.current_time() - started)

    async def _login(self, session: ServerSession, sid: str) -> _Link | None:
        """Authenticate the CONNECT, then serve the session until it ends."""
        connect = await session.next_event()
        if not isinstance(connect, Connect):
            return None  # closed first: no CONNECT in time, a protocol error, an EOF
        if connection_log.isEnabledFor(logging.DEBUG):
            connection_log.debug(
                "connect %s",
                fields(
                    (
                        ("session", sid),
                        ("user", connect.login),
                        ("host", connect.host),
                        ("accept-version", ",".join(connect.accept_version or ("1.0",))),
                        ("heart-beat", "{},{}".format(*connect.heart_beat)),
                    )
                ),
            )
        principal: object = connect.login
        if self.authenticate is not None:
            principal = self.authenticate(connect)
            if inspect.isawaitable(principal):
                principal = await principal
            if principal is None or principal is False:
                session.ending("login-refused")
                self._counters.warn(
                    "login refused",
                    logging.WARNING,
                    "login refused %s",
                    fields(
                        (
                            ("session", sid),
                            ("peer", peer_text(session.peer)),
                            ("transport", session.scheme),
                            ("user", connect.login),
                            ("reason", "unknown login or wrong passcode"),
                        )
                    ),
                )
                await session.reject("access refused", "unknown login or wrong passcode")
                return None
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
        self._counters.sessions += 1
        self._counters.info(
            "login",
            logging.INFO,
            "login accepted %s",
            fields(
                (
                    ("session", sid),
                    ("user", connect.login),
                    ("version", session.version),
                    ("heart-beat", "{},{}".format(*session.conn.heartbeat_intervals)),
                )
            ),
        )
        try:
            router = self.router
            store = self._store
            relay = self.relay
            async for event in session:
                self._perform(router.handle(state, event))
                if state.ended:
                    break
                if store is not None and store.held(state) >= store.max_held:
                    await store.pace(state)  # far ahead of the disk: wait for it
                if relay is not None and relay.congested and type(event) is Send:
                    await relay_room(relay)  # unconfirmed SENDs pile up: push back
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
        return link

    def _closed(
        self,
        session: ServerSession,
        sid: str,
        link: _Link | None,
        reason: str,
        duration: float,
    ) -> None:
        """The connection's last line: who closed it, why, and what it did."""
        pairs: list[tuple[str, object]] = [
            ("session", sid),
            ("peer", peer_text(session.peer)),
            ("transport", session.scheme),
        ]
        if link is not None:
            pairs.append(("user", link.state.user))
        pairs += [("by", "client" if reason in BY_CLIENT else "server"), ("reason", reason)]
        error = session.error_frame
        if error is not None and reason != "login-refused":
            pairs.append(("error", error.message))
        elif session.error is not None:
            pairs.append(("error", session.error))
        if link is not None and link.state.dropped:
            pairs.append(("dropped", link.state.dropped))
        pairs += [
            ("duration", f"{duration:.3f}s"),
            ("frames_in", _frames(session.frames_received)),
            ("frames_out", _frames(session.frames_sent)),
            ("bytes_in", session.received_bytes),
            ("bytes_out", session.posted_bytes - session.pending_bytes),
        ]
        if reason in NORMAL_CLOSES or reason == "login-refused":  # that one had its WARNING
            self._counters.info(
                f"closed {reason}", logging.INFO, "connection closed %s", fields(pairs)
            )
        else:
            self._counters.warn(
                f"closed {reason}", logging.WARNING, "connection closed %s", fields(pairs)
            )

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
        link.session.ending("slow-consumer")
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

    async def serve_transport(self, transport: Transport, peer: object = None) -> None:
        """Serve one client over ``transport``, a connection accepted outside
        the broker's listeners (the ASGI endpoint's WebSocket), until its
        session ends: the same session, options and policies as a listener's.

        ``transport`` has ``async send(data)``, ``async receive()`` (``b""``
        at the end), ``async aclose(*, error=False, linger=None)`` and
        ``joins_writes`` (False: one frame per ``send``); ``peer`` names the
        client in logs. From the broker's event loop, while it runs
        (RuntimeError otherwise).

        .. versionadded:: 0.2
        """
        from .. import SUPPORTED_VERSIONS
        from .._adapter._server import session_starter

        if self._thread is None or self._tg is None:
            raise RuntimeError("the broker is not running: start it first")
        if threading.get_ident() != self._thread:
            raise RuntimeError("serve_transport() is for the broker's event loop only")
        options = (self.heart_beat, self.grace, self.limits, self.connect_timeout)
        start = session_starter(self._session, SUPPORTED_VERSIONS, *options)
        timeout = self.connect_timeout
        await start(transport, peer, None if timeout is None else anyio.current_time() + timeout)


def _frames(counted: dict[type[Event], int]) -> int:
    """STOMP frames among ``counted`` (not heart-beats)."""
    return sum(n for kind, n in counted.items() if kind.COMMAND)


async def _listen(kind: str, host: str, port: int, started: Awaitable[int]) -> int:
    """The port a listener bound; an OSError naming the address when it cannot
    listen (a busy port: ``cannot listen for STOMP on 127.0.0.1:61613: Address
    already in use``)."""
    try:
        return await started
    except OSError as exc:
        raise OSError(
            exc.errno, f"cannot listen for {kind} on {host}:{port}: {exc.strerror}"
        ) from exc


def _static_login(users: dict[str, str], connect: Connect) -> str | None:
    """The ``users`` table as an authenticator: the login is the principal."""
    # A login absent from the table is refused even without a passcode
    # (users.get() would be None, like the missing passcode).
    if connect.login in users and users[connect.login] == connect.passcode:
        return connect.login
    return None
