"""The demo as a web application (issue 13): ``POST /api/price`` and the ASGI demo.

``POST /api/price`` publishes to every subscriber of the ticker's topic, in
the feed's shape, whoever serves the demo: ``stomp-proto demo`` (the broker's
own listener) and ``uvicorn``/``hypercorn stomp_proto.demo:app`` (the ASGI
application), which serve the same bytes for the page and its files. The
docs' curl line (docs/demo.rst) is run as written, against each.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from stomp_proto import Connected
from stomp_proto.asyncio import Subscription, connect
from stomp_proto.demo import STOCKS, USERS, PortfolioDemo, PriceError, Quotes
from stomp_proto.demo.__main__ import FILES, pages

from ..asgi.driver import Lifespan, http_get, websocket
from .conftest import in_ci, port, serve
from .test_portfolio import wait_for_url

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "demo.rst"


def curl_line() -> list[str]:
    """The ``curl`` command of docs/demo.rst, as arguments."""
    for line in DOCS.read_text().splitlines():
        if line.strip().startswith("$ curl "):
            return shlex.split(line.strip()[2:])
    raise AssertionError("docs/demo.rst has no `$ curl` line")


def run_curl(base: str) -> dict[str, Any]:
    """The docs' curl line against ``base`` (``http://127.0.0.1:PORT``); its JSON answer."""
    if shutil.which("curl") is None:
        if in_ci():
            pytest.fail("curl is not installed (CI=true: never skipped)")
        pytest.skip("curl is not installed")
    args = [a.replace("http://127.0.0.1:8080", base) for a in curl_line()]
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=10).stdout
    answer: dict[str, Any] = json.loads(out)
    return answer


