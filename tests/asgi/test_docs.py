"""docs/asgi.rst's example, docs/examples/fastapi_app.py, under uvicorn as the page says.

``uvicorn fastapi_app:api`` from ``docs/examples`` on a free port; stomp-proto's
client logs in over ``ws://.../portfolio``, the page's curl line publishes a
price that the client receives, and ``SEND /app/greet`` is answered on
``/topic/greet`` (issue 13).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from stomp_proto.asyncio import connect

from ..demo.conftest import in_ci
from ..demo.test_portfolio import wait_for_url

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
PAGE = ROOT / "docs" / "asgi.rst"


def page_lines(prefix: str) -> list[str]:
    return [
        line.strip()[2:]
        for line in PAGE.read_text().splitlines()
        if line.strip().startswith(f"$ {prefix}")
    ]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The page's ``uvicorn fastapi_app:api``, on a free port; its base URL."""
    [command] = page_lines("uvicorn ")
    assert command == "uvicorn fastapi_app:api"
    log = tmp_path / "uvicorn.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *shlex.split(command), "--port", "0"],
            cwd=EXAMPLES,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        yield wait_for_url(log, process, marker="Uvicorn running on ").rstrip("/")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    logged = log.read_text(errors="replace")
    assert "Traceback" not in logged, logged[-4000:]
    assert "Application shutdown complete" in logged  # the broker stopped with it


def curl(base: str) -> str:
    if shutil.which("curl") is None:
        if in_ci():
            pytest.fail("curl is not installed (CI=true: never skipped)")
        pytest.skip("curl is not installed")
    [line] = page_lines("curl ")
    args = [a.replace("http://127.0.0.1:8000", base) for a in shlex.split(line)]
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=10).stdout


async def test_the_fastapi_example_under_uvicorn(served: str) -> None:
    ws_url = served.replace("http://", "ws://") + "/portfolio"
    async with connect(ws_url, login="fabrice", passcode="fab123", heart_beat=(0, 0)) as client:
        prices = await client.subscribe("/topic/price.stock.MMM", receipt=True)
        greetings = await client.subscribe("/topic/greet", receipt=True)
        answer = await anyio.to_thread.run_sync(curl, served)
        assert json.loads(answer) == {"delivered": 1}
        with anyio.fail_after(5):
            quote = await prices.get()
        assert json.loads(quote.body) == {"ticker": "MMM", "price": 129.45}
        await client.send("/app/greet", "world", receipt=True)
        with anyio.fail_after(5):
            assert (await greetings.get()).text() == "Hello, world! (from fabrice)"

        def sessions() -> object:
            with urllib.request.urlopen(served + "/sessions", timeout=5) as response:
                return json.load(response)

        assert await anyio.to_thread.run_sync(sessions) == {"sessions": 1}
