"""A relay to an upstream broker (RabbitMQ, ActiveMQ), sans-IO: the bookkeeping.

When one process is not enough, several brokers hand ``/topic`` and
``/queue`` to one upstream broker and relay to it, as Spring's
``StompBrokerRelayMessageHandler`` does; ``/app`` handlers and ``/user``
destinations stay with the node. This module keeps the relay's books and
nothing else: no socket, no clock, no task. The runtime half
(``_relay_io.py``) runs the upstream connections, feeds the frames they
receive into :class:`Relay` and writes what :meth:`Relay.take_outbox` hands
it; the router calls the two :class:`RelayRoute` objects as it calls any
route.

The books:

* **A small pool of upstream connections** (spring-framework #33988: Spring
  opens one per client session), plus a *system* connection (Spring's
  ``_system_``) for what server code publishes and for the user-destination
  bridge. Each client session is pinned to one pool connection, so that its
  SENDs keep their order, its ACKs travel where their messages came from and
  a transaction's frames share one upstream transaction.
* **Topic subscriptions are shared**: one upstream subscription per
  distinct ``/topic`` destination on this node, whatever the number of local
  subscribers; each upstream MESSAGE is fanned out here with the local
  broker's rules (selectors, patterns, slow consumers). Patterns are
  translated to the upstream's wildcards, or widened where its grammar is
  poorer, and always filtered here with ours.
* **Queue subscriptions are one to one**: each local ``/queue``
  subscription has its own upstream subscription on its session's
  connection, so the upstream broker balances every consumer of every node.
  Upstream, every subscription is ``client-individual`` with a prefetch
  window: the relay ACKs a topic message once fanned out, a queue message
  when the client ACKs it (or, ``ack:auto``, once it is posted), NACKs it
  when the client NACKs it or goes away without acknowledging it. Messages
  the window lets in while a client has no room wait here, bounded by the
  window. Ack ids map back from the entry the router delivered.
* **Confirmed SENDs**: every SEND goes upstream confirmed by a receipt of
  the relay's (on RabbitMQ, which answers in order, one receipt on the last
  SEND of a write confirms all of that write's); the client's RECEIPT (if it
  asked) is posted on the upstream's.
  Unconfirmed SENDs are kept (in order, bounded in bytes) and sent again
  on the next connection when one drops (at least once); while the upstream
  is unavailable they wait up to ``send_timeout`` seconds, then the client
  gets an ERROR (never silence). A COMMIT's relayed frames go upstream as one
  upstream transaction, confirmed the same way.
* **Subscriptions survive the upstream**: when a connection drops, the
  client sessions stay connected; their subscriptions are re-established on
  the next connection (the same address, or the next one: failover); ACKs
  for messages of the dead connection are moot (the upstream redelivers
  them). Availability changes go to listeners as :class:`RelayAvailability`.
* **Cancelling safely on RabbitMQ 3.x**: its STOMP adapter answers a
  delivery that was in flight when a subscription was cancelled with ERROR
  "Subscription not found" and leaves the message unacknowledged on the
  channel (so on a pooled connection it is lost to the queue until the
  connection closes), and ERROR ends a STOMP session. So on RabbitMQ the
  relay cancels in three steps: NACK what is outstanding, then UNSUBSCRIBE
  and at once SUBSCRIBE the same id to a void topic (in one write, so that
  RabbitMQ reads them together), NACK or ACK what still arrives for that id,
  and UNSUBSCRIBE it for good once a receipted no-op (BEGIN/ABORT) proves
  nothing else is on its way. Other brokers get a plain UNSUBSCRIBE (they
  requeue what was unacknowledged).

Destinations go upstream as the clients name them, except that on RabbitMQ
``%`` and ``/`` are percent-encoded in the name (RabbitMQ refuses ``/`` in a
queue or topic name; every node encodes alike, so it is reversible) and
RabbitMQ's percent-encoded MESSAGE destinations are decoded back.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import ssl as _ssl
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from .. import (
    Abort,
    Ack,
    Begin,
    ClientConnection,
    Commit,
    Connect,
    Connected,
    Error,
    Event,
    Frame,
    Message,
    Nack,
    Receipt,
    Send,
    Subscribe,
    Unsubscribe,
)
from .._clients import ReconnectPolicy
from .._events import Headers
from ._patterns import Pattern, compile_pattern
from ._router import SERVER_HEADERS, Entry, Post, Refusal, Route, Router, Session, Subscription

__all__ = ["CumulativeAck", "Relay", "RelayAvailability", "RelayRoute", "Upstream", "encode"]

#: Headers of the relay's own (the user bridge's), never shown to clients.
_NODE = "x-stomp-proto-node"
_PATH = "x-stomp-proto-path"
_INTERNAL = frozenset({_NODE, _PATH})
#: Headers of an upstream MESSAGE that the local MESSAGE does not copy: the
#: router sets its own, the body's length is the serializer's, and RabbitMQ
#: hands on the SEND's ``receipt`` and ``transaction`` (the relay's own ids).
_DROPPED = SERVER_HEADERS | _INTERNAL | {"content-length", "receipt", "transaction"}


def _upstream_headers(headers: Headers) -> tuple[Headers, bool]:
    """An upstream MESSAGE's headers as a client gets them (the server's and
    the relay's own dropped), and whether the upstream marked it redelivered."""
    redelivered = False
    if headers:
        kept = []
        for kv in headers:
            if kv[0] in _DROPPED:
                if kv[0] == "redelivered" and kv[1] == "true":
                    redelivered = True
                continue
            kept.append(kv)
        headers = tuple(kept)
    return headers, redelivered


#: Headers of a SEND that do not go upstream (RabbitMQ refuses ``message-id``
#: on SEND with ERROR; the others are the server's). A client's SEND loses
#: the relay's own headers too (no forged node or path).
_NOT_FORWARDED = SERVER_HEADERS | {"content-length"}
#: What RabbitMQ reads on a SEND as how to declare its queue: on a shared
#: connection one client's arguments would decide for everyone, and an
#: inequivalent one closes the connection (PRECONDITION_FAILED, no
#: receipt-id to tell whose frame it was). Declare such queues upstream.
_RABBITMQ_DECLARING = frozenset(
    {
        "durable",
        "auto-delete",
        "exclusive",
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
        "x-expires",
        "x-message-ttl",
        "x-max-length",
        "x-max-length-bytes",
        "x-max-priority",
        "x-overflow",
        "x-queue-type",
        "x-queue-name",
        "x-max-age",
        "x-single-active-consumer",
        "x-queue-master-locator",
        "x-stream-max-segment-size-bytes",
    }
)
_NOT_FORWARDED_RABBITMQ = _NOT_FORWARDED | _RABBITMQ_DECLARING
#: A frame in flight on this many connections in a row that an upstream
#: ERROR ended is taken for their cause: refused, not sent a fourth time.
_MAX_ERROR_DEATHS = 3


