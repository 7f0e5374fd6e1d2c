"""The stock portfolio: Spring's classic STOMP sample, written with :mod:`stomp_proto.app`.

This module is the whole application, on the public API only: a price feed
(Spring's ``QuoteService``), positions per user answered on subscription and
trades executed by a handler (``PortfolioController``), and errors reported to
the trader (``@MessageExceptionHandler``). ``__main__`` serves it with its web
page; nothing here knows about HTTP or sockets. Every handler is a coroutine,
so the prices and positions are only touched on the broker's event loop, one
handler at a time: no locks (a plain ``def`` handler would run in a worker
thread, as FastAPI runs sync endpoints).

Destinations:

* ``/topic/price.stock.{ticker}``: ``{"ticker": "MMM", "price": 129.45}``,
  every ticker each ``interval`` seconds (a random walk).
* ``SUBSCRIBE /app/quotes``: company names, opening and current prices, once.
* ``SUBSCRIBE /app/positions``: the user's positions, once:
  ``[{"ticker": "MMM", "shares": 75}, ...]``.
* ``SEND /app/trade`` ``{"action": "BUY" | "SELL", "ticker": "MMM", "shares": 5}``:
  the updated position goes to the user's ``/user/queue/position-updates``
  (every session of that user); a trade that cannot be executed sends
  ``{"error": "..."}`` to the sending session's ``/user/queue/errors``.

The prices are a :class:`Quotes`, shared with the web side (``_web.py``),
whose ``POST /api/price`` sets one (Spring's ``@PostMapping`` publishing
through the messaging template).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

import anyio

from stomp_proto.app import AppMessage, StompApp

__all__ = [
    "HOLDINGS",
    "STOCKS",
    "USERS",
    "Portfolios",
    "PriceError",
    "Quotes",
    "TradeError",
    "create_app",
]

#: ticker -> (company, opening price)
STOCKS: Mapping[str, tuple[str, float]] = {
    "MMM": ("3M", 129.45),
    "AAPL": ("Apple", 232.10),
    "CSCO": ("Cisco Systems", 58.02),
    "GOOG": ("Alphabet", 168.31),
    "IBM": ("IBM", 221.86),
    "MSFT": ("Microsoft", 415.26),
    "ORCL": ("Oracle", 171.40),
}
#: login -> passcode (Spring's sample has the same two traders)
USERS: Mapping[str, str] = {"fabrice": "fab123", "paulson": "bond"}
#: login -> ticker -> shares held when the demo starts
HOLDINGS: Mapping[str, Mapping[str, int]] = {
    "fabrice": {"MMM": 75, "MSFT": 33, "ORCL": 45},
    "paulson": {"GOOG": 5, "IBM": 23, "CSCO": 15},
}
MAX_SHARES = 1_000_000  # per trade
MAX_PRICE = 1_000_000.0


class TradeError(ValueError):
    """A trade that cannot be executed; its text goes back to the trader."""


class Portfolios:
    """Every user's shares, and the rules of a trade (no I/O: tested alone)."""

    def __init__(self, holdings: Mapping[str, Mapping[str, int]] = HOLDINGS) -> None:
        self.shares = {user: dict(held) for user, held in holdings.items()}

    def positions(self, user: str) -> list[dict[str, object]]:
        return [{"ticker": t, "shares": n} for t, n in sorted(self.shares.get(user, {}).items())]

    def trade(self, user: str, order: Any, prices: Mapping[str, float]) -> dict[str, object]:
        """Execute ``order`` (decoded JSON) for ``user``; the updated position,
        or :class:`TradeError` saying what is wrong with the order."""
        if not isinstance(order, dict):
            raise TradeError(f"a trade is a JSON object, not {json.dumps(order)[:40]}")
        action, ticker, shares = order.get("action"), order.get("ticker"), order.get("shares")
        if action not in ("BUY", "SELL"):
            raise TradeError(f"action must be BUY or SELL, not {json.dumps(action)[:40]}")
        if not isinstance(ticker, str) or ticker not in prices:
            raise TradeError(f"unknown ticker {json.dumps(ticker)[:40]}")
        if type(shares) is not int or not 0 < shares <= MAX_SHARES:
            raise TradeError(
                f"shares must be a whole number from 1 to {MAX_SHARES:,}, "
                f"not {json.dumps(shares)[:40]}"
            )
        held = self.shares.setdefault(user, {})
        now = held.get(ticker, 0)
        if action == "SELL" and shares > now:
            raise TradeError(f"cannot sell {shares} {ticker}: you hold {now}")
        now += shares if action == "BUY" else -shares
        if now:
            held[ticker] = now
        else:
            held.pop(ticker, None)
        return {
            "ticker": ticker,
            "shares": now,
            "action": action,
            "traded": shares,
            "price": prices[ticker],
        }


