"""The broker under faults and abuse (issue 9): one or more tests per reported item.

Each ``test_itemNN_*`` reproduces item NN of issue 9 at a scale CI can afford
and asserts the behaviour the issue asks for. A test whose item is not fixed
yet is marked ``xfail(strict=True)`` with the item number: it turns into a
failure (XPASS) the moment the fix lands, and the mark goes with it. The
``test_abuse_*`` tests are the rest of the issue's "Deliver" list (mid-frame
disconnects, resets, CONNECT floods, oversized frames, floods of
subscriptions, transactions and ACKs): each checks that a canary keeps
working, that the broker still serves afterwards and, where it means
something, a memory bound stated in the test.

Most tests run an embedded broker on both AnyIO backends; the broker then
shares the test's event loop, so a :class:`~tests.broker.faultkit.Canary`
that stalls means the broker served nobody. What must be measured apart from
the test (a hang that must not hang the test, a descriptor limit, the
broker's own CPU time) runs the broker in a child process
(:class:`~tests.broker.faultkit.BrokerProcess`). Every wait is bounded
(``anyio.fail_after`` or a timeout argument), so a regression fails instead of
hanging.
"""

from __future__ import annotations

import gc
import logging
import time

import anyio
import pytest

from stomp_proto import Frame, Limits, ServerConnection
from stomp_proto.broker import Broker

from .faultkit import (
    BrokerProcess,
    Canary,
    Clients,
    RawClient,
    Traced,
    WsRawClient,
    closed_within,
    embedded,
    rss_bytes,
    send_frame,
    still_serving,
    stomp,
    tcp_port,
    tls_client_hello,
    ws_port,
    ws_upgrade,
)

pytestmark = pytest.mark.anyio

KiB = 1024
MiB = 1024 * 1024


def seqs(frames: list[Frame]) -> list[int]:
    """The sequence numbers in the bodies of the MESSAGE frames among ``frames``."""
    return [int(f.body.split(b" ", 1)[0]) for f in frames if f.command == "MESSAGE"]


def commands(frames: list[Frame]) -> list[str]:
    return [f.command for f in frames]


async def pump_messages(raw: RawClient, into: list[int], stop: anyio.Event) -> None:
    """Read MESSAGE sequence numbers from ``raw`` into ``into`` until ``stop`` or EOF."""
    while not stop.is_set():
        try:
            frame = await raw.frame(timeout=0.2)
        except TimeoutError:
            continue
        if frame is None:
            return
        into.extend(seqs([frame]))


# -- 1. queue messages of a departing ack:auto consumer ---------------------------------


async def test_item01_auto_consumer_leaving_loses_nothing(anyio_backend: str) -> None:
    count = 6000
    async with embedded() as broker, Clients(tcp_port(broker)) as clients:
        stays = await clients.connected()
        leaves = await clients.connected()
        await stays.subscribe("/queue/r", "s")
        await leaves.subscribe("/queue/r", "s")
        producer = await clients.connected()
        got_stays: list[int] = []
        got_leaves: list[int] = []
        done = anyio.Event()

        async def leave() -> None:
            while len(got_leaves) < 300:
                frame = await leaves.frame()
                assert frame is not None
                got_leaves.extend(seqs([frame]))
            await leaves.send("DISCONNECT", [("receipt", "bye")])
            got_leaves.extend(seqs(await leaves.receipt("bye")))
            await leaves.aclose()

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(pump_messages, stays, got_stays, done)
                tg.start_soon(leave)
                frames = [send_frame("/queue/r", str(i).encode()) for i in range(count - 1)]
                frames.append(send_frame("/queue/r", str(count - 1).encode(), [("receipt", "z")]))
                for start in range(0, count, 200):  # pipelined, in 30 writes
                    await producer.write(b"".join(frames[start : start + 200]))
                    await anyio.sleep(0)
                await producer.receipt("z", timeout=20)
                with anyio.move_on_after(1.5):  # what is still in flight to the one that stays
                    while len(set(got_stays) | set(got_leaves)) < count:
                        await anyio.sleep(0.05)
                done.set()
        missing = set(range(count)) - set(got_stays) - set(got_leaves)
        assert not missing, f"{len(missing)} of {count} accepted messages never delivered"


# -- 2. a message larger than max_pending_bytes --------------------------------------


@pytest.mark.parametrize("destination", ["/topic/big", "/queue/big"])
async def test_item02_message_larger_than_max_pending_bytes_is_delivered(
    anyio_backend: str, destination: str
) -> None:
    body = b"x" * (200 * KiB)
    async with (
        embedded(max_pending_bytes=64 * KiB) as broker,
        Clients(tcp_port(broker)) as clients,
    ):
        subscribers = [await clients.connected() for _ in range(2)]
        for i, raw in enumerate(subscribers):
            await raw.subscribe(destination, f"s{i}")
        producer = await clients.connected()
        for i in range(2):
            await producer.write(send_frame(destination, body, [("receipt", f"r{i}")]))
            await producer.receipt(f"r{i}")
        per_subscriber = 2 if destination.startswith("/topic") else 1
        for raw in subscribers:
            for _ in range(per_subscriber):
                frame = await raw.frame()
                assert frame is not None and frame.command == "MESSAGE" and frame.body == body


