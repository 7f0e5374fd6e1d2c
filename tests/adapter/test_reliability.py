"""Back-pressure, reconnect semantics and cross-backend use of the adapters."""

from __future__ import annotations

import threading

import anyio
import pytest

from stomp_proto import Message, Send, Subscribe
from stomp_proto.asyncio import ConnectionLost, ReconnectPolicy, ServerSession, connect, serve

from .conftest import EchoServer

pytestmark = pytest.mark.anyio


async def test_slow_consumer_stops_the_reader_instead_of_buffering(anyio_backend: str) -> None:
    count = 50

    async def flood(session: ServerSession) -> None:
        await session.next_event()
        await session.accept(heart_beat=(100, 100))
        async for event in session:
            if isinstance(event, Subscribe):
                await session.send(event.make_receipt())
                for i in range(count):
                    await session.send(
                        Message(
                            destination="/q",
                            message_id=str(i),
                            subscription=event.id,
                            body=b"x" * 100,
                        )
                    )

    async with anyio.create_task_group() as tg:
        port = await tg.start(serve, flood, "127.0.0.1", 0)
        async with connect("127.0.0.1", port, heart_beat=(100, 100)) as client:
            sub = await client.subscribe("/q", buffer=2)
            await anyio.sleep(1.0)  # five server heart-beat intervals, twice the grace
            assert sub._receive.statistics().current_buffer_used == 2
            assert client._reading is False  # the reader waits for room
            ids = [int((await sub.get()).message_id) for _ in range(count)]
            assert ids == list(range(count))
            assert not client.closed  # no false heart-beat timeout while blocked
        tg.cancel_scope.cancel()


class Restartable:
    """Our own server on a fixed port, which a test can kill and bring back."""

    def __init__(self, handler: object) -> None:
        self.handler = handler
        self.port = 0
        self.scope: anyio.CancelScope | None = None

    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        async def run(*, task_status: anyio.abc.TaskStatus[int]) -> None:
            with anyio.CancelScope() as self.scope:
                await serve(self.handler, "127.0.0.1", self.port, task_status=task_status)  # type: ignore[arg-type]

        self.port = await tg.start(run)

    def kill(self) -> None:
        assert self.scope is not None
        self.scope.cancel()


async def test_reconnect_fails_pending_receipts_and_aborts_transactions(anyio_backend: str) -> None:
    answer_receipts = anyio.Event()
    server = EchoServer()

    async def handler(session: ServerSession) -> None:
        if not answer_receipts.is_set():
            await session.next_event()
            await session.accept()
            async for _event in session:
                pass  # swallow everything: no RECEIPT ever
        else:
            await server.handle(session)

    box = Restartable(handler)
    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, jitter=0.0, max_attempts=100)
    async with anyio.create_task_group() as tg:
        await box.start(tg)
        async with connect("127.0.0.1", box.port, reconnect=policy, heart_beat=(0, 0)) as client:
            sub = await client.subscribe("/queue/r", receipt=False)
            tx = await client.begin()
            epoch = client._epoch
            failures: list[BaseException] = []

            async def wait_for_receipt() -> None:
                try:
                    await client.send("/queue/r", "lost?", receipt=True)
                except ConnectionLost as exc:
                    failures.append(exc)

            tg.start_soon(wait_for_receipt)
            await anyio.sleep(0.1)
            box.kill()
            answer_receipts.set()
            await anyio.sleep(0.1)
            await box.start(tg)
            with anyio.fail_after(5):
                while client._epoch == epoch or client._conn is None:
                    await anyio.sleep(0.02)
                while not failures:
                    await anyio.sleep(0.02)
            assert "connection lost before the RECEIPT" in str(failures[0])
            with pytest.raises(ConnectionLost, match="aborted when its connection was lost"):
                await tx.send("/queue/r", "never")
            await client.send("/queue/r", "after", receipt=True)  # re-subscribed
            with anyio.fail_after(5):
                assert (await sub.get()).text() == "after"
        tg.cancel_scope.cancel()
    # The transaction was never replayed on the new connection.
    assert [e.body for e in server.seen if isinstance(e, Send)] == [b"after"]
    assert not any(getattr(e, "transaction", None) for e in server.seen)


