"""The checker's side of the wire: the target URL, transports, and probes.

A :class:`Probe` is one connection to the server under test, with nothing in
the way: it writes exactly the bytes a check gives it (or a frame the core
serializes for the session's version) and reads what comes back with the
core's :class:`~stomp_proto.FrameParser`, set to the negotiated version once
CONNECTED arrives. The CONNECT handshake goes through a
:class:`~stomp_proto.ClientConnection`, so the core judges the CONNECTED frame
(its version, its heart-beat header) and computes the heart-beat intervals;
after that the probe is deliberately free to send what no well-behaved client
would. Everything that crosses the wire is kept in the check's transcript.

Transports are asyncio streams (TCP, or TLS for ``stomps://`` and ``wss://``)
and, for ``ws://`` and ``wss://``, WebSocket framing with wsproto, imported
only then. The WebSocket transport keeps every complete message it received,
so that checks can judge message boundaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import ssl as _ssl
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .. import (
    NEED_DATA,
    ClientConnection,
    Connect,
    Connected,
    Error,
    Event,
    Frame,
    FrameParser,
    Heartbeat,
    ProtocolError,
    RemoteProtocolError,
)
from ._model import Fail

if TYPE_CHECKING:
    from wsproto import WSConnection

__all__ = [
    "CLOSED",
    "SILENT",
    "STOMP_SUBPROTOCOLS",
    "Closed",
    "Context",
    "NoReply",
    "Probe",
    "ServerError",
    "Target",
    "parse_target",
]

#: The WebSocket subprotocols offered, best first (what stompjs offers).
STOMP_SUBPROTOCOLS = ("v12.stomp", "v11.stomp", "v10.stomp")
_DEFAULT_PORTS = {"stomp": 61613, "stomps": 61614, "ws": 80, "wss": 443}
_READ_SIZE = 65536
#: Transcript entries longer than this are cut (the note says by how much).
_SHOWN = 700


@dataclass(frozen=True)
class Target:
    """Where the server is and how to log in.

    Attributes:
        scheme: ``stomp``, ``stomps``, ``ws`` or ``wss``.
        host: host name or address.
        port: TCP port.
        path: the WebSocket request target (``""`` for STOMP over TCP).
        vhost: the CONNECT ``host`` header.
        login: the CONNECT ``login`` header, or None.
        passcode: the CONNECT ``passcode`` header, or None.
        ssl: the TLS context, or None for plain TCP.
    """

    scheme: str
    host: str
    port: int
    path: str
    vhost: str
    login: str | None
    passcode: str | None
    ssl: _ssl.SSLContext | None = None

    @property
    def websocket(self) -> bool:
        return self.scheme in ("ws", "wss")

    def display(self) -> str:
        """The URL, with the passcode left out."""
        user = f"{self.login}@" if self.login is not None else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}{host}:{self.port}{self.path}"


def parse_target(
    url: str,
    *,
    vhost: str | None = None,
    ca_file: str | None = None,
    insecure: bool = False,
) -> Target:
    """Read ``stomp://[LOGIN:PASSCODE@]HOST[:PORT][/VHOST]`` (or ``stomps://``,
    ``ws://``, ``wss://`` with a request path instead of the vhost).

    The CONNECT ``host`` header is ``vhost`` if given, else the URL's path
    (percent-decoded: ``/%2F`` is RabbitMQ's ``/``) for ``stomp(s)://``, else
    the host name, as the specification recommends.

    Raises:
        ValueError: the URL is not one of those, naming what is wrong.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"{url!r}: the URL must start with stomp://, stomps://, ws:// or wss://")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError(f"{url!r}: the port is not a number from 0 to 65535") from None
    host = parts.hostname
    if not host:
        raise ValueError(f"{url!r}: no host name")
    login = unquote(parts.username) if parts.username is not None else None
    passcode = unquote(parts.password) if parts.password is not None else None
    if scheme in ("stomp", "stomps"):
        path = ""
        from_url = unquote(parts.path[1:]) if parts.path not in ("", "/") else None
        if parts.query:
            raise ValueError(f"{url!r}: a stomp:// URL has no query")
        chosen = vhost if vhost is not None else from_url if from_url is not None else host
    else:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        chosen = vhost if vhost is not None else host
    context = None
    if scheme in ("stomps", "wss"):
        context = _ssl.create_default_context(cafile=ca_file)
        if insecure:
            context.check_hostname = False
            context.verify_mode = _ssl.CERT_NONE
    elif ca_file is not None or insecure:
        raise ValueError(f"--ca-file and --insecure need a stomps:// or wss:// URL, not {url!r}")
    return Target(scheme, host, port, path, chosen, login, passcode, context)


