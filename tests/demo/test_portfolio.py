"""The portfolio demo's application through a real broker and our own client (issue 11)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from stomp_proto.asyncio import StompError, Subscription
from stomp_proto.demo import STOCKS, Portfolios, TradeError
from stomp_proto.demo.__main__ import pages, parser

from .conftest import port, serve, trader

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


async def nothing_within(sub: Subscription, seconds: float = 0.2) -> None:
    """No message arrives on ``sub`` for a while (for "nobody else got it")."""
    with anyio.move_on_after(seconds):
        message = await sub.get()
        pytest.fail(f"unexpected message {message.body!r} on {message.destination}")


async def next_json(sub: Subscription, seconds: float = 5) -> Any:
    with anyio.fail_after(seconds):
        return json.loads((await sub.get()).body)


def trade(action: str, ticker: str, shares: object) -> str:
    return json.dumps({"action": action, "ticker": ticker, "shares": shares})


async def test_prices_of_every_ticker_arrive_and_walk(anyio_backend: str) -> None:
    async with serve() as broker, trader(broker) as c:
        feed = await c.subscribe("/topic/price.stock.*")
        seen: dict[str, list[float]] = {}
        with anyio.fail_after(5):
            while len(seen) < len(STOCKS) or min(len(v) for v in seen.values()) < 5:
                message = await feed.get()
                quote = json.loads(message.body)
                assert set(quote) == {"ticker", "price"}
                assert message.destination == f"/topic/price.stock.{quote['ticker']}"
                assert message.content_type == "application/json"
                seen.setdefault(quote["ticker"], []).append(quote["price"])
        assert set(seen) == set(STOCKS)
        for ticker, walk in seen.items():
            assert len(set(walk)) > 1, ticker  # it moves
            for before, after in itertools.pairwise(walk):
                assert abs(after - before) <= before * 0.005 + 0.01  # one small step at a time
                assert after == round(after, 2) and after > 0


async def test_prices_come_at_least_once_a_second_by_default(anyio_backend: str) -> None:
    async with serve(interval=None) as broker, trader(broker) as c:  # create_app()'s default
        feed = await c.subscribe("/topic/price.stock.MMM")
        await next_json(feed)
        start = anyio.current_time()
        assert (await next_json(feed))["ticker"] == "MMM"
        assert anyio.current_time() - start < 1.0


async def test_quotes_and_positions_answer_the_subscription_once(anyio_backend: str) -> None:
    async with serve() as broker, trader(broker) as fab, trader(broker, "paulson") as paul:
        quotes = await fab.subscribe("/app/quotes")
        got = await next_json(quotes)
        assert [q["ticker"] for q in got] == list(STOCKS)
        for quote in got:
            assert set(quote) == {"ticker", "company", "open", "price"}
            assert (quote["company"], quote["open"]) == STOCKS[quote["ticker"]]
            assert quote["price"] > 0
        mine = await fab.subscribe("/app/positions")
        assert await next_json(mine) == [
            {"ticker": "MMM", "shares": 75},
            {"ticker": "MSFT", "shares": 33},
            {"ticker": "ORCL", "shares": 45},
        ]
        theirs = await paul.subscribe("/app/positions")
        assert await next_json(theirs) == [
            {"ticker": "CSCO", "shares": 15},
            {"ticker": "GOOG", "shares": 5},
            {"ticker": "IBM", "shares": 23},
        ]
        await nothing_within(mine)
        await nothing_within(quotes, 0.01)


async def test_trades_reach_every_session_of_the_trader_and_nobody_else(
    anyio_backend: str,
) -> None:
    async with (
        serve() as broker,
        trader(broker) as a1,
        trader(broker) as a2,
        trader(broker, "paulson") as b,
    ):
        u1, u2, ub = [await s.subscribe("/user/queue/position-updates") for s in (a1, a2, b)]
        await a1.send("/app/trade", trade("BUY", "MMM", 5), receipt=True)
        first, second = await next_json(u1), await next_json(u2)
        assert first == second
        assert first["ticker"] == "MMM" and first["shares"] == 80
        assert first["action"] == "BUY" and first["traded"] == 5 and first["price"] > 0
        await nothing_within(ub)

        await a2.send("/app/trade", trade("SELL", "MMM", 80), receipt=True)  # the other session
        assert (await next_json(u1))["shares"] == (await next_json(u2))["shares"] == 0
        await a1.send("/app/trade", trade("BUY", "IBM", 2), receipt=True)  # a new position
        assert (await next_json(u1))["shares"] == (await next_json(u2))["shares"] == 2
        again = await a1.subscribe("/app/positions")
        assert {p["ticker"]: p["shares"] for p in await next_json(again)} == {
            "IBM": 2,
            "MSFT": 33,
            "ORCL": 45,
        }  # MMM sold out: gone

        await b.send("/app/trade", trade("BUY", "IBM", 7), receipt=True)
        assert (await next_json(ub))["shares"] == 30  # paulson's own 23 + 7
        await nothing_within(u1)
        await nothing_within(u2, 0.01)


BAD_TRADES = [
    (b"not json", "a trade is JSON"),
    (b"\xff\xfe", "a trade is JSON"),
    (b"[1, 2]", "a trade is a JSON object, not [1, 2]"),
    (b'{"action": "HOLD", "ticker": "MMM", "shares": 1}', 'action must be BUY or SELL, not "HOLD"'),
    (trade("BUY", "NOPE", 1).encode(), 'unknown ticker "NOPE"'),
    (b'{"action": "BUY", "ticker": 7, "shares": 1}', "unknown ticker 7"),
    (trade("BUY", "MMM", 0).encode(), "shares must be a whole number from 1 to 1,000,000, not 0"),
    (trade("BUY", "MMM", -3).encode(), "not -3"),
    (trade("BUY", "MMM", 1.5).encode(), "not 1.5"),
    (trade("BUY", "MMM", "5").encode(), 'not "5"'),
    (trade("BUY", "MMM", True).encode(), "not true"),
    (trade("BUY", "MMM", None).encode(), "not null"),
    (trade("BUY", "MMM", 1_000_001).encode(), "not 1000001"),
    (trade("SELL", "MMM", 76).encode(), "cannot sell 76 MMM: you hold 75"),
    (trade("SELL", "GOOG", 1).encode(), "cannot sell 1 GOOG: you hold 0"),
]


async def test_bad_trades_get_an_error_and_the_session_stays_open(anyio_backend: str) -> None:
    async with serve() as broker, trader(broker) as c, trader(broker) as same_user:
        errors = await c.subscribe("/user/queue/errors")
        updates = await c.subscribe("/user/queue/position-updates")
        others = await same_user.subscribe("/user/queue/errors")
        for body, text in BAD_TRADES:
            await c.send("/app/trade", body, content_type="application/json", receipt=True)
            error = await next_json(errors)
            assert list(error) == ["error"] and text in error["error"], (body, error)
        await nothing_within(updates)  # nothing was executed
        await nothing_within(others, 0.01)  # errors go to the sending session only
        await c.send("/app/trade", trade("SELL", "MMM", 75), receipt=True)  # still open
        assert (await next_json(updates))["shares"] == 0


async def test_wrong_logins_are_refused(anyio_backend: str) -> None:
    async with serve() as broker:
        for user, passcode in [("fabrice", "bond"), ("paulson", ""), ("mallory", "fab123")]:
            with pytest.raises(StompError, match="access refused"):
                async with trader(broker, user, passcode):
                    pass
        with pytest.raises(StompError, match="access refused"):
            async with trader(broker, "", ""):
                pass
        async with trader(broker) as c:  # the broker is fine
            assert c.connected is not None


async def test_clients_cannot_publish_prices_or_write_to_other_users(anyio_backend: str) -> None:
    async with serve() as broker:
        for destination in ["/topic/price.stock.MMM", "/user/paulson/queue/position-updates"]:
            async with trader(broker) as c:
                with pytest.raises(StompError, match="denied"):
                    await c.send(destination, b'{"ticker": "MMM", "price": 1}', receipt=True)


async def test_the_page_and_its_files_come_from_the_same_port(anyio_backend: str) -> None:
    async with serve() as broker:
        async with await anyio.connect_tcp("127.0.0.1", port(broker)) as stream:
            await stream.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            with anyio.fail_after(5):
                while True:
                    try:
                        data += await stream.receive()
                    except anyio.EndOfStream:
                        break
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert b"content-type: text/html; charset=utf-8" in head
        assert b'<script src="/stomp.umd.min.js">' in body and b"/app.js" in body


def test_static_files() -> None:
    html = pages("/")
    assert html is not None and html[0] == 200
    assert pages("/index.html") == html and pages("/?x=1") == html
    page = html[2].decode()
    assert "https://" not in page and "http://" not in page  # nothing from a CDN
    bundle = pages("/stomp.umd.min.js")
    assert bundle is not None
    shipped = ROOT / "tests/interop/js/node_modules/@stomp/stompjs/bundles/stomp.umd.min.js"
    if shipped.exists():
        assert bundle[2] == shipped.read_bytes()
    assert b"StompJs" in bundle[2]
    assert ("content-type", "text/javascript; charset=utf-8") in bundle[1]
    license_ = pages("/STOMPJS-LICENSE")
    assert license_ is not None and b"Apache License" in license_[2]
    for path, kind in [("/app.js", "javascript"), ("/style.css", "css")]:
        answer = pages(path)
        assert answer is not None and kind in dict(answer[1])["content-type"]
        assert len(answer[2]) > 1000
    js = pages("/app.js")
    assert js is not None and b'"/portfolio"' in js[2]
    for path in ["/nope", "/../__main__.py", "/_static/app.js", ""]:
        assert pages(path) is None


def test_portfolio_rules_without_a_broker() -> None:
    book = Portfolios({"ann": {"MMM": 2}})
    prices = {"MMM": 10.0, "IBM": 20.0}
    assert book.trade("ann", {"action": "SELL", "ticker": "MMM", "shares": 2}, prices) == {
        "ticker": "MMM",
        "shares": 0,
        "action": "SELL",
        "traded": 2,
        "price": 10.0,
    }
    assert book.positions("ann") == []
    book.trade("bob", {"action": "BUY", "ticker": "IBM", "shares": 3}, prices)  # a new trader
    assert book.positions("bob") == [{"ticker": "IBM", "shares": 3}]
    with pytest.raises(TradeError, match="you hold 3"):
        book.trade("bob", {"action": "SELL", "ticker": "IBM", "shares": 4}, prices)
    assert book.positions("bob") == [{"ticker": "IBM", "shares": 3}]  # unchanged
    assert book.positions("nobody") == []


def test_command_line_defaults() -> None:
    args = parser().parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 8080)
    args = parser().parse_args(["--host", "0.0.0.0", "--port", "9000"])
    assert (args.host, args.port) == ("0.0.0.0", 9000)


def test_python_m_stomp_proto_demo_serves_until_sigint(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "stomp_proto.demo", "--port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        url = wait_for_url(log, process)
        import urllib.request

        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200 and b"Portfolio" in response.read()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "stopped" in log.read_text()


def wait_for_url(
    log: Path,
    process: subprocess.Popen[bytes],
    timeout: float = 15,
    marker: str = "portfolio demo at ",
) -> str:
    """The page's URL, from the demo's log line (the one after ``marker``:
    ``stomp-proto demo``'s own, or an ASGI server's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if marker in line:
                return line.split(marker, 1)[1].split()[0].rstrip("/") + "/"
        if process.poll() is not None:
            pytest.fail(f"the demo exited with {process.returncode}: {log.read_text()}")
        time.sleep(0.05)
    pytest.fail(f"the demo did not start: {log.read_text()}")
