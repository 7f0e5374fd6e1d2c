"""The architecture picture names only modules that exist (docs/architecture.rst)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_module_in_the_architecture_picture_exists() -> None:
    svg = (ROOT / "docs/_static/architecture.svg").read_text()
    paths = re.findall(r"stomp_proto/[\w/]*(?:\.py)?", svg)
    assert len(paths) >= 4
    for path in paths:
        assert (ROOT / path).exists(), path
    # a line that lists several files names them relative to the first one's folder
    for line in re.findall(r'class="mod"[^>]*>([^<]+)<', svg):
        words = line.split()
        if words[0].endswith(".py") and "/" in words[0]:
            folder = (ROOT / words[0]).parent
            for word in words[1:]:
                if word.endswith(".py"):
                    assert (folder / word).exists(), word


def test_the_architecture_page_is_in_the_docs() -> None:
    assert "architecture" in (ROOT / "docs/index.rst").read_text()
    page = (ROOT / "docs/architecture.rst").read_text()
    assert "_static/architecture.svg" in page
