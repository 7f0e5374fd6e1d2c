"""The broker's Router with no event loop: rules and plug points, driven like the core.

Each test opens sessions on a bare :class:`Router`, hands it events as the
runtime would, and checks the ``(session, event)`` posts it returns. Where
the runtime's part matters (how much of a session's backlog was written),
the test plays it: ``posted`` marks per MESSAGE and ``written`` at close.
"""

from __future__ import annotations

from collections import deque
from typing import ClassVar

import pytest

from stomp_proto import (
    Abort,
    Ack,
    Begin,
    Commit,
    Disconnect,
    Error,
    Event,
    Message,
    Nack,
    Receipt,
    Send,
    Subscribe,
    Unsubscribe,
)
from stomp_proto.broker import (
    Entry,
    MemoryQueueStore,
    Post,
    QueueRoute,
    Router,
    Session,
    Subscription,
    TopicRoute,
)


def messages(posts: list[Post], session: Session | None = None) -> list[Message]:
    return [e for s, e in posts if type(e) is Message and (session is None or s is session)]


def bodies(posts: list[Post], session: Session | None = None) -> list[bytes]:
    return [m.body for m in messages(posts, session)]


def written_all(session: Session, posts: list[Post]) -> int:
    """Play the runtime: post each MESSAGE to ``session`` as 100 bytes, marking
    where the ``auto``-mode queue ones end; returns the bytes posted."""
    offset = 0
    for s, event in posts:
        if s is session and type(event) is Message:
            offset += 100
            if session.unmarked:
                record = session.unwritten[len(session.unwritten) - session.unmarked]
                if record[4] is event:
                    record[3] = offset
                    session.unmarked -= 1
    return offset


def only_error(posts: list[Post]) -> Error:
    assert len(posts) == 1 and type(posts[0][1]) is Error, posts
    return posts[0][1]


def test_topic_exact_and_pattern_subscribers_each_get_one_copy() -> None:
    router = Router()
    a, b = router.open("a", "1.2"), router.open("b", "1.2")
    router.handle(a, Subscribe(destination="/topic/price.stock.MMM", id="exact"))
    router.handle(a, Subscribe(destination="/topic/price.stock.*", id="star"))
    router.handle(b, Subscribe(destination="/topic/price.**", id="deep"))
    out = router.handle(b, Send(destination="/topic/price.stock.MMM", body=b"129.45"))
    assert sorted((s.sid, e.subscription) for s, e in out if isinstance(e, Message)) == [
        ("a", "exact"),
        ("a", "star"),
        ("b", "deep"),
    ]
    assert all(m.destination == "/topic/price.stock.MMM" for m in messages(out))
    assert router.stats["published"] == 1 and router.stats["delivered"] == 3


def test_dispatch_is_on_the_exact_event_type() -> None:
    router = Router()
    s = router.open("s", "1.2")
    router.handle(s, Subscribe(destination="/queue/n", id="0", ack="client-individual"))
    out = router.handle(s, Send(destination="/queue/n", body=b"m"))
    (m,) = messages(out)
    assert m.ack is not None
    nacked = router.handle(s, Nack(id=m.ack))
    (again,) = messages(nacked)  # a NACK requeues; an ACK would not
    assert ("redelivered", "true") in again.headers
    assert again.ack is not None
    assert messages(router.handle(s, Ack(id=again.ack))) == []
    assert router.queued() == 0


def test_receipts_come_before_what_the_frame_delivers() -> None:
    router = Router()
    s = router.open("s", "1.2")
    router.handle(s, Send(destination="/queue/backlog", body=b"early"))
    out = router.handle(s, Subscribe(destination="/queue/backlog", id="0", receipt="r1"))
    assert [type(e) for _, e in out] == [Receipt, Message]
    out = router.handle(s, Send(destination="/queue/backlog", body=b"x", receipt="r2"))
    assert [type(e) for _, e in out] == [Receipt, Message]