async def test_item02_queue_of_large_messages_reaches_a_late_reader(anyio_backend: str) -> None:
    """Each 200 KiB message fills a 64 KiB backlog on its own: the consumer must
    still get every one, one after another, as its backlog drains."""
    body = 200 * KiB
    async with (
        embedded(max_pending_bytes=64 * KiB) as broker,
        Clients(tcp_port(broker)) as clients,
    ):
        consumer = await clients.connected()
        await consumer.subscribe("/queue/large", "c")
        for i in range(40):  # 8 MB: more than the kernel's socket buffers hold
            broker.publish("/queue/large", str(i).encode().ljust(body))
        await anyio.sleep(0.2)  # it starts reading late
        with anyio.fail_after(10):
            got = [seqs([f])[0] for f in [await consumer.frame() for _ in range(40)] if f]
        assert got == list(range(40))
        assert broker.stats["queued"] == 0


# -- 3. COMMIT applies all or nothing -------------------------------------------------


async def test_item03_commit_is_atomic(anyio_backend: str) -> None:
    async with embedded(max_queue_bytes=1 * MiB) as broker, Clients(tcp_port(broker)) as clients:
        producer = await clients.connected()
        for i in range(7):  # 700 KiB of 1 MiB
            await producer.write(send_frame("/queue/tx", f"before-{i}".encode().ljust(100 * KiB)))
        await producer.send("BEGIN", [("transaction", "t")])
        for i in range(4):  # 400 KiB more: does not fit
            await producer.write(
                send_frame("/queue/tx", f"tx-{i}".encode().ljust(100 * KiB), [("transaction", "t")])
            )
        await producer.send("COMMIT", [("transaction", "t"), ("receipt", "c")])
        frames = await producer.until_closed()
        assert commands(frames) == ["ERROR"]
        assert frames[0].get("receipt-id") == "c"
        assert broker.stats["queued"] == 7
        consumer = await clients.connected()
        await consumer.subscribe("/queue/tx")
        got = [await consumer.frame() for _ in range(7)]
        assert all(f is not None and f.body.startswith(b"before-") for f in got)
        with pytest.raises(TimeoutError):
            await consumer.frame(timeout=0.3)  # nothing of the transaction


# -- 4. every drop counted and logged; published counts what was accepted -------------


async def test_item04_published_does_not_count_refused_sends(anyio_backend: str) -> None:
    async with (
        embedded(max_queue_bytes=100 * KiB) as broker,
        Clients(tcp_port(broker)) as clients,
    ):
        producer = await clients.connected()
        await producer.write(send_frame("/queue/full", b"a" * 60 * KiB, [("receipt", "1")]))
        await producer.receipt("1")
        await producer.write(send_frame("/queue/full", b"b" * 60 * KiB, [("receipt", "2")]))
        frames = await producer.until_closed()
        assert commands(frames) == ["ERROR"]
        assert broker.stats["queued"] == 1
        assert broker.stats["published"] == 1


