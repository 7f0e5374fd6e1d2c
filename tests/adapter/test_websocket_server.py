"""The WebSocket server adapter (serve_websocket), on asyncio and on trio.

Our WebSocket client covers the round trip; a raw wsproto client checks what
browsers and stompjs depend on: subprotocol echo, frames split across and
packed into messages, text and binary opcodes, heart-beats, close codes.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import anyio.abc
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    RejectConnection,
    Request,
    TextMessage,
)

from stomp_proto import Disconnect, Send
from stomp_proto._adapter._websocket import (
    WebSocketServerTransport,
    choose_subprotocol,
    serve_websocket,
)
from stomp_proto.asyncio import ServerSession, connect

from .conftest import EchoServer

pytestmark = pytest.mark.anyio

CONNECT = "CONNECT\naccept-version:1.2\nhost:/\n\n\x00"

Start = Callable[..., Awaitable[EchoServer]]


@pytest.fixture
async def start(anyio_backend: str) -> AsyncIterator[Start]:
    """``server = await start(**serve_websocket options)``: an EchoServer over WebSocket."""
    async with anyio.create_task_group() as tg:

        async def _start(**options: Any) -> EchoServer:
            server = EchoServer(heart_beat=options.get("heart_beat", (0, 0)))
            server.port = await tg.start(
                lambda task_status: serve_websocket(
                    server.handle, "127.0.0.1", 0, task_status=task_status, **options
                )
            )
            return server

        yield _start
        tg.cancel_scope.cancel()


class RawClient:
    """A minimal WebSocket client on wsproto; messages come back assembled."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.queue: deque[Event] = deque()
        self.handshake: AcceptConnection | RejectConnection | None = None

    @classmethod
    async def open(
        cls,
        port: int,
        path: str = "/ws",
        subprotocols: tuple[str, ...] = ("v12.stomp", "v11.stomp", "v10.stomp"),
    ) -> RawClient:
        self = cls(await anyio.connect_tcp("127.0.0.1", port))
        await self.stream.send(
            self.ws.send(Request(host="127.0.0.1", target=path, subprotocols=list(subprotocols)))
        )
        with anyio.fail_after(5):
            while self.handshake is None:
                await self._fill()
                event = self.queue.popleft() if self.queue else None
                if isinstance(event, (AcceptConnection, RejectConnection)):
                    self.handshake = event
        return self

    async def _fill(self) -> None:
        try:
            data: bytes | None = await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            data = None
        self.ws.receive_data(data)
        self.queue.extend(self.ws.events())

    async def send(self, event: Event) -> None:
        await self.stream.send(self.ws.send(event))

    async def text(self, data: str, finished: bool = True) -> None:
        await self.send(TextMessage(data=data, message_finished=finished))

    async def binary(self, data: bytes, finished: bool = True) -> None:
        await self.send(BytesMessage(data=data, message_finished=finished))

    async def next(self) -> Event:
        """The next message (whole), Ping, Pong or CloseConnection."""
        parts: list[Any] = []
        with anyio.fail_after(5):
            while True:
                while self.queue:
                    event = self.queue.popleft()
                    if not isinstance(event, Message):
                        return event
                    parts.append(event.data)
                    if event.message_finished:
                        if isinstance(event, TextMessage):
                            return TextMessage(data="".join(parts))
                        return BytesMessage(data=b"".join(parts))
                await self._fill()

    async def frame(self) -> str:
        """The next text message (a STOMP frame), skipping heart-beats."""
        while True:
            event = await self.next()
            assert isinstance(event, TextMessage), event
            if event.data not in ("\n", "\r\n"):
                return event.data

    async def closed(self) -> int:
        """Read until the server's Close; reply; return its code."""
        while True:
            event = await self.next()
            if isinstance(event, CloseConnection):
                if event.code != 1006:  # 1006: TCP closed without a Close frame
                    await self.send(event.response())
                return event.code

    async def aclose(self) -> None:
        await self.stream.aclose()


