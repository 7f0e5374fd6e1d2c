"""The reference broker's runtime: listeners, sessions and the engine.

Built only on the public core and the adapter: each connection is a
:class:`~stomp_proto.asyncio.ServerSession`; the core enforces the protocol
(and answers violations with ERROR), the :class:`Engine` decides routing, and
this module connects the two: it applies each client frame (holding a
transaction's frames until COMMIT), posts the resulting MESSAGE frames to the
right sessions, answers receipts in order, and applies the slow-consumer
policy.

Slow consumers: each session's writer reports how many bytes wait to go out
(``pending_bytes``). Beyond ``max_pending_bytes`` the session is *full*: with
the default policy ``"drop"`` it gets no topic copies and no queue messages
(those go to other consumers or wait) until its backlog is written, then it
is resumed; with ``"disconnect"`` it gets an ERROR and is closed.
"""

from __future__ import annotations

import itertools
import logging
import ssl as _ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from .. import (
    Abort,
    Ack,
    Begin,
    Commit,
    Connect,
    Error,
    Event,
    Limits,
    LocalProtocolError,
    Nack,
    Send,
    Subscribe,
    Unsubscribe,
    __version__,
)
from .._adapter import ServerSession, serve, serve_websocket
from ._engine import Delivery, Engine, Session

__all__ = ["Broker"]

log = logging.getLogger("stomp_proto.broker")


class _Refused(Exception):
    """A frame the broker cannot process: ERROR, then close (STOMP 1.2)."""


@dataclass(eq=False)
class _Link:
    session: ServerSession
    state: Session
    transactions: dict[str, list[Event]] = field(default_factory=dict)
    waiting: bool = False  # for its backlog to drain (slow consumer)


