"""``stomp-proto check``: its options, and printing the report as the checks finish."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from .. import SUPPORTED_VERSIONS
from ._catalogue import CHECKS
from ._model import Result
from ._report import (
    format_catalogue,
    format_header,
    format_result,
    format_section,
    format_summary,
)
from ._runner import PreflightError, plan, run_checks, select
from ._wire import Target, parse_target

__all__ = ["main", "parser"]

EPILOG = """\
selectors (--only, --skip; repeatable, or comma-separated): a section name or
letter (framing, connect, heart-beat, frames, receipts, server-frames, acks,
websocket, destinations; A to I), a requirement number of the checklist (26),
or a check id, with * wildcards (framing/*escape*). --list shows them all.

exit status: 0 when every MUST passed, 1 when one failed, 2 when the server
could not be checked (unreachable, every CONNECT refused) or for a usage error.
"""


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _jobs(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stomp-proto check",
        description="Check a STOMP server against the STOMP 1.0/1.1/1.2 specification:\n"
        "one line per check, with the bytes sent and received when one does not pass.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "url",
        nargs="?",
        help="stomp://[LOGIN:PASSCODE@]HOST[:PORT][/VHOST], stomps://..., "
        "ws://[LOGIN:PASSCODE@]HOST[:PORT]/PATH or wss://...",
    )
    p.add_argument("--only", action="append", default=[], metavar="SELECTOR", help="run only these")
    p.add_argument(
        "--skip", action="append", default=[], metavar="SELECTOR", help="leave these out"
    )
    p.add_argument(
        "--version",
        choices=SUPPORTED_VERSIONS,
        dest="stomp_version",
        help="run every check that applies to this STOMP version in sessions of it",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--timeout",
        type=_positive,
        default=2.0,
        metavar="SECONDS",
        help="how long one answer may take (default 2); a check may take a few of these",
    )
    p.add_argument(
        "--jobs", type=_jobs, default=8, metavar="N", help="checks run at once (default 8)"
    )
    p.add_argument(
        "--vhost",
        metavar="NAME",
        help="the CONNECT host header (default: the stomp:// URL's path, else its host name)",
    )
    p.add_argument("--ca-file", metavar="FILE", help="trust this CA (PEM) for stomps:// and wss://")
    p.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate")
    p.add_argument(
        "--queue-prefix",
        default="/queue/",
        metavar="PREFIX",
        help="where point-to-point destinations live (default /queue/)",
    )
    p.add_argument(
        "--topic-prefix",
        default="/topic/",
        metavar="PREFIX",
        help="where publish-subscribe destinations live (default /topic/)",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the bytes of every check, not only failures",
    )
    p.add_argument(
        "--list", action="store_true", help="list the checks (with the selection) and exit"
    )
    return p


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``stomp-proto check ARGV``; returns the exit status."""
    args = parser().parse_args(argv)
    only, skip = _split(args.only), _split(args.skip)
    try:
        chosen = select(CHECKS, only, skip)
    except ValueError as exc:
        print(f"stomp-proto check: {exc}", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(format_catalogue(chosen)))
        return 0
    if args.url is None:
        print(
            "stomp-proto check: give the server's URL, e.g. stomp://127.0.0.1:61613",
            file=sys.stderr,
        )
        return 2
    try:
        target = parse_target(
            args.url, vhost=args.vhost, ca_file=args.ca_file, insecure=args.insecure
        )
    except (ValueError, OSError) as exc:
        print(f"stomp-proto check: {exc}", file=sys.stderr)
        return 2
    if not plan(chosen, args.stomp_version):
        print(
            f"stomp-proto check: no check applies to STOMP {args.stomp_version} in this selection",
            file=sys.stderr,
        )
        return 2
    try:
        return asyncio.run(_run(args, target, only, skip))
    except PreflightError as exc:
        print(f"stomp-proto check: {exc}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, target: Target, only: list[str], skip: list[str]) -> int:
    printer = None if args.json else _Printer(args.verbose)
    report = await run_checks(
        target,
        only=only,
        skip=skip,
        version=args.stomp_version,
        timeout=args.timeout,
        jobs=args.jobs,
        queue_prefix=args.queue_prefix,
        topic_prefix=args.topic_prefix,
        on_start=printer.start if printer is not None else None,
        on_result=printer.add if printer is not None else None,
    )
    if printer is None:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print(format_summary(report))
    return 0 if report.passed else 1


class _Printer:
    """Prints results in catalogue order as soon as every earlier one is done."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.ready: dict[int, Result] = {}
        self.next = 0
        self.section: str | None = None

    def start(self, target: str, versions: tuple[str, ...], server: str | None, runs: int) -> None:
        print(format_header(target, versions, server, runs), flush=True)

    def add(self, index: int, result: Result) -> None:
        self.ready[index] = result
        while self.next in self.ready:
            result = self.ready.pop(self.next)
            self.next += 1
            if result.check.section != self.section:
                self.section = result.check.section
                print(format_section(self.section))
            print("\n".join(format_result(result, verbose=self.verbose)), flush=True)
