"""The AnyIO client against the AnyIO server adapter, on asyncio and on trio."""

from __future__ import annotations

import anyio
import pytest

from stomp_proto import Connect, Disconnect, Send, Subscribe
from stomp_proto.asyncio import ConnectionLost, StompError, connect

from .conftest import EchoServer

pytestmark = pytest.mark.anyio


async def test_connect_send_subscribe_receive(echo_server: EchoServer) -> None:
    async with connect("127.0.0.1", echo_server.port, login="u", passcode="p") as client:
        assert client.version == "1.2"
        assert client.connected is not None and client.connected.server == "echo/1.0"
        sub = await client.subscribe("/queue/a")
        await client.send("/queue/a", b"\x00binary\x00", headers=(("x-k", "a:b\nc"),))
        await client.send("/queue/a", "héllo")
        first = await sub.get()
        assert first.body == b"\x00binary\x00"
        assert ("x-k", "a:b\nc") in first.headers
        second = await sub.get()
        assert second.text() == "héllo"
        assert second.content_type == "text/plain;charset=utf-8"
    connect_event = echo_server.seen[0]
    assert isinstance(connect_event, Connect)
    assert (connect_event.login, connect_event.passcode, connect_event.host) == (
        "u",
        "p",
        "127.0.0.1",
    )
    assert isinstance(echo_server.seen[-1], Disconnect)
    assert echo_server.seen[-1].receipt is not None


async def test_receipts_are_awaitable(echo_server: EchoServer) -> None:
    async with connect("127.0.0.1", echo_server.port) as client:
        await client.send("/queue/a", b"x", receipt=True)
        receipt = await client.receipt_for(Subscribe(destination="/queue/b", id="s9"))
        assert receipt.confirms == Subscribe(
            destination="/queue/b", id="s9", receipt=receipt.receipt_id
        )
    sends = [e for e in echo_server.seen if isinstance(e, Send)]
    assert sends[0].receipt is not None


async def test_client_individual_acks(echo_server: EchoServer) -> None:
    async with connect("127.0.0.1", echo_server.port) as client:
        sub = await client.subscribe("/queue/a", ack="client-individual")
        for i in range(3):
            await client.send("/queue/a", str(i))
        messages = [await sub.get() for _ in range(3)]
        assert echo_server.unacked == ["a1", "a2", "a3"]
        await messages[1].ack(receipt=True)
        await messages[0].nack(receipt=True)
        assert echo_server.unacked == ["a3"]


async def test_transaction_commits_and_aborts(echo_server: EchoServer) -> None:
    async with connect("127.0.0.1", echo_server.port) as client:
        sub = await client.subscribe("/queue/t")
        async with client.transaction() as tx:
            await tx.send("/queue/t", "one")
            await tx.send("/queue/t", "two")
        assert [(await sub.get()).text(), (await sub.get()).text()] == ["one", "two"]
        with pytest.raises(ZeroDivisionError):
            async with client.transaction() as tx:
                await tx.send("/queue/t", "never")
                1 / 0  # noqa: B018
        await client.send("/queue/t", "after", receipt=True)
        assert (await sub.get()).text() == "after"
    commands = [type(e).__name__ for e in echo_server.seen]
    assert commands.count("Commit") == 1
    assert commands.count("Abort") == 1


async def test_unsubscribe_ends_the_iterator(echo_server: EchoServer) -> None:
    async with connect("127.0.0.1", echo_server.port) as client:
        sub = await client.subscribe("/queue/u")
        await sub.unsubscribe()
        with pytest.raises(StopAsyncIteration):
            await sub.get()


async def test_error_frame_reaches_the_user_as_stomp_error(echo_server: EchoServer) -> None:
    echo_server.credentials = ("right", "secret")
    with pytest.raises(StompError, match="bad credentials") as info:
        async with connect("127.0.0.1", echo_server.port, login="wrong", passcode="x"):
            pass  # pragma: no cover
    assert info.value.error.message == "bad credentials"


async def test_connect_timeout_never_hangs(anyio_backend: str) -> None:
    async with anyio.create_task_group() as tg:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)

        async def silent(stream: anyio.abc.ByteStream) -> None:
            await anyio.sleep(30)

        tg.start_soon(listener.serve, silent)
        with anyio.fail_after(5):
            with pytest.raises(TimeoutError):
                async with connect("127.0.0.1", port, connect_timeout=0.3):
                    pass  # pragma: no cover
        tg.cancel_scope.cancel()


async def test_connection_refused(anyio_backend: str) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    with pytest.raises(OSError):
        async with connect("127.0.0.1", port, connect_timeout=2):
            pass  # pragma: no cover


async def test_server_heartbeats_keep_an_idle_client_alive(echo_server: EchoServer) -> None:
    async with connect("127.0.0.1", echo_server.port, heart_beat=(100, 100)) as client:
        # The echo server offers no heart-beats: only the client beats; the
        # connection must stay usable past several intervals.
        await anyio.sleep(0.35)
        await client.send("/queue/a", b"x", receipt=True)


async def test_silent_server_ends_the_connection(anyio_backend: str) -> None:
    """A server that negotiates heart-beats and then goes silent is declared dead."""
    from stomp_proto.asyncio import serve

    async def mute(session):  # type: ignore[no-untyped-def]
        await session.next_event()
        await session.accept(heart_beat=(50, 50))
        session._closed = True  # stop its own heart-beats without closing the socket
        await anyio.sleep(10)

    async with anyio.create_task_group() as tg:
        port = await tg.start(serve, mute, "127.0.0.1", 0)
        async with connect("127.0.0.1", port, heart_beat=(50, 50), grace=2.0) as client:
            sub = await client.subscribe("/queue/x", receipt=False)
            with anyio.fail_after(3):
                with pytest.raises(ConnectionLost, match="no data from the server"):
                    await sub.get()
        tg.cancel_scope.cancel()


async def test_refusals_the_core_checks_leave_the_client_usable(anyio_backend: str) -> None:
    """NACK in STOMP 1.0 and a NUL body without content-length: the core's check()
    refuses them before anything is sent, and the session goes on."""
    from stomp_proto import LocalProtocolError
    from stomp_proto.asyncio import serve

    server = EchoServer()
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: serve(
                server.handle, "127.0.0.1", 0, versions=("1.0",), task_status=task_status
            )
        )
        async with connect("127.0.0.1", port) as client:
            assert client.version == "1.0"
            sub = await client.subscribe("/queue/n", ack="client")
            await client.send("/queue/n", "one")
            message = await sub.get()
            with pytest.raises(LocalProtocolError, match="NACK does not exist in STOMP 1.0"):
                await message.nack()
            with pytest.raises(LocalProtocolError, match="NUL needs a content-length"):
                await client.send("/queue/n", b"a\0b", content_length=False)
            await message.ack(receipt=True)  # still connected, still in order
            await client.send("/queue/n", "two", receipt=True)
            assert (await sub.get()).text() == "two"
        tg.cancel_scope.cancel()
    assert not any(type(e).__name__ == "Nack" for e in server.seen)
