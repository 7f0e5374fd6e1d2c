"""Where the time goes per frame in stomp_proto: ``python -m benchmarks.profile [ROW ...]``.

ROW is a parse row (a, b, c, d1500, d7, e), ``sa``/``se`` for serializing (a)/(e), or ``ev`` for
ClientConnection on (a). For each it prints the wall-clock microseconds per frame of stomp_proto
and of the floor (no profiler attached), then the top functions by own time under cProfile
(cProfile inflates small Python functions; read its split, not its totals).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time

from . import adapters as A
from . import workloads as W


def _best(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str]) -> int:
    rows = argv or ["a", "e", "sa", "se"]
    ws = W.build(quick=False)
    floor = A.Floor()
    sp = A.StompProto()
    for row in rows:
        if row in ("sa", "se"):
            w = ws[row[1]]
            fobjs, sobjs = floor.build(w.frames), sp.build(w.frames)
            f_run = lambda fobjs=fobjs: floor.serialize(fobjs)  # noqa: E731
            s_run = lambda sobjs=sobjs: sp.serialize(sobjs)  # noqa: E731
        elif row == "ev":
            from .connection import EventsDriver

            w = ws["a"]
            chunks = w.chunks(len(w.frames))
            drv = EventsDriver(sp.mod)
            f_run = lambda chunks=chunks: sp.parse_count(chunks)  # noqa: E731
            s_run = lambda chunks=chunks, drv=drv: drv.count(chunks)  # noqa: E731
        else:
            w = ws[row]
            chunks = w.chunks(len(w.frames))
            f_run = lambda chunks=chunks: floor.parse_count(chunks)  # noqa: E731
            s_run = lambda chunks=chunks: sp.parse_count(chunks)  # noqa: E731
        n = len(w.frames)
        tf, ts = _best(f_run), _best(s_run)
        base = "FrameParser" if row == "ev" else "floor"
        print(
            f"== {row}: stomp_proto {ts / n * 1e6:.2f} us/frame, {base} {tf / n * 1e6:.2f} "
            f"us/frame, ratio {tf / ts:.2f}"
        )
        prof = cProfile.Profile()
        prof.enable()
        s_run()
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(10)
        text = out.getvalue()
        print(text[text.find("   ncalls") :].rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
