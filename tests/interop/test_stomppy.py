"""stomp.py (PyPI, a threaded client nobody here wrote) over TCP, in STOMP 1.0,
1.1 and 1.2, against each broker in ``TARGETS``: queue and topic round trips,
ack modes with redelivery after a disconnect, NACK, transactions, receipts,
heart-beats, escaped header values and binary bodies.

Each test passes against RabbitMQ too, which keeps the tests about STOMP
rather than about one broker; where the brokers may differ (RabbitMQ reorders
a SEND's RECEIPT behind its publisher confirm) the test says so. Destinations
are unique per test.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .brokers import Broker
from .ourbroker import _ourbroker_session, ourbroker, require_peer  # noqa: F401

try:
    import stomp
except ImportError:  # pragma: no cover - depends on the environment
    stomp = None

TARGETS = ["ourbroker", "rabbitmq"]
VERSIONS = ["1.0", "1.1", "1.2"]
WAIT = 10.0  # seconds for anything that should happen
QUIET = 0.7  # seconds of silence that count as "nothing more arrives"

_counter = itertools.count()


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> Broker:
    require_peer(None if stomp is not None else "stomp.py is not installed (pip install stomp-py)")
    result: Broker = request.getfixturevalue(request.param)
    return result


def dest(kind: str = "queue") -> str:
    return f"/{kind}/stomppy-{next(_counter)}-{uuid.uuid4().hex[:8]}"


class Recorder(stomp.ConnectionListener if stomp is not None else object):  # type: ignore[misc]
    """Everything one stomp.py connection received, with waits that time out."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.connected: dict[str, str] | None = None
        self.messages: list[Any] = []
        self.receipts: list[str] = []
        self.errors: list[Any] = []
        self.heartbeats = 0
        self.heartbeat_timeouts = 0
        self.disconnected = False

    def _record(self, action: Callable[[], None]) -> None:
        with self.cond:
            action()
            self.cond.notify_all()

    def on_connected(self, frame: Any) -> None:
        self._record(lambda: setattr(self, "connected", dict(frame.headers)))

    def on_message(self, frame: Any) -> None:
        self._record(lambda: self.messages.append(frame))

    def on_receipt(self, frame: Any) -> None:
        self._record(lambda: self.receipts.append(frame.headers["receipt-id"]))

    def on_error(self, frame: Any) -> None:
        self._record(lambda: self.errors.append(frame))

    def on_heartbeat(self) -> None:
        def bump() -> None:
            self.heartbeats += 1

        self._record(bump)

    def on_heartbeat_timeout(self) -> None:
        def bump() -> None:
            self.heartbeat_timeouts += 1

        self._record(bump)

    def on_disconnected(self) -> None:
        self._record(lambda: setattr(self, "disconnected", True))

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise AssertionError(
                    f"timed out after {timeout} s waiting for {what}; "
                    f"messages={[m.body for m in self.messages]!r} receipts={self.receipts} "
                    f"errors={[(e.headers, e.body) for e in self.errors]!r}"
                )

    def wait_messages(self, count: int, timeout: float = WAIT) -> list[Any]:
        """The next ``count`` messages (taken off the list), once they are there."""
        self.wait(lambda: len(self.messages) >= count, f"{count} MESSAGE(s)", timeout)
        with self.cond:
            taken, self.messages[:] = self.messages[:count], self.messages[count:]
            return taken

    def wait_receipt(self, receipt: str) -> None:
        self.wait(lambda: receipt in self.receipts, f"RECEIPT {receipt}")

    def take(self) -> list[Any]:
        with self.cond:
            taken, self.messages[:] = list(self.messages), []
            return taken


