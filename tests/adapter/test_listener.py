"""The shared listener: an accept loop that survives accept errors (issue 9, item 8),
and the rate-limited log lines it writes."""

from __future__ import annotations

import errno
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections import deque

import anyio
import anyio.abc
import pytest

from stomp_proto._adapter._listener import accept_loop
from stomp_proto._adapter._log import RateLimitedLog


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_limited_log_keeps_a_burst_per_cause_then_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    limited = RateLimitedLog(logging.getLogger("t.rl"), burst=3, period=10.0, clock=clock)
    caplog.set_level(logging.INFO, logger="t.rl")
    written = [limited("a", logging.WARNING, "a %d", i) for i in range(10)]
    assert written == [True] * 3 + [False] * 7
    assert limited("b", logging.WARNING, "b") is True  # another cause has its own budget
    assert limited.suppressed("a") == 7
    clock.now += 9.9
    assert limited("a", logging.WARNING, "a late") is False
    clock.now += 0.1  # a new window: the first line says what was suppressed
    assert limited("a", logging.WARNING, "a again") is True
    assert [r.getMessage() for r in caplog.records] == [
        "a 0",
        "a 1",
        "a 2",
        "b",
        "a again (8 similar lines suppressed)",
    ]
    assert limited.suppressed("a") == 0 and limited.suppressed("never") == 0


def test_rate_limited_log_bounds_its_table_of_causes() -> None:
    limited = RateLimitedLog(logging.getLogger("t.rl"), burst=1, max_causes=10)
    for i in range(25):
        limited(f"cause {i}", logging.DEBUG, "x")
    assert len(limited._windows) <= 10


class FlakyListener:
    """accept() fails with the queued errors first, then hands out the queued streams."""

    def __init__(self, errors: list[BaseException], streams: list[object]) -> None:
        self.errors = deque(errors)
        self.streams = deque(streams)
        self.calls = 0

    async def accept(self) -> object:
        self.calls += 1
        await anyio.sleep(0)
        if self.errors:
            raise self.errors.popleft()
        if self.streams:
            return self.streams.popleft()
        await anyio.sleep_forever()
        raise AssertionError  # pragma: no cover


def _wrapped(code: int) -> BaseException:
    """What AnyIO's trio backend raises: BrokenResourceError from the OSError."""
    exc = anyio.BrokenResourceError()
    exc.__cause__ = OSError(code, os.strerror(code))
    return exc


@pytest.mark.anyio
async def test_accept_loop_waits_out_transient_errors(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="t.accept")
    errors = [OSError(errno.EMFILE, "Too many open files") for _ in range(20)]
    errors += [_wrapped(errno.ENFILE), OSError(errno.ENOBUFS, "x"), _wrapped(errno.ENOMEM)]
    errors += [OSError(errno.ECONNABORTED, "x")]
    listener = FlakyListener(errors, ["s1", "s2"])
    handled: list[object] = []
    done = anyio.Event()

    async def handle(stream: object) -> None:
        handled.append(stream)
        if len(handled) == 2:
            done.set()

    limited = RateLimitedLog(logging.getLogger("t.accept"), burst=3)
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            lambda: accept_loop(
                listener, handle, tg, min_backoff=0.0, max_backoff=0.001, rate_limited=limited
            )
        )
        with anyio.fail_after(5):
            await done.wait()
        tg.cancel_scope.cancel()
    assert handled == ["s1", "s2"]  # served after every one of the 24 failures
    assert listener.calls == 24 + 3
    lines = [r.getMessage() for r in caplog.records]
    # 20 EMFILE: three lines, the rest suppressed; one line for each other cause.
    assert sum("Too many open files;" in line for line in lines) == 3
    assert len(lines) == 3 + 4


@pytest.mark.anyio
async def test_accept_loop_backs_off_while_errors_last(anyio_backend: str) -> None:
    sleeps: list[float] = []
    listener = FlakyListener([OSError(errno.EMFILE, "x") for _ in range(8)], ["s"])
    done = anyio.Event()

    async def handle(stream: object) -> None:
        done.set()

    import stomp_proto._adapter._listener as module

    real_sleep = module.anyio.sleep

    async def recording_sleep(delay: float) -> None:
        sleeps.append(delay)
        await real_sleep(0)

    module.anyio.sleep = recording_sleep  # type: ignore[assignment]
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: accept_loop(listener, handle, tg, min_backoff=0.01, max_backoff=0.5)
            )
            with anyio.fail_after(5):
                await done.wait()
            tg.cancel_scope.cancel()
    finally:
        module.anyio.sleep = real_sleep
    failures = [d for d in sleeps if d > 0]
    assert failures == [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.5, 0.5]


