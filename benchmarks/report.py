"""The one table, the JSON dump and the PNG plot."""

from __future__ import annotations

import json

from .runner import LIB_ORDER, MEMORY_SLACK, MEMORY_TARGET, TARGETS, Suite

ROW_TITLES = {
    ("parse", "a"): "parse (a) ticker, 64 KiB",
    ("parse", "b"): "parse (b) 4 KiB binary SEND",
    ("parse", "c"): "parse (c) 1 MiB bodies",
    ("parse", "d1500"): "parse (d) ticker, 1500 B chunks",
    ("parse", "d7"): "parse (d) ticker, 7 B chunks",
    ("parse", "e"): "parse (e) 30 headers, escapes",
    ("serialize", "a"): "serialize (a) ticker",
    ("serialize", "e"): "serialize (e) 30 headers",
    ("events", "a"): "events (a) ClientConnection",
}


PLOT_LABELS = {
    ("parse", "a"): "parse (a)\nticker",
    ("parse", "b"): "parse (b)\n4 KiB binary",
    ("parse", "c"): "parse (c)\n1 MiB bodies",
    ("parse", "d1500"): "parse (d)\n1500 B chunks",
    ("parse", "d7"): "parse (d)\n7 B chunks",
    ("parse", "e"): "parse (e)\n30 headers",
    ("serialize", "a"): "serialize (a)\nticker",
    ("serialize", "e"): "serialize (e)\n30 headers",
}


def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            v = x / scale
            return f"{v:.0f}{unit}" if v >= 100 else f"{v:.3g}{unit}"
    return f"{x:.3g}"


def fmt_ratio(r: float) -> str:
    if r >= 0.095:
        return f"{r:.2f}"
    return f"{r:.2g}" if r >= 0.001 else f"{r:.1g}"


def table(suite: Suite) -> str:
    env = suite.environment()
    libs = [n for n in LIB_ORDER if n in suite.libs]
    peers = [n for n in libs if n != "stomp_proto"]
    notes: list[str] = []
    note_ids: dict[str, int] = {}

    def note(text: str) -> str:
        if text not in note_ids:
            note_ids[text] = len(note_ids) + 1
            notes.append(f"  [{note_ids[text]}] {text}")
        return f"[{note_ids[text]}]"

    by_key = {(c.kind, c.row, c.lib): c for c in suite.cells}
    prefix_used = False

    def cell_text(kind: str, row: str, lib: str) -> str:
        nonlocal prefix_used
        c = by_key.get((kind, row, lib))
        if c is None:
            return "-"
        if c.status == "missing":
            return "missing"
        if c.status in ("wrong", "n/a"):
            return c.status + note(f"{lib}, {ROW_TITLES[(kind, row)]}: {c.reason}")
        if c.ratio is None:
            return "?"
        star = ""
        if c.n < c.total:
            star = "*"
            prefix_used = True
        if lib == "stomp_proto" and c.ratio >= 0.095:  # 3 decimals: PASS/MISS is on the value
            return f"{c.ratio:.3f}{star}"
        return fmt_ratio(c.ratio) + star

    headers = ["workload", "floor", "stomp_proto", "target", "", *peers]
    rows: list[list[str]] = []
    for kind, row in TARGETS:
        w = suite.workloads[row]
        frame_bytes = len(w.stream) / len(w.frames)
        fc = None
        c_sp = by_key.get((kind, row, "stomp_proto"))
        if c_sp is not None and c_sp.floor_key:
            fc = suite.floor_cells[c_sp.floor_key]
        if fc is None:  # stomp_proto missing or wrong: any floor timing on the whole workload
            fc = next(
                (
                    f
                    for k, f in suite.floor_cells.items()
                    if k[0] == kind and k[1] == row and f.n == len(w.frames)
                ),
                None,
            )
        if kind == "events":
            floor = f"FrameParser {_si(fc.rate)}/s" if fc and fc.rate else "-"
        elif fc and fc.rate:
            floor = f"{_si(fc.rate)} fr/s {_si(fc.rate * frame_bytes)}B/s"
        else:
            floor = "-"
        sp = cell_text(kind, row, "stomp_proto") if "stomp_proto" in libs else "-"
        target = TARGETS[(kind, row)]
        verdict = ""
        if c_sp is not None and c_sp.status == "ok" and c_sp.ratio is not None:
            verdict = "PASS" if c_sp.ratio >= target else "MISS"
        elif c_sp is not None and c_sp.status in ("wrong", "n/a"):
            verdict = "MISS"
        peer_cells = ["-" if kind == "events" else cell_text(kind, row, p) for p in peers]
        rows.append([ROW_TITLES[(kind, row)], floor, sp, f">={target:.2f}", verdict, *peer_cells])

    mem = suite.memory
    if mem:
        largest = mem["largest_frame"]
        floor = f"floor {mem['floor_peak'] / largest:.2f}x"
        verdict = ""
        if "stomp_proto_peak" in mem:
            r = mem["stomp_proto_peak"] / largest
            sp = f"{r:.2f}x"
            verdict = "PASS" if r <= MEMORY_TARGET * MEMORY_SLACK else "MISS"
        elif "stomp_proto_error" in mem:
            sp = "n/a" + note(f"stomp_proto memory: {mem['stomp_proto_error']}")
        else:
            sp = "missing"
        rows.append(
            [
                f"peak memory (c) 7 B chunks, {mem['frames']} fr",
                floor,
                sp,
                f"<={MEMORY_TARGET:.0f}x",
                verdict,
                *["-" for _ in peers],
            ]
        )

    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = [
        f"stomp-proto benchmarks  {env['date']}  {env['python']}  {env['platform']}  "
        f"{env['cpus']} CPUs  {env['cpu']}",
        f"{'quick mode, ' if suite.quick else ''}{suite.rounds} round(s), medians; "
        "ratios are frames/s relative to the floor baseline timed in the same process "
        "(1.00 = floor, higher is better)",
        "versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        "",
    ]
    fmt = "  ".join(f"{{:{'<' if i < 2 else '>'}{w}}}" for i, w in enumerate(widths))
    lines.append(fmt.format(*headers))
    lines.append(fmt.format(*("-" * w for w in widths)))
    lines.extend(fmt.format(*r) for r in rows)
    lines.append("")
    if prefix_used:
        lines.append(
            "  * too slow for the whole workload: timed on its first frames "
            "(see --json for how many)"
        )
    c_ev = by_key.get(("events", "a", "stomp_proto"))
    if c_ev is not None and c_ev.rate:
        lines.append(
            f"  events: ClientConnection delivered {_si(c_ev.rate)} events/s on (a); "
            "the ratio is to stomp_proto.FrameParser alone on the same chunks"
        )
    if mem:
        lines.append(
            f"  memory: tracemalloc peak / largest frame ({mem['largest_frame']:,} B) "
            f"while parsing the first {mem['frames']} frame(s) of (c) in 7-byte chunks; "
            f"PASS up to {MEMORY_TARGET * MEMORY_SLACK:.1f}x"
        )
    lines.extend(notes)
    return "\n".join(lines)


