"""Reconnects are visible: logged, reported to ``on_state``, awaitable with ``wait_connected()``,
and waited out by ``send(..., wait_connected=True)``; against our broker, on both backends.

An outage is a broker restart (:class:`~.conftest.BrokerBox`): the broker closes
every connection, the port refuses connections for a while, then a new broker
listens on it again.
"""

from __future__ import annotations

import logging

import anyio
import pytest

from stomp_proto.asyncio import (
    ConnectionLost,
    ReconnectPolicy,
    StateChange,
    StompError,
    connect,
)

from .conftest import BrokerBox

pytestmark = pytest.mark.anyio

CLIENT_LOG = "stomp_proto.client"


class States:
    """An ``on_state`` callback that records each change and lets a test wait for one."""

    def __init__(self) -> None:
        self.changes: list[StateChange] = []
        self._changed = anyio.Event()

    def __call__(self, change: StateChange) -> None:
        self.changes.append(change)
        self._changed.set()
        self._changed = anyio.Event()

    @property
    def names(self) -> list[str]:
        return [change.state for change in self.changes]

    async def wait_for(self, state: str, count: int = 1, timeout: float = 5.0) -> StateChange:
        with anyio.fail_after(timeout):
            while self.names.count(state) < count:
                await self._changed.wait()
        return [c for c in self.changes if c.state == state][count - 1]


def messages(caplog: pytest.LogCaptureFixture, level: int | None = None) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == CLIENT_LOG and (level is None or r.levelno == level)
    ]


async def logged(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 5.0) -> None:
    """Wait until the client has logged a line containing ``text``."""
    with anyio.fail_after(timeout):
        while not any(text in m for m in messages(caplog)):
            await anyio.sleep(0.01)


FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.1, jitter=0.0, max_attempts=None)


async def test_an_outage_is_logged_reported_and_waited_out(
    broker_box: BrokerBox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=CLIENT_LOG)
    states = States()
    where = f"127.0.0.1:{broker_box.port}"
    async with connect(
        "127.0.0.1", broker_box.port, heart_beat=(0, 0), reconnect=FAST, on_state=states
    ) as client:
        assert states.names == ["connected"] and client.is_connected
        assert await client.wait_connected(timeout=0) is True  # up: at once
        sub = await client.subscribe("/queue/visible")

        await broker_box.stop()
        lost = await states.wait_for("reconnecting")
        assert isinstance(lost.error, ConnectionLost)
        assert (lost.host, lost.port) == ("127.0.0.1", broker_box.port)
        assert not client.is_connected
        assert await client.wait_connected(timeout=0.05) is False  # still down
        with pytest.raises(ConnectionLost, match="reconnecting"):
            await client.send("/queue/visible", "refused at once")
        await logged(caplog, "reconnect attempt 1 to")
        await logged(caplog, "failed")  # the port refuses while the broker is down

        sent: list[object] = []

        async def send_when_connected() -> None:
            sent.append(await client.send("/queue/visible", "waited out", wait_connected=True))

        async with anyio.create_task_group() as tg:
            tg.start_soon(send_when_connected)
            await anyio.sleep(0.1)
            assert sent == []  # waiting for the connection, not failed
            await broker_box.start()
            with anyio.fail_after(5):
                assert await client.wait_connected() is True
        assert sent == [None]
        with anyio.fail_after(5):
            message = await sub.get()  # re-subscribed on the new broker before the send
        assert message.text() == "waited out"
        assert states.names == ["connected", "reconnecting", "connected"]
        assert repr(client) == f"<stomp_proto.asyncio.Client {where} connected>"
    assert states.names[-1] == "closed" and states.changes[-1].error is None

    warnings = messages(caplog, logging.WARNING)
    assert f"connection to {where} lost: the server closed the connection; reconnecting" in (
        warnings
    )
    debug = messages(caplog, logging.DEBUG)
    assert f"connected to {where} (STOMP 1.2)" in debug
    assert f"reconnect attempt 1 to {where} in 0.05 s" in debug
    assert any(m.startswith(f"reconnect attempt 1 to {where} failed: ") for m in debug)
    assert f"disconnected from {where}" in debug
    (reconnected,) = messages(caplog, logging.INFO)
    assert reconnected.startswith(f"reconnected to {where} after ")
    assert reconnected.endswith(" attempt(s) (STOMP 1.2)")


