"""The server's lean asyncio stream (``_adapter/_aiostream.py``, issue 14) and
the writer that writes through it without a task.

On asyncio the listener hands out :class:`AsyncioSocketStream`; on trio,
AnyIO's streams as before. What a session relies on stays AnyIO's: reads in
order, EOF and reset told apart, a write counts once the kernel took it (a
client that does not read keeps ``pending_bytes`` up), a batch posted while
the handler works is one write.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc
import pytest

from stomp_proto import Message
from stomp_proto._adapter import _aiostream
from stomp_proto._adapter._aiostream import READ_LIMIT, AsyncioSocketStream
from stomp_proto._adapter._transport import StreamTransport
from stomp_proto.asyncio import ServerSession, serve, serve_websocket

from .test_websocket_server import RawClient

pytestmark = pytest.mark.anyio

CONNECT = b"CONNECT\naccept-version:1.2\nhost:/\nheart-beat:0,0\n\n\0"
SUBSCRIBE = b"SUBSCRIBE\nid:s\ndestination:/q\n\n\0"


def message(i: int, body: bytes = b"hi") -> Message:
    return Message(destination="/q", message_id=str(i), subscription="s", body=body)


async def _serving(
    tg: anyio.abc.TaskGroup, handler: Callable[[ServerSession], Awaitable[None]], ws: bool = False
) -> int:
    port: int = await tg.start(serve_websocket if ws else serve, handler, "127.0.0.1", 0)
    return port


async def _connected(port: int) -> anyio.abc.SocketStream:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    await stream.send(CONNECT)
    reply = b""
    while b"\0" not in reply:
        reply += await stream.receive()
    assert reply.startswith(b"CONNECTED")
    return stream


async def test_the_listener_hands_out_the_lean_stream_on_asyncio_only(
    anyio_backend: str,
) -> None:
    seen: list[object] = []

    async def handler(session: ServerSession) -> None:
        assert isinstance(session.transport, StreamTransport)
        seen.append(session.transport.stream)
        await session.next_event()
        await session.accept()

    async with anyio.create_task_group() as tg:
        port = await _serving(tg, handler)
        stream = await _connected(port)
        await stream.aclose()
        tg.cancel_scope.cancel()
    (stream_seen,) = seen
    lean = isinstance(stream_seen, AsyncioSocketStream)
    assert lean == (anyio_backend == "asyncio")
    transport = StreamTransport(stream_seen)  # type: ignore[arg-type]
    assert (transport.nowait is stream_seen) == lean


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_reads_arrive_in_order_joined_and_bounded(anyio_backend: str) -> None:
    """Many small writes read while the handler is busy come back as few
    receive() pieces (each at most 64 KiB), nothing lost or reordered."""
    pieces: list[bytes] = []
    done = anyio.Event()

    async def handler(session: ServerSession) -> None:
        assert isinstance(session.transport, StreamTransport)
        stream = session.transport.stream
        await anyio.sleep(0.3)  # busy: the writes pile up in our buffer
        total = 0
        while total < 200 * 1000:
            piece = await stream.receive()
            pieces.append(piece)
            total += len(piece)
        done.set()

    async with anyio.create_task_group() as tg:
        port = await _serving(tg, handler)
        client = await anyio.connect_tcp("127.0.0.1", port)
        raw = client.extra(anyio.abc.SocketAttribute.raw_socket)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(200):
            await client.send(b"%09d\n" % i * 100)
            if i % 20 == 0:
                await anyio.sleep(0.001)
        with anyio.fail_after(10):
            await done.wait()
        await client.aclose()
        tg.cancel_scope.cancel()
    data = b"".join(pieces)
    assert data == b"".join(b"%09d\n" % i * 100 for i in range(200))
    assert all(len(piece) <= 65536 for piece in pieces)
    assert len(pieces) < 100  # joined: far fewer pieces than the 200 writes


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_reading_pauses_at_the_read_limit_and_resumes(anyio_backend: str) -> None:
    """A peer that sends while the session does not read fills our buffer to
    READ_LIMIT at most; then the kernel holds it back; all of it arrives."""
    sizes: list[int] = []
    got = bytearray()
    total = 4 * READ_LIMIT

    async def handler(session: ServerSession) -> None:
        assert isinstance(session.transport, StreamTransport)
        stream = session.transport.stream
        assert isinstance(stream, AsyncioSocketStream)
        protocol = stream._protocol
        for _ in range(50):
            await anyio.sleep(0.02)
            sizes.append(protocol.size)
        assert protocol.read_paused
        while len(got) < total:
            got.extend(await stream.receive())
        assert not protocol.read_paused

    async with anyio.create_task_group() as tg:
        port = await _serving(tg, handler)
        client = await anyio.connect_tcp("127.0.0.1", port)
        body = bytes(range(256)) * (total // 256)
        with anyio.fail_after(20):
            await client.send(body)
            while len(got) < total:
                await anyio.sleep(0.01)
        await client.aclose()
        tg.cancel_scope.cancel()
    assert bytes(got) == body
    assert max(sizes) < READ_LIMIT + 256 * 1024  # one read past the limit at most
    assert max(sizes) >= READ_LIMIT


@pytest.mark.parametrize("reset", [False, True])
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_eof_and_reset_are_told_apart(anyio_backend: str, reset: bool) -> None:
    reasons: list[str | None] = []

    async def handler(session: ServerSession) -> None:
        await session.next_event()
        await session.accept()
        async for _ in session:
            pass
        reasons.append(session.close_reason)

    async with anyio.create_task_group() as tg:
        port = await _serving(tg, handler)
        client = await _connected(port)
        if reset:
            raw = client.extra(anyio.abc.SocketAttribute.raw_socket)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await client.aclose()
        with anyio.fail_after(5):
            while not reasons:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert reasons == ["reset" if reset else "eof"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_write_counts_once_the_kernel_took_it(anyio_backend: str) -> None:
    """8 MB posted to a client that does not read: the kernel takes part of
    it, the rest waits (pending_bytes > 0, drain() waits); once the client
    reads, everything arrives in order and pending_bytes is 0."""
    sessions: list[ServerSession] = []
    body = b"m" * 65536
    count = 128

    async def handler(session: ServerSession) -> None:
        sessions.append(session)
        await session.next_event()
        await session.accept()
        await session.next_event()  # SUBSCRIBE
        for i in range(count):
            session.post(message(i, body))
        async for _ in session:
            pass

    async with anyio.create_task_group() as tg:
        port = await _serving(tg, handler)
        client = await _connected(port)
        await client.send(SUBSCRIBE)
        with anyio.fail_after(10):
            while not sessions or not sessions[0].pending_bytes:
                await anyio.sleep(0.01)
        await anyio.sleep(0.3)
        (session,) = sessions
        assert session.pending_bytes > 0  # the client reads nothing: not all of it is out
        with anyio.move_on_after(0.2) as scope:
            await session.drain()
        assert scope.cancelled_caught
        received = bytearray()
        with anyio.fail_after(20):
            while received.count(b"\0") < count:
                received.extend(await client.receive())
            await session.drain()
        assert session.pending_bytes == 0
        ids = [
            int(part.split(b"message-id:")[1].split(b"\n")[0])
            for part in received.split(b"\0")[:-1]
        ]
        assert ids == list(range(count))
        await client.aclose()
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("ws", [False, True], ids=["tcp", "ws"])
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_frames_posted_in_one_step_go_out_in_one_write(
    anyio_backend: str, ws: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """500 frames posted while the handler runs: one socket write, made
    without a writer task, before the handler waits for input again."""
    writes: list[int] = []
    original = AsyncioSocketStream.write_nowait

    def counting(self: AsyncioSocketStream, data: bytes) -> bool:
        writes.append(len(data))
        return original(self, data)

    monkeypatch.setattr(AsyncioSocketStream, "write_nowait", counting)

    async def handler(session: ServerSession) -> None:
        await session.next_event()
        await session.accept()
        await session.next_event()  # SUBSCRIBE
        await session.next_event()  # the client's SEND: answer with 500 frames
        writes.clear()
        for i in range(500):
            session.post(message(i))
        async for _ in session:
            pass

    send = b"SEND\ndestination:/q\n\nhi\0"
    async with anyio.create_task_group() as tg:
        port = await _serving(tg, handler, ws)
        got = 0
        with anyio.fail_after(10):
            if ws:
                raw_client = await RawClient.open(port)
                await raw_client.text(CONNECT.decode())
                assert (await raw_client.frame()).startswith("CONNECTED")
                await raw_client.text(SUBSCRIBE.decode())
                await raw_client.text(send.decode())
                while got < 500:
                    assert (await raw_client.frame()).startswith("MESSAGE")
                    got += 1
                batch_writes = list(writes)
                await raw_client.stream.aclose()
            else:
                client = await _connected(port)
                await client.send(SUBSCRIBE)
                await client.send(send)
                data = b""
                while data.count(b"\0") < 500:
                    data += await client.receive()
                got = data.count(b"\0")
                batch_writes = list(writes)
                await client.aclose()
        tg.cancel_scope.cancel()
    assert got == 500
    assert len(batch_writes) == 1, batch_writes


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_deferred_callbacks_run_once_each_in_order(anyio_backend: str) -> None:
    import asyncio

    deferred = _aiostream._deferred_for(asyncio.get_running_loop())
    assert deferred is _aiostream._deferred_for(asyncio.get_running_loop())
    ran: list[int] = []

    def second() -> None:
        ran.append(2)

    def first() -> None:
        ran.append(1)
        deferred.add(second)  # added while running: runs in the same turn

    deferred.add(first)
    deferred.run()  # early, as a task about to wait does
    assert ran == [1, 2]
    await anyio.sleep(0)
    await anyio.sleep(0)
    assert ran == [1, 2]  # the scheduled turn found nothing left
    deferred.add(first)
    await anyio.sleep(0)
    assert ran == [1, 2, 1, 2]


def test_a_server_under_plain_asyncio_run_writes_from_loop_callbacks() -> None:
    """Under asyncio.run (uvicorn's way, not anyio.run) a writer deferred to a
    bare loop callback still finds AnyIO's backend: CONNECTED arrives (the
    accept's drain() waits on an event, not on input, so the flush is the
    loop's callback)."""
    import asyncio

    async def handler(session: ServerSession) -> None:
        await session.next_event()
        await session.accept()
        async for _ in session:
            pass

    async def main() -> bytes:
        async with anyio.create_task_group() as tg:
            port = await _serving(tg, handler)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(CONNECT)
            reply = await asyncio.wait_for(reader.readuntil(b"\0"), 5)
            writer.close()
            tg.cancel_scope.cancel()
        return reply

    assert asyncio.run(main()).startswith(b"CONNECTED")
