"""What the broker tells its operator: connection logs, counters and the stats line.

Three readers, one set of figures. The *connection log*
(``stomp_proto.broker.connection``) has one line per connection accepted,
login accepted or refused, and connection closed (by whom, why, how long,
how many frames). The *stats line* (``stomp_proto.broker.stats``), every
``stats_interval`` seconds, is Spring's ``WebSocketMessageBrokerStats``: the
broker's state in one line. The Prometheus collector (:mod:`.metrics`) reads
the same figures at scrape time.

Every figure is a plain counter kept where the work happens (the router's
ints, each session's frame counts in the adapter) or computed when read (queue
depths, subscriptions): nothing on the hot path knows a reader exists.

Lines are ``key=value`` pairs after a fixed text (logfmt): ``grep
session=session-7`` follows one connection, ``grep reason=heart-beat-timeout``
finds one cause, and Loki or Logstash parse them without a pattern. A value
with a space, a quote or a control character is quoted and escaped, so a
hostile login name cannot forge a line.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._adapter._log import RateLimitedLog
from .._adapter._server import CLOSE_REASONS
from ._router import QueueRoute

if TYPE_CHECKING:
    from .._adapter import ServerSession
    from ._broker import Broker
    from ._router import Route

__all__ = [
    "BUCKETS",
    "BY_CLIENT",
    "NORMAL_CLOSES",
    "Counters",
    "HandlerStats",
    "Snapshot",
    "connection_log",
    "fields",
    "peer_text",
    "route_kind",
    "snapshot",
    "stats_line",
    "stats_log",
]

#: The logger of connection lines, and the logger of the stats line.
connection_log = logging.getLogger("stomp_proto.broker.connection")
stats_log = logging.getLogger("stomp_proto.broker.stats")

#: Close reasons that are not trouble (INFO); every other one is logged as a
#: WARNING and counted as "closed abnormally".
NORMAL_CLOSES = frozenset({"disconnect", "shutdown"})
#: Close reasons where the client's side ended it; the server ended the rest.
BY_CLIENT = frozenset({"disconnect", "eof", "reset"})

#: Handler latency buckets, in seconds: prometheus_client's defaults.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

_BARE = re.compile(r"[\w.:/@+\-,\[\]{}*#]+", re.ASCII)
#: Longest value a line quotes: values come from clients (logins, messages).
_MAX_VALUE = 200


def value(item: object) -> str:
    """One logfmt value: bare if it is a plain word, else quoted and escaped."""
    text = "-" if item is None else str(item)
    if len(text) > _MAX_VALUE:
        text = text[:_MAX_VALUE] + "..."
    if _BARE.fullmatch(text):
        return text
    return json.dumps(text)  # quotes, backslashes and control characters escaped


def fields(pairs: Iterable[tuple[str, object]]) -> str:
    """``key=value key=value ...`` for ``pairs`` (values as :func:`value`)."""
    return " ".join(f"{key}={value(item)}" for key, item in pairs)


def counts(items: Mapping[str, int]) -> str:
    """``A:1,B:2`` for the non-zero counts, sorted by name ("-" when none)."""
    return ",".join(f"{name}:{n}" for name, n in sorted(items.items()) if n) or "-"


def peer_text(peer: object) -> str:
    """``host:port`` (``[v6]:port``) for a socket address or an ASGI ``client``."""
    if isinstance(peer, tuple | list) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return "-" if peer is None else str(peer)


def route_kind(route: Route) -> str:
    """``topic``, ``queue``, ``app``, ``user``: a route class's name without
    ``Route`` (``TopicRoute`` -> ``topic``), or ``other``."""
    name = type(route).__name__
    if name.endswith("Route") and len(name) > 5:
        return name[:-5].lower()
    return "other"


@dataclass(eq=False, slots=True)
class HandlerStats:
    """Calls, failures and a latency histogram of one application handler."""

    calls: int = 0
    errors: int = 0
    seconds: float = 0.0
    #: Per bucket of :data:`BUCKETS` (and one past the last): calls that took
    #: at most that long and longer than the bucket before.
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))

    def observe(self, seconds: float, failed: bool) -> None:
        self.calls += 1
        if failed:
            self.errors += 1
        self.seconds += seconds
        self.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1


class Counters:
    """The runtime's own counters (the router keeps the message counters)."""

    def __init__(self) -> None:
        #: transport (tcp, tls, ws, wss) -> connections accepted.
        self.connections: dict[str, int] = {}
        #: Logins accepted: sessions opened.
        self.sessions = 0
        #: close reason -> connections closed (see :data:`CLOSE_REASONS`).
        self.closed: dict[str, int] = dict.fromkeys(CLOSE_REASONS, 0)
        #: Frames and bytes of the connections that ended (the live ones'
        #: are read from their sessions).
        self.frames_in: dict[str, int] = {}
        self.frames_out: dict[str, int] = {}
        self.bytes_in = 0
        self.bytes_out = 0
        #: (kind, name) -> an application handler's figures.
        self.handlers: dict[tuple[str, str], HandlerStats] = {}
        #: Connection lines: generous for the ordinary ones (INFO), the
        #: limiter's defaults for the abnormal ones; per cause, so that a flood
        #: of one kind of connection cannot hide another.
        self.info = RateLimitedLog(connection_log, burst=100, period=10.0)
        self.warn = RateLimitedLog(connection_log)

    def handler(self, kind: str, name: str) -> HandlerStats:
        found = self.handlers.get((kind, name))
        if found is None:
            found = self.handlers[kind, name] = HandlerStats()
        return found

    def ended(self, session: ServerSession, reason: str) -> None:
        """Fold a finished connection's figures into the totals."""
        self.closed[reason] = self.closed.get(reason, 0) + 1
        _fold(self.frames_in, session.frames_received)
        _fold(self.frames_out, session.frames_sent)
        self.bytes_in += session.received_bytes
        self.bytes_out += session.posted_bytes - session.pending_bytes


