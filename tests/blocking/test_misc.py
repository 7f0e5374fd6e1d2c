"""The blocking client's edges: what it imports, its types, misuse, reprs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from stomp_proto import LocalProtocolError
from stomp_proto.blocking import Client, ConnectionLost, ReceivedMessage

from .conftest import BrokerThread
from .test_client import client, dest


def test_importing_it_needs_no_extra() -> None:
    code = (
        "import sys, stomp_proto.blocking\n"
        "bad = {'anyio', 'asyncio', 'trio', 'wsproto'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_mypy_strict_catches_misspelled_options(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    source = tmp_path / "user_code.py"
    source.write_text(
        textwrap.dedent(
            """\
            from typing_extensions import assert_type

            from stomp_proto import Receipt, blocking

            def main() -> None:
                c = blocking.connect("localhost", 61613, pascode="x")  # line 6
                c = blocking.connect("localhost", 61613, hearbeat=(1, 1))  # line 7
                c.subscribe("/queue/a", ack="client_individual")  # line 8
                c.send("/queue/a", 42)  # line 9
                c.send("/queue/a", "ok", headers={"a": 1})  # line 10
                sub = c.subscribe("/queue/a", ack="client-individual")
                m = sub.get(timeout=1.0)
                m.ack(receipt=True)
                c.send("/queue/a", b"ok", headers=[("a", "b")], receipt="r-1")
                assert_type(c.send("/queue/a", b"ok"), Receipt | None)
                assert_type(m, blocking.ReceivedMessage)
                assert_type(m.header("x"), str | None)
                assert_type(sub.ack_mode, blocking.AckMode)
                with c.transaction() as tx:
                    assert_type(tx, blocking.Transaction)
                for message in sub:
                    assert_type(message, blocking.ReceivedMessage)
            """
        )
    )
    out, _, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(source)]
    )
    assert status == 1, out
    lines = {int(line.split(":")[1]) for line in out.splitlines() if ": error:" in line}
    assert lines == {6, 7, 8, 9, 10}, out


def test_a_second_ack_is_refused_and_the_connection_goes_on(broker: BrokerThread) -> None:
    queue = dest()
    with client(broker) as c:
        sub = c.subscribe(queue, ack="client-individual")
        c.send(queue, b"x")
        message = sub.get(timeout=5)
        message.ack()
        with pytest.raises(LocalProtocolError):
            message.ack()  # the core refuses a second ACK, before anything is sent
        c.send(queue, b"still usable", receipt=True)
        assert sub.get(timeout=5).body == b"still usable"
        assert c.is_connected


def test_a_local_protocol_error_on_the_wire_path_ends_the_connection(
    broker: BrokerThread,
) -> None:
    from stomp_proto import Commit

    with client(broker) as c:
        sub = c.subscribe(dest())
        with pytest.raises(LocalProtocolError, match="transaction"):
            c.receipt_for(Commit(transaction="never-begun"))  # no pre-check here
        with pytest.raises(ConnectionLost):
            sub.get(timeout=5)
        assert c.closed


def test_subscription_as_a_context_manager_unsubscribes(broker: BrokerThread) -> None:
    queue = dest()
    with client(broker) as c:
        with c.subscribe(queue, ack="client") as sub:
            assert sub.active
            assert repr(sub) == f"<Subscription {sub.id!r} to {queue!r} ack=client>"
        assert not sub.active
        with pytest.raises(StopIteration):
            sub.get()
        sub.unsubscribe()  # twice is fine
        c.send(queue, b"nobody listens", receipt=True)
        with c.subscribe(queue) as again:
            assert again.get(timeout=5).body == b"nobody listens"


def test_disconnect_from_a_callback(broker: BrokerThread) -> None:
    queue = dest()
    done = threading.Event()
    c = client(broker)

    def on_message(message: ReceivedMessage) -> None:
        c.disconnect()
        done.set()

    c.subscribe(queue, callback=on_message)
    c.send(queue, b"stop")
    assert done.wait(5)
    assert c.closed
    with pytest.raises(ConnectionLost):
        c.send(queue, b"x")


def test_transaction_objects_and_reprs(broker: BrokerThread) -> None:
    queue = dest()
    with client(broker) as c:
        assert repr(c).endswith("connected>")
        sub = c.subscribe(queue, ack="client-individual", id="mine")
        assert sub.id == "mine" and sub.ack_mode == "client-individual"
        with pytest.raises(ValueError, match="already in use"):
            c.subscribe(queue, id="mine")
        c.send(queue, b"a", receipt=True)
        message = sub.get(timeout=5)
        tx = c.transaction()
        assert repr(tx) == f"<Transaction {tx.id!r}>"
        message.ack(transaction=tx)
        c.send(queue, b"b", transaction=tx)
        tx.commit()
        assert repr(tx).endswith(" done>")
        again = sub.get(timeout=5)
        assert again.body == b"b"
        with c.transaction() as tx2:
            tx2.nack(again)
        assert sub.get(timeout=5).body == b"b"  # nacked: back it comes


def test_client_options_are_checked() -> None:
    with pytest.raises(ValueError, match="buffer"):
        Client(buffer=0)


def test_a_client_opens_on_entering_its_with_block(broker: BrokerThread) -> None:
    from .conftest import HOST, LOGIN, PASSCODE

    c = Client(HOST, broker.port, login=LOGIN, passcode=PASSCODE)
    assert not c.is_connected
    assert c.version is None
    with c:
        assert c.is_connected
        with pytest.raises(RuntimeError, match="already open"):
            c.open()
    assert c.closed


def test_works_with_descriptors_above_fd_setsize(broker: BrokerThread) -> None:
    # select.select() refuses descriptors >= 1024; a busy WSGI worker has them.
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the descriptor limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    import os

    spare = [os.open(os.devnull, os.O_RDONLY) for _ in range(1050)]
    try:
        queue = dest()
        with client(broker) as c:
            assert c._link is not None and c._link.sock.fileno() >= 1024
            sub = c.subscribe(queue)
            c.send(queue, b"high fd", receipt=True)
            assert sub.get(timeout=5).body == b"high fd"
    finally:
        for fd in spare:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
