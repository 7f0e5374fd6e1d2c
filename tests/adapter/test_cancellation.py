"""Cancellation leaves a session at once: once cancelled, the exit does not wait for a RECEIPT.

Each test gives the client a ``disconnect_timeout`` of 10 s and bounds the time
it takes to leave to well under that, on both backends, against a raw server
that never sends a RECEIPT (:class:`~.conftest.SilentServer`) and against our
broker. Without cancellation, the exit still waits for the RECEIPT.
"""

from __future__ import annotations

import asyncio
import time

import anyio
import pytest

from stomp_proto.asyncio import connect

from .conftest import BrokerBox, SilentServer

pytestmark = pytest.mark.anyio

#: Much less than the disconnect_timeout of 10 s, much more than a loaded machine needs.
BOUND = 1.0


async def test_move_on_after_leaves_at_once_and_says_disconnect(
    silent_server: SilentServer,
) -> None:
    start = time.monotonic()
    with anyio.move_on_after(0.2) as scope:
        async with connect(
            "127.0.0.1", silent_server.port, heart_beat=(0, 0), disconnect_timeout=10
        ) as client:
            await anyio.sleep_forever()
    took = time.monotonic() - start
    assert scope.cancelled_caught
    assert took < 0.2 + BOUND, took
    assert client.closed
    with anyio.fail_after(5):
        await silent_server.closed.wait()  # the connection is closed, not left open
    # A best-effort DISCONNECT, without a receipt header: nobody could read the RECEIPT.
    assert silent_server.frames()[-1] == b"DISCONNECT"


async def test_fail_after_raises_at_once(silent_server: SilentServer) -> None:
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.2):
            async with connect(
                "127.0.0.1", silent_server.port, heart_beat=(0, 0), disconnect_timeout=10
            ) as client:
                sub = await client.subscribe("/queue/never", receipt=False)
                await sub.get()
    assert time.monotonic() - start < 0.2 + BOUND


async def test_a_deadline_that_expires_during_the_exit_ends_the_wait(
    silent_server: SilentServer,
) -> None:
    start = time.monotonic()
    with anyio.move_on_after(0.3) as scope:
        async with connect(
            "127.0.0.1", silent_server.port, heart_beat=(0, 0), disconnect_timeout=10
        ):
            pass  # a normal exit: DISCONNECT with a receipt, then the deadline
    assert scope.cancelled_caught
    assert time.monotonic() - start < 0.3 + BOUND
    (disconnect,) = [f for f in silent_server.frames() if f.startswith(b"DISCONNECT")]
    assert disconnect.startswith(b"DISCONNECT\nreceipt:")
    with anyio.fail_after(5):
        await silent_server.closed.wait()


async def test_a_deadline_passed_without_a_checkpoint_counts_as_cancelled(
    silent_server: SilentServer,
) -> None:
    start = time.monotonic()
    with anyio.move_on_after(0.2) as scope:
        async with connect(
            "127.0.0.1", silent_server.port, heart_beat=(0, 0), disconnect_timeout=10
        ):
            time.sleep(0.3)  # busy past the deadline: no checkpoint has raised yet
    assert scope.cancelled_caught
    assert time.monotonic() - start < 0.3 + BOUND
    assert silent_server.frames()[-1] == b"DISCONNECT"  # the cancelled goodbye


async def test_without_cancellation_the_exit_waits_for_the_receipt(
    silent_server: SilentServer,
) -> None:
    start = time.monotonic()
    async with connect("127.0.0.1", silent_server.port, heart_beat=(0, 0), disconnect_timeout=0.3):
        pass
    assert time.monotonic() - start >= 0.3  # it waited the disconnect_timeout
    assert silent_server.frames()[-1].startswith(b"DISCONNECT\nreceipt:")


async def test_disconnect_in_a_cancelled_scope_does_not_wait(
    silent_server: SilentServer,
) -> None:
    async with connect(
        "127.0.0.1", silent_server.port, heart_beat=(0, 0), disconnect_timeout=10
    ) as client:
        start = time.monotonic()
        with anyio.CancelScope() as scope:
            scope.cancel()
            await client.disconnect()
        assert time.monotonic() - start < BOUND
        assert client.closed


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_asyncio_task_cancellation_leaves_at_once(silent_server: SilentServer) -> None:
    async def session() -> None:
        async with connect(
            "127.0.0.1", silent_server.port, heart_beat=(0, 0), disconnect_timeout=10
        ):
            await asyncio.sleep(60)

    start = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(session(), 0.2)
    assert time.monotonic() - start < 0.2 + BOUND
    with anyio.fail_after(5):
        await silent_server.closed.wait()


async def test_a_cancelled_session_on_our_broker_leaves_at_once(broker_box: BrokerBox) -> None:
    assert broker_box.broker is not None
    start = time.monotonic()
    with anyio.move_on_after(0.2):
        async with connect(
            "127.0.0.1", broker_box.port, heart_beat=(0, 0), disconnect_timeout=10
        ) as client:
            sub = await client.subscribe("/queue/cancelled")
            await client.send("/queue/cancelled", "one", receipt=True)
            await sub.get()
            await anyio.sleep_forever()
    assert time.monotonic() - start < 0.2 + BOUND
    with anyio.fail_after(5):
        while broker_box.broker.stats["sessions"]:
            await anyio.sleep(0.01)  # the broker saw the session end


async def test_a_cancelled_websocket_session_leaves_at_once(anyio_backend: str) -> None:
    async with anyio.create_task_group() as tg:
        box = BrokerBox(tg, ws=[("127.0.0.1", 0, "/ws")])
        broker = await box.start()
        ws_port = next(port for kind, _, port in broker.addresses if kind == "ws")
        start = time.monotonic()
        with anyio.move_on_after(0.2):
            async with connect(f"ws://127.0.0.1:{ws_port}/ws", disconnect_timeout=10) as client:
                await client.send("/queue/ws-cancelled", "x", receipt=True)
                await anyio.sleep_forever()
        assert time.monotonic() - start < 0.2 + BOUND
        await box.stop()
        tg.cancel_scope.cancel()


async def test_cancelling_one_call_leaves_the_session_usable(broker_box: BrokerBox) -> None:
    async with connect("127.0.0.1", broker_box.port, heart_beat=(0, 0)) as client:
        sub = await client.subscribe("/queue/usable")
        with anyio.move_on_after(0.05):
            await sub.get()  # nothing there: cancelled
        await client.send("/queue/usable", "after", receipt=True)
        assert (await sub.get()).text() == "after"
        assert client.is_connected