@pytest.mark.anyio
async def test_accept_loop_raises_other_errors(anyio_backend: str) -> None:
    listener = FlakyListener([OSError(errno.EBADF, "Bad file descriptor")], [])

    async def handle(stream: object) -> None:  # pragma: no cover - never accepted
        pass

    async with anyio.create_task_group() as tg:
        with pytest.raises(OSError, match="Bad file descriptor"):
            await accept_loop(listener, handle, tg)


# -- the real thing: a server process with few descriptors --------------------------------

CHILD = textwrap.dedent(
    """
    import resource, sys
    import anyio
    from stomp_proto.asyncio import serve, serve_websocket

    async def handler(session):
        connect = await session.next_event()
        await session.accept()
        async for event in session:
            pass

    async def main():
        async with anyio.create_task_group() as tg:
            tcp = await tg.start(serve, handler, "127.0.0.1", 0)
            ws = await tg.start(serve_websocket, handler, "127.0.0.1", 0)
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
            print(tcp, ws, flush=True)

    anyio.run(main, backend=sys.argv[1])
    """
)


def _stomp_round_trip(port: int, timeout: float) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
        return sock.recv(1000)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_server_survives_descriptor_exhaustion(backend: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        tcp, ws = map(int, child.stdout.readline().split())
        assert _stomp_round_trip(tcp, 5).startswith(b"CONNECTED\n")
        hogs = []
        for i in range(120):  # twice its 64 descriptors, on both listeners
            try:
                hogs.append(socket.create_connection(("127.0.0.1", ws if i % 4 else tcp), 2))
            except OSError:  # pragma: no cover - the backlog is full: that is fine
                break
        time.sleep(0.5)
        assert child.poll() is None, child.communicate()[1][-3000:]
        for hog in hogs:
            hog.close()
        deadline = time.monotonic() + 10
        while True:  # the listener accepts again once descriptors are free
            try:
                reply = _stomp_round_trip(tcp, 2)
                break
            except OSError:  # pragma: no cover - depends on the back-off's timing
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert reply.startswith(b"CONNECTED\n")
        assert child.poll() is None
    finally:
        child.kill()
        _, err = child.communicate()
    warnings = [line for line in err.splitlines() if "accept() failed" in line]
    assert warnings, err[-3000:]  # it did run out, and said so
    assert all("Too many open files" in line for line in warnings)
    assert len(warnings) <= 10  # rate-limited: 5 per cause per 10 s (a cause per listener errno)


@pytest.mark.anyio
async def test_a_failing_handshake_or_session_does_not_end_the_listener(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    from stomp_proto._adapter._listener import listen
    from stomp_proto._adapter._transport import StreamTransport, Transport

    caplog.set_level(logging.ERROR, logger="stomp_proto.server")
    calls: list[str] = []

    async def upgrade(stream: anyio.abc.ByteStream) -> Transport:
        calls.append("upgrade")
        if len(calls) == 1:
            raise RuntimeError("a bug in the upgrade step")
        return StreamTransport(stream)

    async def start(
        transport: Transport,
        peer: object,
        deadline: float | None,
        helpers: anyio.abc.TaskGroup | None = None,
    ) -> None:
        calls.append("start")
        if calls.count("start") == 1:
            raise RuntimeError("a bug in the session")
        await transport.send(b"hello")
        await transport.aclose()

    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: listen(
                "127.0.0.1",
                0,
                upgrade=upgrade,
                start=start,
                ssl=None,
                connect_timeout=None,
                handshake_timeout=None,
                task_status=task_status,
            )
        )
        for expected in (b"", b"", b"hello"):
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                received = b""
                with anyio.fail_after(5):
                    try:
                        while True:
                            received += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        pass
                assert received == expected
        tg.cancel_scope.cancel()
    assert calls == ["upgrade", "upgrade", "start", "upgrade", "start"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("handshake with" in m for m in messages)
    assert any("session with" in m for m in messages)
