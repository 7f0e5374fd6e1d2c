"""The report as text: one line per check, and what crossed the wire when it did not pass.

Each line says the verdict, the level of the requirement, its number in the
checklist, the session's STOMP version, the check's id and what a
conformant server does. A FAIL or WARN adds why, then the transcript: every
write (``sent``), everything read (``received``, bytes read back to back
joined) and what happened to the connection (a close, a timeout), per
connection (``c1``, ``c2``...). ``--verbose`` shows the transcript of every
check.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import __version__
from ._model import SECTIONS, Check, Report, Result, Verdict

__all__ = ["format_catalogue", "format_header", "format_result", "format_summary"]

_INDENT = " " * 8


def format_header(target: str, versions: Sequence[str], server: str | None, runs: int) -> str:
    speaks = ", ".join(versions)
    name = f" ({server})" if server else ""
    return (
        f"stomp-proto check {__version__}: {target}{name}\n"
        f"the server accepts STOMP {speaks}; {runs} checks"
    )


def format_section(section: str) -> str:
    letter, title = SECTIONS[section]
    return f"\n{letter}. {title}"


def format_result(result: Result, *, verbose: bool = False) -> list[str]:
    check = result.check
    level = result.effective_level.value
    version = result.version or "-"
    lines = [
        f"  {result.verdict.value:<4}  {level:<6}  #{check.number:<3}  {version:<3}  "
        f"{check.id}: {check.title}"
    ]
    if result.reason:
        lines.append(f"{_INDENT}{result.reason}")
    if verbose or result.verdict in (Verdict.FAIL, Verdict.WARN):
        lines.extend(_transcript(result))
    return lines


def _transcript(result: Result) -> list[str]:
    out = []
    for conn, event, data in result.transcript:
        who = f"{conn} " if conn else ""
        if event == "note":
            assert isinstance(data, str)
            text = data.rstrip().replace("\n", "\n" + _INDENT + "  ")
            out.append(f"{_INDENT}{who}{text}")
        else:
            out.append(f"{_INDENT}{who}{event} {data!r}")
    return out


def format_summary(report: Report) -> str:
    counts = report.counts()
    shown = ", ".join(f"{counts[v.value]} {v.value}" for v in Verdict)
    failed = counts[Verdict.FAIL.value]
    verdict = (
        "every MUST passed"
        if report.passed
        else f"{failed} MUST requirement{'s' if failed != 1 else ''} failed"
    )
    return f"\n{len(report.results)} results: {shown} in {report.seconds:.1f} s: {verdict}"


def format_catalogue(checks: Sequence[Check]) -> list[str]:
    """``--list``: the catalogue, one line per check."""
    lines = []
    section = None
    for check in checks:
        if check.section != section:
            section = check.section
            lines.append(format_section(section).lstrip("\n"))
        versions = ",".join(check.versions) or "-"
        default = ",".join(check.run_versions()) if check.versions else "-"
        where = " (ws)" if check.websocket else ""
        lines.append(
            f"  #{check.number:<3}  {check.level.value:<6}  {versions:<11}  {default:<11}  "
            f"{check.id}{where}: {check.title}"
        )
    return lines
