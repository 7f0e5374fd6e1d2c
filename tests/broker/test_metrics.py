"""Prometheus metrics: the collector's figures after known traffic, the ASGI
application, the standalone endpoint, the command line, and the docs' sample.

:func:`portfolio` is the traffic: a :class:`~stomp_proto.app.StompApp` with a
trade handler, a failing one and a subscription handler, one client doing a
bit of everything, one denied and one refused. Every figure it leads to is
known, and the sample of ``GET /metrics`` in docs/operating.rst is checked
against what it produces (so the sample cannot rot).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from stomp_proto.app import AppMessage, StompApp
from stomp_proto.broker import Broker
from stomp_proto.broker import __main__ as cli
from stomp_proto.broker.metrics import METRICS, BrokerCollector

from .faultkit import RawClient, send_frame, stomp, tcp_port

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """(sample name, sorted labels) -> value, for every sample of ``text``."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def exposition(broker: Broker) -> str:
    registry = CollectorRegistry()
    registry.register(BrokerCollector(broker))
    return generate_latest(registry).decode()


def create_app() -> StompApp:
    app = StompApp(users={"fabrice": "fab123", "paulson": "bond"})
    app.deny("SEND", "/topic/admin.**")

    @app.message("/trade/{ticker}", send_to_user="/queue/position-updates")
    def trade(message: AppMessage) -> dict[str, object]:
        return {"ticker": message.variables["ticker"], "shares": message.json()["shares"]}

    @app.message("/fail")
    def fail(message: AppMessage) -> None:
        raise ValueError("no such portfolio")

    @app.subscribe("/positions")
    async def positions(message: AppMessage) -> list[dict[str, object]]:
        return [{"ticker": "MMM", "shares": 10}]

    return app


@pytest.fixture
async def portfolio(anyio_backend: str) -> AsyncIterator[Broker]:
    """A broker after the known traffic, with fabrice still connected."""
    broker = create_app().broker(tcp=[("127.0.0.1", 0)], ws=[], heart_beat=(0, 0), stats_interval=0)
    async with broker:
        port = tcp_port(broker)
        fabrice = await RawClient.connected(
            port, headers=[("login", "fabrice"), ("passcode", "fab123")]
        )
        await fabrice.subscribe("/topic/price.stock.*", "0")
        await fabrice.subscribe("/user/queue/position-updates", "1")
        await fabrice.subscribe("/queue/orders", "2", ack="client-individual")
        await fabrice.subscribe("/app/positions", "3")
        await fabrice.frames_until(lambda f: f.get("subscription") == "3")  # the answer
        broker.publish("/topic/price.stock.MMM", "129.45")
        broker.publish("/topic/price.stock.EBAY", "25.20")
        # an application SEND's RECEIPT comes once its handler has run
        await fabrice.write(send_frame("/app/trade/MMM", b'{"shares": 10}', [("receipt", "t")]))
        got = await fabrice.receipt("t")
        await fabrice.write(send_frame("/app/fail", b"{}", [("receipt", "f")]))
        got += await fabrice.receipt("f")
        await fabrice.write(send_frame("/queue/orders", b"buy", [("receipt", "o")]))
        got += await fabrice.receipt("o")  # the RECEIPT goes before the delivery
        got += await fabrice.frames_until(lambda f: f.get("subscription") == "2")
        assert [f.command for f in got].count("MESSAGE") == 4  # 2 prices, trade, order
        await fabrice.send("NACK", [("id", got[-1].get("ack") or ""), ("receipt", "n")])
        await fabrice.receipt("n")
        (order,) = await fabrice.frames_until(lambda f: f.get("subscription") == "2")
        assert order.get("redelivered") == "true"
        await fabrice.send("ACK", [("id", order.get("ack") or "")])
        await fabrice.write(send_frame("/queue/backlog", b"for later", [("receipt", "b")]))
        await fabrice.receipt("b")
        # paulson is denied a destination (and cut off); a stranger is refused
        paulson = await RawClient.connected(
            port, headers=[("login", "paulson"), ("passcode", "bond")]
        )
        await paulson.write(send_frame("/topic/admin.reboot", b"now"))
        assert [f.command for f in await paulson.until_closed()] == ["ERROR"]
        stranger = await RawClient.open(port)
        await stranger.write(stomp("CONNECT", [("accept-version", "1.2"), ("login", "x")]))
        assert (await stranger.until_closed())[0].command == "ERROR"
        with anyio.fail_after(5):
            while sum(broker._counters.closed.values()) < 2:
                await anyio.sleep(0.01)
        yield broker
        await fabrice.aclose()