async def test_item04_drops_are_logged_per_session_and_rate_limited(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stomp_proto")
    async with (
        embedded(max_pending_bytes=64 * KiB) as broker,
        Clients(tcp_port(broker)) as clients,
    ):
        stalled = await clients.open()
        connected = await stalled.connect()
        assert connected is not None
        sid = connected.get("session")
        assert sid
        await stalled.subscribe("/topic/flood")  # and never reads again
        for i in range(3000):
            broker.publish("/topic/flood", b"x" * 10_000)
            if i % 100 == 0:
                await anyio.sleep(0)
        dropped = broker.stats["dropped"]
        assert dropped > 1000
        lines = [r for r in caplog.records if "drop" in r.getMessage().lower()]
        assert lines, "no log line for thousands of dropped copies"
        assert any(sid in r.getMessage() for r in lines), "the log does not name the session"
        assert len(lines) <= 20, f"{len(lines)} log lines for {dropped} drops: not rate-limited"


# -- 5. a pattern that is a regular-expression bomb ------------------------------------

BOMB = "/topic/" + "**a" * 10 + "**b"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_item05_pattern_bomb_does_not_freeze_the_broker(anyio_backend: str) -> None:
    # In a child process, because a frozen embedded broker would freeze the test
    # with it; on one backend, because matching involves no I/O.
    with BrokerProcess(anyio_backend) as child:
        bomb = await RawClient.connected(child.port)
        await bomb.subscribe(BOMB, "e")
        async with Canary(child.port, disconnect_timeout=0.5) as canary:
            await canary.ping()
            await bomb.write(send_frame("/topic/" + "a" * 40, b"boom", [("receipt", "r")]))
            await anyio.sleep(0.1)  # the bomb is routed before the canary's SEND
            await canary.ping(timeout=2.0)  # a hang guard, not a speed test
            await bomb.receipt("r", timeout=2.0)
        await bomb.write(send_frame("/topic/" + "a" * 10 + "b", b"match"))
        frame = await bomb.frame(timeout=2.0)
        assert frame is not None and frame.body == b"match"
        assert child.alive()
        await bomb.aclose()


# -- 6. cumulative ACKs in order ----------------------------------------------------


async def test_item06_twenty_thousand_cumulative_acks(anyio_backend: str) -> None:
    count, bound = 20_000, 1.5
    async with embedded() as broker, Clients(tcp_port(broker)) as clients:
        consumer = await clients.connected()
        await consumer.subscribe("/queue/acks", "a", ack="client")
        for _ in range(count):
            broker.publish("/queue/acks", b"m")
        ids: list[str] = []
        with anyio.fail_after(20):
            while len(ids) < count:
                frame = await consumer.frame()
                assert frame is not None
                ids.append(frame.get("ack") or "")
        async with Canary(tcp_port(broker)) as canary, anyio.create_task_group() as tg:
            tg.start_soon(canary.watch)
            start = time.process_time()  # CPU time: what other processes use does not count
            took = 0.0
            for chunk in range(0, count, 1000):  # in order, 1000 per write
                acks = [stomp("ACK", [("id", i)]) for i in ids[chunk : chunk + 999]]
                acks.append(stomp("ACK", [("id", ids[chunk + 999]), ("receipt", str(chunk))]))
                await consumer.write(b"".join(acks))
                await consumer.receipt(str(chunk), timeout=30)
                took = time.process_time() - start
                if took > bound:
                    break  # already failed: do not wait for the quadratic rest
            canary.stop()
        # Today the 20,000 take about 3 s (quadratic), the broker serving nobody
        # meanwhile; linear ACKs take a small fraction of that.
        assert took < bound, f"{chunk + 1000} ACKs took {took:.2f} s of CPU"
        assert canary.worst < 5.0, f"the canary waited {canary.worst:.2f} s"
        assert broker.stats["queued"] == 0


# -- 7. thousands of pattern subscriptions -------------------------------------------


async def test_item07_thousands_of_patterns_do_not_stall_publishing(anyio_backend: str) -> None:
    bound = 0.5
    async with embedded() as broker, Clients(tcp_port(broker)) as clients:
        holders = []
        for c in range(10):  # 9,990 patterns: 999 per connection, within max_subscriptions
            raw = await clients.connected()
            frames = [
                stomp("SUBSCRIBE", [("id", f"p{i}"), ("destination", f"/topic/dash{c}-{i}.*")])
                for i in range(998)
            ]
            frames.append(
                stomp(
                    "SUBSCRIBE",
                    [("id", "deep"), ("destination", f"/topic/deep{c}.**"), ("receipt", "r")],
                )
            )
            await raw.write(b"".join(frames))
            await raw.receipt("r", timeout=10)
            holders.append(raw)
        exact = await clients.connected()
        await exact.subscribe("/topic/plain.prices")
        start = time.process_time()  # CPU time: what other processes use does not count
        for i in range(500):
            assert broker.publish("/topic/plain.prices", str(i)) == 1
            took = time.process_time() - start
            if took > bound:
                break
        # A hang guard (benchmarks/ measure the speed): today about 3-7 ms a publish.
        assert took < bound, f"{i + 1} publishes took {took:.2f} s with 9,990 patterns"
        assert broker.publish("/topic/deep3.a.b", "deep") == 1  # patterns still match
        frame = await holders[3].frame()
        assert frame is not None and frame.body == b"deep"


# -- 8. descriptor exhaustion ----------------------------------------------------------


async def test_item08_descriptor_exhaustion_does_not_kill_the_broker(anyio_backend: str) -> None:
    with BrokerProcess(anyio_backend, nofile=128, ws=[("127.0.0.1", 0, "/ws")]) as child:
        streams = []
        with anyio.fail_after(10):
            for i in range(200):  # more than its 128 descriptors, on both listeners
                port = child.port if i % 4 else child.ws_port
                try:
                    streams.append(await anyio.connect_tcp("127.0.0.1", port))
                except OSError:
                    break  # the listen backlog is full: fine
            await anyio.sleep(0.5)
        assert child.alive(), child.log()[-2000:]
        for stream in streams:
            await stream.aclose()
        with anyio.fail_after(10):
            while True:  # it may back off for a while before accepting again
                try:
                    await still_serving(child.port, timeout=2)
                    break
                except (OSError, TimeoutError, anyio.BrokenResourceError):
                    assert child.alive(), child.log()[-2000:]
                    await anyio.sleep(0.2)
        assert child.alive()


# -- 9. a deadline for CONNECT, and small pre-CONNECT limits --------------------------


async def test_item09_connections_without_connect_are_closed(anyio_backend: str) -> None:
    async with embedded(connect_timeout=0.3, ws=[("127.0.0.1", 0, "/ws")]) as broker:
        port = tcp_port(broker)
        silent = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(40)]
        halves = []
        for _ in range(10):
            stream = await anyio.connect_tcp("127.0.0.1", port)
            await stream.send(b"CONNECT\naccept-version:1.2\nhost:")
            halves.append(stream)
        upgraded = [await ws_upgrade(ws_port(broker)) for _ in range(10)]
        async with Canary(port) as canary:
            for stream in (*silent, *halves, *upgraded):
                assert await closed_within(stream, 3.0), "still open long after the deadline"
            await canary.ping()
        assert broker.stats["sessions"] == 0
        for stream in (*silent, *halves, *upgraded):
            await stream.aclose()


async def test_item09_connect_with_a_huge_body_is_refused_early(anyio_backend: str) -> None:
    async with embedded() as broker, Clients(tcp_port(broker)) as clients:
        raw = await clients.open()
        await raw.write(b"CONNECT\naccept-version:1.2\nhost:/\ncontent-length:10000000\n\n")
        frames = await raw.until_closed(timeout=1.0)  # before any of the body is sent
        assert commands(frames) == ["ERROR"]


# -- 10. stuck consumers are dropped on time ---------------------------------------------


