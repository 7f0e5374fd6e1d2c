"""STOMP clients and servers on asyncio (and trio: :mod:`stomp_proto.trio` is the same objects).

``pip install 'stomp-proto[asyncio]'``. The adapter is written once against
AnyIO, so this module and :mod:`stomp_proto.trio` offer the same API::

    import asyncio
    from stomp_proto.asyncio import connect

    async def main():
        async with connect("localhost", 61613, login="guest", passcode="guest") as client:
            prices = await client.subscribe("/topic/price.stock.*")
            async for message in prices:
                print(message.destination, message.text())

    asyncio.run(main())

This module is the client's facade: :func:`connect`, :class:`Client` and what
it hands out. They are defined here, not in the private adapter package, so
that reprs, tracebacks and type checkers (``reveal_type``) name them as users
import them: ``stomp_proto.asyncio.Subscription``. The server side
(:func:`serve`, :class:`ServerSession`, :func:`serve_websocket`) is
re-exported from ``stomp_proto._adapter``.

Three layers: ``_adapter/_link.py`` is one connection (a transport, its
``ClientConnection``, the reader that routes events and the ticker that sends
heart-beats); ``_adapter/_supervisor.py`` runs one link after another under
the :class:`ReconnectPolicy` and logs what happens (logger
``stomp_proto.client``); this module keeps what outlives a connection
(subscriptions, pending receipts, ids, transactions, the connection state and
its waiters) and is the API. The core answers the protocol's questions (which
subscription a MESSAGE is for, whether an ACK may be sent now): nothing here
re-derives them.

Back-pressure: each subscription buffers at most ``buffer`` messages. When a
consumer falls behind, the reader waits for room instead of reading the
socket, so memory stays bounded and TCP pushes back on the broker; meanwhile
the core is told we are not reading, so the broker's silence is not mistaken
for death.

Cancellation: leaving ``async with connect(...)`` normally sends DISCONNECT
and waits (at most ``disconnect_timeout``) for its RECEIPT. Once the block is
cancelled (``trio.move_on_after``, ``anyio.fail_after``, ``asyncio.timeout``,
a cancelled task), nothing waits for a RECEIPT that the cancelled reader
could not read: a DISCONNECT is written if it can be within
``_GOODBYE_TIMEOUT`` (shielded), and the connection is closed at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import ssl as _ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

try:
    import anyio
    import anyio.abc
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError(
        f"stomp_proto.asyncio needs {exc.name!r}: pip install 'stomp-proto[asyncio]'",
        name=exc.name,
    ) from exc

from . import (
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
from ._adapter import ServerSession, WebSocketServerTransport, serve, serve_websocket
from ._adapter._link import Link, where
from ._adapter._supervisor import Supervisor, log
from ._clients import (
    AckMode,
    ConnectionLost,
    HeadersArg,
    MessageView,
    ReconnectPolicy,
    StompError,
    check_ack_mode,
    check_versions,
    header_pairs,
)

__all__ = (
    "AckMode",
    "Client",
    "ClientState",
    "ConnectionLost",
    "HeadersArg",
    "OnState",
    "ReceivedMessage",
    "ReconnectPolicy",
    "ServerSession",
    "StateChange",
    "StompError",
    "Subscription",
    "Transaction",
    "WebSocketServerTransport",
    "connect",
    "serve",
    "serve_websocket",
)

#: What :class:`StateChange` reports: a connection is up (the first, or one
#: after a reconnect), the connection was lost and the policy is reconnecting,
#: or the session is over (for good: disconnected, refused, given up).
ClientState = Literal["connected", "reconnecting", "closed"]

#: Seconds a cancelled client spends writing its DISCONNECT before it closes anyway.
_GOODBYE_TIMEOUT = 0.25


@dataclass(frozen=True)
class StateChange:
    """What ``on_state`` is called with each time the client's connection state changes.

    Attributes:
        state: ``"connected"``, ``"reconnecting"`` or ``"closed"``.
        error: why: the :class:`ConnectionLost` (or :class:`StompError`)
            that ended the connection, for ``"reconnecting"``, and for
            ``"closed"`` unless the client was closed by its owner (then None).
        host: the server of the connection that came up or went down (with
            failover, one of the policy's ``hosts``; may be a ``ws://`` URL).
        port: its port.

    .. versionadded:: 0.2
    """

    state: ClientState
    error: BaseException | None
    host: str
    port: int


#: The ``on_state`` callback: a plain function, called in the client's task.
OnState = Callable[[StateChange], None]


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


def _transaction_id(transaction: str | Transaction | None) -> str | None:
    return transaction.id if isinstance(transaction, Transaction) else transaction


def _cancel_pending() -> bool:
    """Whether the calling task's next checkpoint raises: its scope is cancelled (the
    deadline reads -inf) or its deadline has passed without a checkpoint yet."""
    return anyio.current_effective_deadline() <= anyio.current_time()


class ReceivedMessage(MessageView):
    """A MESSAGE delivered to a :class:`Subscription`, with ``ack()`` and ``nack()``.

    ``body``, ``text()``, ``json()``, ``destination``, ``message_id``,
    ``content_type``, ``headers`` and ``header(name)`` show the MESSAGE.

    Attributes:
        event: the :class:`~stomp_proto.Message` event as parsed.
        subscription: the :class:`Subscription` it was delivered to.
    """

    __slots__ = ("_client", "_epoch", "subscription")

    def __init__(
        self, client: Client, event: Message, subscription: Subscription, epoch: int
    ) -> None:
        super().__init__(event)
        self._client = client
        self._epoch = epoch
        self.subscription = subscription

    async def ack(
        self, *, transaction: str | Transaction | None = None, receipt: bool = False
    ) -> None:
        """ACK this message.

        Raises:
            ConnectionLost: it came over an earlier connection, since lost (the
                broker redelivers it).
            ValueError: its subscription is ``ack="auto"``.
        """
        event = self.event.make_ack(transaction=_transaction_id(transaction))
        await self._client._settle(self, event, receipt)

    async def nack(
        self, *, transaction: str | Transaction | None = None, receipt: bool = False
    ) -> None:
        """NACK this message (STOMP 1.1+); the broker redelivers or dead-letters it."""
        event = self.event.make_nack(transaction=_transaction_id(transaction))
        await self._client._settle(self, event, receipt)


class Subscription:
    """An active subscription: an async iterator of :class:`ReceivedMessage`.

    ``async for message in sub`` waits for each message and ends when the
    subscription is unsubscribed or the client disconnects (after the messages
    already buffered); it raises :class:`ConnectionLost` or
    :class:`StompError` when the connection fails for good. While a reconnect
    policy is recovering, it simply waits.
    """

    def __init__(self, client: Client, event: Subscribe, buffer: int) -> None:
        self._client = client
        self.event = event
        self._send, self._receive = anyio.create_memory_object_stream[ReceivedMessage](buffer)
        self._error: BaseException | None = None

    @property
    def key(self) -> str:
        return self.event.subscription_key

    @property
    def id(self) -> str:
        """The subscription id (generated unless given to :meth:`Client.subscribe`)."""
        return self.key

    @property
    def destination(self) -> str:
        return self.event.destination

    @property
    def ack_mode(self) -> AckMode:
        mode: AckMode = self.event.ack  # type: ignore[assignment] # checked by subscribe()
        return mode

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
        """The next message.

        Raises:
            StopAsyncIteration: the subscription has ended normally.
            ConnectionLost: the connection was lost for good (or StompError).
        """
        return await self.__anext__()

    async def unsubscribe(self, *, receipt: bool = True) -> None:
        """UNSUBSCRIBE; iteration ends after the messages already buffered."""
        await self._client.unsubscribe(self, receipt=receipt)

    def _end(self, error: BaseException | None) -> None:
        self._error = error
        self._send.close()

    def __repr__(self) -> str:
        return f"<Subscription {self.id!r} to {self.destination!r} ack={self.ack_mode}>"


class Transaction:
    """An open transaction; ``async with client.transaction() as tx:`` commits or aborts.

    Attributes:
        id: the transaction id.
        done: committed or aborted.
    """

    def __init__(self, client: Client, tx_id: str, epoch: int) -> None:
        self.client = client
        self.id = tx_id
        self._epoch = epoch
        self.done = False

    async def send(
        self,
        destination: str,
        body: bytes | str = b"",
        *,
        content_type: str | None = None,
        headers: HeadersArg = None,
        receipt: bool | str = False,
        content_length: bool = True,
    ) -> Receipt | None:
        """SEND inside this transaction (the broker holds it until COMMIT).

        The arguments are those of :meth:`Client.send`.
        """
        self._check()
        return await self.client.send(
            destination,
            body,
            content_type=content_type,
            headers=headers,
            transaction=self.id,
            receipt=receipt,
            content_length=content_length,
        )

    async def ack(self, message: ReceivedMessage) -> None:
        """ACK ``message`` inside this transaction."""
        self._check()
        await message.ack(transaction=self.id)

    async def nack(self, message: ReceivedMessage) -> None:
        """NACK ``message`` inside this transaction."""
        self._check()
        await message.nack(transaction=self.id)

    async def commit(self, *, receipt: bool = True) -> None:
        """COMMIT (by default waiting for its RECEIPT)."""
        self._check()
        self.done = True
        await self.client._request(Commit(transaction=self.id), receipt)

    async def abort(self, *, receipt: bool = False) -> None:
        """ABORT; nothing to do if already finished or its connection is gone."""
        if self.done:
            return
        self.done = True
        if self._epoch == self.client._epoch and not self.client.closed:
            await self.client._request(Abort(transaction=self.id), receipt)

    def _check(self) -> None:
        if self.done:
            raise RuntimeError(f"transaction {self.id!r} is already finished")
        if self._epoch != self.client._epoch:
            self.done = True  # the broker aborted it when the connection ended
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
            # Shielded, so that a cancelled block still ABORTs; bounded, so that
            # a write stuck behind a full socket cannot hold the cancellation.
            with anyio.move_on_after(self.client.disconnect_timeout, shield=True):
                with contextlib.suppress(ConnectionLost, StompError, ProtocolError, OSError):
                    await self.abort()

    def __repr__(self) -> str:
        return f"<Transaction {self.id!r}{' done' if self.done else ''}>"


class Client:
    """A STOMP client session; create it with :func:`connect` and use it with ``async with``.

    ``Client(host, port, ...)`` takes the arguments of :func:`connect`.

    Attributes:
        closed: True once the session is over (disconnected, refused, given up).
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
        headers: HeadersArg = None,
        buffer: int = 100,
        on_state: OnState | None = None,
    ) -> None:
        if buffer < 1:
            raise ValueError(f"buffer must be at least 1, not {buffer!r}")
        self.host, self.port = host, port
        self.login, self.passcode = login, passcode
        # Over WebSocket the URL's host is no STOMP virtual host.
        self.vhost = vhost if vhost is not None else (None if host.startswith("ws") else host)
        self.versions = check_versions(versions)
        self.heart_beat = heart_beat
        self.grace = grace
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.connect_timeout = connect_timeout
        self.disconnect_timeout = disconnect_timeout
        self.receipt_timeout = receipt_timeout
        self.reconnect = reconnect
        self.limits = limits or Limits()
        self.extra_headers = header_pairs(headers)
        self.buffer = buffer
        self.on_state = on_state
        self.closed = False
        self._error: BaseException | None = None
        self._receipts: dict[str, _Waiter] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._ids = itertools.count(1)
        self._tg: anyio.abc.TaskGroup | None = None
        self._supervisor: Supervisor | None = None
        self._closing = False
        self._finished = False
        # Set and replaced at every change of state: what wait_connected() waits on.
        self._changed: anyio.Event | None = None

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
        """The CONNECTED event of the current connection (None while reconnecting)."""
        link = self._link
        return link.connected if link is not None else None

    @property
    def version(self) -> str | None:
        """The negotiated STOMP version (None while not connected)."""
        conn = self._conn
        return conn.version if conn is not None else None

    @property
    def is_connected(self) -> bool:
        """True while a connection is up (False during a reconnect and after the end)."""
        link = self._link
        return link is not None and not link.ended and not self._closing and not self.closed

    async def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait until a connection is up: at once if it is, else until the reconnect succeeds.

        Returns:
            True when connected, False if ``timeout`` seconds passed first
            (None: wait as long as the reconnect policy keeps trying).

        Raises:
            ConnectionLost: the session has ended, or ends while waiting (the
                policy gave up, the client was closed); or the StompError
                that ended it.
        """
        self._require_entered()
        with anyio.move_on_after(math.inf if timeout is None else timeout):
            while True:
                if self.closed:
                    raise self._error or ConnectionLost("the client is closed")
                if self.is_connected:
                    return True
                assert self._changed is not None
                await self._changed.wait()
        return False

    # -- lifecycle -------------------------------------------------------------

    async def __aenter__(self) -> Client:
        if self._tg is not None or self.closed:
            raise RuntimeError("a Client is entered once: call connect() again for a new session")
        self._changed = anyio.Event()
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
            on_lost=self._lost,
            on_reconnected=self._resubscribe,
            on_connected=self._up,
            on_finished=self._finish,
        )
        try:
            await self._supervisor.start(self.host, self.port)
        except BaseException:
            self.closed = True
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tg is not None
        cancelled = kind is not None and issubclass(kind, anyio.get_cancelled_exc_class())
        try:
            await self._shutdown(graceful=not (cancelled or _cancel_pending()))
        finally:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)

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

    # -- state changes (called by the supervisor) ------------------------------

    def _notify(
        self, state: ClientState, error: BaseException | None, host: str, port: int
    ) -> None:
        assert self._changed is not None
        self._changed.set()
        self._changed = anyio.Event()
        if self.on_state is None:
            return
        try:
            self.on_state(StateChange(state, error, host, port))
        except Exception:
            log.exception("the on_state callback raised (ignored)")

    def _up(self, link: Link) -> None:
        self._notify("connected", None, *link.address)

    def _lost(self, link: Link, error: BaseException, retrying: bool) -> None:
        """A connection was lost: nothing sent over it will be confirmed."""
        for waiter in self._receipts.values():
            if isinstance(error, StompError):
                waiter.resolve(None, error)
            else:
                lost = ConnectionLost(f"connection lost before the RECEIPT: {error}")
                lost.__cause__ = error
                waiter.resolve(None, lost)
        self._receipts.clear()
        if retrying:
            self._notify("reconnecting", error, *link.address)

    async def _resubscribe(self) -> None:
        for sub in list(self._subscriptions.values()):
            await self._request(sub.event, receipt=False)

    def _finish(self, error: BaseException) -> None:
        """The session is over, for good; the first call says why."""
        if self._finished:
            return
        self._finished = True
        self._error = error
        self.closed = True
        for waiter in self._receipts.values():
            waiter.resolve(None, error)
        self._receipts.clear()
        by_owner = isinstance(error, ConnectionLost) and self._closing
        for sub in self._subscriptions.values():
            sub._end(None if by_owner else error)
        self._subscriptions.clear()
        link = self._link
        host, port = link.address if link is not None else (self.host, self.port)
        self._notify("closed", None if by_owner else error, host, port)

    async def disconnect(self) -> None:
        """DISCONNECT with a receipt, wait for it (at most ``disconnect_timeout``), and close.

        Called in a cancelled scope, it does not wait for the RECEIPT: it
        writes DISCONNECT if it can at once and closes. Leaving the ``async
        with`` block calls it.
        """
        await self._shutdown(graceful=not _cancel_pending())

    async def _shutdown(self, *, graceful: bool) -> None:
        if self.closed:
            return
        self._closing = True
        supervisor = self._supervisor
        if supervisor is not None:
            supervisor.closing = True
        link = self._link
        try:
            if link is not None and not link.ended and link.conn.state is State.CONNECTED:
                if graceful:
                    with anyio.move_on_after(self.disconnect_timeout):
                        receipt = self._new_id("bye-")
                        await self._request(Disconnect(receipt=receipt), receipt=True)
                else:
                    # Nobody can read a RECEIPT now: say goodbye if the socket takes it.
                    with anyio.move_on_after(_GOODBYE_TIMEOUT, shield=True):
                        await link.send(Disconnect())
        except (ConnectionLost, StompError, ProtocolError, OSError, TimeoutError):
            pass
        finally:
            self.closed = True
            with anyio.CancelScope(shield=True):
                current = supervisor.stop() if supervisor is not None else None
                linger = None if graceful else _GOODBYE_TIMEOUT
                if link is not None:
                    await link.aclose(linger=linger)
                if current is not None and current is not link:
                    await current.aclose(linger=linger)
                self._finish(ConnectionLost("the client is closed"))
            log.debug(
                "disconnected from %s%s",
                link.where if link is not None else where(self.host, self.port),
                "" if graceful else " (cancelled: no RECEIPT awaited)",
            )

    # -- requests --------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def _require_entered(self) -> None:
        if self._supervisor is None and not self.closed:
            raise RuntimeError(
                "the client is not connected yet: use it as `async with connect(...) as client:`"
            )

    def _check_open(self) -> Link:
        self._require_entered()
        if self.closed:
            raise self._error or ConnectionLost("the client is closed")
        link = self._link
        if link is None or link.ended:
            raise ConnectionLost("not connected (reconnecting); see wait_connected()")
        return link

    async def _request(
        self, event: Event, receipt: bool | str, *, wait: bool = False, check: bool = False
    ) -> Receipt | None:
        """Send ``event``; with ``receipt``, add a receipt header and wait for the RECEIPT.

        With ``check``, what the core would refuse is raised (its
        LocalProtocolError) before anything is sent, and the connection stays
        usable; without it, such an error ends the connection. With ``wait``,
        an outage is waited out (:meth:`wait_connected`) instead of raising
        ConnectionLost, and so is a connection found dead while writing
        (nothing of the frame was confirmed, so it goes out on the next
        connection). A connection lost while the RECEIPT is awaited raises:
        the frame may have arrived.
        """
        waiter = None
        receipt_id = ""
        if receipt:
            receipt_id = (
                (receipt if isinstance(receipt, str) else None)
                or getattr(event, "receipt", None)
                or self._new_id("r-")
            )
            event = _with_receipt(event, receipt_id)
            waiter = _Waiter()
        while True:
            if wait:
                await self.wait_connected()
            try:
                link = self._check_open()
                if (
                    isinstance(event, Subscribe)
                    and event.subscription_key in link.conn.subscriptions
                ):
                    return None  # re-subscribed by a reconnect that overtook this call
                if check:
                    refused = link.conn.check(event)
                    if refused is not None:
                        raise refused
                if waiter is not None:
                    self._receipts[receipt_id] = waiter
                # A LocalProtocolError ends this connection (the reconnect policy,
                # if any, opens a fresh one) and reaches the caller.
                await link.send(event)
                break
            except ConnectionLost:
                self._receipts.pop(receipt_id, None)
                if wait and not self.closed:
                    continue
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
        headers: HeadersArg = None,
        transaction: str | Transaction | None = None,
        receipt: bool | str = False,
        content_length: bool = True,
        wait_connected: bool = False,
    ) -> Receipt | None:
        """SEND ``body`` to ``destination``.

        Args:
            destination: where to send, e.g. ``"/queue/work"``.
            body: bytes, or str (sent as UTF-8, ``text/plain;charset=utf-8``
                unless ``content_type`` says otherwise).
            content_type: the ``content-type`` header.
            headers: extra headers, a mapping or ``(name, value)`` pairs.
            transaction: a :class:`Transaction` or its id.
            receipt: True (or a receipt id) to wait until the broker confirms.
            content_length: False leaves out ``content-length`` (ActiveMQ then
                delivers a JMS TextMessage); refused for a body with a NUL.
            wait_connected: during an outage, wait for the reconnect instead
                of raising :class:`ConnectionLost`, as long as the policy
                tries (bound the wait with a timeout of yours:
                ``asyncio.timeout``, ``anyio.fail_after``, ``trio.fail_after``).

        Returns:
            The :class:`~stomp_proto.Receipt` with ``receipt``, else None.

        Raises:
            ConnectionLost: not connected (closed, or reconnecting without
                ``wait_connected``), or lost before the RECEIPT.
            TimeoutError: no RECEIPT within ``receipt_timeout``.
        """
        if isinstance(body, str):
            body = body.encode()
            content_type = content_type or "text/plain;charset=utf-8"
        event = Send(
            destination=destination,
            body=body,
            content_type=content_type,
            transaction=_transaction_id(transaction),
            headers=header_pairs(headers),
            content_length=content_length,
        )
        # Without content-length the version may not carry this body: ask the core first.
        return await self._request(event, receipt, wait=wait_connected, check=not content_length)

    async def subscribe(
        self,
        destination: str,
        *,
        ack: AckMode = "auto",
        id: str | None = None,
        headers: HeadersArg = None,
        receipt: bool = True,
        buffer: int | None = None,
        wait_connected: bool = False,
    ) -> Subscription:
        """SUBSCRIBE; by default wait for the RECEIPT that says it is live.

        Args:
            destination: what to subscribe to.
            ack: ``"auto"``, ``"client"`` (cumulative) or ``"client-individual"``.
            id: the subscription id (generated by default).
            headers: extra headers (``prefetch-count``, selectors...), a
                mapping or pairs.
            receipt: wait for the broker to confirm the subscription.
            buffer: messages held before back-pressure (default: the client's).
            wait_connected: during an outage, wait for the reconnect instead
                of raising :class:`ConnectionLost`.
        """
        check_ack_mode(ack)
        size = self.buffer if buffer is None else buffer
        if size < 1:
            raise ValueError(f"buffer must be at least 1, not {size!r}")
        if wait_connected:
            await self.wait_connected()
        sub_id = id or self._new_id("sub-")
        if sub_id in self._subscriptions:
            raise ValueError(f"subscription id {sub_id!r} is already in use")
        event = Subscribe(
            destination=destination, id=sub_id, ack=ack, headers=header_pairs(headers)
        )
        sub = Subscription(self, event, size)
        self._subscriptions[sub.key] = sub
        try:
            await self._request(event, receipt, wait=wait_connected)
        except BaseException:
            self._subscriptions.pop(sub.key, None)
            raise
        return sub

    async def unsubscribe(self, sub: Subscription, *, receipt: bool = True) -> None:
        """UNSUBSCRIBE; the subscription's iterator ends after what it buffered."""
        if self._subscriptions.pop(sub.key, None) is None:
            return
        sub._end(None)
        if self.is_connected:
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
        # NACK in STOMP 1.0, a message already settled...: refused, not fatal.
        await self._request(event, receipt, check=True)

    def __repr__(self) -> str:
        if self.closed:
            state = "closed"
        elif self._supervisor is None:
            state = "not connected"
        else:
            state = "connected" if self.is_connected else "reconnecting"
        return f"<stomp_proto.asyncio.Client {where(self.host, self.port)} {state}>"


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
    if getattr(event, "receipt", None) == receipt_id:
        return event
    return dataclasses.replace(event, receipt=receipt_id)  # type: ignore[call-arg]


def connect(
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
    headers: HeadersArg = None,
    buffer: int = 100,
    on_state: OnState | None = None,
) -> Client:
    """A STOMP client session: ``async with connect(...) as client:``.

    Entering the block connects (TCP, TLS or WebSocket), sends CONNECT and
    waits for CONNECTED; leaving it disconnects (see :meth:`Client.disconnect`).

    Args:
        host: the server's host name or address, or a ``ws://`` or ``wss://``
            URL for STOMP over WebSocket (as RabbitMQ Web-STOMP, Spring and
            our broker serve it; needs the ``websocket`` extra, wsproto).
        port: its STOMP port (ignored with a URL, which has its own).
        login: the CONNECT ``login``.
        passcode: the CONNECT ``passcode``.
        vhost: the CONNECT ``host`` header (default: ``host``, none with a
            URL; RabbitMQ wants its virtual host, often ``"/"``).
        versions: the STOMP versions offered; the server picks one.
        heart_beat: ``(cx, cy)`` ms: how often we can send, how often we want
            to hear from the server; ``(0, 0)`` for none.
        grace: how many intervals of silence mean the server is dead.
        ssl: True for TLS verified against the system trust store, or an
            :class:`ssl.SSLContext`.
        server_hostname: the name to verify the certificate against (default ``host``).
        connect_timeout: seconds for TCP, TLS, the WebSocket upgrade and CONNECTED.
        disconnect_timeout: seconds to wait for DISCONNECT's RECEIPT when
            leaving (none is awaited once cancelled).
        receipt_timeout: seconds any receipt is waited for (None: for ever).
        reconnect: a :class:`ReconnectPolicy` to reconnect and re-subscribe
            after a lost connection; None ends the session at the first loss.
        limits: the core's :class:`~stomp_proto.Limits`.
        headers: extra CONNECT headers, a mapping or pairs (ActiveMQ's
            ``client-id``, say).
        buffer: messages each subscription buffers before back-pressure.
        on_state: called with a :class:`StateChange` when a connection comes
            up, is lost (and the policy reconnects), and when the session ends.

    Raises (on entering the block):
        StompError: the server refused the CONNECT.
        TimeoutError: no CONNECTED within ``connect_timeout``.
        OSError: the connection failed.

    .. versionchanged:: 0.2
       Typed keyword arguments (a misspelt one is a TypeError, and a mypy
       error); ``buffer`` and ``on_state``; ``headers`` as a mapping.
    """
    return Client(
        host,
        port,
        login=login,
        passcode=passcode,
        vhost=vhost,
        versions=versions,
        heart_beat=heart_beat,
        grace=grace,
        ssl=ssl,
        server_hostname=server_hostname,
        connect_timeout=connect_timeout,
        disconnect_timeout=disconnect_timeout,
        receipt_timeout=receipt_timeout,
        reconnect=reconnect,
        limits=limits,
        headers=headers,
        buffer=buffer,
        on_state=on_state,
    )
