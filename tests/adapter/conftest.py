"""Fixtures for the adapter tests: both AnyIO backends, and a tiny in-process echo server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
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
            elif isinstance(event, Commit):
                for send in held.pop(event.transaction):
                    await self.publish(session, subs, send)
            elif isinstance(event, Abort):
                held.pop(event.transaction)
            elif isinstance(event, Begin):
                held[event.transaction] = []
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