async def stuck_and_worker(
    broker: Broker, heart_beat: tuple[int, int], count: int = 300, burst: int = 0
) -> tuple[set[int], float]:
    """A client that subscribes (ack:client) and then neither reads nor sends, and
    a worker on the same queue that reads all along; ``count`` 64 KiB messages
    are published, the first ``burst`` of them at once. Returns what the worker
    got and when (seconds from the first publish) the stuck one's session ended."""
    async with Clients(tcp_port(broker)) as clients:
        stuck = await clients.connected(heart_beat=heart_beat)
        await stuck.subscribe("/queue/hb", "s", ack="client")
        worker = await clients.connected()
        await worker.subscribe("/queue/hb", "w")
        got: list[int] = []
        done = anyio.Event()
        start = anyio.current_time()
        gone = 0.0
        with anyio.fail_after(6):
            async with anyio.create_task_group() as tg:
                tg.start_soon(pump_messages, worker, got, done)
                for i in range(count):
                    broker.publish("/queue/hb", str(i).encode().ljust(64 * KiB))
                    if i >= burst:
                        await anyio.sleep(0.001)
                while not (gone and len(set(got)) == count):
                    if not gone and broker.stats["sessions"] == 1:
                        gone = anyio.current_time() - start
                    await anyio.sleep(0.01)
                done.set()
        return set(got), gone


async def test_item10_stuck_consumer_is_dropped_by_heart_beat(anyio_backend: str) -> None:
    async with embedded(heart_beat=(300, 300)) as broker:
        # A burst first, so that the stuck one's writer blocks before its deadline.
        got, gone = await stuck_and_worker(broker, (300, 300), burst=150)
    assert got == set(range(300))  # its unacknowledged messages went to the worker
    assert gone < 3.0  # silent for grace (2) x 300 ms: dropped at about 0.6 s


async def test_item10_stuck_consumer_is_disconnected_by_policy(anyio_backend: str) -> None:
    # The worker gets the stuck one's messages in a batch up to the limit, but
    # works it off within slow_consumer_timeout: only the stuck one is cut off.
    async with embedded(
        max_pending_bytes=256 * KiB, slow_consumer="disconnect", slow_consumer_timeout=0.5
    ) as broker:
        got, gone = await stuck_and_worker(broker, (0, 0))
    assert got == set(range(300))
    assert gone < 3.0


# -- 11. one ERROR per session; logs rate-limited ---------------------------------------


async def test_item11_one_error_for_a_backed_up_session(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="stomp_proto")
    # A backlog that stays under max_pending_bytes, so the broker keeps posting.
    async with (
        embedded(max_pending_bytes=64 * MiB) as broker,
        Clients(tcp_port(broker)) as clients,
    ):
        backed = await clients.connected()
        await backed.subscribe("/topic/f")
        for _ in range(2000):  # 20 MB: the kernel's buffers fill, the rest waits
            broker.publish("/topic/f", b"z" * 10_000)
            await anyio.sleep(0)
        await backed.write(b"BOGUS\n\n\0")
        await anyio.sleep(0.05)
        for i in range(3000):
            broker.publish("/topic/f", b"z" * 1000)
            if i % 100 == 0:
                await anyio.sleep(0)
        frames = await backed.until_closed(timeout=10)
        errors = commands(frames).count("ERROR")
        assert errors == 1, f"{errors} ERROR frames"
        assert frames[-1].command == "ERROR"
        assert len(caplog.records) <= 10, f"{len(caplog.records)} log lines"
        await still_serving(tcp_port(broker))


async def mid_frame_closes(
    broker: Broker, rounds: int = 6, per_round: int = 50, *, subscribed: bool = True
) -> None:
    """``rounds`` x ``per_round`` clients, subscribed to a busy topic, each sending
    half a SEND and then going away (half with FIN, half with RST)."""
    stop = anyio.Event()

    async def publish() -> None:
        while not stop.is_set():
            broker.publish("/topic/busy", b"p" * 100)
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as tg:
        tg.start_soon(publish)
        for _ in range(rounds):
            async with Clients(tcp_port(broker)) as clients:

                async def one(i: int, clients: Clients = clients) -> None:
                    raw = await clients.connected()
                    if subscribed:
                        await raw.subscribe("/topic/busy")
                    await raw.write(b"SEND\ndestination:/queue/x\ncontent-length:100\n\nhalf")
                    if i % 2:
                        await raw.aclose()
                    # the others are reset by Clients

                async with anyio.create_task_group() as batch:
                    for i in range(per_round):
                        batch.start_soon(one, i)
        with anyio.fail_after(5):
            while broker.stats["sessions"] > 1:  # the canary's
                await anyio.sleep(0.02)
        stop.set()


async def test_item11_mid_frame_closes_are_logged_rate_limited(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="stomp_proto")
    async with embedded() as broker, Canary(tcp_port(broker)):
        await mid_frame_closes(broker)
        assert len(caplog.records) <= 20, f"{len(caplog.records)} log lines for 300 clients"


# -- 12. closed sessions are freed without the cycle collector -------------------------


