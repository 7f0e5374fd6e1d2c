"""The checker's vocabulary: levels, verdicts, checks, results and reports.

A :class:`Check` is data (its id, the requirement number of the conformance
checklist it is tied to, the level of that requirement, the versions it
applies to) plus one coroutine that drives a server and judges it. The
coroutine passes by returning, and says anything else by raising one of
:class:`Fail`, :class:`Warn` or :class:`Skip`; the runner turns that into a
:class:`Result` (a FAIL only when the requirement is a MUST: a SHOULD, MAY or
POLICY that is not met is a WARN).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._wire import Context

__all__ = [
    "SECTIONS",
    "Check",
    "Fail",
    "Level",
    "Report",
    "Result",
    "Skip",
    "Verdict",
    "Warn",
]


class Level(enum.Enum):
    """How binding the requirement behind a check is.

    .. versionadded:: 0.2
    """

    #: The specification's MUST: a server that fails it is not conformant.
    MUST = "MUST"
    #: The specification's SHOULD: failing it is a WARN.
    SHOULD = "SHOULD"
    #: The specification's MAY, checked when the server uses the freedom.
    MAY = "MAY"
    #: What the specification leaves open, with the behaviour stomp-proto
    #: recommends (and most brokers share); failing it is a WARN.
    POLICY = "POLICY"


class Verdict(enum.Enum):
    """The outcome of one check.

    .. versionadded:: 0.2
    """

    PASS = "PASS"
    #: A MUST was not met (the exit status is then 1).
    FAIL = "FAIL"
    #: A SHOULD, MAY or POLICY was not met, or a MUST was met only partly
    #: (a bad frame refused by closing the connection without an ERROR).
    WARN = "WARN"
    #: Not applicable: a version the server does not speak, a feature it
    #: does not offer, a transport it is not reached over.
    SKIP = "SKIP"


#: The sections of the checklist (stomp-notes §4), in order: name -> (letter, title).
SECTIONS: dict[str, tuple[str, str]] = {
    "framing": ("A", "Framing and parsing"),
    "connect": ("B", "Connection lifecycle"),
    "heart-beat": ("C", "Heart-beating"),
    "frames": ("D", "Client frames"),
    "receipts": ("E", "Receipts"),
    "server-frames": ("F", "Server frames"),
    "acks": ("G", "Acknowledgement semantics"),
    "websocket": ("H", "STOMP over WebSocket"),
    "destinations": ("I", "Destination semantics"),
}


class Outcome(Exception):
    """Raised by a check to end it with something other than PASS."""

    verdict: Verdict = Verdict.FAIL

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Fail(Outcome):
    """The requirement is not met (FAIL for a MUST, WARN otherwise)."""


class Warn(Outcome):
    """Met, but not as the specification recommends (always WARN)."""

    verdict = Verdict.WARN


class Skip(Outcome):
    """The check does not apply to this server (SKIP)."""

    verdict = Verdict.SKIP


CheckFunction = Callable[["Context"], Awaitable[None]]


@dataclass(frozen=True)
class Check:
    """One check of the catalogue.

    Attributes:
        id: ``section/name``, stable (reports and ``--only``/``--skip`` use it).
        number: the requirement's number in the conformance checklist.
        level: the requirement's level.
        title: what a conformant server does, in one line.
        versions: the STOMP versions the requirement applies to; empty for a
            check that negotiates versions itself (it opens no session of
            one version).
        default: the versions it runs in when ``--version`` is not given
            (the highest of ``versions`` if empty).
        levels: ``(version, level)`` pairs where the level differs from ``level``.
        websocket: runs only when the server is reached over WebSocket.
        slow: how many ``--timeout`` periods the check may take in all.
        run: the coroutine that drives the server (internal).

    .. versionadded:: 0.2
    """

    id: str
    number: int
    level: Level
    title: str
    versions: tuple[str, ...] = ("1.0", "1.1", "1.2")
    default: tuple[str, ...] = ()
    levels: tuple[tuple[str, Level], ...] = ()
    websocket: bool = False
    slow: float = 4.0
    run: CheckFunction | None = field(default=None, repr=False, compare=False)

    def level_for(self, version: str) -> Level:
        """The level in ``version`` (some requirements are a MUST in 1.2 and a SHOULD in 1.1)."""
        return dict(self.levels).get(version, self.level)

    @property
    def section(self) -> str:
        """The section name, the part of :attr:`id` before the slash."""
        return self.id.partition("/")[0]

    def run_versions(self) -> tuple[str, ...]:
        """The versions the check runs in by default ("" for a version-free check)."""
        if not self.versions:
            return ("",)
        return self.default or (self.versions[-1],)


@dataclass
class Result:
    """The verdict of one check in one version.

    Attributes:
        check: the :class:`Check`.
        version: the session's STOMP version ("" for a version-free check).
        verdict: the :class:`Verdict`.
        reason: why, for anything but PASS (None for PASS).
        transcript: what crossed the wire: ``(connection, event, data)``
            with event ``"sent"``, ``"received"`` or ``"note"``.
        seconds: how long the check took.

    .. versionadded:: 0.2
    """

    check: Check
    version: str
    verdict: Verdict
    reason: str | None = None
    transcript: list[tuple[str, str, bytes | str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def effective_level(self) -> Level:
        """The requirement's level in this result's version."""
        return self.check.level_for(self.version)

    @property
    def key(self) -> str:
        """``id@version`` (just ``id`` for a version-free check): unique in a report."""
        return f"{self.check.id}@{self.version}" if self.version else self.check.id

    def to_json(self) -> dict[str, Any]:
        """This result as the ``--json`` report writes it."""
        return {
            "key": self.key,
            "id": self.check.id,
            "section": self.check.section,
            "number": self.check.number,
            "level": self.effective_level.value,
            "version": self.version or None,
            "title": self.check.title,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "transcript": [
                {
                    "connection": conn,
                    "event": event,
                    "data": data if isinstance(data, str) else _printable(data),
                }
                for conn, event, data in self.transcript
            ],
        }


def _printable(data: bytes) -> str:
    """Bytes as a Python literal without the ``b`` and quotes, so JSON stays readable."""
    return repr(data)[2:-1]


@dataclass
class Report:
    """Everything one run found.

    Attributes:
        target: the URL checked (without its passcode).
        versions: the STOMP versions the server accepted in the preflight.
        server: the CONNECTED ``server`` header, if it sent one.
        results: one :class:`Result` per check run, in catalogue order.
        seconds: how long the run took.

    .. versionadded:: 0.2
    """

    target: str
    versions: tuple[str, ...]
    server: str | None
    results: list[Result]
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True when no MUST failed: the exit status is 0."""
        return all(r.verdict is not Verdict.FAIL for r in self.results)

    def counts(self) -> dict[str, int]:
        """How many results of each verdict (every verdict present, maybe 0)."""
        out = {v.value: 0 for v in Verdict}
        for result in self.results:
            out[result.verdict.value] += 1
        return out

    def verdicts(self) -> dict[str, str]:
        """``key -> verdict`` for every result."""
        return {r.key: r.verdict.value for r in self.results}

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (its schema is in docs/check.rst)."""
        return {
            "target": self.target,
            "server": self.server,
            "versions": list(self.versions),
            "passed": self.passed,
            "counts": self.counts(),
            "seconds": round(self.seconds, 3),
            "results": [r.to_json() for r in self.results],
        }
