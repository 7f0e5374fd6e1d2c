"""``python -m benchmarks.broker.patterns``: topic matching, SubscriptionIndex against a scan.

Issue 9 item 7: 9,990 pattern subscriptions (10 connections with 999 distinct patterns each,
``/topic/feed.C.N.*``) took publishing from 29,786 to 315 messages/s, because every publish tried
every pattern's regex. This times one publish's lookup both ways, in-process, with 0 and 9,990
patterns: ``SubscriptionIndex.match`` (a dict, then a trie over the patterns' leading literal
segments) and the former approach (a dict, then every compiled regex in turn). Item 5's bomb pattern
is timed both ways too, the former regex on a destination short enough to finish.

Each figure is the median of ``--rounds`` rounds (5), a round timing enough calls to take about
``--round-ms`` milliseconds. A few seconds in all.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable
from functools import partial

from stomp_proto.broker._patterns import SubscriptionIndex

EXACT = "/topic/price.stock.MMM"
BOMB = "/topic/" + "**a" * 10 + "**b"


def old_compile(destination: str) -> re.Pattern[str] | None:
    """The broker's compile_pattern before stomp_proto/broker/_patterns.py."""
    if "*" not in destination:
        return None
    parts = re.split(r"(\*\*|\*)", destination)
    regex = "".join(
        "(?:.*)" if part == "**" else "[^./]*" if part == "*" else re.escape(part) for part in parts
    )
    return re.compile(regex + r"\Z")


class OldIndex:
    """The former lookup: exact subscribers in a dict, then a scan of every pattern."""

    def __init__(self) -> None:
        self.exact: dict[str, list[object]] = {}
        self.patterns: list[tuple[re.Pattern[str], object]] = []

    def add(self, destination: str, item: object) -> None:
        pattern = old_compile(destination)
        if pattern is None:
            self.exact.setdefault(destination, []).append(item)
        else:
            self.patterns.append((pattern, item))

    def match(self, destination: str) -> list[object]:
        targets = self.exact.get(destination, [])
        if self.patterns:
            targets = targets + [i for p, i in self.patterns if p.match(destination)]
        return targets


def build(patterns: int) -> tuple[SubscriptionIndex[object], OldIndex]:
    """Both indexes with one exact subscriber and ``patterns`` distinct feed patterns."""
    new: SubscriptionIndex[object] = SubscriptionIndex()
    old = OldIndex()
    feeds = [f"/topic/feed.{c}.{n}.*" for c in range(10) for n in range(999)]
    destinations = [EXACT, *feeds[:patterns]]
    for destination in destinations:
        item = object()
        new.add(destination, item)
        old.add(destination, item)
    return new, old


def median_us(call: Callable[[], object], rounds: int, round_ms: float) -> float:
    """The median over ``rounds`` of the time of one ``call()``, in microseconds."""
    start = time.perf_counter()
    call()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(round_ms / 1000 / once))
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(number):
            call()
        results.append((time.perf_counter() - start) / number * 1e6)
    return statistics.median(results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--round-ms", type=float, default=50.0)
    args = parser.parse_args(argv)

    def time_it(call: Callable[[], object]) -> float:
        return median_us(call, args.rounds, args.round_ms)

    rows: list[tuple[str, float, float, str]] = []
    for count in (0, 9_990):
        new, old = build(count)
        for destination in (EXACT, "/topic/feed.3.500.x"):
            expected = len(old.match(destination))
            assert len(new.match(destination)) == expected, (count, destination)
            rows.append(
                (
                    f"{count:>5} patterns, {destination}",
                    time_it(partial(new.match, destination)),
                    time_it(partial(old.match, destination)),
                    f"{expected} matched",
                )
            )
    bomb_new: SubscriptionIndex[object] = SubscriptionIndex()
    bomb_new.add(BOMB, object())
    bomb_old = OldIndex()
    bomb_old.add(BOMB, object())
    short = "/topic/" + "a" * 22
    rows.append(
        (
            "bomb pattern, /topic/ + 22 a's",
            time_it(lambda: bomb_new.match(short)),
            time_it(lambda: bomb_old.match(short)),
            "0 matched",
        )
    )
    long = "/topic/" + "a" * 10_000
    rows.append(
        ("bomb pattern, /topic/ + 10,000 a's", time_it(lambda: bomb_new.match(long)), 0.0, "")
    )

    print(f"SubscriptionIndex.match vs a scan of every regex, median of {args.rounds} rounds")
    head = f"{'case: subscriptions, SEND destination':<40} {'index us':>10} {'scan us':>12}"
    print(f"{head} {'speed-up':>9}  result")
    for label, new_us, old_us, note in rows:
        old_text = f"{old_us:12.2f}" if old_us else f"{'(hangs)':>12}"
        ratio = f"{old_us / new_us:8.1f}x" if old_us else f"{'':>9}"
        print(f"{label:<40} {new_us:10.2f} {old_text} {ratio}  {note}")


if __name__ == "__main__":
    main()
