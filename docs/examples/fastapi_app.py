"""A FastAPI application with a STOMP endpoint: docs/asgi.rst.

Serve it from this directory with ``uvicorn fastapi_app:api`` (or
``hypercorn fastapi_app:api``): STOMP clients connect to
``ws://127.0.0.1:8000/portfolio``, and ``POST /prices/MMM`` publishes to
every subscriber of ``/topic/price.stock.MMM``. ``tests/asgi/test_docs.py``
runs it under uvicorn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.routing import WebSocketRoute

from stomp_proto.app import AppMessage, StompApp
from stomp_proto.asgi import StompEndpoint

stomp = StompApp(users={"fabrice": "fab123", "paulson": "bond"})


@stomp.message("/greet")  # SEND /app/greet: the reply goes to /topic/greet
def greet(message: AppMessage) -> str:
    return f"Hello, {message.text()}! (from {message.user})"


endpoint = StompEndpoint(stomp)  # Spring: registry.addEndpoint("/portfolio")


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    async with endpoint.lifespan():  # the broker runs while the application does
        yield


api = FastAPI(lifespan=lifespan)
api.router.routes.append(WebSocketRoute("/portfolio", endpoint))


class Quote(BaseModel):
    price: float


@api.post("/prices/{ticker}")
def set_price(ticker: str, quote: Quote) -> dict[str, int]:
    # A plain def runs in FastAPI's thread pool; stomp.send is thread-safe.
    delivered = stomp.send(f"/topic/price.stock.{ticker}", {"ticker": ticker, "price": quote.price})
    return {"delivered": delivered}


@api.get("/sessions")
async def sessions() -> dict[str, int]:
    return {"sessions": endpoint.broker.stats["sessions"]}
