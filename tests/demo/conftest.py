"""The portfolio demo served by an in-process broker per test, on both AnyIO backends.

The browser test needs Debian's ``chromium`` and Playwright for Python; either
missing skips it, except with ``CI=true``, where it fails (as the interop
tests do: CI must never pass by skipping).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from stomp_proto.asyncio import Client, connect
from stomp_proto.broker import Broker
from stomp_proto.demo import USERS
from stomp_proto.demo.__main__ import demo_broker


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def missing(what: str) -> None:
    """Skip (or, with CI=true, fail) for want of ``what``."""
    if in_ci():
        pytest.fail(f"{what} (CI=true: the browser test never skips)", pytrace=False)
    pytest.skip(what)


@asynccontextmanager
async def serve(interval: float | None = 0.02, **options: object) -> AsyncIterator[Broker]:
    """The demo on a free port, as ``stomp-proto demo`` serves it (the broker's
    own listener), prices every ``interval`` seconds (None: the default)."""
    settings: dict[str, object] = {"heart_beat": (0, 0)}
    if interval is not None:
        settings["interval"] = interval
    settings.update(options)
    async with demo_broker("127.0.0.1", 0, **settings) as b:
        yield b


def port(broker: Broker) -> int:
    return next(p for kind, _, p in broker.addresses if kind == "ws")


def trader(broker: Broker, user: str = "fabrice", passcode: str | None = None) -> Client:
    """A session of ``user`` over ws://.../portfolio, as the page opens it."""
    return connect(
        f"ws://127.0.0.1:{port(broker)}/portfolio",
        login=user,
        passcode=USERS[user] if passcode is None else passcode,
        heart_beat=(0, 0),
    )
