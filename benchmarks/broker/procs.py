"""The brokers under test as subprocesses, and what /proc says about them.

Our broker and RabbitMQ are started with the interop tests' classes
(tests/interop/ourbroker.py and brokers.py): fresh temporary directories, free
loopback ports, stopped by the PIDs started here. CPU seconds and RSS are read
from /proc for every process in the broker's process groups (RabbitMQ: the
shell wrapper, beam.smp, epmd and helpers; ours: one Python process).
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.interop.brokers import HOST, Broker, BrokerNotInstalled, RabbitMQ
from tests.interop.ourbroker import OurBroker

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class BenchOurBroker(OurBroker):
    """Our broker as the issue runs it: no heart-beats offered, with a user
    (so that logins are checked as in production); with ``store``, a durable
    store in its directory (``--store``, the default sync policy: full)."""

    def __init__(
        self,
        profile: str | None = None,
        module: str = "stomp_proto.broker",
        *,
        store: bool = False,
    ) -> None:
        super().__init__()
        self.profile = profile
        self.module = module  # benchmarks.broker.wsproto_broker: the wsproto framing
        self.store = store

    def command(self) -> list[str]:
        cmd = super().command()
        cmd[cmd.index("stomp_proto.broker")] = self.module
        at = cmd.index("--heart-beat")
        cmd[at + 1] = "0,0"
        extra = os.environ.get("BENCH_BROKER_ARGS", "").split()
        if self.store:
            extra = ["--store", str(self.dir / "store.db"), *extra]
        cmd = [*cmd, "--log-level", "WARNING", *extra]
        if self.profile:  # written when the broker exits on SIGTERM
            cmd[1:1] = ["-m", "cProfile", "-o", self.profile]
        return cmd


class Target:
    """One broker under test: its connection parameters and its processes."""

    def __init__(self, name: str, broker: Broker) -> None:
        self.name = name
        self.broker = broker
        self.host = HOST
        self.port = broker.stomp_port
        self.ws_port = broker.ws_port
        self.ws_path = getattr(broker, "ws_path", "/ws")
        self.login = broker.login
        self.passcode = broker.passcode
        self.vhost = broker.vhost

    def pids(self) -> list[int]:
        groups = {p.pid for p in self.broker._procs}
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if int(fields[2]) in groups:  # pgrp
                found.append(int(entry))
        return found

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / _TICK

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def main_pid(self) -> int:
        """The process doing the work (beam.smp for RabbitMQ)."""
        pids = self.pids()
        best, most = pids[0], -1
        for pid in pids:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            rss = int(fields[21])
            if rss > most:
                best, most = pid, rss
        return best


def start_ours(
    profile: str | None = None,
    module: str = "stomp_proto.broker",
    name: str = "stomp-proto",
    *,
    store: bool = False,
) -> Target:
    """Our broker, started; under cProfile (stats to ``profile`` when it stops) if
    given; with ``store``, a durable store (``--store``)."""
    broker = BenchOurBroker(profile, module, store=store)
    broker.start()
    return Target(name, broker)


def start_rabbitmq() -> Target | str:
    """A started RabbitMQ, or why it cannot run here."""
    try:
        broker = RabbitMQ()
    except BrokerNotInstalled as exc:
        return str(exc)
    broker.start()
    return Target("rabbitmq", broker)


def start_floor() -> Target:
    """The machine's floor for the latency scenario (floor.py), started."""
    from .floor import FloorServer

    server = FloorServer()
    server.start()
    return Target("floor", server)


__all__ = ["_PAGE", "Target", "start_floor", "start_ours", "start_rabbitmq"]
