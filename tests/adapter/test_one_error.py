"""One ERROR per session, and log lines rate-limited per cause (issue 9, item 11)."""

from __future__ import annotations

import logging

import anyio
import pytest

from stomp_proto import Error, Message, Receipt, ServerConnection, Subscribe
from stomp_proto.asyncio import ServerSession, serve

pytestmark = pytest.mark.anyio

CONNECT = b"CONNECT\naccept-version:1.2\nhost:/\n\n\0"


class MemoryTransport:
    """A transport that records what is written; receive() waits for fed bytes."""

    joins_writes = True

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed_with: dict[str, object] | None = None
        self._send, self._receive = anyio.create_memory_object_stream[bytes](100)

    def feed(self, data: bytes) -> None:
        self._send.send_nowait(data)

    async def send(self, data: bytes) -> None:
        self.sent.append(data)

    async def receive(self) -> bytes:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return b""

    async def aclose(self, *, error: bool = False, linger: float | None = None) -> None:
        self.closed_with = {"error": error, "linger": linger}
        self._receive.close()


async def test_nothing_is_queued_after_an_error(anyio_backend: str) -> None:
    transport = MemoryTransport()
    session = ServerSession(transport, ServerConnection())
    posted: list[bool] = []

    async def handler(session: ServerSession) -> None:
        await session.next_event()
        await session.accept()
        assert isinstance(await session.next_event(), Subscribe)
        message = Message(destination="/q", message_id="1", subscription="s", body=b"m")
        posted.append(session.post(message))
        posted.append(session.post(Error(message="first")))
        pending = session.pending_bytes
        posted.append(session.post(Error(message="second")))
        posted.append(session.post(Receipt(receipt_id="r")))
        assert session.pending_bytes == pending  # nothing more queued
        await session.drain()

    transport.feed(CONNECT + b"SUBSCRIBE\nid:s\ndestination:/q\n\n\0")
    with anyio.fail_after(5):
        await session._run(handler)
    assert posted == [True, True, False, False]
    written = b"".join(transport.sent)
    assert written.count(b"ERROR\n") == 1
    assert written.endswith(b"ERROR\nmessage:first\n\n\0")
    assert transport.closed_with == {"error": True, "linger": None}


async def test_protocol_error_after_an_error_adds_none(anyio_backend: str) -> None:
    """The session posted ERROR (say, a policy); the client then breaks the protocol:
    still one ERROR on the wire."""
    transport = MemoryTransport()
    session = ServerSession(transport, ServerConnection())

    async def handler(session: ServerSession) -> None:
        await session.next_event()
        await session.accept()
        session.post(Error(message="policy"))
        transport.feed(b"BOGUS\n\n\0")
        async for _ in session:
            pass  # pragma: no cover

    transport.feed(CONNECT)
    with anyio.fail_after(5):
        await session._run(handler)
    assert b"".join(transport.sent).count(b"ERROR\n") == 1


async def test_protocol_errors_and_handler_failures_are_rate_limited(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stomp_proto")
    from stomp_proto._adapter import _listener

    limited = _listener.server_log
    saved = dict(limited._windows)
    limited._windows.clear()
    failures = 0

    async def handler(session: ServerSession) -> None:
        nonlocal failures
        await session.next_event()
        await session.accept()
        async for event in session:
            if isinstance(event, Subscribe):
                failures += 1
                raise RuntimeError("the application broke")

    try:
        async with anyio.create_task_group() as tg:
            port = await tg.start(serve, handler, "127.0.0.1", 0)
            for frame in (b"BOGUS\n\n\0", b"SUBSCRIBE\nid:1\ndestination:/q\n\n\0"):
                for _ in range(20):
                    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                        await stream.send(CONNECT + frame)
                        with anyio.fail_after(5):
                            try:
                                while await stream.receive():
                                    pass
                            except (anyio.EndOfStream, anyio.BrokenResourceError):
                                pass
            tg.cancel_scope.cancel()
    finally:
        limited._windows.clear()
        limited._windows.update(saved)
    assert failures == 20
    lines = [r for r in caplog.records if r.name == "stomp_proto.server"]
    protocol = [r for r in lines if "protocol error" in r.getMessage()]
    failed = [r for r in lines if "handler failed" in r.getMessage()]
    assert len(protocol) == 5  # of 20
    assert len(failed) == 5  # of 20
    assert all(r.exc_info for r in failed)  # with the traceback
