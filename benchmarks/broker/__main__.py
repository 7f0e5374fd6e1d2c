"""``python -m benchmarks.broker``: our broker against RabbitMQ, one table.

See README.md in this directory. Both brokers run side by side and every
round runs each scenario on each in turn, so that a change in the machine's
load hits both alike; the table gives the median of the rounds, and each
ratio is the median of the per-round ratios. ``--quick`` (CI): small counts,
one round, our broker only, well under a minute. The exit status is 1 when a
scenario lost, duplicated or reordered a message (or failed), not when a
target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import statistics
import sys
from functools import partial
from pathlib import Path

from . import procs
from . import profile as spy
from .scenarios import DURABLE, MEMORY, QUICK, SCENARIOS, Counts, Result, raise_fd_limit


def _vs_rabbitmq(factor: float):
    return lambda ours, ratio: None if ratio is None else ratio >= factor


# scenario -> (higher is better, target text, check(ours, ratio to RabbitMQ) -> bool | None);
# the targets of issue 14 (and issue 6's for client-individual).
TARGETS = {
    "connections": (False, "<= 15 KiB", lambda o, r: o <= 15.0),
    "ws-connections": (False, "<= 25 KiB", lambda o, r: o <= 25.0),
    "point-to-point": (True, ">= 1.5x RMQ", _vs_rabbitmq(1.5)),
    "fan-out": (True, ">= 2.2x RMQ", _vs_rabbitmq(2.2)),
    "client-individual": (True, ">= 1x RMQ", _vs_rabbitmq(1.0)),
    "latency": (False, "p99.9 <= 1 ms", lambda o, r: o <= 1.0),
    "ws-point-to-point": (True, ">= 1.5x RMQ", _vs_rabbitmq(1.5)),
    "ws-fan-out": (True, ">= 2x RMQ", _vs_rabbitmq(2.0)),
    "ws-latency": (False, "p99.9 <= 2 ms", lambda o, r: o <= 2.0),
    "durable-send": (True, ">= 1x RMQ", _vs_rabbitmq(1.0)),
    "durable-drain": (True, "(none)", lambda o, r: None),
}
# Our WebSocket path against our TCP path: row -> (WebSocket scenario, TCP scenario, target).
DERIVED = {
    "ws/tcp point-to-point": ("ws-point-to-point", "point-to-point", 0.6),
    "ws/tcp fan-out": ("ws-fan-out", "fan-out", 0.6),
}

OURS, RABBIT = "stomp-proto", "rabbitmq"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.broker", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts, our broker only (CI)")
    parser.add_argument("--no-rabbitmq", action="store_true", help="our broker only")
    parser.add_argument(
        "--only", action="append", choices=list(SCENARIOS), help="run this scenario (repeatable)"
    )
    parser.add_argument("--rounds", type=int, help="rounds of each scenario (default 3; quick 1)")
    parser.add_argument("--connections", type=int, help="idle connections (default 10000)")
    parser.add_argument("--messages", type=int, help="messages for p2p/acks (TCP and WebSocket)")
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

    counts = QUICK if args.quick else Counts()
    if args.connections:
        counts.connections = args.connections
    if args.messages:
        counts.p2p = counts.acks = counts.ws = counts.durable = args.messages
    rounds = args.rounds or (1 if args.quick else 3)
    names = args.only or list(SCENARIOS)
    # Before any broker starts: the brokers inherit the limit.
    soft = raise_fd_limit(counts.connections + 1000)
    if soft < counts.connections + 200:
        print(f"note: file descriptor hard limit {soft}: fewer idle connections", file=sys.stderr)

    starters = {OURS: procs.start_ours}
    if not (args.quick or args.no_rabbitmq):
        starters[RABBIT] = procs.start_rabbitmq
    results: dict[str, dict[str, list[Result]]] = {label: {} for label in starters}
    skipped: dict[str, str] = {}
    load = [os.getloadavg()]

    # Idle memory (a broker started for each scenario), then the durable
    # scenarios (our broker with --store, a process of its own, so that the
    # others measure it without a store): one round each.
    durable_starters = {**starters, OURS: partial(procs.start_ours, store=True)}
    for name in (n for n in names if n in MEMORY or n in DURABLE):
        chosen = durable_starters if name in DURABLE else starters
        for label, start in chosen.items():
            if label in skipped:
                continue
            target = _start(label, start, skipped)
            if target is None:
                continue
            try:
                results[label][name] = [asyncio.run(_one(target, name, counts))]
            finally:
                target.broker.close()

    # Throughput and latency: both brokers up, rounds interleaved.
    rest = [n for n in names if n not in MEMORY and n not in DURABLE]
    targets = {}
    sampler = None
    # The machine's own latency tail (floor.py), measured in each round with the brokers.
    floor = procs.start_floor() if "latency" in rest and not args.quick else None
    floors: list[Result] = []
    try:
        if rest:
            for label, start in starters.items():
                if label in skipped:
                    continue
                if label == OURS and args.cprofile:
                    stats = str(args.cprofile.resolve())
                    target = _start(label, partial(procs.start_ours, stats), skipped)
                else:
                    target = _start(label, start, skipped)
                if target is not None:
                    targets[label] = target
            if args.py_spy and OURS in targets:
                sampler = spy.start(targets[OURS].main_pid(), args.py_spy)
        for r in range(rounds):
            order = list(targets.values())
            if r % 2:
                order.reverse()  # who goes first alternates
            print(f"== round {r + 1} of {rounds}", file=sys.stderr, flush=True)
            per = asyncio.run(_round(order, targets.values(), rest, counts))
            if floor is not None:
                floors.append(asyncio.run(_one(floor, "latency", counts)))
            for label, found in per.items():
                for name, result in found.items():
                    results[label].setdefault(name, []).append(result)
            load.append(os.getloadavg())
    finally:
        spy.stop(sampler)
        for target in targets.values():
            target.broker.close()
        if floor is not None:
            floor.broker.close()

    _print_table(names, results, skipped, quick=args.quick, rounds=rounds, load=load)
    _print_floor(floors)
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
        for name, rs in per.items()
        for r in rs
        if r.error is not None
    ]
    return 1 if failed else 0


def _print_floor(floors: list[Result]) -> None:
    good = _good(floors)
    if not good:
        return
    rounds = ", ".join(f"{x.value:.2f} (steal {x.steal:.0%})" for x in good)
    print(
        f"\n# the machine's floor (floor.py: a bare asyncio server forwarding each SEND's bytes,"
        f" the same load and generator): latency p99.9 {_fmt(_median([x.value for x in good]))}"
        f" ms, median of {len(good)} rounds ({rounds});"
        f" p50 {_fmt(_median([x.extra['p50'] for x in good]))} ms"
    )


def _start(label, start, skipped: dict[str, str]):
    print(f"== {label}: starting", file=sys.stderr, flush=True)
    target = start()
    if isinstance(target, str):
        skipped[label] = target
        print(f"== {label}: skipped ({target})", file=sys.stderr)
        return None
    print(f"== {label}: pid {target.main_pid()}", file=sys.stderr, flush=True)
    return target


async def _one(target, name: str, counts: Counts) -> Result:
    print(f"   {target.name} {name} ...", file=sys.stderr, end="", flush=True)
    r = await SCENARIOS[name](target, counts)
    status = r.error or f"{_fmt(r.value)} {r.unit}; {r.detail}"
    print(
        f" {status} [broker CPU {r.cpu:.2f} s, generator CPU {r.gen_cpu:.2f} s,"
        f" wall {r.wall:.2f} s, steal {r.steal:.0%}]",
        file=sys.stderr,
        flush=True,
    )
    return r


async def _round(order, everyone, names: list[str], counts: Counts) -> dict[str, dict[str, Result]]:
    out: dict[str, dict[str, Result]] = {}
    for name in names:
        for target in order:
            out.setdefault(target.name, {})[name] = await _one(target, name, counts)
            for each in everyone:  # both share the machine: both must be quiet
                await _settle(each)
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


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _good(rs: list[Result] | None) -> list[Result]:
    return [r for r in rs or () if r.error is None and r.value is not None]


def _ratios(ours: list[Result], theirs: list[Result]) -> list[float]:
    """Per-round ratios (round k of ours against round k of theirs)."""
    return [
        o.value / t.value
        for o, t in zip(ours, theirs, strict=False)
        if o.error is None and t.error is None and o.value and t.value
    ]


def _print_table(names, results, skipped, *, quick: bool, rounds: int, load) -> None:
    ours = results.get(OURS, {})
    rmq = results.get(RABBIT, {})
    print()
    loads = ", ".join(f"{a:.2f}" for a, _, _ in load)
    print(
        f"# broker benchmark, {datetime.datetime.now():%Y-%m-%d %H:%M}, "
        f"{platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{rounds} round(s)" + (" (--quick)" if quick else "")
    )
    print(f"# load average (1 min) before and after each round: {loads}")
    for label, why in skipped.items():
        print(f"# {label} skipped: {why}")
    head = (
        "scenario",
        "unit",
        "stomp-proto",
        "rabbitmq",
        "ratio",
        "rounds",
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
        ov = _median([x.value for x in _good(o)])
        rv = _median([x.value for x in _good(r)])
        ratio = _median(_ratios(o, r or []))
        verdict = "-"
        if ov is not None:
            ok = check(ov, ratio)
            verdict = "n/a" if ok is None else ("PASS" if ok else "MISS")
        errors = any(x.error for x in [*o, *(r or [])])
        rows.append(
            (
                name,
                o[0].unit or (r[0].unit if r else ""),
                _fmt(ov),
                _fmt(rv),
                "-" if ratio is None else (f"{ratio:.2f}x" if higher else f"{ratio:.2f}"),
                str(len(o)),
                f"{statistics.median(x.cpu for x in o):.1f}",
                f"{statistics.median(x.cpu for x in r):.1f}" if r else "-",
                target_text,
                verdict,
                "FAIL" if errors else "ok",
            )
        )
    for name, (ws, tcp, factor) in DERIVED.items():
        if ws not in ours or tcp not in ours:
            continue
        ratio = _median(_ratios(ours[ws], ours[tcp]))
        rows.append(
            (
                name,
                "ours ws/tcp",
                "-" if ratio is None else f"{ratio:.2f}x",
                "-",
                "-",
                str(len(ours[ws])),
                "-",
                "-",
                f">= {factor:g}x",
                "-" if ratio is None else ("PASS" if ratio >= factor else "MISS"),
                "ok",
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
            for k, x in enumerate(per.get(name, ())):
                text = (x.error and f"FAILED: {x.error}") or f"{_fmt(x.value)} {x.unit}, {x.detail}"
                print(
                    f"  {label:11} {name:17} #{k + 1} {text}"
                    f"  [CPU {x.cpu:.1f} s, generator CPU {x.gen_cpu:.1f} s / wall {x.wall:.1f} s,"
                    f" steal {x.steal:.0%}]"
                )


if __name__ == "__main__":
    sys.exit(main())
