"""The I/O adapters, written once against AnyIO so that they run on asyncio and trio.

The server side (``serve``, ``serve_websocket``, ``ServerSession``), the
transports, and the client's machinery (``_link.py``: one connection;
``_supervisor.py``: reconnects). The client's facade, which users see, is
defined in :mod:`stomp_proto.asyncio` (so that its classes carry that public
name); ``stomp_proto.asyncio`` and ``stomp_proto.trio`` re-export these names.
The adapters own sockets, tasks and sleeping; every protocol decision is made
by the sans-IO core (``ClientConnection`` / ``ServerConnection``).
"""

from ._server import ServerSession, serve
from ._websocket import WebSocketServerTransport, serve_websocket

__all__ = (
    "ServerSession",
    "WebSocketServerTransport",
    "serve",
    "serve_websocket",
)