def masked_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A client-to-server frame built by hand (wsproto won't send invalid UTF-8 as text)."""
    assert len(payload) < 126
    mask = os.urandom(4)
    return (
        bytes([(0x80 if fin else 0) | opcode, 0x80 | len(payload)])
        + mask
        + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    )


# -- our client against serve_websocket ------------------------------------------------------


async def test_client_round_trip_text_and_binary(start: Start) -> None:
    server = await start()
    async with connect(f"ws://127.0.0.1:{server.port}/ws", login="u") as client:
        assert client.version == "1.2"
        sub = await client.subscribe("/queue/a")
        await client.send("/queue/a", "héllo")
        await client.send("/queue/a", b"\xff\x00binary\x00")
        assert (await sub.get()).text() == "héllo"
        assert (await sub.get()).body == b"\xff\x00binary\x00"
    assert isinstance(server.seen[-1], Disconnect)
    transport = server.sessions[0].transport
    assert isinstance(transport, WebSocketServerTransport)
    assert transport.subprotocol == "v12.stomp"
    assert transport.request.target == "/ws"
    assert transport.close_code == 1000


async def test_client_large_body(start: Start) -> None:
    server = await start()
    body = os.urandom(1 << 20)
    async with connect(f"ws://127.0.0.1:{server.port}/ws") as client:
        sub = await client.subscribe("/queue/big")
        await client.send("/queue/big", body)
        assert (await sub.get()).body == body


async def test_client_rejected_on_wrong_path(start: Start) -> None:
    server = await start(path="/stomp")
    with pytest.raises(ConnectionError, match="404"):
        async with connect(f"ws://127.0.0.1:{server.port}/ws", connect_timeout=5):
            pass  # pragma: no cover
    async with connect(f"ws://127.0.0.1:{server.port}/stomp?x=1") as client:
        assert client.version == "1.2"


# -- the handshake -----------------------------------------------------------------------------


def test_choose_subprotocol() -> None:
    assert choose_subprotocol(["v10.stomp", "v11.stomp", "v12.stomp"]) == "v12.stomp"
    assert choose_subprotocol(["foo", "v11.stomp", "v10.stomp"]) == "v11.stomp"
    assert choose_subprotocol(["v10.stomp"]) == "v10.stomp"
    assert choose_subprotocol(["foo", "V12.STOMP"]) is None
    assert choose_subprotocol([]) is None


@pytest.mark.parametrize(
    ("offer", "echoed"),
    [
        (("v10.stomp", "v11.stomp", "v12.stomp"), "v12.stomp"),
        (("v11.stomp", "v10.stomp"), "v11.stomp"),
        ((), None),
        (("foo",), None),
    ],
)
async def test_subprotocol_echo(start: Start, offer: tuple[str, ...], echoed: str | None) -> None:
    server = await start()
    client = await RawClient.open(server.port, subprotocols=offer)
    assert isinstance(client.handshake, AcceptConnection)
    assert client.handshake.subprotocol == echoed
    await client.text(CONNECT)
    assert (await client.frame()).startswith("CONNECTED\nversion:1.2\n")
    await client.aclose()


async def test_subprotocol_is_advisory(start: Start) -> None:
    server = await start()
    client = await RawClient.open(server.port, subprotocols=("v10.stomp",))
    assert isinstance(client.handshake, AcceptConnection)
    assert client.handshake.subprotocol == "v10.stomp"
    await client.text("CONNECT\naccept-version:1.0,1.1,1.2\n\n\x00")
    assert "\nversion:1.2\n" in await client.frame()
    await client.aclose()


async def test_wrong_path_is_404(start: Start) -> None:
    server = await start()
    client = await RawClient.open(server.port, path="/other")
    assert isinstance(client.handshake, RejectConnection)
    assert client.handshake.status_code == 404
    await client.aclose()


async def test_plain_http_is_400(start: Start) -> None:
    server = await start()
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
        with anyio.fail_after(5):
            response = await stream.receive()
        assert response.startswith(b"HTTP/1.1 400 ")


async def test_garbage_instead_of_http_is_dropped(start: Start) -> None:
    server = await start()
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(CONNECT.encode())
        with anyio.fail_after(5):
            received = b""
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                while True:
                    received += await stream.receive()
        assert received.startswith(b"HTTP/1.1 400 ") or received == b""
    assert server.sessions == []


async def test_handshake_timeout(start: Start) -> None:
    server = await start(handshake_timeout=0.2)
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        with anyio.fail_after(5), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
            await stream.receive()
    assert server.sessions == []


async def test_frame_sent_with_the_upgrade_request_is_not_lost(start: Start) -> None:
    server = await start()
    ws = WSConnection(ConnectionType.CLIENT)
    request = ws.send(Request(host="127.0.0.1", target="/ws", subprotocols=["v12.stomp"]))
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(request + masked_frame(0x1, CONNECT.encode()))
        received = b""
        with anyio.fail_after(5):
            while b"CONNECTED" not in received:
                received += await stream.receive()
        assert received.startswith(b"HTTP/1.1 101 ")


# -- messages ----------------------------------------------------------------------------------


async def test_connect_split_across_three_messages(start: Start) -> None:
    server = await start()
    client = await RawClient.open(server.port)
    await client.text("CONNECT\naccept-")
    await client.binary(b"version:1.2\nhost:/\n")
    await client.text("\n\x00")
    assert (await client.frame()).startswith("CONNECTED\n")
    await client.text("DISCONNECT\nreceipt:r\n\n\x00")
    assert await client.frame() == "RECEIPT\nreceipt-id:r\n\n\x00"
    assert await client.closed() == 1000
    assert [type(e).__name__ for e in server.seen] == ["Connect", "Disconnect"]


async def test_frame_split_across_fragments_of_one_message(start: Start) -> None:
    server = await start()
    client = await RawClient.open(server.port)
    await client.text("CONNECT\naccept-", finished=False)
    await client.text("version:1.2\n\n", finished=False)
    await client.text("\x00", finished=True)
    assert (await client.frame()).startswith("CONNECTED\n")
    await client.aclose()


async def test_several_frames_and_heart_beats_in_one_message(start: Start) -> None:
    server = await start()
    client = await RawClient.open(server.port)
    await client.text(CONNECT)
    await client.frame()
    await client.text(
        "\nSUBSCRIBE\ndestination:/q\nid:1\n\n\x00\r\n"
        "SEND\ndestination:/q\ncontent-type:text/plain\n\nhi\x00\n"
    )
    message = await client.frame()
    assert message.startswith("MESSAGE\n")
    assert message.endswith("\n\nhi\x00")
    await client.text("DISCONNECT\nreceipt:r\n\n\x00")
    assert await client.frame() == "RECEIPT\nreceipt-id:r\n\n\x00"
    assert [type(e).__name__ for e in server.seen] == [
        "Connect",
        "Heartbeat",
        "Subscribe",
        "Heartbeat",
        "Send",
        "Heartbeat",
        "Disconnect",
    ]
    await client.aclose()


async def test_text_and_binary_messages_are_interchangeable(start: Start) -> None:
    server = await start()
    client = await RawClient.open(server.port)
    await client.binary(CONNECT.encode())
    assert (await client.frame()).startswith("CONNECTED\n")
    await client.text("SUBSCRIBE\ndestination:/q\nid:1\n\n\x00")
    await client.binary(b"SEND\ndestination:/q\nreceipt:r1\n\nb\x00")
    await client.text("SEND\ndestination:/q\nreceipt:r2\n\nt\x00")
    frames = [await client.frame() for _ in range(4)]
    assert frames[0].endswith("\n\nb\x00") and frames[0].startswith("MESSAGE\n")
    assert frames[1] == "RECEIPT\nreceipt-id:r1\n\n\x00"
    assert frames[2].endswith("\n\nt\x00") and frames[2].startswith("MESSAGE\n")
    assert frames[3] == "RECEIPT\nreceipt-id:r2\n\n\x00"
    sends = [e for e in server.seen if isinstance(e, Send)]
    assert [s.body for s in sends] == [b"b", b"t"]
    await client.aclose()


async def _subscribe_and_send(client: RawClient, body: bytes) -> Event:
    await client.text(CONNECT)
    await client.frame()
    await client.text("SUBSCRIBE\ndestination:/q\nid:1\n\n\x00")
    await client.binary(b"SEND\ndestination:/q\ncontent-length:%d\n\n%s\x00" % (len(body), body))
    return await client.next()


async def test_binary_body_goes_out_as_binary_message(start: Start) -> None:
    server = await start()
    client = await RawClient.open(server.port)
    event = await _subscribe_and_send(client, b"\xff\x00")
    assert isinstance(event, BytesMessage)
    assert bytes(event.data).startswith(b"MESSAGE\n")
    assert bytes(event.data).endswith(b"\n\n\xff\x00\x00")
    await client.aclose()


async def test_utf8_body_goes_out_as_text_message(start: Start) -> None:
    server = await start()
    client = await RawClient.open(server.port)
    event = await _subscribe_and_send(client, "héllo".encode())
    assert isinstance(event, TextMessage)
    assert event.data.endswith("\n\nhéllo\x00")
    await client.aclose()


async def test_binary_option_forces_binary_messages(start: Start) -> None:
    server = await start(binary=True)
    client = await RawClient.open(server.port)
    await client.text(CONNECT)
    event = await client.next()
    assert isinstance(event, BytesMessage)
    assert bytes(event.data).startswith(b"CONNECTED\n")
    await client.aclose()


async def test_ping_is_answered_with_pong(start: Start) -> None:
    server = await start()
    client = await RawClient.open(server.port)
    await client.text(CONNECT)
    await client.frame()
    await client.send(Ping(payload=b"p1"))
    event = await client.next()
    assert isinstance(event, Pong)
    assert event.payload == b"p1"
    await client.aclose()


async def test_server_heart_beat_is_a_newline_message(start: Start) -> None:
    server = await start(heart_beat=(50, 50))
    client = await RawClient.open(server.port)
    await client.text("CONNECT\naccept-version:1.2\nheart-beat:50,50\n\n\x00")
    connected = await client.frame()
    assert "\nheart-beat:50,50\n" in connected
    for _ in range(3):
        event = await client.next()
        assert isinstance(event, TextMessage)
        assert event.data == "\n"
        await client.text("\n")  # the client's heart-beat keeps the session alive
    await client.text("DISCONNECT\nreceipt:bye\n\n\x00")
    assert await client.frame() == "RECEIPT\nreceipt-id:bye\n\n\x00"
    assert await client.closed() == 1000
    assert server.sessions[0].error is None


async def test_silent_client_is_dropped_after_missing_heart_beats(start: Start) -> None:
    server = await start(heart_beat=(0, 50))
    client = await RawClient.open(server.port)
    await client.text("CONNECT\naccept-version:1.2\nheart-beat:50,0\n\n\x00")
    await client.frame()
    with anyio.fail_after(5):
        assert await client.closed() in (1000, 1002)
    assert server.sessions[0].error is not None


# -- close codes -------------------------------------------------------------------------------


async def test_disconnect_receipt_then_close_1000(start: Start) -> None:
    server = await start()
    client = await RawClient.open(server.port)
    await client.text(CONNECT)
    await client.frame()
    await client.text("DISCONNECT\nreceipt:close-1\n\n\x00")
    assert await client.next() == TextMessage(data="RECEIPT\nreceipt-id:close-1\n\n\x00")
    assert await client.closed() == 1000
    # The server closes TCP once its Close is answered.
    with anyio.fail_after(5):
        assert await client.next() == CloseConnection(code=1006)


async def test_error_then_close_1002(start: Start) -> None:
    server = await start()
    client = await RawClient.open(server.port)
    await client.text(CONNECT)
    await client.frame()
    await client.binary(b"FOO\n\n\x00")
    assert (await client.frame()).startswith("ERROR\n")
    assert await client.closed() == 1002
    assert server.sessions[0].error is not None


async def test_rejected_login_closes_1002(start: Start) -> None:
    server = await start()
    server.credentials = ("u", "p")
    client = await RawClient.open(server.port)
    await client.text("CONNECT\naccept-version:1.2\nlogin:u\npasscode:x\n\n\x00")
    assert (await client.frame()).startswith("ERROR\n")
    assert await client.closed() == 1002


@pytest.mark.parametrize("fragments", [1, 3])
async def test_oversized_message_closes_1009(start: Start, fragments: int) -> None:
    server = await start(max_message_size=1000)
    client = await RawClient.open(server.port)
    await client.text(CONNECT)
    await client.frame()
    # A SEND whose body never ends: the STOMP parser waits for more, so only the
    # WebSocket message limit can end it (the parser refuses bare "x" bytes at once).
    body = b"SEND\ndestination:/q\n\n".ljust(400, b"x")
    for i in range(fragments):
        chunk = body * (3 - 2 * (fragments > 1)) if i == 0 else b"x" * 400
        await client.binary(chunk, finished=i == fragments - 1)
    assert await client.closed() == 1009


async def test_message_at_the_limit_is_accepted(start: Start) -> None:
    server = await start(max_message_size=len(CONNECT))
    client = await RawClient.open(server.port)
    await client.text(CONNECT)
    assert (await client.frame()).startswith("CONNECTED\n")
    await client.aclose()


async def test_invalid_utf8_text_closes_1007(start: Start) -> None:
    server = await start()
    client = await RawClient.open(server.port)
    await client.text(CONNECT)
    await client.frame()
    await client.stream.send(masked_frame(0x1, b"SEND\ndestination:/q\n\n\xff\x00"))
    assert await client.closed() == 1007


async def test_client_close_is_answered(start: Start) -> None:
    server = await start()
    client = await RawClient.open(server.port)
    await client.text(CONNECT)
    await client.frame()
    await client.send(CloseConnection(code=1000))
    event = await client.next()
    assert isinstance(event, CloseConnection)
    assert event.code == 1000
    with anyio.fail_after(5):
        while len(server.sessions) < 1 or not server.sessions[0]._closed:
            await anyio.sleep(0.01)


async def test_close_waits_for_the_reply_while_another_task_reads(anyio_backend: str) -> None:
    """The session's reader is blocked in receive() when the server closes (heart-beat
    timeout, shutdown): the reader sees the client's Close reply and aclose() returns."""
    closed = anyio.Event()
    sessions: list[ServerSession] = []

    async def handler(session: ServerSession) -> None:
        sessions.append(session)
        await session.next_event()
        await session.accept()
        async with anyio.create_task_group() as tg:

            async def read() -> None:
                async for _ in session:
                    pass
                closed.set()

            tg.start_soon(read)
            await anyio.sleep(0.1)
            with anyio.fail_after(1):  # well below close_timeout
                await session.transport.aclose()

    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: serve_websocket(
                handler, "127.0.0.1", 0, close_timeout=30, task_status=task_status
            )
        )
        client = await RawClient.open(port)
        await client.text(CONNECT)
        await client.frame()
        assert await client.closed() == 1000
        with anyio.fail_after(5):
            await closed.wait()
        tg.cancel_scope.cancel()


