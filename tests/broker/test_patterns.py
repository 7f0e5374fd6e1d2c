"""Subscription patterns and the subscription index (issue 9, items 5 and 7).

The reference for the pattern language is the regular expression the broker compiled before
(``*`` as ``[^./]*``, ``**`` as ``.*``), with ``re.DOTALL``: the one deliberate difference,
``**`` matching a line feed, has its own test. The matchers must agree with it everywhere and never
backtrack; the index must return what a scan of every registration would, without the scan.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stomp_proto.broker import _patterns
from stomp_proto.broker._patterns import Pattern, SubscriptionIndex, compile_pattern

BOMB = "/topic/" + "**a" * 10 + "**b"  # issue 9 item 5, verbatim


def reference(pattern: str) -> re.Pattern[str]:
    """The broker's former compile_pattern, with DOTALL (see the module docstring)."""
    parts = re.split(r"(\*\*|\*)", pattern)
    regex = "".join(
        "(?:.*)" if part == "**" else "[^./]*" if part == "*" else re.escape(part) for part in parts
    )
    return re.compile(regex + r"\Z", re.DOTALL)


def compiled(pattern: str) -> Pattern:
    result = compile_pattern(pattern)
    assert result is not None, pattern
    return result


# -- the grammar, by example --------------------------------------------------------------------

# (pattern, matching destinations, non-matching destinations); the first rows are the
# expectations of tests/broker/test_semantics.py.
EXAMPLES = [
    (
        "/topic/price.stock.*",
        ["/topic/price.stock.IBM", "/topic/price.stock."],
        ["/topic/price.stock.IBM.X", "/topic/price.stock/IBM", "/topic/price.stock"],
    ),
    (
        "/topic/price.**",
        ["/topic/price.stock.IBM", "/topic/price.stock.IBM.X", "/topic/price."],
        ["/topic/price", "/topic/prices.x", "/topic/x/price.a"],
    ),
    ("/topic/*/orders", ["/topic/eu/orders", "/topic//orders"], ["/topic/eu/x/orders"]),
    ("/topic/a*.b.**", ["/topic/a.b.", "/topic/axy.b.c/d"], ["/topic/a.c.d", "/topic/a.x.b.c"]),
    ("/topic/**.error", ["/topic/.error", "/topic/a/b.c.error"], ["/topic/error", "/topic/a.err"]),
    ("/topic/**a**b", ["/topic/ab", "/topic/x.a/y.b"], ["/topic/ba", "/topic/b"]),
    ("**", ["", "anything/at.all"], []),
    ("*", ["", "abc"], ["a.b", "a/"]),
    (
        "/topic/*.**.x",
        ["/topic/a.b.x", "/topic/..x", "/topic/a.b/c.x"],
        ["/topic/a/b.x", "/topic/.x"],
    ),
    ("/topic/*a*b", ["/topic/ab", "/topic/xaybz" + "b"], ["/topic/ba", "/topic/a.b"]),
    ("*a*", ["a", "bab"], ["b", "a.a.", ".a"]),
    ("a**b*", ["ab", "a.x/bcc"], ["a.b.c", "b"]),
    (
        BOMB,
        ["/topic/" + "ab" * 10 + "b", "/topic/" + "a" * 10 + "b"],
        ["/topic/" + "a" * 14, "/topic/" + "ab" * 9],
    ),
]


@pytest.mark.parametrize(("pattern", "good", "bad"), EXAMPLES)
def test_examples(pattern: str, good: list[str], bad: list[str]) -> None:
    matcher = compiled(pattern)
    assert matcher.source == pattern
    assert matcher.prefix == pattern[: pattern.index("*")]
    for destination in good:
        assert matcher.match(destination) is True, destination
        assert reference(pattern).match(destination), destination
    for destination in bad:
        assert matcher.match(destination) is False, destination
        assert not reference(pattern).match(destination), destination


def test_examples_cover_every_matcher() -> None:
    """The example table (and so the properties below) reaches each of the three strategies."""
    kinds = {type(compiled(pattern)).__name__ for pattern, _, _ in EXAMPLES}
    assert kinds == {"_Globs", "_SegmentRegex", "_Automaton"}