class PriceError(ValueError):
    """A price that cannot be set; ``field`` names what is wrong (``body``,
    ``ticker`` or ``price``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Quotes:
    """The current price of every ticker (no I/O: tested alone)."""

    def __init__(self, stocks: Mapping[str, tuple[str, float]] = STOCKS) -> None:
        self.prices = {ticker: price for ticker, (_, price) in stocks.items()}

    def quote(self, ticker: str) -> dict[str, object]:
        """What ``/topic/price.stock.TICKER`` carries: ``{"ticker", "price"}``."""
        return {"ticker": ticker, "price": self.prices[ticker]}

    def set_price(self, update: Any) -> dict[str, object]:
        """Set a price from ``update`` (decoded JSON ``{"ticker", "price"}``,
        the price in dollars, kept to the cent); the new quote, or
        :class:`PriceError` naming the field that is wrong."""
        if not isinstance(update, dict):
            raise PriceError("body", 'a price is a JSON object: {"ticker": ..., "price": ...}')
        ticker, price = update.get("ticker"), update.get("price")
        if not isinstance(ticker, str) or ticker not in self.prices:
            known = ", ".join(sorted(self.prices))
            raise PriceError("ticker", f"unknown ticker {json.dumps(ticker)[:40]} (one of {known})")
        if (
            not isinstance(price, int | float)
            or isinstance(price, bool)
            or not 0 < price <= MAX_PRICE  # NaN fails this too
            or round(price, 2) <= 0
        ):
            raise PriceError(
                "price",
                f"price must be a number of dollars from 0.01 to {MAX_PRICE:,.0f}, "
                f"not {json.dumps(price)[:40]}",
            )
        self.prices[ticker] = round(float(price), 2)
        return self.quote(ticker)


def create_app(
    *, interval: float = 0.5, seed: int | None = None, quotes: Quotes | None = None
) -> StompApp:
    """A fresh portfolio application: prices (``quotes``, default: the
    opening prices) every ``interval`` seconds."""
    app = StompApp(users=USERS)  # any other login is refused
    prices = (quotes if quotes is not None else Quotes()).prices
    book = Portfolios()
    walk = random.Random(seed)

    # Clients act through the application only: nobody but the server
    # publishes prices or writes to another user's queues.
    app.allow("SEND", "/app/**")
    app.deny("SEND", "/**")

    @app.on_startup  # Spring: QuoteService, @Scheduled(fixedDelay = 1000)
    async def quote_feed(app: StompApp) -> None:
        while True:
            for ticker, last in prices.items():
                price = max(0.01, round(last * (1 + walk.uniform(-0.005, 0.005)), 2))
                prices[ticker] = price
                app.send(f"/topic/price.stock.{ticker}", {"ticker": ticker, "price": price})
            await anyio.sleep(interval)

    @app.subscribe("/quotes")  # Spring: @SubscribeMapping("/quotes")
    async def companies(message: AppMessage) -> list[dict[str, object]]:
        return [
            {"ticker": t, "company": company, "open": opening, "price": prices[t]}
            for t, (company, opening) in STOCKS.items()
        ]

    @app.subscribe("/positions")  # Spring: @SubscribeMapping("/positions")
    async def positions(message: AppMessage) -> list[dict[str, object]]:
        return book.positions(str(message.user))

    # Spring: @MessageMapping("/trade") with @SendToUser("/queue/position-updates")
    @app.message("/trade", send_to_user="/queue/position-updates")
    async def trade(message: AppMessage) -> dict[str, object]:
        try:
            order = message.json()
        except ValueError:
            raise TradeError("a trade is JSON: {action, ticker, shares}") from None
        return book.trade(str(message.user), order, prices)

    # Spring: @MessageExceptionHandler with @SendToUser("/queue/errors")
    @app.exception_handler(TradeError)
    async def trade_refused(exc: BaseException, message: AppMessage) -> dict[str, str]:
        return {"error": str(exc)}

    return app