async def test_wss_round_trip(start: Start, tmp_path: Any) -> None:
    pytest.importorskip("cryptography")
    import ssl

    from tests.interop.brokers import client_tls_context, make_tls_files

    ca_file, cert_file, key_file = make_tls_files(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    server = await start(ssl=server_context)
    url = f"wss://localhost:{server.port}/ws"
    async with connect(url, ssl=client_tls_context(ca_file)) as client:
        sub = await client.subscribe("/queue/tls")
        await client.send("/queue/tls", b"\xffsecret")
        assert (await sub.get()).body == b"\xffsecret"
    transport = server.sessions[0].transport
    assert isinstance(transport, WebSocketServerTransport)
    assert transport.close_code == 1000


# -- the client's side of the shared WebSocket stream -------------------------------------------


async def test_client_enforces_max_message_size(anyio_backend: str) -> None:
    from stomp_proto import Limits, Message, Subscribe
    from stomp_proto.asyncio import ConnectionLost

    async def big(session: ServerSession) -> None:
        await session.next_event()
        await session.accept()
        async for event in session:
            if isinstance(event, Subscribe):
                await session.send(event.make_receipt())
                body = b"y" * 20_000  # a message bigger than the client allows
                await session.send(
                    Message(destination="/q", message_id="1", subscription=event.id, body=body)
                )

    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: serve_websocket(big, "127.0.0.1", 0, task_status=task_status)
        )
        limits = Limits(max_header_size=1000, max_body_size=5000)
        async with connect(f"ws://127.0.0.1:{port}/ws", limits=limits) as client:
            sub = await client.subscribe("/q")
            with anyio.fail_after(5), pytest.raises(ConnectionLost, match="max_message_size"):
                await sub.get()
        tg.cancel_scope.cancel()