def test_refusals_name_the_frame_and_end_the_session() -> None:
    router = Router()
    s = router.open("s", "1.2")
    error = only_error(router.handle(s, Send(destination="/nowhere", body=b"", receipt="r")))
    assert error.receipt_id == "r"
    assert b"(SEND)" in error.body and "/nowhere" in str(error.message)
    assert s.ended
    assert router.handle(s, Send(destination="/topic/x", body=b"")) == []  # one ERROR only
    t = router.open("t", "1.2")
    error = only_error(router.handle(t, Subscribe(destination="/queue/a*", id="0")))
    assert "patterns are for /topic/" in str(error.message)
    assert router.stats["refused"] == 2 and router.stats["published"] == 0


def test_auto_queue_messages_not_written_go_back_when_the_session_ends() -> None:
    """Issue 9 item 1: what was still in a consumer's backlog is not lost."""
    router = Router()
    gone, other, producer = (router.open(n, "1.2") for n in ("gone", "other", "producer"))
    router.handle(gone, Subscribe(destination="/queue/r", id="s"))
    out: list[Post] = []
    for i in range(4):
        out += router.handle(producer, Send(destination="/queue/r", body=b"%d" % i))
    assert bodies(out, gone) == [b"0", b"1", b"2", b"3"]
    written_all(gone, out)  # marks 100, 200, 300, 400
    router.written(gone, 200)  # the runtime: two frames reached the socket
    back = router.close(gone, written=200)
    assert back == []  # nobody to take them yet: they wait, in order
    assert router.queued() == 2
    again = router.handle(other, Subscribe(destination="/queue/r", id="s"))
    assert bodies(again) == [b"2", b"3"]
    assert router.stats["requeued"] == 2


def test_disconnect_stops_deliveries_at_once() -> None:
    router = Router()
    leaving, staying, producer = (router.open(n, "1.2") for n in ("l", "s", "p"))
    router.handle(leaving, Subscribe(destination="/queue/d", id="0"))
    router.handle(staying, Subscribe(destination="/queue/d", id="0"))
    out = router.handle(leaving, Disconnect(receipt="bye"))
    assert [type(e) for _, e in out] == [Receipt]
    out = []
    for i in range(4):
        out += router.handle(producer, Send(destination="/queue/d", body=b"%d" % i))
    assert bodies(out, leaving) == [] and len(bodies(out, staying)) == 4
    assert router.close(leaving, written=0) == []


def test_a_message_larger_than_the_backlog_limit_reaches_an_idle_consumer() -> None:
    """Issue 9 item 2: "full" means the backlog is already past the limit."""
    router = Router(max_pending_bytes=1000)
    a, b = router.open("a", "1.2"), router.open("b", "1.2")
    router.handle(a, Subscribe(destination="/topic/big", id="0"))
    out = router.handle(b, Send(destination="/topic/big", body=b"x" * 5000))
    assert bodies(out, a) == [b"x" * 5000]
    a.pending = 5000  # the runtime: not written yet
    assert router.handle(b, Send(destination="/topic/big", body=b"y")) == []
    assert a.dropped == 1 and router.stats["dropped"] == 1  # counted per session


def test_commit_applies_all_of_its_frames_or_none() -> None:
    """Issue 9 item 3."""
    router = Router(max_queue_bytes=3000, max_memory_bytes=1 << 30)
    s = router.open("s", "1.2")
    router.handle(s, Send(destination="/queue/full", body=b"x" * 1500))
    router.handle(s, Begin(transaction="t"))
    for _ in range(2):
        router.handle(s, Send(destination="/queue/full", body=b"y" * 600, transaction="t"))
    error = only_error(router.handle(s, Commit(transaction="t", receipt="c")))
    assert error.receipt_id == "c" and "holds 3000 bytes" in str(error.message)
    assert router.queued() == 1  # only the message from before the transaction
    assert router.stats["published"] == 1


