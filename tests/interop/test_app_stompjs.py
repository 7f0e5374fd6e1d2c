"""@stomp/stompjs 7 (npm, a client nobody here wrote) in node over WebSocket
against a STOMP application served by ``stomp-proto run`` (``interop_app.py``,
the ``ourapp`` fixture): handlers and their replies, user destinations across
two sessions of one user, a subscribe mapping, handler errors, authorization
denials and refused logins (issue 11).

Each test runs one scenario of ``js/app_scenarios.mjs`` in a node process,
which prints one JSON line describing what stompjs saw; the assertions are
here. The server process is shared by the session: every test uses tickers
and rooms of its own.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from .node import JS_DIR, node_missing, run_scenario
from .ourapp import OurApp, _ourapp_session, ourapp  # noqa: F401
from .ourbroker import require_peer

pytestmark = pytest.mark.interop

SCRIPT = JS_DIR / "app_scenarios.mjs"
ERRORS = "/user/queue/errors"
UPDATES = "/user/queue/position-updates"


@pytest.fixture
def app(request: pytest.FixtureRequest) -> OurApp:
    """The served application, once node and the npm packages are known to be there."""
    require_peer(node_missing())
    result: OurApp = request.getfixturevalue("ourapp")
    assert result.ws_port is not None
    return result


def unique() -> str:
    return uuid.uuid4().hex[:8].upper()


def ticker() -> str:
    return "T" + unique()


def run(app: OurApp, scenario: str, timeout_ms: int = 30000, **config: Any) -> dict[str, Any]:
    """Runs one scenario in node; returns its JSON result (``ok`` is true)."""
    config.update(url=app.ws_url, users=app.users)
    return run_scenario(
        SCRIPT,
        scenario,
        config,
        against=app.name,
        timeout_ms=timeout_ms,
        server_log=lambda: app.log_tail(30),
    )


def order(events: list[dict[str, Any]], tag: str) -> list[str]:
    """What connection ``tag`` received, in order: ``MESSAGE <destination>`` or
    ``RECEIPT <id>``."""
    return [f"{e['kind']} {e.get('destination') or e.get('id')}" for e in events if e["tag"] == tag]


def test_a_send_to_app_is_answered_on_the_topic_before_its_receipt(app: OurApp) -> None:
    room = unique().lower()
    result = run(app, "echo", room=room)
    assert result["connected"]["version"] == "1.2"
    assert result["protocol"] == "v12.stomp"
    topic = f"/topic/echo.{room}"
    # The reply goes to /topic + the handler's path, to every subscriber of it.
    for got in (result["reply"], result["heard"]):
        assert got["destination"] == topic
        assert got["body"] == "alice: HELLO"
        assert got["contentType"] == "text/plain;charset=utf-8"
    # stompjs saw the reply before the SEND's RECEIPT.
    seen = order(result["events"], "alice")
    assert seen[-2:] == [f"MESSAGE {topic}", f"RECEIPT {result['receiptId']}"], seen
    assert not result["errors"]


def test_user_destinations_reach_every_session_of_the_user_and_nobody_else(
    app: OurApp,
) -> None:
    t = ticker()
    result = run(app, "users", ticker=t)
    updates = result["updates"]
    bought = {"ticker": t, "shares": 3, "action": "BUY", "user": "alice"}
    # Both of alice's sessions got her position, once each; bob got only his own.
    for tag in ("alice1", "alice2"):
        assert [json.loads(m["body"]) for m in updates[tag]] == [bought], tag
    assert [json.loads(m["body"]) for m in updates["bob"]] == [
        {"ticker": t, "shares": 2, "action": "BUY", "user": "bob"}
    ]
    for tag in ("alice1", "alice2", "bob"):
        for message in updates[tag]:
            # The destination the client subscribed to, never an internal name.
            assert message["destination"] == UPDATES
            assert message["contentType"] == "application/json"
    # The sender saw its reply before its SEND's RECEIPT.
    seen = order(result["events"], "alice1")
    receipt = seen.index(f"RECEIPT {result['receipts']['alice']}")
    assert f"MESSAGE {UPDATES}" in seen[:receipt], seen
    # broadcast=False: the whisper went to the sending session only.
    whispered = result["whispered"]
    assert whispered["destination"] == "/user/queue/whispers"
    assert json.loads(whispered["body"]) == {"to": result["sessions"]["alice1"], "text": "psst"}
    assert result["otherWhispers"] == {"alice1": [], "alice2": [], "bob": []}
    assert not result["errors"]


def test_subscribe_mapping_answers_once_with_the_users_positions(app: OurApp) -> None:
    t = ticker()
    result = run(app, "positions", ticker=t)
    answer = result["answer"]
    assert answer["destination"] == "/app/positions"
    assert answer["contentType"] == "application/json"
    held = {p["ticker"]: p["shares"] for p in json.loads(answer["body"])}
    assert held[t] == 4  # the trade just made (the second came after the answer)
    assert held["MMM"] == 10  # alice's initial position
    bob = {p["ticker"]: p["shares"] for p in json.loads(result["bobAnswer"]["body"])}
    assert t not in bob and bob["IBM"] == 5
    assert result["extra"] == []  # once: the later trade sent nothing there
    assert not result["errors"]


def test_handler_errors_go_to_the_sending_session_and_it_stays_usable(app: OurApp) -> None:
    t = ticker()
    bad = [
        "{not json",
        json.dumps({"action": "BUY", "ticker": t, "shares": -1}),
        json.dumps({"action": "BUY", "ticker": "bad ticker!", "shares": 1}),
        json.dumps({"action": "SELL", "ticker": t, "shares": 1}),
    ]
    offset = app.log_size()
    result = run(app, "errors", ticker=t, bad=bad)
    reported = result["reported"]
    assert [m["destination"] for m in reported] == [ERRORS] * 5
    assert all(m["contentType"] == "application/json" for m in reported)
    bodies = [json.loads(m["body"]) for m in reported]
    # The exception handler's reply: the error text and the destination.
    assert all(b.get("destination") == "/app/trade" for b in bodies[:4]), bodies
    assert "Expecting" in bodies[0]["error"]  # the JSON decoder's message
    assert bodies[1]["error"] == "shares must be positive"
    assert bodies[2]["error"] == "unknown ticker 'bad ticker!'"
    assert bodies[3]["error"] == f"cannot sell 1 {t}: 0 held"
    # No handler for a RuntimeError: the default reply, and the traceback in the log.
    assert bodies[4] == {"error": "kaboom"}
    logged = app.log_since(offset)
    assert "handler for /app/boom failed" in logged and "RuntimeError: kaboom" in logged
    # Each report came before its SEND's RECEIPT.
    seen = order(result["events"], "alice1")
    for receipt in result["receipts"]:
        assert seen[seen.index(f"RECEIPT {receipt}") - 1] == f"MESSAGE {ERRORS}", seen
    # The session stays open and usable; alice's other session saw none of it.
    assert json.loads(result["after"]["body"])["shares"] == 7
    assert result["stillConnected"] and result["closes"] == []
    assert result["extra"] == [] and result["elsewhere"] == []
    assert not result["errors"]


def test_an_authorization_denial_is_an_error_naming_frame_and_destination(app: OurApp) -> None:
    destination = f"/topic/admin.{unique().lower()}"
    result = run(app, "denied", destination=destination)
    for frame, what in (("SUBSCRIBE", result["subscribe"]), ("SEND", result["send"])):
        [error] = what["errors"]
        message = error["headers"]["message"]
        assert message.startswith(f"{frame} to {destination!r} denied"), message
        assert f"{frame} to {destination!r} denied" in error["body"]
        assert error["headers"].get("receipt-id") == what["receipt"]
        assert len(what["closes"]) == 1  # an ERROR closes the connection
    # alice may: her SUBSCRIBE got its RECEIPT and no ERROR.
    assert result["alice"]["errors"] == []


def test_a_wrong_login_is_refused_with_an_error(app: OurApp) -> None:
    result = run(app, "badLogin")
    for tag, got in result["results"].items():
        assert got["connected"] is None, tag
        [error] = got["errors"]
        assert error["headers"]["message"] == "access refused", error
        assert len(got["closes"]) == 1, tag