async def test_client_close_is_a_handshake(start: Start) -> None:
    """The client closes with 1000 and the server sees a clean close (its reply is read)."""
    server = await start()
    async with connect(f"ws://127.0.0.1:{server.port}/ws") as client:
        await client.send("/queue/a", "x", receipt=True)
    transport = server.sessions[0].transport
    assert isinstance(transport, WebSocketServerTransport)
    with anyio.fail_after(5):
        while not server.sessions[0].closed:
            await anyio.sleep(0.01)
    assert transport.close_code == 1000
    assert transport.framing_error is None


# -- the shared stream: batches, fragments ------------------------------------------------------


class CountingStream(anyio.abc.ByteStream):
    """A byte stream that records each send() (what one socket write would carry)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def send(self, item: bytes) -> None:
        self.writes.append(bytes(item))

    async def receive(self, max_bytes: int = 65536) -> bytes:
        raise anyio.EndOfStream  # pragma: no cover - nothing reads here

    async def send_eof(self) -> None:
        pass  # pragma: no cover

    async def aclose(self) -> None:
        pass  # pragma: no cover


def server_messages(wire: bytes) -> list[Event]:
    """What a (wsproto) client makes of ``wire``, the server's bytes after the handshake."""
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="h", target="/ws")))
    list(server.events())
    client.receive_data(server.send(AcceptConnection()))
    list(client.events())
    client.receive_data(wire)
    return list(client.events())