async def test_item12_closed_sessions_are_freed_without_gc(anyio_backend: str) -> None:
    def live_connections() -> int:
        return sum(type(o) is ServerConnection for o in gc.get_objects())

    body = 256 * KiB
    async with embedded() as broker:
        port = tcp_port(broker)
        await still_serving(port)
        gc.collect()
        gc.disable()
        try:
            before = live_connections()
            with Traced() as traced:
                for _ in range(4):
                    async with Clients(port) as clients:
                        batch = [await clients.connected() for _ in range(25)]
                        for raw in batch:  # a counted body not followed by NUL: a parse error
                            await raw.write(
                                f"SEND\ndestination:/queue/x\ncontent-length:{body}\n\n".encode()
                                + b"y" * body
                                + b"X"
                            )
                        for raw in batch:
                            assert commands(await raw.until_closed()) == ["ERROR"]
                with anyio.fail_after(5):
                    while broker.stats["sessions"]:
                        await anyio.sleep(0.02)
                await anyio.sleep(0.1)
            kept = live_connections() - before
        finally:
            gc.enable()
        # 100 failed sessions that each buffered 256 KiB: a few may be on their way out.
        assert kept <= 3, f"{kept} closed sessions still in memory without gc"
        assert traced.growth < 4 * MiB, f"grew {traced.growth / MiB:.1f} MiB"


# -- 13. idle sessions cost nothing -------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_item13_idle_sessions_do_not_poll(anyio_backend: str) -> None:
    # In a child process, to measure the broker's CPU time alone; on one backend
    # because the polling (and its fix) is in backend-neutral AnyIO code.
    with BrokerProcess(anyio_backend) as child:
        idle: list[RawClient] = []

        async def one() -> None:
            idle.append(await RawClient.connected(child.port))

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for _ in range(1000):
                    tg.start_soon(one)
        await anyio.sleep(0.5)
        before = child.cpu()
        await anyio.sleep(1.5)
        used = child.cpu() - before
        # Today 1,000 idle sessions cost ~0.2 s of CPU in 1.5 s; with timers that
        # wake only when a deadline is due, next to nothing.
        assert used < 0.05, f"{used:.2f} s of CPU in 1.5 s for 1000 idle sessions"
        await still_serving(child.port)
        for raw in idle:
            await raw.aclose()


# -- 14. a broker-wide memory budget; whole frames counted ----------------------------------


async def test_item14_headers_count_in_max_queue_bytes(anyio_backend: str) -> None:
    async with (
        embedded(max_queue_bytes=256 * KiB) as broker,
        Clients(tcp_port(broker)) as clients,
    ):
        producer = await clients.connected()
        frames = [
            send_frame("/queue/h", b"", [("x-pad", "p" * 8 * KiB), ("receipt", str(i))])
            for i in range(100)
        ]
        await producer.write(b"".join(frames))  # 800 KiB of headers, no body
        got = await producer.frames_until(lambda f: f.command == "ERROR", timeout=1)
        assert got[-1].command == "ERROR"
        assert broker.stats["queued"] <= 32


async def test_item14_transaction_bytes_are_limited(anyio_backend: str) -> None:
    async with (
        embedded(max_transaction_bytes=256 * KiB) as broker,
        Clients(tcp_port(broker)) as clients,
    ):
        producer = await clients.connected()
        await producer.send("BEGIN", [("transaction", "t")])
        for i in range(5):
            await producer.write(
                send_frame(
                    "/queue/t", b"b" * 100 * KiB, [("transaction", "t"), ("receipt", str(i))]
                )
            )
        got = await producer.until_closed()
        assert commands(got) == ["RECEIPT", "RECEIPT", "ERROR"]
        assert got[-1].get("receipt-id") == "2"
        assert broker.stats["published"] == 0 and broker.stats["queued"] == 0


async def test_item14_broker_wide_memory_budget(anyio_backend: str) -> None:
    async with embedded(max_memory_bytes=1 * MiB) as broker, Clients(tcp_port(broker)) as clients:
        producer = await clients.connected()
        for i in range(8):  # 8 queues, each well under max_queue_bytes
            await producer.write(
                send_frame(f"/queue/m{i}", b"m" * 300 * KiB, [("receipt", str(i))])
            )
        got = await producer.until_closed()
        assert got[-1].command == "ERROR"
        accepted = commands(got).count("RECEIPT")
        assert 1 <= accepted <= 3
        assert broker.stats["queued"] == accepted
        consumer = await clients.connected()  # draining makes room again
        for i in range(accepted):
            await consumer.subscribe(f"/queue/m{i}", f"s{i}")
        for _ in range(accepted):
            assert (await consumer.frame()) is not None
        again = await clients.connected()
        await again.write(send_frame("/queue/m0", b"m" * 300 * KiB, [("receipt", "ok")]))
        await again.receipt("ok")


# -- 15. leading EOLs before CONNECT; every refusal at CONNECT is an ERROR -------------


