"""The client's API at run time: headers as a mapping or pairs, ``header()``, receipts
returned, public names in reprs, and clear errors for misuse, on both backends."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import stomp_proto.trio
from stomp_proto import Receipt, Send, Subscribe
from stomp_proto.asyncio import (
    Client,
    ReceivedMessage,
    StateChange,
    Subscription,
    Transaction,
    connect,
)

from .conftest import EchoServer

pytestmark = pytest.mark.anyio


async def test_headers_as_a_mapping_or_pairs_and_header(echo_server: EchoServer) -> None:
    async with connect(
        "127.0.0.1", echo_server.port, heart_beat=(0, 0), headers={"client-id": "desk-1"}
    ) as client:
        sub = await client.subscribe("/queue/h", headers={"prefetch-count": "10"})
        await client.send("/queue/h", "a", headers={"priority": "9", "x-k": "a:b"})
        await client.send("/queue/h", "b", headers=[("x-tag", "1"), ("x-tag", "2")])
        first, second = await sub.get(), await sub.get()
        assert first.header("priority") == "9" and first.header("x-k") == "a:b"
        assert first.header("missing") is None and first.header("missing", "-") == "-"
        assert second.header("x-tag") == "1"
        assert [v for k, v in second.headers if k == "x-tag"] == ["1", "2"]
    connect_event = echo_server.seen[0]
    assert ("client-id", "desk-1") in connect_event.headers  # type: ignore[attr-defined]
    subscribe = next(e for e in echo_server.seen if isinstance(e, Subscribe))
    assert subscribe.headers == (("prefetch-count", "10"),)


async def test_send_returns_the_receipt_and_takes_a_receipt_id(echo_server: EchoServer) -> None:
    async with connect("127.0.0.1", echo_server.port, heart_beat=(0, 0)) as client:
        assert await client.send("/queue/r", "no receipt") is None
        receipt = await client.send("/queue/r", "mine", receipt="order-17")
        assert isinstance(receipt, Receipt) and receipt.receipt_id == "order-17"
        async with client.transaction() as tx:
            assert await tx.send("/queue/r", "in tx", receipt=True) is not None
    sends = [e for e in echo_server.seen if isinstance(e, Send)]
    assert [s.receipt for s in sends][:2] == [None, "order-17"]


async def test_reprs_and_names_are_public(echo_server: EchoServer) -> None:
    for cls in (Client, Subscription, ReceivedMessage, Transaction, StateChange):
        assert cls.__module__ == "stomp_proto.asyncio"
        assert getattr(stomp_proto.trio, cls.__name__) is cls
    async with connect("127.0.0.1", echo_server.port, heart_beat=(0, 0)) as client:
        assert (
            repr(client) == f"<stomp_proto.asyncio.Client 127.0.0.1:{echo_server.port} connected>"
        )
        sub = await client.subscribe("/queue/p", ack="client", id="prices")
        assert repr(sub) == "<Subscription 'prices' to '/queue/p' ack=client>"
        assert sub.id == "prices" and sub.ack_mode == "client"
        tx = await client.begin()
        assert repr(tx) == f"<Transaction {tx.id!r}>"
        await tx.commit()
        assert repr(tx) == f"<Transaction {tx.id!r} done>"
        await client.send("/queue/p", "x")
        message = await sub.get()
        assert repr(message) == f"<ReceivedMessage {message.message_id!r} on '/queue/p'>"


async def test_misuse_is_refused_with_its_name(echo_server: EchoServer) -> None:
    options: dict[str, Any] = {"pascode": "x"}
    with pytest.raises(TypeError, match="pascode"):
        connect("127.0.0.1", echo_server.port, **options)
    with pytest.raises(TypeError, match="not a str"):
        connect("127.0.0.1", echo_server.port, versions="1.2")
    with pytest.raises(ValueError, match="versions must be some of 1.0, 1.1, 1.2"):
        connect("127.0.0.1", echo_server.port, versions=("1.2", "2.0"))
    with pytest.raises(ValueError, match="buffer must be at least 1"):
        connect("127.0.0.1", echo_server.port, buffer=0)
    async with connect("127.0.0.1", echo_server.port, heart_beat=(0, 0)) as client:
        bad_ack: Any = "client_individual"
        with pytest.raises(ValueError, match="'client-individual', not 'client_individual'"):
            await client.subscribe("/queue/m", ack=bad_ack)
        with pytest.raises(ValueError, match="buffer must be at least 1"):
            await client.subscribe("/queue/m", buffer=0)
        await client.subscribe("/queue/m", id="one")
        with pytest.raises(ValueError, match="'one' is already in use"):
            await client.subscribe("/queue/m", id="one")
        bad_headers: Any = [("priority", 9)]
        with pytest.raises(TypeError, match=r"SEND headers must be a tuple of \(str, str\) pairs"):
            await client.send("/queue/m", "x", headers=bad_headers)
        with pytest.raises(TypeError, match="mapping or"):
            await client.send("/queue/m", "x", headers="priority:9")  # type: ignore[arg-type]
        await client.send("/queue/m", "still usable", receipt=True)


async def test_a_client_made_outside_the_event_loop_works_inside_it(anyio_backend: str) -> None:
    server = EchoServer()
    async with anyio.create_task_group() as tg:
        from stomp_proto.asyncio import serve

        server.port = await tg.start(serve, server.handle, "127.0.0.1", 0)
        made: list[Client] = []
        await anyio.to_thread.run_sync(
            lambda: made.append(connect("127.0.0.1", server.port, heart_beat=(0, 0)))
        )
        async with made[0] as client:
            await client.send("/queue/x", "hello", receipt=True)
        tg.cancel_scope.cancel()


@pytest.mark.parametrize(("module", "extra"), [("asyncio", "asyncio"), ("trio", "trio")])
def test_without_anyio_the_import_names_the_extra(module: str, extra: str) -> None:
    import subprocess
    import sys

    code = f"import sys; sys.modules['anyio'] = None; import stomp_proto.{module}"
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last == (
        f"ModuleNotFoundError: stomp_proto.{module} needs 'anyio': "
        f"pip install 'stomp-proto[{extra}]'"
    )
