"""``python -m benchmarks.broker``: our broker against RabbitMQ, one table.

See README.md in this directory. ``--quick`` (CI): small counts, our broker
only, well under a minute. The exit status is 1 when a scenario lost,
duplicated or reordered a message (or failed), not when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import sys
from functools import partial
from pathlib import Path

from . import procs
from . import profile as spy
from .scenarios import DURABLE, QUICK, SCENARIOS, Counts, Result, raise_fd_limit

# scenario -> (higher is better, target text, check(ours, rabbit) -> bool | None)
TARGETS = {
    "point-to-point": (True, ">= 1.5x", lambda o, r: None if r is None else o >= 1.5 * r),
    "fan-out": (True, ">= 2x", lambda o, r: None if r is None else o >= 2 * r),
    "client-individual": (True, ">= 1x", lambda o, r: None if r is None else o >= r),
    "latency": (
        False,
        "p99.9 <= 2 ms, <= RMQ",
        lambda o, r: o <= 2.0 and (r is None or o <= r),
    ),
    "connections": (False, "<= 30 KiB", lambda o, r: o <= 30.0),
    "websocket": (True, "(none)", lambda o, r: None),
    "durable-send": (True, ">= 1x", lambda o, r: None if r is None else o >= r),
    "durable-drain": (True, "(none)", lambda o, r: None),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.broker", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, our broker only (CI)")
    parser.add_argument("--no-rabbitmq", action="store_true", help="our broker only")
    parser.add_argument(
        "--only", action="append", choices=list(SCENARIOS), help="run this scenario (repeatable)"
    )
    parser.add_argument("--connections", type=int, help="idle connections (default 10000)")
    parser.add_argument("--messages", type=int, help="messages for p2p/acks/websocket")
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        type=Path,
        help="sample our broker with py-spy during the scenarios (collapsed stacks to FILE)",
    )
    parser.add_argument(
        "--cprofile",
        metavar="FILE",
        type=Path,
        help="run our broker under cProfile (stats to FILE when it stops; ~4x slower)",
    )
    args = parser.parse_args(argv)
    if args.cprofile:
        os.environ["BENCH_BROKER_CPROFILE"] = str(args.cprofile.resolve())

    counts = QUICK if args.quick else Counts()
    if args.connections:
        counts.connections = args.connections
    if args.messages:
        counts.p2p = counts.acks = counts.ws = counts.durable = args.messages
    names = args.only or list(SCENARIOS)
    # Before any broker starts: the brokers inherit the limit.
    soft = raise_fd_limit(counts.connections + 1000)
    if soft < counts.connections + 200:
        print(f"note: file descriptor hard limit {soft}: fewer idle connections", file=sys.stderr)

    results: dict[str, dict[str, Result]] = {}
    # Our broker runs the durable scenarios with --store, in a process of its
    # own, so that the others measure it as it runs without one.
    plain = [n for n in names if n not in DURABLE]
    durable = [n for n in names if n in DURABLE]
    targets = []
    if plain:
        targets.append(("stomp-proto", procs.start_ours, plain))
    if durable:
        targets.append(("stomp-proto", partial(procs.start_ours, store=True), durable))
    if not (args.quick or args.no_rabbitmq):
        targets.append(("rabbitmq", procs.start_rabbitmq, names))
    skipped: dict[str, str] = {}
    for label, start, scenarios in targets:
        print(f"== {label}: starting", file=sys.stderr, flush=True)
        target = start()
        if isinstance(target, str):
            skipped[label] = target
            print(f"== {label}: skipped ({target})", file=sys.stderr)
            continue
        try:
            print(f"== {label}: pid {target.main_pid()}", file=sys.stderr, flush=True)
            sampler = None
            if args.py_spy and label == "stomp-proto":
                sampler = spy.start(target.main_pid(), args.py_spy)
            try:
                done = asyncio.run(_run_all(target, scenarios, counts))
                results.setdefault(label, {}).update(done)
            finally:
                spy.stop(sampler)
        finally:
            target.broker.close()

    _print_table(names, results, skipped, counts, quick=args.quick)
    if args.cprofile and args.cprofile.exists():
        import pstats

        print(f"\n# cProfile of stomp-proto ({args.cprofile}), by own time")
        pstats.Stats(str(args.cprofile), stream=sys.stdout).sort_stats("tottime").print_stats(25)
    if args.py_spy and args.py_spy.exists():
        print(f"\n# py-spy profile of stomp-proto ({args.py_spy})")
        print(spy.summary(args.py_spy))
    failed = [
        (label, name)
        for label, per in results.items()
        for name, r in per.items()
        if r.error is not None
    ]
    return 1 if failed else 0


async def _run_all(target, names: list[str], counts: Counts) -> dict[str, Result]:
    out = {}
    for name in names:
        print(f"   {target.name} {name} ...", file=sys.stderr, end="", flush=True)
        r = await SCENARIOS[name](target, counts)
        out[name] = r
        status = r.error or f"{_fmt(r.value)} {r.unit}; {r.detail}"
        print(
            f" {status} [broker CPU {r.cpu:.2f} s, generator CPU {r.gen_cpu:.2f} s,"
            f" wall {r.wall:.2f} s]",
            file=sys.stderr,
            flush=True,
        )
        await _settle(target)
    return out


async def _settle(target, limit: float = 60.0) -> None:
    """Wait until the broker is idle (below 5% of a core over half a second),
    so that one scenario's cleanup (10,000 closing connections, a deleted
    queue) is not billed to the next."""
    deadline = asyncio.get_running_loop().time() + limit
    last = target.cpu_seconds()
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.5)
        now = target.cpu_seconds()
        if now - last < 0.025:
            return
        last = now


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def _print_table(names, results, skipped, counts: Counts, *, quick: bool) -> None:
    ours = results.get("stomp-proto", {})
    rmq = results.get("rabbitmq", {})
    print()
    print(
        f"# broker benchmark, {datetime.datetime.now():%Y-%m-%d %H:%M}, "
        f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        + (" (--quick)" if quick else "")
    )
    for label, why in skipped.items():
        print(f"# {label} skipped: {why}")
    head = (
        "scenario",
        "unit",
        "stomp-proto",
        "rabbitmq",
        "ratio",
        "CPU s ours",
        "CPU s RMQ",
        "target",
        "verdict",
        "integrity",
    )
    rows = [head]
    for name in names:
        o, r = ours.get(name), rmq.get(name)
        if o is None:
            continue
        higher, target_text, check = TARGETS[name]
        ov = o.value if o.error is None else None
        rv = r.value if (r is not None and r.error is None) else None
        ratio = "-"
        if ov and rv:
            ratio = f"{ov / rv:.2f}x" if higher else f"{ov / rv:.2f}"
        verdict = "-"
        if ov is not None:
            ok = check(ov, rv)
            verdict = "n/a" if ok is None else ("PASS" if ok else "MISS")
        errs = [f"{lbl}: {x.error}" for lbl, x in (("ours", o), ("rmq", r)) if x and x.error]
        rows.append(
            (
                name,
                o.unit or (r.unit if r else ""),
                _fmt(ov),
                _fmt(rv),
                ratio,
                f"{o.cpu:.1f}",
                f"{r.cpu:.1f}" if r else "-",
                target_text,
                verdict,
                "ok" if not errs else "FAIL",
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    for k, row in enumerate(rows):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print()
    for label, per in results.items():
        for name in names:
            x = per.get(name)
            if x is None:
                continue
            text = (x.error and f"FAILED: {x.error}") or x.detail
            print(
                f"  {label:11} {name:17} {text}"
                f"  [generator CPU {x.gen_cpu:.1f} s / wall {x.wall:.1f} s]"
            )


if __name__ == "__main__":
    sys.exit(main())