def post(base: str, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{base}/api/price", data=body, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        data = exc.read()
        return exc.code, json.loads(data) if data.startswith(b"{") else data


BAD = [
    (b"{not json", "body"),
    (b"[1, 2]", "body"),
    (b'{"ticker": "ACME", "price": 1}', "ticker"),
    (b'{"price": 1}', "ticker"),
    (b'{"ticker": "MMM", "price": "129.45"}', "price"),
    (b'{"ticker": "MMM", "price": true}', "price"),
    (b'{"ticker": "MMM", "price": -3}', "price"),
    (b'{"ticker": "MMM", "price": 0.001}', "price"),
    (b'{"ticker": "MMM", "price": 1e12}', "price"),
    (b'{"ticker": "MMM", "price": NaN}', "price"),
]


async def check_price_api(base: str, ws_url: str) -> None:
    """What POST /api/price does, against the demo at ``base``."""
    async with connect(ws_url, login="fabrice", passcode=USERS["fabrice"], heart_beat=(0, 0)) as c:
        mmm = await c.subscribe("/topic/price.stock.MMM", receipt=True)
        answer = await anyio.to_thread.run_sync(run_curl, base)
        assert answer == {"ticker": "MMM", "price": 129.45, "delivered": 1}
        await until_price(mmm, 129.45)
        for body, field in BAD:
            status, error = await anyio.to_thread.run_sync(post, base, body)
            assert status == 400, body
            assert error["field"] == field and error["error"], error
        status, ok = await anyio.to_thread.run_sync(
            post, base, b'{"ticker": "MMM", "price": 7777.777}'
        )
        assert (status, ok) == (200, {"ticker": "MMM", "price": 7777.78, "delivered": 1})
        # The feed walks on from the price set (within its 0.5 % steps).
        await until_price(mmm, 7777.78)
        with anyio.fail_after(5):
            walked = json.loads((await mmm.get()).body)["price"]
        assert abs(walked - 7777.78) < 7777.78 * 0.02


async def until_price(sub: Subscription, price: float) -> None:
    """Reads ``sub`` until the quote ``{"ticker": "MMM", "price": price}`` arrives."""
    with anyio.fail_after(5):
        while True:
            message = await sub.get()
            quote = json.loads(message.body)
            assert set(quote) == {"ticker", "price"}  # the feed's shape
            assert message.content_type == "application/json"
            if quote == {"ticker": "MMM", "price": price}:
                return


# -- stomp-proto demo ------------------------------------------------------------------


async def test_post_api_price_under_stomp_proto_demo(anyio_backend: str) -> None:
    async with serve(interval=0.2) as broker:
        base = f"http://127.0.0.1:{port(broker)}"
        await check_price_api(base, f"ws://127.0.0.1:{port(broker)}/portfolio")
        status, _ = await anyio.to_thread.run_sync(post, base, b"x" * 70_000)
        assert status == 413


def test_quotes_without_a_broker() -> None:
    quotes = Quotes()
    assert quotes.quote("MMM") == {"ticker": "MMM", "price": STOCKS["MMM"][1]}
    assert quotes.set_price({"ticker": "IBM", "price": 3}) == {"ticker": "IBM", "price": 3.0}
    with pytest.raises(PriceError, match="unknown ticker") as bad:
        quotes.set_price({"ticker": "mmm", "price": 3})
    assert bad.value.field == "ticker"


# -- the ASGI application, in process --------------------------------------------------


async def test_the_asgi_demo_serves_what_stomp_proto_demo_serves(anyio_backend: str) -> None:
    demo = PortfolioDemo(interval=0.05, heart_beat=(0, 0))
    for path in FILES:
        response = await http_get(demo, path)
        expected = pages(path)
        assert expected is not None
        assert response["status"] == 200 and response["body"] == expected[2], path
        assert response["headers"]["content-type"] == dict(expected[1])["content-type"]
    assert (await http_get(demo, "/index.html"))["body"] == (await http_get(demo, "/"))["body"]
    assert (await http_get(demo, "/", method="HEAD"))["body"] == b""
    assert (await http_get(demo, "/nope"))["status"] == 404
    assert (await http_get(demo, "/api/price"))["status"] == 405
    assert (await http_get(demo, "/", method="POST", body=b"x"))["status"] == 405
    upgrade = await http_get(demo, "/portfolio")
    assert upgrade["status"] == 426 and upgrade["headers"]["upgrade"] == "websocket"
    lifespan = Lifespan(demo)
    async with anyio.create_task_group() as tg:
        await tg.start(lifespan.run)
        assert (await lifespan.startup())["type"] == "lifespan.startup.complete"
        async with websocket(demo, path="/portfolio") as ws:
            connected = await ws.connect(login="paulson", passcode=USERS["paulson"])
            assert isinstance(connected, Connected)
        async with websocket(demo, path="/elsewhere") as ws:
            refused = await ws.handshake()
            assert refused["status"] == 404
            assert b"STOMP is at /portfolio" in (await ws.next())["body"]
        answer = await http_get(demo, "/api/price", "POST", b'{"ticker": "AAPL", "price": 1.5}')
        assert answer["status"] == 200
        assert json.loads(answer["body"]) == {"ticker": "AAPL", "price": 1.5, "delivered": 0}
        assert demo.quotes.prices["AAPL"] == 1.5
        too_big = await http_get(demo, "/api/price", "POST", b"x" * 20_000)
        assert too_big["status"] == 413
        assert (await lifespan.shutdown())["type"] == "lifespan.shutdown.complete"


# -- the ASGI application under uvicorn and hypercorn ----------------------------------

SERVERS = {
    "uvicorn": ["uvicorn", "stomp_proto.demo:app", "--port", "0"],
    "hypercorn": ["hypercorn", "stomp_proto.demo:app", "--bind", "127.0.0.1:0", "-k", "trio"],
}
MARKERS = {"uvicorn": "Uvicorn running on ", "hypercorn": "Running on "}


@pytest.fixture(params=list(SERVERS))
def asgi_demo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """``python -m uvicorn|hypercorn stomp_proto.demo:app`` on a free port; its base URL."""
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *SERVERS[request.param]],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        url = wait_for_url(log, process, marker=MARKERS[request.param])
        yield url.rstrip("/")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    logged = log.read_text(errors="replace")
    assert "Traceback" not in logged, logged[-4000:]


