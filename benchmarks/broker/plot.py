"""Plot a ``python -m benchmarks.broker`` table: ``python -m benchmarks.broker.plot OUT.txt PNG``.

Four panels, every figure from the printed table (medians of the rounds), each
target of issue 14 dotted:

* throughput: how many times RabbitMQ's our broker did, TCP and WebSocket
  (the table's ratio column: the median of the per-round ratios);
* latency: p99.9 at 1,000 messages/s in ms, both brokers, TCP and WebSocket;
* memory: KiB per idle connection, both brokers, TCP and WebSocket;
* our WebSocket path against our TCP path.
"""

from __future__ import annotations

import re
import sys

THROUGHPUT = {
    "point-to-point": 1.5,
    "fan-out": 2.2,
    "client-individual": 1.0,
    "ws-point-to-point": 1.5,
    "ws-fan-out": 2.0,
}
LATENCY = {"latency": 1.0, "ws-latency": 2.0}
MEMORY = {"connections": 15.0, "ws-connections": 25.0}
WS_TCP = {"ws/tcp point-to-point": 0.6, "ws/tcp fan-out": 0.6}


def _number(cell: str) -> float | None:
    try:
        return float(cell.replace(",", "").rstrip("x"))
    except ValueError:
        return None


def parse(text: str) -> dict[str, tuple[float | None, float | None, float | None]]:
    """scenario -> (ours, RabbitMQ, ratio) from the printed table."""
    known = {*THROUGHPUT, *LATENCY, *MEMORY, *WS_TCP}
    rows: dict[str, tuple[float | None, float | None, float | None]] = {}
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 5 and cells[0] in known:
            rows[cells[0]] = (_number(cells[2]), _number(cells[3]), _number(cells[4]))
    return rows


def _bars(ax, rows, targets, *, pairs: bool, unit: str) -> None:
    names = [n for n in targets if n in rows]
    for i, name in enumerate(names):
        ours, theirs, ratio = rows[name]
        target = targets[name]
        if pairs:  # ours and RabbitMQ side by side, lower is better
            for dx, value, color, label in (
                (-0.2, ours, "tab:blue", "stomp-proto"),
                (0.2, theirs, "tab:gray", "RabbitMQ"),
            ):
                if value is None:
                    continue
                ax.bar(i + dx, value, 0.4, color=color, label=label if i == 0 else None)
                ax.text(i + dx, value, f"{value:g}", ha="center", va="bottom", fontsize=8)
        else:
            value = ratio if ratio is not None else ours
            if value is None:
                continue
            ax.bar(i, value, 0.6, color="tab:blue" if value >= target else "tab:orange")
            ax.text(i, value, f"{value:.2f}x", ha="center", va="bottom", fontsize=8)
        ax.hlines(target, i - 0.4, i + 0.4, colors="black", linestyles="dotted")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n.replace("ws/tcp ", "") for n in names], rotation=20, fontsize=8)
    ax.set_ylabel(unit, fontsize=9)
    if pairs and names:
        ax.set_ylim(top=ax.get_ylim()[1] * 1.3)  # room for the legend above the bars' labels
        ax.legend(fontsize=8, loc="upper right")


def main(source: str, png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(source) as f:
        rows = parse(f.read())
    fig, axes = plt.subplots(1, 4, figsize=(15, 4.2), gridspec_kw={"width_ratios": [5, 2, 2, 2]})
    _bars(axes[0], rows, THROUGHPUT, pairs=False, unit="times RabbitMQ 3.10 (same run)")
    axes[0].axhline(1.0, color="grey", linewidth=0.8)
    axes[0].set_title("throughput (TCP, WebSocket)", fontsize=10)
    _bars(axes[1], rows, LATENCY, pairs=True, unit="ms")
    axes[1].set_title("p99.9 latency, 1,000 msg/s", fontsize=10)
    _bars(axes[2], rows, MEMORY, pairs=True, unit="KiB")
    axes[2].set_title("memory per idle connection", fontsize=10)
    _bars(axes[3], rows, WS_TCP, pairs=False, unit="our WebSocket / our TCP")
    axes[3].set_title("WebSocket against TCP", fontsize=10)
    fig.suptitle("stomp-proto broker vs RabbitMQ, same machine, same run (dotted: targets)")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