class Peer:
    """One stomp.py connection in one STOMP version, with its Recorder."""

    def __init__(self, target: Broker, version: str, heartbeats: tuple[int, int] = (0, 0)) -> None:
        assert stomp is not None
        self.version = version
        common: dict[str, Any] = {
            "host_and_ports": [(target.host, target.stomp_port)],
            "auto_decode": False,  # bodies as bytes
            "reconnect_attempts_max": 1,
            "timeout": WAIT,
        }
        if version == "1.0":
            self.conn = stomp.Connection10(**common)
        else:
            cls = stomp.Connection11 if version == "1.1" else stomp.Connection12
            self.conn = cls(heartbeats=heartbeats, vhost=target.vhost, **common)
        self.rec = Recorder()
        self.conn.set_listener("recorder", self.rec)
        self.conn.connect(target.login, target.passcode, wait=True)
        self.rec.wait(lambda: self.rec.connected is not None, "CONNECTED")
        self._subs = itertools.count()
        self._receipts = itertools.count()

    def receipt(self) -> str:
        return f"r-{self.version}-{next(self._receipts)}"

    def subscribe(self, destination: str, ack: str = "auto") -> str:
        """SUBSCRIBE with a receipt; returns the subscription id once it is live."""
        sub_id = f"s-{next(self._subs)}"
        receipt = self.receipt()
        self.conn.subscribe(destination, id=sub_id, ack=ack, headers={"receipt": receipt})
        self.rec.wait_receipt(receipt)
        return sub_id

    def send(
        self, destination: str, body: bytes | str, *, receipt: bool = True, **headers: Any
    ) -> str | None:
        rid = self.receipt() if receipt else None
        if rid is not None:
            headers["receipt"] = rid
        self.conn.send(destination, body, headers=headers)
        if rid is not None:
            self.rec.wait_receipt(rid)
        return rid

    def _ack_args(self, message: Any) -> dict[str, Any]:
        h = message.headers
        if self.version == "1.2":
            return {"id": h["ack"]}
        if self.version == "1.1":
            return {"id": h["message-id"], "subscription": h["subscription"]}
        return {"id": h["message-id"]}

    def ack(self, message: Any, *, transaction: str | None = None) -> None:
        receipt = self.receipt()
        self.conn.ack(**self._ack_args(message), transaction=transaction, receipt=receipt)
        self.rec.wait_receipt(receipt)

    def nack(self, message: Any) -> None:
        receipt = self.receipt()
        self.conn.nack(**self._ack_args(message), receipt=receipt)
        self.rec.wait_receipt(receipt)

    def disconnect(self) -> None:
        """DISCONNECT with a receipt; returns once the broker answered it and the
        socket closed."""
        receipt = self.receipt()
        # stomp.py's disconnect(receipt=...) blocks until the socket closes:
        # a thread keeps that wait bounded.
        threading.Thread(
            target=self.conn.disconnect, kwargs={"receipt": receipt}, daemon=True
        ).start()
        self.rec.wait(
            lambda: receipt in self.rec.receipts and self.rec.disconnected,
            f"the DISCONNECT receipt {receipt} and the close",
        )

    def close(self) -> None:
        """At the end of a test: DISCONNECT if still connected, else make sure the
        socket is closed."""
        if self.conn.is_connected() and not self.rec.disconnected:
            with contextlib.suppress(AssertionError):
                self.disconnect()
                return
        with contextlib.suppress(Exception):
            self.conn.transport.disconnect_socket()

    def assert_quiet(self) -> None:
        time.sleep(QUIET)
        extra = self.rec.take()
        assert not extra, f"unexpected messages: {[(m.headers, m.body) for m in extra]}"
        assert not self.rec.errors, [(e.headers, e.body) for e in self.rec.errors]


@pytest.fixture
def peers(target: Broker) -> Iterator[Callable[..., Peer]]:
    """Opens stomp.py connections to ``target``; closes what is left at the end."""
    opened: list[Peer] = []

    def open_peer(version: str, **options: Any) -> Peer:
        peer = Peer(target, version, **options)
        opened.append(peer)
        return peer

    yield open_peer
    for peer in reversed(opened):
        peer.close()


def bodies(messages: list[Any]) -> list[bytes]:
    return [m.body for m in messages]


