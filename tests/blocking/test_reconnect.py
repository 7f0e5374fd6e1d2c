"""Reconnecting after the broker restarts, and heart-beats with a real broker."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import anyio.from_thread
import pytest

from stomp_proto.blocking import ConnectionLost, ReceivedMessage, ReconnectPolicy, connect

from .conftest import HOST, LOGIN, PASSCODE, BrokerThread
from .test_client import client, dest

FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, jitter=0.0, max_attempts=100)


def test_reconnect_after_a_broker_restart_resubscribes(broker: BrokerThread) -> None:
    queue, topic = dest(), dest("topic")
    arrived: list[bytes] = []
    got_callback = threading.Event()

    def on_message(message: ReceivedMessage) -> None:
        arrived.append(message.body)
        got_callback.set()

    with client(broker, reconnect=FAST) as c:
        sub = c.subscribe(queue, ack="client-individual")
        c.subscribe(topic, callback=on_message)
        c.send(queue, b"before", receipt=True)
        old = sub.get(timeout=5)
        tx = c.begin()
        broker.stop()
        deadline = time.monotonic() + 5
        while c.is_connected and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not c.is_connected
        with pytest.raises(ConnectionLost, match="reconnecting"):
            c.send(queue, b"during the outage")
        broker.start()  # a new broker on the same port
        assert c.wait_connected(10)
        assert c.is_connected
        with pytest.raises(ConnectionLost, match="aborted"):
            tx.send(queue, b"x")
        with pytest.raises(ConnectionLost, match="aborted"):
            tx.commit()
        with pytest.raises(ConnectionLost, match="since been lost"):
            old.ack()  # it came over the old connection
        # Both subscriptions are live again on the new connection.
        with client(broker) as producer:
            producer.send(queue, b"after", receipt=True)
            producer.send(topic, b"news", receipt=True)
        message = sub.get(timeout=5)
        assert message.body == b"after"
        message.ack(receipt=True)
        assert got_callback.wait(5)
        assert arrived == [b"news"]
        assert c.version == "1.2"


def test_reconnect_gives_up_after_max_attempts(broker: BrokerThread) -> None:
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.01, jitter=0.0, max_attempts=3)
    c = client(broker, reconnect=policy)
    sub = c.subscribe(dest())
    broker.stop()
    with pytest.raises(ConnectionLost):
        sub.get(timeout=10)
    with pytest.raises(ConnectionLost):
        c.wait_connected(5)
    c.disconnect()


def test_disconnect_during_an_outage_stops_reconnecting(broker: BrokerThread) -> None:
    c = client(broker, reconnect=ReconnectPolicy(initial_delay=30, jitter=0.0))
    broker.stop()
    deadline = time.monotonic() + 5
    while c.is_connected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not c.wait_connected(0.05)
    started = time.monotonic()
    c.disconnect()  # does not wait for the 30 s back-off
    assert time.monotonic() - started < 2
    assert c.closed


def test_reconnect_policy_delays() -> None:
    policy = ReconnectPolicy(initial_delay=1, max_delay=5, multiplier=2, jitter=0, max_attempts=5)
    assert list(policy.delays()) == [1, 2, 4, 5, 5]
    forever = ReconnectPolicy(max_attempts=None).delays()
    assert len([next(forever) for _ in range(50)]) == 50


@pytest.fixture
def beating_broker() -> Iterator[BrokerThread]:
    with anyio.from_thread.start_blocking_portal() as portal:
        running = BrokerThread(portal, heart_beat=(100, 100), grace=3.0)
        running.start()
        try:
            yield running
        finally:
            running.stop()


def test_real_heart_beats_keep_an_idle_session_alive(beating_broker: BrokerThread) -> None:
    # 100 ms both ways, the broker drops a client silent for 300 ms: staying
    # idle for 0.8 s only works if the reader thread really beats.
    with connect(
        HOST, beating_broker.port, login=LOGIN, passcode=PASSCODE, heart_beat=(100, 100)
    ) as c:
        sub = c.subscribe(dest())
        with pytest.raises(TimeoutError):
            sub.get(timeout=0.8)
        assert c.is_connected
        c.send(sub.destination, b"still here", receipt=True)
        assert sub.get(timeout=5).body == b"still here"


def test_without_heart_beats_the_broker_drops_a_silent_client(
    beating_broker: BrokerThread,
) -> None:
    # The control for the test above: the same broker drops a client that
    # offers beats and sends none (the same client with its clock stopped).
    c = connect(HOST, beating_broker.port, login=LOGIN, passcode=PASSCODE, heart_beat=(100, 100))
    c.clock = lambda: 0.0  # time stands still for the client: no beat ever comes due
    sub = c.subscribe(dest(), receipt=False)
    with pytest.raises(ConnectionLost):
        sub.get(timeout=5)
    c.disconnect()
