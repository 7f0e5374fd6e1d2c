"""``python -m benchmarks.broker.relay``: clients through the relay against the same clients
straight to RabbitMQ, in one run (issue 15).

One RabbitMQ (the interop tests' class: its own directory and ports) and two of our nodes,
each a ``stomp-proto broker --relay stomp://guest:guest@...`` subprocess. The load generator
is the broker benchmark's (``loadgen.py``: raw sockets, frames serialized ahead of time, every
message's sequence number checked in order), pointed at RabbitMQ ("direct") or at the nodes:

* **p2p**: 1 producer streams N SENDs (100-byte bodies) to a queue, 1 consumer (``ack:auto``):
  direct, then producer and consumer on node 1. Target: the relay >= 0.8x direct.
* **p2p-2-streams**: 2 such streams on 2 queues: direct; both on node 1; across the nodes
  (each stream's producer on one node, its consumer on the other). Target: 2 nodes > 1 node.
* **latency**: 1,000 msg/s through a queue, the send time in the body: direct, then node 1.

Every round (``--rounds``, default 3) runs each scenario direct and through the relay in
turn, so that the machine's load hits both alike; a verdict is the median of the per-round
ratios. For every run through the relay it prints the nodes' CPU per message (utime+stime of
the node processes over the messages relayed), and for every run the share of CPU time the
hypervisor stole (``/proc/stat``). ``--pin`` puts RabbitMQ and the load generator on the
first CPU and the nodes on the others, as if the nodes had machines of their own (the
deployment scale-out is for; on a 2-core machine both nodes then share one CPU, so only p2p
says something). ``--quick`` (CI) uses small counts and one round: it
proves the wiring, not the figures, which are for a quiet machine. Without RabbitMQ installed
it says so and exits 0. The exit status is 1 when a scenario lost, duplicated or reordered a
message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from tests.interop.brokers import RabbitMQ

from . import procs
from . import profile as spy
from .loadgen import Consumer, batches, body, open_conn, produce, send_frame, seq_token, subscribe
from .scenarios import BATCH, QUICK, Counts, Result, _measured, _name, latency


class RelayNode(procs.BenchOurBroker):
    """Our broker relaying ``/topic`` and ``/queue`` to ``upstream`` (a started RabbitMQ)."""

    def __init__(
        self, upstream: RabbitMQ, connections: int = 2, number: int = 1, cpus: str | None = None
    ) -> None:
        super().__init__(os.environ.get("BENCH_BROKER_CPROFILE"))
        self.upstream = upstream
        self.connections = connections
        self.number = number
        self.cpus = cpus  # taskset's list: the CPUs the node runs on (None: any)

    def command(self) -> list[str]:
        up = self.upstream
        cmd = super().command()
        if "cProfile" in cmd:  # BENCH_BROKER_CPROFILE=PATH: one profile per node, PATH.N
            at = cmd.index("-o") + 1
            cmd[at] = f"{cmd[at]}.{self.number}"
        pin = ["taskset", "-c", self.cpus] if self.cpus else []
        return [
            *pin,
            *cmd,
            "--relay",
            f"stomp://{up.login}:{up.passcode}@{up.host}:{up.stomp_port}",
            "--relay-connections",
            str(self.connections),
        ]


async def _streams(producers: list, consumers: list, n: int) -> Result:
    """One stream per (producer target, consumer target) pair, each on its own
    queue, all at once: aggregate messages/s."""
    plans = []
    for source, sink in zip(producers, consumers, strict=True):
        queue = _name("queue")
        consumer_conn = await open_conn(sink)
        producer_conn = await open_conn(source)
        await subscribe(consumer_conn, queue, "0")
        wire = batches([send_frame(queue, body(i)) for i in range(n)], BATCH)
        plans.append((producer_conn, consumer_conn, wire))
    consumers_ = [Consumer(c, [seq_token(i) for i in range(n)]) for _, c, _ in plans]
    tasks = [asyncio.create_task(c.run()) for c in consumers_]
    start = time.perf_counter()
    await asyncio.gather(*(produce(p, wire) for p, _, wire in plans))
    await asyncio.gather(*tasks)
    errors = [c.error for c in consumers_ if c.error]
    if not errors:
        await asyncio.gather(*(c.check_quiet(0.3) for c in consumers_))
        errors = [c.error for c in consumers_ if c.error]
    for p, c, _ in plans:
        p.close()
        c.close()
    if errors:
        return Result(error="; ".join(e for e in errors if e)[:300])
    elapsed = max(c.done_at for c in consumers_) - start
    total = n * len(plans)
    return Result(
        value=total / elapsed,
        unit="msg/s",
        detail=f"{total} in {elapsed:.2f} s",
        extra={"n": total},
    )


class _Cpu:
    """Broker CPU seconds over several targets (the nodes, or RabbitMQ)."""

    def __init__(self, *targets) -> None:
        self.targets = targets

    def cpu_seconds(self) -> float:
        return sum(t.cpu_seconds() for t in self.targets)


async def _run(rabbit, node1, node2, counts: Counts, names: list[str], turn: int) -> list[tuple]:
    """One round: each scenario direct and through the relay; rows of
    (scenario, how, result, per-message CPU, round)."""
    rows: list[tuple] = []
    nodes = _Cpu(node1, node2)

    async def run(scenario: str, how: str, cpu_of, coro) -> Result:
        print(f"   #{turn} {scenario} {how} ...", file=sys.stderr, end="", flush=True)
        upstream_before = rabbit.cpu_seconds()
        result = await _measured(cpu_of, coro, counts.timeout)
        upstream_cpu = rabbit.cpu_seconds() - upstream_before
        per = ""
        if result.error is None and result.extra.get("n"):
            n_ = result.extra["n"]
            per = f"RabbitMQ {upstream_cpu / n_ * 1e6:.1f} us/msg"
            if how != "direct":
                per = f"{result.cpu / n_ * 1e6:.1f} us/msg (nodes' CPU), {per}"
        print(
            f" {result.error or f'{result.value:,.0f} {result.unit}'} {per}"
            f" [steal {result.steal:.0%}]",
            file=sys.stderr,
        )
        rows.append((scenario, how, result, per, turn))
        await asyncio.sleep(0.5)
        return result

    n = counts.p2p
    if "p2p" in names:
        await run("p2p", "direct", rabbit, lambda: _streams([rabbit], [rabbit], n))
        await run("p2p", "1 node", nodes, lambda: _streams([node1], [node1], n))
    if "p2p-2-streams" in names:
        half = max(1, n // 2)
        await run(
            "p2p-2-streams", "direct", rabbit, lambda: _streams([rabbit] * 2, [rabbit] * 2, half)
        )
        await run(
            "p2p-2-streams", "1 node", nodes, lambda: _streams([node1] * 2, [node1] * 2, half)
        )
        await run(
            "p2p-2-streams",
            "2 nodes",
            nodes,
            lambda: _streams([node1, node2], [node2, node1], half),
        )
    if "latency" in names:
        for how, target in (("direct", rabbit), ("1 node", node1)):
            print(f"   #{turn} latency {how} ...", file=sys.stderr, end="", flush=True)
            result = await latency(target, counts)
            print(f" {result.error or result.detail} [steal {result.steal:.0%}]", file=sys.stderr)
            rows.append(("latency", how, result, "", turn))
    return rows


def _ratios(rows: list[tuple], scenario: str, top: str, bottom: str) -> list[float]:
    """``top`` over ``bottom`` in each round where both ran clean."""
    found = {(s, h, t): r.value for s, h, r, _, t in rows if r.error is None}
    out = []
    for turn in sorted({t for *_, t in rows}):
        a, b = found.get((scenario, top, turn)), found.get((scenario, bottom, turn))
        if a and b:
            out.append(a / b)
    return out


def _verdict(ratios: list[float], what: str, target: float, strict: bool = False) -> str:
    """``what`` (with ``{}`` for the ratio) for the median of ``ratios``, and
    whether it reaches ``target`` (above it, when ``strict``)."""
    ratio = statistics.median(ratios)
    each = ", ".join(f"{x:.2f}" for x in ratios)
    passed = ratio > target if strict else ratio >= target
    return (
        f"{what.format(f'{ratio:.2f}x')}, median of {len(ratios)} rounds ({each})"
        f" ({'PASS' if passed else 'MISS'} {'>' if strict else '>='} {target:g}x)"
    )


def _verdicts(rows: list[tuple]) -> dict[str, str]:
    out = {}
    p2p = _ratios(rows, "p2p", "1 node", "direct")
    if p2p:
        out["p2p"] = _verdict(p2p, "{} direct", 0.8)
    two = _ratios(rows, "p2p-2-streams", "2 nodes", "1 node")
    if two:
        out["p2p-2-streams"] = _verdict(two, "2 nodes {} 1 node", 1, strict=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.broker.relay", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts (CI): the wiring only")
    parser.add_argument("--messages", type=int, help="messages per p2p run (default 100000)")
    parser.add_argument(
        "--only",
        action="append",
        choices=["p2p", "p2p-2-streams", "latency"],
        help="run this scenario (repeatable)",
    )
    parser.add_argument(
        "--connections", type=int, default=2, help="each node's pool connections (default 2)"
    )
    parser.add_argument("--rounds", type=int, help="rounds of every scenario (default 3; quick 1)")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="RabbitMQ and the load generator on the first CPU, the nodes on the others"
        " (as if on machines of their own; Linux, 2+ CPUs, taskset)",
    )
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    counts = QUICK if args.quick else Counts()
    if args.messages:
        counts.p2p = args.messages
    names = args.only or ["p2p", "p2p-2-streams", "latency"]

    pinned = None
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2 or shutil.which("taskset") is None:
            print("--pin needs 2 or more CPUs and taskset: not pinned", file=sys.stderr)
        else:
            # Before RabbitMQ starts, which inherits it; the generator is this thread.
            os.sched_setaffinity(0, {cpus[0]})
            pinned = (cpus[0], ",".join(map(str, cpus[1:])))
    rabbit = procs.start_rabbitmq()
    if isinstance(rabbit, str):
        print(f"relay benchmark skipped: {rabbit}", file=sys.stderr)
        return 0
    started = []
    try:
        for number in (1, 2):
            node = RelayNode(
                rabbit.broker,  # type: ignore[arg-type]
                args.connections,
                number,
                pinned[1] if pinned else None,
            )
            node.start()
            started.append(node)
        time_start = time.time()
        targets = [procs.Target(f"node-{i + 1}", node) for i, node in enumerate(started)]
        spy_path = os.environ.get("BENCH_RELAY_PYSPY")  # PATH: node 1 sampled by py-spy
        sampler = spy.start(targets[0].main_pid(), Path(spy_path)) if spy_path else None
        try:
            rows = []
            for turn in range(1, rounds + 1):
                rows += asyncio.run(_run(rabbit, *targets, counts, names, turn))
        finally:
            spy.stop(sampler)
    finally:
        for node in started:
            node.close()
        rabbit.broker.close()

    print()
    print(f"# relay benchmark{' (--quick)' if args.quick else ''}: {time.ctime(time_start)}")
    if pinned:
        print(
            f"# pinned: RabbitMQ and the load generator on CPU {pinned[0]},"
            f" the nodes on CPU {pinned[1]}"
        )
    width = max(len(s) for s, *_ in rows)
    for scenario, how, result, per, turn in sorted(rows, key=lambda row: (row[0], row[4])):
        text = (result.error and f"FAILED: {result.error}") or (
            f"{result.value:,.1f} {result.unit}"
            if result.unit.startswith("ms")
            else f"{result.value:,.0f} {result.unit}"
        )
        cpu = f"broker CPU {result.cpu:.2f} s"
        print(
            f"  {scenario:{width}} #{turn} {how:8}  {text:24} {cpu:20} {per}  {result.detail}"
            f"  [steal {result.steal:.0%}]"
        )
    for scenario, verdict in _verdicts(rows).items():
        print(f"  {scenario}: {verdict}")
    if spy_path and Path(spy_path).exists():
        print(f"\n# py-spy profile of node 1 ({spy_path})")
        print(spy.summary(Path(spy_path)))
    return 1 if any(r.error for _, _, r, _, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
