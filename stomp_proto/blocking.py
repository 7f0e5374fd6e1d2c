"""A blocking STOMP client: plain sockets and one reader thread, no event loop.

For scripts, WSGI applications and code coming from stomp.py. It is the
AnyIO client's API without ``await``::

    from stomp_proto import blocking

    with blocking.connect("localhost", 61613, login="guest", passcode="guest") as client:
        sub = client.subscribe("/queue/work", ack="client-individual")
        client.send("/queue/work", "hello", receipt=True)
        for message in sub:
            print(message.text())
            message.ack()
            break

Strategy. The sans-IO :class:`~stomp_proto.ClientConnection` does all the
protocol work; this module owns a socket (``ssl`` for TLS), a lock and one
daemon thread per client, the *reader*. The reader waits in a selector on the
socket and on a wake-up socket until data arrives or the core's next
heart-beat deadline is due, feeds received bytes to the core, and routes its
events: MESSAGE to its subscription's bounded buffer (or its callback),
RECEIPT to the thread waiting for it, ERROR to everyone as
:class:`StompError`. Any thread may send: ``conn.send`` and ``sendall`` happen
together under one lock, so bytes leave in the order the core produced them
and the core is never used by two threads at once.

Back-pressure: each subscription buffers at most ``buffer`` messages. When a
consumer falls behind, the reader waits for room instead of reading the
socket, so memory stays bounded and TCP pushes back on the broker; meanwhile
it keeps sending heart-beats and tells the core it is not reading, so the
broker's silence is not held against it.

STOMP over WebSocket (a ``ws://`` or ``wss://`` URL as the host) frames the
same bytes with wsproto, imported only then (the ``websocket`` extra).

Time comes from ``clock`` (:func:`time.monotonic` by default; tests pass a fake
one and wake the reader).

.. versionadded:: 0.2
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import logging
import selectors
import socket
import ssl as _ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from . import (
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
    "ConnectionLost",
    "HeadersArg",
    "ReceivedMessage",
    "ReconnectPolicy",
    "StompError",
    "Subscription",
    "Transaction",
    "connect",
)

log = logging.getLogger("stomp_proto.blocking")

#: What a subscription with ``callback=`` calls, on the reader thread.
Callback = Callable[["ReceivedMessage"], object]

_READ_SIZE = 65536
_T = TypeVar("_T")


class _Waiter:
    """One pending RECEIPT."""

    __slots__ = ("done", "error", "receipt")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.receipt: Receipt | None = None
        self.error: BaseException | None = None

    def resolve(self, receipt: Receipt | None, error: BaseException | None = None) -> None:
        self.receipt, self.error = receipt, error
        self.done.set()


class _Ended(Exception):
    """The buffer was closed (its subscription ended)."""


class _Buffer(Generic[_T]):
    """A bounded FIFO between the reader thread and consumers.

    Like :class:`queue.Queue` (one lock, a condition for each side), except that
    it can be closed, which wakes every waiter on both sides, and a closed
    buffer still hands out what it holds.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: collections.deque[_T] = collections.deque()
        lock = threading.Lock()
        self._not_empty = threading.Condition(lock)
        self._not_full = threading.Condition(lock)
        self.closed = False

    def put(self, item: _T, timeout: float | None) -> bool:
        """Append ``item``; False if there was no room within ``timeout``.

        Raises:
            _Ended: the buffer is closed (the item is dropped).
        """
        with self._not_full:
            if self.closed:
                raise _Ended
            if len(self._items) >= self.size:
                self._not_full.wait(timeout)
                if self.closed:
                    raise _Ended
                if len(self._items) >= self.size:
                    return False
            self._items.append(item)
            self._not_empty.notify()
            return True

    def get(self, timeout: float | None) -> _T:
        """The oldest item.

        Raises:
            TimeoutError: nothing arrived within ``timeout``.
            _Ended: the buffer is closed and empty.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._not_empty:
            while not self._items:
                if self.closed:
                    raise _Ended
                if deadline is None:
                    self._not_empty.wait()
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError("no message within the timeout")
                    self._not_empty.wait(left)
            item = self._items.popleft()
            self._not_full.notify()
            return item

    def close(self) -> None:
        with self._not_full:
            self.closed = True
            self._not_full.notify_all()
            self._not_empty.notify_all()

    def __len__(self) -> int:
        return len(self._items)


class ReceivedMessage(MessageView):
    """A MESSAGE delivered to a :class:`Subscription`, with ``ack()`` and ``nack()``.

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

    def ack(self, *, transaction: str | Transaction | None = None, receipt: bool = False) -> None:
        """ACK this message.

        Raises:
            ConnectionLost: it came over an earlier connection, since lost (the
                broker redelivers it).
            ValueError: its subscription is ``ack="auto"``.
        """
        tx = transaction.id if isinstance(transaction, Transaction) else transaction
        self._client._settle(self, self.event.make_ack(transaction=tx), receipt)

    def nack(self, *, transaction: str | Transaction | None = None, receipt: bool = False) -> None:
        """NACK this message (STOMP 1.1+); the broker redelivers or dead-letters it."""
        tx = transaction.id if isinstance(transaction, Transaction) else transaction
        self._client._settle(self, self.event.make_nack(transaction=tx), receipt)


