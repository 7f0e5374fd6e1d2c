"""The STOMP application the interop tests serve with ``stomp-proto run
tests.interop.interop_app:app`` (see ``ourapp.py``), for clients nobody here
wrote (stompjs in node, stomp.py).

A small portfolio, the scenario of Spring's STOMP sample, with one of each
capability the clients exercise:

* ``SEND /app/echo.ROOM``: the reply (text) goes to ``/topic/echo.ROOM``,
  the default route (``/topic`` + the handler's path).
* ``SEND /app/trade`` with ``{"action": "BUY"|"SELL", "ticker": ..., "shares": N}``:
  the updated position goes to *every* session of the sending user at
  ``/user/queue/position-updates``. Bad input (malformed JSON, a bad ticker,
  non-positive shares, selling more than held) raises :exc:`ValueError`,
  which the exception handler turns into ``{"error": ..., "destination": ...}``
  on the sending session's ``/user/queue/errors``.
* ``SEND /app/whisper``: the reply goes to the sending *session* only
  (``broadcast=False``) at ``/user/queue/whispers``.
* ``SEND /app/boom``: raises :exc:`RuntimeError`, handled by nobody: the
  default ``{"error": "kaboom"}`` on ``/user/queue/errors`` and a traceback in
  the log (the fixture allows this one traceback and no other).
* ``SUBSCRIBE /app/positions``: answered once with the user's positions, a
  JSON list of ``{"ticker": ..., "shares": ...}`` sorted by ticker.
* Logins: :data:`USERS` only. Rules: only ``alice`` may SUBSCRIBE or SEND to
  ``/topic/admin.**``; ``/app/**`` needs a login.

The process is shared by a whole test session: tests use tickers and rooms
of their own, and look only at messages about them.
"""

from __future__ import annotations

import re
import threading

from stomp_proto.app import AppMessage, StompApp, authenticated
from stomp_proto.broker import Session

__all__ = ["BOOM", "INITIAL", "USERS", "app"]

#: login -> passcode; nobody else gets in.
USERS = {"alice": "alice-secret", "bob": "bob-secret"}
#: What each user holds when the process starts.
INITIAL = {"alice": {"MMM": 10}, "bob": {"IBM": 5}}
#: The unhandled exception's text.
BOOM = "kaboom"

_TICKER = re.compile(r"[A-Z][A-Z0-9]{0,19}")

app = StompApp(users=USERS)

_positions = {user: dict(held) for user, held in INITIAL.items()}
# Plain handlers run in worker threads, and two sessions of one user may trade at once.
_lock = threading.Lock()


@app.message("/echo.{room}")
def echo(message: AppMessage) -> str:
    return f"{message.user}: {message.text().upper()}"


@app.message("/trade", send_to_user="/queue/position-updates")
def trade(message: AppMessage) -> dict[str, object]:
    order = message.json()  # json.JSONDecodeError is a ValueError
    if not isinstance(order, dict):
        raise ValueError("a trade is a JSON object")
    action, ticker, shares = order.get("action"), order.get("ticker"), order.get("shares")
    if action not in ("BUY", "SELL"):
        raise ValueError(f"unknown action {action!r}")
    if not isinstance(ticker, str) or not _TICKER.fullmatch(ticker):
        raise ValueError(f"unknown ticker {ticker!r}")
    if not isinstance(shares, int) or isinstance(shares, bool) or shares <= 0:
        raise ValueError("shares must be positive")
    assert message.user is not None  # the rules let only logged-in sessions here
    with _lock:
        held = _positions.setdefault(message.user, {})
        now = held.get(ticker, 0) + (shares if action == "BUY" else -shares)
        if now < 0:
            raise ValueError(f"cannot sell {shares} {ticker}: {held.get(ticker, 0)} held")
        held[ticker] = now
    return {"ticker": ticker, "shares": now, "action": action, "user": message.user}


@app.message("/whisper", send_to_user="/queue/whispers", broadcast=False)
def whisper(message: AppMessage) -> dict[str, object]:
    return {"to": message.session_id, "text": message.text()}


@app.message("/boom")
def boom(message: AppMessage) -> None:
    raise RuntimeError(BOOM)


@app.exception_handler(ValueError)
def bad_input(exc: BaseException, message: AppMessage) -> dict[str, str]:
    return {"error": str(exc), "destination": message.destination}


@app.subscribe("/positions")
def positions(message: AppMessage) -> list[dict[str, object]]:
    assert message.user is not None
    with _lock:
        held = sorted(_positions.get(message.user, {}).items())
    return [{"ticker": ticker, "shares": shares} for ticker, shares in held]


def _not_alice(session: Session) -> bool:
    return session.user != "alice"


app.deny(["SEND", "SUBSCRIBE"], "/topic/admin.**", when=_not_alice)
app.allow("*", "/app/**", when=authenticated)