async def test_the_asgi_demo_under_a_real_server(asgi_demo: str, anyio_backend: str) -> None:
    for path in FILES:
        with urllib.request.urlopen(asgi_demo + path, timeout=5) as response:
            expected = pages(path)
            assert expected is not None and response.read() == expected[2], path
    ws_url = re.sub(r"^http", "ws", asgi_demo) + "/portfolio"
    await check_price_api(asgi_demo, ws_url)
    from stomp_proto.asyncio import StompError

    with pytest.raises(StompError, match="access refused"):
        async with connect(ws_url, login="fabrice", passcode="wrong", heart_beat=(0, 0)):
            pass  # pragma: no cover


# -- the broker listener's POST hook, which stomp-proto demo uses ----------------------


async def raw(port_: int, request: bytes) -> bytes:
    async with await anyio.connect_tcp("127.0.0.1", port_) as stream:
        await stream.send(request)
        data = b""
        with anyio.fail_after(5):
            while True:
                try:
                    data += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return data


async def test_the_listener_gives_posts_to_a_handler_with_post_only(anyio_backend: str) -> None:
    def pages_only(target: str) -> tuple[int, list[tuple[str, str]], bytes] | None:
        return 200, [("content-type", "text/plain")], b"page"

    class WithPost:
        def __call__(self, target: str) -> tuple[int, list[tuple[str, str]], bytes] | None:
            return pages_only(target)

        def post(self, target: str, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            return 201, [("content-type", "text/plain")], target.encode() + b" got " + body

    from stomp_proto.broker import Broker

    cases: list[tuple[Any, bytes]] = [(pages_only, b"HTTP/1.1 400"), (WithPost(), b"HTTP/1.1 201")]
    for handler, expected in cases:
        async with Broker(tcp=[], ws=[("127.0.0.1", 0, "/ws")], http=handler) as broker:
            at = broker.addresses[0][2]
            # The body comes in a second write, after the head.
            async with await anyio.connect_tcp("127.0.0.1", at) as stream:
                await stream.send(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n")
                await anyio.sleep(0.05)
                await stream.send(b"hello")
                answer = b""
                with anyio.fail_after(5):
                    while True:
                        try:
                            answer += await stream.receive()
                        except anyio.EndOfStream:
                            break
            assert answer.startswith(expected), answer
            if expected.endswith(b"201"):
                assert answer.endswith(b"/x got hello")
                big = await raw(at, b"POST /x HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n")
                assert big.startswith(b"HTTP/1.1 413")
                assert (await raw(at, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")).endswith(b"page")


# -- GET /metrics ------------------------------------------------------------------------


async def test_the_demo_serves_its_brokers_metrics(anyio_backend: str) -> None:
    """GET /metrics: the broker's Prometheus metrics, from ``stomp-proto demo``
    and from the ASGI demo alike; a POST there is a 405."""
    async with serve(interval=0.2) as broker:
        base = f"http://127.0.0.1:{port(broker)}"
        ws_url = f"ws://127.0.0.1:{port(broker)}/portfolio"
        async with connect(ws_url, login="fabrice", passcode=USERS["fabrice"], heart_beat=(0, 0)):

            def scrape() -> tuple[str, str]:
                with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
                    return response.headers["content-type"], response.read().decode()

            content_type, text = await anyio.to_thread.run_sync(scrape)
        assert content_type.startswith("text/plain; version=")
        sessions = re.search(r"^stomp_sessions (\S+)$", text, re.M)
        assert sessions is not None and float(sessions.group(1)) >= 1, text[:2000]
        assert "stomp_connections_accepted_total" in text
    demo = PortfolioDemo(interval=0.05, heart_beat=(0, 0))
    answer = await http_get(demo, "/metrics")
    assert answer["status"] == 200 and b"stomp_sessions 0.0" in answer["body"]
    assert (await http_get(demo, "/metrics", "POST", b"x"))["status"] == 405


def test_without_prometheus_client_metrics_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails
    demo = PortfolioDemo(interval=0.05, heart_beat=(0, 0))
    answer = demo.respond("GET", "/metrics")
    assert answer is not None and answer[0] == 501
    assert b"pip install 'stomp-proto[metrics]'" in answer[2]