class Subscription:
    """An active subscription: an iterator of :class:`ReceivedMessage`.

    ``for message in sub:`` waits for each message and ends when the
    subscription is unsubscribed or the client disconnects; it raises
    :class:`ConnectionLost` or :class:`StompError` when the connection fails
    for good. While a reconnect policy is recovering, it simply waits.
    A subscription made with ``callback=`` has no messages to iterate.
    """

    def __init__(
        self,
        client: Client,
        event: Subscribe,
        buffer: int,
        callback: Callback | None,
    ) -> None:
        self._client = client
        self.event = event
        self.callback = callback
        self._buffer: _Buffer[ReceivedMessage] = _Buffer(buffer)
        self._error: BaseException | None = None

    @property
    def id(self) -> str:
        assert self.event.id is not None
        return self.event.id

    @property
    def destination(self) -> str:
        return self.event.destination

    @property
    def ack_mode(self) -> AckMode:
        mode: AckMode = self.event.ack  # type: ignore[assignment]
        return mode

    @property
    def active(self) -> bool:
        """True until unsubscribed or the client has ended."""
        return not self._buffer.closed

    @property
    def buffered(self) -> int:
        """How many messages wait in the buffer."""
        return len(self._buffer)

    def __iter__(self) -> Iterator[ReceivedMessage]:
        return self

    def __next__(self) -> ReceivedMessage:
        return self.get()

    def get(self, timeout: float | None = None) -> ReceivedMessage:
        """The next message, waiting at most ``timeout`` seconds (None: for ever).

        Raises:
            TimeoutError: no message within ``timeout``.
            StopIteration: the subscription has ended normally.
            ConnectionLost: the connection was lost for good (or StompError).
        """
        if self.callback is not None:
            raise RuntimeError("this subscription delivers to its callback; there is no iterator")
        try:
            return self._buffer.get(timeout)
        except _Ended:
            if self._error is not None:
                raise self._error from None
            raise StopIteration from None

    def unsubscribe(self, *, receipt: bool = True) -> None:
        """UNSUBSCRIBE; iteration ends after the messages already buffered."""
        self._client.unsubscribe(self, receipt=receipt)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.active and not self._client.closed:
            with contextlib.suppress(ConnectionLost, StompError, ProtocolError, OSError):
                self.unsubscribe(receipt=kind is None)

    def _end(self, error: BaseException | None) -> None:
        self._error = error
        self._buffer.close()

    def __repr__(self) -> str:
        return f"<Subscription {self.id!r} to {self.destination!r} ack={self.ack_mode}>"


class Transaction:
    """An open transaction; ``with client.transaction() as tx:`` commits or aborts.

    Attributes:
        id: the transaction id.
        done: committed or aborted.
    """

    def __init__(self, client: Client, tx_id: str, epoch: int) -> None:
        self.client = client
        self.id = tx_id
        self._epoch = epoch
        self.done = False

    def send(
        self,
        destination: str,
        body: bytes | str = b"",
        *,
        content_type: str | None = None,
        headers: HeadersArg = None,
        receipt: bool | str = False,
    ) -> Receipt | None:
        """SEND inside this transaction (the broker holds it until COMMIT)."""
        self._check()
        return self.client.send(
            destination,
            body,
            content_type=content_type,
            headers=headers,
            receipt=receipt,
            transaction=self.id,
        )

    def ack(self, message: ReceivedMessage) -> None:
        """ACK ``message`` inside this transaction."""
        self._check()
        message.ack(transaction=self.id)

    def nack(self, message: ReceivedMessage) -> None:
        """NACK ``message`` inside this transaction."""
        self._check()
        message.nack(transaction=self.id)

    def commit(self, *, receipt: bool = True) -> None:
        """COMMIT (by default waiting for its RECEIPT)."""
        self._check()
        self.done = True
        self.client._request(Commit(transaction=self.id), receipt)

    def abort(self, *, receipt: bool = False) -> None:
        """ABORT; nothing to do if already finished or its connection is gone."""
        if self.done:
            return
        self.done = True
        if self._epoch == self.client._epoch and not self.client.closed:
            self.client._request(Abort(transaction=self.id), receipt)

    def _check(self) -> None:
        if self._epoch != self.client._epoch:
            self.done = True  # the broker aborted it when the connection ended
            raise ConnectionLost(
                f"transaction {self.id!r} was aborted when its connection was lost"
            )
        if self.done:
            raise RuntimeError(f"transaction {self.id!r} is already finished")

    def __enter__(self) -> Transaction:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.commit()
        else:
            with contextlib.suppress(ConnectionLost, StompError, ProtocolError, OSError):
                self.abort()

    def __repr__(self) -> str:
        return f"<Transaction {self.id!r}{' done' if self.done else ''}>"


