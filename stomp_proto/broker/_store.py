"""The durable store's interface, sans-IO: the effects the router asks for, and what a
store gives back at start.

The router keeps every message it holds in memory (its queues, its books of
unacknowledged messages); a durable store is a copy of the persistent ones
(``/queue/`` SENDs with ``persistent:true``, and the backlogs of durable topic
subscriptions), so that they survive the process. The router never calls the
store and never waits for it: when it accepts, settles or drops a persistent
message it appends an *effect* (:class:`Put`, :class:`Remove`, :class:`Bind`,
:class:`Unbind`) to :attr:`Router.effects <stomp_proto.broker.Router.effects>`,
and adds the session whose frame caused it to :attr:`Router.awaiting
<stomp_proto.broker.Router.awaiting>`. The runtime hands the effects to a
:class:`Store` a batch at a time, in a worker thread (one transaction for every
effect that arrived while the previous one ran: the group commit), and posts
what the waiting sessions are due (a persistent SEND's RECEIPT) only once that
transaction is committed.

At start, :meth:`Store.load` opens the store and returns a :class:`Snapshot`,
which :meth:`Router.restore <stomp_proto.broker.Router.restore>` turns back
into queues and durable subscriptions.

Effects are applied in order; a :class:`Put` and a :class:`Remove` of the same
row in one batch cancel out (the message was consumed before it was written:
nothing reaches the disk), which is why a fast consumer costs the store
little.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from ._router import Entry

__all__ = [
    "Bind",
    "Effect",
    "Put",
    "Remove",
    "Snapshot",
    "Store",
    "StoreError",
    "StoredMessage",
    "Unbind",
]


class StoreError(RuntimeError):
    """The durable store cannot be used: it is locked by another process,
    corrupt, not a stomp-proto store, or a commit failed. The message names
    the file."""


class Put(NamedTuple):
    """Keep ``entry`` in ``queue`` (a ``/queue/`` destination, or a durable
    subscription's queue) under ``row``, the router's number for it."""

    row: int
    queue: str
    entry: Entry


class Remove(NamedTuple):
    """The message kept under ``row`` is consumed (acknowledged, written to an
    ``auto`` consumer, or discarded by a NACK with ``requeue:false``)."""

    row: int


class Bind(NamedTuple):
    """A durable topic subscription: messages published to ``destination``
    (a pattern, possibly) go to the queue ``queue`` while its subscriber is
    away. ``login`` and ``id`` are what it is known by; ``selector`` its
    SUBSCRIBE's selector, if any. Binding a queue again replaces it."""

    queue: str
    login: str | None
    destination: str
    id: str
    selector: str | None


class Unbind(NamedTuple):
    """The durable subscription of queue ``queue`` is deleted, with every
    message it kept."""

    queue: str


#: One of the four effects.
Effect = Put | Remove | Bind | Unbind


class StoredMessage(NamedTuple):
    """A message as :meth:`Store.load` finds it."""

    row: int
    queue: str
    message_id: str
    destination: str
    content_type: str | None
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass
class Snapshot:
    """What a store holds at start: its messages (in the order they were put,
    which is the order of ``row``) and its durable subscriptions."""

    messages: list[StoredMessage] = field(default_factory=list)
    subscriptions: list[Bind] = field(default_factory=list)


class Store(Protocol):
    """A durable store engine (:class:`~stomp_proto.broker.SQLiteStore` is
    one). The runtime calls it from one worker thread at a time, never from
    the event loop, and never two calls at once."""

    def load(self) -> Snapshot:
        """Open the store (creating it if need be), take it for this process
        alone, check it, and return what it holds. Raise :exc:`StoreError`,
        naming the file, when it is locked, corrupt or not a store."""

    def write(self, effects: Sequence[Effect]) -> None:
        """Apply ``effects`` in one transaction; return once it is durable
        (as the store's sync policy defines it). Raise :exc:`StoreError` if it
        is not (nothing of the batch is then applied)."""

    def close(self) -> None:
        """Release the store (its lock, its file)."""