# -- round trips ---------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_queue_round_trip_and_backlog(peers: Callable[..., Peer], version: str) -> None:
    queue = dest()
    a = peers(version)
    # Sent while nobody subscribes: the queue keeps it.
    a.send(queue, "early")
    a.subscribe(queue)
    a.send(queue, "late", **{"content-type": "text/plain"})
    got = a.rec.wait_messages(2)
    assert bodies(got) == [b"early", b"late"]
    for message in got:
        assert message.cmd == "MESSAGE"
        assert message.headers["destination"] == queue
        assert message.headers["message-id"]
        if version != "1.0":
            assert message.headers["subscription"] == "s-0"
    assert got[1].headers["content-type"] == "text/plain"
    a.disconnect()
    a.assert_quiet()


@pytest.mark.parametrize("version", VERSIONS)
def test_queue_competing_consumers(peers: Callable[..., Peer], version: str) -> None:
    queue = dest()
    a, b, producer = peers(version), peers(version), peers(version)
    a.subscribe(queue)
    b.subscribe(queue)
    sent = [f"job-{i}".encode() for i in range(6)]
    for body in sent:
        producer.send(queue, body)
    deadline = time.monotonic() + WAIT
    while len(a.rec.messages) + len(b.rec.messages) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(QUIET)
    got_a, got_b = bodies(a.rec.take()), bodies(b.rec.take())
    # Each message to exactly one consumer, both consumers served, each in order.
    assert sorted(got_a + got_b) == sorted(sent)
    assert got_a and got_b
    assert got_a == sorted(got_a) and got_b == sorted(got_b)


@pytest.mark.parametrize("version", VERSIONS)
def test_topic_reaches_every_subscriber_and_keeps_nothing(
    peers: Callable[..., Peer], version: str
) -> None:
    topic = dest("topic")
    a, b = peers(version), peers(version)
    a.send(topic, "before anyone listens")  # dropped: topics keep nothing
    a.subscribe(topic)
    b.subscribe(topic)
    a.send(topic, "tick")
    for peer in (a, b):
        got = peer.rec.wait_messages(1)
        assert bodies(got) == [b"tick"]
        assert got[0].headers["destination"] == topic
    a.assert_quiet()
    b.assert_quiet()


@pytest.mark.parametrize("version", VERSIONS)
def test_topic_wildcard_subscription(peers: Callable[..., Peer], version: str) -> None:
    # `*` is one `.`-separated word for RabbitMQ and one segment for ours.
    base = dest("topic")
    a = peers(version)
    a.subscribe(f"{base}.*")
    a.send(f"{base}.mmm", "match")
    a.send(f"{base}.x.y", "two words: no match")
    a.send(f"{base}x.mmm", "other prefix: no match")
    a.send(f"{base}.end", "end")
    got = a.rec.wait_messages(2)
    assert [(m.headers["destination"], m.body) for m in got] == [
        (f"{base}.mmm", b"match"),
        (f"{base}.end", b"end"),
    ]
    a.assert_quiet()


@pytest.mark.parametrize("version", VERSIONS)
def test_binary_body_with_nul(peers: Callable[..., Peer], version: str) -> None:
    queue = dest()
    body = b"\x00bin\x00ary\xff\xfe\n\r\n\x00" + bytes(range(256))
    a = peers(version)
    a.subscribe(queue)
    a.send(queue, body, **{"content-type": "application/octet-stream"})
    (message,) = a.rec.wait_messages(1)
    assert message.body == body
    assert int(message.headers["content-length"]) == len(body)


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_escaped_header_values(peers: Callable[..., Peer], version: str) -> None:
    queue = dest()
    headers = {"x-colon-newline": "a:b\nc", "x-backslash": "back\\slash", "x-utf8": "wörld €"}
    if version == "1.2":
        headers["x-carriage-return"] = "cr\rhere"  # \r is escaped in 1.2 only
    a = peers(version)
    a.subscribe(queue)
    a.send(queue, "escaped", **headers)
    (message,) = a.rec.wait_messages(1)
    for name, value in headers.items():
        assert message.headers.get(name) == value, name


