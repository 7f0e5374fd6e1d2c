"""The load generator: raw asyncio sockets, frames serialized ahead of time.

A producer writes pre-joined batches of SEND frames (one ``write`` per batch,
not per frame). A consumer never parses frames one by one: per chunk it counts
frames with ``bytes.count(b"\\x00")`` and pulls the 10-digit sequence number
at the start of every body with one ``re.findall``, then compares the list
with the expected slice (one C-level list comparison): anything lost,
duplicated, reordered or unexpected (an ERROR frame) is caught.

Over WebSocket the client does what stompjs does: every STOMP frame is one
WebSocket message (text when it is UTF-8), masked with a fresh key; a batch
of them goes out in one write, made ahead of time (wsproto only does the
handshake). The server's (unmasked) frames are unwrapped by a small decoder
here, because a WebSocket library's per-message events would make the
consumer the bottleneck.
"""

from __future__ import annotations

import asyncio
import os
import re
import struct
import time
from collections.abc import Sequence

from stomp_proto import Frame

SEQ_RE = re.compile(rb"\n\n(\d{10})")
ACK_RE = re.compile(rb"\nack:([^\n]*)")
TS_RE = re.compile(rb"\n\n(\d{10}) (\d{19})")
BODY_SIZE = 100
STALL_SECONDS = 10.0  # a consumer that gets nothing for this long reports a stall


class BenchError(Exception):
    """The broker refused something, or a check failed."""


def seq_token(i: int) -> bytes:
    return b"%010d" % i


def body(i: int) -> bytes:
    head = seq_token(i) + b" "
    return head + b"x" * (BODY_SIZE - len(head))


def send_frame(destination: str, payload: bytes) -> bytes:
    return Frame("SEND", (("destination", destination),), payload).serialize()


# -- connections ---------------------------------------------------------------


def ws_message(payload: bytes) -> bytes:
    """``payload`` as one masked client-to-server WebSocket message: text
    when it is UTF-8 (as stompjs sends a string), binary otherwise."""
    try:
        payload.decode()
        opcode = 0x81
    except UnicodeDecodeError:
        opcode = 0x82
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", opcode, 0x80 | 127, n)
    key = os.urandom(4)
    stream = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return head + key + (int.from_bytes(payload, "big") ^ stream).to_bytes(n, "big")


class Conn:
    """A STOMP connection over TCP, or WebSocket when ``ws`` is set."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ws) -> None:
        self.reader = reader
        self.writer = writer
        self.ws = ws  # a wsproto.WSConnection after the handshake, or None
        self._wsbuf = b""

    def wrap(self, stomp: bytes) -> bytes:
        """The bytes to put on the wire for one STOMP frame (or heart-beat)."""
        return stomp if self.ws is None else ws_message(stomp)

    def wire(self, frames: Sequence[bytes]) -> bytes:
        """The bytes of one write carrying ``frames``: joined over TCP; over
        WebSocket each frame its own message, as stompjs sends them."""
        if self.ws is None:
            return b"".join(frames)
        return b"".join([ws_message(f) for f in frames])

    def write(self, wire: bytes) -> None:
        self.writer.write(wire)

    async def drain(self) -> None:
        await self.writer.drain()

    async def recv(self) -> bytes:
        """The next STOMP bytes from the broker (b"" at EOF)."""
        while True:
            data = await self.reader.read(1 << 18)
            if not data or self.ws is None:
                return data
            out = self._unwrap(data)
            if out:
                return out

    def _unwrap(self, data: bytes) -> bytes:
        buf = self._wsbuf + data if self._wsbuf else data
        parts = []
        at, end = 0, len(buf)
        while end - at >= 2:
            b0, b1 = buf[at], buf[at + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if end - at < 4:
                    break
                n = struct.unpack_from("!H", buf, at + 2)[0]
                head = 4
            elif n == 127:
                if end - at < 10:
                    break
                n = struct.unpack_from("!Q", buf, at + 2)[0]
                head = 10
            if b1 & 0x80:
                raise BenchError("masked frame from the server")
            if end - at < head + n:
                break
            opcode = b0 & 0x0F
            if opcode in (0, 1, 2):
                parts.append(buf[at + head : at + head + n])
            elif opcode == 8:
                parts.append(b"")  # close: let the caller see what came before
            at += head + n
        self._wsbuf = buf[at:]
        return b"".join(parts)

    def close(self) -> None:
        self.writer.close()


async def open_conn(target, *, ws: bool = False, heart_beat: str = "0,0") -> Conn:
    if ws:
        reader, writer = await asyncio.open_connection(target.host, target.ws_port)
    else:
        reader, writer = await asyncio.open_connection(target.host, target.port)
    wsconn = None
    if ws:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, RejectConnection, Request

        wsconn = WSConnection(ConnectionType.CLIENT)
        writer.write(
            wsconn.send(
                Request(
                    host=f"{target.host}:{target.ws_port}",
                    target=target.ws_path,
                    subprotocols=["v12.stomp"],
                )
            )
        )
        accepted = False
        leftover = b""
        while not accepted:
            data = await reader.read(65536)
            if not data:
                raise BenchError("WebSocket handshake: EOF")
            wsconn.receive_data(data)
            for event in wsconn.events():
                if isinstance(event, AcceptConnection):
                    accepted = True
                elif isinstance(event, RejectConnection):
                    raise BenchError(f"WebSocket handshake rejected: {event.status_code}")
        del leftover
    conn = Conn(reader, writer, wsconn)
    connect = Frame(
        "CONNECT",
        (
            ("accept-version", "1.2"),
            ("host", target.vhost),
            ("login", target.login),
            ("passcode", target.passcode),
            ("heart-beat", heart_beat),
        ),
    ).serialize()
    conn.write(conn.wrap(connect))
    data = await read_frames(conn, 1)
    if not data.startswith(b"CONNECTED"):
        raise BenchError(f"CONNECT answered {data[:200]!r}")
    return conn


async def read_frames(conn: Conn, count: int, timeout: float = 20.0) -> bytes:
    """At least ``count`` whole frames (control traffic only, not the load)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while buf.count(b"\x00") < count:
        data = await asyncio.wait_for(conn.recv(), max(0.0, deadline - time.monotonic()))
        if not data:
            raise BenchError(f"EOF after {buf[:300]!r}")
        buf += data
    return buf.lstrip(b"\r\n")


