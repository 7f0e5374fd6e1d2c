"""STOMP over WebSocket inside an ASGI application (FastAPI, Starlette, any ASGI server).

``pip install 'stomp-proto[broker]'``; no web framework is needed: ASGI is a
calling convention. :class:`StompEndpoint` is Spring's
``registry.addEndpoint("/portfolio")``: an ASGI application that serves a
:class:`~stomp_proto.app.StompApp` (handlers, user destinations, logins,
rules) or a bare :class:`~stomp_proto.broker.Broker` to WebSocket clients,
mounted next to a web application's HTTP routes::

    endpoint = StompEndpoint(stomp_app)
    api = FastAPI(lifespan=endpoint.lifespan)           # the broker runs with the app
    api.router.routes.append(WebSocketRoute("/portfolio", endpoint))  # ws://HOST/portfolio
    api.mount("/stomp", endpoint)                        # or ws://HOST/stomp/ and below

Each WebSocket is one :class:`~stomp_proto.asyncio.ServerSession` of the
broker, over a transport that wraps the ASGI ``receive`` and ``send``
(``stomp_proto._adapter._asgi``): the protocol, the back-pressure and the
slow-consumer policy are the broker's, as over its own listeners. The broker
runs on the ASGI server's event loop, started and stopped by the ASGI
lifespan: the endpoint handles ``lifespan`` itself when it is the top-level
application, and :meth:`StompEndpoint.lifespan` is a framework's ``lifespan=``
(Starlette does not pass lifespan events to mounted applications). See the
docs' "Mounting in FastAPI/Starlette" page.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Iterable
from urllib.parse import urlsplit

import anyio

from ._adapter._asgi import (
    ASGIReceive,
    ASGISend,
    Message,
    accept_asgi_websocket,
    refuse_asgi_websocket,
)
from ._adapter._log import RateLimitedLog
from .app import StompApp
from .broker import Broker

if sys.version_info < (3, 11):  # pragma: no cover - anyio brings the backport
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ("StompEndpoint",)

log = logging.getLogger("stomp_proto.asgi")
#: Refused handshakes, rate-limited: anyone can send them.
_refusals = RateLimitedLog(log)

#: The broker of each application served by endpoints (``StompEndpoint(app)``).
_brokers: weakref.WeakKeyDictionary[StompApp, Broker] = weakref.WeakKeyDictionary()
#: Going away (RFC 6455 §7.4.1): the broker stopped under the session.
_GOING_AWAY = 1001


class StompEndpoint:
    """An ASGI application: a STOMP-over-WebSocket endpoint served by a broker.

    Args:
        target: a :class:`~stomp_proto.app.StompApp`, served by a broker of its
            own with no listeners (``app.broker(tcp=[], ws=[])``, one for all
            the endpoints of that application), or a
            :class:`~stomp_proto.broker.Broker` (shared with other endpoints
            and with its own TCP or WebSocket listeners, as configured).
        allowed_origins: None accepts a WebSocket from any page; a list
            accepts only pages of the same origin as the endpoint and of
            these origins (``"https://example.com"``); others get HTTP 403.
        max_message_size: the largest incoming WebSocket message, bytes (a
            larger one closes with 1009); default: the largest frame the
            broker's limits allow. ASGI servers have their own limit too
            (uvicorn's ``--ws-max-size``, hypercorn's
            ``websocket_max_message_size``: 16 MiB).
        binary: send every frame as a binary message (default: text when
            the frame is valid UTF-8, as the broker's own listener does).
        close_timeout: seconds to wait for the client's side of the closing
            handshake.

    Subprotocols, close codes and refusals are those of the broker's own
    WebSocket listener: the best of ``v12.stomp``, ``v11.stomp`` and
    ``v10.stomp`` the client offers is accepted; a session that ends with an
    ERROR frame closes with 1002; a refused handshake (the broker not
    running: 503; an origin not allowed: 403) is an HTTP response whose body
    says why, where the server supports the ASGI ``websocket.http.response``
    extension (uvicorn and hypercorn do), and a plain 403 elsewhere. An HTTP
    request to the endpoint is answered 426 Upgrade Required.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        target: StompApp | Broker,
        *,
        allowed_origins: Iterable[str] | None = None,
        max_message_size: int | None = None,
        binary: bool | None = None,
        close_timeout: float = 2.0,
    ) -> None:
        broker: Broker | None
        if isinstance(target, StompApp):
            broker = _brokers.get(target)
            if broker is None:  # one broker per application, whatever the endpoints
                broker = _brokers[target] = target.broker(tcp=[], ws=[])
        elif isinstance(target, Broker):
            broker = target
        else:
            raise TypeError(
                f"StompEndpoint serves a StompApp or a Broker, not {type(target).__name__}"
            )
        #: The broker that serves this endpoint's sessions.
        self.broker: Broker = broker
        self.allowed_origins = None if allowed_origins is None else frozenset(allowed_origins)
        if max_message_size is None:
            limits = broker.limits
            max_message_size = limits.max_header_size + limits.max_body_size
        self.max_message_size = max_message_size
        self.binary = binary
        self.close_timeout = close_timeout

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """Run the broker for the duration of the block, on the current event
        loop: ``async with endpoint.lifespan():`` in a framework's lifespan, or
        that lifespan itself (``FastAPI(lifespan=endpoint.lifespan)``, which
        passes ``app``, unused; the block yields nothing, so no lifespan
        state). A broker that is running already (shared, started elsewhere)
        is left running."""
        broker = self.broker
        if broker._thread is not None:
            yield
            return
        # What ``async with broker`` does, with a listener that cannot open
        # (a busy port) leaving no task group behind in a loop that goes on.
        async with anyio.create_task_group() as tg:
            await tg.start(broker.serve)
            try:
                yield
            finally:
                await broker.stop()

    async def __call__(self, scope: Message, receive: ASGIReceive, send: ASGISend) -> None:
        """The ASGI application: ``websocket``, ``lifespan`` and ``http`` scopes."""
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "http":
            await _upgrade_required(send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:
            raise ValueError(f"StompEndpoint does not serve ASGI {kind!r} scopes")

    def _refusal(self, scope: Message) -> tuple[int, str] | None:
        """Why the WebSocket of ``scope`` would be refused, as ``(status,
        reason)``; None when it would be accepted."""
        broker = self.broker
        if broker._thread is None:
            return 503, (
                "the STOMP broker is not running: start it in the application's lifespan "
                "(async with endpoint.lifespan(): ...)"
            )
        if broker._stopping:
            return 503, "the STOMP broker is stopping"
        if threading.get_ident() != broker._thread:
            return 500, "the STOMP broker runs on another event loop than this ASGI server"
        origin = _header(scope, b"origin")
        if (
            self.allowed_origins is not None
            and origin is not None
            and origin not in self.allowed_origins
            and not _same_origin(origin, scope)
        ):
            return 403, f"origin {origin!r} is not allowed"
        return None

    async def _websocket(self, scope: Message, receive: ASGIReceive, send: ASGISend) -> None:
        refused = self._refusal(scope)
        if refused is not None:
            status, reason = refused
            _refusals(
                f"refused {status}",
                logging.INFO,
                "WebSocket %s from %s refused (%d): %s",
                scope.get("path", ""),
                _peer(scope),
                status,
                reason,
            )
            await refuse_asgi_websocket(scope, receive, send, status, reason)
            return
        transport = await accept_asgi_websocket(
            scope,
            receive,
            send,
            max_message_size=self.max_message_size,
            binary=self.binary,
            close_timeout=self.close_timeout,
        )
        if transport is None:
            return
        try:
            await self.broker.serve_transport(transport, _peer(scope))
        except RuntimeError:  # the broker stopped during the handshake
            transport.close_code = _GOING_AWAY
        finally:
            await transport.aclose()

    async def _lifespan(self, receive: ASGIReceive, send: ASGISend) -> None:
        """The ASGI lifespan protocol, when the endpoint is the top-level application."""
        started = False
        try:
            message = await receive()
            if message["type"] != "lifespan.startup":  # pragma: no cover - servers start first
                return
            async with self.lifespan():
                started = True
                await send({"type": "lifespan.startup.complete"})
                while (await receive())["type"] != "lifespan.shutdown":
                    pass  # pragma: no cover - nothing else is defined
        except Exception as exc:
            which = "shutdown" if started else "startup"
            text = f"the STOMP broker's {which} failed: {_describe(exc)}"
            if not started:
                text += self._listeners()
            log.error("%s", text)
            await send({"type": f"lifespan.{which}.failed", "message": text})
            return
        await send({"type": "lifespan.shutdown.complete"})

    def _listeners(self) -> str:
        broker = self.broker
        listeners = [f"tcp {h}:{p}" for h, p in broker.tcp]
        listeners += [f"ws {h}:{p}{path}" for h, p, path in broker.ws]
        return f" (its listeners: {', '.join(listeners)})" if listeners else ""


async def _upgrade_required(send: ASGISend) -> None:
    body = (
        b"This is a STOMP over WebSocket endpoint: connect with a WebSocket client "
        b"(subprotocol v12.stomp), such as stompjs.\n"
    )
    await send(
        {
            "type": "http.response.start",
            "status": 426,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"upgrade", b"websocket"),
                (b"connection", b"Upgrade"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Message, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if bytes(key).lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _same_origin(origin: str, scope: Message) -> bool:
    """``origin`` (``scheme://host[:port]``) is the endpoint's own: the scheme
    of the scope (``ws``: http, ``wss``: https), the host and port it was sent to."""
    host = _header(scope, b"host")
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    parts = urlsplit(origin)
    if host is None or parts.scheme != scheme:
        return False
    default = 443 if scheme == "https" else 80
    try:
        asked = urlsplit("//" + host)
        return (parts.hostname, parts.port or default) == (asked.hostname, asked.port or default)
    except ValueError:  # a port that is not a number
        return False


def _peer(scope: Message) -> object:
    client = scope.get("client")
    return tuple(client) if client else None


def _describe(exc: BaseException) -> str:
    """One line for a failure, the first leaf of an exception group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return str(exc) or type(exc).__name__