# -- acknowledgements ------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_auto_ack_consumes(peers: Callable[..., Peer], version: str) -> None:
    queue = dest()
    a = peers(version)
    a.subscribe(queue, ack="auto")
    a.send(queue, "once")
    assert bodies(a.rec.wait_messages(1)) == [b"once"]
    a.disconnect()
    b = peers(version)
    b.subscribe(queue)
    b.assert_quiet()  # consumed when delivered: nothing to redeliver


@pytest.mark.parametrize("version", VERSIONS)
def test_client_ack_is_cumulative_and_the_rest_is_redelivered(
    peers: Callable[..., Peer], version: str
) -> None:
    queue = dest()
    a = peers(version)
    a.subscribe(queue, ack="client")
    for body in ("m0", "m1", "m2"):
        a.send(queue, body)
    got = a.rec.wait_messages(3)
    assert bodies(got) == [b"m0", b"m1", b"m2"]
    a.ack(got[1])  # acknowledges m0 and m1
    a.disconnect()
    b = peers(version)
    b.subscribe(queue, ack="client")
    (again,) = b.rec.wait_messages(1)
    assert again.body == b"m2"
    assert again.headers.get("redelivered") == "true"
    b.ack(again)
    b.assert_quiet()


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_client_individual_ack_and_redelivery(peers: Callable[..., Peer], version: str) -> None:
    queue = dest()
    a = peers(version)
    a.subscribe(queue, ack="client-individual")
    for body in ("m0", "m1", "m2"):
        a.send(queue, body)
    got = a.rec.wait_messages(3)
    assert bodies(got) == [b"m0", b"m1", b"m2"]
    if version == "1.2":
        assert all(m.headers.get("ack") for m in got)
    a.ack(got[1])  # m1 only
    a.disconnect()
    b = peers(version)
    b.subscribe(queue, ack="client-individual")
    again = b.rec.wait_messages(2)
    assert bodies(again) == [b"m0", b"m2"]
    assert all(m.headers.get("redelivered") == "true" for m in again)
    for message in again:
        b.ack(message)
    b.assert_quiet()


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_nack_requeues(peers: Callable[..., Peer], version: str) -> None:
    queue = dest()
    a = peers(version)
    a.subscribe(queue, ack="client-individual")
    a.send(queue, "try me")
    (first,) = a.rec.wait_messages(1)
    assert first.body == b"try me"
    a.nack(first)
    (again,) = a.rec.wait_messages(1)
    assert again.body == b"try me"
    assert again.headers.get("redelivered") == "true"
    a.ack(again)
    a.assert_quiet()
    a.disconnect()
    b = peers(version)
    b.subscribe(queue, ack="client-individual")
    b.assert_quiet()


# -- transactions ----------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_transaction_commit_and_abort(peers: Callable[..., Peer], version: str) -> None:
    queue = dest()
    consumer, producer = peers(version), peers(version)
    consumer.subscribe(queue)

    # No receipts on the transactional SENDs: RabbitMQ answers them only at COMMIT.
    tx = producer.conn.begin()
    producer.send(queue, "t1", transaction=tx, receipt=False)
    producer.send(queue, "t2", transaction=tx, receipt=False)
    consumer.assert_quiet()  # held until COMMIT
    receipt = producer.receipt()
    producer.conn.commit(tx, headers={"receipt": receipt})
    producer.rec.wait_receipt(receipt)
    assert bodies(consumer.rec.wait_messages(2)) == [b"t1", b"t2"]

    tx = producer.conn.begin()
    producer.send(queue, "dropped", transaction=tx, receipt=False)
    receipt = producer.receipt()
    producer.conn.abort(tx, headers={"receipt": receipt})
    producer.rec.wait_receipt(receipt)
    producer.send(queue, "after abort")
    assert bodies(consumer.rec.wait_messages(1)) == [b"after abort"]
    consumer.assert_quiet()
    assert not producer.rec.errors


