"""The ASGI endpoint in process, under a hand-written ASGI server (``driver.py``), on
asyncio and trio: subprotocols, text and binary messages, close codes, refusals
before the accept, HTTP requests, back-pressure and the slow-consumer policy,
the lifespan, and one broker shared by endpoints and a TCP listener (issue 13).
"""

from __future__ import annotations

import socket
from collections.abc import MutableMapping
from typing import Any

import anyio
import pytest

from stomp_proto import (
    Connect,
    Connected,
    Disconnect,
    Error,
    Message,
    Receipt,
    Send,
    Subscribe,
)
from stomp_proto.app import AppMessage, StompApp
from stomp_proto.asgi import StompEndpoint
from stomp_proto.asyncio import connect
from stomp_proto.broker import Broker

from .driver import FakeWebSocket, Lifespan, http_get, websocket

pytestmark = pytest.mark.anyio


async def closed_with(ws: FakeWebSocket) -> int:
    """The code of the ``websocket.close`` the application sends next (after
    any STOMP frames still to come, which are skipped)."""
    while True:
        message = await ws.next()
        if message["type"] == "websocket.close":
            code: int = message.get("code", 1000)
            return code
        assert message["type"] == "websocket.send", message


async def subscribed(ws: FakeWebSocket, destination: str, sub_id: str = "s") -> None:
    await ws.stomp(Subscribe(destination=destination, id=sub_id, receipt=f"r-{sub_id}"))
    assert await ws.event() == Receipt(receipt_id=f"r-{sub_id}")


# -- the handshake ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["v10.stomp", "v11.stomp", "v12.stomp"], "v12.stomp"),
        (["v12.stomp", "v10.stomp"], "v12.stomp"),
        (["v11.stomp"], "v11.stomp"),
        (["mqtt", "v10.stomp"], "v10.stomp"),
        (["mqtt"], None),
        ([], None),
    ],
)
async def test_the_best_stomp_subprotocol_offered_is_accepted(
    broker: Broker, offered: list[str], chosen: str | None
) -> None:
    async with websocket(StompEndpoint(broker), subprotocols=offered) as ws:
        accepted = await ws.handshake()
        assert accepted["type"] == "websocket.accept"
        assert accepted.get("subprotocol") == chosen
        # The STOMP version comes from accept-version, whatever the subprotocol.
        await ws.stomp(Connect(accept_version=("1.0", "1.1"), host="x"))
        connected = await ws.event()
        assert isinstance(connected, Connected) and connected.version == "1.1"


async def test_a_session_over_the_endpoint(broker: Broker) -> None:
    async with websocket(StompEndpoint(broker)) as ws:
        connected = await ws.connect()
        assert isinstance(connected, Connected) and connected.version == "1.2"
        await subscribed(ws, "/topic/greetings")
        assert broker.stats["sessions"] == 1
        await ws.stomp(Send(destination="/topic/greetings", body=b"hello", receipt="sent"))
        assert await ws.event() == Receipt(receipt_id="sent")  # the broker's order
        message = await ws.event()
        assert isinstance(message, Message) and message.body == b"hello"
        await ws.stomp(Disconnect(receipt="bye"))
        assert await ws.event() == Receipt(receipt_id="bye")
        assert await closed_with(ws) == 1000
        await ws.disconnect(1000)
        with anyio.fail_after(5):
            await ws.finished.wait()
    assert broker.stats["sessions"] == 0


@pytest.mark.parametrize("scheme", ["ws", "wss"])
async def test_the_connection_log_names_the_scopes_scheme(
    broker: Broker, scheme: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="stomp_proto.broker.connection")
    async with websocket(StompEndpoint(broker)) as ws:
        ws.scope["scheme"] = scheme
        assert isinstance(await ws.connect(), Connected)
    accepted = [r.getMessage() for r in caplog.records if "connection accepted" in r.getMessage()]
    assert len(accepted) == 1 and f"transport={scheme}" in accepted[0], accepted


# -- text and binary -------------------------------------------------------------------