async def test_gives_up_after_max_attempts(anyio_backend: str) -> None:
    server = EchoServer()
    box = Restartable(server.handle)
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.02, jitter=0.0, max_attempts=3)
    async with anyio.create_task_group() as tg:
        await box.start(tg)
        async with connect("127.0.0.1", box.port, reconnect=policy) as client:
            sub = await client.subscribe("/queue/g")
            box.kill()
            with anyio.fail_after(5), pytest.raises(ConnectionLost):
                await sub.get()
            assert client.closed
        tg.cancel_scope.cancel()


def test_reconnect_policy_delays() -> None:
    import random

    policy = ReconnectPolicy(initial_delay=1, max_delay=5, multiplier=2, jitter=0, max_attempts=5)
    assert list(policy.delays()) == [1, 2, 4, 5, 5]
    jittered = list(ReconnectPolicy(jitter=0.5, max_attempts=50).delays(random.Random(7)))
    assert all(0.25 <= d <= 30 * 1.5 for d in jittered)
    assert len(set(jittered)) > 10


def test_trio_client_against_asyncio_server() -> None:
    server = EchoServer()
    ready = threading.Event()
    stop = threading.Event()

    async def run_server() -> None:
        async with anyio.create_task_group() as tg:
            server.port = await tg.start(serve, server.handle, "127.0.0.1", 0)
            ready.set()
            while not stop.is_set():
                await anyio.sleep(0.02)
            tg.cancel_scope.cancel()

    thread = threading.Thread(target=anyio.run, args=(run_server,), kwargs={"backend": "asyncio"})
    thread.start()
    try:
        assert ready.wait(10)

        async def client_main() -> str:
            async with connect("127.0.0.1", server.port) as client:
                sub = await client.subscribe("/queue/x")
                await client.send("/queue/x", "from trio")
                return (await sub.get()).text()

        assert anyio.run(client_main, backend="trio") == "from trio"
    finally:
        stop.set()
        thread.join(10)


async def test_a_local_protocol_error_ends_the_connection_and_reconnects(
    echo_server: EchoServer,
) -> None:
    """What the core refuses while sending puts its connection in the ERROR state: the
    caller gets the LocalProtocolError, the link ends, and the policy opens a new one."""
    from stomp_proto import Limits, LocalProtocolError

    policy = ReconnectPolicy(initial_delay=0.01, jitter=0.0, max_attempts=5)
    limits = Limits(max_subscriptions=1)
    async with connect("127.0.0.1", echo_server.port, reconnect=policy, limits=limits) as client:
        first = await client.subscribe("/queue/one")
        epoch = client._epoch
        with pytest.raises(LocalProtocolError, match="limit of 1 subscriptions"):
            await client.subscribe("/queue/two")
        with anyio.fail_after(5):
            while client._epoch == epoch or client._conn is None:
                await anyio.sleep(0.01)
        await client.send("/queue/one", "again", receipt=True)  # re-subscribed
        assert (await first.get()).text() == "again"


async def test_a_local_protocol_error_without_a_policy_closes_the_client(
    echo_server: EchoServer,
) -> None:
    from stomp_proto import Limits, LocalProtocolError

    limits = Limits(max_subscriptions=1)
    async with connect("127.0.0.1", echo_server.port, limits=limits) as client:
        sub = await client.subscribe("/queue/one")
        with pytest.raises(LocalProtocolError):
            await client.subscribe("/queue/two")
        with anyio.fail_after(5), pytest.raises(ConnectionLost, match="local protocol error"):
            await sub.get()
        assert client.closed
        with pytest.raises(ConnectionLost):
            await client.send("/queue/one", "never")
