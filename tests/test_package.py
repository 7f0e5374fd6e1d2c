"""The package as a whole: import hygiene, the demo, the fuzz harnesses' corpus."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import stomp_proto
from stomp_proto.__main__ import main

ROOT = Path(__file__).resolve().parent.parent


def test_import_pulls_in_no_io() -> None:
    code = (
        "import sys, stomp_proto\n"
        "bad = {'asyncio', 'trio', 'socket', 'selectors'} & set(sys.modules)\n"
        "print(sorted(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[]"


def test_public_names() -> None:
    assert isinstance(stomp_proto.__all__, tuple)
    for name in stomp_proto.__all__:
        assert hasattr(stomp_proto, name), name
    assert stomp_proto.SUPPORTED_VERSIONS == ("1.0", "1.1", "1.2")


def test_demo_walks_a_whole_session(capsys: pytest.CaptureFixture[str]) -> None:
    assert main() == 0
    out = capsys.readouterr().out
    assert "negotiated STOMP 1.2, heart-beats (10000, 10000) ms" in out
    assert "client got Message(destination='/topic/price.stock.ACME'" in out
    assert "server got Ack(id='a-1'" in out
    assert out.rstrip().endswith("client state: CLOSED, server state: CLOSED")


def test_demo_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stomp_proto"], check=False, capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0
    assert "C>S b'CONNECT\\n" in result.stdout


def _harness(name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, ROOT / "fuzz" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("harness", ["fuzz_parser", "fuzz_connection"])
def test_fuzz_harness_over_the_seed_corpus(harness: str) -> None:
    check = _harness(harness).check  # type: ignore[attr-defined]
    seeds = sorted((ROOT / "fuzz" / "corpus").iterdir())
    assert len(seeds) >= 10
    for seed in seeds:
        data = seed.read_bytes()
        check(data)
        for cut in range(0, len(data), 7):
            check(data[:cut])  # truncated inputs too