def test_a_commit_that_fits_publishes_in_order_and_abort_drops() -> None:
    router = Router()
    s, c = router.open("s", "1.2"), router.open("c", "1.2")
    router.handle(c, Subscribe(destination="/queue/t", id="0", ack="client-individual"))
    router.handle(s, Begin(transaction="t"))
    assert router.handle(s, Send(destination="/queue/t", body=b"a", transaction="t")) == []
    assert router.handle(s, Send(destination="/queue/t", body=b"b", transaction="t")) == []
    assert router.memory > 0  # held bytes count against the budget
    out = router.handle(s, Commit(transaction="t"))
    assert bodies(out) == [b"a", b"b"]
    first = messages(out)[0]
    router.handle(c, Begin(transaction="u"))
    assert first.ack is not None
    router.handle(c, Ack(id=first.ack, transaction="u"))
    router.handle(c, Abort(transaction="u"))
    assert len(c.ack_index) == 2  # the ACK was aborted with its transaction
    router.handle(s, Begin(transaction="v"))
    router.handle(s, Send(destination="/queue/t", body=b"never", transaction="v"))
    router.close(s)
    assert router.memory == 0 and router.stats["published"] == 2


def test_transactions_are_bounded_in_frames_and_bytes() -> None:
    router = Router(max_transaction_frames=2, max_transaction_bytes=10_000)
    s = router.open("s", "1.2")
    router.handle(s, Begin(transaction="t"))
    router.handle(s, Send(destination="/queue/q", body=b"", transaction="t"))
    router.handle(s, Send(destination="/queue/q", body=b"", transaction="t"))
    error = only_error(router.handle(s, Send(destination="/queue/q", body=b"", transaction="t")))
    assert "holds 2 frames" in str(error.message)
    t = router.open("t", "1.2")
    router.handle(t, Begin(transaction="big"))
    error = only_error(
        router.handle(t, Send(destination="/queue/q", body=b"x" * 20_000, transaction="big"))
    )
    assert "more than 10000 bytes" in str(error.message)


def test_the_broker_wide_budget_counts_whole_frames() -> None:
    """Issue 9 item 14: headers count too, and the budget spans queues."""
    router = Router(max_queue_bytes=1 << 30, max_memory_bytes=100_000)
    s = router.open("s", "1.2")
    header = (("x-big", "h" * 30_000),)
    for i in range(3):
        assert router.handle(s, Send(destination=f"/queue/q{i}", body=b"", headers=header)) == []
    error = only_error(router.handle(s, Send(destination="/queue/q9", body=b"", headers=header)))
    assert "max_memory_bytes" in str(error.message)
    assert router.stats["published"] == 3
    with pytest.raises(OverflowError):
        router.publish("/queue/q9", b"x" * 50_000)
    with pytest.raises(ValueError, match="unknown destination"):
        router.publish("/elsewhere", b"")


def settled_by_core(event: Ack | Nack, keys: list[str | None]) -> Ack | Nack:
    """What the core does to an ACK/NACK it applies: records what it settled."""
    object.__setattr__(event, "settles", tuple(keys))
    return event


def test_acks_settle_what_the_core_says_they_settle() -> None:
    """Issue 9 item 6, issue 10: the cumulative rule is the core's; the router
    settles exactly the ack keys an ACK's ``settles`` names, each by index."""
    router = Router(max_pending_bytes=1 << 40)  # no writer here to drain the backlog
    s = router.open("s", "1.2")
    router.handle(s, Subscribe(destination="/queue/c", id="0", ack="client"))
    out: list[Post] = []
    for i in range(20_000):
        out += router.handle(s, Send(destination="/queue/c", body=b"%d" % i))
    acks = [m.ack for m in messages(out)]
    sub = s.subscriptions["0"]
    assert len(sub.unacked) == 20_000
    router.handle(s, settled_by_core(Ack(id=acks[9]), acks[:10]))  # cumulative, per the core
    assert len(sub.unacked) == 19_990 and acks[10] in sub.unacked
    for ack in acks[10:]:
        assert ack is not None
        router.handle(s, Ack(id=ack))  # not applied by a core: the one message it names
    assert not sub.unacked and not s.ack_index
    assert router.handle(s, Ack(id=acks[0])) == []  # settled already: nothing happens