async def test_figures_after_known_traffic(portfolio: Broker) -> None:
    found = samples(exposition(portfolio))

    def get(name: str, **labels: str) -> float:
        return found[name, tuple(sorted(labels.items()))]

    assert get("stomp_connections_accepted_total", transport="tcp") == 3
    assert get("stomp_connections", transport="tcp") == 1
    assert get("stomp_sessions") == 1 and get("stomp_logins_total") == 2
    assert get("stomp_connections_closed_total", reason="error", by="server") == 1
    assert get("stomp_connections_closed_total", reason="login-refused", by="server") == 1
    assert get("stomp_connections_closed_total", reason="eof", by="client") == 0
    assert get("stomp_auth_refusals_total", stage="login") == 1
    assert get("stomp_auth_refusals_total", stage="authorize") == 1
    for kind in ("topic", "queue", "app", "user"):
        assert get("stomp_subscriptions", kind=kind) == 1
    assert get("stomp_messages_in_total", kind="topic", prefix="/topic/") == 2  # denied: not in
    assert get("stomp_messages_in_total", kind="queue", prefix="/queue/") == 2
    assert get("stomp_messages_in_total", kind="app", prefix="/app/") == 2
    # the trade's reply and the failure's report
    assert get("stomp_messages_in_total", kind="user", prefix="/user/") == 2
    assert get("stomp_messages_out_total", kind="topic", prefix="/topic/") == 2
    assert get("stomp_messages_out_total", kind="queue", prefix="/queue/") == 2  # one redelivery
    assert get("stomp_messages_out_total", kind="app", prefix="/app/") == 1
    assert get("stomp_messages_out_total", kind="user", prefix="/user/") == 1
    assert get("stomp_frames_in_total", command="SEND") == 5
    assert get("stomp_frames_in_total", command="CONNECT") == 3
    assert get("stomp_frames_in_total", command="NACK") == 1
    assert get("stomp_frames_out_total", command="MESSAGE") == 6
    assert get("stomp_frames_out_total", command="ERROR") == 2
    assert get("stomp_redeliveries_total") == 1 and get("stomp_requeued_total") == 1
    assert get("stomp_refused_total") == 1
    assert get("stomp_deliveries_dropped_total") == 0
    assert get("stomp_queues") == 2 and get("stomp_queued_messages") == 1
    assert get("stomp_queue_messages", queue="/queue/backlog") == 1
    assert get("stomp_queue_messages", queue="/queue/orders") == 0
    assert get("stomp_queue_bytes", queue="/queue/backlog") == get("stomp_queued_bytes") > 200
    assert get("stomp_memory_bytes") == get("stomp_queued_bytes")
    assert get("stomp_bytes_in_total") > 0 and get("stomp_bytes_out_total") > 0
    trade = {"kind": "message", "handler": "/app/trade/{ticker}"}
    assert get("stomp_handler_calls_total", **trade) == 1
    assert get("stomp_handler_errors_total", **trade) == 0
    assert get("stomp_handler_seconds_count", **trade) == 1
    assert get("stomp_handler_seconds_bucket", **trade, le="+Inf") == 1
    assert 0 < get("stomp_handler_seconds_sum", **trade) < 5
    fail = {"kind": "message", "handler": "/app/fail"}
    assert (
        get("stomp_handler_calls_total", **fail) == get("stomp_handler_errors_total", **fail) == 1
    )
    positions = {"kind": "subscribe", "handler": "/app/positions"}
    assert get("stomp_handler_calls_total", **positions) == 1
    assert get("stomp_info", version=__import__("stomp_proto").__version__) == 1


async def test_every_metric_is_listed_and_documented(portfolio: Broker) -> None:
    text = exposition(portfolio)
    exported = re.findall(r"^# HELP (\w+) ", text, re.MULTILINE)
    assert exported == [name for name, *_ in METRICS]
    families = [name.removesuffix("_total") for name in exported]
    assert len(set(families)) == len(families)  # OpenMetrics' family names are unique
    types = dict(re.findall(r"^# TYPE (\w+) (\w+)$", text, re.MULTILINE))
    for name, kind, labels, _ in METRICS:
        assert types[name] == kind
        for family in text_string_to_metric_families(text):
            if family.name == name.removesuffix("_total"):
                for sample in family.samples:
                    assert set(sample.labels) - {"le"} == set(labels), sample
    page = (ROOT / "docs/operating.rst").read_text()
    for name, *_ in METRICS:
        assert f"``{name}``" in page, f"{name} is not in docs/operating.rst"


def doc_block(name: str) -> list[str]:
    """The lines of the code block with ``:name: name`` in docs/operating.rst."""
    page = (ROOT / "docs/operating.rst").read_text().splitlines()
    at = next(i for i, text in enumerate(page) if text.strip() == f":name: {name}")
    lines = []
    for text in page[at + 1 :]:
        if text.strip() and not text.startswith("   "):
            break
        if text.strip() and not text.strip().startswith(":"):
            lines.append(text[3:])
    return lines


