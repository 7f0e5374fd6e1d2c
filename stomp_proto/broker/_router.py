"""The broker's semantics, sans-IO: a router from ``(session, event)`` to actions.

Nothing here reads a socket or a clock, and nothing imports anyio: a session
is a plain object and every entry point returns the frames to post, as
``(session, event)`` pairs, in the order they must leave. The runtime
(``_broker.py``) performs them and feeds the router what its clients send.
That keeps every rule of the broker in one module that tests drive with no
event loop, the way the core is tested.

What the router owns:

* **Routes by prefix** (:class:`Route`): a frame's destination picks the route
  with the longest matching prefix. ``/topic/`` (:class:`TopicRoute`: pub-sub
  with ``*``/``**`` patterns) and ``/queue/`` (:class:`QueueRoute`: round robin,
  kept while nobody subscribes) are two routes among others; an application
  adds its own (``/app`` handlers, a relay) with :meth:`Router.add_route`. A
  route may deliver later, from outside a frame, through :meth:`Router.emit`.
* **Sessions**: the principal a session authenticated as, and a user ->
  sessions index (:meth:`Router.sessions_of`) for user destinations.
* **Authorization**: an optional hook asked before every SEND, SUBSCRIBE and
  (inside a transaction) COMMIT's SENDs; a denial is an ERROR that names the
  frame and destination.
* **Acknowledgement** (STOMP 1.2 "SUBSCRIBE ack Header", stomp-notes §3.4):
  ``auto`` deliveries count as consumed once *written* to the client's socket
  (a queue message still in an ended session's outgoing backlog goes back to
  its queue); ``client`` ACKs are cumulative within the subscription and cost
  what they settle, ``client-individual`` ones are not; NACK requeues at the
  head, marked ``redelivered:true``, unless it carries ``requeue:false``.
  ACKs are found through an index keyed the way the session's version names
  a message (the core's :meth:`~stomp_proto.ServerConnection.ack_key` rule).
* **Transactions**: SEND, ACK and NACK frames naming a transaction are held
  until COMMIT, which applies all of them or, when the SENDs do not fit the
  queues or the memory budget, none (ERROR); ABORT and a session's end drop
  them. Bounded in frames and bytes.
* **Receipts in order**: a frame's RECEIPT is posted once the frame is
  applied, before the deliveries it causes (a SUBSCRIBE's before its
  backlog: the subscription is live by then).
* **Accounting**: every accepted message is delivered, waiting, requeued,
  refused with an ERROR, or dropped by the slow-consumer policy and counted
  (:attr:`Router.stats`, :attr:`Session.dropped`; per route,
  :attr:`Router.messages_in` and :attr:`Router.messages_out`). Queued and held bytes count
  whole frames (headers too) against the queue, transaction and broker-wide
  budgets.
* **Durability** (``durable=True``, the runtime has a store): persistent queue
  messages and durable topic subscriptions produce store effects
  (:attr:`Router.effects`, ``_store.py``), and the sessions whose frames
  produced them are named in :attr:`Router.awaiting`; the router never waits
  for the store, and never touches it.

Slow consumers: a session whose outgoing backlog (:attr:`Session.pending`,
kept by the runtime) is past ``max_pending_bytes`` is *full*. A full session
gets no topic copies (dropped and counted) and no queue messages (they wait
for another consumer). A session with an empty backlog can always take one
message, however large.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .. import (
    Abort,
    Ack,
    Begin,
    Commit,
    Disconnect,
    Error,
    Event,
    Message,
    MessageTemplate,
    Nack,
    Send,
    Subscribe,
    Unsubscribe,
)
from ._patterns import SubscriptionIndex
from ._selectors import SelectorError, compile_selector
from ._store import Bind, Effect, Put, Remove, Snapshot, StoreError, Unbind

__all__ = [
    "Authorizer",
    "Entry",
    "MemoryQueueStore",
    "Post",
    "QueueRoute",
    "QueueStore",
    "Refusal",
    "Route",
    "Router",
    "Session",
    "Subscription",
    "TopicRoute",
]

#: Headers the broker owns on MESSAGE; a client's values for them are dropped.
SERVER_HEADERS = frozenset({"message-id", "subscription", "ack", "destination", "redelivered"})

#: What a MESSAGE costs besides its body and headers, in the memory budgets
#: (the Entry object, its tuple, a queue slot), a rough CPython figure.
_ENTRY_OVERHEAD = 200

#: The header that makes a /queue/ SEND (or a topic SEND, for durable
#: subscriptions) persistent when the router has a durable store (RabbitMQ's
#: and ActiveMQ's header).
_PERSISTENT = ("persistent", "true")
#: How the queue of a durable topic subscription is named (never a
#: destination: destinations start with a route's prefix).
_DURABLE = "durable:"


class Refusal(Exception):
    """A frame the router will not apply: ERROR (naming the frame), then close."""


@dataclass(eq=False, slots=True)
class Entry:
    """A published message, shared by every copy delivered."""

    message_id: str
    destination: str
    body: bytes
    content_type: str | None
    headers: tuple[tuple[str, str], ...]
    #: What it costs in the budgets: body, headers and overhead.
    size: int
    _map: dict[str, str] | None = None
    #: Its row in the durable store while it is kept there (0: it is not).
    row: int = 0
    _template: MessageTemplate | None = None

    def template(self) -> MessageTemplate:
        """What its deliveries share, checked and encoded once (made at the first)."""
        found = self._template
        if found is None:
            found = self._template = MessageTemplate(
                destination=self.destination,
                message_id=self.message_id,
                content_type=self.content_type,
                body=self.body,
                headers=self.headers,
            )
        return found

    def header_map(self) -> dict[str, str]:
        """Header name -> first value, with ``destination`` and ``content-type``
        (what selectors see); made once per message."""
        found = self._map
        if found is None:
            found = {}
            for name, value in self.headers:
                found.setdefault(name, value)
            found["destination"] = self.destination
            if self.content_type is not None:
                found["content-type"] = self.content_type
            self._map = found
        return found


@dataclass(eq=False, slots=True)
class Subscription:
    """One SUBSCRIBE of one session."""

    session: Session
    key: str
    sub_id: str | None
    destination: str
    ack: str
    prefetch: int | None
    route: Route
    #: False once the route no longer delivers to it (after DISCONNECT).
    active: bool = True
    #: The SUBSCRIBE's ``selector``, compiled (None: every message).
    selector: Callable[[Mapping[str, str]], bool] | None = None
    #: ack key -> (entry, queue it came from or None, ack id), in delivery order.
    unacked: OrderedDict[Hashable, tuple[Entry, str | None, str | None]] = field(
        default_factory=OrderedDict
    )
    #: For a durable topic subscription, the name of the queue that keeps its
    #: messages (its route is then the queue route); None otherwise.
    durable: str | None = None


@dataclass(eq=False, slots=True)
class _Transaction:
    frames: list[Send | Ack | Nack] = field(default_factory=list)
    size: int = 0


@dataclass(eq=False)
class Session:
    """One connected client, as the router sees it."""

    sid: str
    version: str
    #: Who the client authenticated as (the authenticator's answer), or None.
    principal: object = None
    #: The login name, for user destinations and logs (None when anonymous).
    user: str | None = None
    #: ``event -> ack key`` for MESSAGE/ACK/NACK: the core's rule
    #: (:meth:`ServerConnection.ack_key <stomp_proto.ServerConnection.ack_key>`);
    #: None keys by the ``ack`` header, as STOMP 1.2 does.
    ack_key: Callable[[Message | Ack | Nack], Hashable] | None = None
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    #: ack key -> the subscription whose message it names
    ack_index: dict[Hashable, Subscription] = field(default_factory=dict)
    transactions: dict[str, _Transaction] = field(default_factory=dict)
    #: Bytes posted to this client and not yet written (the runtime keeps it).
    pending: int = 0
    #: Set when a delivery was held back because of ``pending``: the runtime
    #: resumes the session once its backlog is written.
    throttled: bool = False
    #: No more frames are applied and no more deliveries made (ERROR sent, or
    #: DISCONNECT received).
    ended: bool = False
    #: Topic copies dropped because this session was full.
    dropped: int = 0
    #: ``auto``-mode queue deliveries not yet known to be written, oldest
    #: first: ``[subscription, entry, queue, mark, message]``, where ``mark``
    #: is where the MESSAGE ends in the bytes posted to the client (set by the
    #: runtime when it posts it; -1 until then).
    unwritten: deque[list[Any]] = field(default_factory=deque)
    #: How many of the last ``unwritten`` records the runtime has yet to mark.
    unmarked: int = 0
    #: The runtime's own object for this session (the router never reads it).
    io: Any = None


Post = tuple[Session, Event]
#: ``(session, event) -> None`` to allow, or the reason for a denial.
Authorizer = Callable[[Session, Event], str | None]


class Route(Protocol):
    """A family of destinations, chosen by prefix (see :meth:`Router.add_route`)."""

    prefix: str
    #: True for a route that answers SENDs itself (application handlers): it
    #: gets the whole frame through :meth:`receive` and owns its RECEIPT,
    #: which it may send later (once a handler has run).
    takes_receipts: bool

    def receive(self, session: Session, event: Send) -> list[Post]:
        """A SEND for a route with ``takes_receipts`` (its transaction, if it
        had one, is committed)."""

    def bind(self, router: Router) -> None:
        """Called once, when the route is added."""

    def valid(self, destination: str) -> str | None:
        """None if this route serves ``destination``, else why not."""

    def send(self, session: Session | None, entry: Entry) -> list[Post]:
        """Route a published message (``session`` is None for application code);
        raise :class:`Refusal` (or OverflowError) to refuse it."""

    def check_send(self, entries: list[Entry]) -> None:
        """Raise :class:`Refusal` if these messages (a COMMIT's) cannot all be
        accepted; called before any of them is sent."""

    def subscribe(self, sub: Subscription) -> list[Post]:
        """Start a subscription; return what it gets at once (a backlog)."""

    def unsubscribe(self, sub: Subscription) -> None:
        """End a subscription (its unacknowledged messages are the router's)."""

    def requeue(self, name: str, items: list[tuple[Entry, bool]]) -> list[Post]:
        """Take back messages of destination ``name``, in order, at the head;
        ``(entry, redelivered)`` each. Return the deliveries that follows."""

    def resume(self, sub: Subscription) -> list[Post]:
        """The subscription's session has room again."""

    # Two optional methods, looked up with getattr, for a route whose
    # messages live elsewhere (a relay to an upstream broker):
    #
    # settled(sub, event, records) -> list[Post]: an ACK or NACK (``event``)
    # settled these ``(entry, queue, ack id)`` records of ``sub``.
    #
    # committed(session, transaction) -> list[Post]: a COMMIT has applied the
    # transaction's frames (what the route received meanwhile was part of it:
    # see Router.committing).


class QueueStore(Protocol):
    """Where a queue's waiting messages live, in memory. (With a durable
    store, persistent ones are also kept there: the router says so with
    :attr:`Router.effects`.)"""

    nbytes: int

    def append(self, entry: Entry, redelivered: bool) -> None: ...

    def appendleft(self, entry: Entry, redelivered: bool) -> None: ...

    def popleft(self) -> tuple[Entry, bool]: ...

    def __len__(self) -> int: ...


class MemoryQueueStore:
    """A queue's messages in a deque; ``nbytes`` is what they cost."""

    __slots__ = ("_items", "nbytes")

    def __init__(self) -> None:
        self._items: deque[tuple[Entry, bool]] = deque()
        self.nbytes = 0

    def append(self, entry: Entry, redelivered: bool) -> None:
        self._items.append((entry, redelivered))
        self.nbytes += entry.size

    def appendleft(self, entry: Entry, redelivered: bool) -> None:
        self._items.appendleft((entry, redelivered))
        self.nbytes += entry.size

    def popleft(self) -> tuple[Entry, bool]:
        item = self._items.popleft()
        self.nbytes -= item[0].size
        return item

    def __len__(self) -> int:
        return len(self._items)


class _BaseRoute:
    """What the broker's own routes share."""

    prefix: str
    router: Router
    takes_receipts = False

    def bind(self, router: Router) -> None:
        self.router = router

    def receive(self, session: Session, event: Send) -> list[Post]:  # pragma: no cover
        raise NotImplementedError

    def valid(self, destination: str) -> str | None:
        if len(destination) <= len(self.prefix):
            return f"{destination[:80]!r} names no {self.prefix} destination"
        return None

    def check_send(self, entries: list[Entry]) -> None:
        return None

    def requeue(self, name: str, items: list[tuple[Entry, bool]]) -> list[Post]:
        return []

    def resume(self, sub: Subscription) -> list[Post]:
        return []


@dataclass(eq=False, slots=True)
class _Binding:
    """A durable topic subscription: what is published to ``record.destination``
    (and passes the selector) goes to the queue ``record.queue``."""

    record: Bind
    selector: Callable[[Mapping[str, str]], bool] | None


class TopicRoute(_BaseRoute):
    """Publish-subscribe: every matching subscription gets a copy; with no
    subscriber the message is gone. Subscriptions may be patterns (``*`` within
    one ``.``/``/`` segment, ``**`` across segments), indexed so that a
    publish does not scan every pattern.

    With a durable store, a SUBSCRIBE with ``durable:true`` (or
    ``persistent:true``), ``auto-delete:false`` and an ``id`` is a *durable*
    subscription (RabbitMQ's headers): a queue of the router's queue route,
    bound here, that keeps what is published while its subscriber is away."""

    #: Longest pattern a SUBSCRIBE may use: matching costs up to
    #: ``len(destination) * len(pattern) / 64`` word steps, so both are bounded.
    max_pattern_length = 1024

    #: SUBSCRIBE ``selector`` headers are honoured (see ``_selectors.py``).
    selectors = True

    def __init__(self, prefix: str = "/topic/") -> None:
        self.prefix = prefix
        self.index: SubscriptionIndex[Subscription] = SubscriptionIndex()
        #: Durable subscriptions: queue name -> binding, and their index.
        self.durables: dict[str, _Binding] = {}
        self._durable_index: SubscriptionIndex[_Binding] = SubscriptionIndex()

    def valid(self, destination: str) -> str | None:
        if "*" in destination and len(destination) > self.max_pattern_length:
            return f"a pattern may be at most {self.max_pattern_length} characters long"
        return super().valid(destination)

    def send(self, session: Session | None, entry: Entry) -> list[Post]:
        router = self.router
        # Durable subscriptions' queues must all have room before anyone gets a copy.
        durable = self._durable_targets([entry]) if self.durables else None
        out: list[Post] = []
        for sub in self.index.match(entry.destination):
            if sub.session.ended:
                continue  # its ERROR is out; it is closing
            if sub.selector is not None and not sub.selector(entry.header_map()):
                continue
            if router.has_room(sub):
                out.append(router._message(sub, entry, None, False))
            else:
                router.drop(sub)
        if out:
            router.messages_out[self.prefix] += len(out)  # once per publish, not per copy
        if durable:
            queues = router.queues
            assert queues is not None  # a binding needs one
            persistent = router.durable and _PERSISTENT in entry.headers
            for binding in durable[0]:
                copy = entry
                if persistent:  # one row per queue: a copy of its own
                    copy = Entry(
                        entry.message_id,
                        entry.destination,
                        entry.body,
                        entry.content_type,
                        entry.headers,
                        entry.size,
                    )
                out += queues.put(binding.record.queue, copy, session, persistent=persistent)
        return out

    def check_send(self, entries: list[Entry]) -> None:
        if self.durables:
            self._durable_targets(entries, reserve=True)

    def _durable_targets(
        self, entries: list[Entry], *, reserve: bool = False
    ) -> list[list[_Binding]] | None:
        """The durable subscriptions each of ``entries`` goes to (None: none
        at all); Refusal if their queues or the store have no room for them.
        (Their copies are not counted again in the memory budget: each queue's
        is bounded by ``max_queue_bytes``.)"""
        router = self.router
        queues = router.queues
        found: list[list[_Binding]] = []
        need: dict[str, list[int]] = {}
        stored = 0
        for entry in entries:
            bindings = [
                b
                for b in self._durable_index.match(entry.destination)
                if b.selector is None or b.selector(entry.header_map())
            ]
            found.append(bindings)
            persistent = router.durable and _PERSISTENT in entry.headers
            for b in bindings:
                room = need.setdefault(b.record.queue, [0, 0])
                room[0] += 1
                room[1] += entry.size
                if persistent:
                    stored += entry.size
        if not need or queues is None:
            return None
        for name, (count, size) in need.items():
            queues.room(name, count, size)
        if stored:
            if reserve:
                router._reserve_stored(stored)
            else:
                router._room_stored(stored)
        return found

    def bind_durable(self, record: Bind) -> bool:
        """Keep (or update) the durable subscription ``record``; False if it
        was bound already, exactly so."""
        old = self.durables.get(record.queue)
        if old is not None:
            if old.record == record:
                return False
            self._durable_index.remove(old.record.destination, old)
        selector = None
        if record.selector is not None:
            selector = compile_selector(record.selector)
        binding = self.durables[record.queue] = _Binding(record, selector)
        self._durable_index.add(record.destination, binding)
        return True

    def unbind_durable(self, name: str) -> None:
        """Forget the durable subscription of queue ``name``."""
        binding = self.durables.pop(name, None)
        if binding is not None:
            self._durable_index.remove(binding.record.destination, binding)

    def subscribe(self, sub: Subscription) -> list[Post]:
        self.index.add(sub.destination, sub)
        return []

    def unsubscribe(self, sub: Subscription) -> None:
        self.index.remove(sub.destination, sub)


@dataclass(eq=False, slots=True)
class _Queue:
    name: str
    store: QueueStore
    consumers: list[Subscription] = field(default_factory=list)
    turn: int = 0


class QueueRoute(_BaseRoute):
    """Point to point: each message goes to one subscription, round robin
    among those with room; it waits (up to ``max_queue_bytes`` and
    ``max_queue_messages`` per queue) while nobody can take it.

    With a durable store (:attr:`Router.durable`), a SEND with
    ``persistent:true`` is also kept in the store until it is consumed; the
    queues of durable topic subscriptions live here too."""

    def __init__(
        self,
        prefix: str = "/queue/",
        *,
        max_queue_bytes: int = 64 << 20,
        max_queue_messages: int = 1_000_000,
        store: Callable[[str], QueueStore] = lambda name: MemoryQueueStore(),
    ) -> None:
        self.prefix = prefix
        self.max_queue_bytes = max_queue_bytes
        self.max_queue_messages = max_queue_messages
        self.store = store
        self.queues: dict[str, _Queue] = {}

    def valid(self, destination: str) -> str | None:
        if "*" in destination:
            return "patterns are for /topic/ subscriptions only"
        return super().valid(destination)

    def _queue(self, name: str) -> _Queue:
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = _Queue(name, self.store(name))
        return queue

    def _room(self, name: str, size: int) -> None:
        queue = self.queues.get(name)
        held = 0 if queue is None else queue.store.nbytes
        if held + size > self.max_queue_bytes:
            raise Refusal(f"{_label(name)} holds {self.max_queue_bytes} bytes already")
        if queue is not None and len(queue.store) >= self.max_queue_messages:
            raise Refusal(
                f"{_label(name)} holds {self.max_queue_messages} messages already "
                f"(max_queue_messages)"
            )

    def room(self, name: str, count: int, size: int) -> None:
        """Raise :class:`Refusal` unless queue ``name`` can take ``count`` more
        messages of ``size`` bytes in all."""
        queue = self.queues.get(name)
        held = 0 if queue is None else queue.store.nbytes
        if held + size > self.max_queue_bytes:
            raise Refusal(f"{_label(name)} holds {self.max_queue_bytes} bytes already")
        waiting = 0 if queue is None else len(queue.store)
        if waiting + count > self.max_queue_messages:
            raise Refusal(
                f"{_label(name)} holds {self.max_queue_messages} messages already "
                f"(max_queue_messages)"
            )

    def check_send(self, entries: list[Entry]) -> None:
        need: dict[str, list[int]] = {}
        stored = 0
        durable = self.router.durable
        for entry in entries:
            room = need.setdefault(entry.destination, [0, 0])
            room[0] += 1
            room[1] += entry.size
            if durable and _PERSISTENT in entry.headers:
                stored += entry.size
        for name, (count, size) in need.items():
            self.room(name, count, size)
        if stored:
            self.router._reserve_stored(stored)

    def send(self, session: Session | None, entry: Entry) -> list[Post]:
        name = entry.destination
        size = entry.size
        queue = self.queues.get(name)
        if queue is None:
            self._room(name, size)
            queue = self._queue(name)
        else:
            store = queue.store
            if store.nbytes + size > self.max_queue_bytes or (
                len(store) >= self.max_queue_messages
            ):
                self._room(name, size)  # it says which limit
        router = self.router
        if router.durable and _PERSISTENT in entry.headers:
            router._room_stored(size)
            router._persist(name, entry, session)
        queue.store.append(entry, False)
        router.memory += size
        return self._dispatch(queue)

    def put(
        self, name: str, entry: Entry, session: Session | None, *, persistent: bool
    ) -> list[Post]:
        """Add ``entry`` to queue ``name`` (a durable subscription's: its room
        was checked), kept in the store too if ``persistent``."""
        if persistent:
            self.router._persist(name, entry, session)
        queue = self._queue(name)
        queue.store.append(entry, False)
        self.router.memory += entry.size
        return self._dispatch(queue)

    def subscribe(self, sub: Subscription) -> list[Post]:
        queue = self._queue(sub.durable or sub.destination)
        queue.consumers.append(sub)
        return self._dispatch(queue)

    def unsubscribe(self, sub: Subscription) -> None:
        queue = self.queues.get(sub.durable or sub.destination)
        if queue is not None and sub in queue.consumers:
            queue.consumers.remove(sub)

    def requeue(self, name: str, items: list[tuple[Entry, bool]]) -> list[Post]:
        queue = self.queues.get(name)
        if queue is None and name.startswith(_DURABLE):
            # Its durable subscription was deleted: what it had given out goes too.
            for entry, _ in items:
                self.router._unpersist(entry, None)
            return []
        queue = self._queue(name)
        for entry, redelivered in reversed(items):
            queue.store.appendleft(entry, redelivered)
            self.router.memory += entry.size
        return self._dispatch(queue)

    def resume(self, sub: Subscription) -> list[Post]:
        queue = self.queues.get(sub.durable or sub.destination)
        return [] if queue is None else self._dispatch(queue)

    def restore(self, name: str, entry: Entry) -> None:
        """A message found in the store at start: at the tail of queue
        ``name``, marked redelivered (it may have reached a consumer before)."""
        self._queue(name).store.append(entry, True)
        self.router.memory += entry.size

    def drop(self, name: str) -> None:
        """Delete queue ``name`` (a durable subscription's) and what waits in it."""
        queue = self.queues.pop(name, None)
        if queue is None:
            return
        router = self.router
        store = queue.store
        while len(store):
            entry, _ = store.popleft()
            router.memory -= entry.size
            if entry.row:  # its row goes with the subscription's (Unbind)
                router._books.stored_bytes -= entry.size
                entry.row = 0

    def _dispatch(self, queue: _Queue) -> list[Post]:
        """Hand queued messages round robin to consumers with room."""
        out: list[Post] = []
        consumers = queue.consumers
        store = queue.store
        router = self.router
        if len(consumers) == 1:
            sub = consumers[0]
            while len(store) and router.has_room(sub):
                entry, redelivered = store.popleft()
                router.memory -= entry.size
                out.append(router._message(sub, entry, queue.name, redelivered))
            if out:
                router.messages_out[self.prefix] += len(out)
            return out
        while len(store) and consumers:
            count = len(consumers)
            for step in range(count):
                sub = consumers[(queue.turn + step) % count]
                if router.has_room(sub):
                    queue.turn = (queue.turn + step + 1) % count
                    entry, redelivered = store.popleft()
                    router.memory -= entry.size
                    out.append(router._message(sub, entry, queue.name, redelivered))
                    break
            else:
                break  # nobody has room: the rest waits
        if out:
            router.messages_out[self.prefix] += len(out)
        return out

    def waiting(self) -> int:
        return sum(len(q.store) for q in self.queues.values())


def _label(name: str) -> str:
    """A queue's name as an ERROR says it."""
    if name.startswith(_DURABLE):
        _, destination, sub_id = json.loads(name[len(_DURABLE) :])
        return f"durable subscription {str(sub_id)[:80]!r} to {str(destination)[:80]!r}"
    return f"queue {name[:80]!r}"


def _durable_name(login: str | None, destination: str, sub_id: str) -> str:
    """The queue of a durable topic subscription: keyed by login, destination and id."""
    return _DURABLE + json.dumps([login, destination, sub_id], ensure_ascii=False)


@dataclass(eq=False, slots=True)
class _Books:
    """What the router keeps for the durable store (see :class:`Router`'s
    attributes of the same names)."""

    max_store_bytes: int
    max_durable_subscriptions: int
    effects: list[Effect] = field(default_factory=list)
    awaiting: set[Session] = field(default_factory=set)
    watch: set[Session] = field(default_factory=set)
    stored_bytes: int = 0
    #: What the routes of a COMMIT being checked need of the store.
    reserved: int = 0
    rows: Iterator[int] = field(default_factory=lambda: itertools.count(1))


class Router:
    """The broker's semantics: see the module docstring.

    Args:
        routes: the destination families served; default ``/topic/`` and
            ``/queue/``.
        max_pending_bytes: a session's outgoing backlog beyond which it is full.
        max_unacknowledged: unacknowledged messages per session, beyond which
            it gets no more (they wait).
        max_queue_bytes: what one queue may hold (whole frames).
        max_transaction_frames: SEND/ACK/NACK frames one transaction may hold.
        max_transaction_bytes: bytes one transaction may hold.
        max_memory_bytes: broker-wide: queued plus held bytes beyond which a
            SEND (or a COMMIT) gets ERROR.
        authorize: ``(session, event) -> None`` or the reason for a denial,
            asked for each SEND and SUBSCRIBE.
        durable: the runtime has a durable store: persistent messages and
            durable subscriptions produce :attr:`effects` (see
            :mod:`the store's interface <stomp_proto.broker>`).
        max_store_bytes: with ``durable``: what the store may hold, all
            persistent messages (waiting or unacknowledged) counted whole;
            a persistent SEND beyond it gets ERROR.
        max_queue_messages: messages one queue (or durable subscription) may
            hold waiting; a SEND beyond it gets ERROR.
        max_durable_subscriptions: with ``durable``: durable topic
            subscriptions the broker keeps, beyond which a new one gets ERROR.
    """

    def __init__(
        self,
        *,
        routes: Iterable[Route] | None = None,
        max_pending_bytes: int = 4 << 20,
        max_unacknowledged: int = 100_000,
        max_queue_bytes: int = 64 << 20,
        max_transaction_frames: int = 10_000,
        max_transaction_bytes: int = 32 << 20,
        max_memory_bytes: int = 256 << 20,
        authorize: Authorizer | None = None,
        durable: bool = False,
        max_store_bytes: int = 1 << 30,
        max_queue_messages: int = 1_000_000,
        max_durable_subscriptions: int = 10_000,
    ) -> None:
        self.max_pending_bytes = max_pending_bytes
        self.max_unacknowledged = max_unacknowledged
        self.max_transaction_frames = max_transaction_frames
        self.max_transaction_bytes = max_transaction_bytes
        self.max_memory_bytes = max_memory_bytes
        self.authorize = authorize
        #: Bytes queued or held in transactions, against ``max_memory_bytes``.
        self.memory = 0
        #: True when a durable store keeps persistent messages (the runtime's).
        self.durable = durable
        # The store's books are one attribute: CPython keeps an instance's
        # attributes inline (fast to read) only up to 30 of them, and the
        # router's hot path reads many.
        self._books = _Books(max_store_bytes, max_durable_subscriptions)
        #: The time, as the runtime last said (the router reads no clock): what
        #: routes with deadlines (a user's offline backlog) measure against.
        self.now = 0.0
        #: ``(session, event) -> event or None`` hooks run in order on every
        #: client frame before it is applied; None drops the frame, raising
        #: :class:`Refusal` refuses it with an ERROR.
        self.inbound: list[Callable[[Session, Event], Event | None]] = []
        #: ``(session, event) -> event or None`` hooks the runtime runs, in
        #: order, on every frame before posting it to a client; None drops it
        #: (a dropped MESSAGE counts as delivered: the hook consumed it).
        self.outbound: list[Callable[[Session, Event], Event | None]] = []
        self.sessions: dict[str, Session] = {}
        self._users: dict[str, dict[str, Session]] = {}
        #: Route prefix -> messages accepted for it (SENDs, application
        #: publishes) and MESSAGE frames made from it: plain counters for the
        #: broker's metrics, kept per route so that they cost nothing to read.
        self.messages_in: dict[str, int] = {}
        self.messages_out: dict[str, int] = {}
        self.routes: list[Route] = []
        self._route_cache: dict[str, Route] = {}
        self.topics: TopicRoute | None = None
        self.queues: QueueRoute | None = None
        if routes is None:
            routes = (
                TopicRoute(),
                QueueRoute(max_queue_bytes=max_queue_bytes, max_queue_messages=max_queue_messages),
            )
        for route in routes:
            self.add_route(route)
        self._ids = itertools.count(1)
        self._acks = itertools.count(1)
        self.boot = secrets.token_hex(4)  # message ids stay unique across restarts
        self.stats = {
            "published": 0,
            "delivered": 0,
            "dropped": 0,
            "redelivered": 0,
            "refused": 0,
            "requeued": 0,
            "denied": 0,
        }
        #: Where asynchronous deliveries go (:meth:`emit`); the runtime sets it.
        self.on_emit: Callable[[list[Post]], None] | None = None
        self._receipt_taken = False
        self._frame: Event | None = None
        #: The transaction a COMMIT is applying, while it applies it (None
        #: otherwise): what a route receives meanwhile belongs to it.
        self.committing: str | None = None
        #: Sessions that missed topic copies since the runtime last looked.
        self.dropping: set[Session] = set()
        self._handlers: dict[type[Event], Callable[[Session, Event], list[Post]]] = {
            Send: self._on_send,  # type: ignore[dict-item]
            Subscribe: self._on_subscribe,  # type: ignore[dict-item]
            Unsubscribe: self._on_unsubscribe,  # type: ignore[dict-item]
            Ack: self._on_ack,  # type: ignore[dict-item]
            Nack: self._on_ack,  # type: ignore[dict-item]
            Begin: self._on_begin,  # type: ignore[dict-item]
            Commit: self._on_commit,  # type: ignore[dict-item]
            Abort: self._on_abort,  # type: ignore[dict-item]
            Disconnect: self._on_disconnect,  # type: ignore[dict-item]
        }

    # -- the durable store's books ----------------------------------------------------

    @property
    def effects(self) -> list[Effect]:
        """What the durable store must do, in order (:class:`Put`,
        :class:`Remove`, :class:`Bind`, :class:`Unbind`): the runtime takes the
        list (assigning a new one), commits it, and only then posts what the
        :attr:`awaiting` sessions were due."""
        return self._books.effects

    @effects.setter
    def effects(self, value: list[Effect]) -> None:
        self._books.effects = value

    @property
    def awaiting(self) -> set[Session]:
        """Sessions whose frames produced effects: what is posted to them from
        now on waits until those effects are committed (a RECEIPT then means
        that everything the session sent before it is stored). The runtime
        empties it."""
        return self._books.awaiting

    @property
    def watch(self) -> set[Session]:
        """Sessions with ``auto``-mode deliveries of stored messages not yet
        known to be written: the runtime calls :meth:`written` for them."""
        return self._books.watch

    @property
    def stored_bytes(self) -> int:
        """Bytes of persistent messages in the store, against ``max_store_bytes``."""
        return self._books.stored_bytes

    # -- routes --------------------------------------------------------------------

    def add_route(self, route: Route) -> None:
        """Serve the destinations under ``route.prefix`` (longest prefix wins)."""
        if any(r.prefix == route.prefix for r in self.routes):
            raise ValueError(f"a route for {route.prefix!r} exists already")
        route.bind(self)
        self.messages_in.setdefault(route.prefix, 0)
        self.messages_out.setdefault(route.prefix, 0)
        self._route_cache.clear()
        self.routes.append(route)
        self.routes.sort(key=lambda r: len(r.prefix), reverse=True)
        if isinstance(route, TopicRoute) and self.topics is None:
            self.topics = route
        if isinstance(route, QueueRoute) and self.queues is None:
            self.queues = route

    def route(self, destination: str) -> Route | None:
        """The route serving ``destination``, or None."""
        for route in self.routes:
            if destination.startswith(route.prefix):
                return route if route.valid(destination) is None else None
        return None

    def _route_for(self, destination: str) -> Route:
        route = self._route_cache.get(destination)
        if route is not None:
            return route
        route = self._find_route(destination)
        if len(self._route_cache) >= 10_000:
            self._route_cache.clear()  # bounded: destinations are the clients' choice
        self._route_cache[destination] = route
        return route

    def _find_route(self, destination: str) -> Route:
        for route in self.routes:
            if destination.startswith(route.prefix):
                why = route.valid(destination)
                if why is not None:
                    raise Refusal(why)
                return route
        raise Refusal(f"unknown destination {destination[:80]!r}")

    def emit(self, deliveries: list[Post]) -> None:
        """Deliver from outside a frame (a route that answers later, a relay)."""
        if deliveries and self.on_emit is not None:
            self.on_emit(deliveries)

    # -- sessions ------------------------------------------------------------------

    def open(
        self,
        sid: str,
        version: str,
        *,
        user: str | None = None,
        principal: object = None,
        ack_key: Callable[[Message | Ack | Nack], Hashable] | None = None,
    ) -> Session:
        """A client connected (CONNECTED is the runtime's to send)."""
        session = Session(sid, version, principal=principal, user=user, ack_key=ack_key)
        self.sessions[sid] = session
        if user is not None:
            self._users.setdefault(user, {})[sid] = session
        return session

    def sessions_of(self, user: str) -> list[Session]:
        """Every session ``user`` has open, oldest first."""
        return list(self._users.get(user, {}).values())

    def written(self, session: Session, upto: int) -> None:
        """The runtime wrote ``session``'s first ``upto`` posted bytes."""
        unwritten = session.unwritten
        if self.durable:  # stored auto-mode deliveries are consumed: out of the store
            while unwritten and 0 <= unwritten[0][3] <= upto:
                entry = unwritten.popleft()[1]
                if entry.row:
                    self._unpersist(entry, None)
            return
        while unwritten and 0 <= unwritten[0][3] <= upto:
            unwritten.popleft()

    def close(self, session: Session, *, written: int | None = None) -> list[Post]:
        """The client is gone; ``written`` bytes of what was posted reached its
        socket (None: all). Its subscriptions end, its transactions are
        dropped, and queue messages it had not been written or had not
        acknowledged go back to their queues for others."""
        if written is not None:
            self.written(session, written)
        back: dict[tuple[int, str], tuple[Route, str, list[tuple[Entry, bool]]]] = {}
        if written is not None:
            # auto-mode queue deliveries that never reached the socket
            for sub, entry, queue, _, _ in session.unwritten:
                group = back.setdefault((id(sub.route), queue), (sub.route, queue, []))
                # Marked redelivered: the write that failed may have put some
                # of it on the wire ("may have been delivered before").
                group[2].append((entry, True))
        elif self.durable:  # all of it was written: consumed
            for _, entry, _, _, _ in session.unwritten:
                if entry.row:
                    self._unpersist(entry, None)
        session.unwritten.clear()
        self._books.watch.discard(session)
        self._books.awaiting.discard(session)
        session.unmarked = 0
        out: list[Post] = []
        for key in list(session.subscriptions):
            out += self._end_subscription(session, key)
        for route, queue, items in back.values():
            self.stats["requeued"] += len(items)
            out += route.requeue(queue, items)
        for tx in session.transactions.values():
            self.memory -= tx.size
        session.transactions.clear()
        session.ended = True
        self.sessions.pop(session.sid, None)
        if session.user is not None:
            users = self._users.get(session.user)
            if users is not None:
                users.pop(session.sid, None)
                if not users:
                    del self._users[session.user]
        return out

    # -- frames --------------------------------------------------------------------

    def handle(self, session: Session, event: Event) -> list[Post]:
        """Apply one client frame: its deliveries and replies, in order.

        A frame the broker refuses gets an ERROR (naming the frame, with the
        receipt-id when it asked for one) and the session ends: it must be
        closed once that ERROR is written.
        """
        if session.ended:
            return []
        handler = self._handlers.get(type(event))
        if handler is None:
            return []  # CONNECT, heart-beats: the runtime's and the core's
        self._receipt_taken = False
        try:
            if self.inbound:
                for hook in self.inbound:
                    changed = hook(session, event)
                    if changed is None:
                        return []
                    event = changed
                handler = self._handlers.get(type(event))
                if handler is None:
                    return []
            self._frame = event
            out = handler(session, event)
        except (Refusal, OverflowError) as exc:
            self.stats["refused"] += 1
            session.ended = True
            return [(session, self.error(session, event, str(exc)))]
        receipt = event.receipt  # type: ignore[attr-defined]  # every handled type has one
        if receipt is not None and type(event) is not Subscribe and not self._receipt_taken:
            out.insert(0, (session, event.make_receipt()))
        return out

    def take_receipt(self) -> str | None:
        """For a route, while the router applies a frame: the route will send
        that frame's RECEIPT itself, later (a relay, once its upstream broker
        confirmed the frame). Returns the receipt id, or None when the frame
        asked for none."""
        self._receipt_taken = True
        return getattr(self._frame, "receipt", None)

    @staticmethod
    def error(session: Session, event: Event | None, message: str) -> Error:
        """The ERROR refusing ``event`` (it names the frame)."""
        command = "" if event is None else f" ({event.COMMAND})"
        return Error(
            message=message[:200],
            receipt_id=getattr(event, "receipt", None),
            content_type="text/plain",
            body=f"{message}{command}".encode(),
        )

    def _authorize(self, session: Session, event: Event) -> None:
        if self.authorize is not None:
            why = self.authorize(session, event)
            if why is not None:
                self.stats["denied"] += 1
                destination = getattr(event, "destination", None)
                raise Refusal(f"{event.COMMAND} to {str(destination)[:80]!r} denied: {why}")

    def _on_send(self, session: Session, event: Send) -> list[Post]:
        route = self._route_for(event.destination)
        if self.authorize is not None:
            self._authorize(session, event)
        if event.transaction is not None:
            self._hold(session, event.transaction, event, self._size(event))
            return []
        if route.takes_receipts:
            self._receipt_taken = True
            self.messages_in[route.prefix] += 1
            return route.receive(session, event)
        return self._publish(route, session, self._entry(event))

    def _on_subscribe(self, session: Session, event: Subscribe) -> list[Post]:
        route = self._route_for(event.destination)
        self._authorize(session, event)
        prefetch = None
        selector = None
        selector_text = None
        durable = keep = False
        for name, value in event.headers:
            if name == "prefetch-count" and prefetch is None:
                if not (value.isascii() and value.isdigit()):
                    raise Refusal(f"prefetch-count:{value[:20]!r} is not a number")
                prefetch = int(value) or None
            elif name == "selector" and selector is None:
                if not getattr(route, "selectors", False):
                    raise Refusal(f"selectors are not supported on {route.prefix} subscriptions")
                try:
                    selector = compile_selector(value)
                except SelectorError as exc:
                    raise Refusal(f"selector {value[:80]!r} does not parse: {exc}") from None
                selector_text = value
            elif name in ("durable", "persistent"):
                durable = durable or value == "true"
            elif name == "auto-delete":
                keep = value == "false"
        key = event.subscription_key  # the core's rule
        queue_name = None
        if durable and keep and self.durable and isinstance(route, TopicRoute):
            queue_name = self._durable_subscription(session, event, route, selector_text)
            assert self.queues is not None
            route = self.queues  # its messages are a queue's
        sub = Subscription(session, key, event.id, event.destination, event.ack, prefetch, route)
        sub.selector = selector
        sub.durable = queue_name
        session.subscriptions[key] = sub
        out = route.subscribe(sub)
        if event.receipt is not None and not self._receipt_taken:
            # The RECEIPT says the subscription is live: it goes before the backlog.
            out.insert(0, (session, event.make_receipt()))
        return out

    def _durable_subscription(
        self, session: Session, event: Subscribe, topics: TopicRoute, selector: str | None
    ) -> str:
        """Bind (or find) the queue of a durable SUBSCRIBE; its name."""
        if event.id is None:
            raise Refusal("a durable subscription (durable:true) needs an id header")
        if self.queues is None:
            raise Refusal("durable subscriptions need a queue route")
        name = _durable_name(session.user, event.destination, event.id)
        if (
            name not in topics.durables
            and len(topics.durables) >= self._books.max_durable_subscriptions
        ):
            raise Refusal(
                f"the broker keeps {self._books.max_durable_subscriptions} durable subscriptions "
                f"already (max_durable_subscriptions)"
            )
        record = Bind(name, session.user, event.destination, event.id, selector)
        if topics.bind_durable(record):
            self.queues._queue(name)
            self._books.effects.append(record)
            self._books.awaiting.add(session)  # its RECEIPT says the subscription is stored
        return name

    def _on_unsubscribe(self, session: Session, event: Unsubscribe) -> list[Post]:
        key = event.subscription_key or ""
        sub = session.subscriptions.get(key)
        if (
            sub is not None
            and sub.durable is not None
            and any(k in ("durable", "persistent") and v == "true" for k, v in event.headers)
        ):
            return self._delete_durable(session, key, sub, sub.durable)
        return self._end_subscription(session, key)

    def _delete_durable(
        self, session: Session, key: str, sub: Subscription, name: str
    ) -> list[Post]:
        """UNSUBSCRIBE with ``durable:true``: the durable subscription is
        deleted, with what it kept (RabbitMQ's rule)."""
        queues = self.queues
        assert queues is not None
        queue = queues.queues.get(name)
        if queue is not None and any(other is not sub for other in queue.consumers):
            raise Refusal(
                f"durable subscription {sub.sub_id!r} is in use by another session: "
                f"it cannot be deleted now"
            )
        out = self._end_subscription(session, key)  # its unacknowledged go back, then all go
        queues.drop(name)
        topics = self._route_for(sub.destination)
        if isinstance(topics, TopicRoute):
            topics.unbind_durable(name)
        self._books.effects.append(Unbind(name))
        self._books.awaiting.add(session)
        return out

    def _on_ack(self, session: Session, event: Ack | Nack) -> list[Post]:
        if event.transaction is not None:
            self._hold(session, event.transaction, event, 0)
            return []
        return self._settle(session, event)

    def _on_begin(self, session: Session, event: Begin) -> list[Post]:
        session.transactions[event.transaction] = _Transaction()
        return []

    def _on_commit(self, session: Session, event: Commit) -> list[Post]:
        tx = session.transactions.pop(event.transaction, None)
        if tx is None:
            return []
        self.memory -= tx.size
        sends = [
            (route, self._entry(held))
            for held in tx.frames
            if type(held) is Send
            and not (route := self._route_for(held.destination)).takes_receipts
        ]
        # All or nothing: every SEND must fit before any is applied.
        by_route: dict[int, tuple[Route, list[Entry]]] = {}
        for route, entry in sends:
            by_route.setdefault(id(route), (route, []))[1].append(entry)
        try:
            for route, entries in by_route.values():
                route.check_send(entries)
        finally:
            self._books.reserved = 0
        self._budget(sum(entry.size for _, entry in sends))
        out: list[Post] = []
        sent = iter(sends)
        self.committing = event.transaction
        try:
            for held in tx.frames:
                if type(held) is Send:
                    target = self._route_for(held.destination)
                    if target.takes_receipts:  # its RECEIPT went out when it was held
                        self.messages_in[target.prefix] += 1
                        out += target.receive(
                            session, replace(held, transaction=None, receipt=None)
                        )
                        continue
                    route, entry = next(sent)
                    self.stats["published"] += 1
                    self.messages_in[route.prefix] += 1
                    out += route.send(session, entry)
                else:
                    out += self._settle(session, held)  # type: ignore[arg-type]
            for route in self.routes:
                committed = getattr(route, "committed", None)
                if committed is not None:
                    out += committed(session, event.transaction)
        finally:
            self.committing = None
        return out

    def _on_abort(self, session: Session, event: Abort) -> list[Post]:
        tx = session.transactions.pop(event.transaction, None)
        if tx is not None:
            self.memory -= tx.size
        return []

    def _on_disconnect(self, session: Session, event: Disconnect) -> list[Post]:
        # No more deliveries: what was posted before the RECEIPT is the
        # client's; the rest is settled when the runtime closes the session.
        for sub in session.subscriptions.values():
            if sub.active:
                sub.active = False
                sub.route.unsubscribe(sub)
        session.ended = True
        return []

    def _hold(self, session: Session, tx_id: str, event: Send | Ack | Nack, size: int) -> None:
        tx = session.transactions[tx_id]
        if len(tx.frames) >= self.max_transaction_frames:
            raise Refusal(
                f"transaction {tx_id[:80]!r} holds {self.max_transaction_frames} frames already"
            )
        if tx.size + size > self.max_transaction_bytes:
            raise Refusal(
                f"transaction {tx_id[:80]!r} would hold more than "
                f"{self.max_transaction_bytes} bytes"
            )
        self._budget(size)
        tx.frames.append(event)
        tx.size += size
        self.memory += size

    # -- publishing ----------------------------------------------------------------

    def publish(
        self,
        destination: str,
        body: bytes,
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> list[Post]:
        """Publish from application code; ValueError for a destination no route
        serves, OverflowError when it does not fit."""
        try:
            route = self._route_for(destination)
        except Refusal as exc:
            raise ValueError(str(exc)) from None
        entry = self._make_entry(destination, body, content_type, tuple(headers))
        try:
            return self._publish(route, None, entry)
        except Refusal as exc:
            raise OverflowError(str(exc)) from None

    def _publish(self, route: Route, session: Session | None, entry: Entry) -> list[Post]:
        self._budget(entry.size)
        out = route.send(session, entry)
        self.stats["published"] += 1
        self.messages_in[route.prefix] += 1
        return out

    def _budget(self, size: int) -> None:
        if self.memory + size > self.max_memory_bytes:
            raise Refusal(
                f"the broker holds {self.max_memory_bytes} bytes of messages already "
                f"(max_memory_bytes)"
            )

    @staticmethod
    def _size(event: Send) -> int:
        return (
            len(event.body)
            + len(event.destination)
            + sum(len(k) + len(v) + 2 for k, v in event.headers)
            + _ENTRY_OVERHEAD
        )

    def _entry(self, event: Send) -> Entry:
        return self._make_entry(event.destination, event.body, event.content_type, event.headers)

    def _make_entry(
        self,
        destination: str,
        body: bytes,
        content_type: str | None,
        headers: tuple[tuple[str, str], ...],
    ) -> Entry:
        size = len(body) + len(destination) + _ENTRY_OVERHEAD
        if headers:
            headers = tuple(kv for kv in headers if kv[0] not in SERVER_HEADERS)
            size += sum(len(k) + len(v) + 2 for k, v in headers)
        kept = headers
        return Entry(f"{self.boot}-{next(self._ids)}", destination, body, content_type, kept, size)

    # -- the durable store -----------------------------------------------------------

    def restore(self, snapshot: Snapshot) -> None:
        """Rebuild what a durable store kept (at start, before any session):
        its durable subscriptions, and its messages at the tail of their
        queues, in order, each marked ``redelivered:true`` (it may have reached
        a consumer before the restart). Raise :exc:`StoreError` for a message
        no queue route can take."""
        queues = self.queues
        for record in snapshot.subscriptions:
            topics = self.route(record.destination)
            if isinstance(topics, TopicRoute) and queues is not None:
                try:
                    topics.bind_durable(record)
                except SelectorError:
                    continue  # cannot happen for a selector that was accepted
                queues._queue(record.queue)
        top = 0
        for message in snapshot.messages:
            target = queues
            if not message.queue.startswith(_DURABLE):
                found = self.route(message.queue)
                if isinstance(found, QueueRoute):
                    target = found
            if target is None:
                raise StoreError(
                    f"the store holds messages for {message.queue[:80]!r}, "
                    f"which no queue route serves"
                )
            entry = self._make_entry(
                message.destination, message.body, message.content_type, message.headers
            )
            entry.message_id = message.message_id  # the same id as before the restart
            entry.row = message.row
            target.restore(message.queue, entry)
            self._books.stored_bytes += entry.size
            top = max(top, message.row)
        self._books.rows = itertools.count(top + 1)

    def _persist(self, queue: str, entry: Entry, session: Session | None) -> None:
        """Keep ``entry`` (of ``queue``) in the store; ``session``'s posts wait for it."""
        entry.row = row = next(self._books.rows)
        self._books.stored_bytes += entry.size
        self._books.effects.append(Put(row, queue, entry))
        if session is not None:
            self._books.awaiting.add(session)

    def _unpersist(self, entry: Entry, session: Session | None) -> None:
        """``entry`` is consumed: out of the store (if it is there)."""
        row = entry.row
        if row:
            entry.row = 0
            self._books.stored_bytes -= entry.size
            self._books.effects.append(Remove(row))
            if session is not None:
                self._books.awaiting.add(session)

    def _room_stored(self, size: int) -> None:
        """Refusal unless the store can take ``size`` more bytes (besides what
        a COMMIT being checked has reserved)."""
        if self._books.stored_bytes + self._books.reserved + size > self._books.max_store_bytes:
            raise Refusal(
                f"the store holds {self._books.max_store_bytes} bytes of messages already "
                f"(max_store_bytes)"
            )

    def _reserve_stored(self, size: int) -> None:
        """:meth:`_room_stored` for a route's ``check_send``: the routes of one
        COMMIT are checked against the store's room together."""
        self._room_stored(size)
        self._books.reserved += size

    def consumed(self, entry: Entry) -> None:
        """The runtime will never write this ``auto``-mode delivery: an
        outbound hook consumed it. Consumed, so out of the store."""
        if entry.row:
            self._unpersist(entry, None)

    # -- delivery (for routes) -------------------------------------------------------

    def has_room(self, sub: Subscription) -> bool:
        """May ``sub`` take one more message now?"""
        session = sub.session
        if session.ended:
            return False
        if session.pending >= self.max_pending_bytes:
            session.throttled = True  # a slow consumer: its outgoing backlog is full
            return False
        if sub.ack == "auto":
            return True
        if len(session.ack_index) >= self.max_unacknowledged:
            return False
        return sub.prefetch is None or len(sub.unacked) < sub.prefetch

    def drop(self, sub: Subscription) -> None:
        """A topic copy ``sub`` could not take (slow consumer): counted, and the
        session noted in :attr:`dropping` for the runtime's policy."""
        sub.session.dropped += 1
        self.stats["dropped"] += 1
        self.dropping.add(sub.session)

    def deliver(
        self, sub: Subscription, entry: Entry, queue: str | None, redelivered: bool
    ) -> Post:
        """The MESSAGE that hands ``entry`` to ``sub`` (from ``queue``, or a topic)."""
        self.messages_out[sub.route.prefix] += 1
        return self._message(sub, entry, queue, redelivered)

    def _message(
        self, sub: Subscription, entry: Entry, queue: str | None, redelivered: bool
    ) -> Post:
        """:meth:`deliver`, for the routes that count their deliveries in batches."""
        session = sub.session
        ack_id = None if sub.ack == "auto" else str(next(self._acks))
        if redelivered:
            self.stats["redelivered"] += 1
            message = Message(
                destination=entry.destination,
                message_id=entry.message_id,
                subscription=sub.sub_id,
                ack=ack_id,
                content_type=entry.content_type,
                body=entry.body,
                headers=(*entry.headers, ("redelivered", "true")),
            )
        else:
            message = entry.template().message(subscription=sub.sub_id, ack=ack_id)
        if ack_id is not None:
            key: Hashable = ack_id if session.ack_key is None else session.ack_key(message)
            sub.unacked[key] = (entry, queue, ack_id)
            session.ack_index[key] = sub
        elif queue is not None:
            # Consumed once written: until the runtime says so, it may go back.
            session.unwritten.append([sub, entry, queue, -1, message])
            session.unmarked += 1
            if entry.row:  # stored: the runtime must tell when it is written
                self._books.watch.add(session)
        session.pending += len(entry.body) + 256  # an estimate, until the writer says
        self.stats["delivered"] += 1
        return session, message

    def resume(self, session: Session) -> list[Post]:
        """``session``'s backlog drained: give it queued messages again."""
        session.throttled = False
        out: list[Post] = []
        for sub in list(session.subscriptions.values()):
            out += sub.route.resume(sub)
        return out

    # -- acknowledgements ----------------------------------------------------------

    def _settle(self, session: Session, event: Ack | Nack) -> list[Post]:
        """ACK or NACK the messages the frame settles; NACKed queue messages go
        back to the head of their queue.

        Which messages those are is the core's answer (:attr:`Ack.settles
        <stomp_proto.Ack.settles>`: cumulative in ``client`` mode, one message
        otherwise, filled in at COMMIT for a transaction's), never worked out
        again here. A frame the core did not apply (a router driven on its
        own) settles the one message it names.
        """
        keys: tuple[Hashable, ...] = event.settles
        if not keys:
            keys = (session.ack_key(event) if session.ack_key is not None else event.id,)
        settled: list[tuple[Entry, str | None, str | None]] = []
        sub = None
        for key in keys:
            owner = session.ack_index.pop(key, None)
            if owner is None:
                continue  # settled already, or never tracked (its post failed)
            record = owner.unacked.pop(key, None)
            if record is not None:
                settled.append(record)
                sub = owner
        if sub is None:
            return []
        out: list[Post] = []
        if (
            type(event) is Nack
            and next((v for k, v in event.headers if k == "requeue"), "") != "false"
        ):
            back = [(queue, entry) for entry, queue, _ in settled if queue is not None]
            if back:
                self.stats["requeued"] += len(back)
                out = self._requeue(sub.route, back)
        elif self.durable:  # acknowledged (or discarded): out of the store
            for entry, _, _ in settled:
                if entry.row:
                    self._unpersist(entry, session)
        hook = getattr(sub.route, "settled", None)
        if hook is not None:  # the messages live elsewhere (a relay): tell their route
            out += hook(sub, event, settled)
        if sub.active:
            out += sub.route.resume(sub)  # it has room for more now
        return out

    def _requeue(self, route: Route, items: list[tuple[str, Entry]]) -> list[Post]:
        """``(queue, entry)`` pairs back to their queues, marked redelivered."""
        out: list[Post] = []
        by_name: dict[str, list[tuple[Entry, bool]]] = {}
        for queue, entry in items:
            by_name.setdefault(queue, []).append((entry, True))
        for name, group in by_name.items():
            out += route.requeue(name, group)
        return out

    def _end_subscription(self, session: Session, key: str) -> list[Post]:
        sub = session.subscriptions.pop(key, None)
        if sub is None:
            return []
        if sub.active:
            sub.active = False
            sub.route.unsubscribe(sub)
        # Whatever it had not acknowledged goes back to its queue, redelivered.
        back: list[tuple[str, Entry]] = []
        for ack_key, (entry, queue, _) in sub.unacked.items():
            session.ack_index.pop(ack_key, None)
            if queue is not None:
                back.append((queue, entry))
        sub.unacked.clear()
        if not back:
            return []
        self.stats["requeued"] += len(back)
        return self._requeue(sub.route, back)

    # -- introspection -------------------------------------------------------------

    def queued(self) -> int:
        """Messages waiting in queues."""
        return sum(route.waiting() for route in self.routes if isinstance(route, QueueRoute))

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self.sessions.values()))
