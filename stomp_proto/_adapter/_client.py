"""The STOMP client adapter: sockets, tasks and timers around ``ClientConnection``.

One object per session, used as an async context manager::

    async with connect("localhost", 61613, login="guest", passcode="guest") as client:
        sub = await client.subscribe("/topic/price.stock.*", ack="client-individual")
        await client.send("/app/trade", b'{"buy": "ACME"}', content_type="application/json")
        async for message in sub:
            await message.ack()

Two background tasks per connection: the *reader* feeds received bytes to the
core and routes its events (MESSAGE to its subscription, RECEIPT to whoever
waits for it, ERROR to everyone as :class:`StompError`); the *ticker* sleeps
until the core's next deadline and writes what ``handle_timer`` returns. All
writes go through one lock, so bytes leave in the order the core produced them.

Back-pressure: each subscription buffers at most ``buffer`` messages. When a
consumer falls behind, the reader waits for room instead of reading the
socket, so memory stays bounded and TCP pushes back on the broker; meanwhile
the core is told we are not reading, so the broker's silence is not mistaken
for death.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import ssl as _ssl
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from .. import (
    NEED_DATA,
    Abort,
    Ack,
    Begin,
    ClientConnection,
    Commit,
    Connect,
    Connected,
    ConnectionClosed,
    Disconnect,
    Error,
    Event,
    Limits,
    LocalProtocolError,
    Message,
    Nack,
    ProtocolError,
    Receipt,
    Send,
    State,
    Subscribe,
    Unsubscribe,
)
from ._transport import Transport, open_transport

__all__ = [
    "Client",
    "ConnectionLost",
    "ReceivedMessage",
    "ReconnectPolicy",
    "StompError",
    "Subscription",
    "Transaction",
    "connect",
]

Headers = Sequence[tuple[str, str]]


class StompError(Exception):
    """The server sent an ERROR frame; ``error`` is the :class:`~stomp_proto.Error` event."""

    def __init__(self, error: Error) -> None:
        detail = error.body.decode("utf-8", "replace").strip()
        text = error.message or "ERROR frame"
        super().__init__(f"{text}: {detail}" if detail and detail != text else text)
        self.error = error


class ConnectionLost(ConnectionError):
    """The connection ended: EOF, a silent peer, a protocol error, or a closed client."""


@dataclass(frozen=True)
class ReconnectPolicy:
    """When and where to reconnect after a lost connection.

    Attributes:
        hosts: ``(host, port)`` pairs tried in turn (failover); empty means
            the address the client first connected to.
        initial_delay: seconds before the first attempt.
        max_delay: the cap of the exponential back-off.
        multiplier: growth of the delay between attempts.
        jitter: each delay is scaled by a random factor in ``[1 - jitter, 1 + jitter]``.
        max_attempts: attempts per outage before giving up (None: forever).
            The count and the delay start over after every successful connect.
    """

    hosts: Sequence[tuple[str, int]] = ()
    initial_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2
    max_attempts: int | None = 10

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The delay before each attempt of one outage."""
        rng = rng or random.Random()
        delay = self.initial_delay
        for _ in itertools.count() if self.max_attempts is None else range(self.max_attempts):
            yield max(0.0, delay * rng.uniform(1 - self.jitter, 1 + self.jitter))
            delay = min(self.max_delay, delay * self.multiplier)


class _Waiter:
    """One pending RECEIPT."""

    __slots__ = ("done", "error", "receipt")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.receipt: Receipt | None = None
        self.error: BaseException | None = None

    def resolve(self, receipt: Receipt | None, error: BaseException | None = None) -> None:
        self.receipt, self.error = receipt, error
        self.done.set()


class ReceivedMessage:
    """A MESSAGE delivered to a :class:`Subscription`, with ``ack()`` and ``nack()``."""

    __slots__ = ("_client", "_epoch", "event", "subscription")

    def __init__(self, client: Client, event: Message, subscription: Subscription, epoch: int):
        self._client = client
        self._epoch = epoch
        self.event = event
        self.subscription = subscription

    @property
    def body(self) -> bytes:
        return self.event.body

    @property
    def destination(self) -> str:
        return self.event.destination

    @property
    def message_id(self) -> str:
        return self.event.message_id

    @property
    def content_type(self) -> str | None:
        return self.event.content_type

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """Every header but ``content-length``, the spec-defined ones first."""
        return self.event.to_frame().headers

    def text(self) -> str:
        return self.event.text()

    async def ack(self, *, transaction: str | None = None, receipt: bool = False) -> None:
        """ACK this message (refused if it came over an earlier, dead connection)."""
        await self._client._settle(self, self.event.make_ack(transaction=transaction), receipt)

    async def nack(self, *, transaction: str | None = None, receipt: bool = False) -> None:
        """NACK this message (STOMP 1.1+)."""
        await self._client._settle(self, self.event.make_nack(transaction=transaction), receipt)

    def __repr__(self) -> str:
        return f"<ReceivedMessage {self.event.message_id!r} on {self.event.destination!r}>"


