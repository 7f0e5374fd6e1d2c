"""Sphinx configuration for stomp-proto.

Build with ``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
Sphinx built-ins, the local ``_ext/stomp_states.py`` extension and the furo
theme (the ``docs`` extra) are used; nothing is fetched from the network.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # autodoc imports stomp_proto from the checkout
sys.path.insert(0, str(HERE / "_ext"))

import stomp_proto  # noqa: E402

project = "stomp-proto"
author = "the stomp-proto developers"
copyright = "2026, the stomp-proto developers"
release = stomp_proto.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "stomp_states",
]

exclude_patterns = ["_build"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_css_files = ["stomp-proto.css"]  # code that fits at 1280 px
# furo: made for reading on any screen width, with a light and a dark scheme.
html_theme = "furo"
html_title = f"stomp-proto {release}"

# Google-style docstrings (as h11); no NumPy sections.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
# Defaults as written in the source (``anyio.TASK_STATUS_IGNORED``), not the
# repr of the object (``<anyio._core._tasks._IgnoredTaskStatus object at 0x...>``).
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True, "exclude-members": "COMMAND"}

nitpicky = False
default_role = "any"


def _restore_prose(
    app: object, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    """Undo napoleon's reading of "Prose: more prose" as "type: description".

    Napoleon treats the text before the first colon of an attribute or
    property docstring as its type. stomp-proto's annotations carry the types,
    so such a docstring is prose: put the first line back together.
    """
    if what in ("attribute", "property") and len(lines) >= 2 and lines[-1].startswith(":type: "):
        prefix = lines.pop()[len(":type: ") :]
        if lines[-1] == "":
            lines.pop()
        lines[0] = f"{prefix}: {lines[0]}" if lines else prefix


def setup(app: object) -> None:
    app.connect("autodoc-process-docstring", _restore_prose, priority=600)  # type: ignore[attr-defined]
