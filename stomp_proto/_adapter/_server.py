"""The STOMP server adapter: one :class:`ServerSession` per accepted connection.

``serve(handler, host, port)`` listens and runs ``await handler(session)`` for
each client. The session is pull-based, like the core: the application asks
for the next event and sends events back. Heart-beats run in the background
from the core's deadlines. A client that breaks the protocol gets the ERROR
frame the core builds for it, then the connection is closed, and the
session's iteration ends with :attr:`ServerSession.error` set.
"""

from __future__ import annotations

import contextlib
import ssl as _ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import anyio
import anyio.abc

from .. import (
    NEED_DATA,
    PAUSED,
    SUPPORTED_VERSIONS,
    Connect,
    ConnectionClosed,
    Error,
    Event,
    Limits,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    ServerConnection,
    State,
)
from ._transport import StreamTransport, Transport

__all__ = ["ServerSession", "serve"]


class ServerSession:
    """The server side of one client connection."""

    def __init__(self, transport: Transport, conn: ServerConnection, peer: object = None) -> None:
        self.transport = transport
        self.conn = conn
        self.peer = peer
        #: The CONNECT (or STOMP) event, once received.
        self.connect: Connect | None = None
        #: The protocol error that ended the session, if one did.
        self.error: ProtocolError | None = None
        self._write_lock = anyio.Lock()
        self._reading = False
        self._closed = False

    @property
    def state(self) -> State:
        return self.conn.state

    @property
    def version(self) -> str | None:
        return self.conn.version

    async def next_event(self) -> Event:
        """The next event from the client; :class:`ConnectionClosed` when it is over.

        A protocol violation is answered with ERROR and the connection closed
        before :class:`ConnectionClosed` is returned (see :attr:`error`).
        """
        conn = self.conn
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                await self._fail(exc)
                return ConnectionClosed()
            if event is NEED_DATA:
                if self._closed:
                    return ConnectionClosed()
                self._reading = True
                try:
                    data = await self.transport.receive()
                finally:
                    self._reading = False
                conn.receive_data(data, anyio.current_time())
                continue
            if event is PAUSED:
                if self._closed or conn.state is not State.CONNECTING:
                    await self.close()
                    return ConnectionClosed()
                raise LocalProtocolError("answer the CONNECT (accept() or reject()) first")
            if isinstance(event, Connect):
                self.connect = event
            if isinstance(event, ConnectionClosed):
                await self.close()
            return event

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        while True:
            event = await self.next_event()
            if isinstance(event, ConnectionClosed):
                return
            yield event

    async def send(self, event: Event) -> None:
        """Send ``event``; after an ERROR or the RECEIPT for DISCONNECT, the connection closes."""
        async with self._write_lock:
            if self._closed:
                return
            data = self.conn.send(event, anyio.current_time())
            try:
                await self.transport.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                self._closed = True
                return
        if self.conn.state is State.CLOSED:
            await self.close()

    async def accept(self, **options: Any) -> None:
        """Answer the CONNECT with CONNECTED (options as :meth:`ServerConnection.accept`)."""
        await self.send(self.conn.accept(**options))

    async def reject(self, message: str, detail: str = "") -> None:
        """Answer with ERROR (say, bad credentials) and close."""
        await self.send(
            Error(message=message, content_type="text/plain", body=(detail or message).encode())
        )

    async def _fail(self, exc: RemoteProtocolError) -> None:
        self.error = exc
        if not self._closed:
            with contextlib.suppress(LocalProtocolError):
                await self.send(self.conn.error_for(exc))
        await self.close()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self.transport.aclose()

    async def _tick(self) -> None:
        conn = self.conn
        while not self._closed:
            deadline = conn.next_deadline()
            if deadline is None:
                await anyio.sleep(0.5 if conn.state is not State.CLOSED else 3600)
                continue
            await anyio.sleep_until(deadline)
            async with self._write_lock:
                if self._closed:
                    return
                try:
                    data = conn.handle_timer(anyio.current_time(), reading=self._reading)
                except RemoteProtocolError as exc:
                    self.error = exc
                    self._closed = True
                    await self.transport.aclose()
                    return
                if data:
                    try:
                        await self.transport.send(data)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                        self._closed = True
                        return


Handler = Callable[[ServerSession], Awaitable[None]]


async def serve(
    handler: Handler,
    host: str = "127.0.0.1",
    port: int = 61613,
    *,
    ssl: _ssl.SSLContext | None = None,
    versions: Sequence[str] = SUPPORTED_VERSIONS,
    heart_beat: tuple[int, int] = (0, 0),
    grace: float = 2.0,
    limits: Limits | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve STOMP over TCP (or TLS): ``await handler(session)`` per connection.

    With ``await task_group.start(serve, handler, host, 0)`` the bound port is returned.
    """
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    if ssl is not None:
        from anyio.streams.tls import TLSListener

        listener = TLSListener(listener, ssl, standard_compatible=False)  # type: ignore[assignment]
    bound = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def run(stream: anyio.abc.ByteStream) -> None:
        conn = ServerConnection(
            versions=tuple(versions), heart_beat=heart_beat, grace=grace, limits=limits
        )
        peer = stream.extra(anyio.abc.SocketAttribute.remote_address, None)
        session = ServerSession(StreamTransport(stream), conn, peer)
        async with anyio.create_task_group() as tg:
            tg.start_soon(session._tick)
            try:
                await handler(session)
            finally:
                await session.close()
                tg.cancel_scope.cancel()

    async with listener:
        task_status.started(bound)
        await listener.serve(run)
