"""An application served by an in-process broker per test, on both AnyIO backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from stomp_proto.app import StompApp
from stomp_proto.asyncio import Client, connect
from stomp_proto.broker import Broker


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def serve(app: StompApp, **options: object) -> AsyncIterator[Broker]:
    settings: dict[str, object] = {"tcp": [("127.0.0.1", 0)], "ws": [], "heart_beat": (0, 0)}
    settings.update(options)
    async with app.broker(**settings) as broker:
        yield broker


def port(broker: Broker) -> int:
    return next(p for kind, _, p in broker.addresses if kind == "tcp")


def client(broker: Broker, **options: object) -> Client:
    options.setdefault("heart_beat", (0, 0))
    return connect("127.0.0.1", port(broker), **options)
