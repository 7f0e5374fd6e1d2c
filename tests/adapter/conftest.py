"""Fixtures for the adapter tests: both AnyIO backends, a tiny in-process echo server,
our broker on a port that survives its restarts, and a raw server that never sends a RECEIPT."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
import anyio.abc
import pytest

from stomp_proto import (
    Abort,
    Ack,
    Begin,
    Commit,
    Disconnect,
    Event,
    Message,
    Nack,
    Send,
    Subscribe,
    Unsubscribe,
)
from stomp_proto.asyncio import ServerSession, serve
from stomp_proto.broker import Broker


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class EchoServer:
    """Delivers each SEND back to the same session's matching subscriptions
    (exact destination); records what it saw; answers every receipt."""

    port: int = 0
    heart_beat: tuple[int, int] = (0, 0)
    seen: list[Event] = field(default_factory=list)
    sessions: list[ServerSession] = field(default_factory=list)
    credentials: tuple[str, str] | None = None
    counter: int = 0
    unacked: list[str] = field(default_factory=list)

    async def handle(self, session: ServerSession) -> None:
        self.sessions.append(session)
        connect = await session.next_event()
        self.seen.append(connect)
        if self.credentials and (connect.login, connect.passcode) != self.credentials:  # type: ignore[attr-defined]
            await session.reject("bad credentials")
            return
        await session.accept(server="echo/1.0")
        subs: dict[str, Subscribe] = {}
        held: dict[str, list[Send]] = {}
        async for event in session:
            self.seen.append(event)
            if isinstance(event, Subscribe):
                subs[event.subscription_key] = event
            elif isinstance(event, Unsubscribe):
                subs.pop(event.subscription_key or "", None)
            elif isinstance(event, Begin):
                held[event.transaction] = []
            elif isinstance(event, Commit):
                for send in held.pop(event.transaction):
                    await self.publish(session, subs, send)
            elif isinstance(event, Abort):
                held.pop(event.transaction)
            elif isinstance(event, Send):
                if event.transaction is not None:
                    held[event.transaction].append(event)
                else:
                    await self.publish(session, subs, event)
            elif isinstance(event, (Ack, Nack)) and event.id in self.unacked:
                self.unacked.remove(event.id)
            if getattr(event, "receipt", None) is not None:
                await session.send(event.make_receipt())
            if isinstance(event, Disconnect):
                return

    async def publish(self, session: ServerSession, subs: dict[str, Subscribe], send: Send) -> None:
        for key, sub in list(subs.items()):
            if sub.destination != send.destination:
                continue
            self.counter += 1
            ack = None if sub.ack == "auto" else f"a{self.counter}"
            if ack:
                self.unacked.append(ack)
            await session.send(
                Message(
                    destination=send.destination,
                    message_id=f"m{self.counter}",
                    subscription=key,
                    ack=ack,
                    content_type=send.content_type,
                    body=send.body,
                    headers=send.headers,
                )
            )


@pytest.fixture
async def echo_server(anyio_backend: str) -> AsyncIterator[EchoServer]:
    server = EchoServer()
    async with anyio.create_task_group() as tg:
        server.port = await tg.start(serve, server.handle, "127.0.0.1", 0)
        yield server
        tg.cancel_scope.cancel()


class BrokerBox:
    """Our broker (``stomp_proto.broker.Broker``) for one test, which the test can stop
    (every client connection ends with EOF, as in a broker restart) and start again
    on the same port."""

    def __init__(self, tg: anyio.abc.TaskGroup, **options: object) -> None:
        self.tg = tg
        self.options: dict[str, object] = {"ws": [], "heart_beat": (0, 0), **options}
        self.port = 0
        self.broker: Broker | None = None

    async def start(self) -> Broker:
        broker = Broker(tcp=[("127.0.0.1", self.port)], **self.options)  # type: ignore[arg-type]
        await self.tg.start(broker.serve)
        self.port = next(port for kind, _, port in broker.addresses if kind == "tcp")
        self.broker = broker
        return broker

    async def stop(self) -> None:
        assert self.broker is not None
        broker, self.broker = self.broker, None
        await broker.stop()


@pytest.fixture
async def broker_box(anyio_backend: str) -> AsyncIterator[BrokerBox]:
    async with anyio.create_task_group() as tg:
        box = BrokerBox(tg)
        await box.start()
        yield box
        if box.broker is not None:
            await box.stop()
        tg.cancel_scope.cancel()


@dataclass
class SilentServer:
    """A raw TCP server that answers CONNECT with CONNECTED and then never writes again:
    no RECEIPT, ever. ``received`` is every byte it read; ``closed`` is set at EOF."""

    port: int = 0
    received: bytearray = field(default_factory=bytearray)
    closed: anyio.Event = field(default_factory=anyio.Event)

    async def handle(self, stream: anyio.abc.ByteStream) -> None:
        async with stream:
            while b"\0" not in self.received:
                self.received += await stream.receive()
            await stream.send(b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0")
            try:
                while True:
                    self.received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                self.closed.set()

    def frames(self) -> list[bytes]:
        """The commands and headers of the frames received, one bytes per frame."""
        return [
            frame.strip(b"\n").partition(b"\n\n")[0] for frame in self.received.split(b"\0")[:-1]
        ]


@pytest.fixture
async def silent_server(anyio_backend: str) -> AsyncIterator[SilentServer]:
    server = SilentServer()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    server.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, server.handle)
        yield server
        tg.cancel_scope.cancel()