# -- configuration ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upstream:
    """One address of the upstream broker: ``stomp://LOGIN:PASSCODE@HOST:PORT[/vhost]``.

    ``stomps://`` is STOMP over TLS, verified against the system's trust
    store (or the relay's ``ssl`` context). The path, percent-decoded, is the
    virtual host (the CONNECT ``host`` header): ``/%2F`` names RabbitMQ's
    ``/``; without one no ``host`` header is sent and the broker uses its
    default.

    .. versionadded:: 0.2
    """

    host: str
    port: int = 61613
    login: str | None = None
    passcode: str | None = None
    vhost: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> Upstream:
        """An :class:`Upstream` from its URL; ValueError naming what is wrong."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"relay address {_redact(url)!r}: {exc}") from None
        if parts.scheme not in ("stomp", "stomps"):
            raise ValueError(
                f"relay address {_redact(url)!r}: expected "
                f"stomp://LOGIN:PASSCODE@HOST:PORT[/vhost] (or stomps:// for TLS)"
            )
        if not parts.hostname:
            raise ValueError(f"relay address {_redact(url)!r} names no host")
        if parts.query or parts.fragment:
            raise ValueError(f"relay address {_redact(url)!r}: no query or fragment allowed")
        vhost = unquote(parts.path[1:]) if parts.path else ""
        return cls(
            host=parts.hostname,
            port=port or 61613,
            login=unquote(parts.username) if parts.username is not None else None,
            passcode=unquote(parts.password) if parts.password is not None else None,
            vhost=vhost or None,
            tls=parts.scheme == "stomps",
        )

    def __str__(self) -> str:
        """The address without credentials, for logs and events."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        path = (
            "" if self.vhost is None else "/" + self.vhost.replace("%", "%25").replace("/", "%2F")
        )
        return f"{'stomps' if self.tls else 'stomp'}://{host}:{self.port}{path}"


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rpartition("@")[2]
    return scheme + sep + rest


@dataclass(frozen=True, slots=True)
class RelayAvailability:
    """An upstream connection of the relay came up or went down: Spring's
    ``BrokerAvailabilityEvent``, saying which connection and which upstream.

    Attributes:
        available: True when the connection is (again) up.
        connection: ``"system"`` (server-side publishing, user destinations)
            or ``"pool-N"`` (client sessions' traffic).
        upstream: the address, without credentials (``stomp://host:61613``).
        reason: why it went down (or why connecting failed); None when up.
        relay_available: whether every connection of the relay is up now.

    .. versionadded:: 0.2
    """

    available: bool
    connection: str
    upstream: str
    reason: str | None = None
    relay_available: bool = False


# -- books -------------------------------------------------------------------------------

#: An upstream subscription's states: not yet sent on this connection, SUBSCRIBE
#: sent (its RECEIPT awaited), confirmed, being cancelled, gone.
_NEW, _PENDING, _LIVE, _CANCELLING, _GONE = "new", "pending", "live", "cancelling", "gone"


@dataclass(eq=False, slots=True)
class _Conn:
    """One upstream connection (the runtime reconnects it; the books stay)."""

    index: int
    name: str
    up: bool = False
    #: Increments at every connect: what an ack id from upstream belongs to.
    epoch: int = 0
    upstream: Upstream | None = None
    #: "rabbitmq", "activemq", "stomp-proto" or "" (from CONNECTED's server).
    flavor: str = ""
    #: Frames to write; None marks a write boundary (see take_outbox).
    outbox: list[Event | CumulativeAck | None] = field(default_factory=list)
    #: upstream subscription id -> subscription (every state but gone)
    subs: dict[str, _USub] = field(default_factory=dict)
    #: upstream receipt id -> (what, object) that waits for it
    receipts: dict[str, tuple[str, Any]] = field(default_factory=dict)
    #: SENDs and transactions not yet confirmed, oldest first (seq -> group)
    pending: dict[int, _Pending] = field(default_factory=dict)
    #: Pending groups in the outbox whose receipt is not yet asked, each with
    #: the outbox index of its last frame: take_outbox asks one receipt, on
    #: the last of them, for all (RabbitMQ answers in order).
    batch: list[tuple[_Pending, int]] = field(default_factory=list)
    #: subscriptions to cancel when the outbox is next taken
    cancels: list[_USub] = field(default_factory=list)
    #: whether its last availability event said "up" (no repeated "down")
    reported_up: bool | None = None
    #: an upstream ERROR that named no frame of ours came: it is ending
    errored: bool = False
    #: RabbitMQ: the relay's own ``ack:client`` subscription id (to the void
    #: topic), whose ACKs are cumulative over the connection (see _Delivery);
    #: None: every MESSAGE is acknowledged on its own.
    cumulative: str | None = None
    #: Upstream MESSAGEs not acknowledged upstream yet, in arrival order (=
    #: delivery-tag order on RabbitMQ's one channel per connection).
    deliveries: deque[_Delivery] = field(default_factory=deque)
    #: Deliveries marked done since the outbox was last taken.
    done: list[_Delivery] = field(default_factory=list)
    #: len(deliveries) beyond which settled ones are swept out of it.
    sweep_at: int = 4096


#: A _Delivery's states: waiting (held here, or for its client's ACK), done
#: (consumed: a cumulative ACK may cover it), settled (its own ACK or NACK is
#: in the outbox already: covered by nothing, acknowledged by nothing more).
_WAIT, _DONE, _SETTLED = 0, 1, 2


class _Delivery:
    """One upstream MESSAGE on a RabbitMQ connection, until it is acknowledged.

    RabbitMQ's ``ack:client`` ACK is AMQP's ``basic.ack multiple=true``: it
    acknowledges every unacknowledged delivery up to its own on the
    connection's channel, whichever subscription it came for (the
    subscription named in the ack id only says that the ACK is cumulative).
    So instead of one ACK per consumed message, the relay sends one per write:
    for the longest prefix of the connection's deliveries that are consumed
    (an ``ack:auto`` client's queue message once posted to it, a topic message
    once fanned out) or settled already, it ACKs the last consumed one under
    its own ``ack:client`` subscription's id. A delivery still waiting (held
    for a client with no room, or waiting for its client's ACK) ends the
    prefix; consumed deliveries behind it are acknowledged one by one, as
    without this; waiting ones are settled one by one when their time comes
    (the client's ACK or NACK, NACK when it goes away), so a cumulative ACK
    never covers a message its client did not get."""

    __slots__ = ("ack", "state")

    def __init__(self, ack: str) -> None:
        self.ack = ack
        self.state = _WAIT


class CumulativeAck:
    """An outbox item: RabbitMQ's cumulative ACK (see :class:`_Delivery`),
    which the upstream connection's core cannot check (it settles messages of
    several subscriptions): :func:`encode` writes it and settles in the
    core's books the messages it ``covers``."""

    __slots__ = ("covers", "id")
    COMMAND = "ACK"

    def __init__(self, id: str, covers: list[str]) -> None:
        self.id = id
        self.covers = covers

    def __repr__(self) -> str:
        return f"CumulativeAck(id={self.id!r}, covers={len(self.covers)})"


def encode(core: ClientConnection, item: Event | CumulativeAck, now: float) -> bytes:
    """The bytes of an outbox item, through the upstream connection's core."""
    if type(item) is CumulativeAck:
        core._books.forget(item.covers)  # type: ignore[arg-type]
        return Frame("ACK", (("id", item.id),)).serialize("1.2")
    assert not isinstance(item, CumulativeAck)
    return core.send(item, now)


