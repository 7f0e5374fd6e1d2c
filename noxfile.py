"""The test matrix: the core tests on every supported Python that is installed.

``nox`` runs ``core`` on Python 3.10, 3.11, 3.12 and 3.13: the core's test files
(``tests/test_*.py``: parser, serializer, events, connections, heart-beats, the
package, the README and the docs' API page) in a fresh virtualenv with the
``test`` extra, without the coverage gate (the README's test command enforces
100% branch coverage on one Python; coverage does not differ between versions
enough to pay for it four times).

``nox -s "core(3.12)"`` runs one version; ``nox -l`` lists them. Interpreters
are looked up on this machine only, never downloaded: pyenv's versions
(``$PYENV_ROOT/versions``, pyenv shims need not be active), ``python3.X`` on
``PATH`` (Debian's ``python3.X`` packages), then uv-managed interpreters
already installed. A version that is not installed is *skipped* with the line
``Session core(3.X) skipped: Python interpreter 3.X not found``; ``.ci/run``
prints which versions it runs and which it skips.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

import nox

PYTHONS = ("3.10", "3.11", "3.12", "3.13")

nox.options.sessions = ["core"]
nox.options.reuse_venv = "yes"
# Never fetch an interpreter (uv/pbs downloads need hosts CI cannot reach).
nox.options.download_python = "never"


def _reports(executable: str, version: str) -> bool:
    """Whether ``executable`` runs and is CPython ``version`` (a pyenv shim of an
    inactive version exists on PATH but fails)."""
    try:
        out = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def _newest_first(pattern: str) -> list[str]:
    """The paths matching ``pattern``, highest patch release first (3.10.13 before 3.10.9)."""

    def patch(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path))

    return sorted(glob.glob(pattern), key=patch, reverse=True)


def find_python(version: str) -> str | None:
    """The absolute path of an installed, working Python ``version``, or None."""
    name = f"python{version}"
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    uv_root = Path(
        os.environ.get("UV_PYTHON_INSTALL_DIR", Path.home() / ".local" / "share" / "uv" / "python")
    )
    candidates = [
        *_newest_first(str(pyenv_root / "versions" / f"{version}.*" / "bin" / name)),
        *(path for path in [shutil.which(name)] if path),
        f"/usr/bin/{name}",
        f"/usr/local/bin/{name}",
        *_newest_first(str(uv_root / f"cpython-{version}.*" / "bin" / name)),
    ]
    for candidate in candidates:
        if os.access(candidate, os.X_OK) and _reports(candidate, version):
            return candidate
    return None


def _interpreter(version: str) -> str:
    # A version string that no executable answers to makes nox skip the
    # session with "Python interpreter 3.X not found".
    return find_python(version) or version


@nox.session
@nox.parametrize("python", [nox.param(_interpreter(v), id=v) for v in PYTHONS])
def core(session: nox.Session) -> None:
    """The core tests (tests/test_*.py) on one Python, no coverage gate."""
    session.install("--disable-pip-version-check", "-e", ".[test]")
    session.run(
        "python", "-bb", "-m", "pytest", *sorted(glob.glob("tests/test_*.py")), *session.posargs
    )