@pytest.mark.parametrize(
    ("pattern", "kind"),
    [
        ("/topic/a.**", "_Globs"),
        ("**x**y**", "_Globs"),
        ("/topic/*.b/*", "_SegmentRegex"),
        ("/topic/a*b.c*.**", "_SegmentRegex"),
        ("/topic/*a*b", "_Automaton"),  # two stars in one segment: the regex would be O(n^2)
        ("/topic/a*.b**c", "_Automaton"),  # a "**" not at the end
        ("/topic/**.b.*", "_Automaton"),  # a "**" before a "*"
    ],
)
def test_strategy_for_each_shape(pattern: str, kind: str) -> None:
    """Each strategy gets only the shapes its no-backtracking argument covers.

    * ``_Globs`` (only ``**``): ``P0 ** P1 ** ... ** Pr`` matches d iff d starts with P0, ends with
      Pr, and P1..P(r-1) occur in order between them. Taking each leftmost is safe: if a match
      uses a later occurrence of Pi, moving Pi to its leftmost occurrence leaves every later part
      where it was, and the ``**`` on each side of Pi absorbs the difference. Each ``str.find``
      starts where the previous occurrence ended, so the scans are disjoint: O(n x m).
    * ``_SegmentRegex`` (no ``**`` but a final one, at most one ``*`` per segment): after a
      ``[^./]*`` comes a separator-free literal L, then a separator s, the end, or the final
      ``.*``. Before s: the star's text and L hold no separator, so s is the first separator at or
      after the star's start, and exactly one length of the star lets the match go on; the others
      fail in O(len(L)). Before the end: L must end at the end, again one length. Before ``.*``:
      the first length that fits is followed by ``.*``, which cannot fail, so the engine never
      backtracks into the star. The search is one path with O(len(L)) dead ends per character a
      star gives back, and each star gives back characters of its own segment only: O(n x m).
      Two stars in one segment (``*a*b``) would let the first star's lengths each restart the
      second: O(n^2) and worse, hence ``_Automaton``; so does a ``**`` before other wildcards.
    * ``_Automaton`` (everything else): one pass, O(ceil(m / 64)) word operations a character.
    """
    assert type(compiled(pattern)).__name__ == kind


def test_plain_destinations_are_not_patterns() -> None:
    assert compile_pattern("/topic/plain") is None
    assert compile_pattern("") is None


def test_runs_of_stars() -> None:
    """A run of two or more stars is ``**``: ``***`` was ``.*[^./]*``, which is ``.*``."""
    for run in ("**", "***", "****", "*****"):
        assert compiled(f"/topic/{run}x").match("/topic/a.b/cx"), run
    assert not compiled("/topic/*x").match("/topic/a.b/cx")


def test_deep_wildcard_matches_a_line_feed() -> None:
    """The deliberate difference from the former regex, whose ``.*`` stopped at ``\\n``."""
    assert compiled("/topic/**").match("/topic/a\nb")
    assert compiled("/topic/**.x").match("/topic/a\nb.x")
    assert compiled("/topic/a*.**").match("/topic/a\n.b\nc")
    assert compiled("/topic/*.**.x").match("/topic/\n.\n.x")
    assert compiled("/topic/*").match("/topic/a\nb")  # as before: [^./] takes a line feed


def test_repr_names_the_pattern() -> None:
    assert "'/topic/a.*'" in repr(compiled("/topic/a.*"))


# -- agreement with the reference, by property ---------------------------------------------------

ALPHABET = "ab./"
patterns = st.text("ab./*", min_size=1, max_size=14).filter(lambda p: "*" in p)
destinations = st.text(ALPHABET + "*", max_size=16)


@settings(max_examples=500, deadline=None)
@given(patterns, destinations)
def test_same_language_as_the_reference(pattern: str, destination: str) -> None:
    assert compiled(pattern).match(destination) == bool(reference(pattern).match(destination))