@pytest.mark.parametrize("prefix", [b"\n", b"\r\n", b"\n\n\n"])
async def test_item15_eols_before_connect(anyio_backend: str, prefix: bytes) -> None:
    async with embedded() as broker, Clients(tcp_port(broker)) as clients:
        raw = await clients.open()
        await raw.write(prefix + b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
        frame = await raw.frame(timeout=2)
        assert frame is not None and frame.command == "CONNECTED", frame


REFUSED_AT_CONNECT = {
    "unknown-command": b"HELLO\n\n\0",
    "send-first": b"SEND\ndestination:/queue/a\n\nhi\0",
    "bad-version": b"CONNECT\naccept-version:9.9\nhost:/\n\n\0",
    "bad-header-line": b"CONNECT\naccept-version:1.2\nno colon here\n\n\0",
    "bad-login": b"CONNECT\naccept-version:1.2\nhost:/\nlogin:mallory\npasscode:x\n\n\0",
    "nul-garbage": b"\0\0\0\x01\x02garbage\n\n\0",
}


@pytest.mark.parametrize("case", sorted(REFUSED_AT_CONNECT))
async def test_item15_refusal_at_connect_is_an_error_frame(anyio_backend: str, case: str) -> None:
    async with embedded(users={"alice": "pw"}) as broker, Clients(tcp_port(broker)) as clients:
        raw = await clients.open()
        await raw.write(REFUSED_AT_CONNECT[case])
        frames = await raw.until_closed(timeout=3)
        assert commands(frames) == ["ERROR"], frames


# -- 16. client-individual on STOMP 1.0 -----------------------------------------------


async def test_item16_client_individual_on_stomp_10(anyio_backend: str) -> None:
    async with embedded() as broker, Clients(tcp_port(broker)) as clients:
        old = await clients.connected(version="1.0")
        assert old.version == "1.0"
        await old.subscribe("/queue/ci", "x", ack="client-individual")
        for i in range(3):
            broker.publish("/queue/ci", str(i))
        messages = [await old.frame() for _ in range(3)]
        assert [m.body for m in messages if m] == [b"0", b"1", b"2"]
        middle = messages[1]
        assert middle is not None
        await old.send("ACK", [("message-id", middle.get("message-id") or ""), ("receipt", "a")])
        await old.receipt("a")
        await old.reset()  # the two not acknowledged go to the next consumer
        other = await clients.connected()
        await other.subscribe("/queue/ci")
        again = [await other.frame() for _ in range(2)]
        assert sorted(f.body for f in again if f) == [b"0", b"2"]
        assert all(f is not None and f.get("redelivered") == "true" for f in again)
        with pytest.raises(TimeoutError):
            await other.frame(timeout=0.3)


# -- 17. a TLS ClientHello on the plain port -----------------------------------------


async def test_item17_tls_client_hello_on_plain_port_is_closed(anyio_backend: str) -> None:
    async with embedded() as broker, Clients(tcp_port(broker)) as clients:
        raw = await clients.open()
        await raw.write(tls_client_hello())
        frames = await raw.until_closed(timeout=1.0)
        assert commands(frames) in ([], ["ERROR"])
        await still_serving(tcp_port(broker))


# -- the rest of the abuse suite ---------------------------------------------------------


async def test_abuse_hundreds_of_mid_frame_disconnects(anyio_backend: str) -> None:
    async with embedded() as broker, Canary(tcp_port(broker)) as canary:
        rss = rss_bytes()
        async with anyio.create_task_group() as tg:
            tg.start_soon(canary.watch)
            await mid_frame_closes(broker, rounds=6, per_round=50)
            canary.stop()
        assert canary.pings >= 1 and canary.worst < 5.0
        assert broker.stats["sessions"] == 1
        assert broker.stats["published"] > 0
        await still_serving(tcp_port(broker))
        # 300 sessions came and went: what they held is gone (RSS: generous, it is
        # the whole test process, and Python keeps freed arenas).
        assert rss_bytes() - rss < 64 * MiB


async def test_abuse_consumers_killed_with_rst_lose_nothing(anyio_backend: str) -> None:
    count = 400
    async with embedded() as broker, Clients(tcp_port(broker)) as clients:
        doomed = [await clients.connected() for _ in range(40)]
        for raw in doomed:
            await raw.subscribe(
                "/queue/k", "d", ack="client-individual", headers=[("prefetch-count", "5")]
            )
        for i in range(count):
            broker.publish("/queue/k", str(i))
        seen_by_doomed: set[str] = set()
        for raw in doomed:
            for _ in range(3):
                frame = await raw.frame()
                assert frame is not None and frame.command == "MESSAGE"
                seen_by_doomed.add(frame.get("message-id") or "")
            await raw.reset()  # killed: no DISCONNECT, no ACK, RST
        async with Canary(tcp_port(broker)) as canary:
            await canary.ping()
            survivor = await clients.connected()
            await survivor.subscribe("/queue/k", "s", ack="client-individual")
            got: dict[int, Frame] = {}
            with anyio.fail_after(10):
                while len(got) < count:
                    frame = await survivor.frame()
                    assert frame is not None and frame.command == "MESSAGE"
                    number = seqs([frame])[0]
                    assert number not in got, f"{number} delivered twice to the survivor"
                    got[number] = frame
                    await survivor.send("ACK", [("id", frame.get("ack") or "")])
            await canary.ping()
        assert set(got) == set(range(count))
        marked = {f.get("message-id") for f in got.values() if f.get("redelivered") == "true"}
        # What a killed consumer read comes back marked; so may what was in
        # flight to it (up to its prefetch of 5), and nothing else.
        assert seen_by_doomed <= marked
        assert len(marked) <= 40 * 5
        assert broker.stats["redelivered"] == len(marked)
        assert broker.stats["sessions"] == 1


async def test_abuse_connect_flood(anyio_backend: str) -> None:
    flood = 400
    async with embedded() as broker, Canary(tcp_port(broker)) as canary:
        port = tcp_port(broker)
        before = broker.stats["connections"]
        rss = rss_bytes()

        async def hit(i: int) -> None:
            raw = await RawClient.connected(port)
            if i % 3 == 0:
                await raw.send("DISCONNECT", [("receipt", "bye")])
                await raw.receipt("bye")
                await raw.aclose()
            elif i % 3 == 1:
                await raw.aclose()
            else:
                await raw.reset()

        async with anyio.create_task_group() as watch:
            watch.start_soon(canary.watch)
            with anyio.fail_after(20):
                for wave in range(0, flood, 100):  # 100 at once
                    async with anyio.create_task_group() as tg:
                        for i in range(wave, wave + 100):
                            tg.start_soon(hit, i)
                while broker.stats["sessions"] > 1:
                    await anyio.sleep(0.02)
            canary.stop()
        assert broker.stats["connections"] - before == flood
        assert canary.worst < 5.0, f"the canary waited {canary.worst:.2f} s"
        await still_serving(port)
        assert rss_bytes() - rss < 64 * MiB  # 400 sessions' worth, and gone


OVERSIZED = {
    # name: (the bytes after CONNECT, whether the client must stop sending early)
    "content-length-over-limit": b"SEND\ndestination:/queue/o\ncontent-length:100000000\n\n",
    "body-without-length-over-limit": b"SEND\ndestination:/queue/o\n\n" + b"b" * 80 * KiB,
    "endless-header-line": b"SEND\ndestination:/queue/o\nx:" + b"h" * 8 * KiB,
    "too-many-headers": b"SEND\ndestination:/queue/o\n" + b"h:1\n" * 200 + b"\n\0",
}


@pytest.mark.parametrize("case", sorted(OVERSIZED))
async def test_abuse_oversized_frames_are_refused_early(anyio_backend: str, case: str) -> None:
    limits = Limits(max_body_size=64 * KiB, max_header_size=4 * KiB, max_headers=100)
    async with embedded(limits=limits) as broker, Clients(tcp_port(broker)) as clients:
        with Traced() as traced:
            raw = await clients.connected()
            await raw.write(OVERSIZED[case])  # and nothing more: refused on what was sent
            frames = await raw.until_closed(timeout=2)
            assert commands(frames) == ["ERROR"], frames
        assert broker.stats["published"] == 0
        await still_serving(tcp_port(broker))
    # The broker buffered no more than the limits (64 KiB body, 4 KiB header)
    # plus a read chunk, never the 100 MB the frame announced.
    assert traced.peak < 2 * MiB, f"peak {traced.peak / MiB:.1f} MiB"


async def test_abuse_subscription_flood(anyio_backend: str) -> None:
    async with (
        embedded(limits=Limits(max_subscriptions=200)) as broker,
        Clients(tcp_port(broker)) as clients,
        Canary(tcp_port(broker)) as canary,
    ):
        flooder = await clients.connected()
        await flooder.write(
            b"".join(
                stomp("SUBSCRIBE", [("id", f"s{i}"), ("destination", f"/topic/f.{i}")])
                for i in range(1000)
            )
        )
        frames = await flooder.until_closed()
        assert commands(frames) == ["ERROR"]
        await canary.ping()
        with anyio.fail_after(5):
            while broker.stats["sessions"] > 1:
                await anyio.sleep(0.02)
        assert broker.publish("/topic/f.1", "x") == 0  # its subscriptions went with it


async def test_abuse_transaction_floods(anyio_backend: str) -> None:
    options = {"limits": Limits(max_transactions=50), "max_transaction_frames": 100}
    async with (
        embedded(**options) as broker,
        Clients(tcp_port(broker)) as clients,
        Canary(tcp_port(broker)) as canary,
    ):
        opener = await clients.connected()
        await opener.write(b"".join(stomp("BEGIN", [("transaction", f"t{i}")]) for i in range(500)))
        assert commands(await opener.until_closed()) == ["ERROR"]
        filler = await clients.connected()
        await filler.send("BEGIN", [("transaction", "big")])
        await filler.write(
            b"".join(send_frame("/queue/tx", b"x", [("transaction", "big")]) for _ in range(1000))
        )
        assert commands(await filler.until_closed()) == ["ERROR"]
        await canary.ping()
        assert broker.stats["queued"] == 0
        assert broker.stats["published"] == canary.sent  # only the canary's


async def test_abuse_ack_floods(anyio_backend: str) -> None:
    async with (
        embedded() as broker,
        Clients(tcp_port(broker)) as clients,
        Canary(tcp_port(broker)) as canary,
    ):
        # ACKs for nothing: a protocol error, answered once.
        bogus = await clients.connected()
        await bogus.write(b"".join(stomp("ACK", [("id", f"nope-{i}")]) for i in range(5000)))
        assert commands(await bogus.until_closed()) == ["ERROR"]
        # One message NACKed 500 times: redelivered each time, then ACKed.
        nacker = await clients.connected()
        await nacker.subscribe("/queue/n", "n", ack="client-individual")
        broker.publish("/queue/n", "again")
        with anyio.fail_after(20):
            for i in range(500):
                frame = await nacker.frame()
                assert frame is not None and frame.body == b"again"
                assert (frame.get("redelivered") == "true") == (i > 0)
                verb = "NACK" if i < 499 else "ACK"
                await nacker.send(verb, [("id", frame.get("ack") or "")])
                if i % 100 == 0:
                    await canary.ping()
        await nacker.send("DISCONNECT", [("receipt", "bye")])
        await nacker.receipt("bye")
        assert broker.stats["redelivered"] == 499
        assert broker.stats["queued"] == 0
        await still_serving(tcp_port(broker))


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_abuse_memory_per_connection_is_bounded_and_given_back(anyio_backend: str) -> None:
    # In a child process, so that the RSS is the broker's alone; one backend,
    # because the bookkeeping measured is the broker's, not the event loop's.
    with BrokerProcess(anyio_backend) as child:
        await still_serving(child.port)
        base = child.rss()
        peaks = []
        for _ in range(2):
            idle: list[RawClient] = []

            async def one(into: list[RawClient] = idle) -> None:
                into.append(await RawClient.connected(child.port))

            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    for _ in range(200):
                        tg.start_soon(one)
                silent = [await anyio.connect_tcp("127.0.0.1", child.port) for _ in range(100)]
                await still_serving(child.port)
            peaks.append(child.rss())
            # Measured ~25 KiB per idle session and ~20 KiB per connection that has
            # not sent CONNECT (issue 9 item 9 saw 27-35 KiB): bound at 64 KiB.
            per_connection = (peaks[-1] - base) / 300
            assert per_connection < 64 * KiB, f"{per_connection / KiB:.0f} KiB per connection"
            for raw in idle:
                await raw.reset()
            for stream in silent:
                await stream.aclose()
            await anyio.sleep(0.3)
            await still_serving(child.port)
        # A second round of 300 reuses what the first gave back.
        assert peaks[1] - peaks[0] < 8 * MiB, f"grew {(peaks[1] - peaks[0]) / MiB:.1f} MiB"


HOSTILE_PATTERNS = [
    "/topic/" + "**a" * 10 + "**b",  # item 5's bomb
    "/topic/" + "*a" * 40 + "b",  # many single-segment stars
    "/topic/" + "**." * 60 + "x",  # many deep wildcards across separators
    "/topic/" + "*" * 300,  # a run of stars
    "/topic/" + "a*" * 600,  # longer than the broker may allow
]
HOSTILE_DESTINATIONS = [
    "/topic/" + "a" * 4000,
    "/topic/" + "a." * 2000,
    "/topic/" + "a/" * 2000 + "b",
    "/topic/" + "ab" * 2000,
]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_abuse_hostile_patterns(anyio_backend: str) -> None:
    # In a child process, so that a pattern that freezes the broker cannot
    # freeze the test; one backend, because matching does no I/O.
    with BrokerProcess(anyio_backend) as child:
        async with Canary(child.port, disconnect_timeout=0.5) as canary:
            holders = []
            for i, pattern in enumerate(HOSTILE_PATTERNS):
                raw = await RawClient.connected(child.port)
                await raw.send(
                    "SUBSCRIBE", [("id", str(i)), ("destination", pattern), ("receipt", "r")]
                )
                reply = await raw.frame(timeout=2)
                assert reply is not None and reply.command in ("RECEIPT", "ERROR"), reply
                if reply.command == "RECEIPT":
                    holders.append(raw)
            assert len(holders) >= 3  # refusing an over-long pattern is fine, not all
            sender = await RawClient.connected(child.port)
            for n, destination in enumerate(HOSTILE_DESTINATIONS):
                await sender.write(send_frame(destination, b"x", [("receipt", str(n))]))
                await sender.receipt(str(n), timeout=2.0)  # hang guards, not speed tests
                await canary.ping(timeout=2.0)
            assert child.alive()


async def test_abuse_websocket_clients_killed_mid_frame(anyio_backend: str) -> None:
    """The WebSocket listener's session ends the same ways: consumers that stop in
    the middle of a frame (inside a WebSocket message, or between two) and then
    vanish without a Close, half of them reset, lose nothing."""
    count = 300
    async with (
        embedded(ws=[("127.0.0.1", 0, "/ws")]) as broker,
        Canary(tcp_port(broker)) as canary,
    ):
        doomed = [await WsRawClient.connected(ws_port(broker)) for _ in range(30)]
        for raw in doomed:
            await raw.subscribe("/queue/ws", "d", ack="client", headers=[("prefetch-count", "4")])
        for i in range(count):
            broker.publish("/queue/ws", str(i))
        seen: set[str] = set()
        for i, raw in enumerate(doomed):
            for _ in range(2):
                frame = await raw.frame()
                assert frame is not None and frame.command == "MESSAGE"
                seen.add(frame.get("message-id") or "")
            await raw.write(b"SEND\ndestination:/queue/elsewhere\ncontent-length:50\n\nhal")
            await (raw.reset() if i % 2 else raw.aclose())  # no WebSocket Close either way
        await canary.ping()
        async with Clients(tcp_port(broker)) as clients:
            survivor = await clients.connected()
            await survivor.subscribe("/queue/ws", "s")
            got: dict[int, Frame] = {}
            with anyio.fail_after(10):
                while len(got) < count:
                    frame = await survivor.frame()
                    assert frame is not None
                    got[seqs([frame])[0]] = frame
        assert set(got) == set(range(count))
        redelivered = {f.get("message-id") for f in got.values() if f.get("redelivered") == "true"}
        assert seen <= redelivered and len(redelivered) <= 30 * 4
        with anyio.fail_after(5):
            while broker.stats["sessions"] > 1:
                await anyio.sleep(0.02)
        assert broker.stats["published"] == count + canary.sent  # no half frame published
        await canary.ping()
