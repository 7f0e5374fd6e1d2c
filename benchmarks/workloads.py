"""The benchmark workloads: deterministic STOMP 1.2 byte streams and the frames they encode.

Every workload is built from ``random.Random(seed)`` so two runs (and two machines) time the same
bytes. A frame is the plain tuple ``(command, headers, body)``: ``headers`` is a tuple of
``(name, value)`` pairs in wire order, already unescaped, and ``body`` is ``bytes``. The stream is
the STOMP 1.2 encoding of the frames back to back (no EOLs between frames), produced by the
reference encoder below, which escapes header names and values as STOMP 1.2 section "Value
Encoding" requires.

Sizes are the issue's; ``scale`` shrinks them for ``--quick`` (the first frames of a scaled
workload are the same frames as in the full one).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field

Frame = tuple[str, tuple[tuple[str, str], ...], bytes]

SEED = 20261125

_ESCAPES = (("\\", "\\\\"), ("\r", "\\r"), ("\n", "\\n"), (":", "\\c"))


def escape_12(text: str) -> str:
    """Return ``text`` escaped as a STOMP 1.2 header name or value."""
    for raw, escaped in _ESCAPES:
        text = text.replace(raw, escaped)
    return text


def encode_frame(frame: Frame) -> bytes:
    """Return the reference STOMP 1.2 wire encoding of ``frame``."""
    command, headers, body = frame
    lines = [command]
    lines.extend(f"{escape_12(name)}:{escape_12(value)}" for name, value in headers)
    return ("\n".join(lines) + "\n\n").encode() + body + b"\0"


@dataclass
class Workload:
    """One byte stream, the frames it encodes, and the chunk size it is fed in."""

    key: str
    title: str
    frames: list[Frame]
    stream: bytes
    ends: list[int]  # ends[i]: offset in stream just after frame i
    chunk: int
    _chunk_cache: dict[int, list[bytes]] = field(default_factory=dict, repr=False)

    @property
    def largest_frame(self) -> int:
        """The size in bytes of the largest encoded frame."""
        prev = 0
        largest = 0
        for end in self.ends:
            largest = max(largest, end - prev)
            prev = end
        return largest

    def prefix_stream(self, n: int) -> bytes:
        """Return the bytes of the first ``n`` frames."""
        if n >= len(self.frames):
            return self.stream
        return self.stream[: self.ends[n - 1]]

    def chunks(self, n: int) -> list[bytes]:
        """Return the first ``n`` frames' bytes cut into ``self.chunk``-sized pieces (cached)."""
        n = min(n, len(self.frames))
        cached = self._chunk_cache.get(n)
        if cached is None:
            data = self.prefix_stream(n)
            size = self.chunk
            cached = [data[i : i + size] for i in range(0, len(data), size)]
            self._chunk_cache[n] = cached
        return cached

    def with_chunk(self, key: str, title: str, chunk: int) -> Workload:
        """Return the same frames and stream delivered in ``chunk``-sized pieces."""
        return Workload(key, title, self.frames, self.stream, self.ends, chunk)

    def drop_cache(self) -> None:
        self._chunk_cache.clear()


def _assemble(key: str, title: str, frames: list[Frame], chunk: int = 65536) -> Workload:
    parts = [encode_frame(f) for f in frames]
    ends = []
    total = 0
    for p in parts:
        total += len(p)
        ends.append(total)
    return Workload(key, title, frames, b"".join(parts), ends, chunk)


def ticker(n: int, seed: int = SEED) -> list[Frame]:
    """(a) small MESSAGE frames like a stock ticker, ~40-byte JSON bodies."""
    rng = random.Random(seed)
    symbols = ["".join(rng.choices(string.ascii_uppercase, k=3)) for _ in range(500)]
    frames = []
    for i in range(n):
        sym = rng.choice(symbols)
        body = (
            f'{{"sym":"{sym}","price":{rng.uniform(1, 999):.2f},"vol":{rng.randrange(1, 10000)}}}'
        ).encode()
        headers = (
            ("destination", f"/topic/price.stock.{sym}"),
            ("message-id", f"T-{seed % 1000}-{i}"),
            ("subscription", "0"),
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
        )
        frames.append(("MESSAGE", headers, body))
    return frames


