"""The application of ``interop_app.py`` served by ``stomp-proto run
tests.interop.interop_app:app`` as a fixture, for the interop tests of the
application layer with clients nobody here wrote (stompjs, stomp.py).

:class:`OurApp` is :class:`~tests.interop.ourbroker.OurBroker` with another
command line: a subprocess on free loopback ports (STOMP over TCP on
``stomp_port``, over WebSocket at ``ws_url``), ready when a real CONNECT as
``alice`` gets CONNECTED, started once per session and stopped by its PID.
:attr:`OurApp.users` holds both logins.

The fixtures are registered by importing them into a test module::

    from .ourapp import _ourapp_session, ourapp  # noqa: F401
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import ClassVar

import pytest

from .brokers import HOST, BrokerNotInstalled, BrokerStartError
from .interop_app import BOOM, USERS
from .ourbroker import OurBroker, require_peer

TARGET = "tests.interop.interop_app:app"
TRACEBACK = "Traceback (most recent call last)"


class OurApp(OurBroker):
    """``stomp-proto run tests.interop.interop_app:app``, one TCP and one
    WebSocket listener; ``login``/``passcode`` are alice's."""

    name = "stomp-proto-run"
    login = "alice"
    passcode = USERS["alice"]
    #: Every login of the application, login -> passcode.
    users: ClassVar[dict[str, str]] = dict(USERS)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "stomp_proto._cli",
            "run",
            TARGET,
            "--tcp",
            f"{HOST}:{self.stomp_port}",
            "--ws",
            f"{HOST}:{self.ws_port}{self.ws_path}",
            # As OurBroker: a client asking for 1000 ms beats gets them.
            "--heart-beat",
            "1000,1000",
        ]


def unexpected_tracebacks(logged: str) -> list[str]:
    """The tracebacks in ``logged`` other than those of ``/app/boom``'s
    handler (the one failure the tests cause on purpose), each with the line
    logged before it."""
    lines = logged.splitlines()
    found = []
    for i, line in enumerate(lines):
        if TRACEBACK not in line:
            continue
        before = lines[i - 1] if i else ""
        after = lines[i + 1 : i + 40]
        expected = "handler for /app/boom failed" in before and any(
            f"RuntimeError: {BOOM}" in later for later in after
        )
        if not expected:
            found.append("\n".join([before, *lines[i : i + 40]]))
    return found


_SESSION: list[OurApp] = []


@pytest.fixture(scope="session")
def _ourapp_session() -> Iterator[OurApp]:
    # One process per session even when several modules import this fixture.
    if _SESSION and not _SESSION[0]._closed:
        yield _SESSION[0]
        return
    try:
        broker = OurApp()
    except BrokerNotInstalled as exc:
        require_peer(str(exc))
        raise  # pragma: no cover - require_peer skipped or failed
    try:
        broker.start()
    except BrokerStartError as exc:
        broker.close()
        pytest.fail(str(exc), pytrace=False)
    _SESSION[:] = [broker]
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def ourapp(_ourapp_session: OurApp) -> Iterator[OurApp]:
    """The served application, started again if an earlier test left it
    stopped. A test fails when the process logged a traceback while it ran,
    other than ``/app/boom``'s."""
    broker = _ourapp_session
    if not broker.running:
        broker.stop()
        try:
            broker.start()
        except BrokerStartError as exc:
            pytest.fail(str(exc), pytrace=False)
    offset = broker.log_size()
    yield broker
    unexpected = unexpected_tracebacks(broker.log_since(offset))
    if unexpected:
        pytest.fail(f"{broker.name} logged a traceback during the test:\n{unexpected[0][-4000:]}")


__all__ = ["OurApp", "ourapp", "unexpected_tracebacks"]