async def test_text_and_binary_messages_are_one_byte_stream(broker: Broker) -> None:
    async with websocket(StompEndpoint(broker)) as ws:
        assert (await ws.handshake())["type"] == "websocket.accept"
        # CONNECT in a binary message, split in two; the reply is text.
        connect_frame = ws.client.send(Connect(accept_version=("1.2",), host="x"))
        await ws.send_bytes(connect_frame[:10])
        await ws.send_text(connect_frame[10:].decode())
        assert isinstance(await ws.event(), Connected)
        assert "text" in ws.sent[-1] and ws.sent[-1].get("bytes") is None
        # Two frames and a heart-beat EOL in one message.
        both = ws.client.send(Subscribe(destination="/topic/b", id="1"))
        both += b"\n" + ws.client.send(Subscribe(destination="/topic/t", id="2", receipt="both"))
        await ws.send_text(both.decode())
        assert await ws.event() == Receipt(receipt_id="both")
        await ws.stomp(Send(destination="/topic/b", body=b"\xff\x00\xfe"), binary=True)
        binary = await ws.event()
        assert isinstance(binary, Message) and binary.body == b"\xff\x00\xfe"
        assert isinstance(ws.sent[-1].get("bytes"), bytes)  # not UTF-8: a binary message
        await ws.stomp(Send(destination="/topic/t", body="héllo".encode()))
        text = await ws.event()
        assert isinstance(text, Message) and text.body == "héllo".encode()
        assert ws.sent[-1]["text"].endswith("héllo\0")  # UTF-8: a text message
        await ws.send_text("")  # an empty message is nothing
        await ws.stomp(Disconnect(receipt="bye"))
        assert await ws.event() == Receipt(receipt_id="bye")


async def test_binary_true_sends_every_frame_as_binary(broker: Broker) -> None:
    async with websocket(StompEndpoint(broker, binary=True)) as ws:
        assert isinstance(await ws.connect(), Connected)
        assert isinstance(ws.sent[-1]["bytes"], bytes) and "text" not in ws.sent[-1]


# -- close codes -----------------------------------------------------------------------


async def test_a_protocol_error_is_an_error_frame_then_close_1002(broker: Broker) -> None:
    async with websocket(StompEndpoint(broker)) as ws:
        assert isinstance(await ws.connect(), Connected)
        await ws.send_text("FLY\n\n\0")
        error = await ws.event()
        assert isinstance(error, Error) and "FLY" in (error.message or "")
        assert await closed_with(ws) == 1002


@pytest.mark.parametrize("broker_options", [{"users": {"ann": "secret"}}])
async def test_a_refused_login_is_an_error_then_close_1002(broker: Broker) -> None:
    async with websocket(StompEndpoint(broker)) as ws:
        error = await ws.connect(login="ann", passcode="wrong")
        assert isinstance(error, Error) and error.message == "access refused"
        assert await closed_with(ws) == 1002
    async with websocket(StompEndpoint(broker)) as ws:
        assert isinstance(await ws.connect(login="ann", passcode="secret"), Connected)


async def test_a_message_over_the_limit_closes_with_1009(broker: Broker) -> None:
    async with websocket(StompEndpoint(broker, max_message_size=1000)) as ws:
        assert isinstance(await ws.connect(), Connected)
        await ws.stomp(Send(destination="/topic/x", body=b"x" * 900))  # under: fine
        await ws.stomp(Send(destination="/topic/x", body=b"x" * 2000))
        assert await closed_with(ws) == 1009


async def test_the_client_closing_ends_the_session(broker: Broker) -> None:
    async with websocket(StompEndpoint(broker)) as ws:
        assert isinstance(await ws.connect(), Connected)
        await subscribed(ws, "/topic/t")
        assert broker.stats["sessions"] == 1
        await ws.disconnect(1001)
        with anyio.fail_after(5):
            await ws.finished.wait()
        # Nothing is sent after the client's disconnect.
        assert ws.sent[-1]["type"] == "websocket.send"
    assert broker.stats["sessions"] == 0


