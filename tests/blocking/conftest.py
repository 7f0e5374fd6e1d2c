"""Fixtures for the blocking client's tests: our broker in a background thread.

:class:`BrokerThread` runs :class:`stomp_proto.broker.Broker` in an AnyIO
blocking portal (an event loop in a thread of its own, which the tests never
see), on a free loopback port, and can stop and start it again on the same
port (for the reconnect tests). Each test gets a fresh broker.

``no_leaked_threads`` (autouse) checks that every test leaves no client
reader thread behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import anyio.from_thread
import pytest

from stomp_proto.broker import Broker

HOST = "127.0.0.1"
LOGIN, PASSCODE = "user", "secret"


class BrokerThread:
    """Our broker, started and stopped from synchronous test code."""

    def __init__(
        self,
        portal: anyio.from_thread.BlockingPortal,
        *,
        websocket: bool = False,
        **options: object,
    ) -> None:
        self.portal = portal
        self.options = options
        self.websocket = websocket
        self.port = 0
        self.ws_port = 0
        self.broker: Broker | None = None
        self._served: Future[None] | None = None

    def start(self) -> None:
        broker = Broker(
            tcp=[(HOST, self.port)],
            ws=[(HOST, self.ws_port, "/ws")] if self.websocket else [],
            users={LOGIN: PASSCODE},
            **self.options,  # type: ignore[arg-type]
        )
        self._served, _ = self.portal.start_task(broker.serve)
        self.broker = broker
        self.port = next(port for kind, _, port in broker.addresses if kind == "tcp")
        if self.websocket:
            self.ws_port = next(port for kind, _, port in broker.addresses if kind == "ws")

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.ws_port}/ws"

    def stop(self) -> None:
        if self.broker is not None:
            assert self._served is not None
            self.portal.call(self.broker.stop)
            self._served.result(timeout=10)
            self.broker = None

    def stats(self) -> dict[str, int]:
        assert self.broker is not None
        return self.broker.stats


@pytest.fixture
def broker() -> Iterator[BrokerThread]:
    with anyio.from_thread.start_blocking_portal() as portal:
        running = BrokerThread(portal)
        running.start()
        try:
            yield running
        finally:
            running.stop()


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("stomp-proto reader")]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(reader_threads())
    yield
    deadline = time.monotonic() + 5
    while set(reader_threads()) - before and time.monotonic() < deadline:
        time.sleep(0.01)
    leaked = set(reader_threads()) - before
    assert not leaked, f"reader threads left running: {leaked}"
