"""Idle sessions cost nothing: the timer wakes only when a deadline is due (issue 9, item 13).

The clock is trio's MockClock with autojump: an hour of idleness passes in
moments, and the test counts how often each session's timer woke up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import trio.testing

from stomp_proto import ServerConnection
from stomp_proto.asyncio import ServerSession

from .test_one_error import CONNECT, MemoryTransport

HOUR = 3600.0


def run_idle(
    prepare: Callable[[MemoryTransport], None],
    accept: dict[str, object] | None,
    *,
    idle: float = HOUR,
    heart_beat: tuple[int, int] = (0, 0),
    connect_deadline: float | None = None,
) -> ServerSession:
    """Run one session over a memory transport for ``idle`` (virtual) seconds."""

    async def main() -> ServerSession:
        transport = MemoryTransport()
        session = ServerSession(
            transport,
            ServerConnection(heart_beat=heart_beat),
            connect_deadline=connect_deadline,
        )

        async def handler(session: ServerSession) -> None:
            if accept is not None:
                await session.next_event()
                await session.accept(**accept)
            async for _ in session:
                pass  # pragma: no cover - nothing arrives

        prepare(transport)
        async with anyio.create_task_group() as tg:
            tg.start_soon(session._run, handler)
            await anyio.sleep(idle)
            assert not session.closed
            tg.cancel_scope.cancel()
        return session

    clock = trio.testing.MockClock(autojump_threshold=0)
    run: Callable[..., Awaitable[ServerSession]] = main
    return anyio.run(run, backend="trio", backend_options={"clock": clock})


def test_an_idle_connected_session_never_wakes() -> None:
    session = run_idle(lambda t: t.feed(CONNECT), {})
    # Once at the start, once when CONNECTED went out: then an hour of nothing.
    assert session._tick_wakeups <= 3


def test_a_session_waiting_for_connect_never_wakes() -> None:
    session = run_idle(lambda t: None, None)
    assert session._tick_wakeups <= 2


def test_a_connect_deadline_far_away_wakes_once() -> None:
    session = run_idle(lambda t: t.feed(CONNECT), {}, connect_deadline=2 * HOUR)
    assert session._tick_wakeups <= 4  # the CONNECT came: the deadline is dropped at once


def test_heart_beats_wake_only_when_due() -> None:
    # The client wants a heart-beat every 10 s and sends none: 360 beats in an hour.
    def prepare(transport: MemoryTransport) -> None:
        transport.feed(CONNECT.replace(b"\n\n\0", b"\nheart-beat:0,10000\n\n\0"))

    session = run_idle(prepare, {"heart_beat": (10_000, 0)})
    beats = [data for data in session.transport.sent if data == b"\n"]  # type: ignore[attr-defined]
    assert 355 <= len(beats) <= 361
    assert session._tick_wakeups <= len(beats) + 4  # one wake-up per beat, no polls


def test_a_write_after_a_pause_does_not_count_the_pause_as_silence() -> None:
    """The handler does not read for 10 s (its own pause: not held against the client),
    then sends: the write in flight must not turn that pause into the client's silence."""
    from stomp_proto import Message, Subscribe

    class SlowTransport(MemoryTransport):
        async def send(self, data: bytes) -> None:
            if data.startswith(b"MESSAGE"):
                await anyio.sleep(0.19)  # slow, but less than the 0.2 s timeout
            self.sent.append(data)

    alive_after_the_write: list[bool] = []

    async def main() -> ServerSession:
        transport = SlowTransport()
        session = ServerSession(transport, ServerConnection(heart_beat=(0, 100)))

        async def handler(session: ServerSession) -> None:
            await session.next_event()
            await session.accept(heart_beat=(0, 100))  # the client must beat every 100 ms
            assert isinstance(await session.next_event(), Subscribe)
            # Busy, not reading: the timer (due every 0.2 s from about 0) does not
            # hold that against the client. The write spans the check at 10.2.
            await anyio.sleep_until(10.05)
            message = Message(destination="/q", message_id="1", subscription="s", body=b"m")
            await session.send(message)
            alive_after_the_write.append(not session.closed and session.error is None)
            transport.feed(b"\n")  # the client's heart-beat, read from here on
            async for _ in session:
                pass  # pragma: no cover

        transport.feed(CONNECT.replace(b"\n\n\0", b"\nheart-beat:100,0\n\n\0"))
        transport.feed(b"SUBSCRIBE\nid:s\ndestination:/q\n\n\0")
        async with anyio.create_task_group() as tg:
            tg.start_soon(session._run, handler)
            await anyio.sleep(10.5)
            tg.cancel_scope.cancel()
        return session

    clock = trio.testing.MockClock(autojump_threshold=0)
    session = anyio.run(main, backend="trio", backend_options={"clock": clock})
    assert alive_after_the_write == [True]
    assert session.error is not None  # in the end, the silent client was dropped
    assert "no data from the client" in str(session.error)
    assert any(data.startswith(b"MESSAGE\n") for data in session.transport.sent)  # type: ignore[attr-defined]


def test_an_idle_connection_is_one_task(anyio_backend: str) -> None:
    """Issue 14: no writer, timer or task group per idle connection, only its own task."""
    from stomp_proto.asyncio import serve

    async def handler(session: ServerSession) -> None:
        await session.next_event()
        await session.accept()
        async for _ in session:
            pass  # pragma: no cover - nothing arrives

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            port = await tg.start(
                lambda task_status: serve(handler, task_status=task_status, port=0)
            )
            await anyio.sleep(0.05)
            before = len(anyio.get_running_tasks())
            streams = []
            for _ in range(10):
                stream = await anyio.connect_tcp("127.0.0.1", port)
                await stream.send(CONNECT)
                with anyio.fail_after(5):
                    assert (await stream.receive()).startswith(b"CONNECTED")
                streams.append(stream)
            await anyio.sleep(0.05)  # the writers that sent CONNECTED have ended
            assert len(anyio.get_running_tasks()) - before == 10
            for stream in streams:
                await stream.aclose()
            tg.cancel_scope.cancel()

    anyio.run(main, backend=anyio_backend)
