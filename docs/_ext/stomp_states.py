"""Sphinx extension: the connection state machine, generated from ``stomp_proto._state``.

Two directives read :data:`stomp_proto._state.TRANSITIONS` at build time, so the
docs cannot drift from the code:

``.. stomp-transitions::``
    a table with one row per *(state, sender)* pair and the frames that move
    the connection to each next state;
``.. stomp-state-diagram::``
    an inline SVG drawn by :func:`render_svg` below: one box per state, left
    to right in :class:`~stomp_proto.State` order, forward transitions as arcs
    above the boxes, backward ones below, frames that keep the state as loops
    under their box. Arcs are stacked so that an arc is drawn above every arc
    it spans.

Two transitions are made by ``_connection.py`` rather than by the table (a
DISCONNECT without ``receipt`` closes at once; the RECEIPT answering the
DISCONNECT's receipt closes the session). They are listed in ``IMPLICIT``
below and drawn dashed, so that the reader sees the whole picture; the
diagram states which edges they are. The universal edges (any protocol error
leads to ERROR, EOF leads to CLOSED) are written in the caption.

No Graphviz needed: the SVG is plain text written by this module.
"""

from __future__ import annotations

import textwrap
from collections import defaultdict
from html import escape
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList

from stomp_proto import Event, State
from stomp_proto._state import TRANSITIONS, Role

#: (from, to, label): transitions decided in ``_connection.py``, not the table.
IMPLICIT: list[tuple[State, State, str]] = [
    (State.CONNECTED, State.CLOSED, "DISCONNECT without receipt"),
    (State.DISCONNECTING, State.CLOSED, "the RECEIPT for the DISCONNECT"),
]


def _command(kind: type[Event]) -> str:
    return "CONNECT / STOMP" if kind.COMMAND == "CONNECT" else kind.COMMAND


def grouped() -> dict[tuple[State, State], dict[Role, list[str]]]:
    """(from, to) -> sender -> commands, in table order."""
    edges: dict[tuple[State, State], dict[Role, list[str]]] = defaultdict(lambda: defaultdict(list))
    for (sender, state, kind), new_state in TRANSITIONS.items():
        edges[state, new_state][sender].append(_command(kind))
    return edges


def _label(senders: dict[Role, list[str]]) -> str:
    return "; ".join(
        f"{role.value.lower()}: {', '.join(commands)}"
        for role, commands in sorted(senders.items(), key=lambda item: item[0].value)
    )


# -- the table ---------------------------------------------------------------


