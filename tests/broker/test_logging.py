"""The broker's connection log: one line per accept, login and close, with the cause.

Each cause a connection can end with has a test that makes it happen against
an embedded broker and reads the line (``stomp_proto.broker.connection``):
who closed it, why, at which level, with the session's figures. Lines are
``key=value`` (logfmt); :func:`parse` reads them back as a dict.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
from pathlib import Path

import anyio
import anyio.abc
import pytest

from stomp_proto.broker import Broker
from stomp_proto.broker._stats import fields, peer_text, value

from .faultkit import (
    Clients,
    RawClient,
    WsRawClient,
    connect_frame,
    embedded,
    send_frame,
    stomp,
    tcp_port,
    ws_port,
)

pytestmark = pytest.mark.anyio

LOGGER = "stomp_proto.broker.connection"
_PAIR = re.compile(r'([\w.-]+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse(line: str) -> dict[str, str]:
    """The ``key=value`` pairs of a line (quoted values unescaped)."""
    return {k: json.loads(v) if v.startswith('"') else v for k, v in _PAIR.findall(line)}


def records(caplog: pytest.LogCaptureFixture, head: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.getMessage().startswith(head + " ")]


async def line(
    caplog: pytest.LogCaptureFixture, head: str, timeout: float = 5.0, **match: str
) -> tuple[logging.LogRecord, dict[str, str]]:
    """Wait for the line starting with ``head`` whose fields include ``match``
    (the close line comes once the session's cleanup has run)."""
    with anyio.fail_after(timeout):
        while True:
            for record in records(caplog, head):
                found = parse(record.getMessage())
                if all(found.get(k) == v for k, v in match.items()):
                    return record, found
            await anyio.sleep(0.01)


def port_of(raw: RawClient) -> str:
    return f"127.0.0.1:{raw.stream.extra(anyio.abc.SocketAttribute.local_port)}"


async def accepted(caplog: pytest.LogCaptureFixture, raw: RawClient) -> dict[str, str]:
    _, found = await line(caplog, "connection accepted", peer=port_of(raw))
    return found


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="stomp_proto")


def frozen(broker: Broker) -> Broker:
    """``broker`` with its connection lines' rate limits on a clock that stands
    still: one window, however long a loaded machine takes."""
    broker._counters.info.clock = broker._counters.warn.clock = lambda: 0.0
    return broker


# -- the ordinary life of a session: INFO ----------------------------------------------


