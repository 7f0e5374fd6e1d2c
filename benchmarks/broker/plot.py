"""Plot a ``python -m benchmarks.broker`` table: ``python -m benchmarks.broker.plot OUT.txt PNG``.

Each bar is how many times better than RabbitMQ our broker did in the same run
(throughput: ours / RabbitMQ; latency and memory per connection: RabbitMQ /
ours), with the issue's target dotted where there is one.
"""

from __future__ import annotations

import re
import sys

TARGETS = {"point-to-point": 1.5, "fan-out": 2.0, "client-individual": 1.0, "latency": 1.0}
LOWER_IS_BETTER = {"latency", "connections"}


def parse(text: str) -> dict[str, tuple[float, float]]:
    """scenario -> (ours, RabbitMQ) from the printed table."""
    rows: dict[str, tuple[float, float]] = {}
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 4 and cells[0] in {*TARGETS, "connections", "websocket"}:
            try:
                ours, theirs = (float(c.replace(",", "")) for c in cells[2:4])
            except ValueError:
                continue
            rows[cells[0]] = (ours, theirs)
    return rows


def main(source: str, png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(source) as f:
        rows = parse(f.read())
    names = list(rows)
    ratios = [
        (theirs / ours if name in LOWER_IS_BETTER else ours / theirs)
        for name, (ours, theirs) in rows.items()
    ]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(names, ratios, color=["tab:blue" if r >= 1 else "tab:orange" for r in ratios])
    for i, name in enumerate(names):
        if name in TARGETS:
            ax.hlines(TARGETS[name], i - 0.4, i + 0.4, colors="black", linestyles="dotted")
        ax.text(i, ratios[i], f"{ratios[i]:.2f}x", ha="center", va="bottom")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_ylabel("times better than RabbitMQ 3.10")
    ax.set_title("stomp-proto broker vs RabbitMQ, same machine, same run (dotted: targets)")
    fig.tight_layout()
    fig.savefig(png, dpi=100)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
