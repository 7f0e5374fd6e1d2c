"""The application layer's two routes: ``/app/`` handlers and ``/user/`` destinations.

Both are ordinary :class:`~stomp_proto.broker.Route` objects plugged into the
broker's router, as a relay or a durable store would be; nothing in the
router knows they exist.

* :class:`AppRoute` answers SEND and SUBSCRIBE frames whose destination is
  under the application prefix (``/app/`` by default) by calling the handler
  mapped to the rest of the path (Spring's ``@MessageMapping`` and
  ``@SubscribeMapping``). Handlers run outside the router, in the broker's
  task group; what they return is routed afterwards, through
  :meth:`Router.emit <stomp_proto.broker.Router.emit>`, and a SEND's RECEIPT
  goes out once its handler has finished.
* :class:`UserRoute` serves ``/user/...``: a client subscribes to
  ``/user/queue/position-updates``; a message sent *to a user* at
  ``/queue/position-updates`` reaches every session of that user subscribed
  there, and the MESSAGE shows the destination the client subscribed to.
  Keyed by user, not by session (unlike Spring, whose per-session queue
  names lose what was sent while a user reconnects): while the user has no
  such subscription, messages wait in a bounded backlog with a time to live,
  delivered when one appears. Behind a relay (several nodes, one upstream
  broker), a *bridge* carries each message to the user's sessions on the
  other nodes (see :meth:`Relay.bridge_users
  <stomp_proto.broker.Relay.bridge_users>`); the backlog is each node's own.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .. import Send
from ..broker import Entry, Post, Refusal, Router, Session, Subscription

if TYPE_CHECKING:
    from ._app import StompApp

__all__ = ["AppRoute", "PathTemplate", "UserRoute"]

_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class PathTemplate:
    """A handler's path: literal text, ``{name}`` variables (one segment: no
    ``.`` or ``/``), ``*`` (within a segment) and ``**`` (across segments).

    Matching is one anchored regular expression in which every wildcard is
    bounded by the literal that follows it, so it cannot backtrack
    catastrophically; adjacent wildcards are refused when the template is made.
    """

    __slots__ = ("regex", "source", "variables")

    def __init__(self, source: str) -> None:
        if not source.startswith("/"):
            raise ValueError(f"a handler path starts with '/': {source!r}")
        parts: list[str] = []
        names: list[str] = []
        pieces = re.split(r"(\{[^}]*\}|\*\*|\*)", source)
        previous_wild = False
        for piece in pieces:
            if not piece:
                continue
            wild = True
            if piece == "**":
                parts.append("(?:.*?)")
            elif piece == "*":
                parts.append("[^./]*")
            elif piece.startswith("{"):
                match = _VARIABLE.fullmatch(piece)
                if match is None:
                    raise ValueError(f"bad variable {piece!r} in handler path {source!r}")
                name = match.group(1)
                if name in names:
                    raise ValueError(f"variable {name!r} twice in handler path {source!r}")
                names.append(name)
                parts.append(f"(?P<{name}>[^./]+)")
            else:
                wild = False
                parts.append(re.escape(piece))
            if wild and previous_wild:
                raise ValueError(f"two wildcards side by side in handler path {source!r}")
            previous_wild = wild
        self.source = source
        self.variables = tuple(names)
        self.regex = re.compile("".join(parts) + r"\Z", re.DOTALL)

    def match(self, path: str) -> dict[str, str] | None:
        """The variables if ``path`` matches, else None."""
        found = self.regex.match(path)
        return None if found is None else found.groupdict()

    def __repr__(self) -> str:
        return f"PathTemplate({self.source!r})"


class AppRoute:
    """``/app/...``: SEND and SUBSCRIBE frames for the application's handlers."""

    takes_receipts = True

    def __init__(self, app: StompApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/") + "/"
        self.router: Router | None = None

    def bind(self, router: Router) -> None:
        self.router = router

    def valid(self, destination: str) -> str | None:
        return None

    def check_send(self, entries: list[Entry]) -> None:
        return None

    def path(self, destination: str) -> str:
        """The handler path of ``destination`` (the prefix's ``/`` kept)."""
        return destination[len(self.prefix) - 1 :]

    def receive(self, session: Session, event: Send) -> list[Post]:
        path = self.path(event.destination)
        found = self.app.find_message_handler(path)
        if found is None:
            raise Refusal(f"no handler for {event.destination[:80]!r}")
        self.app.run_message(found, session, event, path)
        return []

    def send(self, session: Session | None, entry: Entry) -> list[Post]:
        # From application code (publish to /app/...): like a SEND with no session.
        raise Refusal(f"{entry.destination[:80]!r} is an application destination: SEND it")

    def subscribe(self, sub: Subscription) -> list[Post]:
        path = self.path(sub.destination)
        found = self.app.find_subscribe_handler(path)
        if found is None:
            raise Refusal(f"no subscription handler for {sub.destination[:80]!r}")
        self.app.run_subscribe(found, sub, path)
        return []

    def unsubscribe(self, sub: Subscription) -> None:
        return None

    def requeue(self, name: str, items: list[tuple[Entry, bool]]) -> list[Post]:
        return []

    def resume(self, sub: Subscription) -> list[Post]:
        return []


class _Bridge(Protocol):
    """What carries user messages to the other nodes (a relay's bridge)."""

    def watch(self, user: str, session: Session) -> None: ...

    def unwatch(self, user: str) -> None: ...

    def publish(self, user: str, path: str, entry: Entry) -> None: ...


@dataclass(eq=False, slots=True)
class _Backlog:
    items: deque[tuple[Entry, float]] = field(default_factory=deque)


class UserRoute:
    """``/user/...``: per-user destinations (see the module docstring).

    Args:
        prefix: the user prefix (``/user/``).
        max_backlog: messages kept per user and destination while the user
            has no subscription there; the oldest go first.
        backlog_ttl: seconds such a message is kept.
    """

    takes_receipts = False
    selectors = True

    def __init__(
        self, prefix: str = "/user/", *, max_backlog: int = 100, backlog_ttl: float = 60.0
    ) -> None:
        self.prefix = prefix.rstrip("/") + "/"
        self.max_backlog = max_backlog
        self.backlog_ttl = backlog_ttl
        #: (user, destination without the prefix) -> subscriptions
        self.subs: dict[tuple[str, str], list[Subscription]] = {}
        self.backlogs: dict[tuple[str, str], _Backlog] = {}
        self.router: Router | None = None
        #: Messages dropped from a full backlog or expired, for stats.
        self.expired = 0
        #: What carries user messages to the other nodes behind a relay, or None:
        #: told of each ``/user`` subscription of a named user, and of its end.
        self.bridge: _Bridge | None = None

    def bind(self, router: Router) -> None:
        self.router = router

    def receive(self, session: Session, event: Send) -> list[Post]:  # pragma: no cover
        raise NotImplementedError

    def valid(self, destination: str) -> str | None:
        if "*" in destination:
            return "patterns are not allowed in /user/ destinations"
        if len(destination) <= len(self.prefix):
            return f"{destination[:80]!r} names no user destination"
        return None

    def check_send(self, entries: list[Entry]) -> None:
        return None

    def _split(self, destination: str) -> tuple[str, str]:
        """``/user/NAME/queue/x`` -> ``("NAME", "/queue/x")``."""
        rest = destination[len(self.prefix) :]
        user, slash, path = rest.partition("/")
        if not user or not slash or not path:
            raise Refusal(f"send to /user/NAME/...: {destination[:80]!r} names no user")
        return user, "/" + path

    def send(self, session: Session | None, entry: Entry) -> list[Post]:
        """A SEND to ``/user/NAME/queue/x``: to every session of NAME."""
        user, path = self._split(entry.destination)
        return self.to_user(user, path, entry)

    def to_user(
        self,
        user: str,
        path: str,
        entry: Entry,
        *,
        only: Session | None = None,
        local: bool = False,
    ) -> list[Post]:
        """Deliver ``entry`` to ``user``'s subscriptions of ``/user`` + ``path``
        (only ``only``'s, if given); kept in the backlog if there are none.
        With a bridge, a message for all of the user's sessions goes to the
        other nodes too (``local``: it came from one)."""
        router = self.router
        assert router is not None
        bridge = self.bridge
        if bridge is not None and only is None and not local:
            anonymous = router.sessions.get(user)  # a session id: this node's only
            if anonymous is None or anonymous.user is not None:
                bridge.publish(user, path, entry)
        shown = self.prefix[:-1] + path
        if entry.destination != shown:
            entry = Entry(
                entry.message_id, shown, entry.body, entry.content_type, entry.headers, entry.size
            )
        subs = self.subs.get((user, path))
        if only is not None and subs:
            subs = [s for s in subs if s.session is only]
        if not subs:
            if only is None:
                self._keep(user, path, entry)
            return []
        out: list[Post] = []
        for sub in subs:
            if sub.selector is not None and not sub.selector(entry.header_map()):
                continue
            if router.has_room(sub):
                out.append(router.deliver(sub, entry, None, False))
            else:
                router.drop(sub)
        return out

    def _keep(self, user: str, path: str, entry: Entry) -> None:
        if self.max_backlog <= 0:
            return
        router = self.router
        assert router is not None
        backlog = self.backlogs.get((user, path))
        if backlog is None:
            if len(self.backlogs) >= 100_000:
                self._sweep()
            backlog = self.backlogs[(user, path)] = _Backlog()
        backlog.items.append((entry, router.now + self.backlog_ttl))
        if len(backlog.items) > self.max_backlog:
            backlog.items.popleft()
            self.expired += 1

    def _sweep(self) -> None:
        router = self.router
        assert router is not None
        for key in list(self.backlogs):
            items = self.backlogs[key].items
            while items and items[0][1] <= router.now:
                items.popleft()
                self.expired += 1
            if not items:
                del self.backlogs[key]

    def subscribe(self, sub: Subscription) -> list[Post]:
        user = sub.session.user or sub.session.sid  # anonymous: the session is the user
        path = "/" + sub.destination[len(self.prefix) :]
        self.subs.setdefault((user, path), []).append(sub)
        if self.bridge is not None and sub.session.user is not None:
            self.bridge.watch(user, sub.session)
        backlog = self.backlogs.pop((user, path), None)
        if backlog is None:
            return []
        router = self.router
        assert router is not None
        out: list[Post] = []
        for entry, expires in backlog.items:
            if expires <= router.now:
                self.expired += 1
                continue
            out.append(router.deliver(sub, entry, None, False))
        return out

    def unsubscribe(self, sub: Subscription) -> None:
        key = (sub.session.user or sub.session.sid, "/" + sub.destination[len(self.prefix) :])
        subs = self.subs.get(key)
        if subs is not None:
            subs.remove(sub)
            if not subs:
                del self.subs[key]
        if self.bridge is not None and sub.session.user is not None:
            self.bridge.unwatch(sub.session.user)

    def requeue(self, name: str, items: list[tuple[Entry, bool]]) -> list[Post]:
        return []

    def resume(self, sub: Subscription) -> list[Post]:
        return []