@dataclass(eq=False, slots=True)
class _USub:
    """One upstream subscription."""

    uid: str
    conn: _Conn
    #: "topic" (shared by this node's subscribers), "queue" (one local
    #: subscription) or "user" (the user bridge: ``sink`` takes its messages).
    kind: str
    #: The local destination (for "user": the upstream one).
    destination: str
    prefetch: int
    #: The local filter of a pattern (None: plain destination).
    pattern: Pattern | None = None
    locals: list[Subscription] = field(default_factory=list)
    state: str = _NEW
    epoch: int = 0
    #: Client RECEIPTs for SUBSCRIBE frames, posted once the upstream confirms.
    receipts: list[Post] = field(default_factory=list)
    #: Queue messages the client had no room for yet (bounded by the window).
    held: deque[tuple[Message, _Delivery | None]] = field(default_factory=deque)
    #: Upstream ack ids to NACK before cancelling (collected at unsubscribe).
    outstanding: list[tuple[str, _Delivery | None]] = field(default_factory=list)
    #: Connections an upstream ERROR ended while its SUBSCRIBE was unconfirmed.
    error_deaths: int = 0
    #: A topic subscription without local subscribers is cancelled after this.
    linger_until: float | None = None
    sink: Callable[[Message], list[Post]] | None = None


@dataclass(eq=False, slots=True)
class _Pending:
    """Frames that wait for the upstream's confirmation: one SEND, or a
    COMMIT's group (then they go as one upstream transaction), or ACKs whose
    client asked for a receipt."""

    seq: int
    session: Session | None
    #: ("send", Send) with the local destination, or ("ack" | "nack", upstream
    #: ack id, epoch, headers) for messages of that connection epoch.
    ops: list[tuple[Any, ...]]
    transaction: bool
    #: The client's receipt id, posted once confirmed (None: none asked).
    receipt: str | None
    deadline: float
    size: int
    what: str
    #: The connection epoch it was last written on (0: not yet).
    sent: int = 0
    #: Connections an upstream ERROR ended while it was in flight on them.
    error_deaths: int = 0


class _RelayEntry(Entry):
    """A relayed queue message as the router delivers it, with where it came
    from upstream (what the client's ACK or NACK is forwarded as)."""

    __slots__ = ("delivery", "epoch", "upstream_ack", "usub")

    def __init__(
        self,
        *args: Any,
        usub: _USub,
        upstream_ack: str,
        epoch: int,
        delivery: _Delivery | None,
    ) -> None:
        super().__init__(*args)
        self.usub = usub
        self.upstream_ack = upstream_ack
        self.epoch = epoch
        self.delivery = delivery


class _UserSink(Protocol):
    """What the user bridge delivers to (the application's ``/user`` route)."""

    def to_user(
        self,
        user: str,
        path: str,
        entry: Entry,
        *,
        only: Session | None = None,
        local: bool = False,
    ) -> list[Post]: ...


# -- the relay ---------------------------------------------------------------------------


