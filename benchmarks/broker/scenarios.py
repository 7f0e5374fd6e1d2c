"""The scenarios of issues 6 and 14, each run against one broker (a procs.Target).

Every scenario but client-individual runs over TCP and over WebSocket
(``ws-`` names): the same load, the same checks; over WebSocket each STOMP
frame is one message, both ways.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import time
import uuid
from dataclasses import dataclass, field

from stomp_proto import Frame

from .loadgen import (
    STALL_SECONDS,
    TS_RE,
    BenchError,
    Consumer,
    body,
    open_conn,
    produce,
    read_frames,
    send_frame,
    seq_token,
    subscribe,
)

BATCH = 500  # SEND frames per write (~70 KB)


@dataclass
class Result:
    value: float | None = None  # the headline figure
    unit: str = ""
    detail: str = ""
    cpu: float = 0.0  # broker CPU seconds during the scenario
    gen_cpu: float = 0.0  # load generator CPU seconds
    wall: float = 0.0
    error: str | None = None  # integrity failure or timeout
    extra: dict = field(default_factory=dict)
    #: Share of the machine's CPU time the hypervisor gave to other guests
    #: while ours wanted to run (/proc/stat's steal), over the scenario.
    steal: float = 0.0


@dataclass
class Counts:
    p2p: int = 100_000
    fanout: int = 10_000
    subscribers: int = 10
    acks: int = 100_000
    latency_rate: int = 1000
    latency_seconds: float = 10.0  # measured, after the warm-up
    latency_warmup: float = 1.0  # sent first, not counted (new connections, cold code)
    connections: int = 10_000
    sample: int = 100
    ws: int = 100_000
    durable: int = 50_000
    timeout: float = 300.0


QUICK = Counts(
    p2p=5000,
    fanout=1000,
    acks=5000,
    latency_seconds=1.0,
    latency_warmup=0.2,
    connections=500,
    sample=20,
    ws=5000,
    durable=2000,
    timeout=30.0,
)

#: The header that makes a SEND persistent (RabbitMQ's, and our broker's with --store).
PERSISTENT = ("persistent", "true")


def _name(kind: str) -> str:
    return f"/{kind}/bench-{uuid.uuid4().hex[:8]}"


def steal_seconds() -> float:
    """CPU seconds stolen from this guest so far, all CPUs (/proc/stat's
    ``steal``: time a virtual CPU had work but the hypervisor ran another
    guest); 0 where the kernel does not say."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


async def _measured(target, coro_fn, timeout: float) -> Result:
    cpu0, gen0, steal0 = target.cpu_seconds(), _gen_cpu(), steal_seconds()
    t0 = time.perf_counter()
    try:
        result = await asyncio.wait_for(coro_fn(), timeout)
    except asyncio.TimeoutError:
        result = Result(error=f"timed out after {timeout:.0f} s")
    except (BenchError, OSError) as exc:
        result = Result(error=f"{type(exc).__name__}: {exc}")
    result.wall = time.perf_counter() - t0
    result.cpu = target.cpu_seconds() - cpu0
    result.gen_cpu = _gen_cpu() - gen0
    result.steal = (steal_seconds() - steal0) / (result.wall * (os.cpu_count() or 1))
    return result


def _gen_cpu() -> float:
    t = os.times()
    return t.user + t.system


async def _stream(target, n: int, *, ack: str, ws: bool) -> Result:
    """1 producer streaming n messages to a queue, 1 consumer: messages/s."""
    dest = _name("queue")
    consumer_conn = await open_conn(target, ws=ws)
    producer_conn = await open_conn(target, ws=ws)
    await subscribe(consumer_conn, dest, "0", ack)
    frames = [send_frame(dest, body(i)) for i in range(n)]
    wire = _batches(producer_conn, frames)
    consumer = Consumer(consumer_conn, [seq_token(i) for i in range(n)], ack=ack != "auto")
    task = asyncio.create_task(consumer.run())
    start = time.perf_counter()
    await produce(producer_conn, wire)
    sent = time.perf_counter()
    await task
    if consumer.error is None:
        await consumer.check_quiet(0.3)
    for c in (consumer_conn, producer_conn):
        c.close()
    if consumer.error:
        return Result(error=consumer.error)
    elapsed = consumer.done_at - start
    return Result(
        value=n / elapsed,
        unit="msg/s",
        detail=f"{n} in {elapsed:.2f} s (producer done at {sent - start:.2f} s)",
    )


