"""Topic subscription patterns, matched without backtracking, and the index publishing uses.

This module owns two things: what a subscription pattern means (:func:`compile_pattern`) and how a
publish finds the subscriptions it reaches (:class:`SubscriptionIndex`), so that neither a hostile
pattern nor many patterns can slow the broker down (issue 9, items 5 and 7).

Grammar
-------
A subscription destination that contains ``*`` is a pattern; any other destination is plain and
matches only itself. A pattern is read left to right as literals and runs of stars::

    pattern  = { literal | star | deep }
    star     = "*"            ; a run of exactly one star
    deep     = "**" { "*" }   ; a run of two or more stars

* ``*`` matches any run of characters, possibly empty, that contains neither ``.`` nor ``/``:
  anything within one segment (``/topic/price.stock.*`` matches ``/topic/price.stock.IBM``, not
  ``/topic/price.stock.IBM.X``).
* ``**`` matches any run of characters, possibly empty, across segments (``/topic/price.**``
  matches both).
* Every other character matches itself.

That is the language of the regular expression the broker used before (``*`` as ``[^./]*``,
``**`` as ``.*``, a run of three or more stars split into ``**`` and ``*``, which means the same as
``**``) with one deliberate difference: ``**`` also matches a line feed, which ``.*`` without
``re.DOTALL`` did not (a STOMP 1.1+ destination may hold one, escaped as ``\\n`` on the wire).

Complexity
----------
:meth:`Pattern.match` never backtracks: for a destination of n characters and a pattern of m, it
takes O(n x m) time at worst, whatever the pattern. :func:`compile_pattern` picks one of three
matchers by the pattern's shape:

* **Only** ``**`` **wildcards** (``/topic/price.**``, ``/topic/**.error``, the issue's
  ``/topic/**a**a...**b``): the literal before the first ``**`` must be a prefix, the one after the
  last a suffix, and each literal between is found with ``str.find`` at its leftmost place after the
  previous one. Leftmost is always right, since ``**`` absorbs whatever lies between. Each ``find``
  scans forward from where the last stopped: O(n x m) in all, in C.
* **No** ``**`` **(or one, at the very end), and at most one** ``*`` **per segment**
  (``/topic/price.stock.*``, ``/topic/*/orders``, ``/topic/a*.b.**``): one compiled regular
  expression, which cannot backtrack much (proof in :class:`_SegmentRegex`): O(n x m), in C.
* **Anything else** (``*`` and ``**`` mixed, two ``*`` in one segment): a bit-parallel simulation of
  the pattern's automaton (Shift-And, as in Baeza-Yates and Gonnet): one pass over the destination,
  a few integer operations on an m-bit state per character, O(n x ceil(m / 64)) machine words.

:class:`SubscriptionIndex` keeps plain destinations in a dict and patterns in a trie keyed by the
complete segments before their first ``*``, one entry per distinct pattern, so a publish tests only
the patterns whose leading literal segments are those of its destination; patterns that cannot
match because they differ there cost nothing.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Hashable
from operator import itemgetter
from typing import Generic, TypeVar

__all__ = ("Pattern", "SubscriptionIndex", "compile_pattern")

T = TypeVar("T", bound=Hashable)

#: The characters that end a segment: what ``*`` cannot match.
SEPARATORS = "./"

_STAR_RUNS = re.compile(r"(\*+)")
_SEGMENTS = re.compile(r"[./]")


def _segments(destination: str) -> list[str]:
    """The ``.``- and ``/``-separated segments of ``destination`` (the trie's keys)."""
    return destination.replace(".", "/").split("/")


class Pattern:
    """A compiled subscription pattern; build one with :func:`compile_pattern`.

    Attributes:
        source: The pattern as subscribed, e.g. ``"/topic/price.stock.*"``.
        prefix: The literal text before its first ``*``.
    """

    __slots__ = ("prefix", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.prefix = source[: source.index("*")]

    def match(self, destination: str) -> bool:
        """Say whether ``destination`` (a SEND's, never a pattern) matches the whole pattern.

        Args:
            destination: The destination to test, e.g. ``"/topic/price.stock.IBM"``.

        Returns:
            True when the pattern matches all of ``destination``, else False.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r})"


class _Globs(Pattern):
    """A pattern whose only wildcards are ``**``: literals found in order with ``str.find``.

    ``P0 ** P1 ** ... ** Pr`` matches d when d starts with P0, ends with Pr (without the two
    overlapping), and P1 ... P(r-1) occur in order, without overlapping, between them. Taking the
    leftmost occurrence of each is never wrong: any later one leaves less room for the rest, and
    ``**`` accepts whatever is skipped.
    """

    __slots__ = ("_first", "_last", "_middle", "_min_len")

    def __init__(self, source: str, literals: list[str]) -> None:
        super().__init__(source)
        self._first = literals[0]
        self._last = literals[-1]
        self._middle = tuple(lit for lit in literals[1:-1] if lit)
        self._min_len = sum(map(len, literals))

    def match(self, destination: str) -> bool:
        if (
            len(destination) < self._min_len
            or not destination.startswith(self._first)
            or not destination.endswith(self._last)
        ):
            return False
        pos = len(self._first)
        end = len(destination) - len(self._last)
        for literal in self._middle:
            pos = destination.find(literal, pos, end)
            if pos < 0:
                return False
            pos += len(literal)
        return True


class _SegmentRegex(Pattern):
    """A pattern with at most one ``*`` per segment and no ``**`` except one at its very end.

    It compiles to one regular expression: literals escaped, ``*`` as ``[^./]*``, a final ``**``
    as ``.*`` (with ``re.DOTALL``), matched at the start and, without a final ``**``, to the end.

    Why it cannot backtrack catastrophically: in such a pattern every ``*`` is followed by a literal
    L without a separator (possibly empty) and then by a separator, the end of the pattern, or the
    final ``**``. Matching ``[^./]*`` from position p, the engine first takes the whole run of
    non-separators and then gives back one character at a time, trying ``L`` after each length.

    * Followed by a separator s: ``L s`` must end at a separator of the destination. The star's
      text holds no separator and neither does L, so that separator is the first one at or after
      p, and at most one length of the star can go on; every other length fails within
      ``len(L) + 1`` comparisons.
    * Followed by the end of the pattern: ``L`` must end at the end of the destination, again one
      length at most.
    * Followed by the final ``**``: whatever length first lets ``L`` match is followed by ``.*``,
      which always succeeds (it takes the rest, and the match needs nothing after it), so the
      engine never comes back into this star.

    So the search is a single path through the pattern, with dead ends of O(len(L)) at each
    character a star gives back: at most O(n x m) steps for a destination of n characters.
    """

    __slots__ = ("_match",)

    def __init__(self, source: str, literals: list[str], deep_tail: bool) -> None:
        super().__init__(source)
        regex = "[^./]*".join(map(re.escape, literals))
        if deep_tail:
            # ``literals`` ends with the empty literal after the final "**", turned into a "*"
            # by the join above: replace that one with ".*", and match a prefix.
            regex = regex[: -len("[^./]*")] + ".*"
            self._match = re.compile(regex, re.DOTALL).match
        else:
            self._match = re.compile(regex, re.DOTALL).fullmatch

    def match(self, destination: str) -> bool:
        return self._match(destination) is not None


class _Automaton(Pattern):
    """Any pattern: the literals before the first star and after the last are checked with
    ``startswith`` and ``endswith``, and the rest by a bit-parallel NFA (Shift-And).

    The middle of the pattern is ``S0 L1 S1 ... Lk Sk`` (``S`` a star run, ``L`` a literal). Its
    automaton has one state per literal character plus a start state; state i moves to i + 1 on
    the (i + 1)-th literal character, and a state followed by a star keeps itself on any character
    (``**``) or on any non-separator (``*``). Bit i of ``state`` says whether state i is reachable
    after the characters read so far, and one character updates all bits at once::

        state = ((state << 1) & masks[ch]) | (state & keep)

    where ``masks[ch]`` has the bits of the states entered by ``ch`` and ``keep`` those that stay
    on ``ch``. That is one pass over the destination with O(ceil(m / 64)) word operations per
    character, whatever the pattern: no backtracking, and no search that restarts.
    """

    __slots__ = ("_accept", "_keep_other", "_keep_sep", "_masks", "_min_len", "_suffix")

    def __init__(self, source: str, literals: list[str], stars: list[str]) -> None:
        super().__init__(source)
        self._suffix = literals[-1]
        self._min_len = sum(map(len, literals))
        masks: dict[str, int] = {}
        keep_deep = keep_star = 0
        state = 0
        for i, star in enumerate(stars):
            if star == "**":
                keep_deep |= 1 << state
            else:
                keep_star |= 1 << state
            if i + 1 < len(stars):
                for ch in literals[i + 1]:
                    state += 1
                    masks[ch] = masks.get(ch, 0) | 1 << state
        self._masks = masks
        self._accept = 1 << state
        self._keep_sep = keep_deep
        self._keep_other = keep_deep | keep_star

    def match(self, destination: str) -> bool:
        if (
            len(destination) < self._min_len
            or not destination.startswith(self.prefix)
            or not destination.endswith(self._suffix)
        ):
            return False
        masks = self._masks
        keep_sep = self._keep_sep
        keep_other = self._keep_other
        state = 1
        for ch in destination[len(self.prefix) : len(destination) - len(self._suffix)]:
            state = ((state << 1) & masks.get(ch, 0)) | (
                state & (keep_sep if ch in SEPARATORS else keep_other)
            )
            if not state:
                return False
        return state & self._accept != 0


def compile_pattern(destination: str) -> Pattern | None:
    """Compile a subscription pattern (see the module docstring for the grammar).

    Args:
        destination: A SUBSCRIBE destination, e.g. ``"/topic/price.stock.*"``.

    Returns:
        The compiled :class:`Pattern`, or None when ``destination`` holds no ``*`` (a plain
        destination, matched by equality).
    """
    if "*" not in destination:
        return None
    pieces = _STAR_RUNS.split(destination)
    literals = pieces[0::2]  # between the star runs, never empty except at the two ends
    stars = ["*" if len(run) == 1 else "**" for run in pieces[1::2]]
    if "*" not in stars:
        return _Globs(destination, literals)
    deep = stars.count("**")
    deep_tail = deep == 1 and stars[-1] == "**" and not literals[-1]
    if deep == 0 or deep_tail:
        head = destination[: len(destination) - len(pieces[-2])] if deep_tail else destination
        if all(segment.count("*") <= 1 for segment in _SEGMENTS.split(head)):
            return _SegmentRegex(destination, literals, deep_tail)
    return _Automaton(destination, literals, stars)


class _Group(Generic[T]):
    """Every registration of one pattern: compiled and tested once for all of them."""

    __slots__ = ("items", "path", "pattern")

    def __init__(self, pattern: Pattern, path: list[str]) -> None:
        self.pattern = pattern
        self.path = path  # the trie keys down to the node that holds this group
        self.items: dict[T, int] = {}  # item -> registration number, in registration order


class _Node(Generic[T]):
    """A trie node: the patterns whose complete leading literal segments lead here.

    Keys are segments without their separators, so ``a.b`` and ``a/b`` share a path: the trie
    only narrows the candidates, and :meth:`Pattern.match` decides.
    """

    __slots__ = ("children", "groups")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}
        self.groups: dict[str, _Group[T]] = {}


class SubscriptionIndex(Generic[T]):
    """The registrations of topic subscriptions, plain and pattern, by destination.

    An item (a subscription, for the broker) is registered under one destination, plain or a
    pattern; the same item may be registered under several destinations, and each registration is
    matched on its own. Items are compared as dict keys (by identity for ``eq=False`` dataclasses).

    Costs, for a destination of n characters: :meth:`match` is one dict lookup, then (when any
    pattern is registered) one walk down the trie of at most n steps, and one
    :meth:`Pattern.match` per distinct pattern whose complete segments before its first ``*`` are
    leading segments of the destination. Patterns that differ from the destination in those
    segments are never looked at. :meth:`add` and :meth:`remove` are O(length of the destination).

    Order: :meth:`match` returns the plain registrations first, in the order they were added, then
    the pattern registrations in the order they were added (the broker's order before this index).

    Example:
        >>> from stomp_proto.broker import SubscriptionIndex
        >>> index: SubscriptionIndex[str] = SubscriptionIndex()
        >>> index.add("/topic/price.stock.*", "a")
        >>> index.add("/topic/price.stock.IBM", "b")
        >>> index.match("/topic/price.stock.IBM")
        ['b', 'a']
    """

    __slots__ = ("_exact", "_groups", "_pattern_count", "_plain_count", "_root", "_seq")

    def __init__(self) -> None:
        self._exact: dict[str, dict[T, None]] = {}
        self._root: _Node[T] = _Node()
        self._groups: dict[str, _Group[T]] = {}  # pattern source -> its group, for add/remove
        self._seq = itertools.count()
        self._plain_count = 0
        self._pattern_count = 0

    def __len__(self) -> int:
        """The number of registrations, plain and pattern."""
        return self._plain_count + self._pattern_count

    @property
    def patterns_count(self) -> int:
        """The number of pattern registrations (each subscriber of a pattern counts)."""
        return self._pattern_count

    @property
    def distinct_patterns(self) -> int:
        """The number of distinct patterns registered (what :meth:`match` may have to test)."""
        return len(self._groups)

    def add(self, destination: str, item: T) -> None:
        """Register ``item`` under ``destination``, a plain destination or a pattern.

        Args:
            destination: The SUBSCRIBE destination.
            item: What :meth:`match` returns for it, e.g. the subscription.

        Raises:
            ValueError: ``item`` is already registered under ``destination``.
        """
        if "*" not in destination:
            items = self._exact.setdefault(destination, {})
            if item in items:
                raise ValueError(f"{item!r} is already registered for {destination[:80]!r}")
            items[item] = None
            self._plain_count += 1
            return
        group = self._groups.get(destination)
        if group is None:
            pattern = compile_pattern(destination)
            assert pattern is not None  # it holds a "*"
            path = _segments(pattern.prefix)[:-1]  # the segments a separator ends
            node = self._root
            for key in path:
                child = node.children.get(key)
                if child is None:
                    child = node.children[key] = _Node()
                node = child
            group = node.groups[destination] = self._groups[destination] = _Group(pattern, path)
        elif item in group.items:
            raise ValueError(f"{item!r} is already registered for {destination[:80]!r}")
        group.items[item] = next(self._seq)
        self._pattern_count += 1

    def remove(self, destination: str, item: T) -> None:
        """Remove the registration of ``item`` under ``destination``.

        Args:
            destination: The destination it was added with.
            item: The item it was added with.

        Raises:
            KeyError: ``item`` is not registered under ``destination``.
        """
        if "*" not in destination:
            items = self._exact[destination]
            del items[item]
            if not items:
                del self._exact[destination]
            self._plain_count -= 1
            return
        group = self._groups[destination]
        del group.items[item]
        self._pattern_count -= 1
        if group.items:
            return
        del self._groups[destination]
        nodes = [self._root]
        for key in group.path:
            nodes.append(nodes[-1].children[key])
        del nodes[-1].groups[destination]
        # Prune the nodes left with neither patterns nor children, deepest first.
        for depth in range(len(group.path), 0, -1):
            node = nodes[depth]
            if node.groups or node.children:
                break
            del nodes[depth - 1].children[group.path[depth - 1]]

    def match(self, destination: str) -> list[T]:
        """The items registered under ``destination`` itself or under a pattern matching it.

        Args:
            destination: A SEND destination (treated as plain even if it holds ``*``).

        Returns:
            A new list, each registration once: plain ones first, then pattern ones, each in the
            order they were added. Empty when nothing matches.
        """
        exact = self._exact.get(destination)
        found = list(exact) if exact else []
        if not self._groups:
            return found
        node = self._root
        hits = (
            [g for g in node.groups.values() if g.pattern.match(destination)] if node.groups else []
        )
        for segment in _segments(destination):
            child = node.children.get(segment)
            if child is None:
                break
            node = child
            if node.groups:
                hits.extend(g for g in node.groups.values() if g.pattern.match(destination))
        if len(hits) == 1:
            found.extend(hits[0].items)
        elif hits:
            ordered = sorted(
                ((seq, item) for group in hits for item, seq in group.items.items()),
                key=itemgetter(0),
            )
            found.extend(item for _, item in ordered)
        return found