class Relay:
    """The broker relay: ``Broker(relay=Relay([...]))``, or ``relay=["stomp://..."]``.

    Args:
        upstreams: the upstream broker's addresses (``stomp://`` URLs or
            :class:`Upstream`), tried in turn: when one fails, the next.
        connections: pool connections for client sessions (besides the
            system connection).
        prefetch: the upstream window of each queue subscription whose
            client set no ``prefetch-count``, and of each topic subscription.
        send_timeout: seconds a SEND (or COMMIT) may wait for the upstream's
            confirmation, the upstream being unavailable or slow; then its
            client gets ERROR. 0: ERROR at once while the upstream is down.
        max_backlog_bytes: bytes of unconfirmed SENDs kept for the
            upstream; a SEND beyond it gets ERROR.
        topic_linger: seconds a topic's upstream subscription is kept after
            its last local subscriber left (a page reload re-subscribes).
        heart_beat: heart-beats asked of each upstream connection, ms.
        grace: intervals of upstream silence before a connection is dropped.
        connect_timeout: seconds a connect (and its CONNECTED) may take.
        ssl: the SSLContext for ``stomps://`` upstreams (default: the
            system's trust store, verifying host names).
        reconnect: back-off between attempts (its ``hosts`` and
            ``max_attempts`` are ignored: the relay retries forever, over
            ``upstreams``).
        on_availability: ``event -> None`` callables, told of every
            :class:`RelayAvailability`.
        topic_prefix, queue_prefix: the destination families relayed.
        user_topic: the upstream topic under which user messages travel
            between nodes (``/topic/<user_topic>.<hex of the user name>``).

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        upstreams: Sequence[str | Upstream],
        *,
        connections: int = 2,
        prefetch: int = 1000,
        send_timeout: float = 10.0,
        max_backlog_bytes: int = 16 << 20,
        topic_linger: float = 2.0,
        heart_beat: tuple[int, int] = (10_000, 10_000),
        grace: float = 3.0,
        connect_timeout: float = 10.0,
        ssl: _ssl.SSLContext | None = None,
        reconnect: ReconnectPolicy | None = None,
        on_availability: Iterable[Callable[[RelayAvailability], None]] = (),
        topic_prefix: str = "/topic/",
        queue_prefix: str = "/queue/",
        user_topic: str = "stomp-proto.user",
    ) -> None:
        if isinstance(upstreams, str):
            upstreams = [upstreams]
        if not upstreams:
            raise ValueError("a relay needs at least one upstream address")
        if connections < 1:
            raise ValueError("connections must be at least 1")
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self.upstreams = [u if isinstance(u, Upstream) else Upstream.parse(u) for u in upstreams]
        self.prefetch = prefetch
        self.send_timeout = send_timeout
        self.max_backlog_bytes = max_backlog_bytes
        self.topic_linger = topic_linger
        self.heart_beat = heart_beat
        self.grace = grace
        self.connect_timeout = connect_timeout
        self.ssl = ssl
        self.reconnect = reconnect or ReconnectPolicy(
            initial_delay=0.2, max_delay=5.0, max_attempts=None
        )
        #: ``event -> None`` callables told of every :class:`RelayAvailability`
        #: (``on_availability``; the runtime adds its logger).
        self.listeners: list[Callable[[RelayAvailability], None]] = list(on_availability)
        self.topic_prefix = topic_prefix
        self.queue_prefix = queue_prefix
        #: On RabbitMQ, acknowledge consumed messages cumulatively, one ACK per
        #: write (see :class:`_Delivery`); False: one ACK per message.
        self.cumulative_acks = True
        self.user_topic = user_topic
        #: This node's id (the user bridge's echo filter; in upstream names).
        self.node = secrets.token_hex(6)
        self.void = f"{topic_prefix}stomp-proto.void.{self.node}"
        #: Topic names only the relay uses (the user bridge's, the void
        #: stand-ins): refused to clients, never fanned out to them.
        self.reserved = (f"{topic_prefix}{user_topic}.", f"{topic_prefix}stomp-proto.void.")
        self.connections = [_Conn(0, "system")] + [
            _Conn(i, f"pool-{i}") for i in range(1, connections + 1)
        ]
        self.router: Router | None = None
        #: ``index -> None``: the runtime's wake-up, called when a
        #: connection's outbox gains frames.
        self.wake: Callable[[int], None] | None = None
        #: The time, as last told (tick, connected); SENDs accepted inside a
        #: frame use the router's.
        self.now = 0.0
        #: Counters: SENDs ``sent`` (confirmed upstream), ``resent`` after a
        #: connection was lost, ``refused`` (ERROR), server-side publishes
        #: ``dropped`` (not confirmed in time), MESSAGEs ``received`` from
        #: upstream and ``delivered`` here, ``reconnects``.
        self.stats = {
            "sent": 0,  # SENDs confirmed upstream
            "resent": 0,  # SENDs written again after a connection was lost
            "refused": 0,  # SENDs (and COMMITs) answered with ERROR
            "dropped": 0,  # server-side publishes given up (not confirmed in time)
            "received": 0,  # MESSAGE frames from upstream
            "delivered": 0,  # local deliveries of them
            "reconnects": 0,
        }
        #: Bytes of SENDs (and transactions) the upstream has not confirmed.
        self.backlog_bytes = 0
        #: Past a quarter of ``max_backlog_bytes`` the relay is *congested*: the
        #: runtime stops reading SENDs from clients (TCP pushes back on them)
        #: until it is below an eighth; ``max_backlog_bytes`` itself is the
        #: hard limit, beyond which a SEND gets ERROR.
        self.congested = False
        #: ``() -> None``: the runtime's wake-up when congestion ends.
        self.on_room: Callable[[], None] | None = None
        self._topics: dict[str, _USub] = {}
        self._local: dict[Subscription, _USub] = {}
        self._pins: weakref.WeakKeyDictionary[Session, _Conn] = weakref.WeakKeyDictionary()
        self._groups: dict[tuple[Session, str], list[tuple[Any, ...]]] = {}
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._turn = itertools.cycle(self.connections[1:])
        self._users: dict[str, tuple[_USub, int]] = {}
        self._user_sink: _UserSink | None = None

    # -- wiring --------------------------------------------------------------------------

    def routes(self) -> list[RelayRoute]:
        """The two routes to serve instead of the local ``/topic`` and ``/queue``."""
        return [
            RelayRoute(self, self.topic_prefix, "topic"),
            RelayRoute(self, self.queue_prefix, "queue"),
        ]

    def bind(self, router: Router) -> None:
        if self.router is not None and self.router is not router:
            raise ValueError("a Relay serves one router")
        self.router = router

    @property
    def available(self) -> bool:
        """Whether every upstream connection is up."""
        return all(conn.up for conn in self.connections)

    def bridge_users(self, sink: _UserSink) -> _UserBridge:
        """Carry user messages between nodes through the upstream broker: the
        application's ``/user`` route (``sink``) gets the bridge, publishes
        through it, and gets what other nodes publish."""
        self._user_sink = sink
        return _UserBridge(self)

    def _router(self) -> Router:
        router = self.router
        if router is None:
            raise RuntimeError("the relay's routes are not in a router")
        return router

    def _uid(self) -> str:
        return f"r{next(self._ids)}"

    def _freed(self, size: int) -> None:
        self.backlog_bytes -= size
        if self.congested and self.backlog_bytes <= self.max_backlog_bytes // 8:
            self.congested = False
            if self.on_room is not None:
                self.on_room()

    def _pin(self, session: Session | None) -> _Conn:
        """The connection ``session``'s traffic uses (None: server code: system)."""
        if session is None:
            return self.connections[0]
        conn = self._pins.get(session)
        if conn is None:
            conn = self._pins[session] = next(self._turn)
        return conn

    def _out(self, conn: _Conn, *events: Event | CumulativeAck | None) -> None:
        was_empty = not conn.outbox and not conn.cancels and not conn.done
        conn.outbox.extend(events)
        if was_empty and self.wake is not None:
            self.wake(conn.index)

    def _tell(self, event: RelayAvailability) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # noqa: PERF203 - an application's hook must not stop the relay
                logging.getLogger("stomp_proto.broker.relay").exception(
                    "relay: availability listener %r failed", listener
                )

    # -- the runtime calls these -------------------------------------------------------

    def connect_frame(self, index: int, upstream: Upstream) -> Connect:
        """The CONNECT to open connection ``index`` to ``upstream`` with."""
        return Connect(
            accept_version=("1.2",),
            host=upstream.vhost,
            login=upstream.login,
            passcode=upstream.passcode,
            heart_beat=self.heart_beat,
        )

    def connected(
        self, index: int, upstream: Upstream, connected: Connected, now: float
    ) -> list[Post]:
        """Connection ``index`` is up (CONNECTED received): subscriptions are
        re-established and unconfirmed frames sent again."""
        self.now = now
        conn = self.connections[index]
        conn.up = True
        conn.epoch += 1
        conn.upstream = upstream
        conn.flavor = _flavor(connected.server)
        conn.errored = False
        conn.outbox.clear()
        conn.batch.clear()
        conn.cancels.clear()
        conn.receipts.clear()
        conn.deliveries.clear()
        conn.done.clear()
        conn.cumulative = None
        if conn.flavor == "rabbitmq" and self.cumulative_acks:
            conn.cumulative = self._uid()
            self._out(
                conn,
                Subscribe(
                    destination=self.void,
                    id=conn.cumulative,
                    ack="client",
                    headers=_prefetch(conn.flavor, 1),
                ),
            )
        posts: list[Post] = []
        for usub in list(conn.subs.values()):
            if usub.error_deaths >= _MAX_ERROR_DEATHS:
                for sub in list(usub.locals):
                    posts += self._end_session(
                        sub.session,
                        f"SUBSCRIBE to {sub.destination[:80]!r}: the upstream broker closed "
                        f"{usub.error_deaths} connections in a row with an ERROR while it was "
                        f"unconfirmed",
                    )
                self._forget(usub)
            elif usub.kind == "queue" or usub.locals or usub.sink is not None:
                self._subscribe_upstream(usub)
            else:
                self._forget(usub)
        for pending in list(conn.pending.values()):
            if pending.error_deaths >= _MAX_ERROR_DEATHS:
                del conn.pending[pending.seq]
                self._freed(pending.size)
                posts += self._refuse(
                    pending,
                    f"the upstream broker closed {pending.error_deaths} connections in a row "
                    f"with an ERROR while it was unconfirmed",
                )
                continue
            if pending.sent:
                self.stats["resent"] += 1
            posts += self._write(conn, pending)
        conn.reported_up = True
        self._tell(
            RelayAvailability(True, conn.name, str(upstream), None, relay_available=self.available)
        )
        if self.wake is not None and (conn.outbox or conn.cancels):
            self.wake(index)
        return posts

    def connect_failed(self, index: int, upstream: Upstream, reason: str) -> list[Post]:
        """Connecting ``index`` to ``upstream`` failed (the runtime tries again)."""
        conn = self.connections[index]
        if conn.reported_up is not False:
            conn.reported_up = False
            self._tell(RelayAvailability(False, conn.name, str(upstream), reason))
        return []

    def lost(self, index: int, reason: str) -> list[Post]:
        """Connection ``index`` is gone. Client sessions stay; what it carried
        waits for the next connection."""
        conn = self.connections[index]
        if not conn.up:
            return []
        conn.up = False
        self.stats["reconnects"] += 1
        conn.outbox.clear()
        conn.batch.clear()
        conn.cancels.clear()
        conn.receipts.clear()
        conn.deliveries.clear()  # unacknowledged: the upstream redelivers them
        conn.done.clear()
        if conn.errored:
            for pending in conn.pending.values():
                if pending.sent == conn.epoch:
                    pending.error_deaths += 1
        for usub in list(conn.subs.values()):
            if usub.state in (_CANCELLING, _GONE):
                self._forget(usub)  # closing the connection cancelled it
                continue
            if conn.errored and usub.state is _PENDING:
                usub.error_deaths += 1
            usub.state = _NEW
            usub.held.clear()  # unacknowledged: the upstream redelivers them
            usub.outstanding.clear()
        conn.reported_up = False
        assert conn.upstream is not None
        self._tell(RelayAvailability(False, conn.name, str(conn.upstream), reason))
        return []

    def take_outbox(self, index: int) -> list[Event | CumulativeAck | None]:
        """The frames to write on connection ``index`` now, in order; None
        marks a boundary: what lies between two Nones goes in one write of
        its own. The caller must pass them to the connection's core at once
        (before it reads another frame): cancellations are written out here,
        from what has been received so far."""
        conn = self.connections[index]
        out = conn.outbox
        conn.outbox = []
        batch = conn.batch
        if batch:
            # One receipt, on the last group's last frame, confirms the lot.
            conn.batch = []
            rid = self._uid()
            at = batch[-1][1]
            last = out[at]
            assert isinstance(last, (Send, Ack, Nack))
            out[at] = replace(last, receipt=rid)
            conn.receipts[rid] = ("pending", [pending for pending, _ in batch])
        cancels = conn.cancels
        if cancels:
            conn.cancels = []
            for usub in cancels:
                self._write_cancel(conn, usub, out)
        if conn.done:
            self._write_acks(conn, out)
        return out

    def _write_acks(self, conn: _Conn, out: list[Event | CumulativeAck | None]) -> None:
        """ACK what was consumed since the outbox was last taken (after every
        other frame taken with it: the individual ACKs and NACKs among them
        settle their deliveries first): cumulatively where it can (see
        :class:`_Delivery`), one by one behind a delivery still waiting."""
        done, conn.done = conn.done, []
        deliveries = conn.deliveries
        covers: list[str] = []
        while deliveries and deliveries[0].state != _WAIT:
            delivery = deliveries.popleft()
            if delivery.state == _DONE:
                covers.append(delivery.ack)
            delivery.state = _SETTLED
        if covers:
            assert conn.cumulative is not None
            rest = covers[-1].partition("@@")[2]
            out.append(CumulativeAck(f"T_{conn.cumulative}@@{rest}", covers))
        for delivery in done:
            if delivery.state == _DONE:  # behind a waiting one: on its own
                delivery.state = _SETTLED
                out.append(Ack(id=delivery.ack))
        if len(deliveries) > conn.sweep_at:  # settled ones behind a long wait
            conn.deliveries = deque(d for d in deliveries if d.state == _WAIT)
            conn.sweep_at = max(4096, 2 * len(conn.deliveries))

    def _track(self, conn: _Conn, ack: str | None) -> _Delivery | None:
        """A record of a MESSAGE that is not acknowledged at once (None: none
        kept, it is acknowledged on its own)."""
        if conn.cumulative is None or ack is None:
            return None
        rest = ack.partition("@@")[2]
        if (
            not ack.startswith("T_")
            or rest.count("@@") != 1
            or not rest.rpartition("@@")[2].isdigit()
        ):
            # Not RabbitMQ's ack id as known: no cumulative ACKs on this connection.
            for delivery in conn.deliveries:
                if delivery.state == _DONE:
                    delivery.state = _SETTLED
                    self._out(conn, Ack(id=delivery.ack))
            conn.cumulative = None
            conn.deliveries.clear()
            return None
        delivery = _Delivery(ack)
        conn.deliveries.append(delivery)
        return delivery

    def _consumed(self, conn: _Conn, ack: str, delivery: _Delivery | None) -> None:
        """A MESSAGE was consumed here: acknowledge it upstream."""
        if delivery is None:
            self._out(conn, Ack(id=ack))
            return
        delivery.state = _DONE
        conn.done.append(delivery)
        if len(conn.done) == 1 and not conn.outbox and not conn.cancels and self.wake is not None:
            self.wake(conn.index)

    def on_message(self, index: int, message: Message) -> list[Post]:
        """A MESSAGE from connection ``index``."""
        conn = self.connections[index]
        usub = conn.subs.get(message.subscription or "")
        if usub is None:
            # Cancelled and gone: nothing is owed for it (none should come). It
            # stays unacknowledged upstream: no cumulative ACK may cover it.
            self._track(conn, message.ack)
            return []
        self.stats["received"] += 1
        ack = message.ack
        if usub.state is _CANCELLING:
            if ack is not None:
                # On the void stand-in: a queue message goes back, a topic one is consumed.
                self._out(conn, Nack(id=ack) if usub.kind == "queue" else Ack(id=ack))
            return []
        delivery = self._track(conn, ack)
        if usub.kind == "queue":
            sub = usub.locals[0]
            if usub.held or not self._router().has_room(sub) or not sub.active:
                usub.held.append((message, delivery))
                return []
            return [self._deliver_queue(conn, usub, sub, message, delivery)]
        if ack is not None:
            self._consumed(conn, ack, delivery)
        if usub.sink is not None:
            return usub.sink(message)
        if not usub.locals:
            return []  # lingering: nobody here listens any more
        return self._fan_out(conn, usub, message)

    def on_receipt(self, index: int, receipt: Receipt) -> list[Post]:
        """A RECEIPT from connection ``index``."""
        conn = self.connections[index]
        item = conn.receipts.pop(receipt.receipt_id, None)
        if item is None:
            return []
        what, obj = item
        if what == "pending":
            confirmed: list[Post] = []
            for pending in obj:
                if conn.pending.pop(pending.seq, None) is None:
                    continue  # timed out meanwhile: its client was told
                self._freed(pending.size)
                self.stats["sent"] += sum(1 for op in pending.ops if op[0] == "send")
                if pending.receipt is not None and pending.session is not None:
                    confirmed.append((pending.session, Receipt(receipt_id=pending.receipt)))
            return confirmed
        usub: _USub = obj
        if what == "subscribed":
            if usub.state is _PENDING:
                usub.state = _LIVE
            posts, usub.receipts = usub.receipts, []
            return posts
        if what == "cancel":  # the void stand-in is subscribed: prove the rest is through
            rid = self._uid()
            conn.receipts[rid] = ("barrier", usub)
            self._out(conn, Begin(transaction=rid), Abort(transaction=rid, receipt=rid))
            return []
        # what == "barrier": nothing more can arrive for the stand-in
        self._out(conn, Unsubscribe(id=usub.uid))
        self._forget(usub)
        return []

    def on_error(self, index: int, error: Error) -> list[Post]:
        """An ERROR from connection ``index`` (which then ends: :meth:`lost`
        follows). The client whose frame it answers, if any, gets an ERROR too."""
        conn = self.connections[index]
        item = conn.receipts.pop(error.receipt_id or "", None)
        if item is None:
            conn.errored = True  # whose frame it answers is unknown: see lost()
            return []
        what, obj = item
        text = f"the upstream broker refused it: {error.message or 'ERROR'}"
        body = error.body.decode("utf-8", "replace").strip()[:200]
        if body and body != error.message:
            text += f" ({body})"
        if what == "pending":
            # The frame that carried the receipt is the last group's; the
            # others of its batch stay pending (the ERROR ends the connection:
            # they go again on the next one).
            pending: _Pending = obj[-1]
            if conn.pending.pop(pending.seq, None) is not None:
                self._freed(pending.size)
            return self._refuse(pending, text)
        if what == "subscribed":
            usub: _USub = obj
            posts = []
            for sub in list(usub.locals):
                posts += self._end_session(
                    sub.session, f"SUBSCRIBE to {sub.destination[:80]!r}: {text}"
                )
            self._forget(usub)
            return posts
        return []

    def tick(self, now: float) -> list[Post]:
        """Time passed: unconfirmed frames past their deadline are refused,
        lingering topic subscriptions cancelled."""
        self.now = now
        posts: list[Post] = []
        for conn in self.connections:
            if conn.pending:
                late = [p for p in conn.pending.values() if p.deadline <= now]
                for pending in late:
                    del conn.pending[pending.seq]
                    self._freed(pending.size)
                    waited = "unavailable" if not conn.up else "did not confirm it"
                    posts += self._refuse(
                        pending,
                        f"the upstream broker {waited} within {self.send_timeout:g} s",
                    )
        for destination, usub in list(self._topics.items()):
            if not usub.locals and usub.linger_until is not None and usub.linger_until <= now:
                del self._topics[destination]
                posts += self._cancel(usub)
        return posts

    # -- what the routes ask ------------------------------------------------------------

    def subscribe(self, sub: Subscription, kind: str) -> list[Post]:
        router = self._router()
        if kind == "topic":
            usub = self._topics.get(sub.destination)
            if usub is None:
                conn = next(self._turn)
                usub = _USub(
                    self._uid(),
                    conn,
                    "topic",
                    sub.destination,
                    self.prefetch,
                    pattern=compile_pattern(sub.destination),
                )
                self._topics[sub.destination] = usub
                conn.subs[usub.uid] = usub
                self._subscribe_upstream(usub)
            usub.linger_until = None
        else:
            conn = self._pin(sub.session)
            usub = _USub(self._uid(), conn, "queue", sub.destination, sub.prefetch or self.prefetch)
            conn.subs[usub.uid] = usub
            self._subscribe_upstream(usub)
        usub.locals.append(sub)
        self._local[sub] = usub
        if usub.state is not _LIVE:
            receipt = router.take_receipt()
            if receipt is not None:
                usub.receipts.append((sub.session, Receipt(receipt_id=receipt)))
        return []

    def unsubscribe(self, sub: Subscription) -> None:
        usub = self._local.pop(sub, None)
        if usub is None:
            return
        if sub in usub.locals:
            usub.locals.remove(sub)
        if usub.kind == "topic":
            if not usub.locals:
                usub.linger_until = self._router().now + self.topic_linger
            return
        # A queue subscription: what its client did not acknowledge goes back.
        conn = usub.conn
        for record in sub.unacked.values():
            entry = record[0]
            if type(entry) is _RelayEntry and entry.usub is usub and entry.epoch == conn.epoch:
                usub.outstanding.append((entry.upstream_ack, entry.delivery))
        usub.outstanding.extend((m.ack, d) for m, d in usub.held if m.ack is not None)
        usub.held.clear()
        self._router().emit(self._cancel(usub))

    def resume(self, sub: Subscription) -> list[Post]:
        usub = self._local.get(sub)
        if usub is None or usub.kind != "queue" or not usub.held:
            return []
        router = self._router()
        conn = usub.conn
        out: list[Post] = []
        while usub.held and router.has_room(sub):
            out.append(self._deliver_queue(conn, usub, sub, *usub.held.popleft()))
        return out

    def send(self, session: Session | None, event: Send) -> list[Post]:
        """A client's SEND (or, ``session`` None, server code's publish)."""
        router = self._router()
        if session is not None and event.headers and any(k in _INTERNAL for k, _ in event.headers):
            event = replace(
                event, headers=tuple(kv for kv in event.headers if kv[0] not in _INTERNAL)
            )
        op = ("send", event)
        if session is not None and router.committing is not None:
            self._groups.setdefault((session, router.committing), []).append(op)
            return []
        return self._submit(
            session, [op], False, event.receipt, f"SEND to {event.destination[:80]!r}"
        )

    def settled(self, sub: Subscription, event: Ack | Nack, records: list[Any]) -> list[Post]:
        """The client ACKed or NACKed relayed queue messages: so does the relay."""
        usub = self._local.get(sub)
        ops: list[tuple[Any, ...]] = []
        command = "nack" if type(event) is Nack else "ack"
        headers = tuple(kv for kv in event.headers if kv[0] == "requeue")
        for record in records:
            entry = record[0]
            if type(entry) is _RelayEntry and entry.usub is usub:
                ops.append((command, entry.upstream_ack, entry.epoch, headers, entry.delivery))
        if not ops or usub is None:
            return []
        router = self._router()
        if router.committing is not None:
            key = (sub.session, router.committing)
            self._groups.setdefault(key, []).extend(ops)
            return []
        conn = usub.conn
        ops = [op for op in ops if conn.up and op[2] == conn.epoch]
        if not ops:
            return []  # moot: the connection they came over is gone, they are redelivered
        if event.receipt is None:
            self._out(conn, *(self._ack_frame(op, None, None) for op in ops))
            return []
        return self._submit(sub.session, ops, False, router.take_receipt(), event.COMMAND)

    def committed(self, session: Session, transaction: str) -> list[Post]:
        ops = self._groups.pop((session, transaction), None)
        if not ops:
            return []
        receipt = self._router().take_receipt()
        return self._submit(
            session, ops, True, receipt, f"COMMIT of transaction {transaction[:80]!r}"
        )

    # -- internals -------------------------------------------------------------------------

    def _submit(
        self,
        session: Session | None,
        ops: list[tuple[Any, ...]],
        transaction: bool,
        receipt: str | None,
        what: str,
    ) -> list[Post]:
        """Send ``ops`` upstream, confirmed; or keep them for the next connection."""
        conn = self._pin(session)
        size = sum(len(op[1].body) + 200 if op[0] == "send" else 100 for op in ops)
        if not conn.up and self.send_timeout <= 0:
            self.stats["refused"] += 1
            raise Refusal(f"{what}: the upstream broker is unavailable")
        if self.backlog_bytes + size > self.max_backlog_bytes:
            self.stats["refused"] += 1
            state = "unavailable" if not conn.up else "slow to confirm"
            raise Refusal(
                f"{what}: the upstream broker is {state} and the relay holds "
                f"{self.max_backlog_bytes} bytes for it already"
            )
        now = max(self.now, self._router().now)
        pending = _Pending(
            next(self._seq), session, ops, transaction, receipt, now + self.send_timeout, size, what
        )
        conn.pending[pending.seq] = pending
        self.backlog_bytes += size
        if self.backlog_bytes > self.max_backlog_bytes // 4:
            self.congested = True
        return self._write(conn, pending) if conn.up else []

    def _write(self, conn: _Conn, pending: _Pending) -> list[Post]:
        """Put ``pending``'s frames in the outbox, with a receipt on the last."""
        epoch = conn.epoch
        # A message of a connection since lost: moot, the upstream redelivers it.
        ops = [op for op in pending.ops if op[0] == "send" or op[2] == epoch]
        if not ops:  # nothing left to do upstream
            del conn.pending[pending.seq]
            self._freed(pending.size)
            if pending.receipt is not None and pending.session is not None:
                return [(pending.session, Receipt(receipt_id=pending.receipt))]
            return []
        pending.sent = epoch
        if not pending.transaction and conn.flavor == "rabbitmq" and not pending.error_deaths:
            # Batched: take_outbox asks a receipt for all the groups it finds
            # (after an ERROR with no receipt-id, each goes alone: whose it was
            # is then told by its own receipt).
            frames: list[Event] = [
                self._send_frame(conn, op[1], None, None)
                if op[0] == "send"
                else self._ack_frame(op, None, None)
                for op in ops
            ]
            self._out(conn, *frames)
            conn.batch.append((pending, len(conn.outbox) - 1))
            return []
        rid = self._uid()
        tx = rid if pending.transaction else None
        last = None if tx is not None else ops[-1]
        frames = []
        for op in ops:
            receipt = rid if op is last else None
            if op[0] == "send":
                frames.append(self._send_frame(conn, op[1], tx, receipt))
            else:
                frames.append(self._ack_frame(op, tx, receipt))
        if tx is not None:
            frames = [Begin(transaction=rid), *frames, Commit(transaction=rid, receipt=rid)]
        conn.receipts[rid] = ("pending", [pending])
        self._out(conn, *frames)
        return []

    def _send_frame(
        self, conn: _Conn, event: Send, transaction: str | None, receipt: str | None
    ) -> Send:
        headers = event.headers
        if headers:
            dropped = _NOT_FORWARDED_RABBITMQ if conn.flavor == "rabbitmq" else _NOT_FORWARDED
            headers = tuple(kv for kv in headers if kv[0] not in dropped)
        destination = self._upstream_name(conn, event.destination, plain=True)
        if (
            transaction is None
            and receipt is None
            and event.transaction is None
            and event.receipt is None
            and destination == event.destination
            and len(headers) == len(event.headers)
        ):
            return event  # already as the upstream is to see it: no copy
        return Send(
            destination=destination,
            body=event.body,
            content_type=event.content_type,
            headers=headers,
            transaction=transaction,
            receipt=receipt,
            content_length=event.content_length,
        )

    @staticmethod
    def _ack_frame(op: tuple[Any, ...], transaction: str | None, receipt: str | None) -> Event:
        """The frame of a client's ACK or NACK (built as it goes in the outbox)."""
        delivery = op[4]
        if delivery is not None:
            delivery.state = _SETTLED  # no cumulative ACK may cover it any more
        kind = Nack if op[0] == "nack" else Ack
        return kind(id=op[1], transaction=transaction, receipt=receipt, headers=op[3])

    def _refuse(self, pending: _Pending, reason: str) -> list[Post]:
        """``pending`` will not be confirmed: its client gets ERROR (server
        code's publishes are counted as dropped)."""
        if pending.session is None:
            self.stats["dropped"] += 1
            return []
        self.stats["refused"] += 1
        return self._end_session(pending.session, f"{pending.what}: {reason}", pending.receipt)

    def _end_session(
        self, session: Session, message: str, receipt: str | None = None
    ) -> list[Post]:
        if session.ended:
            return []
        session.ended = True
        return [
            (
                session,
                Error(
                    message=message[:200],
                    receipt_id=receipt,
                    content_type="text/plain",
                    body=message.encode(),
                ),
            )
        ]

    def _subscribe_upstream(self, usub: _USub) -> None:
        conn = usub.conn
        if not conn.up:
            usub.state = _NEW
            return
        usub.state = _PENDING
        usub.epoch = conn.epoch
        rid = self._uid()
        conn.receipts[rid] = ("subscribed", usub)
        destination = (
            usub.destination if usub.kind == "user" else self._upstream_name(conn, usub.destination)
        )
        self._out(
            conn,
            Subscribe(
                destination=destination,
                id=usub.uid,
                ack="client-individual",
                receipt=rid,
                headers=_prefetch(conn.flavor, usub.prefetch),
            ),
        )

    def _cancel(self, usub: _USub) -> list[Post]:
        """End an upstream subscription (see the module docstring); returns the
        RECEIPTs its SUBSCRIBE frames still owed (they were applied: they end now)."""
        conn = usub.conn
        posts, usub.receipts = usub.receipts, []
        if not conn.up or usub.state is _NEW or usub.epoch != conn.epoch:
            self._forget(usub)  # nothing of it upstream
            return posts
        usub.state = _CANCELLING
        conn.cancels.append(usub)
        if len(conn.cancels) == 1 and not conn.outbox and self.wake is not None:
            self.wake(conn.index)
        return posts

    def _write_cancel(
        self, conn: _Conn, usub: _USub, out: list[Event | CumulativeAck | None]
    ) -> None:
        if conn.flavor != "rabbitmq":
            out.append(Unsubscribe(id=usub.uid))
            self._forget(usub)
            return
        for ack, delivery in usub.outstanding:
            out.append(Nack(id=ack))
            if delivery is not None:
                delivery.state = _SETTLED
        usub.outstanding.clear()
        rid = self._uid()
        conn.receipts[rid] = ("cancel", usub)
        # One write, read by RabbitMQ at once: no delivery in flight for the
        # old subscription can find its id unknown.
        out += [
            None,
            Unsubscribe(id=usub.uid),
            Subscribe(
                destination=self.void,
                id=usub.uid,
                ack="client-individual",
                receipt=rid,
                headers=_prefetch(conn.flavor, 1),
            ),
            None,
        ]

    def _forget(self, usub: _USub) -> None:
        usub.state = _GONE
        usub.conn.subs.pop(usub.uid, None)
        if self._topics.get(usub.destination) is usub:
            del self._topics[usub.destination]

    def _upstream_name(self, conn: _Conn, destination: str, *, plain: bool = False) -> str:
        """``destination`` as the upstream broker names it (a pattern in its wildcards)."""
        flavor = conn.flavor
        if flavor not in ("rabbitmq", "activemq"):
            return destination
        prefix = (
            self.topic_prefix if destination.startswith(self.topic_prefix) else self.queue_prefix
        )
        name = destination[len(prefix) :]
        if flavor == "rabbitmq":
            name = name.replace("%", "%25").replace("/", "%2F")
        if not plain and "*" in name:
            name = _native_pattern(name, "#" if flavor == "rabbitmq" else ">")
        return prefix + name

    def _local_name(self, conn: _Conn, usub: _USub, destination: str) -> str:
        """An upstream MESSAGE's destination as local subscribers know it."""
        if usub.pattern is None:
            return usub.destination
        if conn.flavor == "rabbitmq":
            return unquote(unquote(destination))
        return destination

    def _entry(self, conn: _Conn, usub: _USub, message: Message) -> Entry:
        """The entry the router delivers for topic ``message``."""
        headers, _ = _upstream_headers(message.headers)
        destination = self._local_name(conn, usub, message.destination)
        body = message.body
        return Entry(
            message.message_id, destination, body, message.content_type, headers, len(body) + 200
        )

    def _fan_out(self, conn: _Conn, usub: _USub, message: Message) -> list[Post]:
        """A topic message to this node's subscribers of ``usub``'s destination."""
        entry = self._entry(conn, usub, message)
        if usub.pattern is not None:
            if not usub.pattern.match(entry.destination):
                return []  # the upstream's wildcards are wider than ours
            if entry.destination.startswith(self.reserved):
                return []  # another user's messages, on their way between nodes
        router = self._router()
        out: list[Post] = []
        for sub in usub.locals:
            if sub.session.ended:
                continue
            if sub.selector is not None and not sub.selector(entry.header_map()):
                continue
            if router.has_room(sub):
                out.append(router.deliver(sub, entry, None, False))
            else:
                router.drop(sub)
        self.stats["delivered"] += len(out)
        return out

    def _deliver_queue(
        self,
        conn: _Conn,
        usub: _USub,
        sub: Subscription,
        message: Message,
        delivery: _Delivery | None,
    ) -> Post:
        headers, redelivered = _upstream_headers(message.headers)
        ack = message.ack or ""
        body = message.body
        relayed = _RelayEntry(
            message.message_id,
            usub.destination,  # a queue subscription names no pattern
            body,
            message.content_type,
            headers,
            len(body) + 200,
            usub=usub,
            upstream_ack=ack,
            epoch=conn.epoch,
            delivery=delivery,
        )
        post = self._router().deliver(sub, relayed, None, redelivered)
        if sub.ack == "auto" and ack:
            self._consumed(conn, ack, delivery)  # consumed once posted
        self.stats["delivered"] += 1
        return post

    # -- the user bridge ------------------------------------------------------------------

    def _user_destination(self, user: str) -> str:
        return f"{self.topic_prefix}{self.user_topic}.{user.encode().hex()}"

    def _watch(self, user: str, session: Session) -> None:
        found = self._users.get(user)
        if found is not None:
            usub, count = found
            self._users[user] = (usub, count + 1)
        else:
            conn = self.connections[0]
            usub = _USub(self._uid(), conn, "user", self._user_destination(user), self.prefetch)
            usub.sink = lambda message: self._from_node(user, message)
            conn.subs[usub.uid] = usub
            self._users[user] = (usub, 1)
            self._subscribe_upstream(usub)
        if usub.state is not _LIVE:
            # The /user SUBSCRIBE's RECEIPT says other nodes' messages reach it too.
            receipt = self._router().take_receipt()
            if receipt is not None:
                usub.receipts.append((session, Receipt(receipt_id=receipt)))

    def _unwatch(self, user: str) -> None:
        found = self._users.get(user)
        if found is None:
            return
        usub, count = found
        if count > 1:
            self._users[user] = (usub, count - 1)
            return
        del self._users[user]
        usub.sink = None
        self._router().emit(self._cancel(usub))

    def _to_nodes(self, user: str, path: str, entry: Entry) -> None:
        headers = tuple(kv for kv in entry.headers if kv[0] not in _INTERNAL)
        event = Send(
            destination=self._user_destination(user),
            body=entry.body,
            content_type=entry.content_type,
            headers=(*headers, (_NODE, self.node), (_PATH, path)),
        )
        try:
            self._router().emit(
                self._submit(
                    None, [("send", event)], False, None, f"message for user {user[:80]!r}"
                )
            )
        except Refusal as exc:
            raise OverflowError(str(exc)) from None

    def _from_node(self, user: str, message: Message) -> list[Post]:
        node = path = None
        kept = []
        for name, value in message.headers:
            if name == _NODE:
                node = value
            elif name == _PATH:
                path = value
            elif name not in _DROPPED:
                kept.append((name, value))
        if node == self.node or path is None or self._user_sink is None:
            return []  # our own, back from upstream: delivered here already
        body = message.body
        entry = Entry(
            message.message_id, path, body, message.content_type, tuple(kept), len(body) + 200
        )
        return self._user_sink.to_user(user, path, entry, local=True)


