"""Smoke tests of the broker fixtures, with nothing but the sans-IO core over
blocking sockets: every broker answers every STOMP version, delivers a queued
message with receipts and acks, serves TLS (RabbitMQ) and WebSocket
(RabbitMQ), and comes back on the same port after ``restart()``."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import struct
import subprocess
import threading
import uuid
from collections.abc import Callable

import pytest

from stomp_proto import (
    Ack,
    ClientConnection,
    Connect,
    Connected,
    ConnectionClosed,
    Event,
    Message,
    Receipt,
    Send,
    Subscribe,
)

from .blocking import BlockingStompClient
from .brokers import Broker, client_tls_context

pytestmark = pytest.mark.interop

OFFERS = [
    pytest.param((), "1.0", id="no-accept-version"),
    pytest.param(("1.0",), "1.0", id="1.0"),
    pytest.param(("1.1",), "1.1", id="1.1"),
    pytest.param(("1.2",), "1.2", id="1.2"),
    pytest.param(("1.0", "1.1", "1.2"), "1.2", id="all"),
]


def queue_name(tag: str) -> str:
    return f"/queue/stomp-proto-smoke-{tag}-{uuid.uuid4().hex[:12]}"


def collect(client: BlockingStompClient, want: dict[type[Event], int]) -> list[Event]:
    """Read events until ``want`` (event type -> count) has arrived, in any order."""
    got: list[Event] = []
    missing = dict(want)
    while any(missing.values()):
        event = client.next_event()
        kind = type(event)
        if missing.get(kind, 0) <= 0:
            raise AssertionError(f"unexpected {event!r} (still waiting for {missing})")
        missing[kind] -= 1
        got.append(event)
    return got


def test_startup_recorded(broker: Broker, record_property: Callable[[str, object], None]) -> None:
    assert broker.startup_times, "a started broker records its startup time"
    record_property(f"{broker.name}_startup_s", round(broker.startup_times[0], 2))
    assert broker.startup_times[0] < broker.start_timeout


@pytest.mark.parametrize(("offer", "expected"), OFFERS)
def test_connect_every_version(broker: Broker, offer: tuple[str, ...], expected: str) -> None:
    client = broker.connect_client(accept_version=offer)
    assert client.connected is not None
    assert client.connected.version == expected
    assert client.conn.version == expected
    client.disconnect()


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_queue_roundtrip_with_receipts_and_ack(broker: Broker, version: str) -> None:
    destination = queue_name(version)
    ack_mode = "client" if version == "1.0" else "client-individual"
    body = f"hello over STOMP {version} \N{SNOWMAN}".encode()

    client = broker.connect_client(accept_version=(version,))
    assert client.conn.version == version
    client.send(Subscribe(destination=destination, id="sub-1", ack=ack_mode, receipt="r-sub"))
    assert client.expect(Receipt).receipt_id == "r-sub"

    client.send(
        Send(destination=destination, body=body, content_type="text/plain", receipt="r-send")
    )
    events = collect(client, {Receipt: 1, Message: 1})
    receipt = next(e for e in events if isinstance(e, Receipt))
    message = next(e for e in events if isinstance(e, Message))
    assert receipt.receipt_id == "r-send"
    assert message.destination == destination
    assert message.body == body
    assert message.text() == body.decode()
    if version != "1.0":
        assert message.subscription == "sub-1"
    if version == "1.2":
        assert message.ack is not None
    assert len(client.conn.unacknowledged.get("sub-1", [])) == 1

    client.send(message.make_ack(receipt="r-ack"))
    assert client.expect(Receipt).receipt_id == "r-ack"
    assert client.conn.unacknowledged == {}
    client.disconnect()

    # The ACK took: a new subscriber gets the next message, not a redelivery.
    client = broker.connect_client(accept_version=(version,))
    client.send(Send(destination=destination, body=b"marker", receipt="r-marker"))
    assert client.expect(Receipt).receipt_id == "r-marker"
    client.send(Subscribe(destination=destination, id="sub-2", ack="auto"))
    assert client.expect(Message).body == b"marker"
    client.disconnect()


def test_ack_by_hand_in_1_2(broker: Broker) -> None:
    """ACK built from the MESSAGE's ack header only (what 1.2 requires)."""
    destination = queue_name("ack")
    client = broker.connect_client(accept_version=("1.2",))
    client.send(Subscribe(destination=destination, id="s", ack="client-individual"))
    client.send(Send(destination=destination, body=b"x", receipt="r1"))
    events = collect(client, {Receipt: 1, Message: 1})
    message = next(e for e in events if isinstance(e, Message))
    client.send(Ack(id=message.ack, receipt="r2"))
    assert client.expect(Receipt).receipt_id == "r2"
    client.disconnect()


# -- RabbitMQ's other listeners ----------------------------------------------


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1"])
def test_rabbitmq_tls_verified(rabbitmq_tls: Broker, server_hostname: str) -> None:
    assert rabbitmq_tls.tls_port is not None
    assert rabbitmq_tls.ca_file is not None
    context = ssl.create_default_context(cafile=str(rabbitmq_tls.ca_file))
    client = rabbitmq_tls.connect_client(
        port=rabbitmq_tls.tls_port, ssl_context=context, server_hostname=server_hostname
    )
    assert isinstance(client.sock, ssl.SSLSocket)
    peer = client.sock.getpeercert()
    assert peer is not None
    assert ("DNS", "localhost") in peer["subjectAltName"]

    destination = queue_name("tls")
    client.send(Subscribe(destination=destination, id="t", ack="auto"))
    client.send(Send(destination=destination, body=b"\x00binary\x00over tls", receipt="r"))
    events = collect(client, {Receipt: 1, Message: 1})
    message = next(e for e in events if isinstance(e, Message))
    assert message.body == b"\x00binary\x00over tls"
    client.disconnect()