# -- transports ------------------------------------------------------------------


class Transport:
    """STOMP bytes over a TCP (or TLS) stream.

    A task reads the stream as soon as bytes arrive and keeps them: when a
    write fails because the server closed the connection (and reset it, since
    bytes it never read were still coming), asyncio stops reading at once,
    and an ERROR the server sent before closing would otherwise be lost.
    """

    websocket = False

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._eof = False
        self._pump = asyncio.ensure_future(self._read_all())

    async def _read_all(self) -> None:
        try:
            while data := await self.reader.read(_READ_SIZE):
                self._inbox.put_nowait(data)
        except (ConnectionError, OSError):
            pass
        self._inbox.put_nowait(b"")

    async def send(self, data: bytes, *, binary: bool | None = None) -> None:
        """Write ``data``; raises ConnectionError once the server has closed."""
        if self.writer.is_closing():
            raise ConnectionResetError("the connection is closed")
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self) -> bytes:
        """The next bytes from the server; ``b""`` at EOF (or a reset)."""
        if self._eof:
            return b""
        data = await self._inbox.get()
        self._eof = not data
        return data

    async def aclose(self) -> None:
        self._pump.cancel()
        writer = self.writer
        with contextlib.suppress(Exception):
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


class WebSocketTransport(Transport):
    """STOMP over a WebSocket client connection (wsproto).

    :meth:`send` writes one WebSocket message per call: text when ``data`` is
    valid UTF-8 (unless ``binary``), binary otherwise. :attr:`messages` holds
    every complete message received, as ``(kind, data)``.
    """

    websocket = True

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ws: WSConnection
    ) -> None:
        super().__init__(reader, writer)
        self.ws = ws
        self.subprotocol: str | None = None
        self.messages: list[tuple[str, bytes]] = []
        self.close_code: int | None = None
        self._partial = bytearray()
        self._pending: deque[bytes] = deque()
        self._done = False
        #: Why the connection failed at the WebSocket level, if it did.
        self.failure: str | None = None

    async def handshake(self, netloc: str, path: str, subprotocols: Sequence[str]) -> None:
        from wsproto.events import AcceptConnection, RejectConnection, Request

        self.writer.write(
            self.ws.send(Request(host=netloc, target=path, subprotocols=list(subprotocols)))
        )
        await self.writer.drain()
        while True:
            data = await super().receive()
            self.ws.receive_data(data or None)
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    self.subprotocol = event.subprotocol
                    return
                if isinstance(event, RejectConnection):
                    raise ConnectionError(
                        f"the WebSocket handshake was rejected with HTTP {event.status_code}"
                    )
            if not data:
                raise ConnectionError("the server closed the connection during the handshake")

    async def send(self, data: bytes, *, binary: bool | None = None) -> None:
        from wsproto.connection import ConnectionState
        from wsproto.events import BytesMessage, TextMessage

        if self._done or self.ws.state is not ConnectionState.OPEN:
            raise ConnectionResetError("the WebSocket connection is closed")
        message: TextMessage | BytesMessage
        if binary:
            message = BytesMessage(data=data)
        else:
            try:
                message = TextMessage(data=data.decode())
            except UnicodeDecodeError:
                if binary is False:
                    raise
                message = BytesMessage(data=data)
        await super().send(self.ws.send(message))

    async def receive(self) -> bytes:
        from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
        from wsproto.utilities import RemoteProtocolError as WsError

        while not self._pending:
            if self._done:
                return b""
            data = await super().receive()
            try:
                self.ws.receive_data(data or None)
                events = list(self.ws.events())
            except WsError as exc:
                self.close_code = 1002
                self._pending.append(b"")
                self._done = True
                self.failure = f"the server broke WebSocket framing: {exc}"
                break
            for event in events:
                if isinstance(event, (TextMessage, BytesMessage)):
                    chunk = event.data.encode() if isinstance(event, TextMessage) else event.data
                    self._partial += chunk
                    if event.message_finished:
                        kind = "text" if isinstance(event, TextMessage) else "binary"
                        self.messages.append((kind, bytes(self._partial)))
                        self._partial.clear()
                    if chunk:
                        self._pending.append(bytes(chunk))
                elif isinstance(event, Ping):
                    with contextlib.suppress(Exception):
                        self.writer.write(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    from wsproto.connection import ConnectionState

                    self.close_code = event.code
                    if self.ws.state is ConnectionState.OPEN:  # wsproto found bad framing
                        self.failure = (
                            f"the server broke WebSocket framing (close code {event.code}: "
                            f"{event.reason or 'invalid message'})"
                        )
                    with contextlib.suppress(Exception):
                        self.writer.write(self.ws.send(event.response()))
                    self._done = True
            if not data:
                self._done = True
        return self._pending.popleft() if self._pending else b""


async def open_transport(
    target: Target, subprotocols: Sequence[str] = STOMP_SUBPROTOCOLS
) -> Transport:
    """Connect to ``target`` (and do the WebSocket handshake)."""
    reader, writer = await asyncio.open_connection(
        target.host,
        target.port,
        ssl=target.ssl,
        server_hostname=target.host if target.ssl is not None else None,
    )
    sock = writer.get_extra_info("socket")
    if sock is not None:
        import socket

        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not target.websocket:
        return Transport(reader, writer)
    try:
        from wsproto import ConnectionType, WSConnection
    except ImportError:
        writer.close()
        raise RuntimeError(
            "checking a server over WebSocket needs wsproto: pip install 'stomp-proto[websocket]'"
        ) from None
    transport = WebSocketTransport(reader, writer, WSConnection(ConnectionType.CLIENT))
    host = f"[{target.host}]" if ":" in target.host else target.host
    try:
        await transport.handshake(f"{host}:{target.port}", target.path, subprotocols)
    except BaseException:
        await transport.aclose()
        raise
    return transport


# -- probes ----------------------------------------------------------------------


class NoReply(Fail):
    """Nothing came within the time allowed."""


class Closed(Fail):
    """The server closed the connection."""


class ServerError(Fail):
    """An ERROR frame arrived where something else was expected."""

    def __init__(self, reason: str, frame: Frame) -> None:
        super().__init__(reason)
        self.frame = frame


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: :meth:`Probe.reply`: the server closed the connection.
CLOSED: Any = _Sentinel("CLOSED")
#: :meth:`Probe.reply`: nothing came within the time allowed.
SILENT: Any = _Sentinel("SILENT")

_USE_TARGET: Any = _Sentinel("target")
#: Numbers names apart across every check of a run (and the run id across runs).
_NAMES = itertools.count(1)


def describe(frame: Frame) -> str:
    """A frame in one line, for reasons: the command and its first headers."""
    shown = " ".join(f"{k}:{v[:60]}" for k, v in frame.headers[:4])
    body = frame.body[:80].decode("utf-8", "replace").strip()
    if body:
        shown += f" body {body!r}"
    return f"{frame.command} {shown}".strip()


class Probe:
    """One connection to the server under test (see the module docstring)."""

    def __init__(self, ctx: Context, label: str) -> None:
        self.ctx = ctx
        self.label = label
        self.transport: Transport | None = None
        self.parser = FrameParser("1.0", max_body_size=64 << 20, max_header_size=1 << 20)
        self.frames: deque[Frame] = deque()
        self.eof = False
        #: Loop times at which a heart-beat EOL was received.
        self.heartbeats: list[float] = []
        #: Loop time of the last byte received (None: none yet).
        self.last_data: float | None = None
        self.connected: Frame | None = None
        #: ``(client -> server, server -> client)`` heart-beat intervals, ms, from the core.
        self.intervals: tuple[int, int] = (0, 0)
        #: Over WebSocket: send every write as a binary message.
        self.binary: bool | None = None
        self._receipts = itertools.count(1)
        self._judge: ClientConnection | None = None
        self._judged: Connected | Error | None = None

    @property
    def version(self) -> str:
        return self.parser.version

    @property
    def websocket(self) -> WebSocketTransport | None:
        return self.transport if isinstance(self.transport, WebSocketTransport) else None

    def receipt_id(self) -> str:
        """A fresh receipt id for this connection."""
        return f"{self.label}-r{next(self._receipts)}"

    # -- opening and writing ---------------------------------------------------

    async def open(self, subprotocols: Sequence[str] = STOMP_SUBPROTOCOLS) -> Probe:
        self.transport = await open_transport(self.ctx.target, subprotocols)
        self.ctx._opened(self)
        return self

    async def write(self, data: bytes, *, binary: bool | None = None, record: bool = True) -> bool:
        """Write ``data`` as it is; False if the server had closed the connection.

        Over WebSocket, one write is one message: binary if ``binary`` (or
        :attr:`binary`) is true, else text when ``data`` is valid UTF-8.
        """
        assert self.transport is not None, "open() first"
        if record:
            self.ctx.record(self.label, "sent", data)
        try:
            await self.transport.send(data, binary=self.binary if binary is None else binary)
        except (ConnectionError, OSError):
            # Keep reading: what the server sent before it closed (an ERROR) is still to come.
            self.ctx.record(
                self.label, "note", "the write failed: the server had closed the connection"
            )
            return False
        return True

    async def write_pieces(self, data: bytes, cuts: Sequence[int]) -> None:
        """Write ``data`` in pieces cut at the offsets ``cuts``, one write each
        (one transcript entry for them all)."""
        self.ctx.record(self.label, "sent", data)
        pieces = len([c for c in cuts if 0 < c < len(data)]) + 1
        what = "WebSocket messages" if self.websocket is not None else "writes"
        self.ctx.record(self.label, "note", f"(written in {pieces} {what})")
        start = 0
        for cut in [*cuts, len(data)]:
            if cut > start and not await self.write(data[start:cut], record=False):
                return
            start = cut

    def encode(self, item: Event | Frame, version: str | None = None) -> bytes:
        """The wire bytes of ``item`` in this session's version (the core serializes)."""
        version = version or self.version
        frame = item if isinstance(item, Frame) else item.to_frame(version)
        return frame.serialize(version)

    async def send(self, *items: Event | Frame) -> None:
        """Serialize every item for the session's version and write them in one go."""
        await self.write(b"".join(self.encode(item) for item in items))

    # -- the handshake -----------------------------------------------------------

    async def connect(
        self,
        version: str | tuple[str, ...] | None = None,
        *,
        heart_beat: tuple[int, int] = (0, 0),
        headers: Sequence[tuple[str, str]] = (),
        stomp: bool = False,
        host: str | None = _USE_TARGET,
        receipt: str | None = None,
    ) -> Frame:
        """Send CONNECT (through a :class:`~stomp_proto.ClientConnection`) and
        return the CONNECTED frame; :class:`Fail` for anything else.

        ``version``: the ``accept-version`` list (a string for one version;
        ``()`` leaves the header out, which means STOMP 1.0); by default the
        check's version.
        """
        if self.transport is None:
            await self.open()
        if version is None:
            version = self.ctx.session_version
        accept = (version,) if isinstance(version, str) else tuple(version)
        target = self.ctx.target
        extra = tuple(headers)
        if receipt is not None:
            extra += (("receipt", receipt),)
        event = Connect(
            accept_version=accept,
            host=target.vhost if host is _USE_TARGET else host,
            login=target.login,
            passcode=target.passcode,
            heart_beat=heart_beat,
            stomp=stomp,
            headers=extra,
        )
        self._judge = judge = ClientConnection()
        await self.write(judge.send(event))
        reply = await self.next()
        if reply is None:
            raise Closed("the server closed the connection instead of answering CONNECT")
        if self._judged is None:
            await self._until_judged()
        if reply.command == "ERROR" or isinstance(self._judged, Error):
            raise ServerError(f"CONNECT was refused: {describe(reply)}", reply)
        if reply.command != "CONNECTED":
            raise Fail(f"the server answered CONNECT with {describe(reply)}, not CONNECTED")
        return reply

    async def _until_judged(self) -> None:
        """The bytes that carried CONNECTED went to the core too; let it finish."""
        while self._judged is None and not self.eof:
            await self._fill()

    def _judge_data(self, data: bytes) -> None:
        judge = self._judge
        if judge is None or self._judged is not None:
            return
        try:
            judge.receive_data(data)
            while True:
                event = judge.next_event()
                if event is NEED_DATA or isinstance(event, Heartbeat):
                    if event is NEED_DATA:
                        return
                    continue
                if isinstance(event, (Connected, Error)):
                    self._judged = event
                    if isinstance(event, Connected):
                        self.intervals = judge.heartbeat_intervals
                    self._judge = None
                return
        except ProtocolError as exc:
            self._judge = None
            raise Fail(f"the core refuses the server's answer to CONNECT: {exc}") from None

    # -- reading -------------------------------------------------------------------

    async def _fill(self, timeout: float | None = None) -> None:
        """Read once (NoReply after ``timeout``); parse what came."""
        assert self.transport is not None, "open() first"
        if self.eof:
            return
        try:
            data = await asyncio.wait_for(self.transport.receive(), timeout)
        except asyncio.TimeoutError:
            raise NoReply(f"no answer within {timeout:g} s") from None
        now = asyncio.get_running_loop().time()
        if not data:
            self.eof = True
            failure = getattr(self.transport, "failure", None)
            if failure:
                self.ctx.record(self.label, "note", failure)
            code = getattr(self.transport, "close_code", None)
            self.ctx.record(
                self.label,
                "note",
                "the server closed the connection"
                + (f" (WebSocket close code {code})" if code else ""),
            )
            with contextlib.suppress(RemoteProtocolError):
                self.parser.receive_data(b"")
            return
        self.last_data = now
        self.ctx.record(self.label, "received", data)
        self._judge_data(data)
        try:
            self.parser.receive_data(data)
            while (item := self.parser.next_frame()) is not None:
                if isinstance(item, Frame):
                    self.frames.append(item)
                    if item.command == "CONNECTED" and self.connected is None:
                        self.connected = item
                        self.parser.version = _negotiated(item)
                else:
                    self.heartbeats.append(now)
        except RemoteProtocolError as exc:
            raise Fail(
                f"the server sent bytes STOMP {self.version} does not allow: {exc}"
            ) from None

    async def next(self, timeout: float | None = None) -> Frame | None:
        """The next frame (heart-beats skipped), None at EOF; NoReply after ``timeout``."""
        timeout = self.ctx.timeout if timeout is None else timeout
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.frames:
            if self.eof:
                return None
            left = deadline - asyncio.get_running_loop().time()
            try:
                if left <= 0:
                    raise NoReply("")
                await self._fill(left)
            except NoReply:
                self.ctx.record(self.label, "note", f"no answer within {timeout:g} s")
                raise NoReply(f"no answer within {timeout:g} s") from None
        return self.frames.popleft()

    async def take(
        self, wanted: Callable[[Frame], bool], what: str, timeout: float | None = None
    ) -> Frame:
        """The first frame (buffered or still to come) for which ``wanted`` is true.

        Frames before it stay buffered, in order. An ERROR that is not wanted
        raises :class:`ServerError`; EOF :class:`Closed`; silence
        :class:`NoReply`, each naming ``what`` was awaited.
        """
        timeout = self.ctx.timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = 0
        while True:
            for i in range(seen, len(self.frames)):
                frame = self.frames[i]
                if wanted(frame):
                    del self.frames[i]
                    return frame
                if frame.command == "ERROR":
                    raise ServerError(
                        f"the server sent {describe(frame)} while {what} was awaited", frame
                    )
            seen = len(self.frames)
            if self.eof:
                raise Closed(f"the server closed the connection while {what} was awaited")
            left = deadline - loop.time()
            try:
                if left <= 0:
                    raise NoReply("")
                await self._fill(left)
            except NoReply:
                self.ctx.record(self.label, "note", f"{what} did not come within {timeout:g} s")
                raise NoReply(f"{what} did not come within {timeout:g} s") from None

    async def receipt(self, receipt_id: str, timeout: float | None = None) -> Frame:
        return await self.take(
            lambda f: f.command == "RECEIPT" and f.get("receipt-id") == receipt_id,
            f"RECEIPT {receipt_id}",
            timeout,
        )

    async def message(self, subscription: str | None = None, timeout: float | None = None) -> Frame:
        """The next MESSAGE (for ``subscription`` if given)."""
        what = "a MESSAGE" + (f" for subscription {subscription}" if subscription else "")
        return await self.take(
            lambda f: (
                f.command == "MESSAGE"
                and (subscription is None or f.get("subscription") == subscription)
            ),
            what,
            timeout,
        )

    async def messages(
        self, count: int, subscription: str | None = None, timeout: float | None = None
    ) -> list[Frame]:
        return [await self.message(subscription, timeout) for _ in range(count)]

    async def reply(self, timeout: float | None = None) -> Frame | Any:
        """The first RECEIPT or ERROR, or :data:`CLOSED`, or :data:`SILENT` after ``timeout``."""
        try:
            return await self.take(
                lambda f: f.command in ("RECEIPT", "ERROR"), "an answer", timeout
            )
        except Closed:
            return CLOSED
        except NoReply:
            return SILENT

    async def closes(self, timeout: float | None = None) -> bool:
        """Whether the server closes the connection within ``timeout`` (frames are kept)."""
        timeout = self.ctx.timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.eof:
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                await self._fill(left)
            except NoReply:
                return False
        return True

    async def activity(self, timeout: float) -> bool:
        """Wait for the next bytes (or EOF) from the server: False if none came in ``timeout``."""
        if self.eof:
            return True
        try:
            await self._fill(timeout)
        except NoReply:
            return False
        return True

    async def quiet(self, seconds: float) -> None:
        """Read for ``seconds`` (frames are kept; EOF ends it early)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self.eof:
            left = deadline - loop.time()
            if left <= 0:
                return
            with contextlib.suppress(NoReply):
                await self._fill(left)

    def pending(self, command: str) -> list[Frame]:
        """Buffered frames of ``command`` (they stay buffered)."""
        return [f for f in self.frames if f.command == command]

    # -- common steps ----------------------------------------------------------------

    async def subscribe(
        self,
        destination: str,
        sub_id: str = "s-1",
        ack: str = "auto",
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """SUBSCRIBE with a receipt and wait for the RECEIPT (Fail on anything else)."""
        rid = self.receipt_id()
        fields = [("destination", destination)]
        if sub_id:
            fields.append(("id", sub_id))
        if ack != "auto":
            fields.append(("ack", ack))
        await self.send(Frame("SUBSCRIBE", (*fields, *headers, ("receipt", rid))))
        await self.receipt(rid)

    async def publish(
        self,
        destination: str,
        body: bytes = b"",
        headers: Sequence[tuple[str, str]] = (),
        *,
        receipt: bool = True,
    ) -> None:
        """SEND (by default with a receipt, waiting for the RECEIPT)."""
        rid = self.receipt_id() if receipt else None
        fields = [("destination", destination), *headers]
        if rid is not None:
            fields.append(("receipt", rid))
        await self.send(Frame("SEND", tuple(fields), body))
        if rid is not None:
            await self.receipt(rid)

    async def aclose(self) -> None:
        if self.transport is not None:
            await self.transport.aclose()


def _negotiated(connected: Frame) -> str:
    version = connected.get("version")
    return version if version in ("1.0", "1.1", "1.2") else "1.0"


class Context:
    """What one check run knows: the target, the options, its connections.

    Attributes:
        target: the server.
        version: the STOMP version of this run ("" for a version-free check).
        versions: the versions the server accepted in the preflight.
        timeout: seconds any one answer may take.
        settle: seconds to watch for something that must not happen.
        transcript: ``(connection, event, data)`` entries.
    """

    def __init__(
        self,
        target: Target,
        *,
        version: str,
        versions: tuple[str, ...],
        timeout: float,
        queue_prefix: str = "/queue/",
        topic_prefix: str = "/topic/",
        run_id: str | None = None,
    ) -> None:
        self.target = target
        self.version = version
        self.versions = versions
        self.timeout = timeout
        self.settle = min(0.5, timeout / 4)
        self.queue_prefix = queue_prefix
        self.topic_prefix = topic_prefix
        self.run_id = run_id or os.urandom(4).hex()
        self.transcript: list[tuple[str, str, bytes | str]] = []
        self._probes: list[Probe] = []
        self._labels = itertools.count(1)

    # -- the transcript ----------------------------------------------------------

    def record(self, label: str, event: str, data: bytes | str) -> None:
        """Add to the transcript; bytes received back to back are one entry.

        The passcode never reaches the transcript (reports get pasted into issues).
        """
        log = self.transcript
        secret = self.target.passcode
        if secret and isinstance(data, bytes):
            data = data.replace(f"passcode:{secret}".encode(), b"passcode:********")
        if isinstance(data, bytes) and event == "received" and len(log) >= 2:
            (cut_label, cut_event, _), (last_label, last_event, note) = log[-2], log[-1]
            if (
                cut_label == last_label == label
                and cut_event == "received"
                and last_event == "note"
                and isinstance(note, str)
                and note.startswith("(and ")
            ):
                more = int(note.split()[1]) + len(data)
                log[-1] = (label, "note", f"(and {more} more bytes)")
                return
        if isinstance(data, bytes) and event == "received" and log:
            last_label, last_event, previous = log[-1]
            if last_label == label and last_event == "received" and isinstance(previous, bytes):
                log.pop()
                data = previous + data
        if isinstance(data, bytes) and len(data) > _SHOWN:
            log.append((label, event, data[:_SHOWN]))
            log.append((label, "note", f"(and {len(data) - _SHOWN} more bytes)"))
            return
        log.append((label, event, data))

    def note(self, text: str) -> None:
        self.transcript.append(("", "note", text))

    # -- connections and names -------------------------------------------------------

    @property
    def session_version(self) -> str:
        """The run's version, or (for a version-free check) the best the server speaks."""
        return self.version or self.versions[-1]

    def probe(self) -> Probe:
        """A new, unopened connection, labelled c1, c2, ... in the transcript."""
        return Probe(self, f"c{next(self._labels)}")

    def _opened(self, probe: Probe) -> None:
        self._probes.append(probe)

    async def connected(
        self,
        version: str | None = None,
        *,
        heart_beat: tuple[int, int] = (0, 0),
        headers: Sequence[tuple[str, str]] = (),
    ) -> Probe:
        """A new connection with a session of ``version`` (the run's by default)."""
        probe = self.probe()
        await probe.open()
        reply = await probe.connect(version, heart_beat=heart_beat, headers=headers)
        expected = version or self.version
        if expected and reply.get("version", "1.0") != expected:
            raise Fail(
                f"CONNECT with accept-version:{expected} got CONNECTED "
                f"version:{reply.get('version')}"
            )
        return probe

    def name(self, kind: str = "t") -> str:
        """A name no other check (and no other run) uses."""
        return f"stomp-check-{self.run_id}-{kind}{next(_NAMES)}"

    def topic(self) -> str:
        return self.topic_prefix + self.name("t")

    def queue(self) -> str:
        return self.queue_prefix + self.name("q")

    async def aclose(self) -> None:
        for probe in self._probes:
            await probe.aclose()
        self._probes.clear()
