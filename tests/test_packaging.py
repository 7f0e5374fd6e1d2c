"""The release archives: what a user gets from ``pip install stomp-proto``.

The sdist and wheel come from ``python -m build`` (the wheel built from the
sdist), which this file runs into a temporary folder (``build`` is in the
``test`` extra); with ``STOMP_PROTO_DIST`` naming a folder that already holds
them (one wheel, one sdist), it looks there instead. ``.ci/run`` also runs
``twine check`` on a build of its own.
"""

from __future__ import annotations

import email
import email.message
import importlib
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import stomp_proto

ROOT = Path(__file__).resolve().parent.parent
LICENSE = (ROOT / "LICENSE").read_text(encoding="utf-8")
#: Every file of the package in the checkout (modules, py.typed, the demo's page).
SOURCES = sorted(
    path.relative_to(ROOT).as_posix()
    for path in (ROOT / "stomp_proto").rglob("*")
    if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
)
PACKAGES = sorted({s.rsplit("/", 1)[0] for s in SOURCES if s.endswith("/__init__.py")})


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("STOMP_PROTO_DIST")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def _one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def wheel(dist: Path) -> zipfile.ZipFile:
    return zipfile.ZipFile(_one(dist, "stomp_proto-*.whl"))


@pytest.fixture(scope="module")
def sdist(dist: Path) -> tarfile.TarFile:
    return tarfile.open(_one(dist, "stomp_proto-*.tar.gz"))


@pytest.fixture(scope="module")
def metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(wheel.read(name))


def test_license_file_is_mit() -> None:
    assert LICENSE.startswith("MIT License\n")
    assert "Copyright (c) 2026 the stomp-proto developers" in LICENSE
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in LICENSE


def test_wheel_carries_the_license_and_py_typed(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    (license_name,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert wheel.read(license_name).decode() == LICENSE
    (bundled,) = [
        n for n in names if n.endswith("licenses/stomp_proto/demo/_static/STOMPJS-LICENSE")
    ]
    assert "Apache License" in wheel.read(bundled).decode()
    assert "stomp_proto/py.typed" in names
    assert {"stomp_proto", "stomp_proto/_adapter", "stomp_proto/broker"} <= set(PACKAGES)
    missing = [source for source in SOURCES if source not in names]
    assert not missing, f"in the checkout, not in the wheel: {missing}"
    # The library only: no tests, docs, benchmarks or fuzzers.
    assert all(n.startswith(("stomp_proto/", "stomp_proto-")) for n in names), names


def test_wheel_is_this_version(dist: Path) -> None:
    wheel = _one(dist, "stomp_proto-*.whl").name
    assert wheel == f"stomp_proto-{stomp_proto.__version__}-py3-none-any.whl"


def test_metadata(metadata: email.message.Message, wheel: zipfile.ZipFile) -> None:
    assert metadata["Name"] == "stomp-proto"
    # MIT, and Apache-2.0 for the stompjs bundle the demo's page serves.
    assert metadata["License-Expression"] == "MIT AND Apache-2.0"
    assert metadata.get_all("License-File") == [
        "LICENSE",
        "stomp_proto/demo/_static/STOMPJS-LICENSE",
    ]
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata.get_all("Requires-Dist") is not None  # the extras' requirements
    assert not [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert {"asyncio", "trio", "websocket", "broker"} <= set(metadata.get_all("Provides-Extra", []))
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert set(urls) == {"Homepage", "Documentation", "Source", "Issues", "Changelog"}
    assert all(u.startswith("https://") for u in urls.values())
    assert metadata["Description-Content-Type"] == "text/markdown"
    claimed = [
        c.rsplit(" :: ", 1)[1]
        for c in metadata.get_all("Classifier", [])
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert claimed == ["3.10", "3.11", "3.12", "3.13"]
    # The test matrix (noxfile.py) runs every version the metadata claims.
    matrix = re.search(r"^PYTHONS = \((.*)\)$", (ROOT / "noxfile.py").read_text(), re.MULTILINE)
    assert matrix is not None
    assert re.findall(r'"([\d.]+)"', matrix.group(1)) == claimed
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    scripts = [
        line.split(" = ", 1)
        for line in wheel.read(entry_points).decode().splitlines()
        if " = " in line
    ]
    assert [name for name, _ in scripts] == ["stomp-proto"]
    module, _, attr = scripts[0][1].partition(":")
    assert callable(getattr(importlib.import_module(module), attr))


def test_sdist_carries_the_license_and_sources(sdist: tarfile.TarFile) -> None:
    names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for required in (
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "CONTRIBUTING.md",
        "SECURITY.md",
        "docs/index.rst",
        "pyproject.toml",
        "stomp_proto/py.typed",
    ):
        assert required in names, required
    assert not [n for n in names if n.startswith("docs/_build/")], "the docs build is in the sdist"
    missing = [source for source in SOURCES if source not in names]
    assert not missing, f"in the checkout, not in the sdist: {missing}"
    license_member = sdist.extractfile(f"{sdist.getnames()[0].split('/')[0]}/LICENSE")
    assert license_member is not None
    assert license_member.read().decode() == LICENSE