def test_rabbitmq_tls_rejects_unknown_ca(rabbitmq_tls: Broker) -> None:
    """Without the test CA the certificate does not verify (it is not a public one)."""
    assert rabbitmq_tls.tls_port is not None
    context = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        rabbitmq_tls.connect_client(port=rabbitmq_tls.tls_port, ssl_context=context)


def test_rabbitmq_tls_context_helper(rabbitmq_tls: Broker) -> None:
    assert rabbitmq_tls.ca_file is not None and rabbitmq_tls.tls_port is not None
    client = rabbitmq_tls.connect_client(
        port=rabbitmq_tls.tls_port, ssl_context=client_tls_context(rabbitmq_tls.ca_file)
    )
    client.disconnect()


class _MiniWebSocket:
    """Just enough RFC 6455 for one STOMP exchange (client side, text frames)."""

    def __init__(self, host: str, port: int, path: str, protocols: str) -> None:
        self.sock = socket.create_connection((host, port), timeout=10.0)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocols}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, "EOF during the WebSocket handshake"
            head += chunk
        lines = head.decode("latin-1").split("\r\n")
        assert " 101 " in lines[0] + " ", lines[0]
        self.headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)
        }

    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "EOF inside a WebSocket frame"
            data += chunk
        return data

    def send_text(self, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def recv_message(self) -> bytes:
        b0, b1 = self._exact(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._exact(8))
        assert not b1 & 0x80, "server frames are not masked"
        payload = self._exact(n)
        assert b0 & 0x0F in (0x1, 0x2), f"opcode {b0 & 0x0F}"
        return payload

    def close(self) -> None:
        self.sock.close()


def test_rabbitmq_web_stomp(rabbitmq: Broker) -> None:
    assert rabbitmq.ws_port is not None
    ws = _MiniWebSocket(rabbitmq.host, rabbitmq.ws_port, "/ws", "v12.stomp, v11.stomp, v10.stomp")
    try:
        assert ws.headers.get("sec-websocket-protocol") == "v12.stomp"
        conn = ClientConnection()
        ws.send_text(
            conn.send(
                Connect(host=rabbitmq.vhost, login=rabbitmq.login, passcode=rabbitmq.passcode)
            )
        )
        conn.receive_data(ws.recv_message())
        connected = conn.next_event()
        assert isinstance(connected, Connected)
        assert connected.version == "1.2"
    finally:
        ws.close()


# -- the fixtures' own process handling (no broker needed) -------------------


class _Sleeper(Broker):
    """A "broker" that is one ``sleep`` process, to test the process handling."""

    name = "sleeper"

    @classmethod
    def missing_reason(cls) -> str | None:
        return None

    def _spawn(self) -> None:
        self._popen(["sleep", "120"], env=dict(os.environ), log=self.dir / "sleep.out")

    def _probe(self) -> None:
        pass


def test_a_broker_restarted_from_a_worker_thread_outlives_the_thread() -> None:
    # The processes ask for SIGTERM when their parent dies, and to the kernel
    # the parent is the *thread* that forked them: a broker restarted from
    # anyio.to_thread.run_sync died when that worker thread retired, in the
    # middle of a later test (the blocking client's idle heart-beat test).
    with _Sleeper() as sleeper:
        worker = threading.Thread(target=sleeper.restart)
        worker.start()
        worker.join()
        (proc,) = sleeper._procs
        with pytest.raises(subprocess.TimeoutExpired):  # SIGTERM would end it at once
            proc.wait(timeout=1.0)
        assert sleeper.running
        assert sleeper.unexpected_exits == []


def test_a_process_that_died_before_stop_is_recorded() -> None:
    with _Sleeper() as sleeper:
        (proc,) = sleeper._procs
        proc.kill()
        proc.wait(timeout=10)
        assert not sleeper.running
        sleeper.stop()
        assert sleeper._procs == []
        (death,) = sleeper.unexpected_exits
        assert f"sleep (pid {proc.pid}) had already exited with -9 when stopped" in death


# -- restart (last: it restarts the session brokers) -------------------------


def test_restart_same_port(broker: Broker) -> None:
    port, ws_port, tls_port = broker.stomp_port, broker.ws_port, broker.tls_port
    old = broker.connect_client()
    starts = len(broker.startup_times)

    broker.restart()

    assert len(broker.startup_times) == starts + 1
    assert (broker.stomp_port, broker.ws_port, broker.tls_port) == (port, ws_port, tls_port)
    # The old connection ends (EOF, possibly after an ERROR), the new one works.
    event = old.next_event(timeout=10)
    while not isinstance(event, ConnectionClosed):
        event = old.next_event(timeout=10)
    old.close()

    client = broker.connect_client()
    assert client.conn.version == "1.2"
    destination = queue_name("restart")
    client.send(Subscribe(destination=destination, id="r", ack="auto"))
    client.send(Send(destination=destination, body=b"after restart", receipt="r"))
    events = collect(client, {Receipt: 1, Message: 1})
    assert any(isinstance(e, Message) and e.body == b"after restart" for e in events)
    client.disconnect()
