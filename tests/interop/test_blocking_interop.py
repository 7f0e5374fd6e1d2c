"""The blocking client (:mod:`stomp_proto.blocking`) against real brokers:
RabbitMQ 3.10 and ActiveMQ 5.17 (``broker`` runs a test against both).

The same basics as the AnyIO client's interop tests, without an event loop:
every version, topics, both client ack modes, NACK, transactions, large
bodies, heart-beats, TLS, a refused login and a reconnect after a restart.
Destinations are unique per test.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from typing import Any

import pytest

from stomp_proto.blocking import (
    Client,
    ConnectionLost,
    ReceivedMessage,
    ReconnectPolicy,
    StompError,
    connect,
)

from .brokers import Broker, client_tls_context
from .ourbroker import _ourbroker_session, ourbroker, require_peer  # noqa: F401

pytestmark = pytest.mark.interop
_counter = itertools.count()


def dest(kind: str = "queue") -> str:
    return f"/{kind}/spb-{next(_counter)}-{uuid.uuid4().hex[:8]}"


def client(broker: Broker, **options: object) -> Client:
    options.setdefault("login", broker.login)
    options.setdefault("passcode", broker.passcode)
    options.setdefault("vhost", broker.vhost)
    options.setdefault("timeout", 15)
    options.setdefault("receipt_timeout", 15)
    return connect(broker.host, broker.stomp_port, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_queue_round_trip_in_every_version(broker: Broker, version: str) -> None:
    queue = dest()
    headers = {"x-plain": "value"} if version == "1.0" else {"x-escaped": "a:b\\c"}
    with client(broker, versions=(version,)) as c:
        assert c.version == version
        sub = c.subscribe(queue)
        c.send(queue, b"bin\x00ary\x00", headers=headers, receipt=True)
        message = sub.get(timeout=10)
        assert message.body == b"bin\x00ary\x00"
        assert message.destination == queue
        name, value = next(iter(headers.items()))
        assert message.header(name) == value


def test_topic_reaches_every_subscriber_by_iterator_and_callback(broker: Broker) -> None:
    topic = dest("topic")
    got: list[str] = []
    arrived = threading.Event()

    def on_message(message: ReceivedMessage) -> None:
        got.append(message.text())
        arrived.set()

    with client(broker) as a, client(broker) as b:
        sub_a = a.subscribe(topic)
        b.subscribe(topic, callback=on_message)
        a.send(topic, "tick", receipt=True)
        assert sub_a.get(timeout=10).text() == "tick"
        assert arrived.wait(10)
    assert got == ["tick"]


def test_client_individual_ack_and_redelivery(broker: Broker) -> None:
    queue = dest()
    with client(broker) as c:
        sub = c.subscribe(queue, ack="client-individual")
        for i in range(3):
            c.send(queue, f"m{i}", receipt=True)
        got = [sub.get(timeout=10) for _ in range(3)]
        assert [m.text() for m in got] == ["m0", "m1", "m2"]
        got[1].ack(receipt=True)
    # m0 and m2 were never acknowledged: the broker redelivers them.
    with client(broker) as c:
        sub = c.subscribe(queue, ack="client-individual")
        again = sorted(sub.get(timeout=10).text() for _ in range(2))
        assert again == ["m0", "m2"]
        with pytest.raises(TimeoutError):
            sub.get(timeout=0.5)


def test_client_ack_is_cumulative(broker: Broker) -> None:
    queue = dest()
    with client(broker) as c:
        sub = c.subscribe(queue, ack="client")
        for i in range(3):
            c.send(queue, f"m{i}", receipt=True)
        got = [sub.get(timeout=10) for _ in range(3)]
        got[1].ack(receipt=True)  # settles m0 and m1
    with client(broker) as c:
        sub = c.subscribe(queue, ack="client")
        assert sub.get(timeout=10).text() == "m2"


def test_nack_requeues_on_rabbitmq(rabbitmq: Broker) -> None:
    queue = dest()
    with client(rabbitmq) as c:
        sub = c.subscribe(queue, ack="client-individual")
        c.send(queue, "again", receipt=True)
        sub.get(timeout=10).nack()
        second = sub.get(timeout=10)
        assert second.text() == "again"
        assert second.header("redelivered") == "true"
        second.ack(receipt=True)


def test_transactions_commit_and_abort(broker: Broker) -> None:
    queue = dest()
    with client(broker) as c:
        sub = c.subscribe(queue)
        with pytest.raises(RuntimeError), c.transaction() as tx:
            tx.send(queue, "dropped")
            raise RuntimeError("abort it")
        with c.transaction() as tx:
            tx.send(queue, "one")
            tx.send(queue, "two")
        assert [sub.get(timeout=10).text() for _ in range(2)] == ["one", "two"]
        c.send(queue, "three", receipt=True)
        assert sub.get(timeout=10).text() == "three"  # "dropped" never came


def test_large_message(broker: Broker) -> None:
    queue = dest()
    body = bytes(range(256)) * 4096  # 1 MiB with NULs
    with client(broker) as c:
        sub = c.subscribe(queue)
        c.send(queue, body, receipt=True)
        assert sub.get(timeout=20).body == body


def test_back_pressure_with_a_small_buffer(broker: Broker) -> None:
    queue = dest()
    with client(broker, buffer=2) as c:
        sub = c.subscribe(queue)
        for i in range(50):
            c.send(queue, f"{i}")
        time.sleep(0.3)  # the reader fills the buffer and stops reading
        assert sub.buffered <= 2
        assert [sub.get(timeout=10).text() for _ in range(50)] == [str(i) for i in range(50)]


def test_sends_from_several_threads(broker: Broker) -> None:
    queue = dest()
    with client(broker) as c:
        sub = c.subscribe(queue)
        errors: list[BaseException] = []

        def produce(n: int) -> None:
            try:
                for i in range(20):
                    c.send(queue, f"{n}:{i}", receipt=i == 19)
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
        for w in workers:
            w.start()
        got = [sub.get(timeout=10).text() for _ in range(80)]
        for w in workers:
            w.join()
    assert errors == []
    for n in range(4):
        assert [int(t.split(":")[1]) for t in got if t.startswith(f"{n}:")] == list(range(20))


def test_heartbeats_both_ways_keep_an_idle_connection(broker: Broker) -> None:
    queue = dest()
    with client(broker, heart_beat=(1000, 1000)) as c:
        assert c.connected is not None
        assert c.connected.heart_beat == (1000, 1000)  # what the broker offered back
        to_server, to_client = c._link.conn.heartbeat_intervals  # type: ignore[union-attr]
        assert to_server > 0 and to_client > 0
        sub = c.subscribe(queue)
        with pytest.raises(TimeoutError):  # idle for 2.5 intervals: only heart-beats cross
            sub.get(timeout=2.5 * max(to_server, to_client) / 1000)
        assert c.is_connected
        c.send(queue, "still here", receipt=True)
        assert sub.get(timeout=10).text() == "still here"


def test_refused_login_on_rabbitmq(rabbitmq: Broker) -> None:
    # (ActiveMQ as the fixture runs it has no authentication plugin.)
    with pytest.raises(StompError) as info:
        client(rabbitmq, passcode="not-the-passcode")
    assert info.value.error.message


def test_tls_against_rabbitmq(rabbitmq_tls: Broker) -> None:
    assert rabbitmq_tls.tls_port is not None and rabbitmq_tls.ca_file is not None
    queue = dest()
    with connect(
        rabbitmq_tls.host,
        rabbitmq_tls.tls_port,
        ssl=client_tls_context(rabbitmq_tls.ca_file),
        server_hostname="localhost",
        login=rabbitmq_tls.login,
        passcode=rabbitmq_tls.passcode,
        vhost=rabbitmq_tls.vhost,
        heart_beat=(1000, 1000),
    ) as c:
        sub = c.subscribe(queue)
        c.send(queue, b"\x00secret", receipt=True)
        assert sub.get(timeout=10).body == b"\x00secret"
        big = bytes(range(256)) * 1024  # many TLS records
        c.send(queue, big, receipt=True)
        assert sub.get(timeout=10).body == big


def test_tls_verifies_the_certificate_by_default(rabbitmq_tls: Broker) -> None:
    assert rabbitmq_tls.tls_port is not None
    with pytest.raises(OSError):
        connect(rabbitmq_tls.host, rabbitmq_tls.tls_port, ssl=True, timeout=10)


def test_reconnect_after_a_broker_restart(broker: Broker) -> None:
    queue = dest()
    policy = ReconnectPolicy(initial_delay=0.2, max_delay=1.0, max_attempts=120, jitter=0.1)
    with client(broker, reconnect=policy, heart_beat=(0, 0)) as c:
        sub = c.subscribe(queue)
        c.send(queue, "before", receipt=True)
        before = sub.get(timeout=10)
        assert before.text() == "before"
        broker.restart()
        # The reader may not have noticed yet; wait for the new connection.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if c.wait_connected(1) and c._epoch > 1:
                break
        assert c._epoch > 1
        c.send(queue, "after", receipt=True)  # re-subscribed: the iterator goes on
        assert sub.get(timeout=10).text() == "after"
        with pytest.raises(ConnectionLost, match="connection that has since been lost"):
            before.ack()


def test_websocket_against_rabbitmq_web_stomp(rabbitmq: Broker) -> None:
    queue = dest()
    with connect(
        rabbitmq.ws_url,  # type: ignore[attr-defined]
        login=rabbitmq.login,
        passcode=rabbitmq.passcode,
        vhost=rabbitmq.vhost,
        heart_beat=(1000, 1000),
    ) as c:
        assert c.version == "1.2"
        sub = c.subscribe(queue, ack="client-individual")
        big = "€uro " * 40_000  # 240 KB in one WebSocket message each way
        c.send(queue, "über websocket", receipt=True)
        c.send(queue, big, receipt=True)
        first = sub.get(timeout=10)
        assert first.text() == "über websocket"
        first.ack(receipt=True)
        assert sub.get(timeout=10).text() == big
        # (Binary bodies need RabbitMQ's web_stomp.ws_frame = binary: by default
        # it sends every MESSAGE as a text frame, which must be valid UTF-8.)


@pytest.fixture(params=["ourbroker", "rabbitmq"])
def shared(request: pytest.FixtureRequest) -> Broker:
    """Our broker (a subprocess) and RabbitMQ, for the stomp.py test."""
    result: Broker = request.getfixturevalue(request.param)
    return result


def test_stomppy_and_the_blocking_client_share_a_queue(shared: Broker) -> None:
    # What a migration looks like halfway: one side still on stomp.py.
    try:
        import stomp  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - depends on the environment
        require_peer("stomp.py is not installed (pip install stomp-py)")
        raise
    to_ours, to_theirs = dest(), dest()
    got: list[tuple[str, str]] = []
    arrived, subscribed = threading.Event(), threading.Event()

    class Listener(stomp.ConnectionListener):  # type: ignore[misc]
        def on_message(self, frame: Any) -> None:
            got.append((frame.headers.get("x-from", ""), frame.body))
            arrived.set()

        def on_receipt(self, frame: Any) -> None:
            subscribed.set()

    theirs = stomp.Connection12([(shared.host, shared.stomp_port)], vhost=shared.vhost)
    theirs.set_listener("", Listener())
    theirs.connect(shared.login, shared.passcode, wait=True)
    try:
        theirs.subscribe(to_theirs, id="1", ack="auto", receipt="sub-1")
        assert subscribed.wait(10)
        with client(shared) as ours:
            sub = ours.subscribe(to_ours, ack="client-individual")
            theirs.send(to_ours, "héllo from stomp.py", headers={"x-from": "stomp.py"})
            message = sub.get(timeout=10)
            assert message.text() == "héllo from stomp.py"
            assert message.header("x-from") == "stomp.py"
            message.ack(receipt=True)
            ours.send(to_theirs, "héllo from stomp-proto", headers={"x-from": "ours"}, receipt=True)
            assert arrived.wait(10)
        assert got == [("ours", "héllo from stomp-proto")]
    finally:
        theirs.disconnect()