def _binary(rng: random.Random, size: int) -> bytes:
    body = bytearray(rng.randbytes(size))
    # Random bytes hold NULs already; make sure of at least two, one of them near the end.
    body[rng.randrange(size)] = 0
    body[size - 2] = 0
    return bytes(body)


def sends_4k(n: int, seed: int = SEED + 1) -> list[Frame]:
    """(b) SEND frames with 4 KiB binary bodies containing NUL bytes, with content-length."""
    rng = random.Random(seed)
    frames = []
    for i in range(n):
        body = _binary(rng, 4096)
        headers = (
            ("destination", f"/queue/blobs.{i % 16}"),
            ("content-type", "application/octet-stream"),
            ("content-length", str(len(body))),
        )
        frames.append(("SEND", headers, body))
    return frames


def messages_1m(n: int, seed: int = SEED + 2) -> list[Frame]:
    """(c) MESSAGE frames with 1 MiB binary bodies."""
    rng = random.Random(seed)
    frames = []
    for i in range(n):
        body = _binary(rng, 1 << 20)
        headers = (
            ("destination", "/queue/files"),
            ("message-id", f"F-{i}"),
            ("subscription", "0"),
            ("content-type", "application/octet-stream"),
            ("content-length", str(len(body))),
        )
        frames.append(("MESSAGE", headers, body))
    return frames


_UTF8_WORDS = ["café", "Zürich", "東京", "Ελλάδα", "naïve", "€100", "Łódź", "😀ok", "smörgåsbord"]
_ALNUM = string.ascii_letters + string.digits + "-_./"


def many_headers(n: int, seed: int = SEED + 3) -> list[Frame]:
    """(e) MESSAGE frames with 30 headers, a third of the values needing escapes, some UTF-8."""
    rng = random.Random(seed)
    frames = []
    for i in range(n):
        body = "".join(rng.choices(string.ascii_letters, k=24)).encode()
        custom = []
        for k in range(26):
            custom.append([f"x-attr-{k:02d}", "".join(rng.choices(_ALNUM, k=rng.randrange(4, 20)))])
        # 10 of the 30 values need escapes (the 4 fixed headers below never do).
        for k in rng.sample(range(26), 10):
            value = custom[k][1]
            for _ in range(rng.randrange(1, 3)):
                at = rng.randrange(len(value) + 1)
                value = value[:at] + rng.choice(":\\\n\r") + value[at:]
            custom[k][1] = value
        # Some UTF-8: 4 values per frame carry a non-ASCII word.
        for k in rng.sample(range(26), 4):
            custom[k][1] = custom[k][1] + " " + rng.choice(_UTF8_WORDS)
        headers = (
            ("destination", f"/queue/attrs.{i % 8}"),
            ("message-id", f"H-{i}"),
            ("subscription", "0"),
            ("content-length", str(len(body))),
            *((name, value) for name, value in custom),
        )
        frames.append(("MESSAGE", headers, body))
    return frames


FULL_SIZES = {"a": 100_000, "b": 10_000, "c": 200, "e": 20_000}
QUICK_SIZES = {"a": 5_000, "b": 500, "c": 6, "e": 1_000}


def build(quick: bool = False) -> dict[str, Workload]:
    """Return the parse workloads by key: a, b, c, d1500, d7, e."""
    sizes = QUICK_SIZES if quick else FULL_SIZES
    a = _assemble("a", "(a) ticker MESSAGE", ticker(sizes["a"]))
    b = _assemble("b", "(b) 4 KiB binary SEND", sends_4k(sizes["b"]))
    c = _assemble("c", "(c) 1 MiB binary MESSAGE", messages_1m(sizes["c"]))
    e = _assemble("e", "(e) 30 headers, escapes", many_headers(sizes["e"]))
    return {
        "a": a,
        "b": b,
        "c": c,
        "d1500": a.with_chunk("d1500", "(d) ticker, 1500 B chunks", 1500),
        "d7": a.with_chunk("d7", "(d) ticker, 7 B chunks", 7),
        "e": e,
    }
