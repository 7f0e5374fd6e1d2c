"""``stomp-proto run MODULE:ATTR`` and the command line's one-line failures."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio

from stomp_proto.asyncio import connect

APP = """
from stomp_proto.app import StompApp

app = StompApp(users={"fabrice": "fab123"})


@app.message("/trade", send_to_user="/queue/position-updates")
def trade(message):
    order = message.json()
    return {"ticker": order["ticker"], "shares": order["shares"], "user": message.user}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stomp_proto._cli", *args],
        cwd=cwd,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(proc: subprocess.Popen[str]) -> str:
    lines = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        lines.append(line)
        if "ready" in line or not line:
            break
    return "".join(lines)


def test_run_serves_an_application_module(tmp_path: Path) -> None:
    (tmp_path / "portfolio_app.py").write_text(textwrap.dedent(APP))
    port = free_port()
    proc = start(
        ["run", "portfolio_app:app", "--tcp", f"127.0.0.1:{port}", "--ws", "127.0.0.1:0/ws"],
        tmp_path,
    )
    try:
        log = wait_ready(proc)
        assert f"STOMP over TCP on 127.0.0.1:{port}" in log, log

        async def trade() -> dict[str, object]:
            async with connect(
                "127.0.0.1", port, login="fabrice", passcode="fab123", heart_beat=(0, 0)
            ) as c:
                updates = await c.subscribe("/user/queue/position-updates")
                await c.send("/app/trade", json.dumps({"ticker": "MMM", "shares": 3}))
                with anyio.fail_after(5):
                    return dict(json.loads((await updates.get()).body))

        assert anyio.run(trade) == {"ticker": "MMM", "shares": 3, "user": "fabrice"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_run_explains_a_bad_target(tmp_path: Path) -> None:
    for target, message in [
        ("nowhere_module:app", "cannot import 'nowhere_module'"),
        ("json:nothing", "'json' has no 'nothing'"),
        ("json:dumps", "is not a StompApp"),
        ("no-colon", "expected MODULE:ATTR"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "stomp_proto._cli", "run", target],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 1 and message in done.stderr, (target, done.stderr)


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "stomp_proto._cli",
                "broker",
                "--tcp",
                f"127.0.0.1:{port}",
                "--ws",
                "127.0.0.1:0/ws",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"cannot listen for STOMP on 127.0.0.1:{port}: Address already in use" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("stomp-proto: ") and "in use" in last, done.stderr
