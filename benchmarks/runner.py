"""Plan, validate, time and report every benchmark; the one table is printed from here.

Method (see README.md for the why):

1. Each (library, row) cell is first *probed* on the first 1/64 of the workload with frames kept:
   an exception makes the cell "n/a", a frame that differs from the expected one makes it
   "wrong" (with the first difference as the reason). Neither is timed.
2. The probe's time *plans* the cell: a peer whose one run over the whole workload would take
   more than ``whole`` seconds (1.0; 0.3 with --quick) is timed on a prefix of it (whole frames)
   sized to about ``target`` seconds, and marked with ``*``; the others are timed on the whole
   workload, looped until about ``target`` seconds. The planned prefix is validated again.
3. Rounds interleave everything: in each round every cell is timed once, right next to the floor
   on the same bytes (which goes first alternates by round; the cell order rotates). A cell's
   ratio is (its frames/s) / (the floor's frames/s) in that pair; the table shows medians over
   rounds, and the floor column the median of all the floor's runs on the whole workload.
   Garbage collection is off while a loop is timed (as ``timeit`` does) and run between loops.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from . import adapters as A
from . import workloads as W

PARSE_ROWS = ("a", "b", "c", "d1500", "d7", "e")
SERIALIZE_ROWS = ("a", "e")
LIB_ORDER = ("stomp_proto", "stompest", "stomp.py", "stompman", "aiostomp")

TARGETS = {
    ("parse", "a"): 0.5,
    ("parse", "b"): 0.5,
    ("parse", "c"): 0.8,
    ("parse", "d1500"): 0.5,
    ("parse", "d7"): 0.5,
    ("parse", "e"): 0.5,
    ("serialize", "a"): 0.6,
    ("serialize", "e"): 0.6,
    ("events", "a"): 0.6,
}
MEMORY_TARGET = 2.0  # peak traced bytes / largest frame; PASS up to MEMORY_SLACK times this
MEMORY_SLACK = 1.1


@dataclass
class Cell:
    kind: str  # parse | serialize | events
    row: str  # workload key
    lib: str
    status: str = "ok"  # ok | wrong | n/a | missing
    reason: str = ""
    n: int = 0  # frames per timed run
    total: int = 0  # frames in the whole workload
    loops: int = 1
    run: Callable[[], int] | None = field(default=None, repr=False)
    floor_key: tuple | None = None
    ratios: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)  # frames (or events) per second

    @property
    def ratio(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None

    @property
    def rate(self) -> float | None:
        return statistics.median(self.rates) if self.rates else None


# ------------------------------------------------------------------------------------ timing
def _timed(run: Callable[[], int], loops: int) -> tuple[float, int]:
    """Return (seconds per loop, frames per loop)."""
    gc.collect()
    gc.disable()
    try:
        count = 0
        t0 = time.perf_counter()
        for _ in range(loops):
            count = run()
        elapsed = time.perf_counter() - t0
    finally:
        gc.enable()
    return elapsed / loops, count


def _loops_for(seconds: float, target: float) -> int:
    return max(1, min(10_000, round(target / max(seconds, 1e-9))))


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= 110 else text[:107] + "..."


# -------------------------------------------------------------------------------- validation
def _first_occurrence(headers) -> dict:
    out: dict = {}
    for name, value in headers:
        out.setdefault(name, value)
    return out


def check_frames(got: list, expected: list, ordered: bool) -> str | None:
    """Return why ``got`` differs from ``expected`` frames, or None when they match."""
    for i, (g, e) in enumerate(zip(got, expected, strict=False)):
        command, headers, body = g
        if command != e[0]:
            return f"frame {i}: command {command!r}, expected {e[0]!r}"
        if ordered:
            headers = tuple(tuple(h) for h in headers)
            if headers != e[1]:
                for j, (gh, eh) in enumerate(zip(headers, e[1], strict=False)):
                    if gh != eh:
                        return f"frame {i} header {j}: {gh!r}, expected {eh!r}"
                return f"frame {i}: {len(headers)} headers, expected {len(e[1])}"
        else:
            exp = _first_occurrence(e[1])
            headers = dict(headers)
            if headers != exp:
                for name, value in exp.items():
                    if name not in headers:
                        return f"frame {i}: header {name!r} (={value!r}) lost"
                    if headers[name] != value:
                        return f"frame {i}: header {name!r} = {headers[name]!r}, expected {value!r}"
                extra = next(iter(set(headers) - set(exp)))
                return f"frame {i}: unexpected header {extra!r}"
        if body is None:
            body = b""
        if bytes(body) != e[2]:
            return f"frame {i}: body of {len(body)} bytes differs from expected {len(e[2])} bytes"
    if len(got) != len(expected):
        return f"{len(got)} frames, expected {len(expected)}"
    return None


def check_serialized(out: list[bytes], expected: list) -> str | None:
    """Return why the per-frame ``out`` bytes are not the STOMP 1.2 encoding of ``expected``.

    Header order is free (several peers sort headers); each header line must be escaped exactly
    as STOMP 1.2 requires, and body and NUL must follow the blank line.
    """
    if len(out) != len(expected):
        return f"{len(out)} frames, expected {len(expected)}"
    for i, (data, (command, headers, body)) in enumerate(zip(out, expected, strict=True)):
        data = bytes(data)
        head, sep, rest = data.partition(b"\n\n")
        if not sep or not rest.endswith(b"\0"):
            return f"frame {i}: not a complete frame"
        lines = head.decode("utf-8", "replace").split("\n")
        if lines[0] != command:
            return f"frame {i}: command {lines[0]!r}, expected {command!r}"
        want = [f"{W.escape_12(n)}:{W.escape_12(v)}" for n, v in headers]
        got = lines[1:]
        if sorted(got) != sorted(want):
            missing = [x for x in want if x not in got]
            if missing:
                return f"frame {i}: header line {missing[0]!r} not emitted as such"
            return f"frame {i}: unexpected header line {next(x for x in got if x not in want)!r}"
        if rest[:-1] != body:
            return f"frame {i}: body differs"
    return None


# ------------------------------------------------------------------------------------ planning
def _plan(
    cell: Cell,
    probe: Callable[[int], float],
    build: Callable[[int], Callable[[], int]],
    validate: Callable[[int], str | None],
    target: float,
    whole: float,
) -> None:
    """Probe, then choose ``cell.n`` and ``cell.loops`` and set ``cell.run``; may mark the cell.

    The whole workload is timed whenever one run of it is estimated to take at most ``whole``
    seconds (or ``2 * target``); only slower cells are cut to a prefix of about ``target`` s.
    """
    total = cell.total
    n0 = total if total <= 64 else max(1, total // 64)
    try:
        t = probe(n0)  # validates the first n0 frames; returns seconds
    except _Wrong as exc:
        cell.status, cell.reason = "wrong", str(exc)
        return
    except Exception as exc:
        cell.status, cell.reason = "n/a", "raises " + _short(exc)
        return
    try:
        if n0 < total:  # re-time the probe without validation overhead for a fair estimate
            t, _ = _timed(build(n0), 1)
    except Exception as exc:
        cell.status, cell.reason = "n/a", "raises " + _short(exc)
        return
    estimate = t * total / n0
    if estimate <= max(2 * target, whole):
        n = total
    else:
        n = max(1, min(total, int(total * target / estimate)))
    try:
        if n != n0:
            why = validate(n)
            if why:
                cell.status, cell.reason = "wrong", why
                return
        run = build(n)
        loops = 1
        if n == total and estimate < target:  # short: loop it, sized from one real pass
            seconds, _ = _timed(run, 1)
            loops = _loops_for(seconds, target)
    except Exception as exc:
        cell.status, cell.reason = "n/a", "raises " + _short(exc)
        return
    cell.n, cell.run, cell.loops = n, run, loops


class _Wrong(Exception):
    pass


# -------------------------------------------------------------------------------------- suite
class Suite:
    def __init__(
        self,
        quick: bool,
        rounds: int,
        target: float,
        libs: list[str] | None,
        whole: float | None = None,
    ) -> None:
        self.quick = quick
        self.whole = whole if whole is not None else (0.3 if quick else 1.0)
        self.rounds = rounds
        self.target = target
        t0 = time.perf_counter()
        self.workloads = W.build(quick)
        self.build_seconds = time.perf_counter() - t0
        self.floor, loaded = A.load()
        self.libs: dict[str, A.Adapter | str] = {
            name: loaded[name] for name in LIB_ORDER if libs is None or name in libs
        }
        self.cells: list[Cell] = []
        self.floor_cells: dict[tuple, Cell] = {}
        self.memory: dict = {}
        self.events_note = ""

    def _whole(self, lib: str) -> float:
        """stomp_proto always runs whole workloads; a peer only if a pass takes <= self.whole s."""
        return float("inf") if lib == "stomp_proto" else self.whole

    def log(self, msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    # ---------------------------------------------------------------- building cells
    def _floor_cell(
        self, kind: str, row: str, n: int, make_run: Callable[[], Callable[[], int]]
    ) -> tuple:
        key = (kind, row, n)
        if key not in self.floor_cells:
            cell = Cell(kind, row, "floor", n=n, total=n)
            cell.run = make_run()
            seconds, _ = _timed(cell.run, 1)
            cell.loops = _loops_for(seconds, self.target)
            self.floor_cells[key] = cell
        return key

    def _parse_cell(self, row: str, name: str, ad: A.Adapter) -> Cell:
        w = self.workloads[row]
        cell = Cell("parse", row, name, total=len(w.frames))

        def probe(n: int) -> float:
            t0 = time.perf_counter()
            got = ad.parse_frames(w.chunks(n))
            elapsed = time.perf_counter() - t0
            why = check_frames(got, w.frames[:n], ad.ordered)
            if why:
                raise _Wrong(why)
            return elapsed

        def validate(n: int) -> str | None:
            return check_frames(ad.parse_frames(w.chunks(n)), w.frames[:n], ad.ordered)

        def build(n: int) -> Callable[[], int]:
            chunks = w.chunks(n)
            parse_count = ad.parse_count
            return lambda: parse_count(chunks)

        _plan(cell, probe, build, validate, self.target, self._whole(name))
        if cell.status == "ok":
            fl = self.floor
            chunks = w.chunks(cell.n)
            cell.floor_key = self._floor_cell(
                "parse", row, cell.n, lambda: lambda: fl.parse_count(chunks)
            )
        return cell

    def _serialize_cell(self, row: str, name: str, ad: A.Adapter) -> Cell:
        w = self.workloads[row]
        cell = Cell("serialize", row, name, total=len(w.frames))

        def probe(n: int) -> float:
            objects = ad.build(w.frames[:n])
            t0 = time.perf_counter()
            out = ad.serialize(objects)
            elapsed = time.perf_counter() - t0
            why = check_serialized(out, w.frames[:n])
            if why:
                raise _Wrong(why)
            return elapsed

        def validate(n: int) -> str | None:
            return check_serialized(ad.serialize(ad.build(w.frames[:n])), w.frames[:n])

        def build(n: int) -> Callable[[], int]:
            objects = ad.build(w.frames[:n])
            serialize = ad.serialize
            return lambda: len(serialize(objects))

        _plan(cell, probe, build, validate, self.target, self._whole(name))
        if cell.status == "ok":
            fl = self.floor

            def make_floor() -> Callable[[], int]:
                objects = fl.build(w.frames[: cell.n])
                return lambda: len(fl.serialize(objects))

            cell.floor_key = self._floor_cell("serialize", row, cell.n, make_floor)
        return cell

    def _events_cell(self) -> Cell:
        """ClientConnection events on (a) relative to stomp_proto.FrameParser alone on (a)."""
        w = self.workloads["a"]
        cell = Cell("events", "a", "stomp_proto", total=len(w.frames))
        ad = self.libs.get("stomp_proto")
        if not isinstance(ad, A.Adapter):
            cell.status, cell.reason = "missing", "stomp_proto not importable"
            return cell
        try:
            from .connection import EventsDriver

            drv = EventsDriver(ad.mod)
        except Exception as exc:
            cell.status, cell.reason = "missing", _short(exc)
            return cell
        self.events_note = drv.how

        def probe(n: int) -> float:
            t0 = time.perf_counter()
            why = drv.check(w.chunks(n), w.frames[:n])
            if why:
                raise _Wrong(why)
            return time.perf_counter() - t0

        def validate(n: int) -> str | None:
            return drv.check(w.chunks(n), w.frames[:n])

        def build(n: int) -> Callable[[], int]:
            chunks = w.chunks(n)
            return lambda: drv.count(chunks)

        _plan(cell, probe, build, validate, self.target, self._whole("stomp_proto"))
        if cell.status == "ok":
            chunks = w.chunks(cell.n)
            cell.floor_key = self._floor_cell(
                "events-base", "a", cell.n, lambda: lambda: ad.parse_count(chunks)
            )
        return cell

    def prepare(self) -> None:
        for row in PARSE_ROWS:
            for name, ad in self.libs.items():
                self.log(f"  plan parse {row} {name}")
                if isinstance(ad, str):
                    self.cells.append(Cell("parse", row, name, status="missing", reason=ad))
                else:
                    self.cells.append(self._parse_cell(row, name, ad))
        for row in SERIALIZE_ROWS:
            for name, ad in self.libs.items():
                self.log(f"  plan serialize {row} {name}")
                if isinstance(ad, str):
                    self.cells.append(Cell("serialize", row, name, status="missing", reason=ad))
                else:
                    self.cells.append(self._serialize_cell(row, name, ad))
        if "stomp_proto" in self.libs:
            self.log("  plan events a stomp_proto")
            self.cells.append(self._events_cell())

    # ----------------------------------------------------------------------- rounds
    def run_rounds(self) -> None:
        live = [c for c in self.cells if c.status == "ok"]
        for r in range(self.rounds):
            self.log(f"  round {r + 1}/{self.rounds}")
            # Rotate the order each round so no library always runs first or last; each cell is
            # timed right next to the floor on the same bytes, alternating which goes first.
            shift = r % max(1, len(live))
            for cell in live[shift:] + live[:shift]:
                if cell.status != "ok":
                    continue
                fc = self.floor_cells[cell.floor_key]
                if r % 2:
                    t, count = _timed(cell.run, cell.loops)
                    ft, fcount = _timed(fc.run, fc.loops)
                else:
                    ft, fcount = _timed(fc.run, fc.loops)
                    t, count = _timed(cell.run, cell.loops)
                fc.rates.append(fcount / ft)
                if count != cell.n and cell.kind != "events":
                    cell.status = "wrong"
                    cell.reason = f"{count} frames when timed, expected {cell.n}"
                    continue
                rate = count / t
                cell.rates.append(rate)
                cell.ratios.append(rate / (fcount / ft))
        for cell in live:
            if cell.status != "ok":
                cell.ratios.clear()

    # ----------------------------------------------------------------------- memory
    def measure_memory(self) -> None:
        """tracemalloc peak while FrameParser (and the floor) parse (c) in 7-byte chunks."""
        ad = self.libs.get("stomp_proto")
        w = self.workloads["c"]
        frames = 1 if self.quick else 3
        frames = min(frames, len(w.frames))
        stream = w.prefix_stream(frames)
        largest = w.largest_frame
        self.memory = {"frames": frames, "chunk": 7, "largest_frame": largest}

        def peak(feed_factory) -> float:
            gc.collect()
            tracemalloc.start()
            try:
                feed = feed_factory()
                n = 0
                for i in range(0, len(stream), 7):
                    n += len(feed(stream[i : i + 7]))
                _, peak_bytes = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            if n != frames:
                raise RuntimeError(f"{n} frames, expected {frames}")
            return peak_bytes

        self.log("  memory floor")
        t0 = time.perf_counter()
        self.memory["floor_peak"] = peak(lambda: A.FloorParser().feed)
        self.memory["floor_seconds"] = time.perf_counter() - t0
        if isinstance(ad, A.Adapter):
            self.log("  memory stomp_proto")
            try:
                t0 = time.perf_counter()
                self.memory["stomp_proto_peak"] = peak(lambda: ad.FrameParser("1.2").feed)
                self.memory["stomp_proto_seconds"] = time.perf_counter() - t0
            except Exception as exc:
                self.memory["stomp_proto_error"] = _short(exc)

    # ----------------------------------------------------------------------- reporting
    def environment(self) -> dict:
        cpu = platform.processor() or ""
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        versions = {}
        for name, ad in self.libs.items():
            versions[name] = ad.version if isinstance(ad, A.Adapter) else "missing"
        return {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "platform": f"{platform.system()} {platform.machine()}",
            "cpu": cpu,
            "cpus": os.cpu_count(),
            "rounds": self.rounds,
            "quick": self.quick,
            "target_seconds": self.target,
            "versions": versions,
        }

    def results(self) -> dict:
        cells = []
        for c in self.cells:
            fl = self.floor_cells.get(c.floor_key) if c.floor_key else None
            cells.append(
                {
                    "kind": c.kind,
                    "workload": c.row,
                    "library": c.lib,
                    "status": c.status,
                    "reason": c.reason,
                    "frames_timed": c.n,
                    "frames_total": c.total,
                    "loops": c.loops,
                    "ratio": c.ratio,
                    "ratios": c.ratios,
                    "rate": c.rate,
                    "floor_rate": fl.rate if fl else None,
                    "target": TARGETS.get((c.kind, c.row)) if c.lib == "stomp_proto" else None,
                }
            )
        floors = [
            {"kind": k[0], "workload": k[1], "frames": k[2], "rate": fc.rate, "loops": fc.loops}
            for k, fc in self.floor_cells.items()
        ]
        return {
            "environment": self.environment(),
            "cells": cells,
            "floor": floors,
            "memory": self.memory,
            "workloads": {
                k: {
                    "title": w.title,
                    "frames": len(w.frames),
                    "bytes": len(w.stream),
                    "chunk": w.chunk,
                    "largest_frame": w.largest_frame,
                }
                for k, w in self.workloads.items()
            },
        }


def run_suite(quick: bool, rounds: int, target: float, libs: list[str] | None) -> Suite:
    suite = Suite(quick, rounds, target, libs)
    suite.log(f"workloads built in {suite.build_seconds:.1f}s; planning and validating")
    suite.prepare()
    suite.run_rounds()
    suite.measure_memory()
    return suite
