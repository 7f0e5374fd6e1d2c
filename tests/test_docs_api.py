"""Every public name is in the API reference (docs/api.rst).

"Only documented names are public" (the page says so), so each name in the
``__all__`` of :data:`MODULES` must be documented there by a directive, under
the ``.. module::`` (or ``.. currentmodule::``) it belongs to:
``autoclass``, ``autofunction``, ``autoexception``, ``autodata`` or their
``py:`` forms (``.. data::``, ``.. py:data::``, ``.. class::`` ...). A name that
is public but documented otherwise goes in :data:`EXEMPT`, with the reason.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api.rst"

MODULES = ("stomp_proto", "stomp_proto.asyncio", "stomp_proto.broker")

#: (module, name) -> why it has no directive of its own on docs/api.rst.
EXEMPT: dict[tuple[str, str], str] = {}

_DIRECTIVE = re.compile(
    r"^\s*\.\. (?:py:)?(?:auto)?(?P<kind>class|function|exception|data|module|currentmodule)::"
    r"\s*(?P<name>[\w.]+)",
    re.MULTILINE,
)


def documented(text: str) -> set[tuple[str, str]]:
    """(module, name) of every object directive in ``text``, in its module."""
    found: set[tuple[str, str]] = set()
    module = ""
    for match in _DIRECTIVE.finditer(text):
        kind, name = match["kind"], match["name"]
        if kind in ("module", "currentmodule"):
            module = name
        elif name.startswith("stomp_proto."):
            owner, _, short = name.rpartition(".")
            found.add((owner, short))
        else:
            found.add((module, name))
    return found


DOCUMENTED = documented(API.read_text(encoding="utf-8"))
PUBLIC = [(m, name) for m in MODULES for name in importlib.import_module(m).__all__]


def test_the_parser_reads_the_directives() -> None:
    text = """
.. module:: a.b

.. autoclass:: One
   :members:

.. py:data:: Two

.. currentmodule:: c

.. autofunction:: three(x: int) -> None
.. autoexception:: d.e.Four
.. data:: __five__
"""
    assert documented(text) == {
        ("a.b", "One"),
        ("a.b", "Two"),
        ("c", "three"),
        ("c", "d.e.Four"),
        ("c", "__five__"),
    }
    assert documented(".. autoclass:: stomp_proto.broker.Broker") == {
        ("stomp_proto.broker", "Broker")
    }
    # A role in prose, a :members: option or a code sample is not a directive.
    assert documented("see :class:`Broker`\n   :members: Broker\n``.. autoclass::``") == set()


@pytest.mark.parametrize(("module", "name"), PUBLIC, ids=[f"{m}.{n}" for m, n in PUBLIC])
def test_public_name_is_documented(module: str, name: str) -> None:
    if (module, name) in EXEMPT:
        return
    assert (module, name) in DOCUMENTED, (
        f"{module}.{name} is in __all__ but has no directive in docs/api.rst under "
        f".. module:: {module} (or list it in EXEMPT with the reason)"
    )


def test_exemptions_are_current() -> None:
    for module, name in EXEMPT:
        assert name in importlib.import_module(module).__all__, (module, name)
        assert (module, name) not in DOCUMENTED, f"{module}.{name} is documented now"
