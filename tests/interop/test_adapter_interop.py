"""Our asyncio and trio clients against real brokers: RabbitMQ 3.10 and ActiveMQ 5.17.

Every test runs on both AnyIO backends; ``broker`` runs it against both
brokers. Destinations are unique per test, so tests never see each other's
messages.
"""

from __future__ import annotations

import itertools
import uuid

import anyio
import pytest

from stomp_proto.asyncio import Client, ConnectionLost, ReconnectPolicy, connect

from .brokers import Broker, client_tls_context

pytestmark = pytest.mark.anyio
_counter = itertools.count()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def dest(kind: str = "queue") -> str:
    return f"/{kind}/sp-{next(_counter)}-{uuid.uuid4().hex[:8]}"


def client(broker: Broker, **options: object) -> Client:
    options.setdefault("login", broker.login)
    options.setdefault("passcode", broker.passcode)
    options.setdefault("vhost", broker.vhost)
    options.setdefault("connect_timeout", 15)
    options.setdefault("receipt_timeout", 15)
    return connect(broker.host, broker.stomp_port, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
async def test_queue_round_trip_in_every_version(broker: Broker, version: str) -> None:
    queue = dest()
    headers = (("x-plain", "value"),) if version == "1.0" else (("x-escaped", "a:b\\c"),)
    async with client(broker, versions=(version,)) as c:
        assert c.version == version
        sub = await c.subscribe(queue)
        await c.send(queue, b"bin\x00ary\x00", headers=headers, receipt=True)
        with anyio.fail_after(10):
            message = await sub.get()
        assert message.body == b"bin\x00ary\x00"
        assert message.destination == queue
        assert headers[0] in message.headers


async def test_topic_reaches_every_subscriber(broker: Broker) -> None:
    topic = dest("topic")
    async with client(broker) as a, client(broker) as b:
        sub_a = await a.subscribe(topic)
        sub_b = await b.subscribe(topic)
        await a.send(topic, "tick", receipt=True)
        with anyio.fail_after(10):
            assert (await sub_a.get()).text() == "tick"
            assert (await sub_b.get()).text() == "tick"


async def test_client_individual_ack_and_redelivery(broker: Broker) -> None:
    queue = dest()
    async with client(broker) as c:
        sub = await c.subscribe(queue, ack="client-individual")
        for i in range(3):
            await c.send(queue, f"m{i}", receipt=True)
        with anyio.fail_after(10):
            got = [await sub.get() for _ in range(3)]
        assert [m.text() for m in got] == ["m0", "m1", "m2"]
        await got[1].ack(receipt=True)
    # m0 and m2 were never acknowledged: the broker redelivers them.
    async with client(broker) as c:
        sub = await c.subscribe(queue, ack="client-individual")
        with anyio.fail_after(10):
            again = sorted([(await sub.get()).text() for _ in range(2)])
        assert again == ["m0", "m2"]


async def test_client_ack_is_cumulative(broker: Broker) -> None:
    queue = dest()
    async with client(broker) as c:
        sub = await c.subscribe(queue, ack="client")
        for i in range(3):
            await c.send(queue, f"m{i}", receipt=True)
        with anyio.fail_after(10):
            got = [await sub.get() for _ in range(3)]
        await got[1].ack(receipt=True)  # settles m0 and m1
    async with client(broker) as c:
        sub = await c.subscribe(queue, ack="client")
        with anyio.fail_after(10):
            assert (await sub.get()).text() == "m2"


async def test_nack_requeues_on_rabbitmq(rabbitmq: Broker) -> None:
    queue = dest()
    async with client(rabbitmq) as c:
        sub = await c.subscribe(queue, ack="client-individual")
        await c.send(queue, "again", receipt=True)
        with anyio.fail_after(10):
            first = await sub.get()
            await first.nack()
            second = await sub.get()
        assert second.text() == "again"
        assert ("redelivered", "true") in second.headers
        await second.ack(receipt=True)


async def test_transactions_commit_and_abort(broker: Broker) -> None:
    queue = dest()
    async with client(broker) as c:
        sub = await c.subscribe(queue)
        with pytest.raises(RuntimeError):
            async with c.transaction() as tx:
                await tx.send(queue, "dropped")
                raise RuntimeError("abort it")
        async with c.transaction() as tx:
            await tx.send(queue, "one")
            await tx.send(queue, "two")
        with anyio.fail_after(10):
            assert [(await sub.get()).text() for _ in range(2)] == ["one", "two"]
        await c.send(queue, "three", receipt=True)
        with anyio.fail_after(10):
            assert (await sub.get()).text() == "three"  # "dropped" never came


async def test_large_message(broker: Broker) -> None:
    queue = dest()
    body = bytes(range(256)) * 4096  # 1 MiB with NULs
    async with client(broker) as c:
        sub = await c.subscribe(queue)
        await c.send(queue, body, receipt=True)
        with anyio.fail_after(20):
            assert (await sub.get()).body == body


async def test_heartbeats_both_ways_keep_an_idle_connection(broker: Broker) -> None:
    queue = dest()
    async with client(broker, heart_beat=(1000, 1000)) as c:
        assert c._conn is not None
        to_server, to_client = c._conn.heartbeat_intervals
        assert to_server > 0 and to_client > 0
        await anyio.sleep(2.5 * max(to_server, to_client) / 1000)
        sub = await c.subscribe(queue)
        await c.send(queue, "still here", receipt=True)
        with anyio.fail_after(10):
            assert (await sub.get()).text() == "still here"


async def test_tls_against_rabbitmq(rabbitmq_tls: Broker) -> None:
    assert rabbitmq_tls.tls_port is not None and rabbitmq_tls.ca_file is not None
    queue = dest()
    context = client_tls_context(rabbitmq_tls.ca_file)
    async with connect(
        rabbitmq_tls.host,
        rabbitmq_tls.tls_port,
        ssl=context,
        server_hostname="localhost",
        login=rabbitmq_tls.login,
        passcode=rabbitmq_tls.passcode,
        vhost=rabbitmq_tls.vhost,
    ) as c:
        sub = await c.subscribe(queue)
        await c.send(queue, b"\x00secret", receipt=True)
        with anyio.fail_after(10):
            assert (await sub.get()).body == b"\x00secret"


async def test_tls_verifies_the_certificate_by_default(rabbitmq_tls: Broker) -> None:
    assert rabbitmq_tls.tls_port is not None
    with pytest.raises(OSError):
        async with connect(rabbitmq_tls.host, rabbitmq_tls.tls_port, ssl=True, connect_timeout=10):
            pass  # pragma: no cover


async def test_websocket_against_rabbitmq_web_stomp(rabbitmq: Broker) -> None:
    queue = dest()
    async with connect(
        rabbitmq.ws_url,  # type: ignore[attr-defined]
        login=rabbitmq.login,
        passcode=rabbitmq.passcode,
        vhost=rabbitmq.vhost,
        heart_beat=(1000, 1000),
    ) as c:
        assert c.version == "1.2"
        sub = await c.subscribe(queue)
        big = "€uro " * 40_000  # 240 KB in one WebSocket message each way
        await c.send(queue, "über websocket", receipt=True)
        await c.send(queue, big, receipt=True)
        with anyio.fail_after(10):
            assert (await sub.get()).text() == "über websocket"
            assert (await sub.get()).text() == big
        # Binary bodies need RabbitMQ's web_stomp.ws_frame = binary: by default it
        # sends every MESSAGE as a text frame, which must be valid UTF-8 (browsers
        # and wsproto close the connection otherwise).


async def test_reconnect_after_a_broker_restart(broker: Broker) -> None:
    queue = dest()
    policy = ReconnectPolicy(initial_delay=0.2, max_delay=1.0, max_attempts=60, jitter=0.1)
    async with client(broker, reconnect=policy, heart_beat=(0, 0)) as c:
        sub = await c.subscribe(queue)
        await c.send(queue, "before", receipt=True)
        with anyio.fail_after(10):
            before = await sub.get()
        assert before.text() == "before"
        epoch = c._epoch
        await anyio.to_thread.run_sync(broker.restart)
        with anyio.fail_after(60):
            while c._epoch == epoch or c._conn is None:
                await anyio.sleep(0.1)
        # Re-subscribed on the new connection: the same iterator keeps delivering.
        await c.send(queue, "after", receipt=True)
        with anyio.fail_after(10):
            assert (await sub.get()).text() == "after"
        with pytest.raises(ConnectionLost, match="connection that has since been lost"):
            await before.ack()
