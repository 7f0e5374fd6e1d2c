"""The endpoint inside FastAPI and Starlette, through Starlette's TestClient (issue 13).

What a FastAPI user writes: the broker's lifetime in ``lifespan=`` (Starlette
does not pass lifespan events to mounted applications), the endpoint as a
WebSocket route (``ws://host/portfolio``) and as a mount (``/mounted/``),
HTTP routes beside it, and a synchronous route, which FastAPI runs in a
worker thread, publishing to the broker.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI, WebSocket
from starlette.applications import Starlette
from starlette.routing import Mount, WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse

from stomp_proto import ClientConnection, Connect, Connected, Event, Message, Subscribe
from stomp_proto.app import AppMessage, StompApp
from stomp_proto.asgi import StompEndpoint
from stomp_proto.broker import Broker


class Stomp:
    """A STOMP client over one TestClient WebSocket (the sans-IO core does the frames)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.conn = ClientConnection()

    def send(self, event: Event) -> None:
        self.ws.send_text(self.conn.send(event).decode())

    def event(self) -> Event:
        while True:
            event = self.conn.next_event()
            if isinstance(event, Event):
                return event
            message = self.ws.receive()
            assert message["type"] == "websocket.send", message
            data = message.get("bytes") or message["text"].encode()
            self.conn.receive_data(data)

    def connect(self, **options: Any) -> Event:
        self.send(Connect(accept_version=("1.2",), host="testserver", **options))
        return self.event()


def build(stomp: StompApp) -> tuple[FastAPI, StompEndpoint, list[int]]:
    """A FastAPI application with the endpoint at /portfolio, /mounted/ and /decorated,
    an async and a sync (thread pool) route that publish."""
    endpoint = StompEndpoint(stomp)
    threads: list[int] = []

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        async with endpoint.lifespan():
            yield

    api = FastAPI(lifespan=lifespan)
    api.router.routes.append(WebSocketRoute("/portfolio", endpoint))
    api.mount("/mounted", endpoint)

    @api.websocket("/decorated")
    async def decorated(websocket: WebSocket) -> None:
        await endpoint(websocket.scope, websocket.receive, websocket.send)

    @api.get("/health")
    async def health() -> dict[str, object]:
        return {"sessions": endpoint.broker.stats["sessions"]}

    @api.post("/prices/{ticker}")
    def set_price(ticker: str, quote: dict[str, float]) -> dict[str, int]:  # a worker thread
        threads.append(threading.get_ident())
        copies = stomp.send(f"/topic/price.stock.{ticker}", {"ticker": ticker, **quote})
        return {"copies": copies}

    @api.post("/async/{ticker}")
    async def set_price_async(ticker: str, quote: dict[str, float]) -> dict[str, int]:
        copies = endpoint.broker.publish(f"/topic/price.stock.{ticker}", json.dumps(quote))
        return {"copies": copies}

    return api, endpoint, threads


@pytest.fixture
def stomp() -> StompApp:
    stomp = StompApp(users={"ann": "a"})

    @stomp.message("/echo")
    def echo(message: AppMessage) -> str:  # a worker thread too
        return message.text()

    return stomp


@pytest.fixture
def client(stomp: StompApp) -> Iterator[tuple[TestClient, StompEndpoint, list[int]]]:
    api, endpoint, threads = build(stomp)
    with TestClient(api) as test_client:
        yield test_client, endpoint, threads


def test_a_websocket_route_and_a_mount_beside_http_routes(
    client: tuple[TestClient, StompEndpoint, list[int]],
) -> None:
    http, _, _ = client
    for path in ("/portfolio", "/mounted/", "/decorated"):
        with http.websocket_connect(path, subprotocols=["v10.stomp", "v12.stomp"]) as ws:
            assert ws.accepted_subprotocol == "v12.stomp"
            stomp = Stomp(ws)
            assert isinstance(stomp.connect(login="ann", passcode="a"), Connected)
            stomp.send(Subscribe(destination="/topic/echo", id="1", receipt="r"))
            stomp.event()
            assert http.get("/health").json() == {"sessions": 1}
    # HTTP to the mount reaches the endpoint: 426; a WebSocket route is not an HTTP one.
    upgrade = http.get("/mounted/")
    assert upgrade.status_code == 426 and upgrade.headers["upgrade"] == "websocket"
    assert http.get("/portfolio").status_code == 404
    assert http.get("/nowhere").status_code == 404


def test_a_sync_route_publishes_from_a_worker_thread(
    client: tuple[TestClient, StompEndpoint, list[int]],
) -> None:
    http, endpoint, threads = client
    with http.websocket_connect("/portfolio", subprotocols=["v12.stomp"]) as ws:
        stomp = Stomp(ws)
        stomp.connect(login="ann", passcode="a")
        stomp.send(Subscribe(destination="/topic/price.stock.MMM", id="1", receipt="r"))
        stomp.event()
        for n in range(20):
            response = http.post("/prices/MMM", json={"price": 100.0 + n})
            assert response.json() == {"copies": 1}
        assert threads and all(t != endpoint.broker._thread for t in threads)
        prices = []
        for _ in range(20):
            message = stomp.event()
            assert isinstance(message, Message)
            assert message.content_type == "application/json"
            prices.append(json.loads(message.body)["price"])
        assert prices == [100.0 + n for n in range(20)]  # in order, none lost
        assert http.post("/async/MMM", json={"price": 1.5}).json() == {"copies": 1}
        assert json.loads(stomp.event().body) == {"price": 1.5}  # type: ignore[attr-defined]


def test_a_second_test_client_runs_the_lifespan_again(stomp: StompApp) -> None:
    api, endpoint, _ = build(stomp)
    for _ in range(2):
        with TestClient(api) as http, http.websocket_connect("/portfolio") as ws:
            assert isinstance(Stomp(ws).connect(login="ann", passcode="a"), Connected)
        assert endpoint.broker._thread is None  # stopped with the lifespan


def test_without_the_lifespan_the_handshake_is_refused_saying_why(stomp: StompApp) -> None:
    api = FastAPI()  # no lifespan=: nobody starts the broker
    api.router.routes.append(WebSocketRoute("/portfolio", StompEndpoint(stomp)))
    with (
        TestClient(api) as http,
        pytest.raises(WebSocketDenialResponse) as refused,
        http.websocket_connect("/portfolio"),
    ):
        pass  # pragma: no cover
    assert refused.value.status_code == 503
    assert "the STOMP broker is not running" in refused.value.text
    assert "lifespan" in refused.value.text


def test_starlette_with_the_broker_as_the_lifespan() -> None:
    broker = Broker(tcp=[], ws=[], heart_beat=(0, 0))
    endpoint = StompEndpoint(broker)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with broker:
            yield

    app = Starlette(
        routes=[WebSocketRoute("/ws", endpoint), Mount("/stomp", endpoint)], lifespan=lifespan
    )
    with TestClient(app) as http:
        for path in ("/ws", "/stomp/"):
            with http.websocket_connect(path, subprotocols=["v11.stomp"]) as ws:
                assert ws.accepted_subprotocol == "v11.stomp"
                connected = Stomp(ws).connect()
                assert isinstance(connected, Connected) and connected.version == "1.2"