def _batches(conn, frames: list[bytes]) -> list[bytes]:
    """``frames`` as the producer's writes, BATCH frames each."""
    return [conn.wire(frames[i : i + BATCH]) for i in range(0, len(frames), BATCH)]


async def point_to_point(target, c: Counts, *, ws: bool = False) -> Result:
    n = c.ws if ws else c.p2p
    return await _measured(target, lambda: _stream(target, n, ack="auto", ws=ws), c.timeout)


async def client_individual(target, c: Counts) -> Result:
    return await _measured(
        target, lambda: _stream(target, c.acks, ack="client-individual", ws=False), c.timeout
    )


async def fan_out(target, c: Counts, *, ws: bool = False) -> Result:
    async def run() -> Result:
        dest = _name("topic")
        n, k = c.fanout, c.subscribers
        conns = [await open_conn(target, ws=ws) for _ in range(k)]
        for i, conn in enumerate(conns):
            await subscribe(conn, dest, str(i))
        producer_conn = await open_conn(target, ws=ws)
        wire = _batches(producer_conn, [send_frame(dest, body(i)) for i in range(n)])
        expected = [seq_token(i) for i in range(n)]
        consumers = [Consumer(conn, expected) for conn in conns]
        tasks = [asyncio.create_task(cons.run()) for cons in consumers]
        start = time.perf_counter()
        await produce(producer_conn, wire)
        await asyncio.gather(*tasks)
        errors = [f"subscriber {i}: {cons.error}" for i, cons in enumerate(consumers) if cons.error]
        if not errors:
            await asyncio.gather(*(cons.check_quiet(0.3) for cons in consumers))
            errors = [f"subscriber {i}: {x.error}" for i, x in enumerate(consumers) if x.error]
        for conn in [*conns, producer_conn]:
            conn.close()
        if errors:
            return Result(error="; ".join(errors[:3]))
        elapsed = max(cons.done_at for cons in consumers) - start
        return Result(
            value=n * k / elapsed,
            unit="deliveries/s",
            detail=f"{n} x {k} subscribers in {elapsed:.2f} s",
        )

    return await _measured(target, run, c.timeout)


async def latency(target, c: Counts, *, ws: bool = False) -> Result:
    async def run() -> Result:
        dest = _name("queue")
        consumer_conn = await open_conn(target, ws=ws)
        producer_conn = await open_conn(target, ws=ws)
        await subscribe(consumer_conn, dest, "0")
        warm = int(c.latency_rate * c.latency_warmup)
        n = warm + int(c.latency_rate * c.latency_seconds)
        # A SEND serialized once; the body (sequence number, send time) is
        # patched in per message.
        marker = b"#" * 100
        template = send_frame(dest, marker)
        head, tail = template.split(marker)
        pad = b"x" * (100 - 30)
        samples: list[int] = []
        expected = 0
        error: str | None = None

        async def consume() -> None:
            nonlocal expected, error
            buf = b""
            while expected < n:
                data = await consumer_conn.recv()
                now = time.perf_counter_ns()
                if not data:
                    error = f"EOF after {expected} messages"
                    return
                buf += data
                cut = buf.rfind(b"\x00")
                if cut < 0:
                    continue
                complete, buf = buf[: cut + 1], buf[cut + 1 :]
                found = TS_RE.findall(complete)
                if len(found) != complete.count(b"\x00"):
                    error = f"unexpected frame: {complete[:300]!r}"
                    return
                for seq, ts in found:
                    if int(seq) != expected:
                        error = f"got seq {int(seq)}, expected {expected}"
                        return
                    expected += 1
                    if expected > warm:
                        samples.append(now - int(ts))

        task = asyncio.create_task(consume())
        interval = 1.0 / c.latency_rate
        start = time.perf_counter()
        i = 0
        while i < n:
            due = min(n, int((time.perf_counter() - start) / interval) + 1)
            if due > i:
                now_ns = time.perf_counter_ns()
                producer_conn.write(
                    producer_conn.wire(
                        [head + b"%010d %019d" % (j, now_ns) + pad + tail for j in range(i, due)]
                    )
                )
                i = due
            await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
        await task
        for conn in (consumer_conn, producer_conn):
            conn.close()
        if error:
            return Result(error=error)
        samples.sort()

        def pct(p: float) -> float:
            return samples[min(len(samples) - 1, int(p * len(samples)))] / 1e6

        p50, p99, p999, mx = pct(0.5), pct(0.99), pct(0.999), samples[-1] / 1e6
        return Result(
            value=p999,
            unit="ms p99.9",
            detail=(
                f"p50 {p50:.3f} p99 {p99:.3f} p99.9 {p999:.3f} max {mx:.3f} ms"
                f" ({len(samples)} msgs after {warm} of warm-up)"
            ),
            extra={"p50": p50, "p99": p99, "p999": p999, "max": mx},
        )

    return await _measured(target, run, c.timeout)


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    return soft