class _UserBridge:
    """What the application's ``/user`` route calls (see :meth:`Relay.bridge_users`)."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def watch(self, user: str, session: Session) -> None:
        """``session`` of ``user`` subscribed to a ``/user`` destination here:
        receive what other nodes send the user (called while the router
        applies that SUBSCRIBE: its RECEIPT waits until that is so)."""
        self.relay._watch(user, session)

    def unwatch(self, user: str) -> None:
        """One of ``user``'s ``/user`` subscriptions here ended."""
        self.relay._unwatch(user)

    def publish(self, user: str, path: str, entry: Entry) -> None:
        """A message for ``user`` at ``/user`` + ``path``: to the other nodes."""
        self.relay._to_nodes(user, path, entry)


class RelayRoute:
    """``/topic/`` or ``/queue/`` served by the upstream broker through a :class:`Relay`.

    .. versionadded:: 0.2
    """

    #: SENDs come whole through :meth:`receive`: their RECEIPT waits for the upstream's.
    takes_receipts = True

    def __init__(self, relay: Relay, prefix: str, kind: str) -> None:
        if kind not in ("topic", "queue"):
            raise ValueError("kind is 'topic' or 'queue'")
        self.relay = relay
        self.prefix = prefix
        self.kind = kind
        #: Topic subscriptions honour ``selector`` (filtered here); queue ones
        #: cannot (a competing consumer cannot pass a message on).
        self.selectors = kind == "topic"

    def bind(self, router: Router) -> None:
        self.relay.bind(router)

    def valid(self, destination: str) -> str | None:
        if len(destination) <= len(self.prefix):
            return f"{destination[:80]!r} names no {self.prefix} destination"
        if "*" in destination and self.kind == "queue":
            return "patterns are for /topic/ subscriptions only"
        if len(destination) > 1024 and "*" in destination:
            return "a pattern may be at most 1024 characters long"
        if destination.startswith(self.relay.reserved):
            return f"{destination[:80]!r} is reserved for the relay (user messages between nodes)"
        return None

    def receive(self, session: Session, event: Send) -> list[Post]:
        if "*" in event.destination:
            raise Refusal(f"SEND to a pattern ({event.destination[:80]!r}) names no destination")
        return self.relay.send(session, event)

    def send(self, session: Session | None, entry: Entry) -> list[Post]:
        # Server code's publish (or an application reply): over the system connection.
        event = Send(
            destination=entry.destination,
            body=entry.body,
            content_type=entry.content_type,
            headers=entry.headers,
        )
        try:
            return self.relay.send(session, event)
        except Refusal as exc:
            if session is None:
                raise OverflowError(str(exc)) from None
            raise

    def check_send(self, entries: list[Entry]) -> None:
        return None

    def subscribe(self, sub: Subscription) -> list[Post]:
        return self.relay.subscribe(sub, self.kind)

    def unsubscribe(self, sub: Subscription) -> None:
        self.relay.unsubscribe(sub)

    def requeue(self, name: str, items: list[tuple[Entry, bool]]) -> list[Post]:
        return []  # relayed messages go back upstream (settled/unsubscribe), never here

    def resume(self, sub: Subscription) -> list[Post]:
        return self.relay.resume(sub)

    def settled(self, sub: Subscription, event: Ack | Nack, records: list[Any]) -> list[Post]:
        if self.kind != "queue":
            return []  # topic copies were consumed upstream on arrival
        return self.relay.settled(sub, event, records)

    def committed(self, session: Session, transaction: str) -> list[Post]:
        if self.kind != "queue":
            return []  # one of the two routes finishes the relay's part
        return self.relay.committed(session, transaction)