@st.composite
def pattern_and_instance(draw: st.DrawFn) -> tuple[str, str]:
    """A pattern and a destination built from it (so most match), sometimes with one edit."""
    pattern = draw(patterns)
    out = []
    for token in re.split(r"(\*+)", pattern):
        if token == "*":
            out.append(draw(st.text("ab", max_size=3)))
        elif token.startswith("**"):
            out.append(draw(st.text(ALPHABET, max_size=5)))
        else:
            out.append(token)
    destination = "".join(out)
    if destination and draw(st.booleans()):
        i = draw(st.integers(0, len(destination) - 1))
        edit = draw(st.sampled_from(["", *ALPHABET]))
        destination = destination[:i] + edit + destination[i + 1 :]
    return pattern, destination


@settings(max_examples=500, deadline=None)
@given(pattern_and_instance())
def test_same_language_on_near_matches(case: tuple[str, str]) -> None:
    pattern, destination = case
    assert compiled(pattern).match(destination) == bool(reference(pattern).match(destination))


# -- no backtracking ------------------------------------------------------------------------------

#: Patterns that make a backtracking matcher explode, one or more per strategy.
HOSTILE = [
    BOMB,
    "/topic/" + "**a" * 10 + "**",
    "/topic/" + "**a*a" * 5 + "**b",
    "/topic/" + "*a" * 8 + "*b",
    "/topic/" + "*a." * 8 + "*b",
    "**" + "a*" * 6 + "b**",
    "/topic/*" + "a" * 50 + "*b",
]
HOSTILE_DESTINATIONS = [
    "/topic/" + "a" * 10_000,
    "/topic/" + "a" * 10_000 + "b",
    "/topic/" + ("a" * 1_000 + ".") * 10 + "b",
]


