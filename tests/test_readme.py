"""README.md's code blocks run as written.

Every fenced ``python`` block runs in a fresh interpreter, as a user who pasted
it into a file would run it, and what its ``print(...)  # comment`` lines
promise must be in its output (``...`` in a comment stands for anything).

Ports, the one rewriting: a block that talks to ``stomp-proto broker`` names
the broker's default ports as the literals ``61613`` (TCP) and ``15674``
(WebSocket). So that the suite never depends on those ports being free, the
test starts ``stomp-proto broker --tcp 127.0.0.1:P --ws 127.0.0.1:Q/ws`` on
free loopback ports P and Q and replaces every ``61613`` with P and ``15674``
with Q in the block before running it. A block that starts its own
``Broker(...)`` gets the same replacement and no broker subprocess.

Every ``sh`` line is in :data:`COMMANDS`, which says what the test does with it:
run it, run the broker it starts and stop it with Ctrl-C (SIGINT), check that
.ci/run runs the same test command, or check what it names without running it
(installers). A new command in the README fails the test until it is listed.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent

#: The pytest line of the README's test command (``bash .ci/test``).
TEST_COMMAND = "python -bb -m pytest --cov --cov-report=term-missing --cov-fail-under=100"
#: The main job: install, then the demo (runs until Ctrl-C).
MAIN_JOB = "pip install -e '.[broker]' && stomp-proto demo"

#: Every sh line in the README (its comment stripped) -> what the test does with it.
COMMANDS = {
    MAIN_JOB: "demo",  # the extra must exist; the demo serves its page and stops on Ctrl-C
    "bash .ci/test": "ci",  # installs and runs the whole suite: .ci/run must run this same line
    "stomp-proto broker": "broker",  # runs until Ctrl-C: start it, connect, SIGINT, exit 0
    "stomp-proto --help": "run",
    "stomp-proto broker --help": "run",
    "python -m stomp_proto": "run",
}


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", README, flags=re.MULTILINE | re.DOTALL)


def sh_lines() -> list[str]:
    lines = []
    for block in blocks("sh"):
        for line in block.splitlines():
            command = line.split(" #", 1)[0].strip()
            if command:
                lines.append(command)
    return lines


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def script(name: str) -> str:
    """A console script of the interpreter running the tests (its venv's, not PATH's)."""
    found = shutil.which(name, path=str(BIN))
    assert found, f"{name} is not installed beside {sys.executable}: pip install -e '.[test]'"
    return found


def argv(command: str) -> list[str]:
    words = command.split()
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    return [script(words[0]), *words[1:]]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Running(NamedTuple):
    proc: subprocess.Popen[str]
    tcp: int
    ws: int
    log: Path  # its stdout and stderr (a pipe nobody reads could fill and stall it)


@contextmanager
def broker(command: str = "stomp-proto broker") -> Iterator[Running]:
    """``command`` on free ports (``--tcp``/``--ws`` added), once both ports accept."""
    tcp, ws = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "broker.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [*argv(command), "--tcp", f"127.0.0.1:{tcp}", "--ws", f"127.0.0.1:{ws}/ws"],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        try:
            deadline = time.monotonic() + 30
            while not (_listening(tcp) and _listening(ws)):
                assert proc.poll() is None, f"broker exited: {log.read_text()}"
                assert time.monotonic() < deadline, f"broker did not listen: {log.read_text()}"
                time.sleep(0.05)  # polling for start-up, not timing the protocol
            yield Running(proc, tcp, ws, log)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


def promised(block: str) -> list[str]:
    """The outputs the block's ``print(...)  # ...`` comments promise."""
    return [
        line.split("  # ", 1)[1].strip()
        for line in block.splitlines()
        if "print(" in line and "  # " in line
    ]


def shows(output: str, promise: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in promise.split("..."))
    return any(re.fullmatch(pattern, line) for line in output.splitlines())


