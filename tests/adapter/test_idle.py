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