@pytest.mark.parametrize("gone", [OSError("reset"), RuntimeError("WebSocketDisconnect")])
async def test_a_send_to_a_client_that_is_gone_ends_the_session(
    broker: Broker, gone: Exception
) -> None:
    async with websocket(StompEndpoint(broker)) as ws:
        assert isinstance(await ws.connect(), Connected)
        await subscribed(ws, "/topic/t")
        ws.broken = gone  # the server's send raises, whatever its way of saying so
        broker.publish("/topic/t", b"into the void")
        with anyio.fail_after(5):
            await ws.finished.wait()  # the application returned, without raising
        assert ws.sent[-1]["type"] == "websocket.send"  # no Close to a client that is gone
    assert broker.stats["sessions"] == 0


async def test_the_close_waits_for_the_disconnect_within_close_timeout(broker: Broker) -> None:
    async with websocket(StompEndpoint(broker, close_timeout=0.3)) as ws:
        assert isinstance(await ws.connect(), Connected)
        await ws.stomp(Disconnect(receipt="bye"))
        assert await ws.event() == Receipt(receipt_id="bye")
        assert await closed_with(ws) == 1000
        began = anyio.current_time()
        with anyio.fail_after(5):
            await ws.finished.wait()  # no disconnect came: it gave up waiting
        assert 0.2 <= anyio.current_time() - began < 3


# -- refusals before the accept --------------------------------------------------------


async def test_a_broker_that_is_not_running_refuses_with_503(anyio_backend: str) -> None:
    endpoint = StompEndpoint(Broker(tcp=[], ws=[]))
    async with websocket(endpoint) as ws:
        start = await ws.handshake()
        assert start["type"] == "websocket.http.response.start"
        assert start["status"] == 503
        assert (b"content-type", b"text/plain; charset=utf-8") in start["headers"]
        body = (await ws.next())["body"]
        assert b"the STOMP broker is not running" in body and b"lifespan" in body
    # A server without the websocket.http.response extension: websocket.close (403).
    async with websocket(endpoint, http_response=False) as ws:
        assert (await ws.handshake())["type"] == "websocket.close"


async def test_origins_outside_allowed_origins_are_refused_with_403(broker: Broker) -> None:
    endpoint = StompEndpoint(broker, allowed_origins=["https://good.example"])
    cases = [
        ([(b"origin", b"https://evil.example")], False),
        ([(b"origin", b"https://good.example")], True),
        ([(b"origin", b"http://testserver")], True),  # the endpoint's own origin
        ([(b"origin", b"http://testserver:80")], True),
        ([(b"origin", b"https://testserver")], False),  # another scheme's default port
        ([], True),  # no Origin: not a browser
    ]
    for headers, allowed in cases:
        async with websocket(endpoint, headers=headers) as ws:
            answer = await ws.handshake()
            if allowed:
                assert answer["type"] == "websocket.accept", headers
                continue
            assert answer["type"] == "websocket.http.response.start", headers
            assert answer["status"] == 403
            body = (await ws.next())["body"]
            assert body == f"origin {headers[0][1].decode()!r} is not allowed\n".encode()
    # Without allowed_origins, any page may connect.
    async with websocket(StompEndpoint(broker), headers=cases[0][0]) as ws:
        assert (await ws.handshake())["type"] == "websocket.accept"


async def test_http_requests_get_426_upgrade_required(broker: Broker) -> None:
    response = await http_get(StompEndpoint(broker), "/portfolio")
    assert response["status"] == 426
    assert response["headers"]["upgrade"] == "websocket"
    assert b"STOMP over WebSocket endpoint" in response["body"]
    assert int(response["headers"]["content-length"]) == len(response["body"])


async def test_other_scopes_are_an_error(broker: Broker) -> None:
    async def nothing() -> dict[str, Any]:
        raise AssertionError  # pragma: no cover

    async def ignore(message: MutableMapping[str, Any]) -> None:
        raise AssertionError  # pragma: no cover

    with pytest.raises(ValueError, match="'webtransport'"):
        await StompEndpoint(broker)({"type": "webtransport"}, nothing, ignore)


