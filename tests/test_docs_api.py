"""Every public name is in the API reference (docs/api.rst).

"Only documented names are public" (the page says so), so each name in the
``__all__`` of every public module (``stomp_proto`` and each submodule whose
dotted path has no part starting with ``_``; at least :data:`REQUIRED`) must be
documented there by a directive, under the ``.. module::`` (or
``.. currentmodule::``) it belongs to: ``autoclass``, ``autofunction``,
``autoexception``, ``autodata`` or their ``py:`` forms (``.. data::``,
``.. py:data::``, ``.. class::`` ...). A module that only re-exports another's
objects (``stomp_proto.trio``) is covered by the other's directives: a name
counts as documented when its object is one documented elsewhere on the page.
A public name documented otherwise goes in :data:`EXEMPT`, a whole module in
:data:`EXEMPT_MODULES`, each with the reason.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import stomp_proto

ROOT = Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api.rst"

#: Modules that must be found (and documented) whatever else is added.
REQUIRED = ("stomp_proto", "stomp_proto.asyncio", "stomp_proto.broker")

#: (module, name) -> why it has no directive of its own on docs/api.rst.
EXEMPT: dict[tuple[str, str], str] = {}

#: module -> why its names are not in the API reference.
EXEMPT_MODULES = {
    "stomp_proto.demo": "an example application (docs/demo.rst shows its source), not a library API",
}


def public_modules() -> list[str]:
    found = ["stomp_proto"]
    for info in pkgutil.walk_packages(stomp_proto.__path__, "stomp_proto."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            found.append(info.name)
    return found


MODULES = public_modules()

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


def _object(module: str, name: str) -> object:
    return getattr(importlib.import_module(module), name, None)


DOCUMENTED = documented(API.read_text(encoding="utf-8"))
PUBLIC = [
    (m, name)
    for m in MODULES
    if m not in EXEMPT_MODULES
    for name in getattr(importlib.import_module(m), "__all__", ())
]
DOCUMENTED_OBJECTS = [
    _object(m, n) for m, n in DOCUMENTED if m.startswith("stomp_proto") and "." not in n
]


def test_public_modules_are_found_and_declare_their_names() -> None:
    assert set(REQUIRED) <= set(MODULES)
    for module in MODULES:
        assert isinstance(
            getattr(importlib.import_module(module), "__all__", None), tuple | list
        ), f"{module} is public: give it an __all__"


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
    if (module, name) not in DOCUMENTED and module not in {m for m, _ in DOCUMENTED}:
        # A module with no directives of its own re-exports documented objects.
        obj = _object(module, name)
        assert any(obj is documented_obj for documented_obj in DOCUMENTED_OBJECTS), (
            f"{module}.{name} is in __all__ but neither documented in docs/api.rst nor the "
            "object of a documented name (or list it in EXEMPT with the reason)"
        )
        return
    assert (module, name) in DOCUMENTED, (
        f"{module}.{name} is in __all__ but has no directive in docs/api.rst under "
        f".. module:: {module} (or list it in EXEMPT with the reason)"
    )


def test_exemptions_are_current() -> None:
    for module in EXEMPT_MODULES:
        assert module in MODULES, module
    for module, name in EXEMPT:
        assert name in importlib.import_module(module).__all__, (module, name)
        assert (module, name) not in DOCUMENTED, f"{module}.{name} is documented now"