async def test_giving_up_is_a_warning_and_the_closed_state(
    broker_box: BrokerBox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=CLIENT_LOG)
    states = States()
    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.02, jitter=0.0, max_attempts=2)
    async with connect(
        "127.0.0.1", broker_box.port, heart_beat=(0, 0), reconnect=policy, on_state=states
    ) as client:
        sub = await client.subscribe("/queue/given-up")
        await broker_box.stop()
        await states.wait_for("reconnecting")
        with anyio.fail_after(5), pytest.raises(ConnectionLost, match="server closed"):
            await client.wait_connected()  # raises when the policy gives up
        assert client.closed and not client.is_connected
        with pytest.raises(ConnectionLost, match="server closed"):
            await client.send("/queue/given-up", "never", wait_connected=True)
        with pytest.raises(ConnectionLost, match="server closed"):
            await sub.get()
    assert states.names == ["connected", "reconnecting", "closed"]
    assert isinstance(states.changes[-1].error, ConnectionLost)
    where = f"127.0.0.1:{broker_box.port}"
    gave_up = [m for m in messages(caplog, logging.WARNING) if m.startswith("gave up")]
    assert gave_up == [
        f"gave up reconnecting to {where} after 2 attempt(s); the session ends: "
        "the server closed the connection"
    ]
    assert len([m for m in messages(caplog, logging.DEBUG) if " failed: " in m]) == 2


async def test_without_a_policy_the_first_loss_ends_the_session(
    broker_box: BrokerBox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=CLIENT_LOG)
    states = States()
    async with connect("127.0.0.1", broker_box.port, heart_beat=(0, 0), on_state=states) as client:
        await broker_box.stop()
        closed = await states.wait_for("closed")
        assert isinstance(closed.error, ConnectionLost)
        with pytest.raises(ConnectionLost):
            await client.wait_connected()
    assert states.names == ["connected", "closed"]
    assert messages(caplog, logging.WARNING) == [
        f"connection to 127.0.0.1:{broker_box.port} lost: the server closed the connection "
        "(no reconnect policy: the session ends)"
    ]


async def test_an_error_frame_is_not_retried_and_says_so(
    broker_box: BrokerBox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=CLIENT_LOG)
    states = States()
    async with connect(
        "127.0.0.1", broker_box.port, heart_beat=(0, 0), reconnect=FAST, on_state=states
    ) as client:
        await client.send("/nowhere/at-all", "refused")  # no route: the broker sends ERROR
        closed = await states.wait_for("closed")
        assert isinstance(closed.error, StompError)
        with pytest.raises(StompError):
            await client.wait_connected()
    assert states.names == ["connected", "closed"]
    (warning,) = messages(caplog, logging.WARNING)
    assert warning.startswith(f"the server at 127.0.0.1:{broker_box.port} ended the session")
    assert not any("attempt" in m for m in messages(caplog))


async def test_disconnect_during_an_outage_stops_the_attempts(
    broker_box: BrokerBox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=CLIENT_LOG)
    states = States()
    client = connect(
        "127.0.0.1", broker_box.port, heart_beat=(0, 0), reconnect=FAST, on_state=states
    )
    async with client:
        await broker_box.stop()
        await states.wait_for("reconnecting")
        waiting: list[BaseException] = []

        async def wait() -> None:
            try:
                await client.wait_connected()
            except ConnectionLost as exc:
                waiting.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.sleep(0.01)
            with anyio.fail_after(1):
                await client.disconnect()
        assert [str(e) for e in waiting] == ["the client is closed"]
        attempts = len([m for m in messages(caplog) if m.startswith("reconnect attempt")])
        await anyio.sleep(0.3)  # three policy delays: no attempt may start after the close
        assert len([m for m in messages(caplog) if m.startswith("reconnect attempt")]) == attempts
    assert states.names == ["connected", "reconnecting", "closed"]
    assert states.changes[-1].error is None  # closed by its owner
    assert not any(
        r.levelno >= logging.WARNING and "gave up" in r.getMessage() for r in caplog.records
    )


