"""The broker's semantics, through our own client (issue 5, stomp-notes §4 G and I)."""

from __future__ import annotations

import anyio
import pytest

from stomp_proto.asyncio import StompError
from stomp_proto.broker import Broker, compile_pattern

from .conftest import client

pytestmark = pytest.mark.anyio


def test_pattern_grammar() -> None:
    star = compile_pattern("/topic/price.stock.*")
    assert star is not None
    assert star.match("/topic/price.stock.IBM")
    assert not star.match("/topic/price.stock.IBM.X")
    assert not star.match("/topic/price.stock/IBM")
    deep = compile_pattern("/topic/price.**")
    assert deep is not None
    assert deep.match("/topic/price.stock.IBM") and deep.match("/topic/price.stock.IBM.X")
    assert compile_pattern("/topic/plain") is None
    mid = compile_pattern("/topic/*/orders")
    assert mid is not None and mid.match("/topic/eu/orders") and not mid.match("/topic/eu/x/orders")


async def test_topic_fan_out_with_patterns(broker: Broker) -> None:
    async with client(broker) as a, client(broker) as b:
        exact = await a.subscribe("/topic/price.stock.IBM")
        star = await a.subscribe("/topic/price.stock.*")
        other = await b.subscribe("/topic/price.**")
        await b.send("/topic/price.stock.IBM", "101.5", receipt=True)
        await b.send("/topic/price.bond.X", "99", receipt=True)
        with anyio.fail_after(5):
            assert (await exact.get()).text() == "101.5"
            got = await star.get()
            assert got.destination == "/topic/price.stock.IBM"  # the real destination
            assert got.subscription.id == star.id
            assert [(await other.get()).destination for _ in range(2)] == [
                "/topic/price.stock.IBM",
                "/topic/price.bond.X",
            ]


async def test_topic_without_subscribers_drops(broker: Broker) -> None:
    async with client(broker) as c:
        await c.send("/topic/nobody", "lost", receipt=True)
        sub = await c.subscribe("/topic/nobody")
        await c.send("/topic/nobody", "seen", receipt=True)
        with anyio.fail_after(5):
            assert (await sub.get()).text() == "seen"


async def test_queue_round_robin_and_backlog(broker: Broker) -> None:
    async with client(broker) as producer:
        for i in range(4):
            await producer.send("/queue/work", f"early{i}")  # nobody subscribed yet: kept
        await producer.send("/queue/work", "sync", receipt=True)
        async with client(broker) as a, client(broker) as b:
            qa = await a.subscribe("/queue/work")
            with anyio.fail_after(5):
                backlog = [(await qa.get()).text() for _ in range(5)]
            assert backlog == ["early0", "early1", "early2", "early3", "sync"]
            qb = await b.subscribe("/queue/work")
            for i in range(10):
                await producer.send("/queue/work", str(i))
            with anyio.fail_after(5):
                got_a = [int((await qa.get()).text()) for _ in range(5)]
                got_b = [int((await qb.get()).text()) for _ in range(5)]
            assert sorted(got_a + got_b) == list(range(10))
            assert got_a == sorted(got_a) and got_b == sorted(got_b)


async def test_unacked_messages_go_to_another_consumer_marked_redelivered(broker: Broker) -> None:
    async with client(broker) as producer, client(broker) as survivor:
        async with client(broker) as doomed:
            sub = await doomed.subscribe("/queue/r", ack="client-individual")
            for i in range(3):
                await producer.send("/queue/r", f"m{i}", receipt=True)
            with anyio.fail_after(5):
                held = [await sub.get() for _ in range(3)]
            await held[1].ack(receipt=True)
        # doomed disconnected holding m0 and m2
        other = await survivor.subscribe("/queue/r", ack="auto")
        with anyio.fail_after(5):
            again = [await other.get() for _ in range(2)]
        assert [m.text() for m in again] == ["m0", "m2"]
        assert all(("redelivered", "true") in m.headers for m in again)


async def test_client_ack_is_cumulative_and_nack_requeues(broker: Broker) -> None:
    async with client(broker) as c:
        sub = await c.subscribe("/queue/c", ack="client")
        for i in range(3):
            await c.send("/queue/c", f"m{i}")
        with anyio.fail_after(5):
            got = [await sub.get() for _ in range(3)]
        await got[1].ack(receipt=True)  # m0 and m1
        await got[2].nack(receipt=True)  # m2 comes back
        with anyio.fail_after(5):
            again = await sub.get()
        assert again.text() == "m2" and ("redelivered", "true") in again.headers
        await again.ack(receipt=True)
    assert broker.stats["queued"] == 0


async def test_nack_without_requeue_drops(broker: Broker) -> None:
    async with client(broker) as c:
        sub = await c.subscribe("/queue/n", ack="client-individual")
        await c.send("/queue/n", "bad")
        with anyio.fail_after(5):
            message = await sub.get()
        await c._request(
            message.event.make_nack().__class__(
                id=message.event.ack, headers=(("requeue", "false"),)
            ),
            receipt=True,
        )
        await c.send("/queue/n", "good", receipt=True)
        with anyio.fail_after(5):
            assert (await sub.get()).text() == "good"


async def test_prefetch_count_limits_unacknowledged(broker: Broker) -> None:
    async with client(broker) as c, client(broker) as d:
        slow = await c.subscribe(
            "/queue/p", ack="client-individual", headers=(("prefetch-count", "1"),)
        )
        for i in range(3):
            await d.send("/queue/p", str(i), receipt=True)
        with anyio.fail_after(5):
            first = await slow.get()
        await anyio.sleep(0.1)
        assert broker.stats["queued"] == 2  # waiting for room
        await first.ack(receipt=True)
        with anyio.fail_after(5):
            assert (await slow.get()).text() == "1"


