"""The portfolio demo as one web application: the page, ``POST /api/price``, the STOMP endpoint.

:class:`PortfolioDemo` is an ASGI application (``uvicorn stomp_proto.demo:app``,
``hypercorn stomp_proto.demo:app``) serving, on one port, what ``stomp-proto
demo`` serves:

* ``GET /`` (and ``/index.html``), ``/app.js``, ``/style.css``,
  ``/stomp.umd.min.js`` (@stomp/stompjs 7.5.0, Apache-2.0, shipped in
  ``_static/`` with ``/STOMPJS-LICENSE``): the page and its files.
* ``POST /api/price`` ``{"ticker": "MMM", "price": 129.45}``: sets the price
  and publishes it to ``/topic/price.stock.MMM``, in the shape of the price
  feed, to every subscriber (Spring's ``@PostMapping`` method calling
  ``SimpMessagingTemplate``); ``200 {"ticker", "price", "delivered"}``, or
  ``400 {"error", "field"}`` naming what is wrong (``body``, ``ticker``,
  ``price``).
* ``GET /metrics``: the broker's Prometheus metrics (with the ``metrics``
  extra, ``pip install 'stomp-proto[metrics]'``; without it a 501 saying so).
* ``ws://HOST:PORT/portfolio``: STOMP over WebSocket, a
  :class:`~stomp_proto.asgi.StompEndpoint` (Spring's
  ``registry.addEndpoint("/portfolio")``).

The HTTP side is one function, :meth:`PortfolioDemo.respond`; ``stomp-proto
demo`` (``__main__.py``) serves the same function through the broker's own
WebSocket listener (:attr:`PortfolioDemo.pages` is its ``http`` handler), so
both ways serve exactly the same thing.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Sequence
from typing import Any

from stomp_proto.asgi import StompEndpoint
from stomp_proto.broker import Broker

from .._adapter._asgi import ASGIReceive, ASGISend, Message, refuse_asgi_websocket
from ._portfolio import PriceError, Quotes, create_app

__all__ = ["ENDPOINT", "FILES", "PortfolioDemo", "pages"]

#: The WebSocket endpoint's path.
ENDPOINT = "/portfolio"
#: URL path -> (file in _static/, content type)
FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
    "/stomp.umd.min.js": ("stomp.umd.min.js", "text/javascript; charset=utf-8"),
    "/STOMPJS-LICENSE": ("STOMPJS-LICENSE", "text/plain; charset=utf-8"),
}
PRICE_API = "/api/price"
METRICS = "/metrics"
NO_METRICS = "the metrics need prometheus_client: pip install 'stomp-proto[metrics]'\n"
UPGRADE = "STOMP over WebSocket is here: connect with a WebSocket client (subprotocol v12.stomp)\n"
#: The largest request body read (a price update is a few dozen bytes).
MAX_BODY = 16 * 1024

Response = tuple[int, list[tuple[str, str]], bytes]


@functools.cache
def _static(name: str) -> bytes:
    return (
        importlib.resources.files(__package__ or "stomp_proto.demo") / "_static" / name
    ).read_bytes()


def pages(target: str) -> Response | None:
    """The page and its files, for a GET of ``target``; None (404) for anything else."""
    path = target.partition("?")[0].partition("#")[0]
    found = FILES.get("/" if path == "/index.html" else path)
    if found is None:
        return None
    name, content_type = found
    headers = [
        ("content-type", content_type),
        ("cache-control", "no-cache"),
        ("x-content-type-options", "nosniff"),
    ]
    return 200, headers, _static(name)


def _json(status: int, payload: object, *extra: tuple[str, str]) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return status, [("content-type", "application/json"), *extra], body


def _text(status: int, text: str, *extra: tuple[str, str]) -> Response:
    return status, [("content-type", "text/plain; charset=utf-8"), *extra], text.encode()


class _Pages:
    """The broker's ``http`` handler: :meth:`PortfolioDemo.respond`."""

    def __init__(self, demo: PortfolioDemo) -> None:
        self._demo = demo

    def __call__(self, target: str) -> Response | None:  # GET and HEAD
        return self._demo.respond("GET", target)

    def post(self, target: str, body: bytes) -> Response | None:
        return self._demo.respond("POST", target, body)


