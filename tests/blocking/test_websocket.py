"""The blocking client over STOMP-over-WebSocket (``ws://`` URLs) against our broker."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import anyio.from_thread
import pytest

from stomp_proto.blocking import ConnectionLost, ReconnectPolicy, connect

from .conftest import HOST, LOGIN, PASSCODE, BrokerThread
from .test_client import dest

pytest.importorskip("wsproto")


@pytest.fixture
def ws_broker() -> Iterator[BrokerThread]:
    with anyio.from_thread.start_blocking_portal() as portal:
        running = BrokerThread(portal, websocket=True)
        running.start()
        try:
            yield running
        finally:
            running.stop()


def test_round_trip_text_and_binary(ws_broker: BrokerThread) -> None:
    queue = dest()
    big = "€uro " * 40_000  # 240 KB in one WebSocket message each way
    with connect(ws_broker.ws_url, login=LOGIN, passcode=PASSCODE, heart_beat=(0, 0)) as c:
        assert c.version == "1.2"
        assert c.vhost is None
        sub = c.subscribe(queue, ack="client-individual")
        c.send(queue, "über websocket", receipt=True)
        c.send(queue, b"\xff\x00binary", receipt=True)  # not UTF-8: a binary message
        c.send(queue, big, receipt=True)
        first = sub.get(timeout=5)
        assert first.text() == "über websocket"
        first.ack(receipt=True)
        assert sub.get(timeout=5).body == b"\xff\x00binary"
        assert sub.get(timeout=5).text() == big
    assert c.closed


def test_websocket_heart_beats_and_reconnect(ws_broker: BrokerThread) -> None:
    queue = dest()
    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, jitter=0.0, max_attempts=100)
    with connect(
        ws_broker.ws_url, login=LOGIN, passcode=PASSCODE, heart_beat=(50, 50), reconnect=policy
    ) as c:
        assert c.connected is not None
        sub = c.subscribe(queue)
        with pytest.raises(TimeoutError):
            sub.get(timeout=0.3)  # idle through several heart-beat intervals
        assert c.is_connected
        ws_broker.stop()
        ws_broker.start()
        assert c.wait_connected(10)
        c.send(queue, b"after", receipt=True)
        assert sub.get(timeout=5).body == b"after"


def test_a_refused_upgrade_is_an_os_error(ws_broker: BrokerThread) -> None:
    url = ws_broker.ws_url.replace("/ws", "/elsewhere")
    with pytest.raises(OSError, match="HTTP 404"):
        connect(url, login=LOGIN, passcode=PASSCODE, timeout=5)


def test_a_server_that_is_not_websocket() -> None:
    server = socket.create_server((HOST, 0))
    port = server.getsockname()[1]

    def answer() -> None:
        peer, _ = server.accept()
        peer.recv(65536)
        peer.close()  # closes during the handshake

    t = threading.Thread(target=answer)
    t.start()
    try:
        with pytest.raises(ConnectionLost, match="WebSocket handshake"):
            connect(f"ws://{HOST}:{port}/ws", timeout=5)
    finally:
        t.join(5)
        server.close()