def test_unacknowledged_queue_messages_go_back_marked_redelivered() -> None:
    router = Router()
    doomed, survivor, p = (router.open(n, "1.2") for n in ("d", "s", "p"))
    router.handle(doomed, Subscribe(destination="/queue/r", id="0", ack="client-individual"))
    out: list[Post] = []
    for i in range(3):
        out += router.handle(p, Send(destination="/queue/r", body=b"m%d" % i))
    held = messages(out)
    assert held[1].ack is not None
    router.handle(doomed, Ack(id=held[1].ack))
    router.close(doomed, written=written_all(doomed, out))
    again = router.handle(survivor, Subscribe(destination="/queue/r", id="0"))
    assert bodies(again) == [b"m0", b"m2"]
    assert all(("redelivered", "true") in m.headers for m in messages(again))


def test_prefetch_and_unsubscribe() -> None:
    router = Router()
    s = router.open("s", "1.2")
    sub = Subscribe(
        destination="/queue/p",
        id="0",
        ack="client-individual",
        headers=(("prefetch-count", "1"),),
    )
    router.handle(s, sub)
    out: list[Post] = []
    for i in range(3):
        out += router.handle(s, Send(destination="/queue/p", body=b"%d" % i))
    (first,) = messages(out)
    assert router.queued() == 2
    assert first.ack is not None
    assert bodies(router.handle(s, Ack(id=first.ack))) == [b"1"]
    router.handle(s, Unsubscribe(id="0"))
    assert router.queued() == 2  # 1 went back, unacknowledged; 2 waits
    bad = router.open("b", "1.2")
    error = only_error(
        router.handle(
            bad, Subscribe(destination="/queue/p", id="0", headers=(("prefetch-count", "x"),))
        )
    )
    assert "prefetch-count" in str(error.message)


# -- plug points ----------------------------------------------------------------------


class EchoRoute:
    """A route of an application's own: answers the sender on its subscription."""

    prefix = "/echo/"
    takes_receipts = False

    def __init__(self) -> None:
        self.subs: dict[str, Subscription] = {}
        self.later: deque[Entry] = deque()

    def bind(self, router: Router) -> None:
        self.router = router

    def valid(self, destination: str) -> str | None:
        return None

    def check_send(self, entries: list[Entry]) -> None:
        return None

    def receive(self, session: Session, event: Send) -> list[Post]:  # pragma: no cover
        raise AssertionError("takes_receipts is False")

    def send(self, session: Session | None, entry: Entry) -> list[Post]:
        if entry.destination == "/echo/later":
            self.later.append(entry)  # an asynchronous backend: answers afterwards
            return []
        sub = self.subs.get(entry.destination)
        return [] if sub is None else [self.router.deliver(sub, entry, None, False)]

    def flush(self) -> None:
        sub = self.subs["/echo/later"]
        self.router.emit([self.router.deliver(sub, e, None, False) for e in self.later])
        self.later.clear()

    def subscribe(self, sub: Subscription) -> list[Post]:
        self.subs[sub.destination] = sub
        return []

    def unsubscribe(self, sub: Subscription) -> None:
        del self.subs[sub.destination]

    def requeue(self, name: str, items: list[tuple[Entry, bool]]) -> list[Post]:
        return []

    def resume(self, sub: Subscription) -> list[Post]:
        return []


def test_a_route_of_its_own_by_prefix_and_delivering_later() -> None:
    router = Router()
    echo = EchoRoute()
    router.add_route(echo)
    with pytest.raises(ValueError, match="exists already"):
        router.add_route(EchoRoute())
    assert router.route("/echo/x") is echo and router.route("/nowhere") is None
    s = router.open("s", "1.2")
    router.handle(s, Subscribe(destination="/echo/x", id="0"))
    assert bodies(router.handle(s, Send(destination="/echo/x", body=b"hi"))) == [b"hi"]
    emitted: list[Post] = []
    router.on_emit = emitted.extend
    router.handle(s, Subscribe(destination="/echo/later", id="1"))
    assert router.handle(s, Send(destination="/echo/later", body=b"soon")) == []
    echo.flush()
    assert bodies(emitted) == [b"soon"]


