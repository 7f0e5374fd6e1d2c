"""Raw-socket tools for the broker's fault and abuse suite and its soak (issue 9).

The broker's own client is polite: it reads everything, waits for receipts and
never breaks a frame. The faults of issue 9 come from clients that are not, so
this module talks STOMP over plain sockets (AnyIO streams) with nothing in the
way: :class:`RawClient` can pipeline any bytes, stop reading, close in the
middle of a frame or reset the connection (``SO_LINGER`` 0), and reads what the
broker sends with the core's :class:`~stomp_proto.FrameParser`.

Beside it:

* :class:`Canary`: the broker's own client (``stomp_proto.asyncio.connect``) on
  a private queue; ``ping()`` is one round trip. An embedded broker runs on the
  test's event loop, so a canary that stalls means the broker stalled.
* :class:`BrokerProcess`: a broker in a child process, for what cannot be tested
  in-process (a descriptor limit, a hang that must not hang the test, the CPU
  time and memory of the broker alone).
* :func:`rss_bytes`, :func:`cpu_seconds`, :class:`Traced`: memory and CPU figures
  for the bounds the tests state.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from stomp_proto import Frame, FrameParser
from stomp_proto.asyncio import Client, ReceivedMessage, connect
from stomp_proto.broker import Broker

Headers = Sequence[tuple[str, str]]

#: What a closed or reset connection raises on read or write, on either backend.
GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


def tcp_port(broker: Broker) -> int:
    return next(port for kind, _, port in broker.addresses if kind == "tcp")


def ws_port(broker: Broker) -> int:
    return next(port for kind, _, port in broker.addresses if kind == "ws")


def embedded(**options: Any) -> Broker:
    """A broker for one test, on a free port, as tests/broker/conftest.py makes them."""
    settings: dict[str, Any] = {"tcp": [("127.0.0.1", 0)], "ws": [], "heart_beat": (0, 0)}
    settings.update(options)
    return Broker(**settings)


def stomp(command: str, headers: Headers = (), body: bytes = b"", *, length: bool = True) -> bytes:
    """The wire bytes of one frame, unescaped and unchecked (a raw client may lie).

    A non-empty body gets a ``content-length`` unless ``length`` is false or the
    headers already have one.
    """
    lines = [command, *(f"{k}:{v}" for k, v in headers)]
    if body and length and not any(k == "content-length" for k, _ in headers):
        lines.append(f"content-length:{len(body)}")
    return ("\n".join(lines) + "\n\n").encode() + body + b"\0"


def connect_frame(
    version: str = "1.2", heart_beat: tuple[int, int] = (0, 0), headers: Headers = ()
) -> bytes:
    return stomp(
        "CONNECT",
        [
            ("accept-version", version),
            ("host", "/"),
            ("heart-beat", f"{heart_beat[0]},{heart_beat[1]}"),
            *headers,
        ],
    )


def send_frame(destination: str, body: bytes, headers: Headers = ()) -> bytes:
    return stomp("SEND", [("destination", destination), *headers], body)


class RawClient:
    """STOMP over a bare AnyIO socket stream: nothing is sent that the test did not write.

    Frames received are parsed by :class:`~stomp_proto.FrameParser` (set to the
    negotiated version after CONNECTED); heart-beats are counted and skipped.
    """

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.parser = FrameParser(max_body_size=1 << 30)
        self.ready: deque[Frame] = deque()
        self.eof = False
        self.heartbeats = 0
        self.received_bytes = 0
        self.version = "1.2"

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1") -> RawClient:
        return cls(await anyio.connect_tcp(host, port))

    @classmethod
    async def connected(
        cls,
        port: int,
        version: str = "1.2",
        heart_beat: tuple[int, int] = (0, 0),
        headers: Headers = (),
    ) -> RawClient:
        """Open, CONNECT and read the CONNECTED (AssertionError for anything else)."""
        raw = await cls.open(port)
        reply = await raw.connect(version, heart_beat, headers)
        assert reply is not None and reply.command == "CONNECTED", reply
        return raw

    async def connect(
        self, version: str = "1.2", heart_beat: tuple[int, int] = (0, 0), headers: Headers = ()
    ) -> Frame | None:
        """Send CONNECT; return the reply (CONNECTED or ERROR), None at EOF."""
        await self.write(connect_frame(version, heart_beat, headers))
        reply = await self.frame()
        if reply is not None and reply.command == "CONNECTED":
            self.version = reply.get("version", "1.0") or "1.0"
            self.parser.version = self.version
        return reply

    async def write(self, data: bytes) -> None:
        await self.stream.send(data)

    async def send(self, command: str, headers: Headers = (), body: bytes = b"") -> None:
        await self.write(stomp(command, headers, body))

    async def subscribe(
        self,
        destination: str,
        sub_id: str = "s",
        ack: str = "auto",
        headers: Headers = (),
        *,
        receipt: bool = True,
    ) -> None:
        """SUBSCRIBE, by default waiting for the RECEIPT (frames before it are kept)."""
        rid = f"sub-{sub_id}"
        extra = [("receipt", rid)] if receipt else []
        await self.send(
            "SUBSCRIBE",
            [("id", sub_id), ("destination", destination), ("ack", ack), *headers, *extra],
        )
        if receipt:
            before = await self.receipt(rid)
            self.ready.extendleft(reversed(before))

    async def _fill(self) -> None:
        try:
            data = await self.stream.receive(1 << 16)
        except GONE:
            self.eof = True
            return
        self.received_bytes += len(data)
        for item in self.parser.feed(data):
            if isinstance(item, Frame):
                self.ready.append(item)
            else:
                self.heartbeats += 1

    async def frame(self, timeout: float = 5.0) -> Frame | None:
        """The next frame, None at EOF; TimeoutError after ``timeout`` seconds."""
        with anyio.fail_after(timeout):
            while not self.ready:
                if self.eof:
                    return None
                await self._fill()
            return self.ready.popleft()

    async def frames_until(
        self, done: Callable[[Frame], bool], timeout: float = 5.0
    ) -> list[Frame]:
        """Frames up to and including the first for which ``done`` is true (or EOF)."""
        out: list[Frame] = []
        with anyio.fail_after(timeout):
            while True:
                frame = await self.frame(timeout)
                if frame is None:
                    return out
                out.append(frame)
                if done(frame):
                    return out

    async def receipt(self, receipt_id: str, timeout: float = 5.0) -> list[Frame]:
        """Frames before the RECEIPT for ``receipt_id`` (AssertionError on ERROR or EOF)."""
        frames = await self.frames_until(
            lambda f: (
                f.command == "ERROR"
                or (f.command == "RECEIPT" and f.get("receipt-id") == receipt_id)
            ),
            timeout,
        )
        assert frames and frames[-1].command == "RECEIPT", frames[-3:]
        return frames[:-1]

    async def until_closed(self, timeout: float = 5.0) -> list[Frame]:
        """Every frame until the broker closes the connection (TimeoutError if it does not)."""
        out: list[Frame] = []
        with anyio.fail_after(timeout):
            while (frame := await self.frame(timeout)) is not None:
                out.append(frame)
        return out

    async def closed_within(self, timeout: float) -> bool:
        """True if the broker closes the connection within ``timeout`` seconds."""
        try:
            await self.until_closed(timeout)
        except TimeoutError:
            return False
        return True

    def raw_socket(self) -> socket.socket:
        sock: socket.socket = self.stream.extra(anyio.abc.SocketAttribute.raw_socket)
        return sock

    async def reset(self) -> None:
        """Close abruptly: SO_LINGER 0 makes the kernel send RST, not FIN."""
        with _quiet():
            self.raw_socket().setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        await self.aclose()

    async def aclose(self) -> None:
        with _quiet():
            await self.stream.aclose()


def _quiet() -> contextlib.suppress:
    return contextlib.suppress(*GONE)


class WsRawClient(RawClient):
    """:class:`RawClient` over WebSocket (wsproto for the framing): each write is one
    binary message, so a frame can be cut anywhere, and :meth:`reset` still
    resets the TCP connection under it, with no Close handshake."""

    def __init__(self, stream: anyio.abc.SocketStream, ws: Any) -> None:
        super().__init__(stream)
        self.ws = ws

    @classmethod
    async def open(cls, port: int, host: str = "127.0.0.1", path: str = "/ws") -> WsRawClient:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, Request

        stream = await anyio.connect_tcp(host, port)
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send(
            ws.send(Request(host=f"{host}:{port}", target=path, subprotocols=["v12.stomp"]))
        )
        with anyio.fail_after(5):
            while True:
                ws.receive_data(await stream.receive())
                if any(isinstance(event, AcceptConnection) for event in ws.events()):
                    return cls(stream, ws)

    @classmethod
    async def connected(  # type: ignore[override]
        cls, port: int, version: str = "1.2", heart_beat: tuple[int, int] = (0, 0)
    ) -> WsRawClient:
        raw = await cls.open(port)
        reply = await raw.connect(version, heart_beat)
        assert reply is not None and reply.command == "CONNECTED", reply
        return raw

    async def write(self, data: bytes) -> None:
        from wsproto.events import BytesMessage

        await self.stream.send(self.ws.send(BytesMessage(data=data)))

    async def _fill(self) -> None:
        from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

        try:
            data = await self.stream.receive(1 << 16)
        except GONE:
            self.eof = True
            return
        self.received_bytes += len(data)
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, (BytesMessage, TextMessage)):
                chunk = event.data.encode() if isinstance(event.data, str) else bytes(event.data)
                for item in self.parser.feed(chunk):
                    if isinstance(item, Frame):
                        self.ready.append(item)
                    else:
                        self.heartbeats += 1
            elif isinstance(event, Ping):
                await self.stream.send(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.eof = True


class Clients:
    """The raw clients of one test, all reset when the block ends.

    Closing them before the broker stops matters: a broker's ``stop()`` waits
    (up to 5 s) for each session's backlog, and a client that never reads
    would make every test that fails pay for it.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.all: list[RawClient] = []

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for raw in self.all:
            await raw.reset()

    async def open(self) -> RawClient:
        raw = await RawClient.open(self.port)
        self.all.append(raw)
        return raw

    async def connected(
        self, version: str = "1.2", heart_beat: tuple[int, int] = (0, 0), headers: Headers = ()
    ) -> RawClient:
        raw = await self.open()
        reply = await raw.connect(version, heart_beat, headers)
        assert reply is not None and reply.command == "CONNECTED", reply
        return raw


