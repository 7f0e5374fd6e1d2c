"""SUBSCRIBE ``selector`` headers: a small, safe expression language over headers.

A subscription with ``selector: type = 'trade' and region in ('EU', 'US')``
gets only the messages whose headers satisfy it. The language is a subset of
JMS/ActiveMQ message selectors, chosen so that it can do no harm:

* comparisons ``header = 'text'``, ``header <> 'text'`` (also ``!=``), with
  numbers compared as numbers when both sides are numbers (``priority = 5``);
* ``header in ('a', 'b', ...)`` and ``header not in (...)``;
* ``header is null`` / ``header is not null`` (the header is absent / present);
* ``and``, ``or``, ``not`` and parentheses, with the usual precedence;
* header names are letters, digits, ``_``, ``-``, ``.`` and ``:``-free ASCII;
  ``destination`` and ``content-type`` are headers too; keywords are
  case-insensitive.

It has no functions, no arithmetic, no regular expressions and no way to
run code (Spring's SpEL selectors are off by default because they can,
spring-framework#30550). Parsing is one pass over at most 1,024 characters
with nesting at most 32 deep, evaluation is linear in the selector, and a
selector that does not parse is refused (the SUBSCRIBE gets an ERROR saying
where), never treated as "match everything".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

__all__ = ["MAX_SELECTOR_LENGTH", "SelectorError", "compile_selector"]

#: Longest selector accepted, in characters.
MAX_SELECTOR_LENGTH = 1024
_MAX_DEPTH = 32

Predicate = Callable[[Mapping[str, str]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<number>[+-]?\d+(?:\.\d+)?)
    | (?P<op><>|!=|=|\(|\)|,)
    | (?P<word>[A-Za-z_][A-Za-z0-9_.\-]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "is", "null"}


class SelectorError(ValueError):
    """A selector that does not parse; the message says what and where."""


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            where = len(text) - len(text[position:].lstrip())
            raise SelectorError(f"unexpected {text[where : where + 10]!r} at character {where}")
        kind = match.lastgroup
        assert kind is not None
        value = match.group(kind)
        start = match.start(kind)
        if kind == "word" and value.lower() in _KEYWORDS:
            kind, value = "keyword", value.lower()
        out.append((kind, value, start))
        position = match.end()
    return out


def _literal(kind: str, value: str) -> str | float:
    if kind == "string":
        return value[1:-1].replace("''", "'")
    return float(value)


def _equal(actual: str, expected: str | float) -> bool:
    if isinstance(expected, float):
        try:
            return float(actual) == expected
        except ValueError:
            return False
    return actual == expected


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> tuple[str, str, int]:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            want = value or kind
            found = "the end" if token is None else f"{token[1]!r} at character {token[2]}"
            raise SelectorError(f"expected {want}, found {found}")
        self.at += 1
        return token

    def accept(self, kind: str, value: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == kind and token[1] == value:
            self.at += 1
            return True
        return False

    def parse(self) -> Predicate:
        predicate = self.disjunction(0)
        token = self.peek()
        if token is not None:
            raise SelectorError(f"unexpected {token[1]!r} at character {token[2]}")
        return predicate

    def disjunction(self, depth: int) -> Predicate:
        terms = [self.conjunction(depth)]
        while self.accept("keyword", "or"):
            terms.append(self.conjunction(depth))
        if len(terms) == 1:
            return terms[0]
        return lambda headers: any(term(headers) for term in terms)

    def conjunction(self, depth: int) -> Predicate:
        terms = [self.negation(depth)]
        while self.accept("keyword", "and"):
            terms.append(self.negation(depth))
        if len(terms) == 1:
            return terms[0]
        return lambda headers: all(term(headers) for term in terms)

    def negation(self, depth: int) -> Predicate:
        if depth > _MAX_DEPTH:
            raise SelectorError(f"nested more than {_MAX_DEPTH} deep")
        if self.accept("keyword", "not"):
            inner = self.negation(depth + 1)
            return lambda headers: not inner(headers)
        if self.accept("op", "("):
            inner = self.disjunction(depth + 1)
            self.take("op", ")")
            return inner
        return self.comparison()

    def value(self) -> str | float:
        token = self.peek()
        if token is None or token[0] not in ("string", "number"):
            found = "the end" if token is None else f"{token[1]!r} at character {token[2]}"
            raise SelectorError(f"expected a 'string' or a number, found {found}")
        self.at += 1
        return _literal(token[0], token[1])

    def comparison(self) -> Predicate:
        name = self.take("word")[1]
        if self.accept("keyword", "is"):
            negated = self.accept("keyword", "not")
            self.take("keyword", "null")
            if negated:
                return lambda headers: name in headers
            return lambda headers: name not in headers
        negated = self.accept("keyword", "not")
        if self.accept("keyword", "in"):
            self.take("op", "(")
            values = [self.value()]
            while self.accept("op", ","):
                values.append(self.value())
            self.take("op", ")")

            def member(headers: Mapping[str, str]) -> bool:
                actual = headers.get(name)
                found = actual is not None and any(_equal(actual, v) for v in values)
                return actual is not None and found != negated

            return member
        if negated:
            raise SelectorError(f"expected 'in' after {name!r} not")
        token = self.peek()
        if token is None or token[0] != "op" or token[1] not in ("=", "<>", "!="):
            found = "the end" if token is None else f"{token[1]!r} at character {token[2]}"
            raise SelectorError(f"expected =, <> or 'in' after {name!r}, found {found}")
        self.at += 1
        expected = self.value()
        if token[1] == "=":
            return lambda headers: (
                (actual := headers.get(name)) is not None and _equal(actual, expected)
            )
        return lambda headers: (
            (actual := headers.get(name)) is not None and not _equal(actual, expected)
        )


def compile_selector(text: str) -> Predicate:
    """A predicate over a message's headers (a mapping of name to first value).

    Raises:
        SelectorError: the selector does not parse, or is too long or deep.
    """
    if len(text) > MAX_SELECTOR_LENGTH:
        raise SelectorError(f"longer than {MAX_SELECTOR_LENGTH} characters")
    if not text.strip():
        raise SelectorError("empty")
    return _Parser(text).parse()
