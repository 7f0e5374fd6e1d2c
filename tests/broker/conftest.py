"""An in-process broker per test, on free ports, on both AnyIO backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from stomp_proto.asyncio import Client, connect
from stomp_proto.broker import Broker


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def broker_options() -> dict[str, object]:
    return {}


@pytest.fixture
async def broker(anyio_backend: str, broker_options: dict[str, object]) -> AsyncIterator[Broker]:
    options: dict[str, object] = {"tcp": [("127.0.0.1", 0)], "ws": [], "heart_beat": (0, 0)}
    options.update(broker_options)
    async with Broker(**options) as running:  # type: ignore[arg-type]
        yield running


def tcp_port(broker: Broker) -> int:
    return next(port for kind, _, port in broker.addresses if kind == "tcp")


def client(broker: Broker, **options: object) -> Client:
    options.setdefault("heart_beat", (0, 0))
    return connect("127.0.0.1", tcp_port(broker), **options)  # type: ignore[arg-type]


__all__ = ["anyio", "client", "tcp_port"]
