"""The ASGI endpoint under real ASGI servers: uvicorn (its ``websockets``,
``websockets-sansio`` and ``wsproto`` implementations) and hypercorn (its
asyncio and trio workers), each a subprocess on a free port (``asgi_servers.py``)
serving a FastAPI application (``asgi_app.py``), driven by @stomp/stompjs in
node (the scenarios of ``js/scenarios.mjs`` and ``js/app_scenarios.mjs``) and by
our own asyncio client (issue 13).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from stomp_proto.asyncio import connect

from .asgi_app import ALLOWED_ORIGIN
from .asgi_servers import BARE, SERVERS, AsgiServer, checked, serve
from .node import JS_DIR, node_missing, run_scenario
from .ourbroker import require_peer

pytestmark = pytest.mark.anyio

BROKER_SCRIPT = JS_DIR / "scenarios.mjs"
APP_SCRIPT = JS_DIR / "app_scenarios.mjs"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module", params=list(SERVERS))
def _server(request: pytest.FixtureRequest) -> Iterator[AsgiServer]:
    yield from serve(request.param)


@pytest.fixture
def server(_server: AsgiServer) -> Iterator[AsgiServer]:
    """The FastAPI application under each server in turn."""
    yield from checked(_server)


@pytest.fixture(scope="module", params=["uvicorn-websockets-sansio", "hypercorn-trio"])
def _bare(request: pytest.FixtureRequest) -> Iterator[AsgiServer]:
    yield from serve(request.param, BARE)


@pytest.fixture
def bare(_bare: AsgiServer) -> Iterator[AsgiServer]:
    """The endpoint as the whole ASGI application (it runs the lifespan)."""
    yield from checked(_bare)


def stompjs(server: AsgiServer, script: Any, scenario: str, **config: Any) -> dict[str, Any]:
    require_peer(node_missing())
    config.setdefault("url", server.ws_url)
    config.update(login=server.login, passcode=server.passcode, users=server.users)
    timeout = config.pop("timeout_ms", 30000)
    return run_scenario(
        script,
        scenario,
        config,
        against=server.name,
        timeout_ms=timeout,
        server_log=lambda: server.log_tail(30),
    )


def name() -> str:
    return uuid.uuid4().hex[:10]


def handshake(server: AsgiServer, path: str, *headers: str) -> tuple[str, bytes]:
    """A raw WebSocket upgrade request; the status line and the body of the answer."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {server.host}:{server.ws_port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: v12.stomp",
        *headers,
    ]
    assert server.ws_port is not None
    with socket.create_connection((server.host, server.ws_port), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            if b" 101 " in head.split(b"\r\n")[0]:
                break
            length = [h for h in head.lower().split(b"\r\n") if h.startswith(b"content-length:")]
            if length and len(body) >= int(length[0].split(b":")[1]):
                break
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body


# -- stompjs ---------------------------------------------------------------------------


def test_stompjs_round_trip_with_text_binary_and_receipts(server: AsgiServer) -> None:
    result = stompjs(
        server, BROKER_SCRIPT, "roundtrip", queue=f"/queue/asgi-rt-{name()}", binary=True
    )
    assert result["text"]["body"] == "héllo wörld €"
    assert result["text"]["headers"]["x-escaped"] == "a:b\nc\\d"
    assert result["binary"] == result["binarySent"]  # a body that is not UTF-8: binary
    assert result["receiptOrder"] == result["receiptsExpected"]
    assert not result["errors"]


def test_stompjs_patterns_and_the_subprotocol(server: AsgiServer) -> None:
    n = name()
    end = f"/topic/price.stock.END{n}"
    matching = [f"/topic/price.stock.MMM{n}"]
    result = stompjs(
        server,
        BROKER_SCRIPT,
        "pattern",
        patterns=["/topic/price.stock.*"],
        publish=[*matching, f"/topic/price.bond.X{n}"],
        end=end,
    )
    assert result["protocol"] == "v12.stomp"  # websocket.accept's subprotocol
    assert result["connected"]["version"] == "1.2"
    got = [m["destination"] for m in result["received"]["/topic/price.stock.*"]]
    assert got == [*matching, end]


def test_stompjs_one_mib_message_in_websocket_chunks(server: AsgiServer) -> None:
    size = 1024 * 1024
    result = stompjs(
        server,
        BROKER_SCRIPT,
        "large",
        timeout_ms=60000,
        queue=f"/queue/asgi-large-{name()}",
        sizeBytes=size,
        chunkSize=8 * 1024,
    )
    assert result["chunksSent"] >= 100  # one frame across many WebSocket messages
    assert result["receivedBytes"] == size
    assert result["receivedSha256"] == result["sentSha256"]
    assert not result["errors"]


def test_stompjs_heart_beats_keep_an_idle_connection(server: AsgiServer) -> None:
    result = stompjs(
        server, BROKER_SCRIPT, "heartbeat", queue=f"/queue/asgi-hb-{name()}", idleMs=3500
    )
    idle = result["idle"]
    assert idle["heartbeatsReceived"] >= 2 and idle["pingsSent"] >= 2, idle
    assert idle["heartbeatsLost"] == 0 and idle["closes"] == 0, idle
    assert result["after"]["body"] == "still here"


def test_stompjs_user_destinations_of_the_application(server: AsgiServer) -> None:
    ticker = "T" + name().upper()
    result = stompjs(server, APP_SCRIPT, "users", ticker=ticker)
    updates = result["updates"]
    bought = {"ticker": ticker, "shares": 3, "action": "BUY", "user": "alice"}
    for tag in ("alice1", "alice2"):
        assert [json.loads(m["body"]) for m in updates[tag]] == [bought], tag
    assert [json.loads(m["body"])["user"] for m in updates["bob"]] == ["bob"]
    assert not result["errors"]


def test_stompjs_refused_login_and_denial_close_with_1002(server: AsgiServer) -> None:
    refused = stompjs(server, APP_SCRIPT, "badLogin")
    for tag, got in refused["results"].items():
        assert [e["headers"]["message"] for e in got["errors"]] == ["access refused"], tag
        assert [c["code"] for c in got["closes"]] == [1002], tag
    denied = stompjs(server, APP_SCRIPT, "denied", destination=f"/topic/admin.{name()}")
    for frame in ("subscribe", "send"):
        assert len(denied[frame]["errors"]) == 1
        assert [c["code"] for c in denied[frame]["closes"]] == [1002], frame


# -- our own clients, HTTP, refusals ---------------------------------------------------


async def test_a_mount_a_tcp_listener_and_an_http_route_share_one_broker(
    server: AsgiServer,
) -> None:
    topic = f"/topic/asgi.{name()}"
    url = f"ws://{server.host}:{server.ws_port}/mounted/"
    async with (
        connect(url, login=server.login, passcode=server.passcode, heart_beat=(0, 0)) as ws,
        connect(
            server.host,
            server.stomp_port,
            login="bob",
            passcode=server.users["bob"],
            heart_beat=(0, 0),
        ) as tcp,
    ):
        over_ws = await ws.subscribe(topic, receipt=True)
        over_tcp = await tcp.subscribe(topic, receipt=True)
        await tcp.send(topic, "from TCP", receipt=True)

        def post() -> Any:
            request = urllib.request.Request(
                f"{server.base_url}/publish{topic}",
                data=json.dumps({"from": "HTTP"}).encode(),
                headers={"content-type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.load(response)

        assert await anyio.to_thread.run_sync(post) == {"copies": 2}
        with anyio.fail_after(5):
            for sub in (over_ws, over_tcp):
                assert (await sub.get()).text() == "from TCP"
                message = await sub.get()
                assert json.loads(message.body) == {"from": "HTTP"}
                assert message.content_type == "application/json"


def test_refusals_and_plain_http_over_the_wire(server: AsgiServer) -> None:
    status, body = handshake(server, "/ws", "Origin: http://evil.example")
    assert " 403 " in status + " "
    assert body == b"origin 'http://evil.example' is not allowed\n"
    status, _ = handshake(server, "/ws", f"Origin: {ALLOWED_ORIGIN}")
    assert " 101 " in status + " "
    status, _ = handshake(server, "/ws", f"Origin: http://{server.host}:{server.ws_port}")
    assert " 101 " in status + " "  # the endpoint's own origin
    with pytest.raises(urllib.error.HTTPError) as plain:
        urllib.request.urlopen(f"{server.base_url}/mounted/", timeout=5)
    assert plain.value.code == 426
    assert b"STOMP over WebSocket endpoint" in plain.value.read()


# -- the endpoint as the whole application -----------------------------------------------


async def test_a_bare_endpoint_runs_its_own_lifespan(bare: AsgiServer) -> None:
    url = f"ws://{bare.host}:{bare.ws_port}/any/path"  # it serves whatever reaches it
    result = await anyio.to_thread.run_sync(
        lambda: stompjs(
            bare, BROKER_SCRIPT, "roundtrip", url=url, queue=f"/queue/bare-{name()}", binary=True
        )
    )
    assert result["binary"] == result["binarySent"]
    assert result["receiptOrder"] == result["receiptsExpected"]
    topic = f"/topic/bare.{name()}"
    login: dict[str, Any] = {"login": bare.login, "passcode": bare.passcode, "heart_beat": (0, 0)}
    async with connect(url, **login) as ws, connect(bare.host, bare.stomp_port, **login) as tcp:
        sub = await ws.subscribe(topic, receipt=True)
        await tcp.send(topic, "one broker", receipt=True)
        with anyio.fail_after(5):
            assert (await sub.get()).text() == "one broker"
