"""The stock portfolio demo (issue 11): Spring's classic STOMP sample on :mod:`stomp_proto.app`.

``stomp-proto demo [--host H] [--port P]`` (or ``python -m stomp_proto.demo``)
serves a web page at ``http://H:P/`` that trades over STOMP over WebSocket at
``ws://H:P/portfolio``. :func:`create_app` is the application; see the docs'
demo page.
"""

from ._portfolio import STOCKS, USERS, Portfolios, TradeError, create_app

__all__ = ("STOCKS", "USERS", "Portfolios", "TradeError", "create_app")
