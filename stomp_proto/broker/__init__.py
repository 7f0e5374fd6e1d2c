"""The stomp-proto reference broker: ``stomp-proto broker``, or embedded as :class:`Broker`.

Two layers, like the core beneath them: a sans-IO :class:`Router` that owns
every rule (routes by destination prefix, acknowledgement, transactions,
receipts, budgets), and the :class:`Broker` runtime that performs what the
router decides over the adapter's listeners and sessions. See the docs'
broker guide for the destination grammar, acknowledgement and redelivery
rules, limits, and how it differs from Spring's simple broker and from
RabbitMQ, and the architecture page for the plug points; "Scaling out" for
the :class:`Relay` to an upstream RabbitMQ or ActiveMQ.
"""

from ._broker import Authenticator, Broker
from ._patterns import SubscriptionIndex, compile_pattern
from ._relay import Relay, RelayAvailability, RelayRoute, Upstream
from ._router import (
    Authorizer,
    Entry,
    MemoryQueueStore,
    Post,
    QueueRoute,
    QueueStore,
    Refusal,
    Route,
    Router,
    Session,
    Subscription,
    TopicRoute,
)
from ._sqlite import SQLiteStore
from ._store import (
    Bind,
    Effect,
    Put,
    Remove,
    Snapshot,
    Store,
    StoredMessage,
    StoreError,
    Unbind,
)

__all__ = (
    "Authenticator",
    "Authorizer",
    "Bind",
    "Broker",
    "Effect",
    "Entry",
    "MemoryQueueStore",
    "Post",
    "Put",
    "QueueRoute",
    "QueueStore",
    "Refusal",
    "Relay",
    "RelayAvailability",
    "RelayRoute",
    "Remove",
    "Route",
    "Router",
    "SQLiteStore",
    "Session",
    "Snapshot",
    "Store",
    "StoreError",
    "StoredMessage",
    "Subscription",
    "SubscriptionIndex",
    "TopicRoute",
    "Unbind",
    "Upstream",
    "compile_pattern",
)
