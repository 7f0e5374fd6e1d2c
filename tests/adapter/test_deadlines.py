"""Deadlines that keep one client from holding the server: CONNECT (issue 9, item 9)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from stomp_proto import Connect
from stomp_proto.asyncio import ServerSession, serve, serve_websocket

pytestmark = pytest.mark.anyio

GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError)


@dataclass
class Counting:
    """A handler that counts the sessions it runs and keeps them."""

    sessions: list[ServerSession] = field(default_factory=list)
    active: int = 0

    async def handle(self, session: ServerSession) -> None:
        self.sessions.append(session)
        self.active += 1
        try:
            event = await session.next_event()
            if isinstance(event, Connect):
                await session.accept()
                async for each in session:
                    if getattr(each, "receipt", None) is not None:
                        await session.send(each.make_receipt())  # type: ignore[attr-defined]
        finally:
            self.active -= 1


@dataclass
class Servers:
    handler: Counting
    tcp: int
    ws: int


@pytest.fixture
async def servers(anyio_backend: str) -> AsyncIterator[Servers]:
    handler = Counting()
    async with anyio.create_task_group() as tg:
        tcp = await tg.start(
            lambda task_status: serve(
                handler.handle, "127.0.0.1", 0, connect_timeout=0.2, task_status=task_status
            )
        )
        ws = await tg.start(
            lambda task_status: serve_websocket(
                handler.handle,
                "127.0.0.1",
                0,
                connect_timeout=0.2,
                close_timeout=0.1,  # these clients never answer the Close
                task_status=task_status,
            )
        )
        yield Servers(handler, tcp, ws)
        tg.cancel_scope.cancel()


async def read_to_eof(stream: anyio.abc.ByteStream) -> bytes:
    received = b""
    with anyio.fail_after(3):
        while True:
            try:
                received += await stream.receive()
            except GONE:
                return received


async def upgraded(port: int) -> tuple[anyio.abc.SocketStream, WSConnection]:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    ws = WSConnection(ConnectionType.CLIENT)
    await stream.send(ws.send(Request(host="x", target="/ws", subprotocols=["v12.stomp"])))
    with anyio.fail_after(3):
        while True:
            ws.receive_data(await stream.receive())
            if any(isinstance(e, AcceptConnection) for e in ws.events()):
                return stream, ws


async def test_connections_without_connect_are_all_closed(servers: Servers) -> None:
    silent = [await anyio.connect_tcp("127.0.0.1", servers.tcp) for _ in range(40)]
    halves = []
    for _ in range(10):
        stream = await anyio.connect_tcp("127.0.0.1", servers.tcp)
        await stream.send(b"CONNECT\naccept-version:1.2\nhost:")
        halves.append(stream)
    for stream in (*silent, *halves):
        received = await read_to_eof(stream)
        assert received.startswith(b"ERROR\nmessage:no CONNECT within 0.2 s\n"), received
        await stream.aclose()
    with anyio.fail_after(3):
        while servers.handler.active:
            await anyio.sleep(0.01)
    assert len(servers.handler.sessions) == 50
    assert all(s.closed and s.connect is None for s in servers.handler.sessions)


async def test_websocket_upgrade_then_nothing_is_closed_with_error(servers: Servers) -> None:
    clients = [await upgraded(servers.ws) for _ in range(10)]
    never = [await anyio.connect_tcp("127.0.0.1", servers.ws) for _ in range(5)]
    for stream, ws in clients:
        ws.receive_data(await read_to_eof(stream))
        events = list(ws.events())
        assert isinstance(events[0], TextMessage)
        assert events[0].data.startswith("ERROR\nmessage:no CONNECT within 0.2 s\n")
        assert isinstance(events[1], CloseConnection) and events[1].code == 1002
        await stream.aclose()
    for stream in never:  # no upgrade within the deadline: dropped, no session
        assert await read_to_eof(stream) == b""
        await stream.aclose()
    with anyio.fail_after(3):
        while servers.handler.active:
            await anyio.sleep(0.01)
    assert len(servers.handler.sessions) == 10


async def test_a_connected_session_outlives_the_connect_deadline(servers: Servers) -> None:
    async with await anyio.connect_tcp("127.0.0.1", servers.tcp) as stream:
        await stream.send(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
        assert (await stream.receive()).startswith(b"CONNECTED\n")
        await anyio.sleep(0.4)  # twice the CONNECT deadline
        await stream.send(b"DISCONNECT\nreceipt:r\n\n\0")
        assert await read_to_eof(stream) == b"RECEIPT\nreceipt-id:r\n\n\0"
    assert servers.handler.sessions[0].error is None


async def test_connect_timeout_none_disables_the_deadline(anyio_backend: str) -> None:
    handler = Counting()
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: serve(
                handler.handle, "127.0.0.1", 0, connect_timeout=None, task_status=task_status
            )
        )
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await anyio.sleep(0.3)
            await stream.send(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
            with anyio.fail_after(3):
                assert (await stream.receive()).startswith(b"CONNECTED\n")
        tg.cancel_scope.cancel()


async def test_tls_round_trip_and_handshake_deadline(anyio_backend: str, tmp_path: Any) -> None:
    pytest.importorskip("cryptography")
    import ssl

    from stomp_proto.asyncio import connect
    from tests.interop.brokers import client_tls_context, make_tls_files

    ca_file, cert_file, key_file = make_tls_files(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    handler = Counting()
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: serve(
                handler.handle,
                "127.0.0.1",
                0,
                ssl=context,
                handshake_timeout=0.2,
                task_status=task_status,
            )
        )
        async with connect("localhost", port, ssl=client_tls_context(ca_file)) as client:
            await client.send("/q", b"over TLS", receipt=True)
        async with await anyio.connect_tcp("127.0.0.1", port) as silent:
            assert await read_to_eof(silent) == b""  # no ClientHello: dropped, no session
        tg.cancel_scope.cancel()
    assert len(handler.sessions) == 1
