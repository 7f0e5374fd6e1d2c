"""The durable store in a running broker (in-process, on asyncio and trio).

What the runtime does with the router's store effects: RECEIPTs that wait for
the commit while deliveries do not, group commit, a failed commit, flow
control of a producer far ahead of the disk, ``auto``-mode deliveries leaving
the store once written, and restarts on the same file (clean ones here; the
``kill -9`` ones are in ``test_store_crash.py``). A :class:`GatedStore`
wraps the real SQLite store so that a test decides when a commit may finish.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from stomp_proto.broker import (
    Broker,
    Effect,
    Put,
    Remove,
    Snapshot,
    SQLiteStore,
    StoreError,
    TopicRoute,
)

from .faultkit import Clients, RawClient, embedded, tcp_port

pytestmark = pytest.mark.anyio

PERSISTENT = [("persistent", "true")]


class GatedStore:
    """An :class:`SQLiteStore` whose commits wait for :attr:`gate` (open by
    default); every batch it was given is kept in :attr:`batches`."""

    def __init__(self, path: Path) -> None:
        self.inner = SQLiteStore(path)
        self.gate = threading.Event()
        self.gate.set()
        self.batches: list[list[Effect]] = []
        self.fail: str | None = None

    def load(self) -> Snapshot:
        return self.inner.load()

    def write(self, effects: Sequence[Effect]) -> None:
        self.batches.append(list(effects))
        assert self.gate.wait(20), "the test never opened the gate"
        if self.fail is not None:
            raise StoreError(self.fail)
        self.inner.write(effects)

    def close(self) -> None:
        self.inner.close()

    def puts(self) -> int:
        return sum(type(e) is Put for batch in self.batches for e in batch)


def stored_rows(path: Path) -> list[bytes]:
    """The bodies kept in a closed store file."""
    store = SQLiteStore(path)
    try:
        return [m.body for m in store.load().messages]
    finally:
        store.close()


async def no_frame(raw: RawClient, within: float = 0.3) -> bool:
    try:
        await raw.frame(within)
    except TimeoutError:
        return True
    return False


async def test_a_receipt_waits_for_the_commit_and_the_delivery_does_not(
    tmp_path: Path, anyio_backend: str
) -> None:
    store = GatedStore(tmp_path / "s.db")
    async with embedded(store=store) as broker, Clients(tcp_port(broker)) as clients:
        consumer = await clients.connected()
        await consumer.subscribe("/queue/q", ack="client-individual")
        producer = await clients.connected()
        other = await clients.connected()
        store.gate.clear()
        await producer.send(
            "SEND", [("destination", "/queue/q"), *PERSISTENT, ("receipt", "p1")], b"one"
        )
        # The consumer has it before it is committed (as RabbitMQ delivers before it confirms).
        message = await consumer.frame()
        assert message is not None and message.command == "MESSAGE" and message.body == b"one"
        # A later frame of the same producer waits behind the first RECEIPT...
        await producer.send("SEND", [("destination", "/queue/q"), ("receipt", "p2")], b"two")
        # ...another session does not wait at all.
        await other.send("SEND", [("destination", "/queue/elsewhere"), ("receipt", "o1")], b"x")
        receipt = await other.frame()
        assert receipt is not None and receipt.get("receipt-id") == "o1"
        assert await no_frame(producer)
        store.gate.set()
        first, second = await producer.frame(), await producer.frame()
        assert first is not None and second is not None
        assert [first.get("receipt-id"), second.get("receipt-id")] == ["p1", "p2"]
    assert stored_rows(tmp_path / "s.db") == [b"one"]  # never acknowledged: still there


async def test_sends_that_arrive_during_a_commit_share_the_next_one(
    tmp_path: Path, anyio_backend: str
) -> None:
    store = GatedStore(tmp_path / "s.db")
    async with embedded(store=store) as broker, Clients(tcp_port(broker)) as clients:
        producer = await clients.connected()
        store.gate.clear()
        for i in range(50):
            await producer.send(
                "SEND", [("destination", "/queue/q"), *PERSISTENT, ("receipt", f"r{i}")], b"m"
            )
        with anyio.fail_after(5):
            while broker.router.queued() < 50:
                await anyio.sleep(0.01)
        store.gate.set()
        receipts = [await producer.frame() for _ in range(50)]
        assert [r.get("receipt-id") for r in receipts if r is not None] == [
            f"r{i}" for i in range(50)
        ]
        # The first commit was under way while the rest arrived: one more commit took them all.
        per_batch = [sum(type(e) is Put for e in batch) for batch in store.batches]
        assert len(per_batch) == 2 and sum(per_batch) == 50, per_batch


async def test_a_failed_commit_is_an_error_to_the_producer_not_a_receipt(
    tmp_path: Path, anyio_backend: str
) -> None:
    store = GatedStore(tmp_path / "s.db")
    async with embedded(store=store) as broker, Clients(tcp_port(broker)) as clients:
        producer = await clients.connected()
        bystander = await clients.connected()
        store.fail = "store 's.db': commit failed: database or disk is full"
        await producer.send(
            "SEND", [("destination", "/queue/q"), *PERSISTENT, ("receipt", "r")], b"x"
        )
        frames = await producer.until_closed()
        assert [f.command for f in frames] == ["ERROR"]
        assert "could not store" in (frames[0].get("message") or "")
        assert "disk is full" in frames[0].body.decode()
        store.fail = None
        await bystander.send(
            "SEND", [("destination", "/queue/q"), *PERSISTENT, ("receipt", "b")], b"y"
        )
        receipt = await bystander.frame()
        assert receipt is not None and receipt.command == "RECEIPT"


async def test_a_producer_far_ahead_of_the_disk_is_not_read_from(
    tmp_path: Path, anyio_backend: str
) -> None:
    store = GatedStore(tmp_path / "s.db")
    async with embedded(store=store) as broker, Clients(tcp_port(broker)) as clients:
        assert broker._store is not None
        broker._store.max_held = 5
        producer = await clients.connected()
        store.gate.clear()
        for i in range(40):
            await producer.send(
                "SEND", [("destination", "/queue/q"), *PERSISTENT, ("receipt", f"r{i}")], b"m"
            )
        await anyio.sleep(0.3)
        assert broker.router.queued() <= 6  # the rest waits in the socket
        store.gate.set()
        with anyio.fail_after(10):
            receipts = [await producer.frame() for _ in range(40)]
        assert [r.get("receipt-id") for r in receipts if r is not None] == [
            f"r{i}" for i in range(40)
        ]


async def test_the_last_receipt_waits_for_the_commit_before_the_session_closes(
    tmp_path: Path, anyio_backend: str
) -> None:
    store = GatedStore(tmp_path / "s.db")
    async with embedded(store=store) as broker, Clients(tcp_port(broker)) as clients:
        producer = await clients.connected()
        store.gate.clear()
        await producer.send(
            "SEND", [("destination", "/queue/q"), *PERSISTENT, ("receipt", "s")], b"m"
        )
        await producer.send("DISCONNECT", [("receipt", "bye")])
        assert await no_frame(producer)
        store.gate.set()
        frames = await producer.until_closed()
        assert [f.get("receipt-id") for f in frames] == ["s", "bye"]


async def test_auto_mode_deliveries_leave_the_store_once_written(
    tmp_path: Path, anyio_backend: str
) -> None:
    store = GatedStore(tmp_path / "s.db")
    async with embedded(store=store) as broker, Clients(tcp_port(broker)) as clients:
        consumer = await clients.connected()
        await consumer.subscribe("/queue/q")
        producer = await clients.connected()
        await producer.send(
            "SEND", [("destination", "/queue/q"), *PERSISTENT, ("receipt", "r")], b"m"
        )
        await producer.receipt("r")
        got = await consumer.frame()
        assert got is not None and got.body == b"m"
        with anyio.fail_after(5):
            while not any(type(e) is Remove for batch in store.batches for e in batch):
                await anyio.sleep(0.02)
        assert broker.router.stored_bytes == 0
    assert stored_rows(tmp_path / "s.db") == []


async def test_a_clean_restart_redelivers_what_was_not_acknowledged(
    tmp_path: Path, anyio_backend: str
) -> None:
    path = tmp_path / "s.db"
    async with embedded(store=path) as broker, Clients(tcp_port(broker)) as clients:
        producer = await clients.connected()
        for i in range(5):
            await producer.send(
                "SEND", [("destination", "/queue/q"), *PERSISTENT, ("receipt", f"r{i}")], b"%d" % i
            )
        await producer.send("SEND", [("destination", "/queue/q"), ("receipt", "t")], b"transient")
        await producer.receipt("t")
        consumer = await clients.connected()
        await consumer.subscribe("/queue/q", ack="client-individual")
        first = await consumer.frame()
        assert first is not None and first.body == b"0"
        await consumer.send("ACK", [("id", first.get("ack") or ""), ("receipt", "a")])
        rest = await consumer.receipt("a")  # delivered, never acknowledged
        assert [m.body for m in rest] == [b"1", b"2", b"3", b"4", b"transient"]
    async with embedded(store=path) as broker, Clients(tcp_port(broker)) as clients:
        assert broker.stats["queued"] == 4
        consumer = await clients.connected()
        await consumer.subscribe("/queue/q", ack="client-individual")
        got = [await consumer.frame() for _ in range(4)]
        assert [m.body for m in got if m is not None] == [b"1", b"2", b"3", b"4"]
        assert all(m.get("redelivered") == "true" for m in got if m is not None)
        assert await no_frame(consumer)  # "0" was acknowledged; the transient one is gone


async def test_a_durable_subscription_across_a_clean_restart(
    tmp_path: Path, anyio_backend: str
) -> None:
    path = tmp_path / "s.db"
    durable = [("durable", "true"), ("auto-delete", "false")]
    async with (
        embedded(store=path, users={"alice": "pw"}) as broker,
        Clients(tcp_port(broker)) as clients,
    ):
        alice = await clients.connected(headers=[("login", "alice"), ("passcode", "pw")])
        await alice.subscribe("/topic/news", "d1", headers=durable)
        await alice.send("DISCONNECT", [("receipt", "bye")])
        await alice.until_closed()
        producer = await clients.connected(headers=[("login", "alice"), ("passcode", "pw")])
        await producer.send(
            "SEND", [("destination", "/topic/news"), *PERSISTENT, ("receipt", "r")], b"kept"
        )
        await producer.send(
            "SEND", [("destination", "/topic/news"), ("receipt", "t")], b"memory only"
        )
        await producer.receipt("t")
    async with (
        embedded(store=path, users={"alice": "pw"}) as broker,
        Clients(tcp_port(broker)) as clients,
    ):
        alice = await clients.connected(headers=[("login", "alice"), ("passcode", "pw")])
        await alice.subscribe("/topic/news", "d1", headers=durable)
        got = await alice.frame()
        assert got is not None and got.body == b"kept" and got.get("subscription") == "d1"
        assert got.get("redelivered") == "true"
        assert await no_frame(alice)


async def test_without_persistent_nothing_reaches_the_store(
    tmp_path: Path, anyio_backend: str
) -> None:
    store = GatedStore(tmp_path / "s.db")
    async with embedded(store=store) as broker, Clients(tcp_port(broker)) as clients:
        producer = await clients.connected()
        for i in range(20):
            await producer.send("SEND", [("destination", "/queue/q"), ("receipt", f"r{i}")], b"m")
        for i in range(20):
            await producer.receipt(f"r{i}")
        broker.publish("/queue/q", "from the application")
        assert broker.stats["queued"] == 21
    assert store.batches == []
    assert stored_rows(tmp_path / "s.db") == []


async def test_an_application_publish_can_be_persistent(tmp_path: Path, anyio_backend: str) -> None:
    path = tmp_path / "s.db"
    async with embedded(store=path) as broker:
        assert broker.publish("/queue/q", "kept", headers=PERSISTENT) == 0
    assert stored_rows(path) == [b"kept"]  # the last batch is committed when the broker stops


async def test_a_second_broker_on_the_same_file_fails_to_start(
    tmp_path: Path, anyio_backend: str
) -> None:
    path = tmp_path / "s.db"
    async with embedded(store=path):
        second = Broker(tcp=[("127.0.0.1", 0)], ws=[], store=SQLiteStore(path, busy_timeout=0.1))
        with pytest.raises(Exception) as caught:
            async with second:
                pass
        leaves: list[BaseException] = [caught.value]
        while hasattr(leaves[0], "exceptions"):  # exception groups, on every Python
            leaves = list(leaves[0].exceptions)
        assert isinstance(leaves[0], StoreError) and "is locked" in str(leaves[0])
        assert second.addresses == []  # it never listened


async def test_stopping_the_broker_answers_what_waits_for_a_commit(
    tmp_path: Path, anyio_backend: str
) -> None:
    store = GatedStore(tmp_path / "s.db")
    async with embedded(store=store) as broker:
        producer = await RawClient.connected(tcp_port(broker))
        store.gate.clear()
        await producer.send(
            "SEND", [("destination", "/queue/q"), *PERSISTENT, ("receipt", "r")], b"m"
        )
        with anyio.fail_after(5):
            while broker.router.queued() < 1:
                await anyio.sleep(0.01)
        threading.Timer(0.3, store.gate.set).start()  # while the broker stops
        started = anyio.current_time()
    took = anyio.current_time() - started
    frames = await producer.until_closed()
    assert [f.get("receipt-id") for f in frames] == ["r"]
    assert took < 3.0  # not the 5 s a session's last frames may take
    await producer.aclose()
    assert stored_rows(tmp_path / "s.db") == [b"m"]


async def test_a_store_the_routes_cannot_take_back_fails_the_start_and_frees_the_file(
    tmp_path: Path, anyio_backend: str
) -> None:
    path = tmp_path / "s.db"
    async with embedded(store=path) as broker:
        broker.publish("/queue/q", "kept", headers=PERSISTENT)
    topics_only = Broker(tcp=[("127.0.0.1", 0)], ws=[], routes=[TopicRoute()], store=path)
    with pytest.raises(StoreError, match="no queue route serves"):
        await topics_only.start()
    assert stored_rows(path) == [b"kept"]  # not locked any more, and nothing lost


def test_a_store_and_a_relay_do_not_go_together(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="do not go together"):
        Broker(store=tmp_path / "s.db", relay="stomp://guest:guest@127.0.0.1:61613")