# -- helpers -------------------------------------------------------------------------------


def _flavor(server: str | None) -> str:
    text = (server or "").lower()
    for name in ("rabbitmq", "activemq", "stomp-proto"):
        if text.startswith(name):
            return name
    return ""


def _prefetch(flavor: str, count: int) -> tuple[tuple[str, str], ...]:
    if flavor == "rabbitmq":
        return (("prefetch-count", str(count)),)
    if flavor == "activemq":
        return (("activemq.prefetchSize", str(count)),)
    return (("prefetch-count", str(count)), ("activemq.prefetchSize", str(count)))


def _native_pattern(name: str, rest: str) -> str:
    """A pattern in the upstream's ``.``-word wildcards (``*`` one word,
    ``rest`` the remainder) that matches at least what ours matches."""
    words = name.split(".")
    out: list[str] = []
    for word in words:
        if "*" not in word:
            out.append(word)
        elif word == "*":
            out.append("*")
        else:  # "**", or a star inside a word: widen to the rest
            out.append(rest)
            break
    return ".".join(out)


def relay_from(value: Relay | Sequence[str | Upstream] | str | None) -> Relay | None:
    """``Broker(relay=...)``'s argument as a :class:`Relay` (None: no relay)."""
    if value is None or isinstance(value, Relay):
        return value
    return Relay(value)


def replace_routes(relay: Relay, routes: Iterable[Route] | None) -> list[Route]:
    """``routes`` (None: the default ``/topic/`` and ``/queue/``) with the
    relayed prefixes served by the relay instead."""
    mine = relay.routes()
    prefixes = {route.prefix for route in mine}
    kept = [route for route in routes or () if route.prefix not in prefixes]
    return [*mine, *kept]