async def connections(target, c: Counts, *, ws: bool = False) -> Result:
    async def run() -> Result:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        n = min(c.connections, soft - 200)
        note = "" if n == c.connections else f" (fd limit {soft}: {n} instead of {c.connections})"
        await asyncio.sleep(0.5)
        rss0 = target.rss_bytes()
        conns = []
        sem = asyncio.Semaphore(64)

        async def one() -> None:
            async with sem:
                conns.append(await open_conn(target, ws=ws))

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        took = time.perf_counter() - t0
        await asyncio.sleep(1.0)
        rss1 = target.rss_bytes()
        per = (rss1 - rss0) / n / 1024
        sample = random.sample(conns, min(c.sample, n))
        # Answered with a RECEIPT by both brokers over both transports (RabbitMQ
        # Web-STOMP closes on DISCONNECT without its RECEIPT).
        receipt = b"SEND\ndestination:/topic/idle-probe\nreceipt:idle\n\n\x00"
        for conn in sample:
            conn.write(conn.wrap(receipt))
        answered = 0
        for conn in sample:
            try:
                data = await read_frames(conn, 1, timeout=10.0)
                answered += data.startswith(b"RECEIPT") and b"receipt-id:idle" in data
            except (BenchError, asyncio.TimeoutError, OSError):
                pass
        for conn in conns:
            conn.close()
        await asyncio.sleep(0.5)
        result = Result(
            value=per,
            unit="KiB/conn",
            detail=(
                f"{n} conns in {took:.1f} s, RSS {rss0 >> 20} -> {rss1 >> 20} MiB, "
                f"{answered}/{len(sample)} answered a RECEIPT{note}"
            ),
            extra={"answered": answered, "sample": len(sample), "n": n},
        )
        if answered != len(sample):
            result.error = f"only {answered} of {len(sample)} sampled idle clients got a RECEIPT"
        return result

    return await _measured(target, run, c.timeout)


def _persistent_frames(dest: str, n: int) -> list[bytes]:
    """n persistent SENDs, each asking for a RECEIPT (``r<i>``)."""
    return [
        Frame(
            "SEND",
            (("destination", dest), PERSISTENT, ("receipt", f"r{i}")),
            body(i),
        ).serialize()
        for i in range(n)
    ]


async def _receipts(conn, n: int) -> None:
    """Read until n RECEIPT frames have arrived (BenchError for anything else)."""
    buf = b""
    seen = 0
    while seen < n:
        try:
            data = await asyncio.wait_for(conn.recv(), STALL_SECONDS)
        except asyncio.TimeoutError:
            raise BenchError(f"stalled: {seen} of {n} receipts") from None
        if not data:
            raise BenchError(f"EOF after {seen} of {n} receipts: {buf[-300:]!r}")
        buf = buf + data if buf else data
        cut = buf.rfind(b"\x00")
        if cut < 0:
            continue
        complete, buf = buf[: cut + 1], buf[cut + 1 :]
        count = complete.count(b"\x00")
        found = complete.count(b"RECEIPT\n")
        if found != count:
            raise BenchError(f"unexpected frame among receipts: {complete[:300]!r}")
        seen += count


