"""One client connection: a transport, its ``ClientConnection``, a reader and a ticker.

A :class:`Link` is what one TCP (or WebSocket) connection of a client is, and
nothing more: :meth:`Link.open` connects the transport and does the
CONNECT/CONNECTED handshake; :meth:`Link.run` runs two tasks until the
connection ends, the *reader* (received bytes into the core, events out to
the facade's callbacks: MESSAGE, RECEIPT; an ERROR frame ends the link as
:class:`StompError`) and the *ticker* (sleeps until the core's next deadline
and writes what ``handle_timer`` returns); :meth:`Link.send` writes one event
under the link's lock, so bytes leave in the order the core produced them.
It returns why the connection ended, as an exception; it knows nothing of
subscriptions, receipts or reconnecting (the facade, :mod:`stomp_proto.asyncio`,
and the supervisor in ``_supervisor.py`` do).

A write on a link that has ended, or whose transport fails, raises
:class:`ConnectionLost` (never a bare AnyIO or socket error), and a failed
write ends the link: part of a frame may be out, so the connection cannot go on.

Back-pressure: while the facade's MESSAGE callback waits for room in a
subscription's buffer, it clears :attr:`Link.reading`, and the ticker tells
the core so (``handle_timer(reading=False)``): the broker's silence while we
do not read is not mistaken for death.
"""

from __future__ import annotations

import math
import ssl as _ssl
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc

from .. import (
    NEED_DATA,
    ClientConnection,
    Connect,
    Connected,
    ConnectionClosed,
    Error,
    Event,
    Limits,
    LocalProtocolError,
    Message,
    ProtocolError,
    Receipt,
)
from .._clients import ConnectionLost, StompError
from ._transport import Transport, open_transport

__all__ = ["ConnectionLost", "Link", "StompError", "where"]


#: What the reader hands a MESSAGE to: ``await on_message(link, message)``.
OnMessage = Callable[["Link", Message], Awaitable[None]]
#: What the reader hands a RECEIPT to.
OnReceipt = Callable[[Receipt], None]


