"""The ASGI applications the interop tests serve under uvicorn and hypercorn
(``asgi_servers.py``), for stompjs in node and our own clients (issue 13).

``api`` is what a FastAPI user writes: the application of ``interop_app.py``
(handlers, user destinations, logins, rules) behind a
:class:`~stomp_proto.asgi.StompEndpoint` at ``ws://HOST:PORT/ws`` (a WebSocket
route) and ``ws://HOST:PORT/mounted/`` (a mount), its broker started by
FastAPI's ``lifespan=``, also listening on STOMP over TCP at
``$STOMP_TCP_PORT`` (one broker for both), and ``POST /publish/DESTINATION``,
a synchronous route (run in FastAPI's thread pool) that publishes its JSON
body. The endpoint accepts pages from ``http://allowed.example`` (and its
own origin) only.

``bare`` is an endpoint as the whole ASGI application, which then handles the
lifespan itself: a plain broker with the same logins, also on TCP.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.routing import WebSocketRoute

from stomp_proto.asgi import StompEndpoint
from stomp_proto.broker import Broker

from .interop_app import USERS
from .interop_app import app as stomp_app

__all__ = ["ALLOWED_ORIGIN", "api", "bare"]

HOST = "127.0.0.1"
TCP_PORT = int(os.environ.get("STOMP_TCP_PORT", "0"))
ALLOWED_ORIGIN = "http://allowed.example"
# As the other interop servers: a client asking for 1000 ms heart-beats gets them.
HEART_BEAT = (1000, 1000)

broker = stomp_app.broker(tcp=[(HOST, TCP_PORT)], ws=[], heart_beat=HEART_BEAT)
endpoint = StompEndpoint(broker, allowed_origins=[ALLOWED_ORIGIN])


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    async with endpoint.lifespan():
        yield


api = FastAPI(lifespan=lifespan)
api.router.routes.append(WebSocketRoute("/ws", endpoint))
api.mount("/mounted", endpoint)


@api.post("/publish/{destination:path}")
def publish(destination: str, body: dict[str, object]) -> dict[str, int]:
    """Publish ``body`` as JSON, from a worker thread (Broker.publish is thread-safe)."""
    copies = broker.publish("/" + destination, json.dumps(body), content_type="application/json")
    return {"copies": copies}


bare = StompEndpoint(
    Broker(tcp=[(HOST, TCP_PORT)], ws=[], users=dict(USERS), heart_beat=HEART_BEAT)
)