@pytest.mark.parametrize("version", VERSIONS)
def test_transactional_ack(peers: Callable[..., Peer], version: str) -> None:
    queue = dest()
    ack_mode = "client" if version == "1.0" else "client-individual"
    a = peers(version)
    a.subscribe(queue, ack=ack_mode)
    a.send(queue, "kept")
    a.send(queue, "acked")
    kept, acked = a.rec.wait_messages(2)
    # An ACK in an aborted transaction never happened...
    tx = a.conn.begin()
    a.ack(kept if ack_mode == "client-individual" else acked, transaction=tx)
    receipt = a.receipt()
    a.conn.abort(tx, headers={"receipt": receipt})
    a.rec.wait_receipt(receipt)
    if ack_mode == "client-individual":
        # ...one in a committed transaction did.
        tx = a.conn.begin()
        a.ack(acked, transaction=tx)
        receipt = a.receipt()
        a.conn.commit(tx, headers={"receipt": receipt})
        a.rec.wait_receipt(receipt)
    a.disconnect()
    b = peers(version)
    b.subscribe(queue, ack=ack_mode)
    expected = [b"kept"] if ack_mode == "client-individual" else [b"kept", b"acked"]
    again = b.rec.wait_messages(len(expected))
    assert bodies(again) == expected
    assert all(m.headers.get("redelivered") == "true" for m in again)
    b.ack(again[-1])
    b.assert_quiet()


# -- receipts and heart-beats ----------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_receipts_for_every_frame(peers: Callable[..., Peer], version: str, target: Broker) -> None:
    queue = dest()
    a = peers(version)
    asked = []

    def ask() -> dict[str, str]:
        asked.append(a.receipt())
        return {"receipt": asked[-1]}

    a.conn.subscribe(queue, id="s-r", ack="client", headers=ask())
    for i in range(3):
        a.conn.send(queue, f"m{i}", headers=ask())
    a.rec.wait_messages(3)
    tx = a.conn.begin(headers=ask())
    a.conn.send(queue, "in tx", headers={**ask(), "transaction": tx})
    a.conn.commit(tx, headers=ask())
    (last,) = a.rec.wait_messages(1)
    a.conn.ack(**a._ack_args(last), receipt=ask()["receipt"])
    a.conn.unsubscribe(id="s-r", headers=ask())
    a.rec.wait(lambda: set(asked) <= set(a.rec.receipts), f"receipts {asked}")
    received = [r for r in a.rec.receipts if r in asked]
    assert sorted(received) == sorted(asked)
    assert len(a.rec.receipts) == len(set(a.rec.receipts)), "a receipt came twice"
    if target.name != "rabbitmq":  # RabbitMQ holds a SEND's RECEIPT for its confirm
        assert received == asked, "receipts out of order"
    a.disconnect()
    assert not a.rec.errors


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_heart_beats_keep_an_idle_connection(peers: Callable[..., Peer], version: str) -> None:
    queue = dest()
    a = peers(version, heartbeats=(1000, 1000))
    assert a.rec.connected is not None
    cx, cy = (int(v) for v in a.rec.connected["heart-beat"].split(","))
    assert cx > 0 and cy > 0, a.rec.connected  # both directions negotiated
    assert cx <= 1000, "the broker must beat at least as often as we asked"
    time.sleep(3.5)  # idle: only heart-beats cross the connection
    assert a.rec.heartbeats >= 2, f"{a.rec.heartbeats} heart-beats from the broker in 3.5 s"
    assert a.rec.heartbeat_timeouts == 0
    assert not a.rec.disconnected
    assert a.conn.is_connected()
    a.subscribe(queue)
    a.send(queue, "still here")
    assert bodies(a.rec.wait_messages(1)) == [b"still here"]
    a.disconnect()