async def test_a_batch_is_one_write_of_one_message_per_frame(anyio_backend: str) -> None:
    stream = CountingStream()
    transport = WebSocketServerTransport(
        stream, Request(host="h", target="/ws"), subprotocol=None, max_message_size=1 << 20
    )
    big = b"MESSAGE\ndestination:/q\n\n" + b"y" * 70_000 + b"\x00"  # a 64-bit length
    frames = [b"\n", b"RECEIPT\nreceipt-id:1\n\n\x00", b"MESSAGE\n\n\xff\x00", big]
    await transport.send_frames(frames)
    assert len(stream.writes) == 1
    events = server_messages(stream.writes[0])
    assert [type(e) for e in events] == [TextMessage, TextMessage, BytesMessage, TextMessage]
    payloads = [
        e.data.encode() if isinstance(e, TextMessage) else bytes(e.data)
        for e in events
        if isinstance(e, Message)
    ]
    assert payloads == frames


async def test_a_long_batch_goes_out_in_pieces(anyio_backend: str) -> None:
    stream = CountingStream()
    transport = WebSocketServerTransport(
        stream, Request(host="h", target="/ws"), subprotocol=None, max_message_size=1 << 20
    )
    frame = b"MESSAGE\n\n" + b"z" * 100_000 + b"\x00"
    pieces: list[int] = []
    await transport.send_frames([frame] * 6, lambda: pieces.append(len(stream.writes)))
    assert len(stream.writes) == 3  # 600 KB in 256 KiB pieces
    assert pieces == [1, 2, 3]
    events = server_messages(b"".join(stream.writes))
    assert [e.data.encode() for e in events if isinstance(e, TextMessage)] == [frame] * 6


