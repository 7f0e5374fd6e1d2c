"""``stomp-proto check`` against RabbitMQ 3.10 and ActiveMQ 5.17 (the interop fixtures).

Each run must give exactly its column of tests/check/expected.py: the known
deviations of each broker (../shared/stomp-notes.md §5) show up as the FAILs
and WARNs they are, and every other check passes, so that a change in the
checker or in a broker is noticed. docs/check.rst shows the same columns.
"""

from __future__ import annotations

import pytest

from stomp_proto.check import Report, run

from ..check.expected import TIMEOUT, expected
from ..check.verdicts import differences
from .brokers import Broker


def url(broker: Broker, scheme: str = "stomp", port: int | None = None) -> str:
    return f"{scheme}://{broker.login}:{broker.passcode}@{broker.host}:{port or broker.stomp_port}"


def assert_column(report: Report, column: str) -> None:
    found = differences(report, column)
    assert found == [], "\n".join(found)
    assert not [r.key for r in report.results if (r.reason or "").startswith("checker error")]
    assert report.seconds < 60


def test_rabbitmq(rabbitmq: Broker) -> None:
    report = run(url(rabbitmq), vhost=rabbitmq.vhost, timeout=TIMEOUT)
    assert report.server is not None and report.server.startswith("RabbitMQ/3.10")
    assert not report.passed
    assert_column(report, "rabbitmq")


def test_rabbitmq_web_stomp(rabbitmq: Broker) -> None:
    assert rabbitmq.ws_port is not None
    target = url(rabbitmq, "ws", rabbitmq.ws_port) + "/ws"
    report = run(target, vhost=rabbitmq.vhost, timeout=TIMEOUT)
    assert_column(report, "rabbitmq-ws")


def test_activemq(activemq: Broker) -> None:
    report = run(url(activemq), vhost=activemq.vhost, timeout=TIMEOUT)
    assert report.server is not None and report.server.startswith("ActiveMQ/5.17")
    assert not report.passed
    assert_column(report, "activemq")


@pytest.mark.parametrize("selection", [["connect"], ["framing/frame-layout", "receipts"]])
def test_rabbitmq_over_tls(rabbitmq_tls: Broker, selection: list[str]) -> None:
    """stomps:// gives the verdicts of stomp:// (the same broker, the same checks)."""
    assert rabbitmq_tls.tls_port is not None and rabbitmq_tls.ca_file is not None
    report = run(
        url(rabbitmq_tls, "stomps", rabbitmq_tls.tls_port),
        vhost=rabbitmq_tls.vhost,
        ca_file=str(rabbitmq_tls.ca_file),
        only=selection,
        timeout=TIMEOUT,
    )
    assert report.results
    wanted = expected("rabbitmq")
    assert report.verdicts() == {key: wanted[key] for key in report.verdicts()}
    assert report.target.startswith("stomps://guest@127.0.0.1:")
