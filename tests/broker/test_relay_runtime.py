"""The relay's runtime (stomp_proto/broker/_relay_io.py) with our own broker as the upstream.

No RabbitMQ here (tests/interop/test_relay*.py has it): the upstream is a
plain :class:`Broker` in this process, on a free port, which the tests stop
and start again on the same port to play an outage. Two nodes relay to it;
our asyncio clients connect to the nodes only.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest

from stomp_proto.asyncio import ReconnectPolicy, StompError, connect
from stomp_proto.broker import Broker, Relay, RelayAvailability

pytestmark = pytest.mark.anyio
HOST = "127.0.0.1"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)


@asynccontextmanager
async def upstream(port: int) -> AsyncIterator[Broker]:
    async with Broker(tcp=[(HOST, port)], ws=[], heart_beat=(0, 0)) as broker:
        yield broker


@asynccontextmanager
async def nodes(port: int, count: int = 2, **options: Any) -> AsyncIterator[list[Broker]]:
    options.setdefault("connections", 1)
    # Back on its feet quickly: the upstream here restarts in milliseconds.
    options.setdefault(
        "reconnect", ReconnectPolicy(initial_delay=0.05, max_delay=0.2, max_attempts=None)
    )
    async with AsyncExitStack() as stack:
        started = []
        for _ in range(count):
            relay = Relay([f"stomp://{HOST}:{port}"], **options)
            node = Broker(tcp=[(HOST, 0)], ws=[], relay=relay)
            started.append(await stack.enter_async_context(node))
        yield started


def available(*nodes: Broker) -> Callable[[], bool]:
    return lambda: all(n.relay is not None and n.relay.available for n in nodes)


def client(node: Broker, **options: Any) -> Any:
    options.setdefault("receipt_timeout", 10)
    return connect(HOST, node.addresses[0][2], **options)


async def test_topics_and_queues_cross_nodes_through_the_upstream() -> None:
    port = free_port()
    async with upstream(port) as up, nodes(port) as (a, b):
        await until(available(a, b))
        async with client(a) as on_a, client(b) as on_b:
            ticks = await on_a.subscribe("/topic/price.*")
            jobs = await on_a.subscribe("/queue/jobs", ack="client-individual")
            await on_b.send("/topic/price.ACME", "12.5", receipt=True)
            await on_b.send("/queue/jobs", "job", receipt=True)
            with anyio.fail_after(5):
                tick = await ticks.get()
                job = await jobs.get()
            assert (tick.destination, tick.text()) == ("/topic/price.ACME", "12.5")
            assert job.text() == "job"
            await job.ack(receipt=True)
        # The upstream saw three connections per node, not one per client.
        assert up.stats["sessions"] == 4


async def run_upstream(port: int, *, task_status: anyio.abc.TaskStatus[anyio.CancelScope]) -> None:
    """The upstream broker until its cancel scope (handed to the starter) is cancelled."""
    with anyio.CancelScope() as scope:
        async with upstream(port):
            task_status.started(scope)
            await anyio.sleep_forever()


async def test_clients_stay_connected_through_an_upstream_outage() -> None:
    port = free_port()
    events: list[RelayAvailability] = []
    async with anyio.create_task_group() as upstreams:
        up = await upstreams.start(run_upstream, port)
        async with nodes(port, send_timeout=10.0, on_availability=[events.append]) as (a, b):
            await until(available(a, b))
            relay_a, relay_b = a.relay, b.relay
            assert relay_a is not None and relay_b is not None
            async with client(a) as on_a, client(b) as on_b:
                ticks = await on_a.subscribe("/topic/news")
                jobs = await on_a.subscribe("/queue/jobs", ack="client-individual")
                await on_b.send("/topic/news", "before", receipt=True)
                with anyio.fail_after(5):
                    assert (await ticks.get()).text() == "before"
                up.cancel()  # the upstream goes away
                await until(lambda: not relay_a.available and not relay_b.available)
                done: list[bool] = []

                async def send_during_the_outage() -> None:
                    await on_b.send("/queue/jobs", "during", receipt=True)
                    done.append(True)

                async with anyio.create_task_group() as tg:
                    tg.start_soon(send_during_the_outage)
                    await until(lambda: relay_b.backlog_bytes > 0)  # kept, not refused
                    assert not done  # its RECEIPT waits for the upstream's
                    up = await upstreams.start(run_upstream, port)  # back, same port
                assert done
                with anyio.fail_after(5):
                    job = await jobs.get()  # re-subscribed upstream by the relay
                assert job.text() == "during"
                await job.ack(receipt=True)
                await on_b.send("/topic/news", "after", receipt=True)
                with anyio.fail_after(5):
                    assert (await ticks.get()).text() == "after"
                # The clients never reconnected.
                assert on_a._epoch == 1 and on_b._epoch == 1
        up.cancel()
    down = [e for e in events if not e.available]
    assert {e.connection for e in down} == {"system", "pool-1"}
    assert all(e.upstream == f"stomp://{HOST}:{port}" for e in events)
    assert events[-1].available


async def test_a_send_that_waits_too_long_gets_error() -> None:
    port = free_port()  # nothing listens there
    async with nodes(port, 1, send_timeout=0.3) as (a,), client(a) as c:
        await c.subscribe("/topic/t", receipt=False)  # accepted: live once the upstream is
        with anyio.fail_after(5), pytest.raises(StompError, match="unavailable within 0.3 s"):
            await c.send("/queue/q", "nowhere", receipt=True)


async def test_a_fast_producer_is_held_back_not_refused() -> None:
    port = free_port()
    async with upstream(port), nodes(port, 1, max_backlog_bytes=64 * 1024) as (a,):
        await until(available(a))
        assert a.relay is not None
        async with client(a) as producer, client(a) as consumer:
            sub = await consumer.subscribe("/queue/stream")
            for i in range(300):  # 300 x 1 KiB: over the 16 KiB congestion mark
                await producer.send("/queue/stream", b"%04d" % i + b"x" * 1020)
            with anyio.fail_after(10):
                got = [(await sub.get()).body[:4] for _ in range(300)]
            assert got == [b"%04d" % i for i in range(300)]
            assert a.relay.stats["refused"] == 0 and a.relay.backlog_bytes == 0
