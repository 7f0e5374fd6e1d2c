"""Typing regression tests for :mod:`stomp_proto.asgi` (checked by ``mypy --strict``)."""

from __future__ import annotations

import sys
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    from typing import assert_type
elif TYPE_CHECKING:
    from typing_extensions import assert_type
else:  # Python 3.10 at run time: only mypy needs the real one

    def assert_type(value: Any, typ: Any, /) -> Any:
        return value


from stomp_proto.app import StompApp
from stomp_proto.asgi import StompEndpoint
from stomp_proto.broker import Broker


def test_stomp_endpoint() -> None:
    endpoint = StompEndpoint(StompApp(), allowed_origins=["https://app.example"], binary=True)
    assert_type(endpoint.broker, Broker)
    # An async context manager of None: FastAPI(lifespan=endpoint.lifespan) takes it.
    lifespan: AbstractAsyncContextManager[None] = endpoint.lifespan()
    for_fastapi: AbstractAsyncContextManager[None] = endpoint.lifespan(object())
    assert lifespan is not for_fastapi
    shared = StompEndpoint(endpoint.broker, max_message_size=1 << 20, close_timeout=1.0)
    assert shared.broker is endpoint.broker
