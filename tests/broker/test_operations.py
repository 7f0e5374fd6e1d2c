"""Slow consumers, the command line, TLS and shutdown of the broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import anyio
import pytest

from stomp_proto import ClientConnection, Connect, Message, Subscribe
from stomp_proto.broker import Broker

from .conftest import client, tcp_port

pytestmark = pytest.mark.anyio


async def stalled_subscriber(port: int, destination: str) -> anyio.abc.SocketStream:
    """A client that subscribes and then never reads again."""
    conn = ClientConnection()
    stream = await anyio.connect_tcp("127.0.0.1", port)
    await stream.send(conn.send(Connect(heart_beat=(0, 0))))
    reply = b""
    while b"\x00" not in reply:
        reply += await stream.receive()
    conn.receive_data(reply)
    conn.next_event()
    await stream.send(conn.send(Subscribe(destination=destination, id="0", receipt="live")))
    while b"live" not in reply:
        reply += await stream.receive()
    return stream


@pytest.mark.parametrize("broker_options", [{"max_pending_bytes": 512 * 1024}])
async def test_slow_consumer_loses_topic_copies_not_the_broker_memory(broker: Broker) -> None:
    stalled = await stalled_subscriber(tcp_port(broker), "/topic/flood")
    body = b"x" * 10_000
    count = 2000  # 20 MB: far more than the kernel's socket buffers hold
    async with client(broker) as fast_client:
        fast = await fast_client.subscribe("/topic/flood", buffer=count)
        for i in range(count):
            broker.publish("/topic/flood", body, headers=(("n", str(i)),))
            await anyio.sleep(0)  # a producer that lets the writers run
            pending = max(link.session.pending_bytes for link in broker._links.values())
            assert pending <= 512 * 1024 + 2 * len(body) + 1024
        with anyio.fail_after(20):
            got = [await fast.get() for _ in range(count)]
        assert [int(dict(m.headers)["n"]) for m in got] == list(
            range(count)
        )  # the fast one lost nothing
    assert broker.stats["dropped"] > 0
    await stalled.aclose()


@pytest.mark.parametrize(
    "broker_options", [{"max_pending_bytes": 64 * 1024, "slow_consumer": "disconnect"}]
)
async def test_slow_consumer_can_be_disconnected(broker: Broker) -> None:
    stalled = await stalled_subscriber(tcp_port(broker), "/topic/flood")
    for i in range(2000):
        broker.publish("/topic/flood", b"x" * 10_000)
        if i % 50 == 0:
            await anyio.sleep(0)
    with anyio.fail_after(10):
        while broker.stats["sessions"]:
            await anyio.sleep(0.05)
    await stalled.aclose()


@pytest.mark.parametrize("broker_options", [{"max_pending_bytes": 64 * 1024}])
async def test_queue_messages_skip_a_full_consumer(broker: Broker) -> None:
    stalled = await stalled_subscriber(tcp_port(broker), "/queue/jobs")
    (stalled_link,) = broker._links.values()
    async with client(broker) as worker:
        for _ in range(2000):
            broker.publish("/queue/jobs", b"y" * 10_000)
        jobs = await worker.subscribe("/queue/jobs", buffer=2000)
        # The stalled consumer takes what its socket's kernel buffers absorb (a
        # few MB), then stops getting messages; everything else goes to the worker.
        received = 0
        with anyio.fail_after(20):
            while broker.stats["queued"] or (
                received + stalled_link.session.frames_sent.get(Message, 0) < 2000
            ):
                await jobs.get()
                received += 1
        assert received > 500  # the rest filled the stalled socket's kernel buffers
        assert broker.stats["delivered"] == 2000
        assert 0 < stalled_link.session.pending_bytes <= 64 * 1024 + 11_000
    await stalled.aclose()


def test_command_line_serves_and_stops_on_sigterm(tmp_path: object) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stomp_proto.broker",
            "--tcp",
            f"127.0.0.1:{port}",
            "--ws",
            "127.0.0.1:0/stomp",
            "--user",
            "alice:pw",
            "--heart-beat",
            "0,0",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        lines = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            lines.append(line)
            if "ready" in line:
                break
        log = "".join(lines)
        assert f"STOMP over TCP on 127.0.0.1:{port}" in log
        assert "STOMP over WebSocket on ws://127.0.0.1:" in log and "/stomp" in log

        async def use() -> str:
            async with client_for(port) as c:
                sub = await c.subscribe("/queue/cli")
                await c.send("/queue/cli", "via the CLI")
                return (await sub.get()).text()

        assert anyio.run(use) == "via the CLI"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert "SIGTERM: stopping" in proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()


def client_for(port: int):  # type: ignore[no-untyped-def]
    from stomp_proto.asyncio import connect

    return connect("127.0.0.1", port, login="alice", passcode="pw", heart_beat=(0, 0))


def test_cli_help_and_bad_arguments() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "stomp_proto.broker", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--tcp HOST:PORT" in out.stdout and "--slow-consumer" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "stomp_proto.broker", "--tcp", "nope"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "expected HOST:PORT" in bad.stderr
    script = subprocess.run(
        ["stomp-proto"], capture_output=True, text=True, check=False, env=dict(os.environ)
    )
    assert script.returncode == 2 and "stomp-proto broker" in script.stderr


async def test_tls_listener(anyio_backend: str, tmp_path: object) -> None:
    import ssl
    from pathlib import Path

    from tests.interop.brokers import client_tls_context, make_tls_files

    ca, cert, key = make_tls_files(Path(str(tmp_path)))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    async with Broker(tcp=[("127.0.0.1", 0)], ws=[], ssl=context, heart_beat=(0, 0)) as broker:
        from stomp_proto.asyncio import connect

        async with connect(
            "127.0.0.1",
            tcp_port(broker),
            ssl=client_tls_context(ca),
            server_hostname="localhost",
            heart_beat=(0, 0),
        ) as c:
            sub = await c.subscribe("/queue/tls")
            await c.send("/queue/tls", b"\x00over tls", receipt=True)
            with anyio.fail_after(5):
                assert (await sub.get()).body == b"\x00over tls"


async def test_stop_flushes_and_closes(anyio_backend: str) -> None:
    broker = Broker(tcp=[("127.0.0.1", 0)], ws=[], heart_beat=(0, 0))
    await broker.start()
    async with client(broker) as c:
        sub = await c.subscribe("/topic/bye")
        broker.publish("/topic/bye", "last words")
        await broker.stop()
        with anyio.fail_after(5):
            assert (await sub.get()).text() == "last words"


@pytest.mark.parametrize("broker_options", [{"heart_beat": (100, 100), "grace": 2.0}])
async def test_silent_client_is_dropped(broker: Broker) -> None:
    stream = await anyio.connect_tcp("127.0.0.1", tcp_port(broker))
    await stream.send(b"CONNECT\naccept-version:1.2\nheart-beat:100,100\n\n\x00")
    received = b""
    with anyio.fail_after(5):
        try:
            while True:  # the broker's own heart-beats, then EOF after ~0.2 s of our silence
                chunk = await stream.receive()
                received += chunk
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass
    assert received.startswith(b"CONNECTED\n") and b"heart-beat:100,100" in received
    with anyio.fail_after(5):
        while broker.stats["sessions"]:
            await anyio.sleep(0.01)  # the session's cleanup runs just after the close
    await stream.aclose()


@pytest.mark.parametrize("broker_options", [{"max_pending_bytes": 64 * 1024}])
async def test_a_late_consumer_gets_the_whole_queue(broker: Broker) -> None:
    """Regression: when a backlog dispatch stopped at max_pending_bytes, the
    rest of the queue waited for the next publish instead of the drain."""
    count = 20_000
    async with client(broker) as consumer, client(broker) as producer:
        sub = await consumer.subscribe("/queue/late", buffer=10)
        for _ in range(count):
            await producer.send("/queue/late", b"x" * 100)
        await producer.send("/queue/late", b"last", receipt=True)
        await anyio.sleep(0.5)  # the consumer starts reading late
        with anyio.fail_after(20):
            for _ in range(count):
                await sub.get()
            assert (await sub.get()).body == b"last"
    assert broker.stats["queued"] == 0


async def test_a_busy_port_is_an_oserror_naming_it(anyio_backend: str) -> None:
    """``async with Broker(...)`` on a busy port raises one OSError naming the
    address (not an exception group), leaves no cancel scope open in the
    caller's task (a FastAPI lifespan goes on to fail cleanly), and the same
    broker starts once the port is free."""
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        broker = Broker(tcp=[("127.0.0.1", port)], ws=[])
        for _ in range(2):
            with pytest.raises(OSError, match=f"cannot listen for STOMP on 127.0.0.1:{port}"):
                async with broker:
                    pass  # pragma: no cover
            with anyio.move_on_after(0.01):  # a cancel scope of our own still works
                await anyio.sleep(1)
        with pytest.raises(RuntimeError, match="not running"):
            broker.publish("/topic/x", b"nobody")
    async with broker:
        assert broker.addresses == [("tcp", "127.0.0.1", port)]
