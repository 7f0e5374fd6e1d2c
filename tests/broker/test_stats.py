"""The periodic stats line (Spring's ``WebSocketMessageBrokerStats``).

The formatter is called directly after known traffic (every figure checked),
and the periodic task is run with a short interval; ``0`` turns it off.
"""

from __future__ import annotations

import logging

import anyio
import pytest

from stomp_proto.broker import Broker
from stomp_proto.broker.__main__ import options, parser

from .faultkit import Clients, RawClient, embedded, send_frame, tcp_port
from .test_logging import parse

pytestmark = pytest.mark.anyio

STATS = "stomp_proto.broker.stats"


def stats_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == STATS]


async def settled(broker: Broker, closed: int) -> None:
    """Until ``closed`` connections have ended (their cleanup runs after the close)."""
    with anyio.fail_after(5):
        while sum(broker._counters.closed.values()) < closed:
            await anyio.sleep(0.01)


async def test_the_line_after_known_traffic(anyio_backend: str) -> None:
    async with (
        embedded(users={"app": "s3cret"}, max_pending_bytes=64 * 1024) as broker,
        Clients(tcp_port(broker)) as clients,
    ):
        port = tcp_port(broker)
        login = [("login", "app"), ("passcode", "s3cret")]
        # one that works and leaves politely
        polite = await RawClient.connected(port, headers=login)
        await polite.write(send_frame("/queue/orders", b"1"))
        await polite.write(send_frame("/queue/orders", b"2"))
        await polite.write(send_frame("/queue/audit", b"3", [("receipt", "r")]))
        await polite.receipt("r")
        await polite.send("DISCONNECT", [("receipt", "bye")])
        await polite.receipt("bye")
        # one that is refused, one that hangs up
        refused = await RawClient.open(port)
        await refused.connect(headers=[("login", "app"), ("passcode", "wrong")])
        rude = await RawClient.connected(port, headers=login)
        await rude.aclose()
        # one that subscribes and stops reading: it misses topic copies
        stalled = await clients.connected(headers=login)
        await stalled.subscribe("/topic/flood")
        while not broker.stats["dropped"]:
            broker.publish("/topic/flood", b"x" * 10_000)
            await anyio.sleep(0)
        await settled(broker, 3)
        line = broker.stats_line()
        assert line.startswith("stats ")
        stats = parse(line)
        assert stats["sessions"] == "1" and stats["connections"] == "1"
        assert stats["transports"] == "tcp:1"
        assert stats["sessions_total"] == "3" and stats["connections_total"] == "4"
        assert stats["closed"] == "disconnect:1,eof:1,login-refused:1"
        assert stats["abnormal"] == "2"
        assert stats["in"] == "CONNECT:4,DISCONNECT:1,SEND:3,SUBSCRIBE:1"
        out = dict(item.split(":") for item in stats["out"].split(","))
        assert out.keys() == {"CONNECTED", "ERROR", "MESSAGE", "RECEIPT"}
        assert out["CONNECTED"] == "3" and out["ERROR"] == "1" and out["RECEIPT"] == "3"
        assert stats["subscriptions"] == "1"
        assert stats["queues"] == "2" and stats["queued"] == "3"
        assert stats["deepest"] == "/queue/orders:2,/queue/audit:1"
        assert int(stats["queued_bytes"]) > 3 * 200  # whole frames, overhead included
        assert int(stats["dropped"]) == broker.stats["dropped"] > 0
        assert int(stats["delivered"]) == broker.stats["delivered"]
        assert stats["published"] == str(broker.stats["published"])
        assert int(stats["pending_bytes"]) > 0  # the stalled one's backlog
        assert "handler_calls" not in stats  # no application handlers here


async def test_the_line_is_logged_every_interval(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=STATS)
    async with embedded(stats_interval=0.05):
        with anyio.fail_after(5):
            while len(stats_lines(caplog)) < 2:
                await anyio.sleep(0.01)
    lines = stats_lines(caplog)
    assert all(line.startswith("stats sessions=0 ") for line in lines)
    assert caplog.records[-1].name == STATS  # and a last one as it stops


async def test_zero_turns_it_off(anyio_backend: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=STATS)
    async with embedded(stats_interval=0) as broker:
        raw = await RawClient.connected(tcp_port(broker))
        await raw.aclose()
        await settled(broker, 1)
    assert stats_lines(caplog) == []  # not even the last one


def test_command_line_option() -> None:
    assert options(parser().parse_args([]))["stats_interval"] == 1800.0  # Spring's 30 minutes
    assert options(parser().parse_args(["--stats-interval", "60"]))["stats_interval"] == 60.0
    assert options(parser().parse_args(["--stats-interval", "0"]))["stats_interval"] == 0.0
    assert Broker(**options(parser().parse_args(["--stats-interval", "0"]))).stats_interval == 0


@pytest.mark.parametrize("bad", ["-1", "soon", "nan"])
def test_command_line_rejects_a_bad_interval(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(["--stats-interval", bad])
    assert exit_.value.code == 2
    assert "--stats-interval: expected a number of seconds (0: none)" in capsys.readouterr().err
