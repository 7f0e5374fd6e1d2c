"""``stomp-proto check`` against stomp-proto's own broker: every MUST passes.

The broker is ``python -m stomp_proto.broker`` in a subprocess, as the
interop tests run it (tests/interop/ourbroker.py: a login, and heart-beats
offered every second so that the heart-beat checks run), over TCP and over
WebSocket. Each run must give exactly its column of tests/check/expected.py,
in less than a minute.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stomp_proto.check import PreflightError, Verdict, run

from ..interop.ourbroker import OurBroker
from .expected import TIMEOUT
from .verdicts import differences

ROOT = Path(__file__).resolve().parents[2]


def url(broker: OurBroker, websocket: bool = False) -> str:
    where = (
        broker.ws_url.removeprefix("ws://") if websocket else f"{broker.host}:{broker.stomp_port}"
    )
    scheme = "ws" if websocket else "stomp"
    vhost = "" if websocket else f"/{broker.vhost}"
    return f"{scheme}://{broker.login}:{broker.passcode}@{where}{vhost}"


def test_our_broker_passes_every_must(ourbroker: OurBroker) -> None:
    report = run(url(ourbroker), timeout=TIMEOUT)
    assert report.passed
    assert differences(report, "stomp-proto") == []
    assert not [r.key for r in report.results if (r.reason or "").startswith("checker error")]
    assert report.seconds < 60
    assert report.server is not None and report.server.startswith("stomp-proto/")


def test_our_broker_over_websocket_passes_every_must(ourbroker: OurBroker) -> None:
    report = run(url(ourbroker, websocket=True), vhost=ourbroker.vhost, timeout=TIMEOUT)
    assert report.passed
    assert differences(report, "stomp-proto-ws") == []
    assert report.seconds < 60


def test_a_version_restricted_run(ourbroker: OurBroker) -> None:
    report = run(url(ourbroker), version="1.1", only=["framing", "acks"], timeout=TIMEOUT)
    assert report.results and {r.version for r in report.results} == {"1.1", ""}  # "": version-free
    assert {r.verdict for r in report.results} == {Verdict.PASS}
    assert {r.check.section for r in report.results} == {"framing", "acks"}


def test_the_command_line_against_our_broker(ourbroker: OurBroker) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stomp_proto.check", url(ourbroker), "--only", "B", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passed"] is True
    assert report["counts"]["FAIL"] == 0
    assert {r["section"] for r in report["results"]} == {"connect"}
    assert ourbroker.passcode not in result.stdout


def test_the_readme_command(ourbroker: OurBroker) -> None:
    """README.md's stomp-proto check line runs as written (on the broker's port)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (line,) = re.findall(r"`(stomp-proto check [^`]+)`", readme)
    assert "61613" in line
    argv = line.split()
    argv[2] = argv[2].replace("61613", str(ourbroker.stomp_port))
    argv[2] = argv[2].replace("stomp://", f"stomp://{ourbroker.login}:{ourbroker.passcode}@")
    if "/" not in argv[2].removeprefix("stomp://"):
        argv += ["--vhost", ourbroker.vhost]
    script = Path(sys.executable).parent / "stomp-proto"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "stomp_proto._cli"]
    result = subprocess.run(
        [*command, *argv[1:], "--timeout", str(TIMEOUT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "every MUST passed" in result.stdout


def test_stomps_and_wss(tmp_path: Path) -> None:
    """Over TLS (stomps:// and wss://, verified against a test CA) the verdicts are the same."""
    from ..interop.brokers import free_ports, make_tls_files

    ca, cert, key = make_tls_files(tmp_path / "tls")
    tcp, ws = free_ports(2)
    log = (tmp_path / "broker.log").open("w")
    broker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stomp_proto.broker",
            "--tcp",
            f"127.0.0.1:{tcp}",
            "--ws",
            f"127.0.0.1:{ws}/ws",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        only = ["framing/frame-layout", "connect", "receipts", "websocket"]
        deadline = time.monotonic() + 30
        while True:
            try:
                report = run(
                    f"stomps://127.0.0.1:{tcp}", ca_file=str(ca), only=only, timeout=TIMEOUT
                )
                break
            except PreflightError:
                assert broker.poll() is None and time.monotonic() < deadline, log.name
                time.sleep(0.1)  # polling for start-up, not timing the protocol
        secure = run(f"wss://127.0.0.1:{ws}/ws", ca_file=str(ca), only=only, timeout=TIMEOUT)
        with pytest.raises(PreflightError, match="TLS failed"):
            run(f"stomps://127.0.0.1:{tcp}", only=only, timeout=TIMEOUT)  # an unknown CA
    finally:
        broker.kill()
        broker.wait(30)
        log.close()
    assert report.passed and secure.passed
    assert {r.verdict for r in report.results if r.check.websocket} == {Verdict.SKIP}
    ws_results = [r for r in secure.results if r.check.websocket]
    assert ws_results and {r.verdict for r in ws_results} == {Verdict.PASS}
