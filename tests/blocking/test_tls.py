"""The blocking client over TLS (and WebSocket over TLS) against our broker."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import anyio.from_thread
import pytest

from stomp_proto.blocking import connect

from .conftest import LOGIN, PASSCODE, BrokerThread
from .test_client import dest

pytest.importorskip("cryptography")


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[BrokerThread, Path]]:
    from tests.interop.brokers import make_tls_files

    ca_file, cert_file, key_file = make_tls_files(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    with anyio.from_thread.start_blocking_portal() as portal:
        running = BrokerThread(portal, websocket=True, ssl=server_context)
        running.start()
        try:
            yield running, ca_file
        finally:
            running.stop()


@pytest.mark.parametrize("websocket", [False, True], ids=["tls", "wss"])
def test_round_trip_over_tls(tls_broker: tuple[BrokerThread, Path], websocket: bool) -> None:
    broker, ca_file = tls_broker
    context = ssl.create_default_context(cafile=str(ca_file))
    host = f"wss://localhost:{broker.ws_port}/ws" if websocket else "localhost"
    queue = dest()
    big = bytes(range(256)) * 2048  # 512 KiB: many TLS records in one read
    with connect(
        host, broker.port, ssl=context, login=LOGIN, passcode=PASSCODE, heart_beat=(0, 0)
    ) as c:
        sub = c.subscribe(queue)
        c.send(queue, b"\x00secret", receipt=True)
        c.send(queue, big, receipt=True)
        c.send(queue, b"after", receipt=True)
        assert sub.get(timeout=10).body == b"\x00secret"
        assert sub.get(timeout=10).body == big
        assert sub.get(timeout=10).body == b"after"


def test_tls_verifies_the_certificate(tls_broker: tuple[BrokerThread, Path]) -> None:
    broker, _ = tls_broker
    with pytest.raises(ssl.SSLCertVerificationError):
        connect("localhost", broker.port, ssl=True, login=LOGIN, passcode=PASSCODE, timeout=5)
