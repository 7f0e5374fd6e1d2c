"""Our reference broker (``python -m stomp_proto.broker``) as a fixture, for
the interop tests with clients nobody here wrote (stomp.py, stompjs).

:class:`OurBroker` is a :class:`~tests.interop.brokers.Broker` like RabbitMQ
and ActiveMQ: a subprocess in its own temporary directory, on free loopback
ports (STOMP over TCP on ``stomp_port``, STOMP over WebSocket at ``ws_url``),
started once per session, ready when a real STOMP CONNECT gets CONNECTED
(and the WebSocket upgrade is answered with 101), stopped by its PID.

Also here: :func:`require_peer`, the skip-or-fail rule for a missing client
(stomp.py, node, the npm packages): a skip on a developer's machine, a failure
with ``CI=true`` (interop never passes in CI by skipping).

The fixtures (``ourbroker`` and the session one behind it) are registered by
importing them into a test module or a conftest::

    from .ourbroker import _ourbroker_session, ourbroker  # noqa: F401
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from .brokers import (
    HOST,
    Broker,
    BrokerNotInstalled,
    BrokerStartError,
    _probe_websocket,
    free_ports,
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_peer(missing: str | None) -> None:
    """Skip the test when ``missing`` (the reason a peer can't run) is set;
    fail it instead under ``CI=true``."""
    if missing is None:
        return
    if in_ci():
        pytest.fail(f"{missing} (CI=true: interop tests never skip)", pytrace=False)
    pytest.skip(missing)


class OurBroker(Broker):
    """``python -m stomp_proto.broker`` with one TCP and one WebSocket listener
    and one user (``login``/``passcode``)."""

    name = "stomp-proto"
    login = "interop"
    passcode = "interop-secret"
    vhost = "localhost"
    ws_path = "/ws"
    start_timeout = 30.0
    stop_timeout = 15.0

    def __init__(self) -> None:
        super().__init__()
        self.stomp_port, ws_port = free_ports(2)
        self.ws_port = ws_port
        self.log_file = self.dir / "broker.log"

    @classmethod
    def missing_reason(cls) -> str | None:
        if importlib.util.find_spec("stomp_proto.broker") is None:
            return "stomp_proto.broker is not importable (the reference broker is missing)"
        return None

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ws_port}{self.ws_path}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "stomp_proto.broker",
            "--tcp",
            f"{HOST}:{self.stomp_port}",
            "--ws",
            f"{HOST}:{self.ws_port}{self.ws_path}",
            "--user",
            f"{self.login}:{self.passcode}",
            # What CONNECTED offers: the smallest interval the broker can beat
            # at. The default (10 s, like Spring) makes a client that asks for
            # 1000 ms get beats every 10 s, too slow for a test that idles 3.5 s.
            "--heart-beat",
            "1000,1000",
        ]

    def _spawn(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
        # The checkout's package, whatever the working directory.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self._popen(self.command(), env=env, log=self.log_file)

    def _log_files(self) -> Sequence[Path]:
        return [self.log_file]

    def _probe(self) -> None:
        # CONNECTED is the readiness signal; the DISCONNECT receipt is left to
        # the tests, so that its absence fails a test and not the startup.
        self.connect_client(timeout=3.0).close()
        if self.ws_port is not None:
            _probe_websocket(self.host, self.ws_port, self.ws_path)

    def log_size(self) -> int:
        try:
            return self.log_file.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        """What the broker logged after ``offset`` (from :meth:`log_size`)."""
        try:
            with self.log_file.open("rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


_SESSION: list[OurBroker] = []


@pytest.fixture(scope="session")
def _ourbroker_session() -> Iterator[OurBroker]:
    # One broker per session even when several modules import this fixture.
    if _SESSION and not _SESSION[0]._closed:
        yield _SESSION[0]
        return
    try:
        broker = OurBroker()
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
def ourbroker(_ourbroker_session: OurBroker) -> Iterator[OurBroker]:
    """Our broker, started again if an earlier test left it stopped. A test
    fails when the broker logged a Python traceback while it ran."""
    broker = _ourbroker_session
    if not broker.running:
        broker.stop()
        try:
            broker.start()
        except BrokerStartError as exc:
            pytest.fail(str(exc), pytrace=False)
    offset = broker.log_size()
    yield broker
    logged = broker.log_since(offset)
    if "Traceback (most recent call last)" in logged:
        pytest.fail(f"{broker.name} logged a traceback during the test:\n{logged[-4000:]}")


__all__ = ["OurBroker", "ourbroker", "require_peer"]