async def ws_upgrade(port: int, path: str = "/ws") -> anyio.abc.SocketStream:
    """A WebSocket upgrade on a raw stream; returns once the 101 is read."""
    stream = await anyio.connect_tcp("127.0.0.1", port)
    await stream.send(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v12.stomp\r\n\r\n"
        ).encode()
    )
    reply = b""
    with anyio.fail_after(5):
        while b"\r\n\r\n" not in reply:
            reply += await stream.receive()
    assert reply.startswith(b"HTTP/1.1 101"), reply[:80]
    return stream


async def closed_within(stream: anyio.abc.ByteStream, timeout: float) -> bool:
    """True if the peer closes ``stream`` within ``timeout`` seconds (data is discarded)."""
    with anyio.move_on_after(timeout):
        try:
            while True:
                await stream.receive()
        except GONE:
            return True
    return False


def tls_client_hello() -> bytes:
    """The first flight of a TLS client: what a TLS client sends to a plain STOMP port."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


class Canary:
    """The broker's own client on a private queue; each :meth:`ping` is a round trip.

    ``watch()`` in a task pings every ``interval`` seconds until ``stop()``,
    keeping the slowest round trip in :attr:`worst`: the measure of how long the
    broker served nobody else.
    """

    def __init__(self, port: int, **options: Any) -> None:
        options.setdefault("heart_beat", (0, 0))
        self.client: Client = connect("127.0.0.1", port, **options)
        self.queue = f"/queue/canary-{uuid.uuid4().hex[:8]}"
        self.sent = 0
        self.worst = 0.0
        self.pings = 0
        self._stop = anyio.Event()

    async def __aenter__(self) -> Canary:
        await self.client.__aenter__()
        self.sub = await self.client.subscribe(self.queue)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        await self.client.__aexit__(kind, exc, tb)

    async def ping(self, timeout: float = 5.0) -> float:
        """One SEND to its queue and the MESSAGE back; returns the seconds taken."""
        self.sent += 1
        body = str(self.sent).encode()
        start = time.monotonic()
        with anyio.fail_after(timeout):
            await self.client.send(self.queue, body)
            got: ReceivedMessage = await self.sub.get()
        assert got.body == body, (got.body, body)
        took = time.monotonic() - start
        self.worst = max(self.worst, took)
        self.pings += 1
        return took

    async def watch(self, interval: float = 0.02, timeout: float = 5.0) -> None:
        while not self._stop.is_set():
            await self.ping(timeout)
            with anyio.move_on_after(interval):
                await self._stop.wait()

    def stop(self) -> None:
        self._stop.set()


async def still_serving(port: int, timeout: float = 5.0) -> None:
    """A fresh client connects, subscribes, sends and receives: the broker serves."""
    with anyio.fail_after(timeout):
        async with connect("127.0.0.1", port, heart_beat=(0, 0)) as client:
            queue = f"/queue/alive-{uuid.uuid4().hex[:8]}"
            sub = await client.subscribe(queue)
            await client.send(queue, b"alive")
            assert (await sub.get()).body == b"alive"


# -- measuring -----------------------------------------------------------------------


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size of a process (Linux /proc), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")  # pragma: no cover - not Linux


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a process so far (Linux /proc), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Traced:
    """tracemalloc around a block: :attr:`peak` and :attr:`growth` in bytes, from its start.

    tracemalloc slows Python down several times: use it around small scenarios.
    """

    def __init__(self) -> None:
        self.peak = 0
        self.growth = 0
        self._was = False
        self._base = 0

    def __enter__(self) -> Traced:
        self._was = tracemalloc.is_tracing()
        if not self._was:
            tracemalloc.start()
        tracemalloc.reset_peak()
        self._base = tracemalloc.get_traced_memory()[0]
        return self

    def sample(self) -> int:
        current, peak = tracemalloc.get_traced_memory()
        self.peak = max(self.peak, peak - self._base)
        self.growth = current - self._base
        return self.growth

    def __exit__(self, *exc: object) -> None:
        self.sample()
        if not self._was:
            tracemalloc.stop()


# -- a broker in a child process -----------------------------------------------------

_CHILD = r"""
import json, logging, resource, sys
import anyio
from stomp_proto.broker import Broker

