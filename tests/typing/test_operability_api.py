"""Typing pins for the broker's operability API (checked by ``mypy --strict``).

The stats line, the Prometheus collector and its ASGI application, and what a
:class:`~stomp_proto.asyncio.ServerSession` records about its end (see
tests/typing/test_public_api.py for the conventions).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    from typing import assert_type
elif TYPE_CHECKING:
    from typing_extensions import assert_type
else:  # Python 3.10 at run time: only mypy needs the real one

    def assert_type(value: Any, typ: Any, /) -> Any:
        return value


import anyio

from stomp_proto import Error, Event, ServerConnection
from stomp_proto.asyncio import ServerSession
from stomp_proto.broker import Broker
from stomp_proto.broker.metrics import METRICS, ASGIApp, BrokerCollector


def test_broker_stats_and_metrics() -> None:
    broker = Broker(tcp=[], ws=[], stats_interval=60.0, metrics=None)
    assert_type(broker.stats_interval, float | None)
    assert_type(broker.metrics, tuple[str, int] | None)
    assert_type(broker.stats_line(), str)
    assert broker.stats_line().startswith("stats sessions=0 ")
    collector = broker.collector()
    assert_type(collector, BrokerCollector)
    assert_type(collector.max_queues, int)
    app = broker.metrics_app()
    assert_type(app, ASGIApp)
    assert callable(app)
    assert_type(METRICS, tuple[tuple[str, str, tuple[str, ...], str], ...])
    assert all(len(entry) == 4 for entry in METRICS)


class _Idle:
    """A transport that carries nothing (the session is only looked at)."""

    joins_writes = True

    async def send(self, data: bytes) -> None:
        return None

    async def receive(self) -> bytes:
        return b""

    async def aclose(self, *, error: bool = False, linger: float | None = None) -> None:
        return None


def test_server_session_records_its_end() -> None:
    async def main() -> None:
        session = ServerSession(_Idle(), ServerConnection(), ("127.0.0.1", 1))
        assert_type(session.scheme, str)
        assert session.scheme == "tcp"
        assert ServerSession(_Idle(), ServerConnection(), scheme="wss").scheme == "wss"
        framed = _Idle()
        framed.joins_writes = False  # a frame per message: a WebSocket, an ASGI one say
        assert ServerSession(framed, ServerConnection()).scheme == "ws"
        assert_type(session.close_reason, str | None)
        session.ending("shutdown")
        session.ending("eof")  # the first cause stands
        assert session.close_reason == "shutdown"
        assert_type(session.error_frame, Error | None)
        assert_type(session.frames_received, dict[type[Event], int])
        assert_type(session.frames_sent, dict[type[Event], int])
        assert_type(session.received_bytes, int)

    anyio.run(main)
