"""A client that neither reads nor sends is dropped on time, whatever its backlog
(issue 9, item 10); abort() ends a session promptly even with a full socket."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import anyio.abc
import pytest

from stomp_proto import Error, Message, Subscribe
from stomp_proto.asyncio import ServerSession, serve, serve_websocket

from .test_websocket_server import RawClient

pytestmark = pytest.mark.anyio

BODY = b"x" * 65536
CONNECT = b"CONNECT\naccept-version:1.2\nhost:/\nheart-beat:100,100\n\n\0"
SUBSCRIBE = b"SUBSCRIBE\nid:s\ndestination:/q\n\n\0"
#: A stuck client's backlog is kept below this, so the tests' memory stays bounded.
BACKLOG = 16 * 1024 * 1024


def message(i: int) -> Message:
    return Message(destination="/q", message_id=str(i), subscription="s", body=BODY)


class Flood:
    """After the SUBSCRIBE, floods the session with 64 KiB MESSAGEs until it ends.

    ``style="post"`` posts and keeps reading (as the broker does);
    ``style="send"`` awaits each send, so the handler is blocked with the writer.
    """

    def __init__(self, style: str) -> None:
        self.style = style
        self.sessions: list[ServerSession] = []
        self.subscribed = anyio.Event()
        self.ended = anyio.Event()
        self.ended_at = 0.0
        self.subscribed_at = 0.0

    async def handle(self, session: ServerSession) -> None:
        self.sessions.append(session)
        await session.next_event()
        await session.accept(heart_beat=(100, 100))
        try:
            if self.style == "send":
                await self._send_style(session)
            else:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._poster, session)
                    async for _ in session:
                        pass
                    tg.cancel_scope.cancel()
        finally:
            self.ended_at = anyio.current_time()
            self.ended.set()

    async def _wait_subscribe(self, session: ServerSession) -> None:
        event = await session.next_event()
        assert isinstance(event, Subscribe)
        self.subscribed_at = anyio.current_time()
        self.subscribed.set()

    async def _send_style(self, session: ServerSession) -> None:
        await self._wait_subscribe(session)
        i = 0
        while not session.closed:
            await session.send(message(i))
            i += 1

    async def _poster(self, session: ServerSession) -> None:
        await self.subscribed.wait()
        i = 0
        while not session.closed:
            if session.pending_bytes < BACKLOG:
                session.post(message(i))
                i += 1
                await anyio.sleep(0)
            else:
                await anyio.sleep(0.01)


Serve = Callable[..., Coroutine[Any, Any, None]]


async def _stuck_tcp(port: int) -> anyio.abc.SocketStream:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    await stream.send(CONNECT)
    assert (await stream.receive()).startswith(b"CONNECTED\n")
    await stream.send(SUBSCRIBE)
    return stream  # and from here on: neither reads nor sends


@pytest.mark.parametrize("style", ["post", "send"])
async def test_stuck_tcp_client_is_dropped_within_grace(anyio_backend: str, style: str) -> None:
    flood = Flood(style)
    if style == "post":
        flood.handle = _reading_handler(flood)  # type: ignore[method-assign]
    async with anyio.create_task_group() as tg:
        port = await tg.start(serve, flood.handle, "127.0.0.1", 0)
        stream = await _stuck_tcp(port)
        with anyio.fail_after(5):
            await flood.ended.wait()
        session = flood.sessions[0]
        assert session.closed
        assert session.error is not None and "no data from the client" in str(session.error)
        assert session.pending_bytes > 0  # it was backed up: the socket was full
        # 100 ms heart-beats, grace x2: silent for 0.2 s, then a tick (<= 0.1 s), then
        # at most the drop timeout for a write in flight.
        assert flood.ended_at - flood.subscribed_at < 2.0  # nominally ~0.5 s; slack for CI load
        await stream.aclose()
        tg.cancel_scope.cancel()


def _reading_handler(flood: Flood) -> Callable[[ServerSession], Coroutine[Any, Any, None]]:
    """The post style, with the SUBSCRIBE read by the session loop itself."""

    async def handle(session: ServerSession) -> None:
        flood.sessions.append(session)
        await session.next_event()
        await session.accept(heart_beat=(100, 100))
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(flood._poster, session)
                async for event in session:
                    if isinstance(event, Subscribe):
                        flood.subscribed_at = anyio.current_time()
                        flood.subscribed.set()
                tg.cancel_scope.cancel()
        finally:
            flood.ended_at = anyio.current_time()
            flood.ended.set()

    return handle


async def test_stuck_websocket_client_is_dropped_within_grace(anyio_backend: str) -> None:
    flood = Flood("send")
    async with anyio.create_task_group() as tg:
        port = await tg.start(serve_websocket, flood.handle, "127.0.0.1", 0)
        client = await RawClient.open(port)
        await client.text(CONNECT.decode())
        assert (await client.frame()).startswith("CONNECTED\n")
        await client.text(SUBSCRIBE.decode())
        with anyio.fail_after(5):  # and now the client neither reads nor sends
            await flood.ended.wait()
        session = flood.sessions[0]
        assert session.error is not None and "no data from the client" in str(session.error)
        assert flood.ended_at - flood.subscribed_at < 2.0  # nominally ~0.5 s; slack for CI load
        await client.aclose()
        tg.cancel_scope.cancel()


async def test_abort_is_prompt_with_a_full_socket(anyio_backend: str) -> None:
    aborted: list[float] = []
    done = anyio.Event()

    async def handler(session: ServerSession) -> None:
        await session.next_event()
        await session.accept()  # no heart-beats: only abort() can end it
        assert isinstance(await session.next_event(), Subscribe)
        for i in range(BACKLOG // len(BODY)):
            session.post(message(i))
        await anyio.sleep(0.3)  # the writer is now blocked on the full socket
        assert session.pending_bytes > 0
        start = anyio.current_time()
        await session.abort(Error(message="slow consumer"), timeout=0.2)
        aborted.append(anyio.current_time() - start)
        assert session.closed
        assert not session.post(message(-1))
        done.set()

    async with anyio.create_task_group() as tg:
        port = await tg.start(serve, handler, "127.0.0.1", 0)
        stream = await anyio.connect_tcp("127.0.0.1", port)
        await stream.send(CONNECT.replace(b"heart-beat:100,100\n", b""))
        assert (await stream.receive()).startswith(b"CONNECTED\n")
        await stream.send(SUBSCRIBE)
        with anyio.fail_after(5):
            await done.wait()
        assert aborted[0] < 0.5
        # The client then reads what was in flight, and the end of the connection:
        # far less than the 16 MiB that had been posted.
        received = 0
        with anyio.fail_after(5):
            try:
                while True:
                    received += len(await stream.receive())
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
        assert received < BACKLOG
        await stream.aclose()
        tg.cancel_scope.cancel()


async def test_abort_of_a_session_that_keeps_up_writes_the_error(anyio_backend: str) -> None:
    async def handler(session: ServerSession) -> None:
        await session.next_event()
        await session.accept()
        assert isinstance(await session.next_event(), Subscribe)
        session.post(message(1))
        await session.abort(Error(message="bye now"), timeout=2)  # the MESSAGE is dropped

    async with anyio.create_task_group() as tg:
        port = await tg.start(serve, handler, "127.0.0.1", 0)
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(CONNECT.replace(b"heart-beat:100,100\n", b"") + SUBSCRIBE)
            received = b""
            with anyio.fail_after(5):
                try:
                    while True:
                        received += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    pass
        assert received.startswith(b"CONNECTED\n")
        assert received.endswith(b"ERROR\nmessage:bye now\n\n\0")
        assert b"MESSAGE" not in received
        tg.cancel_scope.cancel()
