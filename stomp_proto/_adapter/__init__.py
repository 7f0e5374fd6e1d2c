"""The I/O adapters, written once against AnyIO so that they run on asyncio and trio.

``stomp_proto.asyncio`` and ``stomp_proto.trio`` re-export these names. The
adapters own sockets, tasks and sleeping; every protocol decision is made by
the sans-IO core (``ClientConnection`` / ``ServerConnection``).
"""

from ._client import (
    Client,
    ConnectionLost,
    ReceivedMessage,
    ReconnectPolicy,
    StompError,
    Subscription,
    Transaction,
    connect,
)
from ._server import ServerSession, serve
from ._websocket import WebSocketServerTransport, serve_websocket

__all__ = (
    "Client",
    "ConnectionLost",
    "ReceivedMessage",
    "ReconnectPolicy",
    "ServerSession",
    "StompError",
    "Subscription",
    "Transaction",
    "WebSocketServerTransport",
    "connect",
    "serve",
    "serve_websocket",
)