async def subscribe(conn: Conn, destination: str, sub_id: str, ack: str = "auto") -> None:
    frame = Frame(
        "SUBSCRIBE",
        (("destination", destination), ("id", sub_id), ("ack", ack), ("receipt", "sub-" + sub_id)),
    ).serialize()
    conn.write(conn.wrap(frame))
    data = await read_frames(conn, 1)
    if not data.startswith(b"RECEIPT"):
        raise BenchError(f"SUBSCRIBE answered {data[:300]!r}")


# -- producer and consumer -------------------------------------------------------


def batches(frames: Sequence[bytes], per_batch: int) -> list[bytes]:
    """``frames`` as TCP writes of ``per_batch`` frames each (over WebSocket,
    ``Conn.wire`` frames each STOMP frame as its own message)."""
    return [b"".join(frames[i : i + per_batch]) for i in range(0, len(frames), per_batch)]


async def produce(conn: Conn, wire_batches: Sequence[bytes]) -> None:
    for batch in wire_batches:
        conn.write(batch)
        await conn.drain()


class Consumer:
    """Receives ``expected`` (sequence tokens) in order on ``conn``."""

    def __init__(self, conn: Conn, expected: list[bytes], *, ack: bool = False) -> None:
        self.conn = conn
        self.expected = expected
        self.ack = ack
        self.pos = 0
        self.done_at = 0.0
        self.error: str | None = None
        self.extra = b""

    async def run(self) -> None:
        conn, expected, n = self.conn, self.expected, len(self.expected)
        buf = b""
        findall, ack_findall = SEQ_RE.findall, ACK_RE.findall
        pos = 0
        while pos < n:
            try:
                data = await asyncio.wait_for(conn.recv(), STALL_SECONDS)
            except asyncio.TimeoutError:
                self.error = (
                    f"stalled: nothing for {STALL_SECONDS:.0f} s after {pos} of {n} messages"
                )
                return
            if not data:
                self.error = f"EOF after {pos} of {n} messages; last bytes {buf[-300:]!r}"
                self.pos = pos
                return
            buf = buf + data if buf else data
            cut = buf.rfind(b"\x00")
            if cut < 0:
                continue
            complete, buf = buf[: cut + 1], buf[cut + 1 :]
            count = complete.count(b"\x00")
            seqs = findall(complete)
            if len(seqs) != count or seqs != expected[pos : pos + count]:
                self.error = _diagnose(complete, seqs, expected, pos)
                self.pos = pos
                return
            pos += count
            self.pos = pos
            if self.ack:
                ids = ack_findall(complete)
                if len(ids) != count:
                    self.error = f"{count} messages but {len(ids)} ack headers"
                    return
                conn.write(conn.wire([b"ACK\nid:" + i + b"\n\n\x00" for i in ids]))
        self.pos = pos
        self.done_at = time.perf_counter()
        self.extra = buf

    async def check_quiet(self, seconds: float) -> None:
        """Nothing more arrives (a duplicate after the last message)."""
        buf = self.extra
        deadline = time.monotonic() + seconds
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                data = await asyncio.wait_for(self.conn.recv(), left)
                if not data:
                    break
                buf += data
        except asyncio.TimeoutError:
            pass
        if buf.strip(b"\r\n"):
            frames = buf.count(b"\x00")
            self.error = f"{frames} unexpected frame(s) after the last: {buf[:200]!r}"


def _diagnose(chunk: bytes, seqs: list[bytes], expected: list[bytes], pos: int) -> str:
    if chunk.count(b"\x00") != len(seqs):
        for frame in chunk.split(b"\x00"):
            frame = frame.lstrip(b"\r\n")
            if frame and not frame.startswith(b"MESSAGE"):
                return f"unexpected frame after {pos} messages: {frame[:300]!r}"
    want = expected[pos : pos + len(seqs)]
    for k, (got, exp) in enumerate(zip(seqs, want, strict=False)):
        if got != exp:
            gi = int(got)
            what = "duplicated/reordered" if gi < int(exp) else "lost"
            return f"message {pos + k}: got seq {gi}, expected {int(exp)} ({what})"
    return f"{len(seqs)} messages, more than the {len(expected) - pos} still expected (duplicates)"