def test_the_target_is_a_stomp_app_or_a_broker() -> None:
    with pytest.raises(TypeError, match="StompApp or a Broker, not str"):
        StompEndpoint("myapp:app")  # type: ignore[arg-type]
    app = StompApp()
    endpoint = StompEndpoint(app)
    assert endpoint.broker.tcp == [] and endpoint.broker.ws == []  # ASGI only
    assert StompEndpoint(app).broker is endpoint.broker  # one broker per application
    assert StompEndpoint(StompApp()).broker is not endpoint.broker


# -- back-pressure and the slow-consumer policy ----------------------------------------


@pytest.mark.parametrize("broker_options", [{"max_pending_bytes": 32 * 1024}])
async def test_a_stalled_asgi_send_stalls_the_writer_and_drops_topic_copies(
    broker: Broker,
) -> None:
    async with websocket(StompEndpoint(broker)) as ws:
        assert isinstance(await ws.connect(), Connected)
        await subscribed(ws, "/topic/feed")
        handed = len(ws.sent)
        ws.hold()  # the client stops reading: the server's send waits
        body = b"p" * 1024
        for _ in range(200):
            broker.publish("/topic/feed", body)
            await anyio.sleep(0)
        await anyio.sleep(0.1)
        # One write waits in the server; nothing else went to it: the backlog
        # waits in the session, where the policy saw it and dropped copies.
        assert ws.in_flight == 1 and ws.most_in_flight == 1
        assert len(ws.sent) == handed
        stats = broker.stats
        assert stats["dropped"] > 0
        assert stats["delivered"] + stats["dropped"] == 200
        [link] = broker._links.values()
        assert 32 * 1024 <= link.session.pending_bytes < 32 * 1024 + 2 * len(body)
        ws.release()
        received = 0
        while received < stats["delivered"]:
            event = await ws.event()
            assert isinstance(event, Message)
            received += 1
        # The session resumes once its backlog is written: the next copy is delivered.
        with anyio.fail_after(5):
            while link.waiting:
                await anyio.sleep(0.01)
        broker.publish("/topic/feed", b"after")
        event = await ws.event()
        assert isinstance(event, Message) and event.body == b"after"


@pytest.mark.parametrize(
    "broker_options", [{"max_pending_bytes": 16 * 1024, "slow_consumer": "disconnect"}]
)
async def test_a_stuck_client_is_disconnected_with_its_write_given_up(broker: Broker) -> None:
    async with websocket(StompEndpoint(broker)) as ws:
        assert isinstance(await ws.connect(), Connected)
        await subscribed(ws, "/topic/feed")
        ws.hold()
        for _ in range(100):
            broker.publish("/topic/feed", b"p" * 1024)
        # The ERROR cannot be written (the socket is full), so the write in
        # flight is given up and the connection closed with 1002, promptly.
        with anyio.fail_after(3):
            assert await closed_with(ws) == 1002
            await ws.finished.wait()
        assert ws.in_flight == 0
    assert broker.stats["sessions"] == 0


# -- the lifespan ----------------------------------------------------------------------


async def test_the_lifespan_starts_and_stops_the_broker(anyio_backend: str) -> None:
    endpoint = StompEndpoint(Broker(tcp=[("127.0.0.1", 0)], ws=[], heart_beat=(0, 0)))
    for _ in range(2):  # a second lifespan (another test client, a reload) works too
        lifespan = Lifespan(endpoint)
        async with anyio.create_task_group() as tg:
            await tg.start(lifespan.run)
            assert await lifespan.startup() == {"type": "lifespan.startup.complete"}
            port = endpoint.broker.addresses[0][2]
            # The broker's TCP listener and the endpoint: one broker.
            async with websocket(endpoint) as ws:
                assert isinstance(await ws.connect(), Connected)
                await subscribed(ws, "/topic/t")
                async with connect("127.0.0.1", port, heart_beat=(0, 0)) as tcp:
                    await tcp.send("/topic/t", "over TCP", receipt=True)
                event = await ws.event()
                assert isinstance(event, Message) and event.body == b"over TCP"
            assert await lifespan.shutdown() == {"type": "lifespan.shutdown.complete"}
        assert endpoint._refusal(FakeWebSocket().scope) is not None  # stopped


