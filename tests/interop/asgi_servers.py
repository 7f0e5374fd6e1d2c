"""ASGI servers (uvicorn, hypercorn) serving ``asgi_app.py`` as fixtures, for
the interop tests of the ASGI endpoint (issue 13).

:class:`AsgiServer` is :class:`~tests.interop.ourapp.OurApp` with another
command line: ``python -m uvicorn`` (its ``websockets``, ``websockets-sansio``
and ``wsproto`` implementations) or ``python -m hypercorn`` (its asyncio and
trio workers) on a free loopback port, serving ``tests.interop.asgi_app:api``
(or ``:bare``), whose broker also listens on STOMP over TCP on
``stomp_port``. Ready when a CONNECT over TCP gets CONNECTED and the
WebSocket upgrade on ``/ws`` is answered 101; stopped by its PID (SIGTERM:
the server's graceful shutdown, which runs the lifespan's end).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .brokers import HOST, BrokerNotInstalled, BrokerStartError
from .ourapp import OurApp, unexpected_tracebacks
from .ourbroker import require_peer

#: server name -> the command line after ``python -m``, with {app} and {port}.
SERVERS = {
    "uvicorn-websockets": [
        "uvicorn",
        "{app}",
        "--host",
        HOST,
        "--port",
        "{port}",
        "--ws",
        "websockets",
    ],
    "uvicorn-websockets-sansio": [
        "uvicorn",
        "{app}",
        "--host",
        HOST,
        "--port",
        "{port}",
        "--ws",
        "websockets-sansio",
    ],
    "uvicorn-wsproto": ["uvicorn", "{app}", "--host", HOST, "--port", "{port}", "--ws", "wsproto"],
    "hypercorn-asyncio": [
        "hypercorn",
        "{app}",
        "--bind",
        f"{HOST}:{{port}}",
        "--worker-class",
        "asyncio",
    ],
    "hypercorn-trio": [
        "hypercorn",
        "{app}",
        "--bind",
        f"{HOST}:{{port}}",
        "--worker-class",
        "trio",
    ],
}
APP = "tests.interop.asgi_app:api"
BARE = "tests.interop.asgi_app:bare"


class AsgiServer(OurApp):
    """``python -m uvicorn|hypercorn tests.interop.asgi_app:ATTR`` (see the module docstring)."""

    ws_path = "/ws"

    def __init__(self, server: str, app: str = APP) -> None:
        self.server = server
        self.app = app
        self.name = f"{server} {app.rpartition(':')[2]}"
        super().__init__()

    @classmethod
    def missing_reason(cls) -> str | None:
        import importlib.util

        for module in ("uvicorn", "hypercorn", "fastapi", "stomp_proto.asgi"):
            if importlib.util.find_spec(module) is None:
                return f"{module} is not installed (pip install -e '.[test]')"
        return None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.ws_port}"

    def command(self) -> list[str]:
        args = [a.format(app=self.app, port=self.ws_port) for a in SERVERS[self.server]]
        return [sys.executable, "-m", *args]

    def _spawn(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
        env["STOMP_TCP_PORT"] = str(self.stomp_port)
        root = str(Path(__file__).resolve().parents[2])  # the checkout's package
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self._popen(self.command(), env=env, log=self.log_file, cwd=Path(root))


def serve(server: str, app: str = APP) -> Iterator[AsgiServer]:
    """The server, started; a failure to start fails the test (with its log)."""
    try:
        process = AsgiServer(server, app)
    except BrokerNotInstalled as exc:
        require_peer(str(exc))
        raise  # pragma: no cover - require_peer skipped or failed
    try:
        process.start()
    except BrokerStartError as exc:
        process.close()
        pytest.fail(str(exc), pytrace=False)
    try:
        yield process
    finally:
        process.close()


def checked(process: AsgiServer) -> Iterator[AsgiServer]:
    """``process`` for one test, which fails if the server logged a traceback meanwhile."""
    offset = process.log_size()
    yield process
    unexpected = unexpected_tracebacks(process.log_since(offset))
    if unexpected:
        pytest.fail(f"{process.name} logged a traceback during the test:\n{unexpected[0][-4000:]}")


__all__ = ["APP", "BARE", "SERVERS", "AsgiServer", "checked", "serve"]
