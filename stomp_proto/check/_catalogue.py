"""The catalogue: every check, in checklist order (section, then requirement number).

The checks are declared in one module per group of sections; importing them
fills :data:`~._registry.REGISTRY`, which is sorted here once.
"""

from __future__ import annotations

from . import _delivery, _frames, _framing, _session, _websocket
from ._model import SECTIONS, Check
from ._registry import REGISTRY

__all__ = ["CHECKS"]

_ORDER = list(SECTIONS)
_MODULES = (_framing, _session, _frames, _delivery, _websocket)

#: Every check, in checklist order.
CHECKS: tuple[Check, ...] = tuple(
    sorted(REGISTRY, key=lambda c: (_ORDER.index(c.section), c.number))
)

_ids = [c.id for c in CHECKS]
assert len(set(_ids)) == len(_ids), "two checks share an id"
assert all(c.section in SECTIONS for c in CHECKS), "a check outside the sections"