def run_python(block: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "example.py"
    path.write_text(block, encoding="utf-8")
    # In a scratch directory, as a user would: stomp_proto comes from the install.
    return subprocess.run(
        [sys.executable, str(path)],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


PYTHON_BLOCKS = blocks("python")


def test_the_readme_has_the_blocks_this_file_runs() -> None:
    assert len(PYTHON_BLOCKS) == 4  # sans-IO, asyncio, blocking, embedded broker
    assert all(promised(block) for block in PYTHON_BLOCKS)
    assert set(sh_lines()) == set(COMMANDS), "list a new README command in COMMANDS"


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_python_block_runs(index: int, tmp_path: Path) -> None:
    block = PYTHON_BLOCKS[index]
    assert "61613" in block, "a block names the broker's port as 61613, the default"
    if "Broker(" in block:  # starts its own broker
        tcp, ws = free_port(), free_port()
        result = run_python(block.replace("61613", str(tcp)).replace("15674", str(ws)), tmp_path)
    else:
        with broker() as (_, tcp, ws, _log):
            result = run_python(
                block.replace("61613", str(tcp)).replace("15674", str(ws)), tmp_path
            )
    assert result.returncode == 0, result.stderr
    for promise in promised(block):
        assert shows(result.stdout, promise), (promise, result.stdout)


@pytest.mark.parametrize("command", [c for c, what in COMMANDS.items() if what == "run"])
def test_command_runs(command: str) -> None:
    result = subprocess.run(
        argv(command), check=False, capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    if command == "stomp-proto --help":
        assert all(f"  {name} " in result.stdout for name in ("broker", "run", "demo"))
    if command == "stomp-proto broker --help":
        assert result.stdout.startswith("usage: stomp-proto broker")
    if command == "python -m stomp_proto":
        assert "client state: CLOSED, server state: CLOSED" in result.stdout


def test_the_broker_command_serves_and_stops_on_ctrl_c() -> None:
    with broker("stomp-proto broker") as (proc, tcp, _, log):
        with socket.create_connection(("127.0.0.1", tcp), timeout=10) as sock:
            sock.sendall(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
            assert sock.recv(65536).startswith(b"CONNECTED\n")
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        proc.wait(timeout=30)
        output = log.read_text()
    assert proc.returncode == 0, output
    assert "Traceback" not in output


def test_install_commands_name_what_exists() -> None:
    extras = importlib.metadata.metadata("stomp-proto").get_all("Provides-Extra") or []
    named = re.search(r"\.\[([\w,]+)\]", MAIN_JOB)
    assert named is not None
    assert set(named.group(1).split(",")) <= set(extras), MAIN_JOB
    test = (ROOT / ".ci" / "test").read_text(encoding="utf-8")
    wanted = re.search(r"-e '\.\[([\w,]+)\]'", test)
    assert wanted is not None and set(wanted.group(1).split(",")) <= set(extras)
    assert "bash .ci/install-peers" in test.splitlines()


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "bash .ci/test" in ci
    test = (ROOT / ".ci" / "test").read_text(encoding="utf-8").splitlines()
    assert f'{TEST_COMMAND} "$@"' in test
    assert os.access(ROOT / ".ci" / "run", os.R_OK) and os.access(ROOT / ".ci" / "test", os.R_OK)


def test_the_main_job_serves_the_demo_and_stops_on_ctrl_c() -> None:
    demo = MAIN_JOB.split("&&")[1].split()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "demo.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [script(demo[0]), *demo[1:], "--port", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        try:
            deadline = time.monotonic() + 30
            while not _listening(port):
                assert proc.poll() is None, f"demo exited: {log.read_text()}"
                assert time.monotonic() < deadline, f"demo did not listen: {log.read_text()}"
                time.sleep(0.05)  # polling for start-up, not timing the protocol
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                page = b""
                while chunk := sock.recv(65536):
                    page += chunk
            assert page.startswith(b"HTTP/1.1 200 OK"), page[:200]
            assert b"/portfolio" in page or b"stomp.umd.min.js" in page
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
            proc.wait(timeout=30)
            assert proc.returncode == 0, log.read_text()
            assert "Traceback" not in log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
