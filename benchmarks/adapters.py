"""How each library is driven: its own public parsing and serializing entry points.

An adapter knows four things about a library:

- ``parse_count(chunks)``: the timed loop. A fresh parser is fed every chunk the way the
  library's own transport feeds it, frames are taken out the way its docs show, and only their
  number is kept (so every library pays for building its frame objects but none for our
  bookkeeping).
- ``parse_frames(chunks)``: the same loop, keeping the frames converted to
  ``(command, headers, body)`` so they can be checked against the expected frames; ``ordered``
  says whether headers come back as wire-ordered pairs or as a dict.
- ``build(frames)``: the library's own frame objects for the serialization workloads (untimed).
- ``serialize(objects)``: the timed serialization loop, returning the list of ``bytes``.

Libraries that are not installed are reported as missing, never as an error.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import Any

from .floor import FloorParser, floor_serialize


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


class Adapter:
    name = ""
    dist = ""
    ordered = True  # headers come back as ordered pairs (else a dict, first or last wins)
    how_parse = ""
    how_serialize = ""

    @property
    def version(self) -> str:
        return _version(self.dist) if self.dist else ""

    def parse_count(self, chunks: list[bytes]) -> int:
        raise NotImplementedError

    def parse_frames(self, chunks: list[bytes]) -> list[tuple[str, Any, bytes]]:
        raise NotImplementedError

    def build(self, frames: list) -> list:
        raise NotImplementedError

    def serialize(self, objects: list) -> list[bytes]:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
class Floor(Adapter):
    name = "floor"
    how_parse = "benchmarks.floor.FloorParser().feed(chunk) -> [(command, headers, body)]"
    how_serialize = "benchmarks.floor.floor_serialize((command, headers, body))"

    def parse_count(self, chunks):
        feed = FloorParser().feed
        n = 0
        for chunk in chunks:
            n += len(feed(chunk))
        return n

    def parse_frames(self, chunks):
        feed = FloorParser().feed
        out = []
        for chunk in chunks:
            out.extend(feed(chunk))
        return [(c, tuple(h), b) for c, h, b in out]

    def build(self, frames):
        return [(c, list(h), b) for c, h, b in frames]

    def serialize(self, objects):
        return [floor_serialize(f) for f in objects]


# --------------------------------------------------------------------------------------------
class StompProto(Adapter):
    name = "stomp_proto"
    dist = "stomp-proto"
    how_parse = "stomp_proto.FrameParser('1.2').feed(chunk) -> [Frame | Heartbeat]"
    how_serialize = "stomp_proto.Frame(command, headers, body).serialize('1.2')"

    def __init__(self) -> None:
        import stomp_proto

        self.mod = stomp_proto
        self.FrameParser = stomp_proto.FrameParser
        self.Frame = stomp_proto.Frame

    def parse_count(self, chunks):
        feed = self.FrameParser("1.2").feed
        n = 0
        for chunk in chunks:
            n += len(feed(chunk))
        return n

    def parse_frames(self, chunks):
        feed = self.FrameParser("1.2").feed
        out = []
        for chunk in chunks:
            out.extend(feed(chunk))
        res = []
        for f in out:
            if isinstance(f, self.Frame):
                res.append((f.command, tuple(f.headers), bytes(f.body)))
            else:
                res.append((type(f).__name__, (), b""))
        return res

    def build(self, frames):
        Frame = self.Frame
        return [Frame(c, tuple(h), b) for c, h, b in frames]

    def serialize(self, objects):
        return [f.serialize("1.2") for f in objects]


# --------------------------------------------------------------------------------------------
class Stompest(Adapter):
    name = "stompest"
    dist = "stompest"
    how_parse = "stompest.protocol.StompParser('1.2'): add(chunk); while canRead(): get()"
    how_serialize = "bytes(stompest.protocol.StompFrame(command, rawHeaders=..., body=...))"

    def __init__(self) -> None:
        from stompest.protocol import StompFrame, StompParser

        self.StompParser = StompParser
        self.StompFrame = StompFrame

    def parse_count(self, chunks):
        parser = self.StompParser("1.2")
        add, can_read, get = parser.add, parser.canRead, parser.get
        n = 0
        for chunk in chunks:
            add(chunk)
            while can_read():
                get()
                n += 1
        return n

    def parse_frames(self, chunks):
        parser = self.StompParser("1.2")
        out = []
        for chunk in chunks:
            parser.add(chunk)
            while parser.canRead():
                f = parser.get()
                if not f:  # StompHeartBeat is falsy
                    out.append(("HEARTBEAT", (), b""))
                else:
                    out.append((f.command, tuple(f.rawHeaders), f.body))
        return out

    def build(self, frames):
        F = self.StompFrame
        return [F(c, rawHeaders=list(h), body=b, version="1.2") for c, h, b in frames]

    def serialize(self, objects):
        return [bytes(f) for f in objects]


# --------------------------------------------------------------------------------------------
class StompPy(Adapter):
    """stomp.py has no standalone incremental parser: framing lives in its transport's read loop.

    We subclass ``stomp.transport.BaseTransport`` overriding only ``receive()`` (the documented
    hook every transport implements) to hand out the chunks, and call the loop the receiver thread
    runs (``BaseTransport.__read``, which cuts the receive buffer into raw frames) followed by
    ``stomp.utils.parse_frame`` on each raw frame, as ``__read_frames`` does. ``auto_decode`` is
    off so bodies stay bytes. Serialization is ``stomp.utils.convert_frame`` + ``pack``, as
    ``Transport.transmit`` does.
    """

    name = "stomp.py"
    dist = "stomp-py"
    ordered = False
    how_parse = (
        "stomp.transport.BaseTransport subclass with receive() over the chunks; "
        "its receive loop (__read) + stomp.utils.parse_frame per raw frame"
    )
    how_serialize = "stomp.utils.pack(stomp.utils.convert_frame(stomp.utils.Frame(...)))"

    def __init__(self) -> None:
        import os

        os.environ.setdefault("STOMP_SKIP_HOSTNAME_SCAN", "1")
        import stomp.transport
        import stomp.utils

        self.utils = stomp.utils

        class FeedTransport(stomp.transport.BaseTransport):
            def __init__(self, chunks):
                super().__init__(auto_decode=False)
                self.running = True
                self.blocking = False  # an empty receive() ends the read instead of raising
                self._next = iter(chunks).__next__
                self.exhausted = False

            def receive(self):
                try:
                    return self._next()
                except StopIteration:
                    self.exhausted = True
                    return None

        self.FeedTransport = FeedTransport

    def _raw_frames(self, chunks) -> Callable[[], list[bytes]]:
        t = self.FeedTransport(chunks)
        return t, t._BaseTransport__read  # type: ignore[attr-defined]

    def parse_count(self, chunks):
        parse_frame = self.utils.parse_frame
        t, read = self._raw_frames(chunks)
        n = 0
        while not t.exhausted:  # the read that meets the end still cuts what it has
            for raw in read():
                if parse_frame(raw) is not None:
                    n += 1
        return n

    def parse_frames(self, chunks):
        parse_frame = self.utils.parse_frame
        t, read = self._raw_frames(chunks)
        out = []
        while not t.exhausted:
            for raw in read():
                f = parse_frame(raw)
                if f is not None:
                    out.append((f.cmd, f.headers, f.body))
        return out

    def build(self, frames):
        F = self.utils.Frame
        return [F(c, dict(h), b) for c, h, b in frames]

    def serialize(self, objects):
        pack, convert = self.utils.pack, self.utils.convert_frame
        return [pack(convert(f)) for f in objects]


# --------------------------------------------------------------------------------------------
class Stompman(Adapter):
    name = "stompman"
    dist = "stompman"
    ordered = False
    how_parse = "stompman.FrameParser().parse_frames_from_chunk(chunk)"
    how_serialize = "stompman.dump_frame(stompman.MessageFrame/SendFrame(headers=..., body=...))"

    def __init__(self) -> None:
        import stompman
        from stompman.serde import COMMANDS_TO_FRAMES, FRAMES_TO_COMMANDS

        self.FrameParser = stompman.FrameParser
        self.dump_frame = stompman.dump_frame
        self.Heartbeat = stompman.HeartbeatFrame
        self.by_command = COMMANDS_TO_FRAMES
        self.commands = FRAMES_TO_COMMANDS

    def parse_count(self, chunks):
        parse = self.FrameParser().parse_frames_from_chunk
        n = 0
        for chunk in chunks:
            for _ in parse(chunk):
                n += 1
        return n

    def parse_frames(self, chunks):
        parse = self.FrameParser().parse_frames_from_chunk
        out = []
        for chunk in chunks:
            for f in parse(chunk):
                if isinstance(f, self.Heartbeat):
                    out.append(("HEARTBEAT", (), b""))
                else:
                    out.append(
                        (self.commands[type(f)].decode(), dict(f.headers), getattr(f, "body", b""))
                    )
        return out

    def build(self, frames):
        return [self.by_command[c.encode()](headers=dict(h), body=b) for c, h, b in frames]

    def serialize(self, objects):
        dump = self.dump_frame
        return [dump(f) for f in objects]


# --------------------------------------------------------------------------------------------
class Aiostomp(Adapter):
    name = "aiostomp"
    dist = "aiostomp"
    ordered = False
    how_parse = "aiostomp.protocol.StompProtocol(): feed_data(chunk); pop_frames()"
    how_serialize = "StompProtocol().build_frame(f.command, f.headers, f.body), f: aiostomp Frame"

    def __init__(self) -> None:
        from aiostomp.frame import Frame
        from aiostomp.protocol import StompProtocol

        self.StompProtocol = StompProtocol
        self.Frame = Frame

    def parse_count(self, chunks):
        proto = self.StompProtocol()
        feed, pop = proto.feed_data, proto.pop_frames
        n = 0
        for chunk in chunks:
            feed(chunk)
            n += len(pop())
        return n

    def parse_frames(self, chunks):
        proto = self.StompProtocol()
        out = []
        for chunk in chunks:
            proto.feed_data(chunk)
            out.extend((f.command, dict(f.headers), f.body or b"") for f in proto.pop_frames())
        return out

    def build(self, frames):
        F = self.Frame
        return [F(c, dict(h), b) for c, h, b in frames]

    def serialize(self, objects):
        build = self.StompProtocol().build_frame
        return [build(f.command, f.headers, f.body) for f in objects]


PEERS = (Stompest, StompPy, Stompman, Aiostomp)


def load() -> tuple[Adapter, dict[str, Adapter | str]]:
    """Return the floor adapter and, by name, each library's adapter or why it is missing."""
    libs: dict[str, Adapter | str] = {}
    for cls in (StompProto, *PEERS):
        try:
            libs[cls.name] = cls()
        except ImportError as exc:
            libs[cls.name] = f"missing ({exc})"
    return Floor(), libs
