"""The STOMP client adapter's facade: :class:`Client` and what it hands out.

One object per session, used as an async context manager::

    async with connect("localhost", 61613, login="guest", passcode="guest") as client:
        sub = await client.subscribe("/topic/price.stock.*", ack="client-individual")
        await client.send("/app/trade", b'{"buy": "ACME"}', content_type="application/json")
        async for message in sub:
            await message.ack()

Three layers, one module each: ``_link.py`` is one connection (a transport,
its ``ClientConnection``, the reader that routes events and the ticker that
sends heart-beats); ``_supervisor.py`` runs one link after another under the
:class:`ReconnectPolicy`; this module keeps what outlives a connection
(subscriptions, pending receipts, ids, transactions) and is the API. The core
answers the protocol's questions (which subscription a MESSAGE is for,
whether an ACK may be sent now): nothing here re-derives them.

Back-pressure: each subscription buffers at most ``buffer`` messages. When a
consumer falls behind, the reader waits for room instead of reading the
socket, so memory stays bounded and TCP pushes back on the broker; meanwhile
the core is told we are not reading, so the broker's silence is not mistaken
for death.
"""

from __future__ import annotations

import contextlib
import itertools
import ssl as _ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from .. import (
    Abort,
    Ack,
    Begin,
    ClientConnection,
    Commit,
    Connect,
    Connected,
    Disconnect,
    Event,
    Limits,
    Message,
    Nack,
    ProtocolError,
    Receipt,
    Send,
    State,
    Subscribe,
    Unsubscribe,
)
from .._clients import MessageView
from ._link import ConnectionLost, Link, StompError
from ._supervisor import ReconnectPolicy, Supervisor

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


class ReceivedMessage(MessageView):
    """A MESSAGE delivered to a :class:`Subscription`, with ``ack()`` and ``nack()``.

    Attributes:
        event: the :class:`~stomp_proto.Message` event as parsed.
        subscription: the :class:`Subscription` it was delivered to.
    """

    __slots__ = ("_client", "_epoch", "subscription")

    def __init__(self, client: Client, event: Message, subscription: Subscription, epoch: int):
        super().__init__(event)
        self._client = client
        self._epoch = epoch
        self.subscription = subscription

    async def ack(self, *, transaction: str | None = None, receipt: bool = False) -> None:
        """ACK this message (refused if it came over an earlier, dead connection)."""
        await self._client._settle(self, self.event.make_ack(transaction=transaction), receipt)

    async def nack(self, *, transaction: str | None = None, receipt: bool = False) -> None:
        """NACK this message (STOMP 1.1+)."""
        await self._client._settle(self, self.event.make_nack(transaction=transaction), receipt)


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
    """A STOMP client session; create it with :func:`connect`.

    The facade of three layers: each connection is a :class:`~._link.Link`
    (transport, core connection, reader and ticker), a
    :class:`~._supervisor.Supervisor` reconnects under the policy, and this
    class keeps what outlives a connection (subscriptions, pending receipts,
    ids) and offers the API.
    """

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
        self.closed = False
        self._error: BaseException | None = None
        self._receipts: dict[str, _Waiter] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._ids = itertools.count(1)
        self._tg: anyio.abc.TaskGroup | None = None
        self._supervisor: Supervisor | None = None
        self._closing = False

    # -- the current connection, as the supervisor has it ----------------------

    @property
    def _link(self) -> Link | None:
        return self._supervisor.link if self._supervisor is not None else None

    @property
    def _conn(self) -> ClientConnection | None:
        link = self._link
        return link.conn if link is not None else None

    @property
    def _epoch(self) -> int:
        return self._supervisor.epoch if self._supervisor is not None else 0

    @property
    def _reading(self) -> bool:
        link = self._link
        return link.reading if link is not None else True

    @property
    def connected(self) -> Connected | None:
        """The CONNECTED event of the current connection."""
        link = self._link
        return link.connected if link is not None else None

    @property
    def version(self) -> str | None:
        """The negotiated STOMP version."""
        conn = self._conn
        return conn.version if conn is not None else None

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> Client:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._supervisor = Supervisor(
            tg,
            self._open_link,
            (self.host, self.port),
            self.reconnect,
            on_message=self._deliver,
            on_receipt=self._resolve,
            on_lost=self._fail_receipts,
            on_reconnected=self._resubscribe,
            on_finished=self._finish,
        )
        try:
            await self._supervisor.open(self.host, self.port)
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

    async def _open_link(self, host: str, port: int, epoch: int) -> Link:
        connect = Connect(
            accept_version=self.versions,
            host=self.vhost,
            login=self.login,
            passcode=self.passcode,
            heart_beat=self.heart_beat,
            headers=self.extra_headers,
        )
        return await Link.open(
            host,
            port,
            connect,
            epoch=epoch,
            grace=self.grace,
            limits=self.limits,
            ssl=self.ssl,
            server_hostname=self.server_hostname,
            timeout=self.connect_timeout,
        )

    async def _deliver(self, link: Link, event: Message) -> None:
        key = link.conn.subscription_for(event)  # the core knows (and the 1.0 fallbacks)
        sub = None if key is None else self._subscriptions.get(key)
        if sub is None:
            return  # in flight when we unsubscribed
        message = ReceivedMessage(self, event, sub, link.epoch)
        try:
            sub._send.send_nowait(message)
        except anyio.WouldBlock:
            link.reading = False  # back-pressure: stop reading until there is room
            try:
                await sub._send.send(message)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
            finally:
                link.reading = True
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    def _resolve(self, receipt: Receipt) -> None:
        waiter = self._receipts.pop(receipt.receipt_id, None)
        if waiter is not None:
            waiter.resolve(receipt)

    def _fail_receipts(self, error: BaseException) -> None:
        """A connection was lost: nothing sent over it will be confirmed."""
        for waiter in self._receipts.values():
            if isinstance(error, StompError):
                waiter.resolve(None, error)
            else:
                lost = ConnectionLost(f"connection lost before the RECEIPT: {error}")
                lost.__cause__ = error
                waiter.resolve(None, lost)
        self._receipts.clear()

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
        supervisor = self._supervisor
        if supervisor is not None:
            supervisor.closing = True
        conn = self._conn
        if conn is not None and conn.state is State.CONNECTED:
            try:
                with anyio.move_on_after(self.disconnect_timeout):
                    await self._request(Disconnect(receipt=self._new_id("bye-")), receipt=True)
            except (ConnectionLost, StompError, ProtocolError, OSError):
                pass
        self.closed = True
        link = supervisor.stop() if supervisor is not None else None
        if link is not None:
            await link.aclose()
        self._finish(ConnectionLost("the client is closed"))

    # -- requests --------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def _check_open(self) -> Link:
        if self._error is not None and self.closed:
            raise self._error
        if self.closed:
            raise ConnectionLost("the client is closed")
        link = self._link
        if link is None:
            raise ConnectionLost("not connected (reconnecting)")
        return link

    async def _request(self, event: Event, receipt: bool) -> Receipt | None:
        """Send ``event``; with ``receipt``, add a receipt header and wait for the RECEIPT."""
        waiter = None
        receipt_id = ""
        if receipt:
            receipt_id = getattr(event, "receipt", None) or self._new_id("r-")
            event = _with_receipt(event, receipt_id)
            waiter = _Waiter()
            self._receipts[receipt_id] = waiter
        try:
            # A LocalProtocolError ends this connection (the reconnect policy,
            # if any, opens a fresh one) and reaches the caller.
            await self._check_open().send(event)
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
        error = self._check_open().conn.check(event)
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