async def test_the_docs_sample_is_what_the_broker_serves(portfolio: Broker) -> None:
    served = exposition(portfolio).splitlines()
    sample = [text for text in doc_block("sample-metrics") if text != "..."]
    assert len(sample) > 20
    missing = [text for text in sample if text not in served]
    assert not missing, "docs/operating.rst's sample is not what is served:\n" + "\n".join(missing)


async def test_a_handler_running_when_the_broker_stops(anyio_backend: str) -> None:
    # Regression: the session's next SEND was handled after the broker had
    # stopped, and "the application is not being served" broke stop().
    app = StompApp()
    entered, release = threading.Event(), threading.Event()

    @app.message("/slow")
    def slow(message: AppMessage) -> None:
        entered.set()
        release.wait(5)

    broker = app.broker(tcp=[("127.0.0.1", 0)], ws=[], heart_beat=(0, 0), stats_interval=0)

    def release_once_stopped() -> None:
        while broker._thread is not None:
            time.sleep(0.01)
        release.set()

    async with broker:
        raw = await RawClient.connected(tcp_port(broker))
        await raw.write(send_frame("/app/slow", b"1") + send_frame("/app/slow", b"2"))
        assert await anyio.to_thread.run_sync(entered.wait, 5)
        threading.Thread(target=release_once_stopped, daemon=True).start()
    assert broker._counters.handlers["message", "/app/slow"].calls == 1
    await raw.aclose()


async def test_the_docs_stats_sample_is_the_line_after_the_same_traffic(
    portfolio: Broker,
) -> None:
    (sample,) = doc_block("sample-stats")
    # the time, the logger and the level first, as the command line logs it
    assert sample.split(" ", 4)[2:4] == ["stomp_proto.broker.stats", "INFO"]

    def steady(text: str) -> str:  # the backlog the writer has yet to write varies
        return re.sub(r"pending_bytes=\d+", "pending_bytes=N", text)

    assert steady(sample.split(" ", 4)[4]) == steady(portfolio.stats_line())


# -- the ASGI application ----------------------------------------------------------------


async def call(
    app: Any, scope: dict[str, Any]
) -> tuple[int, dict[bytes, bytes], bytes, list[MutableMapping[str, Any]]]:
    sent: list[MutableMapping[str, Any]] = []
    inbox = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> MutableMapping[str, Any]:
        return inbox.pop(0) if inbox else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body, sent


def http(method: str = "GET", path: str = "/metrics", **extra: Any) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": [], **extra}