class TransitionsTable(Directive):
    """``.. stomp-transitions::``: the transition table as a list-table."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        order = list(State)
        rows = sorted(
            grouped().items(), key=lambda item: (order.index(item[0][0]), order.index(item[0][1]))
        )
        lines = [
            ".. list-table:: Transitions in ``stomp_proto._state.TRANSITIONS``",
            "   :header-rows: 1",
            "   :widths: 20 12 48 20",
            "",
            "   * - State",
            "     - Sender",
            "     - Frames",
            "     - Next state",
        ]
        for (state, new_state), senders in rows:
            for role, commands in sorted(senders.items(), key=lambda item: item[0].value):
                lines += [
                    f"   * - ``{state.name}``",
                    f"     - {role.value.lower()}",
                    "     - " + ", ".join(f"``{c}``" for c in commands),
                    f"     - ``{new_state.name}``",
                ]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="stomp_states"), 0, container)
        return list(container.children)


# -- the diagram -------------------------------------------------------------

BOX_W, BOX_H, GAP = 170, 44, 250
LEVEL_H, LINE_H, WRAP = 58, 15, 30
MARGIN_X = 40


def _wrap(label: str) -> list[str]:
    lines: list[str] = []
    for part in label.split("; "):
        lines += textwrap.wrap(part, WRAP)
    return lines


def _text(x: float, y: float, lines: list[str], *, anchor: str = "middle") -> str:
    spans = "".join(
        f'<tspan x="{x:.0f}" dy="{0 if i == 0 else LINE_H}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return (
        f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}" stroke="white" '
        f'stroke-width="4" paint-order="stroke">{spans}</text>'
    )


def _levels(spans: list[tuple[int, int]]) -> list[int]:
    """Stack arcs: each arc one level above every arc that overlaps its interval."""
    order = sorted(range(len(spans)), key=lambda i: (abs(spans[i][1] - spans[i][0]), i))
    placed: list[tuple[int, int, int]] = []  # (low, high, level)
    levels = [0] * len(spans)
    for i in order:
        low, high = sorted(spans[i])
        level = 1 + max(
            (lv for lo, hi, lv in placed if lo < high and low < hi),
            default=0,
        )
        levels[i] = level
        placed.append((low, high, level))
    return levels


def render_svg() -> str:
    """Draw the state machine as an SVG document (a string)."""
    states = list(State)
    index = {state: i for i, state in enumerate(states)}
    edges = grouped()
    arcs: list[tuple[int, int, list[str], bool]] = []  # from, to, label lines, dashed
    loops: dict[int, list[str]] = {}
    for (state, new_state), senders in edges.items():
        if state is new_state:
            loops[index[state]] = _wrap(_label(senders))
        else:
            arcs.append((index[state], index[new_state], _wrap(_label(senders)), False))
    arcs += [(index[a], index[b], _wrap(label), True) for a, b, label in IMPLICIT]

    above = [arc for arc in arcs if arc[1] > arc[0]]
    below = [arc for arc in arcs if arc[1] < arc[0]]
    up_levels = _levels([(a, b) for a, b, _, _ in above])
    down_levels = _levels([(a, b) for a, b, _, _ in below])
    top_room = 0.75 * max(up_levels, default=0) * LEVEL_H + 3 * LINE_H
    loop_room = max((len(lines) for lines in loops.values()), default=0) * LINE_H + 50
    bottom_room = max(max(down_levels, default=0) * LEVEL_H + 3 * LINE_H, loop_room) + 50
    width = 2 * MARGIN_X + (len(states) - 1) * GAP + BOX_W
    box_y = top_room + 10
    height = box_y + BOX_H + bottom_room

    def cx(i: int) -> float:
        return MARGIN_X + i * GAP + BOX_W / 2

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="100%" font-family="sans-serif" font-size="12" role="img" '
        f'aria-label="stomp-proto connection state machine">',
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' "
        "markerHeight='7' orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z'/></marker>"
        "</defs>",
        '<g fill="none" stroke="black" stroke-width="1.3">',
    ]
    labels: list[str] = []
    placed = [*zip(above, up_levels, strict=True), *zip(below, down_levels, strict=True)]
    for (a, b, lines, dashed), level in placed:
        up = b > a
        y0 = box_y if up else box_y + BOX_H
        rise = -level * LEVEL_H if up else level * LEVEL_H
        spread = 12 + 9 * (level - 1)  # fan out arrows that share a box
        x0, x1 = cx(a) + (spread if up else -spread), cx(b) + (-spread if up else spread)
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        out.append(
            f'<path d="M{x0:.0f},{y0:.0f} C{x0:.0f},{y0 + rise:.0f} {x1:.0f},{y0 + rise:.0f} '
            f'{x1:.0f},{y0:.0f}"{dash} marker-end="url(#arrow)"/>'
        )
        apex = y0 + 0.75 * rise
        text_y = apex - 6 - LINE_H * (len(lines) - 1) if up else apex + LINE_H
        labels.append(_text((x0 + x1) / 2, text_y, lines))
    for i, lines in loops.items():
        x, y = cx(i), box_y + BOX_H
        out.append(
            f'<path d="M{x - 30:.0f},{y:.0f} C{x - 45:.0f},{y + 45:.0f} {x + 45:.0f},{y + 45:.0f} '
            f'{x + 30:.0f},{y:.0f}" marker-end="url(#arrow)"/>'
        )
        labels.append(_text(x, y + 52 + LINE_H, lines))
    out.append("</g>")
    for i, state in enumerate(states):
        x = cx(i) - BOX_W / 2
        fill = "#fde2e2" if state is State.ERROR else "#e8f0fe"
        out.append(
            f'<rect x="{x:.0f}" y="{box_y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="8" '
            f'fill="{fill}" stroke="black" stroke-width="1.3"/>'
        )
        out.append(
            f'<text x="{cx(i):.0f}" y="{box_y + BOX_H / 2 + 5:.0f}" text-anchor="middle" '
            f'font-weight="bold">{state.name}</text>'
        )
    out += labels
    out.append("</svg>")
    return "\n".join(out)


class StateDiagram(Directive):
    """``.. stomp-state-diagram::``: the inline SVG (HTML builders only)."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        svg = render_svg()
        return [nodes.raw("", f'<div class="stomp-state-diagram">{svg}</div>', format="html")]


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("stomp-transitions", TransitionsTable)
    app.add_directive("stomp-state-diagram", StateDiagram)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
