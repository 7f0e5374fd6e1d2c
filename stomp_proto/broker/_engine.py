"""The broker's routing and delivery rules, sans-IO.

Nothing here reads a socket or a clock: sessions are plain objects, and every
operation returns the MESSAGE events to deliver as ``(session, event)`` pairs,
which the runtime posts to the right connections. That keeps the semantics
testable on their own and the I/O layer thin.

Destinations (stomp-notes §5.7):

* ``/topic/...``: publish-subscribe. Every matching subscription gets a copy;
  with no subscriber the message is dropped. Subscriptions may be patterns:
  ``*`` matches within one ``.``- or ``/``-separated segment, ``**`` across
  segments; a SEND destination is never a pattern.
* ``/queue/...``: point to point. Each message goes to exactly one
  subscription, round robin among those with room; it waits in the queue
  while nobody can take it.

Acknowledgement (STOMP 1.2 "SUBSCRIBE ack Header", stomp-notes §3.4): ``auto``
messages count as consumed once sent. ``client`` ACKs are cumulative within
the subscription, ``client-individual`` ones are not. NACK requeues (at the
head, marked ``redelivered:true``) unless it carries ``requeue:false``.
Messages of a queue still unacknowledged when their subscription ends go back
to the queue for another consumer, marked redelivered. ``prefetch-count``
(RabbitMQ's header) caps the unacknowledged messages of a subscription.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from .. import Message

__all__ = ["Delivery", "Engine", "Entry", "Session", "Subscription", "compile_pattern"]

#: Headers the broker owns on MESSAGE; a client's values for them are dropped.
SERVER_HEADERS = frozenset({"message-id", "subscription", "ack", "destination", "redelivered"})


def compile_pattern(destination: str) -> re.Pattern[str] | None:
    """A regex for a subscription pattern, or None when it is a plain destination."""
    if "*" not in destination:
        return None
    parts = re.split(r"(\*\*|\*)", destination)
    regex = "".join(
        "(?:.*)" if part == "**" else "[^./]*" if part == "*" else re.escape(part) for part in parts
    )
    return re.compile(regex + r"\Z")


@dataclass(eq=False)
class Entry:
    """A published message, shared by every copy delivered."""

    message_id: str
    destination: str
    body: bytes
    content_type: str | None
    headers: tuple[tuple[str, str], ...]


@dataclass(eq=False)
class Subscription:
    session: Session
    key: str
    sub_id: str | None
    destination: str
    ack: str
    prefetch: int | None
    pattern: re.Pattern[str] | None
    #: ack id -> (entry, queue name or None for topics), in delivery order
    unacked: dict[str, tuple[Entry, str | None]] = field(default_factory=dict)

    def has_room(self, max_pending: int, max_unacked: int) -> bool:
        session = self.session
        if session.pending >= max_pending:
            session.throttled = True  # a slow consumer: its outgoing backlog is full
            return False
        if self.ack == "auto":
            return True
        if len(session.ack_index) >= max_unacked:
            return False
        return self.prefetch is None or len(self.unacked) < self.prefetch


@dataclass(eq=False)
class Session:
    """One connected client, as the engine sees it."""

    sid: str
    version: str
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    #: ack id -> subscription key
    ack_index: dict[str, str] = field(default_factory=dict)
    #: Bytes handed to this client and not yet known to be written (the
    #: runtime updates it from the connection's writer).
    pending: int = 0
    #: Set when a delivery was held back because of ``pending``: the runtime
    #: must resume the session once its backlog is written.
    throttled: bool = False


Delivery = tuple[Session, Message]


@dataclass(eq=False)
class _Queue:
    name: str
    pending: deque[tuple[Entry, bool]] = field(default_factory=deque)
    consumers: list[Subscription] = field(default_factory=list)
    turn: int = 0
    size: int = 0  # bytes of the bodies waiting in ``pending``


class Engine:
    """Routing state of one broker; see the module docstring for the rules."""

    def __init__(
        self,
        *,
        topic_prefix: str = "/topic/",
        queue_prefix: str = "/queue/",
        max_pending_bytes: int = 4 << 20,
        max_unacknowledged: int = 100_000,
        max_queue_bytes: int = 64 << 20,
    ) -> None:
        self.topic_prefix = topic_prefix
        self.queue_prefix = queue_prefix
        self.max_pending_bytes = max_pending_bytes
        self.max_unacknowledged = max_unacknowledged
        self.max_queue_bytes = max_queue_bytes
        self.sessions: dict[str, Session] = {}
        self.queues: dict[str, _Queue] = {}
        self._exact: dict[str, list[Subscription]] = {}
        self._patterns: list[Subscription] = []
        self._ids = itertools.count(1)
        self._acks = itertools.count(1)
        self.boot = secrets.token_hex(4)  # message ids stay unique across restarts
        self.stats = {"published": 0, "delivered": 0, "dropped": 0, "redelivered": 0}

    # -- sessions ------------------------------------------------------------------

    def open(self, sid: str, version: str) -> Session:
        session = Session(sid, version)
        self.sessions[sid] = session
        return session

    def close(self, session: Session) -> list[Delivery]:
        """The client is gone: end its subscriptions; queue messages go to others."""
        out: list[Delivery] = []
        for key in list(session.subscriptions):
            out += self.unsubscribe(session, key)
        self.sessions.pop(session.sid, None)
        return out

    # -- destinations --------------------------------------------------------------

    def kind(self, destination: str) -> str | None:
        """``"topic"``, ``"queue"``, or None for a destination this broker does not serve."""
        if destination.startswith(self.topic_prefix) and len(destination) > len(self.topic_prefix):
            return "topic"
        if destination.startswith(self.queue_prefix) and len(destination) > len(self.queue_prefix):
            return "queue"
        return None

    # -- subscriptions -------------------------------------------------------------

    def subscribe(
        self,
        session: Session,
        key: str,
        sub_id: str | None,
        destination: str,
        ack: str,
        prefetch: int | None = None,
    ) -> list[Delivery]:
        """Register a subscription (checked by the caller); return backlog deliveries."""
        pattern = compile_pattern(destination)
        sub = Subscription(session, key, sub_id, destination, ack, prefetch, pattern)
        session.subscriptions[key] = sub
        if self.kind(destination) == "queue":
            queue = self._queue(destination)
            queue.consumers.append(sub)
            return self._dispatch(queue)
        if pattern is None:
            self._exact.setdefault(destination, []).append(sub)
        else:
            self._patterns.append(sub)
        return []

    def unsubscribe(self, session: Session, key: str) -> list[Delivery]:
        sub = session.subscriptions.pop(key, None)
        if sub is None:
            return []
        if self.kind(sub.destination) == "queue":
            queue = self._queue(sub.destination)
            queue.consumers.remove(sub)
        elif sub.pattern is None:
            subs = self._exact[sub.destination]
            subs.remove(sub)
            if not subs:
                del self._exact[sub.destination]
        else:
            self._patterns.remove(sub)
        # Whatever it had not acknowledged goes back to its queue, redelivered.
        touched: dict[str, _Queue] = {}
        for ack_id, (entry, queue_name) in reversed(list(sub.unacked.items())):
            session.ack_index.pop(ack_id, None)
            if queue_name is not None:
                queue = self._queue(queue_name)
                self._enqueue(queue, entry, head=True, redelivered=True)
                touched[queue_name] = queue
        sub.unacked.clear()
        out: list[Delivery] = []
        for queue in touched.values():
            out += self._dispatch(queue)
        return out

    # -- publishing ----------------------------------------------------------------

    def publish(
        self,
        destination: str,
        body: bytes,
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> list[Delivery]:
        """Route one message; return its deliveries."""
        entry = Entry(
            f"{self.boot}-{next(self._ids)}",
            destination,
            body,
            content_type,
            tuple((k, v) for k, v in headers if k not in SERVER_HEADERS),
        )
        self.stats["published"] += 1
        if self.kind(destination) == "queue":
            queue = self._queue(destination)
            if queue.size + len(body) > self.max_queue_bytes:
                raise OverflowError(
                    f"queue {destination[:80]!r} holds {self.max_queue_bytes} bytes already"
                )
            self._enqueue(queue, entry)
            return self._dispatch(queue)
        out: list[Delivery] = []
        targets = self._exact.get(destination, [])
        if self._patterns:
            targets = targets + [s for s in self._patterns if s.pattern.match(destination)]  # type: ignore[union-attr]
        for sub in targets:
            if not sub.has_room(self.max_pending_bytes, self.max_unacknowledged):
                self.stats["dropped"] += 1  # slow consumer: no topic copy (documented)
                continue
            out.append(self._deliver(sub, entry, None, False))
        return out

    @staticmethod
    def _enqueue(
        queue: _Queue, entry: Entry, *, head: bool = False, redelivered: bool = False
    ) -> None:
        if head:
            queue.pending.appendleft((entry, redelivered))
        else:
            queue.pending.append((entry, redelivered))
        queue.size += len(entry.body)

    def _queue(self, name: str) -> _Queue:
        queue = self.queues.get(name)
        if queue is None:
            queue = self.queues[name] = _Queue(name)
        return queue

    def _dispatch(self, queue: _Queue) -> list[Delivery]:
        """Hand queued messages round robin to consumers with room."""
        out: list[Delivery] = []
        consumers = queue.consumers
        while queue.pending and consumers:
            for step in range(len(consumers)):
                sub = consumers[(queue.turn + step) % len(consumers)]
                if sub.has_room(self.max_pending_bytes, self.max_unacknowledged):
                    queue.turn = (queue.turn + step + 1) % len(consumers)
                    entry, redelivered = queue.pending.popleft()
                    queue.size -= len(entry.body)
                    out.append(self._deliver(sub, entry, queue.name, redelivered))
                    break
            else:
                break  # nobody has room: the rest waits
        return out

    def _deliver(
        self, sub: Subscription, entry: Entry, queue: str | None, redelivered: bool
    ) -> Delivery:
        ack_id = None
        if sub.ack != "auto":
            ack_id = f"{next(self._acks)}"
            sub.unacked[ack_id] = (entry, queue)
            sub.session.ack_index[ack_id] = sub.key
        sub.session.pending += len(entry.body) + 256  # an estimate, until the writer says
        headers = entry.headers
        if redelivered:
            headers = (*headers, ("redelivered", "true"))
            self.stats["redelivered"] += 1
        self.stats["delivered"] += 1
        message = Message(
            destination=entry.destination,
            message_id=entry.message_id,
            subscription=sub.sub_id,
            ack=ack_id,
            content_type=entry.content_type,
            body=entry.body,
            headers=headers,
        )
        return sub.session, message

    def resume(self, session: Session) -> list[Delivery]:
        """The session's backlog drained: give it queued messages again."""
        out: list[Delivery] = []
        for sub in session.subscriptions.values():
            if self.kind(sub.destination) == "queue":
                out += self._dispatch(self._queue(sub.destination))
        return out

    # -- acknowledgements ----------------------------------------------------------

    def ack_id(
        self, session: Session, ack: str | None, message_id: str | None, subscription: str | None
    ) -> str | None:
        """The ack id an ACK/NACK names: 1.2 sends it; 1.0/1.1 name the message-id
        (and, in 1.1, the subscription), which is looked up."""
        if ack is not None:
            return ack
        subs = (
            [session.subscriptions[subscription]]
            if subscription in session.subscriptions
            else list(session.subscriptions.values())
        )
        for sub in subs:
            for ack_id, (entry, _) in sub.unacked.items():
                if entry.message_id == message_id:
                    return ack_id
        return None

    def settle(
        self, session: Session, ack_id: str, *, ack: bool, requeue: bool = True
    ) -> list[Delivery]:
        """ACK (``ack=True``) or NACK the message ``ack_id`` names (cumulative in
        ``client`` mode); NACKed queue messages go back to the head of their queue."""
        key = session.ack_index.get(ack_id)
        sub = None if key is None else session.subscriptions.get(key)
        if sub is None or ack_id not in sub.unacked:
            return []
        keys = list(sub.unacked)
        chosen = keys[: keys.index(ack_id) + 1] if sub.ack == "client" else [ack_id]
        back: dict[str, list[Entry]] = {}
        for each in chosen:
            entry, queue_name = sub.unacked.pop(each)
            session.ack_index.pop(each, None)
            if queue_name is not None:
                returned = back.setdefault(queue_name, [])
                if not ack and requeue:
                    returned.append(entry)
        out: list[Delivery] = []
        for queue_name, entries in back.items():
            queue = self._queue(queue_name)
            for entry in reversed(entries):
                self._enqueue(queue, entry, head=True, redelivered=True)
            out += self._dispatch(queue)
        return out