async def _fill_durable(target, dest: str, n: int) -> float:
    """Send n receipted persistent SENDs to ``dest``; seconds until the last RECEIPT."""
    conn = await open_conn(target)
    wire = _batches(conn, _persistent_frames(dest, n))
    reader = asyncio.create_task(_receipts(conn, n))
    start = time.perf_counter()
    try:
        await produce(conn, wire)
        await reader
    finally:
        if not reader.done():
            reader.cancel()
        conn.close()
    return time.perf_counter() - start


async def durable_send(target, c: Counts) -> Result:
    """Receipted persistent SENDs to a durable queue, nobody consuming: receipts/s.

    Each RECEIPT means the message is on disk (our --store: committed in the
    SQLite WAL with synchronous=full; RabbitMQ: a publisher confirm)."""

    async def run() -> Result:
        dest = _name("queue")
        took = await _fill_durable(target, dest, c.durable)
        return Result(
            value=c.durable / took,
            unit="receipts/s",
            detail=f"{c.durable} receipted persistent SENDs in {took:.2f} s",
        )

    return await _measured(target, run, c.timeout)


async def durable_drain(target, c: Counts) -> Result:
    """A durable queue of persistent messages drained by a client-individual
    consumer that ACKs every message: messages/s (each ACK takes it off disk)."""

    async def run() -> Result:
        dest = _name("queue")
        await _fill_durable(target, dest, c.durable)  # not timed
        conn = await open_conn(target)
        consumer = Consumer(conn, [seq_token(i) for i in range(c.durable)], ack=True)
        # No receipt: the backlog follows the SUBSCRIBE at once, and the consumer
        # must see all of it.
        subscribe_frame = Frame(
            "SUBSCRIBE", (("destination", dest), ("id", "0"), ("ack", "client-individual"))
        ).serialize()
        start = time.perf_counter()
        conn.write(subscribe_frame)
        await consumer.run()
        if consumer.error is None and consumer.extra.strip(b"\r\n"):
            consumer.error = f"unexpected frame after the last: {consumer.extra[:200]!r}"
        if consumer.error is None:
            # Until the broker has applied every ACK: a RECEIPT after them
            # (ours: after the commit that takes them off disk).
            conn.write(b"DISCONNECT\nreceipt:drained\n\n\x00")
            data = await read_frames(conn, 1)
            if not data.startswith(b"RECEIPT"):
                consumer.error = f"DISCONNECT answered {data[:200]!r}"
        done = time.perf_counter()
        conn.close()
        if consumer.error:
            return Result(error=consumer.error)
        elapsed = done - start
        return Result(
            value=c.durable / elapsed,
            unit="msg/s",
            detail=(
                f"{c.durable} persistent messages drained and ACKed in {elapsed:.2f} s "
                f"(last one received at {consumer.done_at - start:.2f} s)"
            ),
        )

    return await _measured(target, run, c.timeout)


def _over_ws(scenario):
    async def run(target, c: Counts) -> Result:
        return await scenario(target, c, ws=True)

    return run


#: Idle-memory scenarios: each runs once, on a broker started for it (memory
#: that an earlier scenario freed would otherwise be reused and not show).
MEMORY = ("connections", "ws-connections")

SCENARIOS = {
    "connections": connections,
    "ws-connections": _over_ws(connections),
    "point-to-point": point_to_point,
    "fan-out": fan_out,
    "client-individual": client_individual,
    "latency": latency,
    "ws-point-to-point": _over_ws(point_to_point),
    "ws-fan-out": _over_ws(fan_out),
    "ws-latency": _over_ws(latency),
    "durable-send": durable_send,
    "durable-drain": durable_drain,
}

#: Scenarios our broker runs with ``--store`` (a broker of their own, so that
#: the others measure the broker without one).
DURABLE = ("durable-send", "durable-drain")

__all__ = ["DURABLE", "MEMORY", "QUICK", "SCENARIOS", "Counts", "Result", "raise_fd_limit"]
