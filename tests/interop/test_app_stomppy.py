"""stomp.py 9 (PyPI, a threaded client nobody here wrote) over TCP, in STOMP
1.1 and 1.2, against a STOMP application served by ``stomp-proto run``
(``interop_app.py``, the ``ourapp`` fixture): handlers and their replies, a
SEND's RECEIPT after its reply, user destinations across two sessions of one
user, a subscribe mapping, handler errors, authorization denials and refused
logins (issue 11).

The server process is shared by the session: every test uses tickers and
rooms of its own, and looks only at messages about them (a user's earlier
replies may wait in the user's backlog and arrive on subscribe).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .ourapp import OurApp, _ourapp_session, ourapp  # noqa: F401
from .ourbroker import require_peer

try:
    import stomp  # type: ignore[import-untyped]
    import stomp.exception  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - depends on the environment
    stomp = None

pytestmark = pytest.mark.interop

VERSIONS = ["1.1", "1.2"]
WAIT = 10.0  # seconds for anything that should happen
QUIET = 0.5  # seconds of silence that count as "nothing more arrives"
ERRORS = "/user/queue/errors"
UPDATES = "/user/queue/position-updates"


@pytest.fixture
def app(request: pytest.FixtureRequest) -> OurApp:
    """The served application, once stomp.py is known to be there."""
    require_peer(None if stomp is not None else "stomp.py is not installed (pip install stomp-py)")
    result: OurApp = request.getfixturevalue("ourapp")
    return result


def unique() -> str:
    return uuid.uuid4().hex[:8].upper()


class Recorder(stomp.ConnectionListener if stomp is not None else object):  # type: ignore[misc]
    """What one stomp.py connection received, in order, with waits that time out."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.connected: dict[str, str] | None = None
        #: ("MESSAGE", frame) / ("RECEIPT", receipt id) / ("ERROR", frame), in order.
        self.events: list[tuple[str, Any]] = []
        self.disconnected = False

    def _record(self, action: Callable[[], None]) -> None:
        with self.cond:
            action()
            self.cond.notify_all()

    def on_connected(self, frame: Any) -> None:
        self._record(lambda: setattr(self, "connected", dict(frame.headers)))

    def on_message(self, frame: Any) -> None:
        self._record(lambda: self.events.append(("MESSAGE", frame)))

    def on_receipt(self, frame: Any) -> None:
        self._record(lambda: self.events.append(("RECEIPT", frame.headers["receipt-id"])))

    def on_error(self, frame: Any) -> None:
        self._record(lambda: self.events.append(("ERROR", frame)))

    def on_disconnected(self) -> None:
        self._record(lambda: setattr(self, "disconnected", True))

    def of(self, kind: str) -> list[Any]:
        with self.cond:
            return [item for k, item in self.events if k == kind]

    def messages(self, destination: str, ticker: str | None = None) -> list[Any]:
        """The MESSAGEs for ``destination`` so far (about ``ticker``, if given)."""
        return [
            m
            for m in self.of("MESSAGE")
            if m.headers["destination"] == destination
            and (ticker is None or json.loads(m.body).get("ticker") == ticker)
        ]

    def wait(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; {self}")

    def __str__(self) -> str:
        shown = [
            (k, item if isinstance(item, str) else (item.headers, item.body))
            for k, item in self.events
        ]
        return f"events={shown!r} connected={self.connected!r}"


class Peer:
    """One stomp.py connection as ``login``, in one STOMP version."""

    def __init__(self, app: OurApp, version: str, login: str, passcode: str | None = None) -> None:
        assert stomp is not None
        cls = stomp.Connection11 if version == "1.1" else stomp.Connection12
        self.version = version
        self.login = login
        self.conn = cls(
            [(app.host, app.stomp_port)],
            heartbeats=(0, 0),
            vhost=app.vhost,
            auto_decode=False,  # bodies as bytes
            reconnect_attempts_max=1,
            timeout=WAIT,
        )
        self.rec = Recorder()
        self.conn.set_listener("recorder", self.rec)
        self._ids = itertools.count()
        self.passcode = app.users.get(login, "") if passcode is None else passcode

    def connect(self) -> Peer:
        self.conn.connect(self.login, self.passcode, wait=True)
        self.rec.wait(lambda: self.rec.connected is not None, "CONNECTED")
        return self

    def receipt(self) -> str:
        return f"{self.login}-{self.version}-{next(self._ids)}"

    def subscribe(self, destination: str) -> str:
        """SUBSCRIBE with a receipt; returns the subscription id once it is live."""
        sub_id = f"s-{next(self._ids)}"
        receipt = self.receipt()
        self.conn.subscribe(destination, id=sub_id, headers={"receipt": receipt})
        self.wait_receipt(receipt)
        return sub_id

    def send(self, destination: str, body: str, **headers: str) -> str:
        """SEND with a receipt; returns the receipt id once the RECEIPT came."""
        receipt = self.receipt()
        self.conn.send(destination, body, headers={**headers, "receipt": receipt})
        self.wait_receipt(receipt)
        return receipt

    def trade(self, action: str, ticker: str, shares: int) -> str:
        order = {"action": action, "ticker": ticker, "shares": shares}
        return self.send("/app/trade", json.dumps(order), **{"content-type": "application/json"})

    def wait_receipt(self, receipt: str) -> None:
        self.rec.wait(lambda: receipt in self.rec.of("RECEIPT"), f"RECEIPT {receipt}")

    def wait_messages(self, destination: str, count: int, ticker: str | None = None) -> list[Any]:
        self.rec.wait(
            lambda: len(self.rec.messages(destination, ticker)) >= count,
            f"{count} MESSAGE(s) on {destination}" + (f" about {ticker}" if ticker else ""),
        )
        return self.rec.messages(destination, ticker)

    def before(self, receipt: str) -> list[tuple[str, Any]]:
        """What came before the RECEIPT ``receipt``."""
        with self.rec.cond:
            return self.rec.events[: self.rec.events.index(("RECEIPT", receipt))]

    def close(self) -> None:
        """DISCONNECT if still connected (bounded in time), else close the socket."""
        if self.conn.is_connected() and not self.rec.disconnected:
            receipt = self.receipt()
            # stomp.py's disconnect(receipt=...) blocks until the socket closes.
            threading.Thread(
                target=self.conn.disconnect, kwargs={"receipt": receipt}, daemon=True
            ).start()
            with contextlib.suppress(AssertionError):
                self.rec.wait(lambda: self.rec.disconnected, "the close after DISCONNECT")
                return
        with contextlib.suppress(Exception):
            self.conn.transport.disconnect_socket()


@pytest.fixture
def peers(app: OurApp) -> Iterator[Callable[..., Peer]]:
    """Opens stomp.py connections; closes what is left at the end."""
    opened: list[Peer] = []

    def open_peer(version: str, login: str, passcode: str | None = None) -> Peer:
        peer = Peer(app, version, login, passcode)
        opened.append(peer)
        return peer.connect() if passcode is None else peer

    yield open_peer
    for peer in reversed(opened):
        peer.close()


def body(message: Any) -> Any:
    return json.loads(message.body)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_send_to_app_is_answered_on_the_topic_before_its_receipt(
    peers: Callable[..., Peer], version: str
) -> None:
    room = unique().lower()
    topic = f"/topic/echo.{room}"
    a = peers(version, "alice")
    listener = peers(version, "bob")
    a.subscribe(topic)
    listener.subscribe(topic)
    receipt = a.send(f"/app/echo.{room}", "hello")
    # By the time the RECEIPT arrived, the reply was there.
    [(_, reply)] = [e for e in a.before(receipt) if e[0] == "MESSAGE"]
    assert reply.headers["destination"] == topic
    assert reply.body == b"alice: HELLO"
    assert reply.headers["content-type"] == "text/plain;charset=utf-8"
    assert a.rec.connected is not None and a.rec.connected["version"] == version
    [heard] = listener.wait_messages(topic, 1)
    assert heard.body == b"alice: HELLO"
    assert a.rec.of("ERROR") == listener.rec.of("ERROR") == []


@pytest.mark.parametrize("version", VERSIONS)
def test_user_destinations_reach_every_session_of_the_user_and_nobody_else(
    peers: Callable[..., Peer], version: str
) -> None:
    t = "T" + unique()
    a1, a2, b = peers(version, "alice"), peers(version, "alice"), peers(version, "bob")
    for peer in (a1, a2, b):
        peer.subscribe(UPDATES)
        peer.subscribe("/user/queue/whispers")
    receipt = a1.trade("BUY", t, 3)
    bought = {"ticker": t, "shares": 3, "action": "BUY", "user": "alice"}
    # The sender's reply came before its RECEIPT; the other session of alice got it too.
    assert [body(m) for k, m in a1.before(receipt) if k == "MESSAGE" and b"ticker" in m.body][
        -1:
    ] == [bought]
    [other] = a2.wait_messages(UPDATES, 1, t)
    assert body(other) == bought
    b.trade("BUY", t, 2)
    [mine] = b.wait_messages(UPDATES, 1, t)
    assert body(mine) == {"ticker": t, "shares": 2, "action": "BUY", "user": "bob"}
    # broadcast=False: only the sending session.
    a1.send("/app/whisper", "psst")
    [whisper] = a1.wait_messages("/user/queue/whispers", 1)
    assert body(whisper)["text"] == "psst"
    assert body(whisper)["to"] == a1.rec.connected["session"]  # type: ignore[index]
    time.sleep(QUIET)  # anything else that would arrive
    assert [body(m) for m in a1.rec.messages(UPDATES, t)] == [bought]
    assert [body(m) for m in a2.rec.messages(UPDATES, t)] == [bought]
    assert [body(m)["user"] for m in b.rec.messages(UPDATES, t)] == ["bob"]
    for peer in (a1, a2, b):
        for message in peer.rec.messages(UPDATES, t):
            # The destination the client subscribed to, never an internal name.
            assert message.headers["destination"] == UPDATES
            assert message.headers["content-type"] == "application/json"
        assert peer.rec.of("ERROR") == []
    assert a2.rec.messages("/user/queue/whispers") == b.rec.messages("/user/queue/whispers") == []


@pytest.mark.parametrize("version", VERSIONS)
def test_subscribe_mapping_answers_once_with_the_users_positions(
    peers: Callable[..., Peer], version: str
) -> None:
    t = "T" + unique()
    a, b = peers(version, "alice"), peers(version, "bob")
    a.subscribe(UPDATES)
    a.trade("BUY", t, 4)
    a.subscribe("/app/positions")
    [answer] = a.wait_messages("/app/positions", 1)
    assert answer.headers["content-type"] == "application/json"
    held = {p["ticker"]: p["shares"] for p in body(answer)}
    assert held[t] == 4 and held["MMM"] == 10
    a.trade("BUY", t, 1)  # changes the positions; the subscription hears nothing of it
    b.subscribe("/app/positions")
    [theirs] = b.wait_messages("/app/positions", 1)
    bob = {p["ticker"]: p["shares"] for p in body(theirs)}
    assert t not in bob and bob["IBM"] == 5
    time.sleep(QUIET)
    assert len(a.rec.messages("/app/positions")) == len(b.rec.messages("/app/positions")) == 1
    assert a.rec.of("ERROR") == b.rec.of("ERROR") == []


@pytest.mark.parametrize("version", VERSIONS)
def test_handler_errors_go_to_the_sending_session_and_it_stays_usable(
    peers: Callable[..., Peer], app: OurApp, version: str
) -> None:
    t = "T" + unique()
    a, other = peers(version, "alice"), peers(version, "alice")
    for peer in (a, other):
        peer.subscribe(ERRORS)
    a.subscribe(UPDATES)
    offset = app.log_size()
    cases = [
        ("{not json", "Expecting property name"),
        (json.dumps({"action": "BUY", "ticker": t, "shares": 0}), "shares must be positive"),
        (json.dumps({"action": "HOLD", "ticker": t, "shares": 1}), "unknown action 'HOLD'"),
        (json.dumps({"action": "SELL", "ticker": t, "shares": 2}), f"cannot sell 2 {t}: 0 held"),
    ]
    for sent, text in cases:
        receipt = a.send("/app/trade", sent)
        # Reported before the SEND's RECEIPT, as JSON: the error text and the destination.
        error = [m for k, m in a.before(receipt) if k == "MESSAGE"][-1]
        assert error.headers["destination"] == ERRORS
        assert error.headers["content-type"] == "application/json"
        reported = body(error)
        assert reported["destination"] == "/app/trade"
        assert reported["error"].startswith(text), reported
    receipt = a.send("/app/boom", "x")
    error = [m for k, m in a.before(receipt) if k == "MESSAGE"][-1]
    assert body(error) == {"error": "kaboom"}  # nobody handles a RuntimeError: the default
    logged = app.log_since(offset)
    assert "handler for /app/boom failed" in logged and "RuntimeError: kaboom" in logged
    # The connection stays open and usable.
    a.trade("BUY", t, 7)
    [after] = a.wait_messages(UPDATES, 1, t)
    assert body(after)["shares"] == 7
    assert a.conn.is_connected() and not a.rec.disconnected
    time.sleep(QUIET)
    assert len(a.rec.messages(ERRORS)) == len(cases) + 1
    assert other.rec.messages(ERRORS) == []  # alice's other session saw none of it
    assert a.rec.of("ERROR") == other.rec.of("ERROR") == []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("frame", ["SUBSCRIBE", "SEND"])
def test_an_authorization_denial_is_an_error_naming_frame_and_destination(
    peers: Callable[..., Peer], version: str, frame: str
) -> None:
    destination = f"/topic/admin.{unique().lower()}"
    b = peers(version, "bob")
    receipt = b.receipt()
    if frame == "SUBSCRIBE":
        b.conn.subscribe(destination, id="admin", headers={"receipt": receipt})
    else:
        b.conn.send(destination, "let me in", headers={"receipt": receipt})
    b.rec.wait(lambda: bool(b.rec.of("ERROR")) and b.rec.disconnected, "ERROR and the close")
    [error] = b.rec.of("ERROR")
    assert error.headers["message"].startswith(f"{frame} to {destination!r} denied"), error.headers
    assert f"{frame} to {destination!r} denied".encode() in error.body
    assert error.headers.get("receipt-id") == receipt
    assert b.rec.of("RECEIPT") == [] and b.rec.of("MESSAGE") == []
    # alice may.
    a = peers(version, "alice")
    a.subscribe(destination)
    a.send(destination, "for alice")
    [message] = a.wait_messages(destination, 1)
    assert message.body == b"for alice"
    assert a.rec.of("ERROR") == []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("login", "passcode"), [("alice", "wrong"), ("mallory", "whatever")])
def test_a_wrong_login_is_refused_with_an_error(
    peers: Callable[..., Peer], version: str, login: str, passcode: str
) -> None:
    assert stomp is not None
    peer = peers(version, login, passcode)
    with pytest.raises(stomp.exception.ConnectFailedException):
        peer.conn.connect(login, passcode, wait=True)
    peer.rec.wait(lambda: bool(peer.rec.of("ERROR")), "ERROR")
    [error] = peer.rec.of("ERROR")
    assert error.headers["message"] == "access refused"
    assert peer.rec.connected is None