def test_routes_replace_the_defaults_and_the_longest_prefix_wins() -> None:
    special = TopicRoute("/topic/special.")
    router = Router(routes=(TopicRoute(), special, QueueRoute()))
    assert router.route("/topic/special.x") is special
    assert router.route("/topic/other") is router.topics
    assert Router(routes=(TopicRoute(),)).route("/queue/x") is None


def test_principal_and_the_sessions_of_a_user() -> None:
    router = Router()
    one = router.open("1", "1.2", user="fabrice", principal={"name": "fabrice"})
    two = router.open("2", "1.2", user="fabrice")
    router.open("3", "1.2", user="paulson")
    assert router.sessions_of("fabrice") == [one, two]
    assert one.principal == {"name": "fabrice"}
    router.close(one)
    assert router.sessions_of("fabrice") == [two]
    router.close(two)
    assert router.sessions_of("fabrice") == []


def test_an_authorization_hook_per_frame() -> None:
    def authorize(session: Session, event: Event) -> str | None:
        if type(event) is Subscribe and event.destination.startswith("/topic/admin"):
            return "admins only" if session.user != "root" else None
        return None

    router = Router(authorize=authorize)
    guest, root = router.open("g", "1.2", user="guest"), router.open("r", "1.2", user="root")
    assert router.handle(root, Subscribe(destination="/topic/admin.log", id="0")) == []
    error = only_error(router.handle(guest, Subscribe(destination="/topic/admin.log", id="0")))
    assert error.message == "SUBSCRIBE to '/topic/admin.log' denied: admins only"
    assert b"(SUBSCRIBE)" in error.body


class RecordingStore(MemoryQueueStore):
    """A queue store of the test's own: records what the route does with it."""

    calls: ClassVar[list[str]] = []

    def append(self, entry: Entry, redelivered: bool) -> None:
        self.calls.append(f"append {entry.body.decode()}")
        super().append(entry, redelivered)

    def popleft(self) -> tuple[Entry, bool]:
        item = super().popleft()
        self.calls.append(f"pop {item[0].body.decode()}")
        return item


def test_a_queue_store_of_its_own() -> None:
    RecordingStore.calls = []
    router = Router(routes=(QueueRoute(store=lambda name: RecordingStore()),))
    s = router.open("s", "1.2")
    router.handle(s, Send(destination="/queue/q", body=b"a"))
    assert bodies(router.handle(s, Subscribe(destination="/queue/q", id="0"))) == [b"a"]
    assert RecordingStore.calls == ["append a", "pop a"]


def test_version_keys_for_acks_come_from_the_session() -> None:
    """1.1 names a message by message-id and subscription (the core's rule)."""

    def key11(event: Message | Ack | Nack) -> object:
        return (event.message_id, event.subscription)

    router = Router()
    s = router.open("s", "1.1", ack_key=key11)
    router.handle(s, Subscribe(destination="/queue/k", id="sub", ack="client-individual"))
    (m,) = messages(router.handle(s, Send(destination="/queue/k", body=b"m")))
    assert router.handle(s, Ack(message_id=m.message_id, subscription="sub")) == []
    assert not s.ack_index and router.queued() == 0


def test_patterns_are_bounded_in_length() -> None:
    router = Router()
    s = router.open("s", "1.2")
    long = "/topic/" + "a*" * 600
    error = only_error(router.handle(s, Subscribe(destination=long, id="0")))
    assert "at most 1024 characters" in str(error.message)
    t = router.open("t", "1.2")
    assert router.handle(t, Subscribe(destination="/topic/" + "a" * 2000, id="0")) == []