def _fold(into: dict[str, int], counted: Mapping[type, int]) -> None:
    for kind, n in counted.items():
        command: str = getattr(kind, "COMMAND", "") or "heart-beat"
        into[command] = into.get(command, 0) + n


@dataclass(slots=True)
class Snapshot:
    """The broker's figures at one moment (what the stats line and the
    Prometheus collector show)."""

    connections_open: dict[str, int]
    connections_total: dict[str, int]
    sessions: int
    sessions_total: int
    closed: dict[str, int]
    frames_in: dict[str, int]
    frames_out: dict[str, int]
    bytes_in: int
    bytes_out: int
    #: kind -> subscriptions now
    subscriptions: dict[str, int]
    #: (kind, prefix) -> messages in / out
    messages_in: dict[tuple[str, str], int]
    messages_out: dict[tuple[str, str], int]
    #: queue name -> (messages waiting, bytes)
    queues: dict[str, tuple[int, int]]
    router: dict[str, int]
    memory: int
    pending_bytes: int
    handlers: dict[tuple[str, str], HandlerStats]

    @property
    def abnormal(self) -> int:
        return sum(n for reason, n in self.closed.items() if reason not in NORMAL_CLOSES)


def snapshot(broker: Broker) -> Snapshot:
    """Read every figure now (on the broker's loop, or anywhere for a rough view)."""
    c = broker._counters
    frames_in = dict(c.frames_in)
    frames_out = dict(c.frames_out)
    bytes_in, bytes_out = c.bytes_in, c.bytes_out
    open_by: dict[str, int] = {}
    for session in list(broker._open.values()):
        open_by[session.scheme] = open_by.get(session.scheme, 0) + 1
        _fold(frames_in, session.frames_received)
        _fold(frames_out, session.frames_sent)
        bytes_in += session.received_bytes
        bytes_out += session.posted_bytes - session.pending_bytes
    frames_in.pop("heart-beat", None)  # frames: what Spring counts
    frames_out.pop("heart-beat", None)
    router = broker.router
    kinds = {route.prefix: route_kind(route) for route in router.routes}
    subscriptions = dict.fromkeys(kinds.values(), 0)
    pending = 0
    for state in list(router.sessions.values()):
        pending += state.pending
        for sub in list(state.subscriptions.values()):
            kind = kinds.get(sub.route.prefix, "other")
            subscriptions[kind] = subscriptions.get(kind, 0) + 1
    queues: dict[str, tuple[int, int]] = {}
    for route in router.routes:
        if isinstance(route, QueueRoute):
            for name, queue in list(route.queues.items()):
                queues[name] = (len(queue.store), queue.store.nbytes)
    return Snapshot(
        connections_open=open_by,
        connections_total=dict(c.connections),
        sessions=len(broker._links),
        sessions_total=c.sessions,
        closed=dict(c.closed),
        frames_in=frames_in,
        frames_out=frames_out,
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        subscriptions=subscriptions,
        messages_in={(kinds[p], p): n for p, n in router.messages_in.items() if p in kinds},
        messages_out={(kinds[p], p): n for p, n in router.messages_out.items() if p in kinds},
        queues=queues,
        router=dict(router.stats),
        memory=router.memory,
        pending_bytes=pending,
        handlers=dict(c.handlers),
    )


#: Queues the stats line names (the deepest ones).
_DEEPEST = 5


def stats_line(broker: Broker) -> str:
    """The periodic stats line (Spring's ``WebSocketMessageBrokerStats``)."""
    s = snapshot(broker)
    waiting = sorted(
        ((n, name) for name, (n, _) in s.queues.items() if n), key=lambda item: (-item[0], item[1])
    )
    pairs: list[tuple[str, object]] = [
        ("sessions", s.sessions),
        ("connections", sum(s.connections_open.values())),
        ("transports", counts(s.connections_open)),
        ("sessions_total", s.sessions_total),
        ("connections_total", sum(s.connections_total.values())),
        ("closed", counts(s.closed)),
        ("abnormal", s.abnormal),
        ("in", counts(s.frames_in)),
        ("out", counts(s.frames_out)),
        ("subscriptions", sum(s.subscriptions.values())),
        ("queues", len(s.queues)),
        ("queued", sum(n for n, _ in s.queues.values())),
        ("queued_bytes", sum(b for _, b in s.queues.values())),
        ("deepest", ",".join(f"{name}:{n}" for n, name in waiting[:_DEEPEST]) or "-"),
        ("published", s.router.get("published", 0)),
        ("delivered", s.router.get("delivered", 0)),
        ("dropped", s.router.get("dropped", 0)),
        ("redelivered", s.router.get("redelivered", 0)),
        ("refused", s.router.get("refused", 0)),
        ("memory", s.memory),
        ("pending_bytes", s.pending_bytes),
    ]
    if s.handlers:
        pairs.append(("handler_calls", sum(h.calls for h in s.handlers.values())))
        pairs.append(("handler_errors", sum(h.errors for h in s.handlers.values())))
    return "stats " + fields(pairs)
