"""Fake STOMP servers on loopback sockets, for the checker's own tests.

Each runs in a thread with its own event loop, so that the checker (which
runs ``asyncio.run`` itself, in the CLI) can be pointed at it like at any
server. They are deliberately wrong in one way each:

* ``silent``: accepts the TCP connection and never writes a byte;
* ``connect-only``: answers CONNECT with CONNECTED and then nothing, ever;
* ``yes-man``: answers CONNECT, and every frame with a ``receipt`` header
  with its RECEIPT, whatever the frame (it accepts everything, delivers
  nothing).

Frames are cut at NUL with no validation at all (the yes-man must accept
what the core would refuse).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from stomp_proto import Frame

KINDS = ("silent", "connect-only", "yes-man")


def _connected(headers: dict[bytes, bytes]) -> bytes:
    offered = headers.get(b"accept-version", b"1.0").decode().split(",")
    version = max((v for v in offered if v in ("1.0", "1.1", "1.2")), default="1.0")
    return Frame("CONNECTED", (("version", version), ("server", "fake/1"))).serialize("1.0")


def _frames(buffer: bytearray) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Cut whole frames off ``buffer``, leniently: (command, first value of each header)."""
    out = []
    while (end := buffer.find(b"\0")) >= 0:
        raw = bytes(buffer[:end]).lstrip(b"\r\n")
        del buffer[: end + 1]
        head = raw.partition(b"\n\n")[0].replace(b"\r\n", b"\n")
        command, *lines = head.split(b"\n")
        headers: dict[bytes, bytes] = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers.setdefault(name, value)
        out.append((command, headers))
    return out


async def _session(kind: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    buffer = bytearray()
    try:
        while data := await reader.read(65536):
            if kind == "silent":
                continue
            buffer += data
            for command, headers in _frames(buffer):
                if command in (b"CONNECT", b"STOMP"):
                    writer.write(_connected(headers))
                elif kind == "yes-man" and b"receipt" in headers:
                    writer.write(b"RECEIPT\nreceipt-id:" + headers[b"receipt"] + b"\n\n\0")
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


@contextmanager
def fake_server(kind: str) -> Iterator[int]:
    """Serve ``kind`` on a free loopback port (yielded) until the block ends."""
    assert kind in KINDS, kind
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port: list[int] = []
    stop = asyncio.Event()  # set from the loop's thread only

    sessions: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        sessions[task] = writer
        try:
            await _session(kind, reader, writer)
        finally:
            del sessions[task]

    async def serve() -> None:
        server = await asyncio.start_server(session, "127.0.0.1", 0)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        await stop.wait()
        server.close()
        for writer in sessions.values():
            writer.close()  # the session reads EOF and ends
        await asyncio.gather(*sessions, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the fake server did not start"
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