async def test_accept_login_and_disconnect(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with embedded(users={"guest": "guest"}) as broker:
        raw = await RawClient.open(tcp_port(broker))
        reply = await raw.connect(headers=[("login", "guest"), ("passcode", "guest")])
        assert reply is not None and reply.command == "CONNECTED"
        sid = reply.get("session")
        assert sid is not None
        record, found = await line(caplog, "connection accepted", session=sid)
        assert record.levelno == logging.INFO
        assert found == {"session": sid, "peer": port_of(raw), "transport": "tcp"}
        record, found = await line(caplog, "connect", session=sid)
        assert record.levelno == logging.DEBUG  # the CONNECT's details
        assert found["user"] == "guest" and found["host"] == "/"
        record, found = await line(caplog, "login accepted", session=sid)
        assert record.levelno == logging.INFO
        assert found == {"session": sid, "user": "guest", "version": "1.2", "heart-beat": "0,0"}
        await raw.send("SUBSCRIBE", [("id", "1"), ("destination", "/topic/t")])
        await raw.write(send_frame("/topic/t", b"hello", [("receipt", "r1")]))
        await raw.receipt("r1")
        await raw.send("DISCONNECT", [("receipt", "bye")])
        await raw.receipt("bye")
        record, found = await line(caplog, "connection closed", session=sid)
    assert record.levelno == logging.INFO
    assert found["by"] == "client" and found["reason"] == "disconnect"
    assert found["user"] == "guest" and found["transport"] == "tcp"
    assert re.fullmatch(r"\d+\.\d{3}s", found["duration"])
    # CONNECT SUBSCRIBE SEND DISCONNECT in; CONNECTED MESSAGE RECEIPT RECEIPT out
    assert found["frames_in"] == "4" and found["frames_out"] == "4"
    assert int(found["bytes_in"]) > 100 and int(found["bytes_out"]) > 100
    assert "error" not in found


async def test_websocket_transport_is_named(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with embedded(ws=[("127.0.0.1", 0, "/ws")]) as broker:
        raw = await WsRawClient.open(ws_port(broker))
        found = await accepted(caplog, raw)
        assert found["transport"] == "ws"
        await raw.aclose()


async def test_tls_and_wss_transports_are_named(
    anyio_backend: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from stomp_proto.asyncio import connect
    from tests.interop.brokers import client_tls_context, make_tls_files

    ca, cert, key = make_tls_files(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    async with embedded(ws=[("127.0.0.1", 0, "/ws")], ssl=context) as broker:
        tls = client_tls_context(ca)
        async with connect(
            "127.0.0.1", tcp_port(broker), ssl=tls, server_hostname="localhost", heart_beat=(0, 0)
        ):
            await line(caplog, "connection accepted", transport="tls")
        url = f"wss://localhost:{ws_port(broker)}/ws"
        async with connect(url, ssl=tls, heart_beat=(0, 0)):
            await line(caplog, "connection accepted", transport="wss")


async def test_shutdown_closes_are_the_servers(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    broker = embedded()
    await broker.start()
    raw = await RawClient.connected(tcp_port(broker))
    sid = (await accepted(caplog, raw))["session"]
    await broker.stop()
    record, found = await line(caplog, "connection closed", session=sid)
    assert record.levelno == logging.INFO
    assert found["by"] == "server" and found["reason"] == "shutdown"
    await raw.aclose()


# -- refused logins: WARNING, rate-limited ---------------------------------------------


async def test_refused_login_says_why(anyio_backend: str, caplog: pytest.LogCaptureFixture) -> None:
    async with embedded(users={"guest": "guest"}) as broker:
        raw = await RawClient.open(tcp_port(broker))
        reply = await raw.connect(headers=[("login", "mallory"), ("passcode", "guess")])
        assert reply is not None and reply.command == "ERROR"
        record, found = await line(caplog, "login refused", peer=port_of(raw))
        assert record.levelno == logging.WARNING
        assert found["user"] == "mallory" and found["transport"] == "tcp"
        assert found["reason"] == "unknown login or wrong passcode"
        assert "guess" not in record.getMessage()  # never the passcode
        record, found = await line(caplog, "connection closed", session=found["session"])
        # the refusal was the WARNING; the close that follows it is ordinary
        assert record.levelno == logging.INFO
        assert found["by"] == "server" and found["reason"] == "login-refused"
        assert "user" not in found  # it never logged in


@pytest.mark.parametrize("via", ["users", "app"])
async def test_an_unknown_login_without_a_passcode_is_refused(
    anyio_backend: str, caplog: pytest.LogCaptureFixture, via: str
) -> None:
    # Regression: the users table compared users.get(login) (None for an
    # unknown login) with the passcode (None when absent), and let it in.
    from stomp_proto.app import StompApp

    options = {"tcp": [("127.0.0.1", 0)], "ws": [], "heart_beat": (0, 0)}
    if via == "users":
        broker = Broker(users={"guest": "guest"}, **options)  # type: ignore[arg-type]
    else:
        broker = StompApp(users={"guest": "guest"}).broker(**options)
    async with broker:
        raw = await RawClient.open(tcp_port(broker))
        await raw.write(stomp("CONNECT", [("accept-version", "1.2"), ("login", "nobody")]))
        reply = await raw.frame()
        assert reply is not None and reply.command == "ERROR"
        await line(caplog, "login refused", user="nobody")


async def test_refused_logins_are_rate_limited(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        frozen(embedded(users={"guest": "guest"})) as broker,
        Clients(tcp_port(broker)) as clients,
    ):
        for i in range(40):
            raw = await clients.open()
            await raw.connect(headers=[("login", f"bot{i}"), ("passcode", "x")])
        with anyio.fail_after(5):
            while broker._counters.closed["login-refused"] < 40:
                await anyio.sleep(0.01)
        assert len(records(caplog, "login refused")) == 5  # the limiter's burst
        assert broker._counters.warn.suppressed("login refused") == 35


async def test_a_connection_flood_is_rate_limited(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stomp_proto")
    async with frozen(embedded()) as broker, Clients(tcp_port(broker)) as clients:
        for _ in range(150):
            raw = await clients.open()
            await raw.write(b"\n")  # not even a CONNECT
        with anyio.fail_after(10):
            while broker.stats["connections"] < 150:
                await anyio.sleep(0.01)
        assert len(records(caplog, "connection accepted")) == 100
        assert broker._counters.info.suppressed("accepted") == 50


async def test_hostile_values_cannot_forge_fields(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    # CONNECT headers are not escaped, so a login can hold quotes and spaces
    # (a raw LF cannot be in a header: value() escapes it all the same).
    forged = 'x" reason=ok user="admin'
    async with embedded(users={"guest": "guest"}) as broker:
        raw = await RawClient.open(tcp_port(broker))
        await raw.write(stomp("CONNECT", [("accept-version", "1.2"), ("login", forged)]))
        await raw.frame()
        record, found = await line(caplog, "login refused", peer=port_of(raw))
    assert found["user"] == forged and found["reason"] == "unknown login or wrong passcode"
    assert 'user="x\\" reason=ok user=\\"admin"' in record.getMessage()


# -- abnormal closes: WARNING, with the cause ------------------------------------------


async def test_eof_without_disconnect(anyio_backend: str, caplog: pytest.LogCaptureFixture) -> None:
    async with embedded() as broker:
        raw = await RawClient.connected(tcp_port(broker))
        sid = (await accepted(caplog, raw))["session"]
        await raw.aclose()
        record, found = await line(caplog, "connection closed", session=sid)
    assert record.levelno == logging.WARNING
    assert found["by"] == "client" and found["reason"] == "eof"


async def test_eof_in_the_middle_of_a_frame(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with embedded() as broker:
        raw = await RawClient.connected(tcp_port(broker))
        sid = (await accepted(caplog, raw))["session"]
        await raw.write(b"SEND\ndestination:/queue/x\ncontent-length:100\n\nhalf")
        await raw.aclose()
        _, found = await line(caplog, "connection closed", session=sid)
    assert found["reason"] == "eof"  # the EOF came first; the truncation is the detail
    assert "middle of a frame" in found["error"]


async def test_reset(anyio_backend: str, caplog: pytest.LogCaptureFixture) -> None:
    async with embedded() as broker:
        raw = await RawClient.connected(tcp_port(broker))
        sid = (await accepted(caplog, raw))["session"]
        await raw.reset()
        record, found = await line(caplog, "connection closed", session=sid)
    assert record.levelno == logging.WARNING
    assert found["by"] == "client" and found["reason"] == "reset"


async def test_protocol_error(anyio_backend: str, caplog: pytest.LogCaptureFixture) -> None:
    async with embedded() as broker:
        raw = await RawClient.connected(tcp_port(broker))
        sid = (await accepted(caplog, raw))["session"]
        await raw.write(b"BOGUS\n\n\0")
        frames = await raw.until_closed()
        assert [f.command for f in frames] == ["ERROR"]
        record, found = await line(caplog, "connection closed", session=sid)
    assert record.levelno == logging.WARNING
    assert found["by"] == "server" and found["reason"] == "protocol-error"
    assert found["error"] == frames[0].get("message")


async def test_error_sent_for_a_refused_frame(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with embedded() as broker:
        raw = await RawClient.connected(tcp_port(broker))
        sid = (await accepted(caplog, raw))["session"]
        await raw.write(send_frame("/nowhere/x", b"lost"))
        frames = await raw.until_closed()
        assert [f.command for f in frames] == ["ERROR"]
        record, found = await line(caplog, "connection closed", session=sid)
    assert record.levelno == logging.WARNING
    assert found["by"] == "server" and found["reason"] == "error"
    assert found["error"] == "unknown destination '/nowhere/x'" == frames[0].get("message")


async def test_heart_beat_timeout(anyio_backend: str, caplog: pytest.LogCaptureFixture) -> None:
    # A client that negotiates heart-beats and then goes silent: the broker's
    # timer drops it (the test waits for that close, bounded, not on a clock).
    async with embedded(heart_beat=(100, 100)) as broker:
        raw = await RawClient.connected(tcp_port(broker), heart_beat=(100, 100))
        sid = (await accepted(caplog, raw))["session"]
        await raw.until_closed(timeout=5)
        record, found = await line(caplog, "connection closed", session=sid)
    assert record.levelno == logging.WARNING
    assert found["by"] == "server" and found["reason"] == "heart-beat-timeout"
    assert "error" in found  # the core's words: how long it was silent


async def test_connect_timeout(anyio_backend: str, caplog: pytest.LogCaptureFixture) -> None:
    async with embedded(connect_timeout=0.2) as broker:
        raw = await RawClient.open(tcp_port(broker))
        sid = (await accepted(caplog, raw))["session"]
        frames = await raw.until_closed(timeout=5)
        assert [f.command for f in frames] == ["ERROR"]
        record, found = await line(caplog, "connection closed", session=sid)
    assert record.levelno == logging.WARNING
    assert found["by"] == "server" and found["reason"] == "connect-timeout"
    assert found["error"] == "no CONNECT within 0.2 s"


async def test_slow_consumer(anyio_backend: str, caplog: pytest.LogCaptureFixture) -> None:
    async with (
        embedded(
            max_pending_bytes=64 * 1024, slow_consumer="disconnect", slow_consumer_timeout=0.2
        ) as broker,
        Clients(tcp_port(broker)) as clients,
    ):
        stalled = await clients.connected()
        sid = (await accepted(caplog, stalled))["session"]
        await stalled.subscribe("/topic/flood")  # and never reads again
        with anyio.fail_after(10):
            while sid in broker._links:
                broker.publish("/topic/flood", b"x" * 10_000)
                await anyio.sleep(0.001)
        record, found = await line(caplog, "connection closed", session=sid)
    assert record.levelno == logging.WARNING
    assert found["by"] == "server" and found["reason"] == "slow-consumer"
    assert found["error"].startswith("slow consumer: over 65536 bytes waiting")
    assert int(found["dropped"]) >= 1


async def test_abnormal_closes_are_rate_limited_per_cause(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with frozen(embedded()) as broker:
        for _ in range(12):
            raw = await RawClient.connected(tcp_port(broker))
            await raw.aclose()
        for _ in range(3):
            raw = await RawClient.connected(tcp_port(broker))
            await raw.reset()
        with anyio.fail_after(5):
            while sum(broker._counters.closed.values()) < 15:
                await anyio.sleep(0.01)
    closes = [parse(r.getMessage())["reason"] for r in records(caplog, "connection closed")]
    assert closes.count("eof") == 5  # the burst; 7 suppressed
    assert closes.count("reset") == 3  # a cause of its own: not hidden by the EOFs
    assert broker._counters.warn.suppressed("closed eof") == 7


# -- the line format -------------------------------------------------------------------


def test_values_are_bare_words_or_quoted() -> None:
    assert value("session-7") == "session-7"
    assert value("/topic/price.stock.*") == "/topic/price.stock.*"
    assert value(None) == "-"
    assert value('say "hi"') == '"say \\"hi\\""'
    assert value("a\nb\x00") == '"a\\nb\\u0000"'
    assert value("") == '""'
    assert value("x" * 500) == "x" * 200 + "..."
    assert fields([("a", 1), ("b", "two words")]) == 'a=1 b="two words"'


def test_peers_are_host_port() -> None:
    assert peer_text(("127.0.0.1", 5555)) == "127.0.0.1:5555"
    assert peer_text(("::1", 5555, 0, 0)) == "[::1]:5555"
    assert peer_text(["10.0.0.1", 80]) == "10.0.0.1:80"  # an ASGI scope's client
    assert peer_text(None) == "-"


async def test_a_connect_frame_is_only_parsed_once_logged(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    # At INFO the CONNECT's DEBUG line is not even formatted.
    caplog.set_level(logging.INFO, logger="stomp_proto")
    async with embedded() as broker:
        raw = await RawClient.open(tcp_port(broker))
        await raw.write(connect_frame())
        await raw.frame()
        await line(caplog, "login accepted")
    assert not records(caplog, "connect")


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_broker_rejects_a_bad_stats_interval(bad: float) -> None:
    with pytest.raises(ValueError, match="stats_interval"):
        Broker(stats_interval=bad)


# -- the docs' sample ------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
#: What differs from run to run: the client's port, how long, the bytes (the
#: CONNECTED's server header carries the version).
_VARIABLE = [
    (re.compile(r"peer=127\.0\.0\.1:\d+"), "peer=127.0.0.1:PORT"),
    (re.compile(r"duration=\d+\.\d+s"), "duration=Ns"),
    (re.compile(r"bytes_(in|out)=\d+"), r"bytes_\1=N"),
]


def masked(text: str) -> str:
    for pattern, replacement in _VARIABLE:
        text = pattern.sub(replacement, text)
    return text


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


async def sample_session_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Four connections, as docs/operating.rst shows them: a TCP login that
    disconnects, a refused WebSocket login, a refused frame, a hang-up."""
    caplog.set_level(logging.INFO, logger="stomp_proto")
    fabrice = [("login", "fabrice"), ("passcode", "fab123")]
    async with embedded(
        users={"fabrice": "fab123"}, ws=[("127.0.0.1", 0, "/ws")], heart_beat=(10000, 10000)
    ) as broker:
        tcp, ws = tcp_port(broker), ws_port(broker)
        raw = await RawClient.connected(tcp, heart_beat=(10000, 10000), headers=fabrice)
        await raw.send("SUBSCRIBE", [("id", "0"), ("destination", "/topic/price.stock.*")])
        await raw.send("DISCONNECT", [("receipt", "bye")])
        await raw.receipt("bye")
        await line(caplog, "connection closed", session="session-1")
        mallory = await WsRawClient.open(ws)
        await mallory.connect(headers=[("login", "mallory"), ("passcode", "guess")])
        await line(caplog, "connection closed", session="session-2")
        lost = await WsRawClient.open(ws)
        await lost.connect(heart_beat=(10000, 10000), headers=fabrice)
        await lost.write(send_frame("/nowhere", b"?"))
        await lost.until_closed()
        await line(caplog, "connection closed", session="session-3")
        gone = await RawClient.connected(tcp, heart_beat=(10000, 10000), headers=fabrice)
        await gone.aclose()
        await line(caplog, "connection closed", session="session-4")
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return [formatter.format(r) for r in caplog.records if r.name == LOGGER]


async def test_the_docs_log_sample_is_what_the_broker_logs(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    logged = [masked(text) for text in await sample_session_lines(caplog)]
    # the docs' lines start with the time, as the command line logs them
    sample = [masked(text.split(" ", 2)[2]) for text in doc_block("sample-logs")]
    assert sample == logged