@contextmanager
def counting_lines() -> Iterator[list[int]]:
    """Count the Python lines executed in stomp_proto/broker/_patterns.py: its work.

    The previous trace function (coverage's, when it runs) is put back afterwards.
    """
    count = [0]
    filename = _patterns.__file__

    def local(frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        if event == "line":
            count[0] += 1
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        return local if frame.f_code.co_filename == filename else None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield count
    finally:
        sys.settrace(previous)


@pytest.mark.parametrize("pattern", HOSTILE)
def test_work_is_linear_in_the_destination(pattern: str) -> None:
    """Python-level work counted by line: at most 8 lines per destination character.

    The former regex took 9.5 s for the bomb on 36 characters; these are 10,000. The C-level
    matchers (str.find, the segment regex) run a constant number of Python lines; their bound is
    argued in their docstrings, and the next test guards against a hang.
    """
    matcher = compiled(pattern)
    for destination in HOSTILE_DESTINATIONS:
        with counting_lines() as count:
            matcher.match(destination)
        assert count[0] <= 8 * len(destination) + 100, (pattern, count[0])
    small, large = "/topic/" + "a" * 1_000 + "b", "/topic/" + "a" * 10_000 + "b"
    with counting_lines() as work_small:
        matcher.match(small)
    with counting_lines() as work_large:
        matcher.match(large)
    assert work_large[0] <= 11 * work_small[0] + 50  # 10x the input, at most ~10x the work


def test_hostile_patterns_do_not_hang() -> None:
    """A hang guard, not a speed test: every hostile case in a subprocess, killed after 20 s.

    Expected time is tens of milliseconds in all; the former regex needs longer than the age of
    the universe for the first case alone.
    """
    script = textwrap.dedent(
        f"""
        from stomp_proto.broker._patterns import compile_pattern
        results = []
        for pattern in {HOSTILE!r}:
            matcher = compile_pattern(pattern)
            for destination in {HOSTILE_DESTINATIONS!r}:
                results.append(matcher.match(destination))
        print(sum(results))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=20, check=True
    )
    assert done.stdout.strip().isdigit()


def test_hostile_results_are_right() -> None:
    """The answers on the hostile inputs, checked against the reference where it is fast."""
    assert compiled(BOMB).match("/topic/" + "a" * 10_000) is False
    assert compiled(BOMB).match("/topic/" + "a" * 10_000 + "b") is True
    stars = compiled("/topic/" + "**a*a" * 5 + "**b")
    assert stars.match("/topic/" + "a" * 10_000 + "b") is True
    assert stars.match("/topic/" + "a" * 9 + "b") is False  # needs ten a's
    assert stars.match("/topic/" + "aa." * 5 + "b") is True
    assert stars.match("/topic/" + "a.a." * 5 + "b") is False  # each a*a within one segment
    segment = compiled("/topic/" + "*a" * 8 + "*b")
    assert segment.match("/topic/" + "a" * 10_000 + "b") is True
    assert segment.match("/topic/" + ("a" * 1_000 + ".") * 10 + "b") is False


# -- the index ------------------------------------------------------------------------------------


class Sub:
    """A subscription stand-in, hashed by identity like the broker's (eq=False) dataclasses."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


def test_index_plain_then_patterns_in_registration_order() -> None:
    index: SubscriptionIndex[Sub] = SubscriptionIndex()
    deep, exact, star, exact2, other, root = (
        Sub(n) for n in ["deep", "exact", "star", "exact2", "other", "root"]
    )
    index.add("/topic/price.**", deep)
    index.add("/topic/price.stock.IBM", exact)
    index.add("/topic/price.stock.*", star)
    index.add("/topic/price.stock.IBM", exact2)
    index.add("/topic/user.*", other)
    index.add("**", root)
    assert index.match("/topic/price.stock.IBM") == [exact, exact2, deep, star, root]
    assert index.match("/topic/price.bond.X") == [deep, root]
    assert index.match("/topic/user.1") == [other, root]
    assert index.match("/queue/x") == [root]
    assert len(index) == 6
    assert index.patterns_count == 4
    assert index.distinct_patterns == 4


def test_index_counts_each_registration_once() -> None:
    index: SubscriptionIndex[Sub] = SubscriptionIndex()
    a, b = Sub("a"), Sub("b")
    index.add("/topic/x.*", a)
    index.add("/topic/**", a)  # the same item under a second pattern: a second registration
    index.add("/topic/x.*", b)
    assert index.match("/topic/x.1") == [a, a, b]
    assert index.distinct_patterns == 2
    assert index.patterns_count == 3
    with pytest.raises(ValueError, match="already registered"):
        index.add("/topic/x.*", a)
    index.add("/topic/plain", a)
    with pytest.raises(ValueError, match="already registered"):
        index.add("/topic/plain", a)
    assert len(index) == 4


def test_index_remove() -> None:
    index: SubscriptionIndex[Sub] = SubscriptionIndex()
    a, b = Sub("a"), Sub("b")
    index.add("/topic/x.*", a)
    index.add("/topic/x.*", b)
    index.add("/topic/x.y.*.z", a)
    index.add("/topic/x.1", a)
    for destination, item in [
        ("/topic/x.2", a),  # plain, never added
        ("/topic/x.1", b),  # plain, another item
        ("/topic/y.*", a),  # pattern, never added
    ]:
        with pytest.raises(KeyError):
            index.remove(destination, item)
    index.remove("/topic/x.*", a)
    with pytest.raises(KeyError):
        index.remove("/topic/x.*", a)  # removed already
    assert index.match("/topic/x.1") == [a, b]
    index.remove("/topic/x.*", b)
    assert index.match("/topic/x.1") == [a]
    index.remove("/topic/x.1", a)
    assert index.match("/topic/x.1") == []
    assert index.match("/topic/x.y.w.z") == [a]
    index.remove("/topic/x.y.*.z", a)
    assert index.match("/topic/x.y.w.z") == []
    assert len(index) == index.patterns_count == index.distinct_patterns == 0
    assert not index._root.children and not index._root.groups  # the trie is pruned
    assert not index._exact


def test_index_prunes_only_empty_nodes() -> None:
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("/topic/a.*", "shallow")
    index.add("/topic/a.b.c.*", "deep")
    index.remove("/topic/a.b.c.*", "deep")
    assert index.match("/topic/a.x") == ["shallow"]
    index.add("/topic/a.b.c.*", "deep")
    index.remove("/topic/a.*", "shallow")
    assert index.match("/topic/a.b.c.d") == ["deep"]
    assert index.match("/topic/a.x") == []


def test_index_send_destination_with_a_star_is_plain() -> None:
    """A SEND destination is never a pattern: ``*`` in it is a character patterns may match."""
    index: SubscriptionIndex[str] = SubscriptionIndex()
    index.add("/topic/a*", "pattern")
    assert index.match("/topic/a*") == ["pattern"]
    assert index.match("/topic/abc") == ["pattern"]


@contextmanager
def counting_pattern_tests(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record the source of every Pattern.match call, whichever matcher it is."""
    calls: list[str] = []
    for cls in (_patterns._Globs, _patterns._SegmentRegex, _patterns._Automaton):
        original = cls.match

        def wrapper(self: Pattern, destination: str, _original: Any = original) -> bool:
            calls.append(self.source)
            return bool(_original(self, destination))

        monkeypatch.setattr(cls, "match", wrapper)
    yield calls


def test_index_does_not_test_patterns_that_cannot_match(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 9 item 7: 10,000 patterns that differ in a literal segment cost a publish nothing."""
    index: SubscriptionIndex[int] = SubscriptionIndex()
    for n in range(10_000):
        index.add(f"/topic/user.{n}.*", n)
    index.add("/topic/price.stock.MMM", -1)
    with counting_pattern_tests(monkeypatch) as calls:
        assert index.match("/topic/price.stock.MMM") == [-1]
        assert index.match("/topic/price.user.5000.x") == []  # a later segment is not a start
        assert calls == []
        assert index.match("/topic/user.5000.x") == [5000]
        assert calls == ["/topic/user.5000.*"]


def test_index_tests_a_shared_pattern_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """999 subscribers of one pattern: one compiled pattern, one test per publish."""
    index: SubscriptionIndex[int] = SubscriptionIndex()
    for n in range(999):
        index.add("/topic/feed.*", n)
    assert index.distinct_patterns == 1 and index.patterns_count == 999
    with counting_pattern_tests(monkeypatch) as calls:
        assert index.match("/topic/feed.x") == list(range(999))
        assert index.match("/topic/feed.x.y") == []
    assert calls == ["/topic/feed.*", "/topic/feed.*"]


# A random history of add/remove against a model that scans every registration.
operation = st.tuples(
    st.booleans(),  # add (True) or remove
    st.sampled_from(
        ["/t/a.b", "/t/a", "/t/a.*", "/t/*.b", "/t/**", "**", "/t/a/*", "*.b", "/t/a.**.b"]
    ),
    st.integers(0, 3),  # the item
)


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=30), st.lists(st.text("ab./t", max_size=8), max_size=5))
def test_index_agrees_with_a_scan(
    operations: list[tuple[bool, str, int]], published: list[str]
) -> None:
    index: SubscriptionIndex[int] = SubscriptionIndex()
    model: list[tuple[str, int]] = []  # registrations, in order
    for add, destination, item in operations:
        if add:
            if (destination, item) in model:
                with pytest.raises(ValueError, match="already registered"):
                    index.add(destination, item)
            else:
                index.add(destination, item)
                model.append((destination, item))
        elif (destination, item) in model:
            index.remove(destination, item)
            model.remove((destination, item))
        else:
            with pytest.raises(KeyError):
                index.remove(destination, item)
    assert len(index) == len(model)
    assert index.patterns_count == sum("*" in d for d, _ in model)
    assert index.distinct_patterns == len({d for d, _ in model if "*" in d})
    for destination in [*published, "/t/a.b", "/t/a", "/t/x.b", "/t/a/b", "/t/a.x.b"]:
        plain = [i for d, i in model if d == destination and "*" not in d]
        patterned = [i for d, i in model if "*" in d and reference(d).match(destination)]
        assert index.match(destination) == plain + patterned, destination