async def test_subscribe_can_wait_for_the_connection_too(broker_box: BrokerBox) -> None:
    states = States()
    async with connect(
        "127.0.0.1", broker_box.port, heart_beat=(0, 0), reconnect=FAST, on_state=states
    ) as client:
        await broker_box.stop()
        await states.wait_for("reconnecting")
        subs = []

        async def subscribe() -> None:
            subs.append(await client.subscribe("/queue/later", wait_connected=True))

        async with anyio.create_task_group() as tg:
            tg.start_soon(subscribe)
            await anyio.sleep(0.1)
            assert subs == []
            await broker_box.start()
        await client.send("/queue/later", "live", receipt=True)
        with anyio.fail_after(5):
            assert (await subs[0].get()).text() == "live"


async def test_a_failing_on_state_callback_is_logged_and_ignored(
    broker_box: BrokerBox, caplog: pytest.LogCaptureFixture
) -> None:
    def on_state(change: StateChange) -> None:
        raise RuntimeError(f"bad hook for {change.state}")

    async with connect("127.0.0.1", broker_box.port, heart_beat=(0, 0), on_state=on_state) as c:
        sub = await c.subscribe("/queue/hooked")
        await c.send("/queue/hooked", "still works", receipt=True)
        assert (await sub.get()).text() == "still works"
    errors = [r for r in caplog.records if r.name == CLIENT_LOG and r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["the on_state callback raised (ignored)"] * 2
    assert errors[0].exc_info is not None and "bad hook for connected" in str(errors[0].exc_info[1])


async def test_calls_before_entering_and_a_second_entry_are_refused(
    broker_box: BrokerBox,
) -> None:
    client = connect("127.0.0.1", broker_box.port, heart_beat=(0, 0))
    assert repr(client) == f"<stomp_proto.asyncio.Client 127.0.0.1:{broker_box.port} not connected>"
    with pytest.raises(RuntimeError, match="async with connect"):
        await client.wait_connected()
    with pytest.raises(RuntimeError, match="async with connect"):
        await client.send("/queue/a", "too early")
    async with client:
        pass
    assert repr(client).endswith(" closed>")
    with pytest.raises(RuntimeError, match="entered once"):
        async with client:
            pass
    with pytest.raises(ConnectionLost, match="the client is closed"):
        await client.wait_connected()


async def test_a_connection_lost_while_resubscribing_is_retried_by_one_loop_only(
    anyio_backend: str,
) -> None:
    """The second connection dies on the re-sent SUBSCRIBE: the retry loop goes on
    (a third connection), and no second loop opens connections of its own."""
    from stomp_proto import Send, Subscribe
    from stomp_proto.asyncio import ServerSession, serve

    from .conftest import EchoServer

    echo = EchoServer()
    sessions = 0

    async def handler(session: ServerSession) -> None:
        nonlocal sessions
        sessions += 1
        if sessions >= 3:
            await echo.handle(session)
            return
        await session.next_event()
        await session.accept()
        async for event in session:
            if getattr(event, "receipt", None) is not None:
                await session.send(event.make_receipt())
            if sessions == 1 and isinstance(event, Send) and event.destination == "/queue/kill":
                return  # the first connection ends
            if sessions == 2 and isinstance(event, Subscribe):
                return  # the second ends on the re-subscription

    states = States()
    async with anyio.create_task_group() as tg:
        port = await tg.start(serve, handler, "127.0.0.1", 0)
        async with connect(
            "127.0.0.1", port, heart_beat=(0, 0), reconnect=FAST, on_state=states
        ) as client:
            sub = await client.subscribe("/queue/a")
            await client.send("/queue/kill", "bye")
            with anyio.fail_after(5):
                while sessions < 3 or not client.is_connected:
                    await anyio.sleep(0.01)
            await client.send("/queue/a", "third time", receipt=True)
            with anyio.fail_after(5):
                assert (await sub.get()).text() == "third time"
            await anyio.sleep(0.3)  # three policy delays: a stray loop would connect again
            assert sessions == 3
            assert states.names[0] == "connected" and states.names[-1] == "connected"
        tg.cancel_scope.cancel()