class Subscription:
    """An active subscription: an async iterator of :class:`ReceivedMessage`."""

    def __init__(self, client: Client, event: Subscribe, key: str, buffer: int) -> None:
        self._client = client
        self.event = event
        self.key = key
        self._send, self._receive = anyio.create_memory_object_stream[ReceivedMessage](buffer)
        self._error: BaseException | None = None

    @property
    def id(self) -> str | None:
        return self.event.id

    @property
    def destination(self) -> str:
        return self.event.destination

    @property
    def ack_mode(self) -> str:
        return self.event.ack

    def __aiter__(self) -> AsyncIterator[ReceivedMessage]:
        return self

    async def __anext__(self) -> ReceivedMessage:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            if self._error is not None:
                raise self._error from None
            raise StopAsyncIteration from None

    async def get(self) -> ReceivedMessage:
        """The next message (raises the connection's error, or StopAsyncIteration when ended)."""
        return await self.__anext__()

    async def unsubscribe(self, *, receipt: bool = True) -> None:
        await self._client.unsubscribe(self, receipt=receipt)

    def _end(self, error: BaseException | None) -> None:
        self._error = error
        self._send.close()


class Transaction:
    """An open transaction; ``async with client.transaction() as tx`` commits or aborts."""

    def __init__(self, client: Client, tx_id: str, epoch: int) -> None:
        self.client = client
        self.id = tx_id
        self._epoch = epoch
        self.done = False

    async def send(self, destination: str, body: bytes | str = b"", **kwargs: Any) -> None:
        self._check()
        await self.client.send(destination, body, transaction=self.id, **kwargs)

    async def ack(self, message: ReceivedMessage) -> None:
        self._check()
        await message.ack(transaction=self.id)

    async def nack(self, message: ReceivedMessage) -> None:
        self._check()
        await message.nack(transaction=self.id)

    async def commit(self, *, receipt: bool = True) -> None:
        self._check()
        self.done = True
        await self.client._request(Commit(transaction=self.id), receipt)

    async def abort(self, *, receipt: bool = False) -> None:
        if self.done:
            return
        self.done = True
        if self._epoch == self.client._epoch and not self.client.closed:
            await self.client._request(Abort(transaction=self.id), receipt)

    def _check(self) -> None:
        if self.done:
            raise RuntimeError(f"transaction {self.id!r} is already finished")
        if self._epoch != self.client._epoch:
            self.done = True
            raise ConnectionLost(
                f"transaction {self.id!r} was aborted when its connection was lost"
            )

    async def __aenter__(self) -> Transaction:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            await self.commit()
        else:
            with anyio.CancelScope(shield=True):
                with contextlib.suppress(ConnectionLost, StompError, ProtocolError):
                    await self.abort()


