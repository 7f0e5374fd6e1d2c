"""Fixtures for the ASGI endpoint's tests: both AnyIO backends, a broker with no listeners."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from stomp_proto.broker import Broker


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def broker_options() -> dict[str, object]:
    return {}


@pytest.fixture
async def broker(anyio_backend: str, broker_options: dict[str, object]) -> AsyncIterator[Broker]:
    """A running broker with no listeners of its own (ASGI only), no heart-beats."""
    options: dict[str, object] = {"tcp": [], "ws": [], "heart_beat": (0, 0)}
    options.update(broker_options)
    async with Broker(**options) as running:  # type: ignore[arg-type]
        yield running
