"""The relay through an upstream failure: RabbitMQ restarted under a steady load.

A private RabbitMQ (its own ports and directory, started and stopped by this
test: the session broker is shared) and two of our nodes relaying to it. A
publisher on node B sends a numbered, persistent message to a queue every
few milliseconds, each SEND awaiting its RECEIPT, and a tick to a topic; a
consumer on node A takes the queue, a subscriber on A the topic. Midway the
upstream is stopped and started again. The clients' own connections to the
nodes must stay up throughout (no reconnect policy: a dropped connection
would end their subscriptions with an error), and every SEND must be
accounted for: confirmed (then delivered, perhaps twice: at least once) or
refused with ERROR, never silently gone. After the upstream is back the topic
subscriber gets new messages without having done anything.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator

import anyio
import pytest

from stomp_proto.asyncio import StompError, connect
from stomp_proto.broker import Broker, Relay, RelayAvailability

from .brokers import HOST, BrokerNotInstalled, BrokerStartError, RabbitMQ

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def private_rabbitmq() -> Iterator[RabbitMQ]:
    """A RabbitMQ of this test's own, which it may stop and start."""
    try:
        broker = RabbitMQ()
    except BrokerNotInstalled as exc:
        if os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}:
            pytest.fail(f"{exc} (CI=true: interop tests never skip)", pytrace=False)
        pytest.skip(str(exc))
    try:
        broker.start()
    except BrokerStartError as exc:
        broker.close()
        pytest.fail(str(exc), pytrace=False)
    try:
        yield broker
    finally:
        broker.close()


async def test_clients_stay_connected_while_the_upstream_restarts(
    private_rabbitmq: RabbitMQ,
) -> None:
    rabbit = private_rabbitmq
    url = f"stomp://guest:guest@{HOST}:{rabbit.stomp_port}"
    queue = f"/queue/fault-{uuid.uuid4().hex[:8]}"
    topic = f"/topic/fault-{uuid.uuid4().hex[:8]}"
    events: list[RelayAvailability] = []
    relays = [
        Relay([url], connections=1, send_timeout=40.0, on_availability=[events.append])
        for _ in range(2)
    ]
    confirmed: set[int] = set()
    refused: set[int] = set()
    received: list[int] = []
    ticks: list[tuple[bool, int]] = []  # (after the restart?, n)
    restarted = anyio.Event()
    stop_publishing = anyio.Event()
    async with (
        Broker(tcp=[(HOST, 0)], ws=[], relay=relays[0]) as a,
        Broker(tcp=[(HOST, 0)], ws=[], relay=relays[1]) as b,
    ):
        with anyio.fail_after(30):
            while not all(r.available for r in relays):
                await anyio.sleep(0.05)
        port_a, port_b = a.addresses[0][2], b.addresses[0][2]
        async with (
            connect(HOST, port_a, receipt_timeout=60) as consumer,
            connect(HOST, port_a, receipt_timeout=60) as listener,
        ):
            jobs = await consumer.subscribe(queue, ack="client-individual")
            news = await listener.subscribe(topic)

            async def consume() -> None:
                async for message in jobs:
                    received.append(int(message.text()))
                    await message.ack()

            async def listen() -> None:
                async for message in news:
                    ticks.append((restarted.is_set(), int(message.text())))

            async def publish() -> None:
                numbers = itertools.count()
                while not stop_publishing.is_set():
                    async with connect(HOST, port_b, receipt_timeout=60) as publisher:
                        try:
                            while not stop_publishing.is_set():
                                n = next(numbers)
                                try:
                                    await publisher.send(
                                        queue,
                                        str(n),
                                        receipt=True,
                                        headers=[("persistent", "true")],
                                    )
                                except StompError:
                                    refused.add(n)  # said so: the session ends
                                    raise
                                confirmed.add(n)
                                await publisher.send(topic, str(n))
                                await anyio.sleep(0.02)
                        except StompError:
                            continue

            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                tg.start_soon(listen)
                tg.start_soon(publish)
                with anyio.fail_after(60):
                    while len(confirmed) < 30:
                        await anyio.sleep(0.05)
                await anyio.to_thread.run_sync(rabbit.restart)  # stop, then start again
                with anyio.fail_after(60):
                    while not all(r.available for r in relays):
                        await anyio.sleep(0.05)
                restarted.set()
                with anyio.fail_after(60):
                    while sum(1 for after, _ in ticks if after) < 20:
                        await anyio.sleep(0.05)
                stop_publishing.set()
                with anyio.fail_after(60):
                    while not confirmed <= set(received):
                        await anyio.sleep(0.05)
                tg.cancel_scope.cancel()
            # The clients' connections to node A never dropped.
            assert consumer.connected is not None and consumer._epoch == 1
            assert listener.connected is not None and listener._epoch == 1
    # Every SEND is accounted for: confirmed and delivered, or refused with ERROR.
    sent = confirmed | refused
    assert sent == set(range(max(sent) + 1))
    assert confirmed <= set(received)
    assert len(confirmed) > 30
    # The outage was told, naming the upstream, and so was the recovery.
    upstream = f"stomp://{HOST}:{rabbit.stomp_port}"
    down = [e for e in events if not e.available]
    assert down and all(e.upstream == upstream for e in events)
    assert events[-1].available
    assert {e.connection for e in down} >= {"system", "pool-1"}


async def test_the_relay_fails_over_to_the_next_address(
    private_rabbitmq: RabbitMQ, rabbitmq: RabbitMQ
) -> None:
    # Two addresses (here two unrelated brokers; in production, the nodes of
    # one cluster): when the first goes away, the relay moves to the second
    # and re-establishes its subscriptions there.
    first = f"stomp://guest:guest@{HOST}:{private_rabbitmq.stomp_port}"
    second = f"stomp://guest:guest@{HOST}:{rabbitmq.stomp_port}"
    events: list[RelayAvailability] = []
    relay = Relay([first, second], connections=1, on_availability=[events.append])
    topic = f"/topic/failover-{uuid.uuid4().hex[:8]}"
    async with Broker(tcp=[(HOST, 0)], ws=[], relay=relay) as node:
        with anyio.fail_after(30):
            while not relay.available:
                await anyio.sleep(0.05)
        async with connect(HOST, node.addresses[0][2], receipt_timeout=60) as c:
            sub = await c.subscribe(topic)
            await anyio.to_thread.run_sync(private_rabbitmq.stop)
            with anyio.fail_after(60):
                while not (
                    relay.available
                    and all(
                        conn.upstream is not None and conn.upstream.port == rabbitmq.stomp_port
                        for conn in relay.connections
                    )
                ):
                    await anyio.sleep(0.05)
                await c.send(topic, "on the second address", receipt=True)
                assert (await sub.get()).text() == "on the second address"
            assert c._epoch == 1
    assert [e.upstream for e in events if e.available][
        -1
    ] == f"stomp://{HOST}:{rabbitmq.stomp_port}"