class PortfolioDemo:
    """The portfolio demo: an ASGI application (see the module docstring).

    ``interval`` and ``seed`` as :func:`~stomp_proto.demo.create_app`'s;
    ``broker_options`` as :class:`~stomp_proto.broker.Broker`'s (no listeners
    of its own by default: under an ASGI server the endpoint is the way in).
    """

    def __init__(
        self, *, interval: float = 0.5, seed: int | None = None, **broker_options: Any
    ) -> None:
        #: The prices, shared by the feed, the trades and ``POST /api/price``.
        self.quotes = Quotes()
        #: The STOMP application (:func:`~stomp_proto.demo.create_app`).
        self.stomp = create_app(interval=interval, seed=seed, quotes=self.quotes)
        #: The broker's ``http`` handler: this application's HTTP side.
        self.pages = _Pages(self)
        options: dict[str, Any] = {"tcp": [], "ws": [], "http": self.pages}
        options.update(broker_options)
        self.broker: Broker = self.stomp.broker(**options)
        #: The STOMP endpoint at :data:`ENDPOINT`.
        self.endpoint = StompEndpoint(self.broker)
        self._metrics: Any = None  # the registry GET /metrics renders, made on first use

    # -- HTTP, whoever serves it --------------------------------------------------------

    def respond(self, method: str, target: str, body: bytes = b"") -> Response | None:
        """The answer to an HTTP request; None for 404. From the broker's loop."""
        path = target.partition("?")[0]
        if path == ENDPOINT:  # what a WebSocket request would have asked for
            return _text(426, UPGRADE, ("upgrade", "websocket"), ("connection", "Upgrade"))
        if path == PRICE_API:
            if method != "POST":
                return _text(405, "POST a JSON price here\n", ("allow", "POST"))
            return self._set_price(body)
        if path == METRICS:
            if method not in ("GET", "HEAD"):
                return _text(405, "GET only\n", ("allow", "GET, HEAD"))
            return self._render_metrics()
        if method in ("GET", "HEAD"):
            return pages(target)
        if pages(target) is not None:
            return _text(405, "GET only\n", ("allow", "GET, HEAD"))
        return None

    def _render_metrics(self) -> Response:
        try:
            from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
        except ModuleNotFoundError:
            return _text(501, NO_METRICS)
        if self._metrics is None:
            self._metrics = CollectorRegistry()
            self._metrics.register(self.broker.collector())
        body = generate_latest(self._metrics)
        return 200, [("content-type", CONTENT_TYPE_LATEST), ("cache-control", "no-cache")], body

    def _set_price(self, body: bytes) -> Response:
        try:
            update = json.loads(body)
        except ValueError:
            return _json(
                400,
                {
                    "error": 'the body is not JSON: {"ticker": "MMM", "price": 129.45}',
                    "field": "body",
                },
            )
        try:
            quote = self.quotes.set_price(update)
        except PriceError as exc:
            return _json(400, {"error": str(exc), "field": exc.field})
        delivered = self.stomp.send(f"/topic/price.stock.{quote['ticker']}", quote)
        return _json(200, {**quote, "delivered": delivered})

    # -- ASGI -----------------------------------------------------------------------------

    async def __call__(self, scope: Message, receive: ASGIReceive, send: ASGISend) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.endpoint(scope, receive, send)  # starts and stops the broker
            return
        path = _route_path(scope)
        if kind == "websocket":
            if path == ENDPOINT:
                await self.endpoint(scope, receive, send)
            else:
                await refuse_asgi_websocket(
                    scope, receive, send, 404, f"no WebSocket here: STOMP is at {ENDPOINT}"
                )
            return
        if kind != "http":
            raise ValueError(f"the portfolio demo does not serve ASGI {kind!r} scopes")
        body = await _read_body(receive)
        method = scope["method"]
        if body is None:
            answer: Response | None = _text(413, f"at most {MAX_BODY} bytes\n")
        else:
            query = scope.get("query_string", b"").decode("latin-1")
            answer = self.respond(method, path + (f"?{query}" if query else ""), body)
        if answer is None:
            answer = _text(404, "not found\n")
        await _respond(send, answer, head=method == "HEAD")


def _route_path(scope: Message) -> str:
    """The path under the application's mount point, if it is mounted."""
    path: str = scope.get("path", "/")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path


async def _read_body(receive: ASGIReceive) -> bytes | None:
    """The request body; None when it is over :data:`MAX_BODY` bytes."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body
        chunk: bytes = message.get("body", b"")
        body += chunk
        if len(body) > MAX_BODY:
            return None
        if not message.get("more_body", False):
            return body


async def _respond(send: ASGISend, answer: Response, *, head: bool = False) -> None:
    status, headers, body = answer
    fields: Sequence[tuple[bytes, bytes]] = [
        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": b"" if head else body})
