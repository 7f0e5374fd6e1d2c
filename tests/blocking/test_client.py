"""The blocking client against our broker: the session, messages, acks,
receipts, transactions, back-pressure, threads and shutdown."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid

import pytest

from stomp_proto import LocalProtocolError, Receipt
from stomp_proto.blocking import (
    Client,
    ConnectionLost,
    ReceivedMessage,
    StompError,
    connect,
)

from .conftest import HOST, LOGIN, PASSCODE, BrokerThread

_counter = itertools.count()


def dest(kind: str = "queue") -> str:
    return f"/{kind}/b-{next(_counter)}-{uuid.uuid4().hex[:6]}"


def client(broker: BrokerThread, **options: object) -> Client:
    options.setdefault("login", LOGIN)
    options.setdefault("passcode", PASSCODE)
    options.setdefault("timeout", 5)
    options.setdefault("receipt_timeout", 5)
    return connect(HOST, broker.port, **options)  # type: ignore[arg-type]


# -- connecting ----------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_round_trip_in_every_version(broker: BrokerThread, version: str) -> None:
    queue = dest()
    with client(broker, versions=(version,)) as c:
        assert c.version == version
        assert c.is_connected
        sub = c.subscribe(queue)
        receipt = c.send(queue, b"bin\x00ary", headers={"x-one": "1"}, receipt=True)
        assert isinstance(receipt, Receipt)
        message = sub.get(timeout=5)
        assert message.body == b"bin\x00ary"
        assert message.destination == queue
        assert message.header("x-one") == "1"
        assert message.header("x-absent") is None
        assert message.header("x-absent", "d") == "d"
        assert message.subscription is sub
    assert c.closed
    assert not c.is_connected


def test_login_refused_raises_stomp_error_with_the_frame(broker: BrokerThread) -> None:
    with pytest.raises(StompError) as info:
        client(broker, passcode="wrong")
    assert info.value.error.message is not None
    assert "login" in str(info.value).lower() or "refused" in str(info.value).lower()


def test_connection_refused_is_an_os_error() -> None:
    import socket

    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    with pytest.raises(OSError):
        connect(HOST, port, timeout=2)


def test_no_connected_within_the_timeout_is_a_timeout_error() -> None:
    import socket

    server = socket.socket()
    server.bind((HOST, 0))
    server.listen()
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            connect(HOST, server.getsockname()[1], timeout=0.3)
        assert time.monotonic() - started < 3
    finally:
        server.close()


def test_str_body_json_and_pair_headers(broker: BrokerThread) -> None:
    queue = dest()
    with client(broker) as c:
        sub = c.subscribe(queue)
        c.send(
            queue, json.dumps({"a": "é"}, ensure_ascii=False), headers=[("x-r", "1"), ("x-r", "2")]
        )
        c.send(queue, b"{}", content_type="application/json")
        first, second = sub.get(timeout=5), sub.get(timeout=5)
    assert first.json() == {"a": "é"}
    assert first.text() == '{"a": "é"}'
    assert first.content_type == "text/plain;charset=utf-8"
    assert [v for k, v in first.headers if k == "x-r"][:1] == ["1"]
    assert second.content_type == "application/json"
    assert second.json() == {}
    assert repr(first).startswith("<ReceivedMessage ")


# -- iterators and callbacks -------------------------------------------------------


def test_iterator_yields_in_order_and_ends_on_unsubscribe(broker: BrokerThread) -> None:
    queue = dest()
    with client(broker) as c:
        sub = c.subscribe(queue)
        for i in range(5):
            c.send(queue, f"m{i}")
        c.send(queue, b"last", receipt=True)
        got = []
        for message in sub:
            got.append(message.text())
            if message.body == b"last":
                sub.unsubscribe()
        assert got == ["m0", "m1", "m2", "m3", "m4", "last"]
        assert not sub.active
        with pytest.raises(StopIteration):
            sub.get(timeout=0)


def test_get_times_out(broker: BrokerThread) -> None:
    with client(broker) as c:
        sub = c.subscribe(dest())
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            sub.get(timeout=0.1)
        assert time.monotonic() - started < 2


def test_iterator_ends_normally_on_disconnect(broker: BrokerThread) -> None:
    c = client(broker)
    sub = c.subscribe(dest())
    done = threading.Event()
    result: list[object] = []

    def consume() -> None:
        result.extend(sub)  # blocks until the client is closed
        done.set()

    t = threading.Thread(target=consume)
    t.start()
    c.disconnect()
    assert done.wait(5)
    t.join()
    assert result == []


def test_callback_runs_on_the_reader_thread_and_may_send(broker: BrokerThread) -> None:
    queue, replies = dest(), dest()
    seen: list[tuple[str, str]] = []
    done = threading.Event()
    with client(broker) as c:

        def on_message(message: ReceivedMessage) -> None:
            seen.append((message.text(), threading.current_thread().name))
            c.send(replies, message.body.upper())  # sending from a callback is fine

        c.subscribe(queue, callback=on_message)
        reply_sub = c.subscribe(replies)
        c.send(queue, "ping")
        reply = reply_sub.get(timeout=5)
        done.set()
    assert reply.body == b"PING"
    assert seen[0][0] == "ping"
    assert seen[0][1].startswith("stomp-proto reader")


def test_a_callback_that_raises_is_logged_and_delivery_goes_on(
    broker: BrokerThread, caplog: pytest.LogCaptureFixture
) -> None:
    queue = dest()
    got: list[bytes] = []
    arrived = threading.Event()

    def on_message(message: ReceivedMessage) -> None:
        if message.body == b"bad":
            raise ValueError("boom")
        got.append(message.body)
        arrived.set()

    with client(broker) as c:
        sub = c.subscribe(queue, callback=on_message)
        c.send(queue, b"bad")
        c.send(queue, b"good")
        assert arrived.wait(5)
        with pytest.raises(RuntimeError, match="callback"):
            sub.get(timeout=0)
    assert got == [b"good"]
    assert "the callback raised" in caplog.text


def test_a_callback_cannot_wait_for_a_receipt(broker: BrokerThread) -> None:
    queue = dest()
    errors: list[BaseException] = []
    done = threading.Event()

    def on_message(message: ReceivedMessage) -> None:
        try:
            c.send(queue + "-x", b"x", receipt=True)
        except RuntimeError as exc:
            errors.append(exc)
        done.set()

    with client(broker) as c:
        c.subscribe(queue, callback=on_message)
        c.send(queue, b"go")
        assert done.wait(5)
    assert "receipt" in str(errors[0])


# -- acknowledgement -----------------------------------------------------------------


def test_nack_redelivers_and_ack_settles(broker: BrokerThread) -> None:
    queue = dest()
    with client(broker) as c:
        sub = c.subscribe(queue, ack="client-individual")
        c.send(queue, b"once", receipt=True)
        first = sub.get(timeout=5)
        assert first.header("redelivered") in (None, "false")
        first.nack()
        again = sub.get(timeout=5)
        assert again.body == b"once"
        assert again.header("redelivered") == "true"
        again.ack(receipt=True)
        with pytest.raises(TimeoutError):
            sub.get(timeout=0.2)
    assert broker.stats()["queued"] == 0


def test_unacked_messages_go_back_to_the_queue_when_the_client_leaves(
    broker: BrokerThread,
) -> None:
    queue = dest()
    with client(broker) as c:
        sub = c.subscribe(queue, ack="client")
        c.send(queue, b"keep me", receipt=True)
        assert sub.get(timeout=5).body == b"keep me"  # never acked
    with client(broker) as c:
        sub = c.subscribe(queue, ack="client")
        message = sub.get(timeout=5)
        assert message.body == b"keep me"
        message.ack()


def test_ack_on_an_auto_subscription_is_refused(broker: BrokerThread) -> None:
    queue = dest()
    with client(broker) as c:
        sub = c.subscribe(queue)
        c.send(queue, b"x")
        message = sub.get(timeout=5)
        with pytest.raises(ValueError, match="ack:auto"):
            message.ack()
        with pytest.raises(ValueError, match="ack must be"):
            c.subscribe(queue, ack="client_individual")  # type: ignore[arg-type]


def test_nack_does_not_exist_in_stomp_1_0(broker: BrokerThread) -> None:
    queue = dest()
    with client(broker, versions=("1.0",)) as c:
        sub = c.subscribe(queue, ack="client")
        c.send(queue, b"x")
        message = sub.get(timeout=5)
        with pytest.raises(LocalProtocolError, match="NACK"):
            message.nack()
        message.ack(receipt=True)  # the refused NACK did not end the connection


# -- receipts and errors -------------------------------------------------------------


def test_receipt_ids_and_receipt_for(broker: BrokerThread) -> None:
    from stomp_proto import Begin

    with client(broker) as c:
        receipt = c.send(dest(), b"x", receipt="mine-1")
        assert receipt is not None and receipt.receipt_id == "mine-1"
        assert c.send(dest(), b"x") is None
        assert c.receipt_for(Begin(transaction="t-9")).receipt_id


def test_an_error_frame_fails_the_session_with_stomp_error(broker: BrokerThread) -> None:
    with client(broker) as c:
        sub = c.subscribe(dest())
        with pytest.raises(StompError) as info:
            c.send("/nowhere/at-all", b"x", receipt=True)  # our broker refuses the prefix
        assert info.value.error.message
        with pytest.raises(StompError):
            sub.get(timeout=5)
        with pytest.raises(StompError):
            c.send(dest(), b"x")
        assert c.closed


def test_sending_after_disconnect_raises_connection_lost(broker: BrokerThread) -> None:
    c = client(broker)
    c.disconnect()
    c.disconnect()  # twice is fine
    with pytest.raises(ConnectionLost):
        c.send(dest(), b"x")
    with pytest.raises(ConnectionLost):
        c.wait_connected(0)
    assert "closed" in repr(c)


# -- transactions -----------------------------------------------------------------------


def test_transaction_commits_on_success(broker: BrokerThread) -> None:
    queue = dest()
    with client(broker) as c:
        sub = c.subscribe(queue)
        with c.transaction() as tx:
            tx.send(queue, b"a")
            tx.send(queue, b"b")
            with pytest.raises(TimeoutError):
                sub.get(timeout=0.2)  # held until COMMIT
        assert tx.done
        assert [sub.get(timeout=5).body, sub.get(timeout=5).body] == [b"a", b"b"]
        with pytest.raises(RuntimeError, match="already finished"):
            tx.send(queue, b"late")


def test_transaction_aborts_on_an_exception(broker: BrokerThread) -> None:
    queue = dest()
    with client(broker) as c:
        sub = c.subscribe(queue)
        with pytest.raises(KeyError), c.transaction() as tx:
            tx.send(queue, b"never")
            raise KeyError("fail")
        assert tx.done
        c.send(queue, b"after", receipt=True)
        assert sub.get(timeout=5).body == b"after"


def test_acks_inside_a_transaction_apply_at_commit(broker: BrokerThread) -> None:
    queue = dest()
    with client(broker) as c:
        sub = c.subscribe(queue, ack="client-individual")
        c.send(queue, b"job", receipt=True)
        message = sub.get(timeout=5)
        tx = c.begin()
        tx.ack(message)
        tx.abort()  # the ACK is undone: the message is still unacknowledged
        tx.abort()  # idempotent
    with client(broker) as c:  # ... and so it comes back
        sub = c.subscribe(queue, ack="client-individual")
        message = sub.get(timeout=5)
        assert message.body == b"job"
        with c.transaction() as tx:
            tx.ack(message)
    assert broker.stats()["queued"] == 0


# -- back-pressure -----------------------------------------------------------------------


def test_back_pressure_bounds_the_buffer_and_loses_nothing(broker: BrokerThread) -> None:
    queue, other = dest(), dest()
    total = 60
    with client(broker, buffer=5) as consumer, client(broker) as producer:
        sub = consumer.subscribe(queue)
        side = consumer.subscribe(other, buffer=50)
        for i in range(total):
            producer.send(queue, f"{i}")
        producer.send(queue, b"end", receipt=True)
        # The consumer reads nothing for a while: the buffer stays at its bound.
        deadline = time.monotonic() + 5
        while sub.buffered < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert sub.buffered == 5
        got = [sub.get(timeout=5).text() for _ in range(total)]
        assert got == [str(i) for i in range(total)]
        assert sub.get(timeout=5).body == b"end"
        producer.send(other, b"side", receipt=True)
        assert side.get(timeout=5).body == b"side"


# -- threads and shutdown ------------------------------------------------------------------


def test_sends_from_many_threads(broker: BrokerThread) -> None:
    queue = dest()
    threads, per_thread = 8, 50
    with client(broker) as c:
        sub = c.subscribe(queue)

        errors: list[BaseException] = []

        def produce(n: int) -> None:
            try:
                for i in range(per_thread):
                    c.send(queue, f"{n}:{i}", receipt=i % 10 == 9)
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=produce, args=(n,)) for n in range(threads)]
        for w in workers:
            w.start()
        # Consume meanwhile: receipts come over the same connection as the
        # messages, so they wait while this subscription's buffer is full.
        got = [sub.get(timeout=5).text() for _ in range(threads * per_thread)]
        for w in workers:
            w.join()
        assert errors == []
    by_thread: dict[str, list[int]] = {}
    for text in got:
        n, i = text.split(":")
        by_thread.setdefault(n, []).append(int(i))
    assert all(v == list(range(per_thread)) for v in by_thread.values())
    assert len(by_thread) == threads


def test_disconnect_is_graceful_and_joins_the_reader(broker: BrokerThread) -> None:
    from .conftest import reader_threads

    before = len(reader_threads())
    c = client(broker)
    assert len(reader_threads()) == before + 1
    started = time.monotonic()
    c.disconnect()
    assert time.monotonic() - started < 2  # the RECEIPT came; no timeout was waited
    assert len(reader_threads()) == before
    assert broker.stats()["sessions"] == 0 or _eventually(lambda: broker.stats()["sessions"] == 0)


def _eventually(check: object, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_the_server_going_away_ends_iterators_with_connection_lost(broker: BrokerThread) -> None:
    c = client(broker)
    sub = c.subscribe(dest())
    broker.stop()
    with pytest.raises(ConnectionLost):
        sub.get(timeout=10)
    assert c.closed
    with pytest.raises(ConnectionLost):
        c.send(dest(), b"x")
    c.disconnect()