class Broker:
    """A STOMP broker: ``/topic`` pub-sub with patterns, ``/queue`` point to point.

    Args:
        tcp: ``(host, port)`` pairs to serve STOMP over TCP on.
        ws: ``(host, port, path)`` triples to serve STOMP over WebSocket on.
        users: login -> passcode; None accepts any login.
        ssl: a server SSLContext for every listener (TLS and WSS).
        heart_beat: what CONNECTED offers, ``(sx, sy)`` ms (Spring's default).
        grace: intervals of silence before a client is dropped.
        limits: frame and session limits (the core's defaults otherwise).
        max_pending_bytes: outgoing backlog beyond which a client is "full".
        slow_consumer: ``"drop"`` or ``"disconnect"`` (see the module docstring).
        max_queue_bytes: bodies one queue may hold while nobody takes them; a
            SEND beyond it gets ERROR.
        max_transaction_frames: SEND/ACK/NACK frames one transaction may hold.
    """

    def __init__(
        self,
        *,
        tcp: Sequence[tuple[str, int]] = (("127.0.0.1", 61613),),
        ws: Sequence[tuple[str, int, str]] = (("127.0.0.1", 15674, "/ws"),),
        users: dict[str, str] | None = None,
        ssl: _ssl.SSLContext | None = None,
        heart_beat: tuple[int, int] = (10_000, 10_000),
        grace: float = 2.0,
        limits: Limits | None = None,
        max_pending_bytes: int = 4 << 20,
        slow_consumer: str = "drop",
        max_queue_bytes: int = 64 << 20,
        max_transaction_frames: int = 10_000,
    ) -> None:
        if slow_consumer not in ("drop", "disconnect"):
            raise ValueError("slow_consumer must be 'drop' or 'disconnect'")
        self.tcp = list(tcp)
        self.ws = list(ws)
        self.users = users
        self.ssl = ssl
        self.heart_beat = heart_beat
        self.grace = grace
        self.limits = limits or Limits()
        self.max_pending_bytes = max_pending_bytes
        self.slow_consumer = slow_consumer
        self.engine = Engine(
            max_pending_bytes=max_pending_bytes,
            max_unacknowledged=self.limits.max_unacknowledged,
            max_queue_bytes=max_queue_bytes,
        )
        self.max_transaction_frames = max_transaction_frames
        #: Bound addresses once serving: ("tcp" | "ws", host, port).
        self.addresses: list[tuple[str, str, int]] = []
        self._links: dict[str, _Link] = {}
        self._sids = itertools.count(1)
        self._tg: anyio.abc.TaskGroup | None = None
        self._connections = 0
        self._stopping = False

    # -- running ---------------------------------------------------------------------

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[Broker] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve on every listener until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self.addresses = []
            options: dict[str, Any] = {
                "heart_beat": self.heart_beat,
                "grace": self.grace,
                "limits": self.limits,
                "ssl": self.ssl,
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
                    partial(serve_websocket, self._session, host, port, path=path, **options)
                )
                self.addresses.append(("ws", host, bound))
                log.info("STOMP over WebSocket on ws://%s:%d%s", host, bound, path)
            task_status.started(self)

    async def __aenter__(self) -> Broker:
        self._outer = anyio.create_task_group()
        await self._outer.__aenter__()
        await self._outer.start(self.serve)
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
                await link.session.drain()
                await link.session.close()
        if self._tg is not None:
            self._tg.cancel_scope.cancel()  # the listeners, and anything left under them

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

        Returns how many copies were sent."""
        if isinstance(body, str):
            body = body.encode()
            content_type = content_type or "text/plain;charset=utf-8"
        if self.engine.kind(destination) is None:
            raise ValueError(f"{destination!r} is neither a /topic/ nor a /queue/ destination")
        deliveries = self.engine.publish(destination, body, content_type, headers)
        self._post(deliveries)
        return len(deliveries)

    @property
    def stats(self) -> dict[str, int]:
        """Counters: connections, sessions, published, delivered, dropped, redelivered, queued."""
        return {
            "connections": self._connections,
            "sessions": len(self._links),
            **self.engine.stats,
            "queued": sum(len(q.pending) for q in self.engine.queues.values()),
        }

    # -- sessions --------------------------------------------------------------------------

    async def _session(self, session: ServerSession) -> None:
        if self._stopping:
            return
        self._connections += 1
        connect = await session.next_event()
        if not isinstance(connect, Connect):
            return
        if self.users is not None and (
            connect.login is None or self.users.get(connect.login) != connect.passcode
        ):
            await session.reject("access refused", "unknown login or wrong passcode")
            return
        sid = f"session-{next(self._sids)}"
        await session.accept(
            heart_beat=self.heart_beat, server=f"stomp-proto/{__version__}", session=sid
        )
        assert session.version is not None
        link = _Link(session, self.engine.open(sid, session.version))
        self._links[sid] = link
        try:
            async for event in session:
                try:
                    self._handle(link, event)
                except _Refused as exc:
                    session.post(
                        Error(
                            message=str(exc),
                            receipt_id=getattr(event, "receipt", None),
                            content_type="text/plain",
                            body=f"{exc} ({event.COMMAND})".encode(),
                        )
                    )
                    break
        finally:
            del self._links[sid]
            link.transactions.clear()  # open transactions are aborted
            self._post(self.engine.close(link.state))

    def _handle(self, link: _Link, event: Event) -> None:
        """Apply one client frame; post its RECEIPT, then what it delivers."""
        engine = self.engine
        out: list[Delivery] = []
        if isinstance(event, Send):
            if engine.kind(event.destination) is None:
                raise _Refused(f"unknown destination {event.destination[:80]!r}")
            if event.transaction is not None:
                self._hold(link, event.transaction, event)
            else:
                out = self._publish(event)
        elif isinstance(event, Subscribe):
            self._post(self._subscribe(link, event))  # posts its own RECEIPT first
            return
        elif isinstance(event, Unsubscribe):
            out = engine.unsubscribe(link.state, event.id or event.destination or "")
        elif isinstance(event, Ack):  # and Nack
            if event.transaction is not None:
                self._hold(link, event.transaction, event)
            else:
                out = self._settle(link, event)
        elif isinstance(event, Commit):  # before Begin: Commit and Abort subclass it
            for held in link.transactions.pop(event.transaction):
                out += self._publish(held) if isinstance(held, Send) else self._settle(link, held)  # type: ignore[arg-type]
        elif isinstance(event, Abort):
            del link.transactions[event.transaction]
        elif isinstance(event, Begin):
            link.transactions[event.transaction] = []
        if getattr(event, "receipt", None) is not None:
            link.session.post(event.make_receipt())
        self._post(out)

    def _hold(self, link: _Link, tx: str, event: Event) -> None:
        held = link.transactions[tx]
        if len(held) >= self.max_transaction_frames:
            raise _Refused(f"transaction {tx[:80]!r} holds {self.max_transaction_frames} frames")
        held.append(event)

    def _publish(self, send: Send) -> list[Delivery]:
        try:
            return self.engine.publish(send.destination, send.body, send.content_type, send.headers)
        except OverflowError as exc:
            raise _Refused(str(exc)) from None

    def _subscribe(self, link: _Link, event: Subscribe) -> list[Delivery]:
        kind = self.engine.kind(event.destination)
        if kind is None:
            raise _Refused(f"unknown destination {event.destination[:80]!r}")
        if kind == "queue" and "*" in event.destination:
            raise _Refused("patterns are for /topic/ subscriptions only")
        prefetch = None
        for name, value in event.headers:
            if name == "prefetch-count":
                if not (value.isascii() and value.isdigit()):
                    raise _Refused(f"prefetch-count:{value[:20]!r} is not a number")
                prefetch = int(value) or None
                break
        key = event.id if event.id is not None else event.destination
        if event.receipt is not None:
            # The RECEIPT says the subscription is live: it goes before the backlog.
            link.session.post(event.make_receipt())
        return self.engine.subscribe(
            link.state, key, event.id, event.destination, event.ack, prefetch
        )

    def _settle(self, link: _Link, event: Ack) -> list[Delivery]:
        ack_id = self.engine.ack_id(link.state, event.id, event.message_id, event.subscription)
        if ack_id is None:
            return []
        requeue = next((v for k, v in event.headers if k == "requeue"), "true") != "false"
        return self.engine.settle(
            link.state, ack_id, ack=not isinstance(event, Nack), requeue=requeue
        )

    def _post(self, deliveries: list[Delivery]) -> None:
        touched: dict[str, _Link] = {}
        for state, message in deliveries:
            link = self._links.get(state.sid)
            if link is None:
                continue
            try:
                if not link.session.post(message):
                    continue
            except LocalProtocolError as exc:
                # This client's version cannot carry the message (say, an LF in
                # a header for a 1.0 client): its session ends; nobody else's.
                log.warning("%s: %s", state.sid, exc)
                link.session.post(link.session.conn.error_for(exc))
                continue
            touched[state.sid] = link
        for link in touched.values():
            state = link.state
            state.pending = link.session.pending_bytes  # the writer's figure, not the estimate
            full = state.pending >= self.max_pending_bytes
            if full and self.slow_consumer == "disconnect":
                link.session.post(
                    Error(
                        message="slow consumer",
                        content_type="text/plain",
                        body=f"over {self.max_pending_bytes} bytes waiting to be sent".encode(),
                    )
                )
            elif (full or state.throttled) and not link.waiting:
                # Deliveries were held back: resume once the backlog is written.
                link.waiting = True
                assert self._tg is not None
                self._tg.start_soon(self._resume_when_drained, link)

    async def _resume_when_drained(self, link: _Link) -> None:
        await link.session.drain()
        link.waiting = False
        link.state.pending = 0
        link.state.throttled = False
        if link.state.sid in self._links:
            self._post(self.engine.resume(link.state))