async def test_a_lifespan_whose_broker_cannot_start_fails_saying_why(anyio_backend: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        endpoint = StompEndpoint(Broker(tcp=[("127.0.0.1", port)], ws=[]))
        lifespan = Lifespan(endpoint)
        async with anyio.create_task_group() as tg:
            await tg.start(lifespan.run)
            failed = await lifespan.startup()
    assert failed["type"] == "lifespan.startup.failed"
    assert str(port) in failed["message"] and "address" in failed["message"].lower()


async def test_lifespan_leaves_a_broker_started_elsewhere_running(broker: Broker) -> None:
    endpoint = StompEndpoint(broker)
    async with endpoint.lifespan():
        pass
    async with websocket(endpoint) as ws:  # still running
        assert isinstance(await ws.connect(), Connected)


# -- one broker, many endpoints --------------------------------------------------------


async def test_endpoints_share_one_broker_with_its_tcp_listener(anyio_backend: str) -> None:
    async with Broker(tcp=[("127.0.0.1", 0)], ws=[], heart_beat=(0, 0)) as broker:
        first, second = StompEndpoint(broker), StompEndpoint(broker, binary=True)
        async with websocket(first) as a, websocket(second) as b:
            for ws in (a, b):
                assert isinstance(await ws.connect(), Connected)
                await subscribed(ws, "/topic/news")
            port = broker.addresses[0][2]
            async with connect("127.0.0.1", port, heart_beat=(0, 0)) as tcp:
                await tcp.send("/topic/news", "to all", receipt=True)
            for ws in (a, b):
                event = await ws.event()
                assert isinstance(event, Message) and event.body == b"to all"
            await a.stomp(Send(destination="/topic/news", body=b"from a"))
            for ws in (a, b):
                event = await ws.event()
                assert isinstance(event, Message) and event.body == b"from a"
            assert broker.stats["sessions"] == 2


async def test_a_stomp_app_served_by_the_endpoint(anyio_backend: str) -> None:
    stomp = StompApp(users={"ann": "a", "bob": "b"})

    @stomp.message("/shout", send_to_user="/queue/replies")
    async def shout(message: AppMessage) -> str:
        return f"{message.user}: {message.text().upper()}"

    stomp.deny("SUBSCRIBE", "/topic/secret.**")
    endpoint = StompEndpoint(stomp)
    async with endpoint.lifespan(), websocket(endpoint) as ann, websocket(endpoint) as bob:
        assert isinstance(await ann.connect(login="ann", passcode="a"), Connected)
        assert isinstance(await bob.connect(login="bob", passcode="b"), Connected)
        for ws in (ann, bob):
            await subscribed(ws, "/user/queue/replies")
        await ann.stomp(Send(destination="/app/shout", body=b"hi", receipt="r"))
        reply = await ann.event()
        assert isinstance(reply, Message) and reply.body == b"ann: HI"
        assert reply.destination == "/user/queue/replies"
        assert await ann.event() == Receipt(receipt_id="r")
        await bob.stomp(Subscribe(destination="/topic/secret.x", id="x"))
        denied = await bob.event()
        assert isinstance(denied, Error) and "denied" in (denied.message or "")
        assert await closed_with(bob) == 1002
        stomp.send_to_user("ann", "/queue/replies", "from the server")
        pushed = await ann.event()
        assert isinstance(pushed, Message) and pushed.body == b"from the server"


async def test_serve_transport_needs_a_running_broker(anyio_backend: str) -> None:
    with pytest.raises(RuntimeError, match="not running"):
        await Broker(tcp=[], ws=[]).serve_transport(None)  # type: ignore[arg-type]
