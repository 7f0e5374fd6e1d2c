"""The application layer through a real broker and our own client (issue 11)."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from dataclasses import replace

import anyio
import pytest

from stomp_proto import Message
from stomp_proto.app import AppMessage, PathTemplate, StompApp, authenticated
from stomp_proto.asyncio import Client, StompError, Subscription
from stomp_proto.broker import Broker, Refusal

from .conftest import client, serve

pytestmark = pytest.mark.anyio

USERS = {"fabrice": "fab123", "paulson": "bond"}


def make_app() -> StompApp:
    app = StompApp(users=USERS)
    positions: dict[str, dict[str, int]] = {"fabrice": {"MMM": 10}, "paulson": {}}

    @app.message("/echo")
    def echo(message: AppMessage) -> str:  # sync: runs in a worker thread
        return message.text().upper()

    @app.message("/price/{ticker}", send_to="/topic/prices")
    async def price(message: AppMessage) -> dict[str, object]:
        return {"ticker": message.variables["ticker"], "price": float(message.text())}

    @app.message("/trade", send_to_user="/queue/position-updates")
    def trade(message: AppMessage) -> dict[str, object]:
        order = message.json()
        if order["shares"] <= 0:
            raise ValueError("shares must be positive")
        assert message.user is not None
        held = positions[message.user]
        held[order["ticker"]] = held.get(order["ticker"], 0) + order["shares"]
        return {"ticker": order["ticker"], "shares": held[order["ticker"]]}

    @app.message("/whisper", send_to_user="/queue/replies", broadcast=False)
    def whisper(message: AppMessage) -> str:
        return f"only {message.session_id}"

    @app.message("/quiet")
    def quiet(message: AppMessage) -> None:
        return None

    @app.message("/boom")
    def boom(message: AppMessage) -> None:
        raise RuntimeError("kaboom")

    @app.message("/checked")
    def checked(message: AppMessage) -> None:
        raise KeyError("missing")

    @app.exception_handler(KeyError)
    def on_key_error(exc: BaseException, message: AppMessage) -> dict[str, str]:
        return {"error": f"no such thing: {exc}", "destination": message.destination}

    @app.subscribe("/positions")
    def initial_positions(message: AppMessage) -> list[dict[str, object]]:
        assert message.user is not None
        return [{"ticker": t, "shares": n} for t, n in positions[message.user].items()]

    app.deny("SUBSCRIBE", "/topic/admin.**", when=lambda s: s.user != "fabrice")
    app.allow("*", "/app/**", when=authenticated)
    return app


@pytest.fixture
async def broker(anyio_backend: str) -> AsyncIterator[Broker]:
    async with serve(make_app()) as running:
        yield running


def login(broker: Broker, user: str = "fabrice") -> Client:
    return client(broker, login=user, passcode=USERS[user])


async def nothing_within(sub: Subscription, seconds: float = 0.1) -> None:
    """No message arrives on ``sub`` for a while (for "nobody else got it")."""
    with anyio.move_on_after(seconds):
        message = await sub.get()
        pytest.fail(f"unexpected message {message.body!r}")


async def test_handler_reply_goes_to_topic_at_the_same_path(broker: Broker) -> None:
    async with login(broker) as c:
        replies = await c.subscribe("/topic/echo")
        await c.send("/app/echo", "hello", receipt=True)
        with anyio.fail_after(5):
            assert (await replies.get()).text() == "HELLO"


async def test_send_to_and_path_variables_and_json(broker: Broker) -> None:
    async with login(broker) as c:
        prices = await c.subscribe("/topic/prices")
        await c.send("/app/price/MMM", "129.45")
        with anyio.fail_after(5):
            got = await prices.get()
        assert json.loads(got.body) == {"ticker": "MMM", "price": 129.45}
        assert got.content_type == "application/json"


async def test_receipt_comes_after_the_handler_ran(broker: Broker) -> None:
    async with login(broker) as c:
        updates = await c.subscribe("/user/queue/position-updates")
        await c.send(
            "/app/trade", json.dumps({"ticker": "MMM", "shares": 5}), receipt=True
        )  # returns when the RECEIPT arrives: the reply was routed before it
        with anyio.fail_after(1):  # the MESSAGE came before the RECEIPT: it is buffered
            got = await updates.get()
        assert json.loads(got.body) == {"ticker": "MMM", "shares": 15}
        assert got.destination == "/user/queue/position-updates"


async def test_user_destination_reaches_every_session_of_that_user_only(broker: Broker) -> None:
    async with login(broker) as a1, login(broker) as a2, login(broker, "paulson") as b:
        subs = [await s.subscribe("/user/queue/position-updates") for s in (a1, a2, b)]
        await a1.send("/app/trade", json.dumps({"ticker": "IBM", "shares": 1}), receipt=True)
        with anyio.fail_after(5):
            first, second = await subs[0].get(), await subs[1].get()
        assert json.loads(first.body) == json.loads(second.body) == {"ticker": "IBM", "shares": 1}
        await b.send("/app/trade", json.dumps({"ticker": "IBM", "shares": 2}), receipt=True)
        with anyio.fail_after(5):
            assert json.loads((await subs[2].get()).body)["shares"] == 2
        await nothing_within(subs[0])


async def test_broadcast_false_replies_to_the_sending_session_only(broker: Broker) -> None:
    async with login(broker) as a1, login(broker) as a2:
        s1 = await a1.subscribe("/user/queue/replies")
        s2 = await a2.subscribe("/user/queue/replies")
        await a1.send("/app/whisper", "", receipt=True)
        with anyio.fail_after(5):
            assert (await s1.get()).text().startswith("only session-")
        await nothing_within(s2)


async def test_subscribe_mapping_answers_once(broker: Broker) -> None:
    async with login(broker) as c:
        positions = await c.subscribe("/app/positions")
        with anyio.fail_after(5):
            got = await positions.get()
        assert got.json() if hasattr(got, "json") else True
        assert json.loads(got.body) == [{"ticker": "MMM", "shares": 10}]
        assert got.destination == "/app/positions"


async def test_errors_go_to_the_sender_and_the_session_stays_open(
    broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    async with login(broker) as c, login(broker) as other:
        errors = await c.subscribe("/user/queue/errors")
        other_errors = await other.subscribe("/user/queue/errors")
        await c.send("/app/boom", "", receipt=True)
        with anyio.fail_after(5):
            assert json.loads((await errors.get()).body) == {"error": "kaboom"}
        assert "kaboom" in caplog.text and "Traceback" in caplog.text
        await c.send("/app/checked", "", receipt=True)
        with anyio.fail_after(5):
            handled = json.loads((await errors.get()).body)
        assert handled == {"error": "no such thing: 'missing'", "destination": "/app/checked"}
        await c.send("/app/trade", json.dumps({"ticker": "X", "shares": -1}), receipt=True)
        with anyio.fail_after(5):
            assert "shares must be positive" in (await errors.get()).text()
        await nothing_within(other_errors)
        echo = await c.subscribe("/topic/echo")
        await c.send("/app/echo", "still here")
        with anyio.fail_after(5):
            assert (await echo.get()).text() == "STILL HERE"


async def test_a_handler_that_returns_nothing_sends_nothing(broker: Broker) -> None:
    async with login(broker) as c:
        quiet = await c.subscribe("/topic/quiet")
        await c.send("/app/quiet", "x", receipt=True)
        await nothing_within(quiet)


async def test_unknown_handler_and_denied_frames_get_error(broker: Broker) -> None:
    async with login(broker) as c:
        with pytest.raises(StompError, match="no handler for '/app/nowhere'"):
            await c.send("/app/nowhere", "x", receipt=True)
    async with login(broker, "paulson") as c:
        with pytest.raises(StompError, match=r"SUBSCRIBE to '/topic/admin.log' denied"):
            await c.subscribe("/topic/admin.log")
    async with login(broker) as c:
        await c.subscribe("/topic/admin.log")  # fabrice may


async def test_anonymous_sessions_are_refused_and_wrong_passwords_too(broker: Broker) -> None:
    with pytest.raises((StompError, OSError)):
        async with client(broker, login="fabrice", passcode="wrong"):
            pass


async def test_publishing_from_server_code_in_any_thread(anyio_backend: str) -> None:
    app = StompApp()
    with pytest.raises(RuntimeError, match="not being served"):
        app.send("/topic/x", "too early")
    async with serve(app) as broker, client(broker) as c:
        sub = await c.subscribe("/topic/feed")
        assert app.send("/topic/feed", {"from": "loop"}) == 1
        done: list[int] = []

        def from_thread() -> None:
            done.append(app.send("/topic/feed", b"from a thread"))

        thread = threading.Thread(target=from_thread)
        thread.start()
        await anyio.to_thread.run_sync(thread.join)
        assert done == [1]
        with anyio.fail_after(5):
            assert json.loads((await sub.get()).body) == {"from": "loop"}
            assert (await sub.get()).body == b"from a thread"
        news = await c.subscribe("/user/queue/news")
        assert c.connected is not None and c.connected.session is not None
        # an anonymous session is its own user, by session id
        assert app.send_to_user(c.connected.session, "/queue/news", "hi") == 1
        with anyio.fail_after(5):
            assert (await news.get()).destination == "/user/queue/news"


async def test_user_backlog_is_delivered_on_subscribe(anyio_backend: str) -> None:
    app = StompApp(users=USERS, user_backlog=2)
    async with serve(app) as broker:
        assert app.send_to_user("fabrice", "/queue/inbox", "one") == 0  # offline: kept
        app.send_to_user("fabrice", "/queue/inbox", "two")
        app.send_to_user("fabrice", "/queue/inbox", "three")  # the backlog holds two
        async with login(broker) as c:
            inbox = await c.subscribe("/user/queue/inbox")
            with anyio.fail_after(5):
                got = [(await inbox.get()).text() for _ in range(2)]
            assert got == ["two", "three"]


async def test_startup_tasks_and_interceptors(anyio_backend: str) -> None:
    app = StompApp()
    seen: list[str] = []

    @app.on_startup
    async def feed(app: StompApp) -> None:
        for i in range(3):
            await anyio.sleep(0.01)
            app.send("/topic/ticks", str(i))

    @app.interceptor
    def log_and_refuse(session: object, event: object) -> object:
        seen.append(type(event).__name__)
        if getattr(event, "destination", "") == "/topic/forbidden":
            raise Refusal("not here")
        return event

    async with serve(app) as broker, client(broker) as c:
        ticks = await c.subscribe("/topic/ticks")
        with anyio.fail_after(5):
            assert (await ticks.get()).text() in {"0", "1", "2"}
        with pytest.raises(StompError, match="not here"):
            await c.send("/topic/forbidden", "x", receipt=True)
    assert "Subscribe" in seen and "Send" in seen


def test_path_templates() -> None:
    t = PathTemplate("/trade/{ticker}")
    assert t.match("/trade/MMM") == {"ticker": "MMM"}
    assert t.match("/trade/MMM/x") is None and t.match("/trade/") is None
    assert PathTemplate("/a/**").match("/a/b/c.d") == {}
    assert PathTemplate("/a.*").match("/a.b") == {} and PathTemplate("/a.*").match("/a.b.c") is None
    for bad in ("trade", "/{a}{b}", "/**{a}", "/{1x}", "/{a}/{a}"):
        with pytest.raises(ValueError):
            PathTemplate(bad)


def test_rules_check_their_commands() -> None:
    app = StompApp()
    with pytest.raises(ValueError, match="rules are for SEND and SUBSCRIBE"):
        app.allow("ACK", "/queue/x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        app.message("/x", send_to="/topic/a", send_to_user="/queue/b")


def test_user_backlog_expires_and_is_bounded_with_no_event_loop() -> None:
    from stomp_proto import Message, Subscribe
    from stomp_proto.app import UserRoute
    from stomp_proto.broker import Router, TopicRoute

    users = UserRoute(max_backlog=3, backlog_ttl=10.0)
    router = Router(routes=(TopicRoute(), users))
    entry = router._make_entry("/user/queue/x", b"old", None, ())
    router.now = 100.0
    users.to_user("fabrice", "/queue/x", entry)  # expires at 110
    router.now = 105.0
    for body in (b"a", b"b", b"c"):
        users.to_user("fabrice", "/queue/x", router._make_entry("/user/queue/x", body, None, ()))
    assert users.expired == 1  # "old" made room for "c"
    router.now = 111.0
    session = router.open("s", "1.2", user="fabrice")
    posts = router.handle(session, Subscribe(destination="/user/queue/x", id="0"))
    assert [e.body for _, e in posts if isinstance(e, Message)] == [
        b"a",
        b"b",
        b"c",
    ]  # 115: still alive
    router.now = 200.0
    users.to_user("paulson", "/queue/x", entry)
    router.now = 300.0
    other = router.open("t", "1.2", user="paulson")
    assert router.handle(other, Subscribe(destination="/user/queue/x", id="0")) == []
    assert users.expired == 2


async def test_async_authenticator_principal_and_outbound_hooks(anyio_backend: str) -> None:
    app = StompApp()

    @app.authenticator
    async def token(connect: object) -> object:
        passcode = getattr(connect, "passcode", None)
        return {"name": "ada", "role": "admin"} if passcode == "t0ken" else None

    @app.message("/whoami")
    def whoami(message: AppMessage) -> object:
        return message.principal

    @app.outbound
    def stamp(session: object, event: object) -> object:
        if isinstance(event, Message) and event.destination == "/queue/hidden":
            return None  # consumed by the hook
        if isinstance(event, Message):
            return replace(event, headers=(*event.headers, ("x-stamped", "yes")))
        return event

    async with serve(app) as broker:
        with pytest.raises(StompError, match="access refused"):
            async with client(broker, login="ada", passcode="wrong"):
                pass
        async with client(broker, login="ada", passcode="t0ken") as c:
            me = await c.subscribe("/topic/whoami")
            hidden = await c.subscribe("/queue/hidden")
            shown = await c.subscribe("/queue/shown")
            await c.send("/app/whoami", "", receipt=True)
            with anyio.fail_after(5):
                got = await me.get()
            assert json.loads(got.body) == {"name": "ada", "role": "admin"}
            assert got.header("x-stamped") == "yes"
            for destination in ("/queue/hidden", "/queue/shown"):
                await c.send(destination, "x", receipt=True)
            with anyio.fail_after(5):
                assert (await shown.get()).header("x-stamped") == "yes"
            await nothing_within(hidden)
        assert broker.stats["queued"] == 0  # the consumed one is not requeued


def test_the_apps_queue_route_takes_the_brokers_queue_limits() -> None:
    """``app.broker(max_queue_bytes=, max_queue_messages=)`` reach the app's own
    QueueRoute (it builds the routes, so the Router's defaults do not apply)."""
    from stomp_proto.broker import QueueRoute

    broker = StompApp().broker(tcp=[], ws=[], max_queue_bytes=1234, max_queue_messages=7)
    (queues,) = [r for r in broker.router.routes if isinstance(r, QueueRoute)]
    assert (queues.max_queue_bytes, queues.max_queue_messages) == (1234, 7)