#: The STOMP subprotocols offered in a WebSocket handshake, best first.
_STOMP_SUBPROTOCOLS = ("v12.stomp", "v11.stomp", "v10.stomp")


class _Wire:
    """STOMP bytes over a TCP (or TLS) socket: nothing to frame."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def frame(self, data: bytes) -> bytes:
        """The bytes that carry one STOMP frame (or heart-beat) ``data``."""
        return data

    def feed(self, raw: bytes) -> tuple[bytes, bool, bytes]:
        """Take bytes read from the socket (``b""``: EOF).

        Returns:
            ``(stomp, eof, reply)``: STOMP bytes for the core, whether the peer
            has closed, and bytes to write back (WebSocket Pong or Close).
        """
        return raw, not raw, b""

    def goodbye(self) -> bytes:
        """What to write before closing the socket (a WebSocket Close)."""
        return b""


class _WebSocketWire(_Wire):
    """STOMP over WebSocket (wsproto), after the handshake.

    As the AnyIO adapter does it: incoming text and binary messages are one
    byte stream for the parser; each outgoing frame is one message, text when
    it is valid UTF-8, binary otherwise; Pings are answered; a message larger
    than ``max_message_size`` or a text message that is not UTF-8 ends the
    connection. Every call happens under the client's lock.
    """

    def __init__(self, sock: socket.socket, ws: Any, max_message_size: int) -> None:
        super().__init__(sock)
        self.ws = ws
        self.max_message_size = max_message_size
        self._message_size = 0

    def frame(self, data: bytes) -> bytes:
        from wsproto.events import BytesMessage, TextMessage
        from wsproto.utilities import LocalProtocolError as WsLocalError

        message: TextMessage | BytesMessage
        try:
            message = TextMessage(data=data.decode())
        except UnicodeDecodeError:
            message = BytesMessage(data=data)
        try:
            out: bytes = self.ws.send(message)
        except WsLocalError as exc:
            raise BrokenPipeError(f"the WebSocket is closing: {exc}") from exc
        return out

    def feed(self, raw: bytes) -> tuple[bytes, bool, bytes]:
        from wsproto.connection import ConnectionState
        from wsproto.events import BytesMessage, CloseConnection, Message, Ping
        from wsproto.utilities import LocalProtocolError as WsLocalError

        ws = self.ws
        try:
            ws.receive_data(raw or None)
        except WsLocalError:  # bytes after the Close handshake: the connection is over
            return b"", True, b""
        stomp, reply = bytearray(), bytearray()
        eof = not raw
        for event in ws.events():
            if isinstance(event, Message):
                chunk = (
                    bytes(event.data) if isinstance(event, BytesMessage) else event.data.encode()
                )
                self._message_size += len(chunk)
                if self._message_size > self.max_message_size:
                    raise ConnectionLost(
                        f"the server sent a WebSocket message larger than max_message_size "
                        f"({self.max_message_size} bytes)"
                    )
                if event.message_finished:
                    self._message_size = 0
                stomp += chunk
            elif isinstance(event, Ping):
                reply += ws.send(event.response())
            elif isinstance(event, CloseConnection):
                if ws.state is ConnectionState.REMOTE_CLOSING:  # the server closes: reply
                    reply += ws.send(event.response())
                elif ws.state is ConnectionState.OPEN:  # wsproto found bad framing
                    if event.code == 1007:
                        raise ConnectionLost(
                            "the server sent a WebSocket text message that is not valid "
                            "UTF-8 (a binary body; RabbitMQ needs web_stomp.ws_frame = binary)"
                        )
                    raise ConnectionLost(f"WebSocket protocol error (close code {event.code})")
                eof = True
        return bytes(stomp), eof, bytes(reply)

    def goodbye(self) -> bytes:
        from wsproto.connection import ConnectionState
        from wsproto.events import CloseConnection

        if self.ws.state is not ConnectionState.OPEN:
            return b""
        out: bytes = self.ws.send(CloseConnection(code=1000))
        return out


def _websocket_handshake(
    sock: socket.socket, netloc: str, path: str, deadline: float, max_message_size: int
) -> _WebSocketWire:
    try:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, RejectConnection, Request
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "STOMP over WebSocket needs: pip install 'stomp-proto[websocket]'"
        ) from exc
    from wsproto.utilities import RemoteProtocolError as WsRemoteError

    ws = WSConnection(ConnectionType.CLIENT)
    sock.sendall(ws.send(Request(host=netloc, target=path, subprotocols=list(_STOMP_SUBPROTOCOLS))))
    while True:
        data = _recv_before(sock, deadline, "no WebSocket handshake reply")
        try:
            ws.receive_data(data or None)
            events = list(ws.events())
        except WsRemoteError as exc:
            raise ConnectionLost(f"the WebSocket handshake failed: {exc}") from exc
        for event in events:
            if isinstance(event, AcceptConnection):
                return _WebSocketWire(sock, ws, max_message_size)
            if isinstance(event, RejectConnection):
                raise ConnectionRefusedError(
                    f"WebSocket handshake rejected: HTTP {event.status_code}"
                )
        if not data:
            raise ConnectionLost("the server closed the connection during the WebSocket handshake")


def _recv_before(sock: socket.socket, deadline: float, what: str) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(what)
    sock.settimeout(left)
    try:
        return sock.recv(_READ_SIZE)
    except (TimeoutError, _ssl.SSLWantReadError):
        raise TimeoutError(what) from None


class _Link:
    """One transport and its connection."""

    __slots__ = ("conn", "epoch", "sock", "wire")

    def __init__(self, wire: _Wire, conn: ClientConnection, epoch: int) -> None:
        self.wire = wire
        self.sock = wire.sock
        self.conn = conn
        self.epoch = epoch


class Client:
    """A blocking STOMP client session; create it with :func:`connect`.

    Every method may be called from any thread, except that a ``callback``
    (which runs on the reader thread) must not wait for a receipt.

    ``Client(host, port, ...)`` takes the arguments of :func:`connect` and does
    not connect until :meth:`open` or ``with Client(...) as client:``. One more
    argument is for tests: ``clock``, the monotonic clock of heart-beat
    deadlines (:func:`time.monotonic`).

    Attributes:
        connected: the CONNECTED event of the current connection (None while
            reconnecting).
        closed: True once the session is over (disconnected or failed).
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
        ssl: bool | _ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        timeout: float = 10.0,
        disconnect_timeout: float = 5.0,
        receipt_timeout: float | None = 30.0,
        reconnect: ReconnectPolicy | None = None,
        limits: Limits | None = None,
        headers: HeadersArg = None,
        buffer: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if buffer < 1:
            raise ValueError("buffer must be at least 1")
        self.host, self.port = host, port
        self.login, self.passcode = login, passcode
        # Over WebSocket the URL's host is no STOMP virtual host (as in the AnyIO client).
        self.vhost = vhost if vhost is not None else (None if host.startswith("ws") else host)
        self.versions = check_versions(versions)
        self.heart_beat = heart_beat
        self.grace = grace
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.timeout = timeout
        self.disconnect_timeout = disconnect_timeout
        self.receipt_timeout = receipt_timeout
        self.reconnect = reconnect
        self.limits = limits or Limits()
        self.extra_headers = header_pairs(headers)
        self.buffer = buffer
        self.clock = clock
        self.connected: Connected | None = None
        self.closed = False
        self._link: _Link | None = None
        self._epoch = 0
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._receipts: dict[str, _Waiter] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._ids = itertools.count(1)
        self._closing = False
        self._stop = threading.Event()
        self._up = threading.Event()
        # The reader waits on this pair's first socket too, so that any thread can
        # wake it (disconnect, tests that move a fake clock); the reader closes it.
        self._wakeup: tuple[socket.socket, socket.socket] | None = None
        self._reader: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------

    def open(self) -> Client:
        """Connect, complete CONNECT/CONNECTED and start the reader thread.

        Raises:
            StompError: the server refused the CONNECT (bad login, say).
            TimeoutError: no CONNECTED within ``timeout`` seconds.
            OSError: the TCP or TLS connection failed.
        """
        if self._reader is not None:
            raise RuntimeError("the client is already open")
        try:
            self._open(self.host, self.port)
        except BaseException:
            self.closed = True
            raise
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        self._wakeup = (wake_r, wake_w)
        self._reader = threading.Thread(
            target=self._run,
            name=f"stomp-proto reader {self.host}"
            + ("" if self.host.startswith("ws") else f":{self.port}"),
            daemon=True,
        )
        self._reader.start()
        return self

    def __enter__(self) -> Client:
        if self._reader is None:
            self.open()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disconnect()

    @property
    def version(self) -> str | None:
        """The negotiated STOMP version (None while not connected)."""
        link = self._link
        return link.conn.version if link is not None else None

    @property
    def is_connected(self) -> bool:
        """True while a connection is up (False during a reconnect and after the end)."""
        return self._up.is_set() and not self.closed

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait until a connection is up (after a loss, until the reconnect succeeds).

        Returns:
            True when connected, False if ``timeout`` ran out first.

        Raises:
            ConnectionLost: the session has ended (or the StompError that ended it).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.closed:
                raise self._error or ConnectionLost("the client is closed")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            # Wake at least every 0.1 s to notice the end of the session.
            if self._up.wait(0.1 if left is None else min(left, 0.1)) and not self.closed:
                return True

    def _open(self, host: str, port: int) -> None:
        """Connect the socket and do the CONNECT/CONNECTED handshake (bounded by timeout)."""
        deadline = time.monotonic() + self.timeout
        url = urlsplit(host) if host.startswith(("ws://", "wss://")) else None
        secure = bool(self.ssl) or (url is not None and url.scheme == "wss")
        if url is not None:
            host = url.hostname or "localhost"
            port = url.port or (443 if url.scheme == "wss" else 80)
        sock = socket.create_connection((host, port), timeout=self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if secure:
                context = (
                    self.ssl
                    if isinstance(self.ssl, _ssl.SSLContext)
                    else _ssl.create_default_context()
                )
                sock = context.wrap_socket(sock, server_hostname=self.server_hostname or host)
            wire = _Wire(sock)
            if url is not None:
                path = (url.path or "/") + (f"?{url.query}" if url.query else "")
                size = self.limits.max_body_size + self.limits.max_header_size
                wire = _websocket_handshake(sock, url.netloc, path, deadline, size)
            conn = ClientConnection(grace=self.grace, limits=self.limits)
            hello = Connect(
                accept_version=self.versions,
                host=self.vhost,
                login=self.login,
                passcode=self.passcode,
                heart_beat=self.heart_beat,
                headers=self.extra_headers,
            )
            sock.sendall(wire.frame(conn.send(hello, self.clock())))
            connected = self._handshake(conn, wire, deadline)
        except BaseException:
            sock.close()
            raise
        with self._lock:
            self._epoch += 1
            self._link = _Link(wire, conn, self._epoch)
            self.connected = connected
            self._error = None
        self._up.set()
        log.debug("connected to %s:%d (STOMP %s)", host, port, conn.version)

    def _handshake(self, conn: ClientConnection, wire: _Wire, deadline: float) -> Connected:
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                raw = _recv_before(wire.sock, deadline, f"no CONNECTED within {self.timeout} s")
                stomp, eof, reply = wire.feed(raw)
                if reply:
                    wire.sock.sendall(reply)
                if stomp:
                    conn.receive_data(stomp, self.clock())
                if eof:
                    conn.receive_data(b"", self.clock())
                continue
            if isinstance(event, Connected):
                # Reads wait in a selector; the timeout bounds a blocked sendall.
                wire.sock.settimeout(self.timeout)
                return event
            if isinstance(event, Error):
                raise StompError(event)
            if isinstance(event, ConnectionClosed):
                raise ConnectionLost("the server closed the connection before CONNECTED")
            # A heart-beat EOL before CONNECTED: ignore it.

    def disconnect(self) -> None:
        """DISCONNECT with a receipt, wait for it (at most ``disconnect_timeout``), close.

        Called on leaving ``with connect(...)``; safe to call more than once and
        from any thread (from a callback it does not wait for the receipt).
        Subscription iterators end normally.
        """
        if self.closed:
            return
        self._closing = True
        self._stop.set()
        link = self._link
        on_reader = threading.current_thread() is self._reader
        if link is not None and link.conn.state is State.CONNECTED and self.is_connected:
            bye = Disconnect(receipt=self._new_id("bye-"))
            try:
                if on_reader:
                    self._request(bye, receipt=False)
                else:
                    self._request(bye, receipt=True, timeout=self.disconnect_timeout)
            except (ConnectionLost, StompError, ProtocolError, OSError, TimeoutError):
                pass
        self.closed = True
        self._wake()
        if link is not None:
            with contextlib.suppress(OSError):
                link.sock.shutdown(socket.SHUT_RDWR)
        reader = self._reader
        if reader is not None and not on_reader:
            reader.join(self.disconnect_timeout + 1)
        self._finish(ConnectionLost("the client is closed"))
        if link is not None and (reader is None or not reader.is_alive()):
            link.sock.close()

    close = disconnect

    def _wake(self) -> None:
        """Make the reader look at its deadlines and flags now."""
        if self._wakeup is not None:
            with contextlib.suppress(OSError):
                self._wakeup[1].send(b"\0")

    def _finish(self, error: BaseException) -> None:
        with self._lock:
            if not self._closing:
                self._error = error
            self.closed = True
            self._up.clear()
            waiters = list(self._receipts.values())
            self._receipts.clear()
            subs = list(self._subscriptions.values())
            self._subscriptions.clear()
        final = self._error or error
        for waiter in waiters:
            waiter.resolve(None, final)
        for sub in subs:
            sub._end(None if self._closing else final)

    # -- the reader thread -----------------------------------------------------

    def _run(self) -> None:
        error: BaseException = ConnectionLost("the client is closed")
        try:
            while True:
                link = self._link
                if link is None:  # pragma: no cover - _recover leaves a link or stops
                    break
                error = self._read(link)
                self._hang_up(link)
                if self._closing:
                    break
                log.warning("connection to %s:%d lost: %s", self.host, self.port, error)
                if not self._recover(error):
                    break
        except BaseException as exc:  # a bug: end the session rather than hang it
            log.exception("the STOMP reader thread failed")
            error = ConnectionLost(f"the reader thread failed: {exc!r}")
            error.__cause__ = exc
        self._finish(ConnectionLost("the client is closed") if self._closing else error)
        link = self._link
        if link is not None:
            with contextlib.suppress(OSError):
                link.sock.close()
        if self._wakeup is not None:
            for end in self._wakeup:
                end.close()

    def _read(self, link: _Link) -> BaseException:
        """Serve one connection until it ends; return why it ended."""
        conn, sock = link.conn, link.sock
        assert self._wakeup is not None
        wake = self._wakeup[0]
        # A selector, not select.select: a WSGI worker may hold more than
        # FD_SETSIZE (1024) descriptors.
        selector = selectors.DefaultSelector()
        selector.register(sock, selectors.EVENT_READ)
        selector.register(wake, selectors.EVENT_READ)
        try:
            while not self.closed:
                failure = self._dispatch(link)
                if failure is not None:
                    return failure
                self._timers(link, reading=True)
                if not (isinstance(sock, _ssl.SSLSocket) and sock.pending()):
                    deadline = conn.next_deadline()
                    wait = None if deadline is None else max(0.0, deadline - self.clock())
                    ready = {key.fileobj for key, _ in selector.select(wait)}
                    if wake in ready:
                        with contextlib.suppress(OSError):
                            wake.recv(4096)
                    if sock not in ready:
                        continue
                try:
                    raw = sock.recv(_READ_SIZE)
                except (TimeoutError, _ssl.SSLWantReadError):
                    continue  # a partial TLS record: wait for the rest
                with self._lock:
                    stomp, eof, reply = link.wire.feed(raw)
                    if reply:
                        sock.sendall(reply)
                    now = self.clock()
                    if stomp or eof:
                        conn.receive_data(stomp, now)
                    if eof and stomp:
                        conn.receive_data(b"", now)
        except ConnectionLost as exc:  # from the WebSocket layer
            return exc
        except ProtocolError as exc:
            lost = ConnectionLost(f"protocol error: {exc}")
            lost.__cause__ = exc
            return lost
        except (OSError, ValueError) as exc:  # ValueError: a socket closed meanwhile
            if self.closed:
                return ConnectionLost("the client is closed")
            lost = ConnectionLost(f"transport failed: {exc!r}")
            lost.__cause__ = exc
            return lost
        finally:
            selector.close()
        return ConnectionLost("the client is closed")

    def _hang_up(self, link: _Link) -> None:
        """Close ``link``'s socket, after a WebSocket Close if one is still due."""
        with contextlib.suppress(OSError), self._lock:
            goodbye = link.wire.goodbye()
            if goodbye:
                link.sock.settimeout(0.5)
                link.sock.sendall(goodbye)
        with contextlib.suppress(OSError):
            link.sock.close()

    def _timers(self, link: _Link, *, reading: bool) -> None:
        with self._lock:
            deadline = link.conn.next_deadline()
            if deadline is None:
                return
            now = self.clock()
            if now < deadline and reading:
                return
            data = link.conn.handle_timer(now, reading=reading)
            if data:
                link.sock.sendall(link.wire.frame(data))

    def _dispatch(self, link: _Link) -> BaseException | None:
        """Hand out every event the core has; return why the connection ended, if it did."""
        conn = link.conn
        target: Subscription | None = None
        waiter: _Waiter | None = None
        while True:
            with self._lock:
                event = conn.next_event()
                if event is NEED_DATA:
                    return None
                if isinstance(event, Message):
                    target = self._subscription_for(link, event)
                elif isinstance(event, Receipt):
                    waiter = self._receipts.pop(event.receipt_id, None)
            if isinstance(event, Message):
                if target is not None:
                    self._deliver(link, ReceivedMessage(self, event, target, link.epoch))
            elif isinstance(event, Receipt):
                if waiter is not None:
                    waiter.resolve(event)
            elif isinstance(event, Error):
                return StompError(event)
            elif isinstance(event, ConnectionClosed):
                if self._closing:
                    return ConnectionLost("the client is closed")
                return ConnectionLost("the server closed the connection")

    def _subscription_for(self, link: _Link, event: Message) -> Subscription | None:
        key = link.conn.subscription_for(event)  # the core knows (and the 1.0 fallbacks)
        return None if key is None else self._subscriptions.get(key)  # None: unsubscribed

    def _deliver(self, link: _Link, message: ReceivedMessage) -> None:
        sub = message.subscription
        if sub.callback is not None:
            try:
                sub.callback(message)
            except Exception:
                log.exception("subscription %r: the callback raised", sub.id)
            return
        try:
            while not sub._buffer.put(message, self._wait_for(link)):
                # Back-pressure: not reading the socket while the buffer is full;
                # heart-beats still go out, and the core knows the silence is ours.
                if self._closing:
                    return
                self._timers(link, reading=False)
        except _Ended:
            return  # unsubscribed meanwhile

    def _wait_for(self, link: _Link) -> float:
        # At most 0.5 s, to notice a disconnect while the consumer is stuck.
        deadline = link.conn.next_deadline()
        if deadline is None:
            return 0.5
        return max(0.0, min(deadline - self.clock(), 0.5))

    def _recover(self, error: BaseException) -> bool:
        """The connection died: fail what waited on it, then reconnect or give up."""
        self._up.clear()
        with self._lock:
            self._link = None
            self.connected = None
            waiters = list(self._receipts.values())
            self._receipts.clear()
        for waiter in waiters:
            if isinstance(error, StompError):
                waiter.resolve(None, error)
            else:
                lost = ConnectionLost(f"connection lost before the RECEIPT: {error}")
                lost.__cause__ = error
                waiter.resolve(None, lost)
        policy = self.reconnect
        if policy is None or isinstance(error, StompError):
            self._error = error
            return False
        hosts = list(policy.hosts) or [(self.host, self.port)]
        for attempt, delay in enumerate(policy.delays()):
            if self._stop.wait(delay):
                return False
            host, port = hosts[attempt % len(hosts)]
            try:
                self._open(host, port)
            except (OSError, TimeoutError, StompError, ProtocolError, ConnectionLost) as exc:
                log.info("reconnect attempt %d to %s:%d failed: %s", attempt + 1, host, port, exc)
                continue
            try:
                self._resubscribe()
            except (OSError, StompError, ProtocolError, ConnectionLost) as exc:
                log.info("re-subscribing after reconnect failed: %s", exc)
                link = self._link
                if link is not None:
                    with contextlib.suppress(OSError):
                        link.sock.close()
                continue
            log.warning("reconnected to %s:%d after %d attempt(s)", host, port, attempt + 1)
            return True
        self._error = error
        return False

    def _resubscribe(self) -> None:
        with self._lock:
            subs = list(self._subscriptions.values())
        for sub in subs:
            # (_request skips one that a concurrent subscribe() already sent.)
            self._request(dataclasses.replace(sub.event, receipt=None), receipt=False)

    def _abandon(self, link: _Link) -> None:
        """End ``link`` from any thread: the reader sees EOF and recovers or finishes."""
        with contextlib.suppress(OSError):
            link.sock.shutdown(socket.SHUT_RDWR)

    # -- requests --------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def _check_open(self) -> _Link:
        if self.closed:
            raise self._error or ConnectionLost("the client is closed")
        if self._link is None:
            raise ConnectionLost("not connected (reconnecting); see wait_connected()")
        return self._link

    def _request(
        self,
        event: Event,
        receipt: bool | str,
        timeout: float | None = None,
        *,
        check: bool = False,
    ) -> Receipt | None:
        """Send ``event``; with ``receipt``, add a receipt header and wait for the RECEIPT.

        With ``check``, what the core would refuse is raised (its
        LocalProtocolError) before anything is sent, and the connection stays
        usable; without it, such an error ends the connection.
        """
        waiter = None
        receipt_id = ""
        if receipt:
            if threading.current_thread() is self._reader:
                raise RuntimeError(
                    "a callback runs on the reader thread and cannot wait for a receipt "
                    "(pass receipt=False)"
                )
            receipt_id = (
                (receipt if isinstance(receipt, str) else None)
                or getattr(event, "receipt", None)
                or self._new_id("r-")
            )
            if getattr(event, "receipt", None) != receipt_id:
                event = dataclasses.replace(event, receipt=receipt_id)  # type: ignore[call-arg]
            waiter = _Waiter()
        with self._lock:
            link = self._check_open()
            if isinstance(event, Subscribe) and event.id in link.conn.subscriptions:
                return None  # re-subscribed by a reconnect that overtook this call
            if check:
                refused = link.conn.check(event)
                if refused is not None:
                    raise refused
            if waiter is not None:
                self._receipts[receipt_id] = waiter
            try:
                data = link.conn.send(event, self.clock())
            except LocalProtocolError:
                # The core is now in its ERROR state: end this connection (the
                # reconnect policy, if any, opens a fresh one) and tell the caller.
                self._receipts.pop(receipt_id, None)
                self._abandon(link)
                raise
            except BaseException:
                self._receipts.pop(receipt_id, None)
                raise
            try:
                link.sock.sendall(link.wire.frame(data))
            except OSError as exc:
                # Part of a frame may be out: this connection cannot go on.
                self._receipts.pop(receipt_id, None)
                self._abandon(link)
                raise ConnectionLost(f"transport failed while sending: {exc!r}") from exc
        if waiter is None:
            return None
        return self._wait(waiter, receipt_id, self.receipt_timeout if timeout is None else timeout)

    def _wait(self, waiter: _Waiter, receipt_id: str, timeout: float | None) -> Receipt:
        try:
            if not waiter.done.wait(timeout):
                raise TimeoutError(f"no RECEIPT for {receipt_id!r} within {timeout} s")
        finally:
            with self._lock:
                self._receipts.pop(receipt_id, None)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.receipt is not None
        return waiter.receipt

    def send(
        self,
        destination: str,
        body: bytes | str = b"",
        *,
        content_type: str | None = None,
        headers: HeadersArg = None,
        receipt: bool | str = False,
        transaction: str | Transaction | None = None,
    ) -> Receipt | None:
        """SEND ``body`` to ``destination``.

        Args:
            destination: where to send, e.g. ``"/queue/work"``.
            body: bytes, or str (sent as UTF-8, ``text/plain;charset=utf-8``
                unless ``content_type`` says otherwise).
            content_type: the ``content-type`` header.
            headers: extra headers, a mapping or ``(name, value)`` pairs.
            receipt: True (or a receipt id) to wait until the broker confirms.
            transaction: a :class:`Transaction` or its id.

        Returns:
            The :class:`~stomp_proto.Receipt` with ``receipt``, else None.

        Raises:
            ConnectionLost: not connected (closed, or reconnecting).
            TimeoutError: no RECEIPT within ``receipt_timeout``.
        """
        if isinstance(body, str):
            body = body.encode()
            content_type = content_type or "text/plain;charset=utf-8"
        tx = transaction.id if isinstance(transaction, Transaction) else transaction
        return self._request(
            Send(
                destination=destination,
                body=body,
                content_type=content_type,
                transaction=tx,
                headers=header_pairs(headers),
            ),
            receipt,
        )

    def subscribe(
        self,
        destination: str,
        *,
        ack: AckMode = "auto",
        id: str | None = None,
        headers: HeadersArg = None,
        callback: Callback | None = None,
        receipt: bool = True,
        buffer: int | None = None,
    ) -> Subscription:
        """SUBSCRIBE; by default wait for the RECEIPT that says it is live.

        Args:
            destination: what to subscribe to.
            ack: ``"auto"``, ``"client"`` (cumulative) or ``"client-individual"``.
            id: the subscription id (generated by default).
            headers: extra headers (``prefetch-count``, selectors...).
            callback: called with each :class:`ReceivedMessage` on the reader
                thread instead of buffering it. It may send, ack and nack but
                not wait for receipts; while it runs nothing else is read.
                An exception it raises is logged and ignored.
            receipt: wait for the broker to confirm the subscription.
            buffer: messages held before back-pressure (default: the client's).
        """
        check_ack_mode(ack)
        sub_id = id or self._new_id("sub-")
        event = Subscribe(
            destination=destination, id=sub_id, ack=ack, headers=header_pairs(headers)
        )
        sub = Subscription(self, event, self.buffer if buffer is None else buffer, callback)
        with self._lock:
            if sub_id in self._subscriptions:
                raise ValueError(f"subscription id {sub_id!r} is already in use")
            self._subscriptions[sub_id] = sub
        try:
            self._request(event, receipt)
        except BaseException:
            with self._lock:
                self._subscriptions.pop(sub_id, None)
            raise
        return sub

    def unsubscribe(self, sub: Subscription, *, receipt: bool = True) -> None:
        """UNSUBSCRIBE; the subscription's iterator ends."""
        with self._lock:
            if self._subscriptions.pop(sub.id, None) is None:
                return
        sub._end(None)
        if self._link is not None and not self.closed:
            self._request(Unsubscribe(id=sub.id), receipt)

    def begin(self) -> Transaction:
        """BEGIN a transaction explicitly."""
        tx = Transaction(self, self._new_id("tx-"), self._epoch)
        self._request(Begin(transaction=tx.id), receipt=False)
        return tx

    def transaction(self) -> Transaction:
        """BEGIN a transaction: ``with client.transaction() as tx:`` COMMITs on success
        and ABORTs on an exception."""
        return self.begin()

    def receipt_for(self, event: Event) -> Receipt:
        """Send any client frame and wait for its RECEIPT."""
        receipt = self._request(event, receipt=True)
        assert receipt is not None
        return receipt

    def _settle(self, message: ReceivedMessage, event: Ack | Nack, receipt: bool) -> None:
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
        self._request(event, receipt, check=True)

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("connected" if self.is_connected else "connecting")
        return f"<blocking.Client {self.host}:{self.port} {state}>"


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
    ssl: bool | _ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    timeout: float = 10.0,
    disconnect_timeout: float = 5.0,
    receipt_timeout: float | None = 30.0,
    reconnect: ReconnectPolicy | None = None,
    limits: Limits | None = None,
    headers: HeadersArg = None,
    buffer: int = 100,
) -> Client:
    """Connect to a STOMP server and return the open :class:`Client`.

    Use it as ``with connect(...) as client:`` (DISCONNECT on leaving), or call
    ``client.disconnect()`` yourself.

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
        timeout: seconds for TCP, TLS and CONNECTED; also bounds a blocked write.
        disconnect_timeout: seconds to wait for DISCONNECT's RECEIPT.
        receipt_timeout: seconds any receipt is waited for (None: for ever).
        reconnect: a :class:`ReconnectPolicy` to reconnect and re-subscribe
            after a lost connection; None gives up at the first loss.
        limits: the core's :class:`~stomp_proto.Limits`.
        headers: extra CONNECT headers.
        buffer: messages each subscription buffers before back-pressure.

    Raises:
        StompError: the server refused the CONNECT.
        TimeoutError: no CONNECTED within ``timeout``.
        OSError: the connection failed.
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
        timeout=timeout,
        disconnect_timeout=disconnect_timeout,
        receipt_timeout=receipt_timeout,
        reconnect=reconnect,
        limits=limits,
        headers=headers,
        buffer=buffer,
    ).open()