async def test_transactions(broker: Broker) -> None:
    async with client(broker) as c:
        sub = await c.subscribe("/queue/t", ack="client-individual")
        async with c.transaction() as tx:
            await tx.send("/queue/t", "a")
            await tx.send("/queue/t", "b")
            await anyio.sleep(0.05)
            assert broker.stats["published"] == 0  # held until COMMIT
        with anyio.fail_after(5):
            a, b = await sub.get(), await sub.get()
        assert (a.text(), b.text()) == ("a", "b")
        with pytest.raises(KeyError):
            async with c.transaction() as tx:
                await tx.ack(a)
                raise KeyError("abort")
        async with c.transaction() as tx:
            await tx.ack(b)
        await c.unsubscribe(sub)
        # a's ACK was aborted: a is redelivered; b's was committed.
        sub2 = await c.subscribe("/queue/t")
        with anyio.fail_after(5):
            assert (await sub2.get()).text() == "a"


async def test_open_transaction_is_aborted_on_disconnect(broker: Broker) -> None:
    async with client(broker) as c:
        tx = await c.begin()
        await tx.send("/queue/x", "never")
    assert broker.stats["published"] == 0


async def test_unknown_destination_is_an_error(broker: Broker) -> None:
    async with client(broker) as c:
        with pytest.raises(StompError, match="unknown destination '/nowhere'"):
            await c.send("/nowhere", "x", receipt=True)


async def test_pattern_on_a_queue_is_refused(broker: Broker) -> None:
    async with client(broker) as c:
        with pytest.raises(StompError, match="patterns are for /topic/"):
            await c.subscribe("/queue/*")


@pytest.mark.parametrize("broker_options", [{"users": {"alice": "secret"}}])
async def test_users(broker: Broker) -> None:
    async with client(broker, login="alice", passcode="secret") as c:
        await c.send("/topic/x", "ok", receipt=True)
    with pytest.raises(StompError, match="access refused"):
        async with client(broker, login="alice", passcode="wrong"):
            pass  # pragma: no cover


async def test_application_publish_and_stats(broker: Broker) -> None:
    async with client(broker) as c:
        sub = await c.subscribe("/topic/price.stock.*")
        assert (
            broker.publish("/topic/price.stock.ACME", '{"p": 1}', content_type="application/json")
            == 1
        )
        with anyio.fail_after(5):
            message = await sub.get()
        assert message.content_type == "application/json"
        stats = broker.stats
        assert stats["sessions"] == 1 and stats["published"] == 1 and stats["delivered"] == 1
    with pytest.raises(ValueError):
        broker.publish("/elsewhere", "x")


async def test_server_owned_headers_are_replaced(broker: Broker) -> None:
    async with client(broker) as c:
        sub = await c.subscribe("/queue/h")
        await c.send(
            "/queue/h",
            "x",
            headers=(("message-id", "evil"), ("subscription", "evil"), ("x-user", "kept")),
        )
        with anyio.fail_after(5):
            message = await sub.get()
        assert message.message_id != "evil"
        assert ("x-user", "kept") in message.headers
        assert [v for k, v in message.headers if k == "subscription"] == [sub.id]


async def test_order_from_one_producer(broker: Broker) -> None:
    async with client(broker) as c:
        sub = await c.subscribe("/topic/seq", buffer=1000)
        for i in range(500):
            await c.send("/topic/seq", str(i))
        with anyio.fail_after(10):
            assert [int((await sub.get()).text()) for _ in range(500)] == list(range(500))


async def test_garbage_from_one_client_does_not_disturb_others(broker: Broker) -> None:
    from .conftest import tcp_port

    async with client(broker) as c:
        sub = await c.subscribe("/topic/g")
        stream = await anyio.connect_tcp("127.0.0.1", tcp_port(broker))
        await stream.send(b"CONNECT\naccept-version:1.2\n\n\x00GARBAGE\n\n\x00")
        reply = b""
        with anyio.fail_after(5):
            while b"ERROR" not in reply:
                reply += await stream.receive()
        assert b"unknown command 'GARBAGE'" in reply
        half = await anyio.connect_tcp("127.0.0.1", tcp_port(broker))
        await half.send(
            b"CONNECT\naccept-version:1.2\n\n\x00SEND\ndestination:/topic/g\ncontent-len"
        )
        await half.aclose()  # mid-frame
        await c.send("/topic/g", "fine", receipt=True)
        with anyio.fail_after(5):
            assert (await sub.get()).text() == "fine"
        await stream.aclose()


async def test_a_message_a_1_0_client_cannot_carry_ends_only_that_session(broker: Broker) -> None:
    async with client(broker, versions=("1.0",)) as old, client(broker) as new:
        await old.subscribe("/topic/v", receipt=True)
        modern = await new.subscribe("/topic/v")
        await new.send("/topic/v", "x", headers=(("x-multi", "line\nbreak"),), receipt=True)
        with anyio.fail_after(5):
            assert ("x-multi", "line\nbreak") in (await modern.get()).headers
        with anyio.fail_after(5):
            while not old.closed:
                await anyio.sleep(0.02)
        await new.send("/topic/v", "still fine", receipt=True)
        with anyio.fail_after(5):
            assert (await modern.get()).text() == "still fine"