class Client:
    """A STOMP client session; create it with :func:`connect`."""

    def __init__(
        self,
        host: str = "localhost",
        port: int = 61613,
        *,
        login: str | None = None,
        passcode: str | None = None,
        vhost: str | None = None,
        versions: Sequence[str] = ("1.0", "1.1", "1.2"),
        heart_beat: tuple[int, int] = (10_000, 10_000),
        grace: float = 3.0,
        ssl: bool | _ssl.SSLContext = False,
        server_hostname: str | None = None,
        connect_timeout: float = 10.0,
        disconnect_timeout: float = 5.0,
        receipt_timeout: float | None = 30.0,
        reconnect: ReconnectPolicy | None = None,
        limits: Limits | None = None,
        headers: Headers = (),
    ) -> None:
        self.host, self.port = host, port
        self.login, self.passcode = login, passcode
        self.vhost = vhost if vhost is not None else (None if host.startswith("ws") else host)
        self.versions = tuple(versions)
        self.heart_beat = heart_beat
        self.grace = grace
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.connect_timeout = connect_timeout
        self.disconnect_timeout = disconnect_timeout
        self.receipt_timeout = receipt_timeout
        self.reconnect = reconnect
        self.limits = limits or Limits()
        self.extra_headers = tuple(headers)
        #: The CONNECTED event of the current connection.
        self.connected: Connected | None = None
        self.closed = False
        self._conn: ClientConnection | None = None
        self._transport: Transport | None = None
        self._epoch = 0
        self._error: BaseException | None = None
        self._write_lock = anyio.Lock()
        self._receipts: dict[str, _Waiter] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._ids = itertools.count(1)
        self._tg: anyio.abc.TaskGroup | None = None
        self._link_scope: anyio.CancelScope | None = None
        self._reading = True
        self._closing = False

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> Client:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            await self._open(self.host, self.port)
        except BaseException:
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        try:
            with anyio.CancelScope(shield=True):
                await self.disconnect()
        finally:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
        return None

    @property
    def version(self) -> str | None:
        """The negotiated STOMP version."""
        return self._conn.version if self._conn is not None else None

    async def _open(self, host: str, port: int) -> None:
        """Connect the transport and do the CONNECT/CONNECTED handshake."""
        conn = ClientConnection(grace=self.grace, limits=self.limits)
        connect = Connect(
            accept_version=self.versions,
            host=self.vhost,
            login=self.login,
            passcode=self.passcode,
            heart_beat=self.heart_beat,
            headers=self.extra_headers,
        )
        with anyio.fail_after(self.connect_timeout):
            transport = await open_transport(
                host,
                port,
                ssl=self.ssl,
                server_hostname=self.server_hostname,
                max_message_size=self.limits.max_body_size + self.limits.max_header_size,
            )
            try:
                await transport.send(conn.send(connect, anyio.current_time()))
                connected = await self._handshake(conn, transport)
            except BaseException:
                await transport.aclose()
                raise
        self._conn, self._transport, self.connected = conn, transport, connected
        self._epoch += 1
        self._error = None
        assert self._tg is not None
        scope = anyio.CancelScope()
        self._link_scope = scope
        self._tg.start_soon(self._run_link, scope, conn, transport)

    @staticmethod
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

    async def _run_link(
        self, scope: anyio.CancelScope, conn: ClientConnection, transport: Transport
    ) -> None:
        """Run the reader and the ticker of one connection; then handle its end."""
        failures: list[BaseException] = []
        with scope:
            async with anyio.create_task_group() as tg:

                async def guard(task: Any) -> None:
                    try:
                        await task(conn, transport)
                    except (StompError, ProtocolError, OSError, anyio.BrokenResourceError) as exc:
                        failures.append(exc)
                    tg.cancel_scope.cancel()

                tg.start_soon(guard, self._ticker)
                tg.start_soon(guard, self._reader)
        if scope.cancel_called and not failures:
            await transport.aclose()
            return  # disconnect() ended this connection
        await transport.aclose()
        failure = getattr(transport, "failure", None)
        closed = failure or "the server closed the connection"
        error = failures[0] if failures else ConnectionLost(closed)
        if isinstance(error, ProtocolError):
            lost = ConnectionLost(f"protocol error: {error}")
            lost.__cause__ = error
            error = lost
        elif isinstance(error, (OSError, anyio.BrokenResourceError)) and not isinstance(
            error, ConnectionLost
        ):
            lost = ConnectionLost(f"transport failed: {error!r}")
            lost.__cause__ = error
            error = lost
        if self._closing or self.closed:
            self._finish(ConnectionLost("the client is closed"))
            return
        await self._lost(error)

    async def _reader(self, conn: ClientConnection, transport: Transport) -> None:
        while True:
            data = await transport.receive()
            conn.receive_data(data, anyio.current_time())
            while True:
                event = conn.next_event()
                if event is NEED_DATA:
                    break
                if isinstance(event, Message):
                    await self._deliver(conn, event)
                elif isinstance(event, Receipt):
                    waiter = self._receipts.pop(event.receipt_id, None)
                    if waiter is not None:
                        waiter.resolve(event)
                elif isinstance(event, Error):
                    raise StompError(event)
                elif isinstance(event, ConnectionClosed):
                    return

    async def _deliver(self, conn: ClientConnection, event: Message) -> None:
        key = conn.subscription_for(event)  # the core knows (and the 1.0 fallbacks)
        sub = None if key is None else self._subscriptions.get(key)
        if sub is None:
            return  # in flight when we unsubscribed
        message = ReceivedMessage(self, event, sub, self._epoch)
        try:
            sub._send.send_nowait(message)
        except anyio.WouldBlock:
            self._reading = False  # back-pressure: stop reading until there is room
            try:
                await sub._send.send(message)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
            finally:
                self._reading = True
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    async def _ticker(self, conn: ClientConnection, transport: Transport) -> None:
        while True:
            deadline = conn.next_deadline()
            if deadline is None:
                await anyio.sleep_forever()
                return  # pragma: no cover
            await anyio.sleep_until(deadline)
            async with self._write_lock:
                data = conn.handle_timer(anyio.current_time(), reading=self._reading)
                if data:
                    await transport.send(data)

    async def _lost(self, error: BaseException) -> None:
        """The connection died: fail what waited on it, then reconnect or give up."""
        for waiter in self._receipts.values():
            if isinstance(error, StompError):
                waiter.resolve(None, error)
            else:
                lost = ConnectionLost(f"connection lost before the RECEIPT: {error}")
                lost.__cause__ = error
                waiter.resolve(None, lost)
        self._receipts.clear()
        self._conn = None
        policy = self.reconnect
        if policy is None or isinstance(error, StompError):
            self._finish(error)
            return
        hosts = list(policy.hosts) or [(self.host, self.port)]
        for attempt, delay in enumerate(policy.delays()):
            await anyio.sleep(delay)
            if self._closing or self.closed:
                break
            host, port = hosts[attempt % len(hosts)]
            try:
                await self._open(host, port)
            except (OSError, TimeoutError, StompError, ProtocolError, ConnectionLost):
                continue
            if self._closing or self.closed:
                await self.disconnect()
                return
            try:
                await self._resubscribe()
            except (OSError, StompError, ProtocolError, ConnectionLost):
                continue
            return
        self._finish(error)

    async def _resubscribe(self) -> None:
        for sub in list(self._subscriptions.values()):
            await self._request(sub.event, receipt=False)

    def _finish(self, error: BaseException) -> None:
        self._error = error
        self.closed = True
        for waiter in self._receipts.values():
            waiter.resolve(None, error)
        self._receipts.clear()
        for sub in self._subscriptions.values():
            sub._end(None if isinstance(error, ConnectionLost) and self._closing else error)
        self._subscriptions.clear()

    async def disconnect(self) -> None:
        """DISCONNECT with a receipt, wait for it (bounded), and close."""
        if self.closed:
            return
        self._closing = True
        conn = self._conn
        if conn is not None and conn.state is State.CONNECTED:
            try:
                with anyio.move_on_after(self.disconnect_timeout):
                    await self._request(Disconnect(receipt=self._new_id("bye-")), receipt=True)
            except (ConnectionLost, StompError, ProtocolError, OSError):
                pass
        self.closed = True
        if self._link_scope is not None:
            self._link_scope.cancel()
        if self._transport is not None:
            await self._transport.aclose()
        self._finish(ConnectionLost("the client is closed"))

    # -- requests --------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def _check_open(self) -> ClientConnection:
        if self._error is not None and self.closed:
            raise self._error
        if self.closed:
            raise ConnectionLost("the client is closed")
        if self._conn is None:
            raise ConnectionLost("not connected (reconnecting)")
        return self._conn

    async def _request(self, event: Event, receipt: bool) -> Receipt | None:
        """Send ``event``; with ``receipt``, add a receipt header and wait for the RECEIPT."""
        waiter = None
        receipt_id = ""
        if receipt:
            receipt_id = getattr(event, "receipt", None) or self._new_id("r-")
            event = _with_receipt(event, receipt_id)
            waiter = _Waiter()
            self._receipts[receipt_id] = waiter
        async with self._write_lock:
            conn = self._check_open()
            transport = self._transport
            assert transport is not None
            try:
                data = conn.send(event, anyio.current_time())
                await transport.send(data)
            except LocalProtocolError:
                # The core is now in its ERROR state: end this connection (the
                # reconnect policy, if any, opens a fresh one) and tell the caller.
                self._receipts.pop(receipt_id, None)
                if self._link_scope is not None:
                    self._link_scope.cancel()
                assert self._tg is not None
                lost = ConnectionLost("a local protocol error ended the connection")
                self._tg.start_soon(self._lost, lost)
                raise
            except BaseException:
                self._receipts.pop(receipt_id, None)
                raise
        if waiter is None:
            return None
        return await self._wait(waiter, receipt_id)

    async def _wait(self, waiter: _Waiter, receipt_id: str) -> Receipt:
        try:
            if self.receipt_timeout is None:
                await waiter.done.wait()
            else:
                with anyio.fail_after(self.receipt_timeout):
                    await waiter.done.wait()
        finally:
            self._receipts.pop(receipt_id, None)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.receipt is not None
        return waiter.receipt

    async def send(
        self,
        destination: str,
        body: bytes | str = b"",
        *,
        content_type: str | None = None,
        headers: Headers = (),
        transaction: str | None = None,
        receipt: bool = False,
        content_length: bool = True,
    ) -> None:
        """SEND ``body`` (str is sent as UTF-8, ``text/plain`` by default) to ``destination``."""
        if isinstance(body, str):
            body = body.encode()
            content_type = content_type or "text/plain;charset=utf-8"
        event = Send(
            destination=destination,
            body=body,
            content_type=content_type,
            transaction=transaction,
            headers=tuple(headers),
            content_length=content_length,
        )
        if not content_length:  # the version may not carry this body so: ask first
            self._check(event)
        await self._request(event, receipt)

    async def subscribe(
        self,
        destination: str,
        *,
        ack: str = "auto",
        id: str | None = None,
        headers: Headers = (),
        receipt: bool = True,
        buffer: int = 100,
    ) -> Subscription:
        """SUBSCRIBE; by default wait for the RECEIPT that says it is live."""
        sub_id = id or self._new_id("sub-")
        event = Subscribe(destination=destination, id=sub_id, ack=ack, headers=tuple(headers))
        sub = Subscription(self, event, event.subscription_key, buffer)
        self._subscriptions[sub.key] = sub
        try:
            await self._request(event, receipt)
        except BaseException:
            self._subscriptions.pop(sub.key, None)
            raise
        return sub

    async def unsubscribe(self, sub: Subscription, *, receipt: bool = True) -> None:
        """UNSUBSCRIBE; the subscription's iterator ends."""
        if self._subscriptions.pop(sub.key, None) is None:
            return
        sub._end(None)
        if self._conn is not None and not self.closed:
            await self._request(Unsubscribe(id=sub.key), receipt)

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction: ``async with client.transaction() as tx:`` BEGINs on entry,
        COMMITs on success and ABORTs on an exception."""
        return _TransactionStarter(self)

    async def begin(self) -> Transaction:
        """BEGIN a transaction explicitly."""
        tx = Transaction(self, self._new_id("tx-"), self._epoch)
        await self._request(Begin(transaction=tx.id), receipt=False)
        return tx

    async def receipt_for(self, event: Event) -> Receipt:
        """Send any client frame and wait for its RECEIPT."""
        receipt = await self._request(event, receipt=True)
        assert receipt is not None
        return receipt

    async def _settle(self, message: ReceivedMessage, event: Ack | Nack, receipt: bool) -> None:
        if message._epoch != self._epoch:
            raise ConnectionLost(
                f"cannot {event.COMMAND} message {message.message_id!r}: it arrived over a "
                f"connection that has since been lost (the broker will redeliver it)"
            )
        if message.subscription.ack_mode == "auto":
            raise ValueError(
                f"message {message.message_id!r} came on an ack:auto subscription; "
                f"there is nothing to {event.COMMAND}"
            )
        self._check(event)  # NACK in STOMP 1.0, an unknown message...: refused, not fatal
        await self._request(event, receipt)

    def _check(self, event: Event) -> None:
        """Raise what the core would refuse ``event`` with, leaving the connection usable."""
        error = self._check_open().check(event)
        if error is not None:
            raise error


class _TransactionStarter:
    """``async with client.transaction()``: BEGIN, then COMMIT or ABORT."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.tx: Transaction | None = None

    async def __aenter__(self) -> Transaction:
        self.tx = await self.client.begin()
        return self.tx

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.tx is not None
        await self.tx.__aexit__(kind, exc, tb)


def _with_receipt(event: Event, receipt_id: str) -> Event:
    import dataclasses

    if getattr(event, "receipt", None) == receipt_id:
        return event
    return dataclasses.replace(event, receipt=receipt_id)  # type: ignore[call-arg]


def connect(host: str = "localhost", port: int = 61613, **options: Any) -> Client:
    """Connect to a STOMP server: ``async with connect(...) as client:``.

    ``host`` may also be a ``ws://`` or ``wss://`` URL (STOMP over WebSocket,
    as Spring and RabbitMQ Web-STOMP serve it; needs the ``websocket`` extra).
    See :class:`Client` for the options: login, passcode, vhost, versions,
    heart_beat, grace, ssl (True verifies against the system trust store; an
    SSLContext for anything else), server_hostname, connect_timeout,
    disconnect_timeout, receipt_timeout, reconnect, limits, headers.
    """
    return Client(host, port, **options)