class Link:
    """One open connection of a client (made by :meth:`open`)."""

    def __init__(
        self,
        conn: ClientConnection,
        transport: Transport,
        connected: Connected,
        epoch: int,
        address: tuple[str, int] = ("", 0),
    ) -> None:
        self.conn = conn
        self.transport = transport
        #: The server's CONNECTED.
        self.connected = connected
        #: Which connection of the client this is (1, 2, ... after reconnects).
        self.epoch = epoch
        #: The ``(host, port)`` it was opened to (the host may be a ws:// URL).
        self.address = address
        #: False while the reader waits for room in a subscription's buffer.
        self.reading = True
        #: True once the link is over (failed, cancelled, or its run ended).
        self.ended = False
        self._write_lock = anyio.Lock()
        self._scope = anyio.CancelScope()
        self._failure: BaseException | None = None

    @property
    def where(self) -> str:
        """The address in words, for messages: ``host:port``, or the URL."""
        return where(*self.address)

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        connect: Connect,
        *,
        epoch: int,
        grace: float,
        limits: Limits,
        ssl: bool | _ssl.SSLContext,
        server_hostname: str | None,
        timeout: float,
    ) -> Link:
        """Connect the transport and do the CONNECT/CONNECTED handshake within ``timeout``.

        Raises StompError (the server answered ERROR), ConnectionLost,
        TimeoutError or OSError.
        """
        conn = ClientConnection(grace=grace, limits=limits)
        with anyio.fail_after(timeout):
            transport = await open_transport(
                host,
                port,
                ssl=ssl,
                server_hostname=server_hostname,
                max_message_size=limits.max_body_size + limits.max_header_size,
            )
            try:
                await transport.send(conn.send(connect, anyio.current_time()))
                connected = await _handshake(conn, transport)
            except BaseException:
                await transport.aclose()
                raise
        return cls(conn, transport, connected, epoch, (host, port))

    async def send(self, event: Event) -> None:
        """Write ``event`` now, in order with every other write of this link.

        A :class:`~stomp_proto.LocalProtocolError` from the core puts the
        connection in its ERROR state: the link then ends (``run`` returns a
        ConnectionLost) and the error is raised to the caller.
        """
        if self.ended:
            raise ConnectionLost(f"the connection to {self.where} has ended")
        async with self._write_lock:
            if self.ended:
                raise ConnectionLost(f"the connection to {self.where} has ended")
            try:
                data = self.conn.send(event, anyio.current_time())
            except LocalProtocolError:
                self.fail(ConnectionLost("a local protocol error ended the connection"))
                raise
            try:
                await self.transport.send(data)
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                lost = ConnectionLost(f"transport failed while sending: {exc!r}")
                lost.__cause__ = exc
                self.fail(lost)
                raise lost from exc

    def fail(self, error: BaseException) -> None:
        """End the link with ``error`` (what :meth:`run` then returns)."""
        if self._failure is None:
            self._failure = error
        self.ended = True
        self._scope.cancel()

    def cancel(self) -> None:
        """End the link quietly (:meth:`run` returns None): the client is closing."""
        self.ended = True
        self._scope.cancel()

    async def aclose(self, *, linger: float | None = None) -> None:
        """Close the transport; ``linger`` bounds a WebSocket closing handshake."""
        self.ended = True
        await self.transport.aclose(linger=linger)

    async def run(self, on_message: OnMessage, on_receipt: OnReceipt) -> BaseException | None:
        """Run the reader and the ticker until the connection ends; close the transport.

        Returns why it ended (a :class:`ConnectionLost` or :class:`StompError`),
        or None when :meth:`cancel` ended it.
        """
        failures: list[BaseException] = []
        with self._scope:
            async with anyio.create_task_group() as tg:

                async def guard(task: Callable[[], Awaitable[None]]) -> None:
                    try:
                        await task()
                    except (StompError, ProtocolError, OSError, anyio.BrokenResourceError) as exc:
                        failures.append(exc)
                    tg.cancel_scope.cancel()

                tg.start_soon(guard, self._ticker)
                tg.start_soon(guard, lambda: self._reader(on_message, on_receipt))
        self.ended = True
        await self.transport.aclose()
        if self._failure is not None:
            return self._failure
        if self._scope.cancel_called and not failures:
            return None
        closed = getattr(self.transport, "failure", None) or "the server closed the connection"
        error = failures[0] if failures else ConnectionLost(closed)
        if isinstance(error, ProtocolError):
            lost = ConnectionLost(f"protocol error: {error}")
            lost.__cause__ = error
            return lost
        if isinstance(error, (OSError, anyio.BrokenResourceError)) and not isinstance(
            error, ConnectionLost
        ):
            lost = ConnectionLost(f"transport failed: {error!r}")
            lost.__cause__ = error
            return lost
        return error

    async def _reader(self, on_message: OnMessage, on_receipt: OnReceipt) -> None:
        conn, transport = self.conn, self.transport
        while True:
            data = await transport.receive()
            conn.receive_data(data, anyio.current_time())
            while True:
                event = conn.next_event()
                if event is NEED_DATA:
                    break
                if isinstance(event, Message):
                    await on_message(self, event)
                elif isinstance(event, Receipt):
                    on_receipt(event)
                elif isinstance(event, Error):
                    raise StompError(event)
                elif isinstance(event, ConnectionClosed):
                    return

    async def _ticker(self) -> None:
        conn = self.conn
        handled = -math.inf
        while True:
            deadline = conn.next_deadline()
            if deadline is None:
                await anyio.sleep_forever()
                return  # pragma: no cover
            if deadline <= handled:  # still due (float rounding in the core): no spin
                deadline = handled + 0.001
            await anyio.sleep_until(deadline)
            async with self._write_lock:
                handled = anyio.current_time()
                data = conn.handle_timer(handled, reading=self.reading)
                if data:
                    await self.transport.send(data)


def where(host: str, port: int) -> str:
    """``host:port`` in words, or ``host`` alone when it is a WebSocket URL."""
    return host if host.startswith(("ws://", "wss://")) else f"{host}:{port}"


async def _handshake(conn: ClientConnection, transport: Transport) -> Connected:
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            data = await transport.receive()
            conn.receive_data(data, anyio.current_time())
            continue
        if isinstance(event, Connected):
            return event
        if isinstance(event, Error):
            raise StompError(event)
        if isinstance(event, ConnectionClosed):
            raise ConnectionLost("the server closed the connection before CONNECTED")
        # A heart-beat EOL before CONNECTED: ignore it.
