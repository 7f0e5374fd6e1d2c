"""docs/check.rst stays true: its verdict table is tests/check/expected.py (which
the runs against real servers assert), its sample report's figures are
RabbitMQ's column, its command lines parse, and its Python example runs."""

from __future__ import annotations

import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from stomp_proto.check._cli import parser

from .expected import COLUMNS, expected, keys
from .verdicts import BEGIN, END, PAGE, rewrite, table

ROOT = Path(__file__).resolve().parents[2]
TEXT = PAGE.read_text(encoding="utf-8")


def test_the_verdict_table_is_made_from_the_expected_verdicts() -> None:
    assert BEGIN in TEXT and END in TEXT
    assert rewrite(TEXT) == TEXT, "run: python -m tests.check.verdicts"
    rows = table().count("   * - ``")
    assert rows == len(keys())
    for heading, _ in COLUMNS.values():
        assert f"     - {heading}\n" in TEXT


def test_the_page_is_in_the_toctree() -> None:
    index = (ROOT / "docs" / "index.rst").read_text(encoding="utf-8")
    assert re.search(r"^   check$", index, flags=re.MULTILINE)


def test_the_sample_report_is_rabbitmqs_column() -> None:
    counts = Counter(expected("rabbitmq").values())
    summary = (
        f"{len(keys())} results: {counts['PASS']} PASS, {counts['FAIL']} FAIL, "
        f"{counts['WARN']} WARN, {counts['SKIP']} SKIP in "
    )
    assert summary in TEXT
    assert f"; {len(keys())} checks\n" in TEXT
    assert f"{counts['FAIL']} MUST requirements failed" in TEXT
    for line in TEXT.splitlines():
        match = re.match(r"\s+(PASS|FAIL|WARN|SKIP)  \w+ +#\d+ +(\S+) +([\w/.-]+):", line)
        if match:
            verdict, version, check_id = match.groups()
            key = check_id if version == "-" else f"{check_id}@{version}"
            assert expected("rabbitmq")[key] == verdict, line


def commands() -> list[str]:
    return [
        line.strip()[2:]
        for line in TEXT.splitlines()
        if line.strip().startswith("$ stomp-proto check")
    ]


@pytest.mark.parametrize("command", commands())
def test_the_command_lines_parse(command: str) -> None:
    argv = shlex.split(command.partition(">")[0])[2:]
    args = parser().parse_args(argv)
    assert args.url.startswith(("stomp://", "stomps://", "ws://", "wss://"))


def test_the_python_example_runs(tmp_path: Path) -> None:
    (block,) = re.findall(
        r"^\.\. code-block:: python\n\n((?:   .*\n|\n)+)", TEXT, flags=re.MULTILINE
    )
    code = "\n".join(line[3:] for line in block.splitlines())
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        tcp, ws = a.getsockname()[1], b.getsockname()[1]
    with tempfile.TemporaryFile("w+") as log:
        broker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stomp_proto.broker",
                "--tcp",
                f"127.0.0.1:{tcp}",
                "--ws",
                f"127.0.0.1:{ws}/ws",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", tcp), timeout=1).close()
                    break
                except OSError:
                    assert broker.poll() is None and time.monotonic() < deadline, "no broker"
                    time.sleep(0.05)  # polling for start-up, not timing the protocol
            script = tmp_path / "example.py"
            script.write_text(code.replace("61613", str(tcp)), encoding="utf-8")
            result = subprocess.run(
                [sys.executable, str(script)],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            broker.kill()
            broker.wait(30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "True", result.stdout