async def test_utf8_split_across_fragments_is_accepted(start: Start) -> None:
    server = await start()
    client = await RawClient.open(server.port)
    await client.text(CONNECT)
    await client.frame()
    euro = "€".encode()  # three bytes, split between two fragments
    first = b"SEND\ndestination:/q\nreceipt:r\n\n" + euro[:1]
    await client.stream.send(masked_frame(0x1, first, fin=False))
    await client.stream.send(masked_frame(0x0, euro[1:] + b"\x00"))
    assert await client.frame() == "RECEIPT\nreceipt-id:r\n\n\x00"
    send = next(e for e in server.seen if isinstance(e, Send))
    assert send.body == euro
    await client.aclose()


async def test_invalid_utf8_across_fragments_closes_1007(start: Start) -> None:
    server = await start()
    client = await RawClient.open(server.port)
    await client.text(CONNECT)
    await client.frame()
    await client.stream.send(masked_frame(0x1, b"SEND\ndestination:/q\n\n\xe2", fin=False))
    await client.stream.send(masked_frame(0x0, b"\x28\x00"))  # not a continuation byte
    assert await client.closed() == 1007


async def test_a_close_sent_with_the_upgrade_request_is_answered(start: Start) -> None:
    server = await start()
    ws = WSConnection(ConnectionType.CLIENT)
    request = ws.send(Request(host="127.0.0.1", target="/ws", subprotocols=["v12.stomp"]))
    close = masked_frame(0x8, (1000).to_bytes(2, "big"))
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(request + masked_frame(0x1, CONNECT.encode()) + close)
        events: list[Event] = []
        with anyio.fail_after(5):
            while not any(isinstance(e, CloseConnection) for e in events):
                try:
                    data: bytes | None = await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    data = None
                ws.receive_data(data)
                events += ws.events()
    assert isinstance(events[0], AcceptConnection)
    closing = next(e for e in events if isinstance(e, CloseConnection))
    assert closing.code == 1000  # the server's reply, not a TCP close (1006)
