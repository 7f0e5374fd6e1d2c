"""The verdict table of docs/check.rst, made from tests/check/expected.py, and
the comparison the tests make between a run and its column.

``python -m tests.check.verdicts`` rewrites the table in docs/check.rst (between
its ``.. verdicts begin`` and ``.. verdicts end`` comments);
tests/check/test_docs.py fails when the page and expected.py disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

from stomp_proto.check import CHECKS, SECTIONS, Report

from .expected import COLUMNS, expected, keys

__all__ = ["BEGIN", "END", "PAGE", "differences", "rewrite", "table"]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "check.rst"
BEGIN = ".. verdicts begin"
END = ".. verdicts end"


def differences(report: Report, column: str) -> list[str]:
    """How ``report`` differs from ``column``'s expected verdicts (empty when it does not)."""
    wanted = expected(column)
    got = {r.key: r for r in report.results}
    out = []
    for key in sorted(set(wanted) | set(got)):
        result = got.get(key)
        verdict = result.verdict.value if result is not None else "(not run)"
        if wanted.get(key) != verdict:
            why = f": {result.reason}" if result is not None and result.reason else ""
            out.append(
                f"{key}: expected {wanted.get(key, '(not in the catalogue)')}, got {verdict}{why}"
            )
    return out


def table() -> str:
    """The list-table of every result key, one column per server."""
    by_id = {c.id: c for c in CHECKS}
    columns = {name: expected(name) for name in COLUMNS}
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: auto",
        "",
        "   * - Check",
        "     - #",
        "     - Level",
        *(f"     - {heading}" for heading, _ in COLUMNS.values()),
    ]
    section = None
    for key in keys():
        check_id, _, version = key.partition("@")
        check = by_id[check_id]
        if check.section != section:
            section = check.section
            letter, title = SECTIONS[section]
            lines += [f"   * - **{letter}. {title}**", "     -", "     -"]
            lines += ["     -"] * len(COLUMNS)
        lines += [
            f"   * - ``{key}``",
            f"     - {check.number}",
            f"     - {check.level_for(version).value}",
        ]
        lines += [f"     - {_cell(columns[name][key])}" for name in COLUMNS]
    return "\n".join(lines) + "\n"


def _cell(verdict: str) -> str:
    return verdict if verdict == "PASS" else f"**{verdict}**"


def rewrite(text: str) -> str:
    """``text`` (docs/check.rst) with its verdict table replaced by :func:`table`."""
    head, begin, rest = text.partition(BEGIN + "\n")
    _, end, tail = rest.partition(END + "\n")
    if not begin or not end:
        raise ValueError(f"{PAGE} has no {BEGIN!r} ... {END!r} block")
    return f"{head}{BEGIN}\n\n{table()}\n{END}\n{tail}"


def main() -> int:
    PAGE.write_text(rewrite(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote the verdict table of {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
