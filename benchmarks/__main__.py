"""``python -m benchmarks``: run every benchmark and print one table (see README.md)."""

from __future__ import annotations

import argparse
import sys
import time

from .report import table, write_json, write_plot
from .runner import LIB_ORDER, run_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small workloads, one round (for CI; well under a minute)",
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="interleaved rounds (default 5; 1 with --quick)"
    )
    parser.add_argument(
        "--target",
        type=float,
        default=None,
        help="seconds per timed measurement (default 0.3; 0.03 with --quick)",
    )
    parser.add_argument(
        "--libs", default=None, help=f"comma-separated subset of {','.join(LIB_ORDER)}"
    )
    parser.add_argument("--json", metavar="PATH", help="also write all results as JSON")
    parser.add_argument("--plot", metavar="PATH", help="also write a PNG bar chart (matplotlib)")
    args = parser.parse_args(argv)

    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    target = args.target if args.target is not None else (0.03 if args.quick else 0.3)
    libs = args.libs.split(",") if args.libs else None
    t0 = time.perf_counter()
    suite = run_suite(args.quick, rounds, target, libs)
    print(table(suite))
    print(f"\n(total {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    if args.json:
        write_json(suite, args.json)
    if args.plot:
        try:
            write_plot(suite, args.plot)
        except ImportError as exc:
            print(f"no plot: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
