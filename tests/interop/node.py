"""Running a stompjs scenario in node: the one runner of the stompjs interop tests.

A scenario script (``js/scenarios.mjs``, ``js/app_scenarios.mjs``) takes a
scenario name and a JSON configuration, drives @stomp/stompjs 7 over the
``ws`` package, and prints one JSON line describing what stompjs saw; the
assertions are the tests'. :func:`run_scenario` runs it and returns that
line, or fails the test with the script's log, the events it recorded and
the server's log tail. :func:`node_missing` says why node cannot run here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

JS_DIR = Path(__file__).resolve().parent / "js"
MODULES = ("@stomp/stompjs", "ws")


def node_missing() -> str | None:
    """Why stompjs cannot run here (node or an npm package missing), or None."""
    if shutil.which("node") is None:
        return "node is not installed (needed to run @stomp/stompjs)"
    for module in MODULES:
        if not (JS_DIR / "node_modules" / module / "package.json").exists():
            return f"npm package {module} is missing in {JS_DIR} (run `bash .ci/install-peers`)"
    return None


def run_scenario(
    script: Path,
    scenario: str,
    config: dict[str, Any],
    *,
    against: str,
    timeout_ms: int = 30000,
    server_log: Callable[[], str] | None = None,
) -> dict[str, Any]:
    """Runs ``scenario`` of ``script`` against the server named ``against``;
    returns its JSON result (``ok`` is true)."""
    config = {**config, "timeoutMs": timeout_ms}
    node = shutil.which("node") or "node"
    try:
        proc = subprocess.run(
            [node, str(script), scenario, json.dumps(config)],
            check=False,
            cwd=JS_DIR,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_ms / 1000 + 20,  # the script's own timer ends it first
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"node {scenario}: still running after {exc.timeout} s: {exc.stdout!r}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        pytest.fail(
            f"node {scenario} exited with {proc.returncode} and printed no result\n"
            f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-4000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    if not result.get("ok"):
        log = "\n".join(result.get("log", []))
        events = f"--- events ---\n{result['events']}\n" if "events" in result else ""
        tail = f"--- server log ---\n{server_log()}\n" if server_log is not None else ""
        pytest.fail(
            f"stompjs {scenario} against {against} failed: {result.get('error')}\n"
            f"{events}"
            f"--- stompjs debug log (last lines) ---\n{log[-6000:]}\n"
            f"--- stderr ---\n{proc.stderr[-2000:]}\n"
            f"{tail}"
        )
    assert proc.returncode == 0, proc.stderr
    return result


__all__ = ["JS_DIR", "MODULES", "node_missing", "run_scenario"]
