"""The relay's books with no event loop and no upstream broker (stomp_proto/broker/_relay.py).

A :class:`Node` is a bare :class:`Router` serving a :class:`Relay`'s two
routes, driven as the runtime drives it: client frames through
``router.handle``, upstream connections through ``relay.connected`` /
``relay.lost``, what the relay writes upstream through ``take_outbox``. Each
upstream connection is played by a real :class:`ClientConnection` (the core
the runtime uses), so a frame the relay writes that the core would refuse,
an ACK for a message of a cancelled subscription say, fails the test; the
test plays the upstream broker by building the frames it would send
(MESSAGE, RECEIPT, ERROR) and feeding them through that core.
"""

from __future__ import annotations

from typing import Any

import pytest

from stomp_proto import (
    NEED_DATA,
    Abort,
    Ack,
    Begin,
    ClientConnection,
    Commit,
    Connected,
    Disconnect,
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
from stomp_proto.broker import Relay, RelayAvailability, Router, Session, Upstream
from stomp_proto.broker._relay import CumulativeAck, encode

RABBIT = "RabbitMQ/3.10.8"
ACTIVEMQ = "ActiveMQ/5.17.2"


class Wire:
    """One upstream connection as the runtime has it: the relay's frames go
    through a real ClientConnection, and so do the upstream's replies."""

    def __init__(self, node: Node, index: int, server: str) -> None:
        self.node = node
        self.index = index
        self.conn = ClientConnection()
        self.conn.send(node.relay.connect_frame(index, node.relay.upstreams[0]))
        self.conn.receive_data(
            Frame("CONNECTED", (("version", "1.2"), ("server", server))).serialize("1.2")
        )
        connected = self.conn.next_event()
        assert isinstance(connected, Connected)
        self.connected = connected
        self.written: list[list[Event]] = []  # each write, in order
        self.tags = 0

    def take(self) -> list[Any]:
        """What the relay writes now (through the core, as the writer does)."""
        frames: list[Event] = []
        chunk: list[Event] = []
        for event in self.node.relay.take_outbox(self.index):
            if event is None:
                if chunk:
                    self.written.append(chunk)
                chunk = []
                continue
            encode(self.conn, event, 0.0)  # raises LocalProtocolError if the books disagree
            chunk.append(event)
            frames.append(event)
        if chunk:
            self.written.append(chunk)
        return frames

    def feed(self, command: str, headers: list[tuple[str, str]], body: bytes = b"") -> list[Any]:
        """The upstream sends a frame: the core parses it, the relay gets it."""
        self.conn.receive_data(Frame(command, tuple(headers), body).serialize("1.2"))
        event = self.conn.next_event()
        assert event is not NEED_DATA
        relay = self.node.relay
        if isinstance(event, Message):
            return relay.on_message(self.index, event)
        if isinstance(event, Receipt):
            return relay.on_receipt(self.index, event)
        assert isinstance(event, Error)
        return relay.on_error(self.index, event)

    def receipt(self, frame: Event) -> list[Any]:
        receipt = getattr(frame, "receipt", None)
        assert receipt is not None, frame
        return self.feed("RECEIPT", [("receipt-id", receipt)])

    def message(
        self,
        sub: Subscribe,
        body: bytes = b"m",
        *,
        destination: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> list[Any]:
        self.tags += 1
        tag = f"T_{sub.id}@@session@@{self.index}-{self.tags}"
        if self.node.relay.cumulative_acks:  # RabbitMQ's: the channel's delivery tag
            tag = f"T_{sub.id}@@session@@{self.tags}"
        return self.feed(
            "MESSAGE",
            [
                ("destination", destination or sub.destination),
                ("message-id", tag),
                ("subscription", sub.id or ""),
                ("ack", tag),
                *(headers or []),
            ],
            body,
        )


class Node:
    """A router serving a relay, and its upstream connections once up."""

    def __init__(self, *, connections: int = 1, cumulative: bool = False, **options: Any) -> None:
        self.relay = Relay(
            ["stomp://guest:guest@upstream:61613"], connections=connections, **options
        )
        # One ACK per message unless asked (the cumulative ACKs' own tests ask).
        self.relay.cumulative_acks = cumulative
        self.router = Router(routes=self.relay.routes())
        self.emitted: list[Any] = []
        self.router.on_emit = self.emitted.extend
        self.woken: list[int] = []
        self.relay.wake = self.woken.append
        self.events: list[RelayAvailability] = []
        self.relay.listeners.append(self.events.append)
        self.wires: dict[int, Wire] = {}
        self.sids = 0

    def up(self, server: str = RABBIT, *indexes: int) -> list[Any]:
        posts = []
        for index in indexes or range(len(self.relay.connections)):
            wire = self.wires[index] = Wire(self, index, server)
            upstream = self.relay.upstreams[0]
            posts += self.relay.connected(index, upstream, wire.connected, self.router.now)
        return posts

    def down(self, *indexes: int, reason: str = "EOF") -> list[Any]:
        posts = []
        for index in indexes or range(len(self.relay.connections)):
            posts += self.relay.lost(index, reason)
            self.wires.pop(index, None)
        return posts

    def handle(self, session: Session, event: Event) -> list[Any]:
        return list(self.router.handle(session, event))

    def tick(self, now: float) -> list[Any]:
        return list(self.relay.tick(now))

    def session(self, user: str | None = None) -> Session:
        self.sids += 1
        return self.router.open(f"s{self.sids}", "1.2", user=user)

    @property
    def pool(self) -> Wire:
        return self.wires[1]

    @property
    def system(self) -> Wire:
        return self.wires[0]


def settled_by_core(event: Ack, keys: list[Any]) -> Ack:
    """What the client's core records on an ACK it applies (the router's input)."""
    object.__setattr__(event, "settles", tuple(keys))
    return event


def kinds(posts: list[Any], session: Session | None = None) -> list[str]:
    return [e.COMMAND for s, e in posts if session is None or s is session]


def only(frames: list[Event], kind: type[Any]) -> Any:
    found = [f for f in frames if type(f) is kind]
    assert len(found) == 1, frames
    return found[0]


# -- configuration -----------------------------------------------------------------------


def test_upstream_urls() -> None:
    u = Upstream.parse("stomp://guest:gu%40st@rabbit.example:61614/%2F")
    assert (u.host, u.port, u.login, u.passcode, u.vhost, u.tls) == (
        "rabbit.example",
        61614,
        "guest",
        "gu@st",
        "/",
        False,
    )
    assert str(u) == "stomp://rabbit.example:61614/%2F"  # no credentials in logs
    assert Upstream.parse("stomps://h").tls
    assert Upstream.parse("stomp://h").vhost is None  # no host header: the default vhost
    assert Upstream.parse("stomp://h:1/prod").vhost == "prod"
    for bad, why in [
        ("amqp://h:5672", "expected stomp://"),
        ("stomp://:1", "names no host"),
        ("stomp://h:x", "Port could not be cast"),
        ("stomp://u:secret@h:1?x=1", "no query"),
    ]:
        with pytest.raises(ValueError, match=why) as info:
            Upstream.parse(bad)
        assert "secret" not in str(info.value)


def test_relay_options_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one upstream"):
        Relay([])
    with pytest.raises(ValueError, match="connections"):
        Relay(["stomp://h"], connections=0)
    relay = Relay("stomp://h")
    assert [c.name for c in relay.connections] == ["system", "pool-1", "pool-2"]


def test_connect_frame_uses_the_upstream_credentials_and_vhost() -> None:
    relay = Relay(["stomp://u:p@h:1/v"], heart_beat=(4000, 5000))
    connect = relay.connect_frame(1, relay.upstreams[0])
    assert (connect.login, connect.passcode, connect.host, connect.heart_beat) == (
        "u",
        "p",
        "v",
        (4000, 5000),
    )


# -- subscriptions -----------------------------------------------------------------------


def test_a_topic_is_subscribed_upstream_once_per_node_and_fanned_out_here() -> None:
    node = Node()
    node.up()
    a, b = node.session(), node.session()
    posts = node.handle(a, Subscribe(destination="/topic/t", id="1", receipt="ra"))
    assert posts == []  # the RECEIPT waits for the upstream's
    sub = only(node.pool.take(), Subscribe)
    assert (sub.destination, sub.ack) == ("/topic/t", "client-individual")
    assert ("prefetch-count", "1000") in sub.headers
    assert node.pool.receipt(sub) == [(a, Receipt(receipt_id="ra"))]
    # A second subscriber shares it: nothing upstream, and live already.
    posts = node.handle(b, Subscribe(destination="/topic/t", id="9", receipt="rb"))
    assert posts == [(b, Receipt(receipt_id="rb"))]
    assert node.pool.take() == []
    posts = node.pool.message(sub, b"tick", headers=[("price", "1"), ("receipt", "x1")])
    assert sorted(s.sid for s, _ in posts) == ["s1", "s2"]
    message = posts[0][1]
    assert message.body == b"tick" and message.destination == "/topic/t"
    assert ("price", "1") in message.headers
    assert all(k not in ("receipt", "content-length") for k, _ in message.headers)
    assert {m.subscription for _, m in posts} == {"1", "9"}
    # Consumed upstream once fanned out.
    assert [type(f) for f in node.pool.take()] == [Ack]


def test_topic_patterns_go_upstream_in_its_wildcards_and_are_filtered_here() -> None:
    node = Node()
    node.up()
    s = node.session()
    node.handle(s, Subscribe(destination="/topic/price.*.nyse", id="1"))
    node.handle(s, Subscribe(destination="/topic/price.st*", id="2"))
    node.handle(s, Subscribe(destination="/topic/a/b.**", id="3"))
    subs = node.pool.take()
    assert [f.destination for f in subs] == [
        "/topic/price.*.nyse",  # the same in AMQP's words
        "/topic/price.#",  # a star inside a word: widened
        "/topic/a%2Fb.#",  # '/' is encoded on RabbitMQ
    ]
    wide = subs[1]
    # RabbitMQ sends what its pattern matches; ours decides.
    assert node.pool.message(wide, destination="/topic/price.bonds") == []
    posts = node.pool.message(wide, destination="/topic/price.stock")
    assert [m.destination for _, m in posts] == ["/topic/price.stock"]
    # RabbitMQ percent-encodes MESSAGE destinations (twice, with ours): decoded back.
    posts = node.pool.message(subs[2], destination="/topic/a%252Fb.c%C3%A9")
    assert [m.destination for _, m in posts] == ["/topic/a/b.c\u00e9"]


def test_activemq_wildcards_and_names() -> None:
    node = Node()
    node.up(ACTIVEMQ)
    s = node.session()
    node.handle(s, Subscribe(destination="/topic/a/b.**", id="1"))
    node.handle(s, Subscribe(destination="/queue/q/1", id="2"))
    subs = node.pool.take()
    assert [f.destination for f in subs] == ["/topic/a/b.>", "/queue/q/1"]
    assert ("activemq.prefetchSize", "1000") in subs[0].headers


def test_selectors_are_applied_here_on_topics_and_refused_on_queues() -> None:
    node = Node()
    node.up()
    s = node.session()
    node.handle(s, Subscribe(destination="/topic/t", id="1", headers=(("selector", "n = 2"),)))
    sub = only(node.pool.take(), Subscribe)
    assert ("selector", "n = 2") not in sub.headers  # RabbitMQ has no selectors
    assert node.pool.message(sub, headers=[("n", "1")]) == []
    assert len(node.pool.message(sub, headers=[("n", "2")])) == 1
    posts = node.handle(
        s, Subscribe(destination="/queue/q", id="2", headers=(("selector", "n = 2"),))
    )
    assert kinds(posts) == ["ERROR"]


def test_queue_subscriptions_are_one_to_one_and_acks_map_to_the_upstream() -> None:
    node = Node()
    node.up()
    s = node.session()
    node.handle(s, Subscribe(destination="/queue/jobs", id="7", ack="client-individual"))
    sub = only(node.pool.take(), Subscribe)
    assert sub.id != "7"  # the relay's own id
    node.pool.receipt(sub)
    first = node.pool.message(sub, b"one")
    second = node.pool.message(sub, b"two")
    (_, m1), (_, m2) = first + second
    assert (m1.subscription, m1.body) == ("7", b"one")
    assert node.pool.take() == []  # nothing acknowledged until the client does
    node.handle(s, Nack(id=m2.ack))
    node.handle(s, Ack(id=m1.ack))
    frames = node.pool.take()
    assert [type(f) for f in frames] == [Nack, Ack]
    assert frames[0].id.endswith("-2") and frames[1].id.endswith("-1")  # upstream ack ids


def test_a_cumulative_client_ack_acks_each_message_upstream() -> None:
    # client mode: RabbitMQ's multiple=true would settle every subscription's
    # messages on the shared channel; upstream the relay acks one by one.
    node = Node()
    node.up()
    s = node.session()
    node.handle(s, Subscribe(destination="/queue/jobs", id="1", ack="client"))
    sub = only(node.pool.take(), Subscribe)
    posts = [p for i in range(3) for p in node.pool.message(sub, str(i).encode())]
    acks = [m.ack for _, m in posts]
    # What the client's core settles for a cumulative ACK of the second message:
    node.handle(s, settled_by_core(Ack(id=acks[1]), acks[:2]))
    frames = node.pool.take()
    assert [type(f) for f in frames] == [Ack, Ack]
    assert [f.id[-2:] for f in frames] == ["-1", "-2"]
    node.handle(s, settled_by_core(Ack(id=acks[2]), acks[2:]))
    assert [type(f) for f in node.pool.take()] == [Ack]


def test_auto_queue_messages_are_acknowledged_upstream_once_posted() -> None:
    node = Node()
    node.up()
    s = node.session()
    node.handle(s, Subscribe(destination="/queue/jobs", id="1"))
    sub = only(node.pool.take(), Subscribe)
    assert len(node.pool.message(sub)) == 1
    assert [type(f) for f in node.pool.take()] == [Ack]


def Cumulative(id: str) -> Any:
    """Compares equal to the relay's cumulative ACK with this id."""

    class Same:
        def __eq__(self, other: object) -> bool:
            return type(other) is CumulativeAck and other.id == id

        def __hash__(self) -> int:
            return hash(id)

        def __repr__(self) -> str:
            return f"CumulativeAck(id={id!r})"

    return Same()


def cumulative_sub(frames: list[Event]) -> Subscribe:
    """The relay's own ack:client subscription, written first on a RabbitMQ connection."""
    sub = frames[0]
    assert type(sub) is Subscribe and sub.ack == "client", frames
    assert sub.destination.startswith("/topic/stomp-proto.void.")
    return sub


def test_on_rabbitmq_consumed_messages_are_acknowledged_cumulatively_once_per_write() -> None:
    node = Node(cumulative=True)
    node.up()
    cumulative = cumulative_sub(node.pool.take())
    s = node.session()
    node.handle(s, Subscribe(destination="/queue/jobs", id="1"))
    sub = only(node.pool.take(), Subscribe)
    node.handle(s, Subscribe(destination="/topic/news", id="2"))
    topic = only(node.pool.take(), Subscribe)
    posts = [*node.pool.message(sub, b"a"), *node.pool.message(topic), *node.pool.message(sub)]
    assert len(posts) == 3
    # One ACK, under the relay's ack:client subscription, for the last of them
    # (RabbitMQ's multiple=true: the channel's deliveries up to it).
    assert node.pool.take() == [Cumulative(f"T_{cumulative.id}@@session@@3")]
    assert node.pool.conn.unacknowledged == {}  # the core's books settled what it covers
    node.pool.message(sub)
    assert node.pool.take() == [Cumulative(f"T_{cumulative.id}@@session@@4")]
    assert node.pool.take() == []


def test_a_cumulative_ack_never_covers_a_message_its_client_did_not_settle() -> None:
    node = Node(cumulative=True)
    node.up()
    cumulative = cumulative_sub(node.pool.take())
    s, t = node.session(), node.session()
    node.handle(
        s,
        Subscribe(
            destination="/queue/work",
            id="1",
            ack="client-individual",
            headers=(("prefetch-count", "1"),),
        ),
    )
    waits = only(node.pool.take(), Subscribe)
    node.handle(t, Subscribe(destination="/queue/jobs", id="1"))
    auto = only(node.pool.take(), Subscribe)
    assert node.pool.conn is not None and node.relay._pin(s) is node.relay._pin(t)
    node.pool.message(auto)  # tag 1: consumed
    delivered = node.pool.message(waits, b"delivered")  # tag 2: waits for its client's ACK
    assert node.pool.message(waits, b"held") == []  # tag 3: held here (no room)
    node.pool.message(auto)  # tag 4: consumed, behind a waiting one
    frames = node.pool.take()
    assert frames == [
        Cumulative(f"T_{cumulative.id}@@session@@1"),
        Ack(id=f"T_{auto.id}@@session@@4"),
    ]
    # The client ACKs the first: it is settled on its own; the held one is posted.
    posts = node.handle(s, Ack(id=delivered[0][1].ack))
    assert [m.body for _, m in posts if type(m) is Message] == [b"held"]
    assert node.pool.take() == [Ack(id=f"T_{waits.id}@@session@@2")]
    node.pool.message(auto)  # tag 5: the held one (3) still waits for its client
    assert node.pool.take() == [Ack(id=f"T_{auto.id}@@session@@5")]
    # Its client goes away: it goes back on its own, and the prefix is free again.
    node.router.close(s)
    frames = node.pool.take()
    assert frames[0] == Nack(id=f"T_{waits.id}@@session@@3")
    assert [type(f) for f in frames[1:]] == [Unsubscribe, Subscribe]
    node.pool.message(auto)  # tag 6
    assert node.pool.take() == [Cumulative(f"T_{cumulative.id}@@session@@6")]


def test_an_unknown_ack_id_format_falls_back_to_one_ack_per_message() -> None:
    node = Node(cumulative=True)
    node.up()
    cumulative_sub(node.pool.take())
    s = node.session()
    node.handle(s, Subscribe(destination="/queue/jobs", id="1"))
    sub = only(node.pool.take(), Subscribe)
    node.pool.message(sub)
    for ack in ("opaque-1", "opaque-2"):  # not RabbitMQ's T_<sub>@@<session>@@<tag>
        headers = [("destination", sub.destination), ("message-id", ack), ("ack", ack)]
        node.pool.feed("MESSAGE", [*headers, ("subscription", sub.id or "")], b"m")
    assert node.pool.take() == [
        Ack(id=f"T_{sub.id}@@session@@1"),
        Ack(id="opaque-1"),
        Ack(id="opaque-2"),
    ]


def test_other_upstreams_get_one_ack_per_message() -> None:
    node = Node(cumulative=True)
    node.up(ACTIVEMQ)
    s = node.session()
    node.handle(s, Subscribe(destination="/queue/jobs", id="1"))
    sub = only(node.pool.take(), Subscribe)
    node.pool.message(sub)
    node.pool.message(sub)
    assert [type(f) for f in node.pool.take()] == [Ack, Ack]


def test_queue_messages_wait_here_while_the_client_has_no_room() -> None:
    node = Node()
    node.up()
    s = node.session()
    node.handle(
        s,
        Subscribe(
            destination="/queue/jobs",
            id="1",
            ack="client-individual",
            headers=(("prefetch-count", "1"),),
        ),
    )
    sub = only(node.pool.take(), Subscribe)
    assert ("prefetch-count", "1") in sub.headers  # the client's window, upstream too
    first = node.pool.message(sub, b"a")
    assert node.pool.message(sub, b"b") == []  # held: the client's window is full
    posts = node.handle(s, Ack(id=first[0][1].ack))
    assert [m.body for _, m in posts if type(m) is Message] == [b"b"]


def test_unsubscribing_on_rabbitmq_goes_through_a_void_stand_in() -> None:
    node = Node()
    node.up()
    s = node.session()
    node.handle(s, Subscribe(destination="/queue/jobs", id="1", ack="client-individual"))
    sub = only(node.pool.take(), Subscribe)
    node.pool.receipt(sub)
    node.pool.message(sub, b"unacked")
    node.handle(s, Unsubscribe(id="1", receipt="bye"))
    frames = node.pool.take()
    assert [type(f) for f in frames] == [Nack, Unsubscribe, Subscribe]
    stand_in = frames[2]
    assert stand_in.id == sub.id and stand_in.destination.startswith("/topic/stomp-proto.void.")
    # UNSUBSCRIBE and the stand-in leave in one write of their own.
    assert [type(f) for f in node.pool.written[-1]] == [Unsubscribe, Subscribe]
    # A delivery that was in flight arrives for the stand-in: it goes back.
    assert node.pool.message(sub, b"late") == []
    assert [type(f) for f in node.pool.take()] == [Nack]
    node.pool.receipt(stand_in)
    begin, abort = node.pool.take()
    assert type(begin) is Begin and type(abort) is Abort and abort.receipt
    node.pool.receipt(abort)
    assert [(type(f), f.id) for f in node.pool.take()] == [(Unsubscribe, sub.id)]
    assert node.pool.message(sub, b"after") == []  # gone: nothing owed
    assert node.pool.take() == []


def test_unsubscribing_elsewhere_is_a_plain_unsubscribe() -> None:
    node = Node()
    node.up(ACTIVEMQ)
    s = node.session()
    node.handle(s, Subscribe(destination="/queue/jobs", id="1", ack="client"))
    sub = only(node.pool.take(), Subscribe)
    node.pool.message(sub)
    node.handle(s, Unsubscribe(id="1"))
    # ActiveMQ redelivers what was not acknowledged; a NACK would count a failure.
    assert [type(f) for f in node.pool.take()] == [Unsubscribe]


def test_a_session_that_ends_hands_back_its_queue_messages() -> None:
    node = Node()
    node.up()
    s = node.session()
    node.handle(
        s,
        Subscribe(
            destination="/queue/jobs",
            id="1",
            ack="client-individual",
            headers=(("prefetch-count", "1"),),
        ),
    )
    sub = only(node.pool.take(), Subscribe)
    node.pool.message(sub, b"delivered")
    node.pool.message(sub, b"held")
    node.router.close(s)
    frames = node.pool.take()
    assert [type(f) for f in frames] == [Nack, Nack, Unsubscribe, Subscribe]


def test_topic_subscriptions_linger_then_are_cancelled() -> None:
    node = Node(topic_linger=2.0)
    node.up()
    s = node.session()
    node.handle(s, Subscribe(destination="/topic/t", id="1"))
    sub = only(node.pool.take(), Subscribe)
    node.pool.receipt(sub)
    node.handle(s, Unsubscribe(id="1"))
    assert node.pool.take() == []  # kept a moment (a page reload subscribes again)
    assert node.pool.message(sub) == []  # nobody listens: consumed and dropped
    assert [type(f) for f in node.pool.take()] == [Ack]
    node.handle(s, Subscribe(destination="/topic/t", id="2", receipt="again"))
    assert node.pool.take() == []  # the same upstream subscription
    node.handle(s, Unsubscribe(id="2"))
    assert node.tick(node.router.now + 1.9) == []
    assert node.pool.take() == []
    node.tick(node.router.now + 2.0)
    assert [type(f) for f in node.pool.take()] == [Unsubscribe, Subscribe]


def test_disconnect_cancels_upstream_subscriptions() -> None:
    node = Node()
    node.up()
    s = node.session()
    node.handle(s, Subscribe(destination="/queue/q", id="1"))
    node.pool.receipt(only(node.pool.take(), Subscribe))
    node.handle(s, Disconnect(receipt="bye"))
    assert [type(f) for f in node.pool.take()] == [Unsubscribe, Subscribe]


# -- SEND, receipts, transactions ----------------------------------------------------------


def test_a_send_is_confirmed_upstream_before_its_receipt() -> None:
    node = Node()
    node.up()
    s = node.session()
    posts = node.handle(
        s,
        Send(
            destination="/queue/a/b",
            body=b"x",
            receipt="c1",
            headers=(("message-id", "forged"), ("x-max-length", "1"), ("trace", "t")),
        ),
    )
    assert posts == []
    send = only(node.pool.take(), Send)
    assert send.destination == "/queue/a%2Fb"
    assert send.headers == (("trace", "t"),)  # no message-id (RabbitMQ refuses it), no arguments
    assert send.receipt and send.receipt != "c1"
    assert node.pool.receipt(send) == [(s, Receipt(receipt_id="c1"))]
    assert node.relay.stats["sent"] == 1
    # Without a receipt the client gets none, but the relay still asks for one.
    node.handle(s, Send(destination="/topic/t", body=b"y"))
    send = only(node.pool.take(), Send)
    assert send.receipt and node.pool.receipt(send) == []


def test_a_sessions_traffic_keeps_to_one_pool_connection() -> None:
    node = Node(connections=2)
    node.up()
    a, b = node.session(), node.session()
    for session in (a, b, a):
        node.handle(session, Send(destination="/queue/q", body=session.sid.encode()))
    one, two = node.wires[1].take(), node.wires[2].take()
    assert [f.body for f in one] == [b"s1", b"s1"] and [f.body for f in two] == [b"s2"]
    assert node.system.take() == []


def test_sends_wait_out_an_outage_and_are_sent_again() -> None:
    node = Node()
    node.up()
    s = node.session()
    node.handle(s, Subscribe(destination="/queue/q", id="1"))
    node.handle(s, Send(destination="/queue/q", body=b"in flight", receipt="c1"))
    node.pool.take()
    node.down(1)
    posts = node.handle(s, Send(destination="/queue/q", body=b"during", receipt="c2"))
    assert posts == []  # no ERROR: it waits
    down = node.events[-1]
    assert (down.available, down.connection, down.upstream) == (
        False,
        "pool-1",
        "stomp://upstream:61613",
    )
    node.up(RABBIT, 1)
    frames = node.pool.take()
    # The subscription again, then both SENDs in order.
    assert [type(f) for f in frames] == [Subscribe, Send, Send]
    assert [f.body for f in frames[1:]] == [b"in flight", b"during"]
    assert node.relay.stats["resent"] == 1
    # One upstream receipt, on the last SEND written together, confirms both.
    assert frames[1].receipt is None
    assert node.pool.receipt(frames[2]) == [
        (s, Receipt(receipt_id="c1")),
        (s, Receipt(receipt_id="c2")),
    ]
    assert node.events[-1].available


def test_a_send_that_outlives_the_outage_deadline_gets_error() -> None:
    node = Node(send_timeout=5.0)
    node.up()
    s = node.session()
    node.down(1)
    node.handle(s, Send(destination="/queue/q", body=b"x", receipt="c1"))
    assert node.tick(4.9) == []
    posts = node.tick(5.0)
    assert kinds(posts, s) == ["ERROR"]
    error = posts[0][1]
    assert error.receipt_id == "c1" and "SEND to '/queue/q'" in error.message
    assert "unavailable within 5 s" in error.message
    assert s.ended
    node.up(RABBIT, 1)
    assert node.pool.take() == []  # not sent after all
    assert node.relay.stats["refused"] == 1


def test_without_patience_a_send_during_an_outage_is_refused_at_once() -> None:
    node = Node(send_timeout=0)
    s = node.session()
    posts = node.handle(s, Send(destination="/queue/q", body=b"x"))
    assert kinds(posts) == ["ERROR"]
    assert "upstream broker is unavailable" in posts[0][1].message


def test_the_backlog_is_bounded() -> None:
    node = Node(max_backlog_bytes=1000)
    s = node.session()
    assert node.handle(s, Send(destination="/queue/q", body=b"x" * 500)) == []
    posts = node.handle(s, Send(destination="/queue/q", body=b"x" * 500))
    assert kinds(posts) == ["ERROR"]
    assert "holds 1000 bytes" in posts[0][1].message


def test_an_upstream_error_for_a_send_ends_that_client_only() -> None:
    node = Node()
    node.up()
    a, b = node.session(), node.session()
    node.handle(a, Send(destination="/queue/q", body=b"x"))
    sends = node.pool.take()  # written alone: a receipt of its own
    node.handle(b, Send(destination="/queue/q", body=b"y"))
    sends += node.pool.take()
    posts = node.pool.feed(
        "ERROR", [("message", "Invalid header"), ("receipt-id", sends[0].receipt or "")]
    )
    assert kinds(posts, a) == ["ERROR"] and kinds(posts, b) == []
    assert "the upstream broker refused it: Invalid header" in posts[0][1].message
    node.down(1)
    node.up(RABBIT, 1)
    assert [f.body for f in node.pool.take()] == [b"y"]


def test_sends_written_together_share_one_receipt_and_an_error_is_told_apart_after() -> None:
    # RabbitMQ answers in order: one receipt, on the last SEND of a write,
    # confirms all before it. An ERROR for an earlier one names no receipt;
    # after it each unconfirmed SEND goes alone, its own receipt telling whose.
    node = Node()
    node.up()
    a, b = node.session(), node.session()
    node.handle(a, Send(destination="/queue/q", body=b"x", receipt="ca"))
    node.handle(b, Send(destination="/queue/q", body=b"y", receipt="cb"))
    sends = node.pool.take()
    assert sends[0].receipt is None and sends[1].receipt
    assert node.pool.feed("ERROR", [("message", "Invalid header")]) == []
    node.down(1)
    node.up(RABBIT, 1)
    sends = node.pool.take()
    assert [f.body for f in sends] == [b"x", b"y"]
    assert sends[0].receipt and sends[1].receipt and sends[0].receipt != sends[1].receipt
    posts = node.pool.feed(
        "ERROR", [("message", "Invalid header"), ("receipt-id", sends[0].receipt or "")]
    )
    assert kinds(posts, a) == ["ERROR"] and kinds(posts, b) == []
    node.down(1)
    node.up(RABBIT, 1)
    again = node.pool.take()
    assert [f.body for f in again] == [b"y"]
    assert node.pool.receipt(again[0]) == [(b, Receipt(receipt_id="cb"))]


def test_a_frame_present_at_three_upstream_errors_in_a_row_is_refused() -> None:
    node = Node()
    node.up()
    s = node.session()
    node.handle(s, Send(destination="/queue/q", body=b"poison"))
    for _ in range(3):
        node.pool.take()
        node.pool.feed("ERROR", [("message", "precondition_failed")])  # no receipt-id
        assert node.down(1) == []
        posts = node.up(RABBIT, 1)
    assert kinds(posts, s) == ["ERROR"]
    assert "3 connections in a row" in posts[0][1].message
    assert node.pool.take() == []


def test_a_transaction_goes_upstream_as_one_upstream_transaction() -> None:
    node = Node()
    node.up()
    s = node.session()
    node.handle(s, Subscribe(destination="/queue/in", id="1", ack="client-individual"))
    sub = only(node.pool.take(), Subscribe)
    ((_, message),) = node.pool.message(sub, b"job")
    assert node.handle(s, Begin(transaction="t")) == []
    node.handle(s, Send(destination="/queue/out", body=b"result", transaction="t"))
    node.handle(s, Ack(id=message.ack, transaction="t"))
    assert node.pool.take() == []  # held until COMMIT
    assert node.handle(s, Commit(transaction="t", receipt="done")) == []
    frames = node.pool.take()
    assert [type(f) for f in frames] == [Begin, Send, Ack, Commit]
    tx = frames[0].transaction
    assert all(f.transaction == tx for f in frames)
    assert tx != "t"  # the relay's id, unique on the shared connection
    assert node.pool.receipt(frames[-1]) == [(s, Receipt(receipt_id="done"))]
    # ABORT: nothing upstream.
    node.handle(s, Begin(transaction="u"))
    node.handle(s, Send(destination="/queue/out", body=b"no", transaction="u"))
    node.handle(s, Abort(transaction="u"))
    assert node.pool.take() == []


def test_ack_receipts_wait_for_the_upstream_and_moot_acks_are_answered() -> None:
    node = Node()
    node.up()
    s = node.session()
    node.handle(s, Subscribe(destination="/queue/q", id="1", ack="client-individual"))
    sub = only(node.pool.take(), Subscribe)
    ((_, m1),) = node.pool.message(sub, b"1")
    ((_, m2),) = node.pool.message(sub, b"2")
    assert node.handle(s, Ack(id=m1.ack, receipt="a1")) == []
    ack = only(node.pool.take(), Ack)
    assert node.pool.receipt(ack) == [(s, Receipt(receipt_id="a1"))]
    node.down(1)
    # m2 came over the lost connection: the upstream redelivers it; the ACK is moot.
    assert node.handle(s, Ack(id=m2.ack, receipt="a2")) == [(s, Receipt(receipt_id="a2"))]
    node.up(RABBIT, 1)
    assert [type(f) for f in node.pool.take()] == [Subscribe]


def test_receipts_of_subscriptions_made_during_an_outage_wait_for_the_upstream() -> None:
    node = Node()
    s = node.session()
    assert node.handle(s, Subscribe(destination="/topic/t", id="1", receipt="r")) == []
    node.up()
    sub = only(node.pool.take(), Subscribe)
    assert node.pool.receipt(sub) == [(s, Receipt(receipt_id="r"))]


def test_an_upstream_error_for_a_subscribe_ends_its_subscribers() -> None:
    node = Node()
    node.up()
    s = node.session()
    node.handle(s, Subscribe(destination="/queue/q", id="1", receipt="r"))
    sub = only(node.pool.take(), Subscribe)
    posts = node.pool.feed(
        "ERROR", [("message", "access_refused"), ("receipt-id", sub.receipt or "")]
    )
    assert kinds(posts, s) == ["ERROR"]
    assert "SUBSCRIBE to '/queue/q'" in posts[0][1].message


# -- server code, user destinations, availability ------------------------------------------


def test_server_code_publishes_over_the_system_connection() -> None:
    node = Node(send_timeout=3.0)
    node.up()
    assert node.router.publish("/topic/news", b"hello") == []
    send = only(node.system.take(), Send)
    assert send.destination == "/topic/news" and send.receipt
    assert node.system.receipt(send) == []
    node.down(0)
    node.router.publish("/topic/news", b"waits")
    node.tick(3.0)
    assert node.relay.stats["dropped"] == 1
    small = Node(max_backlog_bytes=100)
    with pytest.raises(OverflowError, match="holds 100 bytes"):
        small.router.publish("/topic/news", b"x" * 200)


class Sink:
    """The application's /user route, as the bridge sees it."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str, bytes, tuple[tuple[str, str], ...]]] = []

    def to_user(
        self, user: str, path: str, entry: Any, *, only: Any = None, local: bool = False
    ) -> list[Any]:
        assert local
        self.got.append((user, path, entry.body, entry.headers))
        return []


def test_the_user_bridge_carries_user_messages_between_nodes() -> None:
    node = Node()
    sink = Sink()
    bridge = node.relay.bridge_users(sink)
    node.up()
    s = node.session(user="ann")
    bridge.watch("ann", s)
    bridge.watch("ann", s)
    sub = only(node.system.take(), Subscribe)
    assert sub.destination == "/topic/stomp-proto.user." + b"ann".hex()
    node.system.receipt(sub)
    from stomp_proto.broker import Entry

    bridge.publish("ann", "/queue/alerts", Entry("1", "/user/queue/alerts", b"hi", None, (), 10))
    send = only(node.system.take(), Send)
    assert send.destination == sub.destination
    assert ("x-stomp-proto-path", "/queue/alerts") in send.headers
    # Our own, back from upstream: delivered here already.
    node.system.message(sub, b"hi", headers=list(send.headers))
    assert sink.got == []
    other = [("x-stomp-proto-node", "another"), ("x-stomp-proto-path", "/queue/alerts"), ("k", "v")]
    node.system.message(sub, b"from B", headers=other)
    assert sink.got == [("ann", "/queue/alerts", b"from B", (("k", "v"),))]
    bridge.unwatch("ann")
    assert [type(f) for f in node.system.take()] == [Ack, Ack]
    bridge.unwatch("ann")
    assert [type(f) for f in node.system.take()] == [Unsubscribe, Subscribe]


def test_availability_is_told_once_per_change() -> None:
    node = Node()
    upstream = node.relay.upstreams[0]
    node.relay.connect_failed(1, upstream, "connection refused")
    node.relay.connect_failed(1, upstream, "connection refused")
    assert [(e.available, e.connection, e.reason) for e in node.events] == [
        (False, "pool-1", "connection refused")
    ]
    node.up()
    assert node.relay.available and node.events[-1].relay_available
    node.down(0, reason="EOF")
    assert not node.relay.available
    assert (node.events[-1].connection, node.events[-1].reason) == ("system", "EOF")


def test_the_relay_replaces_the_local_topic_and_queue_routes() -> None:
    from stomp_proto.broker import Broker, RelayRoute, TopicRoute

    broker = Broker(relay=["stomp://h:1"], routes=[TopicRoute("/topic/"), TopicRoute("/local/")])
    prefixes = {r.prefix: type(r) for r in broker.router.routes}
    assert prefixes == {"/topic/": RelayRoute, "/queue/": RelayRoute, "/local/": TopicRoute}
    assert broker.relay is not None


def test_the_applications_user_route_uses_the_bridge() -> None:
    from stomp_proto.app import StompApp

    app = StompApp()
    broker = app.broker(tcp=[], ws=[], relay=["stomp://h:1"])
    relay = broker.relay
    assert relay is not None and app.user_route.bridge is not None
    node = Node.__new__(Node)  # the same harness, around this broker's router
    node.relay, node.router = relay, broker.router
    relay.cumulative_acks = False
    node.emitted = []
    node.router.on_emit = node.emitted.extend
    node.relay.wake = lambda index: None
    node.events, node.wires, node.sids = [], {}, 0
    node.up()
    ann = node.session(user="ann")
    anonymous = node.session()
    # ann's RECEIPT waits until messages from other nodes reach her subscription.
    assert node.handle(ann, Subscribe(destination="/user/queue/alerts", id="1", receipt="r")) == []
    posts = node.handle(anonymous, Subscribe(destination="/user/queue/alerts", id="1", receipt="r"))
    assert posts == [(anonymous, Receipt(receipt_id="r"))]
    sub = only(node.system.take(), Subscribe)  # only the named user is watched
    assert sub.destination.endswith(b"ann".hex())
    assert node.system.receipt(sub) == [(ann, Receipt(receipt_id="r"))]
    # A message for ann from another node reaches her subscription here.
    posts = node.system.message(
        sub,
        b"remote",
        headers=[("x-stomp-proto-node", "B"), ("x-stomp-proto-path", "/queue/alerts")],
    )
    assert [(s.sid, m.destination, m.body) for s, m in posts] == [
        ("s1", "/user/queue/alerts", b"remote")
    ]
    assert all(not k.startswith("x-stomp-proto") for k, _ in posts[0][1].headers)
    # One sent here goes to ann's subscription here and to the other nodes.
    posts = node.handle(ann, Send(destination="/user/ann/queue/alerts", body=b"local"))
    assert [m.body for _, m in posts] == [b"local"]
    send = [f for f in node.system.take() if type(f) is Send]
    assert [f.destination for f in send] == [sub.destination]
    # An anonymous session's user is its session id: this node's alone.
    node.handle(anonymous, Send(destination=f"/user/{anonymous.sid}/queue/alerts", body=b"x"))
    assert [f for f in node.system.take() if type(f) is Send] == []
    node.handle(ann, Unsubscribe(id="1"))
    assert [type(f) for f in node.system.take()] == [Unsubscribe, Subscribe]


def test_unconfirmed_sends_past_a_quarter_of_the_backlog_congest_the_relay() -> None:
    # The runtime stops reading SENDs while congested (TCP pushes back on the
    # producers) and reads on once the upstream has confirmed enough.
    node = Node(max_backlog_bytes=8000)
    node.up()
    woken: list[bool] = []
    node.relay.on_room = lambda: woken.append(True)
    s = node.session()
    node.handle(s, Send(destination="/queue/q", body=b"x" * 1000))
    assert not node.relay.congested
    sends = node.pool.take()  # written alone: a receipt of its own
    node.handle(s, Send(destination="/queue/q", body=b"x" * 1000))
    assert node.relay.congested  # 2400 bytes > 8000 / 4
    sends += node.pool.take()
    node.pool.receipt(sends[0])
    assert node.relay.congested and not woken  # 1200 > 8000 / 8
    node.pool.receipt(sends[1])
    assert not node.relay.congested and woken == [True]
    assert node.relay.backlog_bytes == 0


def test_a_failing_availability_listener_does_not_stop_the_relay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = Node()

    def broken(event: RelayAvailability) -> None:
        raise RuntimeError("oops")

    node.relay.listeners.insert(0, broken)
    node.up()
    assert node.relay.available and node.events  # the listeners after it were told
    assert "availability listener" in caplog.text


def test_the_command_line_builds_the_relay(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from stomp_proto.broker.__main__ import options, parser

    args = parser().parse_args(
        [
            "--relay",
            "stomp://u:p@rabbit-1:61613",
            "--relay",
            "stomps://u:p@rabbit-2",
            "--relay-connections",
            "3",
            "--relay-send-timeout",
            "2.5",
        ]
    )
    relay = options(args)["relay"]
    assert isinstance(relay, Relay)
    assert [str(u) for u in relay.upstreams] == [
        "stomp://rabbit-1:61613",
        "stomps://rabbit-2:61613",
    ]
    assert len(relay.connections) == 4 and relay.send_timeout == 2.5
    assert options(parser().parse_args([]))["relay"] is None
    with pytest.raises(SystemExit):
        parser().parse_args(["--relay", "amqp://u:secret@h"])
    err = capsys.readouterr().err
    assert "argument --relay" in err and "expected stomp://" in err and "secret" not in err
    missing = tmp_path / "nowhere.pem"
    bad = parser().parse_args(["--relay", "stomps://h", "--relay-ca", str(missing)])
    with pytest.raises(SystemExit, match="--relay-ca"):
        options(bad)
    with pytest.raises(SystemExit, match="--relay-connections must be at least 1"):
        options(parser().parse_args(["--relay", "stomp://h", "--relay-connections", "0"]))


def test_the_relays_own_topics_are_closed_to_clients() -> None:
    node = Node()
    node.up()
    s = node.session()
    user_topic = "/topic/stomp-proto.user." + b"ann".hex()
    for frame in (
        Subscribe(destination=user_topic, id="1"),
        Send(destination=user_topic, body=b"forged"),
    ):
        posts = node.handle(node.session(), frame)
        assert kinds(posts) == ["ERROR"] and "reserved for the relay" in posts[0][1].message
    # A pattern wide enough to cover them gets nothing of theirs.
    node.handle(s, Subscribe(destination="/topic/**", id="2"))
    wide = only(node.pool.take(), Subscribe)
    assert node.pool.message(wide, b"private", destination=user_topic) == []
    assert len(node.pool.message(wide, b"public", destination="/topic/news")) == 1
