"""Fixtures for the interop tests: real brokers, each started once per session.

``rabbitmq`` (with Web-STOMP and a STOMP-over-TLS listener; ``rabbitmq_tls``
is the same broker, for tests that need TLS) and ``activemq``; ``broker`` is
parametrized over both. Each is a :class:`~tests.interop.brokers.Broker`.

A broker that is not installed skips its tests, except with ``CI=true``,
where it fails them: CI must never pass by skipping interop. A broker that is
installed and does not start fails, with its log tail in the message.

Every test under this directory gets the ``interop`` marker
(``pytest -m "not interop"`` runs without brokers).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .brokers import ActiveMQ, Broker, BrokerNotInstalled, BrokerStartError, RabbitMQ

HERE = Path(__file__).resolve().parent
_STARTED: list[Broker] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.interop)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _STARTED:
        return
    terminalreporter.section("interop brokers")
    for broker in _STARTED:
        times = ", ".join(f"{t:.1f} s" for t in broker.startup_times)
        terminalreporter.write_line(
            f"{broker.name}: startup (spawn to CONNECTED) {times or 'never started'}"
        )
        for death in broker.unexpected_exits:
            terminalreporter.write_line(f"{broker.name}: {death}")


def _session_broker(factory: Callable[[], Broker]) -> Iterator[Broker]:
    try:
        broker = factory()
    except BrokerNotInstalled as exc:
        if in_ci():
            pytest.fail(f"{exc} (CI=true: interop tests never skip)", pytrace=False)
        pytest.skip(str(exc))
    try:
        broker.start()
    except BrokerStartError as exc:
        broker.close()
        pytest.fail(str(exc), pytrace=False)
    _STARTED.append(broker)
    try:
        yield broker
    finally:
        broker.close()


def _running(broker: Broker) -> Broker:
    """The session broker, started again if an earlier test left it stopped."""
    if not broker.running:
        broker.stop()
        try:
            broker.start()
        except BrokerStartError as exc:
            pytest.fail(str(exc), pytrace=False)
    return broker


@pytest.fixture(scope="session")
def _rabbitmq_session() -> Iterator[Broker]:
    yield from _session_broker(lambda: RabbitMQ(tls=True))


@pytest.fixture(scope="session")
def _activemq_session() -> Iterator[Broker]:
    yield from _session_broker(ActiveMQ)


@pytest.fixture
def rabbitmq(_rabbitmq_session: Broker) -> Broker:
    """RabbitMQ 3.10: STOMP on ``stomp_port``, Web-STOMP on ``ws_port`` (``/ws``),
    STOMP over TLS on ``tls_port`` (certificate for localhost/127.0.0.1 signed by
    ``ca_file``)."""
    return _running(_rabbitmq_session)


@pytest.fixture
def rabbitmq_tls(rabbitmq: Broker) -> Broker:
    """The ``rabbitmq`` broker, for tests that use its TLS listener."""
    assert rabbitmq.tls_port is not None
    assert rabbitmq.ca_file is not None
    return rabbitmq


@pytest.fixture
def activemq(_activemq_session: Broker) -> Broker:
    """ActiveMQ Classic 5.17: STOMP (TCP only) on ``stomp_port``."""
    return _running(_activemq_session)


@pytest.fixture(params=["rabbitmq", "activemq"])
def broker(request: pytest.FixtureRequest) -> Broker:
    """Each broker in turn."""
    result: Broker = request.getfixturevalue(request.param)
    return result