async def test_metrics_app_serves_the_text_format(portfolio: Broker) -> None:
    app = portfolio.metrics_app()
    status, headers, body, _ = await call(app, http())
    assert status == 200
    assert headers[b"Content-Type"].startswith(b"text/plain; version=0.0.4")
    assert b"stomp_sessions 1.0" in body
    status, _, body, _ = await call(app, http("POST"))
    assert status == 405 and body == b"method not allowed\n"
    # OpenMetrics when Prometheus asks for it, gzip when the client takes it
    accept = [(b"accept", b"application/openmetrics-text; version=1.0.0")]
    _, headers, body, _ = await call(app, http(headers=accept))
    assert headers[b"Content-Type"].startswith(b"application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    parsed = list(openmetrics_families(body.decode()))  # type: ignore[no-untyped-call]
    assert len(parsed) == len(METRICS)  # it parses
    _, headers, _, _ = await call(app, http(headers=[(b"accept-encoding", b"gzip")]))
    assert headers[b"Content-Encoding"] == b"gzip"
    assert portfolio.metrics_app() is not app  # a new app, over the same registry
    status, _, again, _ = await call(portfolio.metrics_app(), http())
    assert again.count(b"# HELP stomp_sessions ") == 1  # the collector is registered once


async def test_metrics_app_answers_lifespan_and_refuses_websockets(anyio_backend: str) -> None:
    app = Broker(tcp=[], ws=[]).metrics_app()
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    with pytest.raises(RuntimeError, match="serves HTTP, not 'websocket'"):
        await app({"type": "websocket"}, receive, send)


async def test_registries_are_per_broker_unless_given(portfolio: Broker) -> None:
    # Two brokers in one process: each its own registry, no duplicate series.
    other = Broker(tcp=[], ws=[])
    _, _, mine, _ = await call(portfolio.metrics_app(), http())
    _, _, theirs, _ = await call(other.metrics_app(), http())
    assert b"stomp_sessions 1.0" in mine and b"stomp_sessions 0.0" in theirs
    # A registry of the application's own: its metrics and the broker's, together.
    registry = CollectorRegistry()
    orders = Counter("shop_orders", "orders taken", registry=registry)
    orders.inc(3)
    app = portfolio.metrics_app(registry)
    portfolio.metrics_app(registry)  # again: registered once, no ValueError
    _, _, both, _ = await call(app, http())
    assert b"shop_orders_total 3.0" in both and b"stomp_sessions 1.0" in both
    assert portfolio.collector() is portfolio.collector()


async def test_mounted_in_starlette(portfolio: Broker) -> None:
    starlette = pytest.importorskip("starlette.applications")
    routing = pytest.importorskip("starlette.routing")
    httpx = pytest.importorskip("httpx")

    async def home(request: Any) -> Any:
        from starlette.responses import PlainTextResponse

        return PlainTextResponse("home")

    web = starlette.Starlette(
        routes=[
            routing.Route("/", home),
            routing.Mount("/metrics", app=portfolio.metrics_app()),
        ]
    )
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/")).text == "home"
        response = await client.get("/metrics/")
    assert response.status_code == 200
    assert "stomp_sessions 1.0" in response.text


# -- the standalone endpoint -----------------------------------------------------------


async def fetch(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    async with stream:
        await stream.send(request)
        data = b""
        with anyio.fail_after(5):
            try:
                while True:
                    data += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


async def test_standalone_endpoint(anyio_backend: str) -> None:
    async with Broker(
        tcp=[("127.0.0.1", 0)], ws=[], heart_beat=(0, 0), metrics=("127.0.0.1", 0)
    ) as broker:
        (port,) = [p for kind, _, p in broker.addresses if kind == "metrics"]
        raw = await RawClient.connected(tcp_port(broker))
        status, headers, body = await fetch(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        assert int(headers["content-length"]) == len(body)
        assert b'stomp_connections{transport="tcp"} 1.0' in body
        status, headers, head_body = await fetch(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
        assert status == 200 and head_body == b"" and int(headers["content-length"]) > 1000
        status, _, body = await fetch(port, b"GET / HTTP/1.1\r\n\r\n")
        assert status == 404 and b"/metrics" in body
        status, headers, _ = await fetch(port, b"POST /metrics HTTP/1.1\r\n\r\n")
        assert status == 405 and headers["allow"] == "GET, HEAD"
        status, _, _ = await fetch(port, b"nonsense\r\n\r\n")
        assert status == 400
        status, _, _ = await fetch(port, b"GET /metrics HTTP/1.1\r\nX: " + b"y" * 20000)
        assert status == 400
        await raw.aclose()


# -- the command line ------------------------------------------------------------------


def test_metrics_option_parses() -> None:
    args = cli.parser().parse_args(["--metrics", "0.0.0.0:9419"])
    assert cli.options(args)["metrics"] == ("0.0.0.0", 9419)
    assert cli.options(cli.parser().parse_args([]))["metrics"] is None


def test_metrics_option_rejects_a_path(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["--metrics", "127.0.0.1:9419/metrics"])
    assert "--metrics: expected HOST:PORT, got '127.0.0.1:9419/metrics'" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "args"), [("broker", []), ("run", ["stomp_app:app"])])
def test_metrics_without_prometheus_client_is_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    args: list[str],
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *rest: Any) -> Any:
        return None if name == "prometheus_client" else real(name, *rest)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    main = cli.main if command == "broker" else cli.run_app
    assert main([*args, "--metrics", "127.0.0.1:0"]) == 1
    assert capsys.readouterr().err == (
        f"stomp-proto {command} --metrics needs prometheus_client: "
        "pip install 'stomp-proto[metrics]'\n"
    )


def test_the_api_without_prometheus_client_names_the_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "stomp_proto.broker.metrics")
    monkeypatch.delattr(sys.modules["stomp_proto.broker"], "metrics")
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'stomp-proto\[metrics\]'"):
        Broker(metrics=("127.0.0.1", 0))
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'stomp-proto\[metrics\]'"):
        Broker().metrics_app()
    Broker()  # without metrics, nothing asks for prometheus_client


def test_command_line_serves_metrics(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "stomp_proto.broker", "--tcp", "127.0.0.1:0"]
        + ["--ws", "127.0.0.1:0", "--metrics", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        port = None
        for text in proc.stderr:
            found = re.search(r"Prometheus metrics on http://127\.0\.0\.1:(\d+)/metrics", text)
            if found:
                port = int(found.group(1))
            if text.rstrip().endswith(" ready"):
                break
        assert port is not None
        status, _, body = anyio.run(fetch, port, b"GET /metrics HTTP/1.1\r\n\r\n")
        assert status == 200 and b"stomp_sessions 0.0" in body
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    assert proc.returncode == 0


def test_the_collector_reads_a_stopped_broker() -> None:
    text = exposition(Broker(tcp=[], ws=[]))
    assert "stomp_sessions 0.0" in text
    assert json.dumps(samples(text)[("stomp_queues", ())]) == "0.0"