def write_json(suite: Suite, path: str) -> None:
    with open(path, "w") as f:
        json.dump(suite.results(), f, indent=1)


def write_plot(suite: Suite, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env = suite.environment()
    libs = [n for n in LIB_ORDER if n in suite.libs]
    by_key = {(c.kind, c.row, c.lib): c for c in suite.cells}
    rows = [k for k in TARGETS if k[0] != "events"]
    fig, ax = plt.subplots(figsize=(12, 5.5))
    width = 0.8 / max(1, len(libs))
    colors = {
        "stomp_proto": "#1f77b4",
        "stompest": "#ff7f0e",
        "stomp.py": "#2ca02c",
        "stompman": "#d62728",
        "aiostomp": "#9467bd",
    }
    for j, lib in enumerate(libs):
        xs, ys = [], []
        for i, key in enumerate(rows):
            c = by_key.get((*key, lib))
            x = i + (j - (len(libs) - 1) / 2) * width
            if c is not None and c.status == "ok" and c.ratio:
                xs.append(x)
                ys.append(c.ratio)
            elif c is not None:
                ax.text(
                    x,
                    0.0003,
                    c.status,
                    rotation=90,
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    color=colors.get(lib, "gray"),
                )
        ax.bar(xs, ys, width=width, label=lib, color=colors.get(lib))
    for i, key in enumerate(rows):
        ax.hlines(TARGETS[key], i - 0.45, i + 0.45, colors="black", linestyles="dotted")
    ax.axhline(1.0, color="gray", linewidth=1)
    ax.set_yscale("log")
    ax.set_ylim(0.0002, 2)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([PLOT_LABELS[k] for k in rows], fontsize=8)
    ax.set_ylabel("frames/s relative to the floor baseline (log)")
    ax.set_title(
        f"STOMP parsers and serializers vs. a bare pure-Python splitter "
        f"({env['python']}, {env['date']}); dotted: stomp_proto targets",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=len(libs))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