options, backend, nofile = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
if nofile:
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
for name in ("tcp", "ws"):
    options[name] = [tuple(a) for a in options.get(name, [])]
if "heart_beat" in options:
    options["heart_beat"] = tuple(options["heart_beat"])
logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")

async def main():
    async with Broker(**options) as broker:
        print(json.dumps(broker.addresses), flush=True)
        await anyio.sleep_forever()

anyio.run(main, backend=backend)
"""


def child_environment() -> dict[str, str]:
    """The environment for a child broker: the same ``stomp_proto`` as this process's."""
    import stomp_proto

    root = str(Path(stomp_proto.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


class BrokerProcess:
    """A :class:`Broker` with ``options`` in a child process (``nofile``: its RLIMIT_NOFILE).

    Its log goes to a file (:meth:`log`), never to a pipe that could fill and
    block it. Use as a context manager; the child is killed at the end.
    """

    def __init__(self, backend: str = "asyncio", nofile: int = 0, **options: Any) -> None:
        settings: dict[str, Any] = {
            "tcp": [("127.0.0.1", 0)],
            "ws": [],
            "heart_beat": (0, 0),
        }
        settings.update(options)
        self.options = settings
        self.backend = backend
        self.nofile = nofile
        self._log = tempfile.NamedTemporaryFile(prefix="broker-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc: subprocess.Popen[str] | None = None
        self.addresses: list[tuple[str, str, int]] = []

    def __enter__(self) -> BrokerProcess:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CHILD,
                json.dumps(self.options),
                self.backend,
                str(self.nofile),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            text=True,
            env=child_environment(),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until the child listens (or dies)
        if not line:
            log = self.log()[-2000:]
            self.__exit__()
            raise RuntimeError(f"the broker did not start: {log}")
        self.addresses = [(kind, host, port) for kind, host, port in json.loads(line)]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def port(self) -> int:
        return next(port for kind, _, port in self.addresses if kind == "tcp")

    @property
    def ws_port(self) -> int:
        return next(port for kind, _, port in self.addresses if kind == "ws")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)
