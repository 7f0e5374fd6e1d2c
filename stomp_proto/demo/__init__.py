"""The stock portfolio demo (issue 11): Spring's classic STOMP sample on :mod:`stomp_proto.app`.

``stomp-proto demo [--host H] [--port P]`` (or ``python -m stomp_proto.demo``)
serves a web page at ``http://H:P/`` that trades over STOMP over WebSocket at
``ws://H:P/portfolio``; ``uvicorn stomp_proto.demo:app`` (or hypercorn) serves
the same as an ASGI application, :data:`app`. :func:`create_app` is the STOMP
application, :class:`PortfolioDemo` the web application around it; see the
docs' demo page.
"""

from ._portfolio import STOCKS, USERS, Portfolios, PriceError, Quotes, TradeError, create_app
from ._web import PortfolioDemo

__all__ = (
    "STOCKS",
    "USERS",
    "PortfolioDemo",
    "Portfolios",
    "PriceError",
    "Quotes",
    "TradeError",
    "app",
    "create_app",
)

#: The demo as an ASGI application: ``uvicorn stomp_proto.demo:app``.
app = PortfolioDemo()
