"""ClientConnection and ServerConnection: one engine, two roles.

The API follows h11:

* :meth:`receive_data` only buffers bytes (``b""`` = EOF);
* :meth:`next_event` parses and returns *one* event, or :data:`NEED_DATA`
  (feed more bytes) or :data:`PAUSED` (nothing more until you send
  something), and advances the state only as it hands each event out, so the
  version negotiated by CONNECTED applies to the very next frame;
* :meth:`send` takes an event and returns the bytes to write. Nothing is
  queued behind the caller's back.

Time is an input (aioquic): :meth:`next_deadline` says when the connection
next needs attention and :meth:`handle_timer` returns the heart-beat EOL to
send, or raises :class:`RemoteProtocolError` when the peer has been silent
for longer than the negotiated interval times ``grace``. ``receive_data`` and
``send`` take an optional ``now``; without it, received bytes count as life
at the next timer call and sends are stamped with the latest time seen.

Legality of each frame in each state is the table in ``_state.py``; the
bookkeeping of subscriptions, acks, transactions and receipts is in
``_tracking.py``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from ._errors import LocalProtocolError, ProtocolError, RemoteProtocolError, StickyError
from ._events import (
    FRAME_EVENTS,
    HEARTBEAT,
    Abort,
    Ack,
    Begin,
    Commit,
    Connect,
    Connected,
    ConnectionClosed,
    Disconnect,
    Error,
    Event,
    Heartbeat,
    Message,
    Nack,
    Receipt,
    Send,
    Subscribe,
    Unsubscribe,
)
from ._frame import CLIENT_COMMANDS, SERVER_COMMANDS, SUPPORTED_VERSIONS, Frame
from ._heartbeat import HeartbeatTimer, negotiate
from ._parser import DEFAULT_LIMITS, FrameParser
from ._state import MOVES, Role, State
from ._tracking import Books

__all__ = ["NEED_DATA", "PAUSED", "ClientConnection", "Limits", "Sentinel", "ServerConnection"]


class Sentinel(enum.Enum):
    """What :meth:`next_event` returns when it has no event.

    .. versionadded:: 0.1
    """

    #: Feed more bytes with ``receive_data``.
    NEED_DATA = "NEED_DATA"
    #: No events until the local side sends something (a server that has
    #: handed out CONNECT and not answered it, or that received DISCONNECT).
    PAUSED = "PAUSED"


NEED_DATA: Final = Sentinel.NEED_DATA
PAUSED: Final = Sentinel.PAUSED

_EVENT_TYPES: dict[str, type[Event]] = {cls.COMMAND: cls for cls in FRAME_EVENTS}
_EVENT_TYPES["STOMP"] = Connect
_NOT_LIVE = (State.CLOSED, State.ERROR)
_IN_ERROR = "cannot send: the connection is in the ERROR state"
_UNSAFE = str.maketrans({"\\": "/", "\r": " ", "\n": " "})


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Limits on what one peer may make a connection hold (all on by default).

    Attributes:
        max_header_size: largest command + header block of one frame, bytes.
        max_headers: most headers in one frame.
        max_body_size: largest body, bytes.
        max_subscriptions: most simultaneous subscriptions. A browser page
            uses a handful; 1,000 leaves room for dashboards while bounding
            what one client can make a broker track.
        max_transactions: most simultaneously open transactions.
        max_pending_receipts: most receipts asked for and not yet answered.
        max_unacknowledged: most messages of client / client-individual
            subscriptions delivered and not yet acknowledged. RabbitMQ's
            ``prefetch-count`` or the adapter's back-pressure keep real
            sessions far below it; it bounds what a misbehaving peer can make
            the connection remember.
        max_connect_frame_size: what a :class:`ServerConnection` accepts
            before a session exists: the largest header block, and the
            largest body, of the CONNECT (or STOMP) frame, bytes. Anyone who
            can open a connection can send a CONNECT, so it is small: 8 KiB,
            the header limit of common HTTP servers (nginx, Apache), holds a
            login with a bearer token several times over. A CONNECT that
            declares or sends more is refused while it is still arriving.
            ``max_header_size`` and ``max_body_size`` still apply if smaller;
            they take over once the session is established.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       ``max_connect_frame_size``.
    """

    max_header_size: int = DEFAULT_LIMITS["max_header_size"]
    max_headers: int = DEFAULT_LIMITS["max_headers"]
    max_body_size: int = DEFAULT_LIMITS["max_body_size"]
    max_subscriptions: int = 1000
    max_transactions: int = 1000
    max_pending_receipts: int = 10_000
    max_unacknowledged: int = 100_000
    max_connect_frame_size: int = 8 * 1024


def _role_types(own: frozenset[str]) -> tuple[dict[str, type[Event]], dict[str, type[Event]]]:
    """The event class of each command the peer may send (``own``: the
    commands we send), and those next_event() may convert without
    _receive_frame's special cases (CONNECT, and any frame of a 1.0 session,
    get trimmed values)."""
    peer = {command: kind for command, kind in _EVENT_TYPES.items() if command not in own}
    return peer, {c: k for c, k in peer.items() if k is not Connect}


# Made once per role, shared by every connection (never mutated, only replaced).
_ROLE_TYPES = {
    Role.CLIENT: _role_types(CLIENT_COMMANDS),
    Role.SERVER: _role_types(SERVER_COMMANDS),
}


class _Connection:
    """The engine behind both roles; use ClientConnection or ServerConnection."""

    role: Role
    peer: Role

    def __init__(self, *, grace: float = 2.0, limits: Limits | None = None) -> None:
        if grace < 1:
            raise ValueError("grace must be at least 1 (one whole interval)")
        self.grace = grace
        self.limits = limits = Limits() if limits is None else limits
        self._own_commands = CLIENT_COMMANDS if self.role is Role.CLIENT else SERVER_COMMANDS
        self._peer_types, self._fast_types = _ROLE_TYPES[self.role]
        self._set_state(State.AWAITING_CONNECT)
        self._version: str | None = None
        # Until a version is agreed, frames are read with 1.0 rules: CONNECT
        # and CONNECTED are never unescaped anyway, and an ERROR sent before
        # CONNECTED (by a 1.0 server, say "message:C:\\temp") must not fail
        # on an escape it never meant (stomp-notes A28).
        self._parser = FrameParser(
            "1.0",
            max_header_size=limits.max_header_size,
            max_headers=limits.max_headers,
            max_body_size=limits.max_body_size,
        )
        if self.role is Role.SERVER:
            # Until the session is established (issue 9 item 9: before login),
            # frames get the small CONNECT limits; _start_session lifts them.
            small = limits.max_connect_frame_size
            self._parser.max_header_size = min(limits.max_header_size, small)
            self._parser.max_body_size = min(limits.max_body_size, small)
        self._books = Books(
            max_subscriptions=limits.max_subscriptions,
            max_transactions=limits.max_transactions,
            max_pending_receipts=limits.max_pending_receipts,
            max_unacknowledged=limits.max_unacknowledged,
        )
        self._error: StickyError | None = None  # (not the exception: see StickyError)
        self._eof = False  # the peer closed its side (receive_data(b""))
        self._disconnect_receipt: str | None = None
        self._clock: float | None = None
        self._timer: HeartbeatTimer | None = None
        self._heartbeats: tuple[int, int] = (0, 0)
        # Negotiation: what the CONNECT offered, and (server) what was agreed.
        self._offered: tuple[str, ...] = ()
        self._client_beat: tuple[int, int] = (0, 0)
        self._agreed: str | None = None

    # -- public state --------------------------------------------------------

    @property
    def state(self) -> State:
        """The current :class:`State`."""
        return self._state

    @property
    def version(self) -> str | None:
        """The negotiated STOMP version, or None before CONNECTED."""
        return self._version

    @property
    def heartbeat_intervals(self) -> tuple[int, int]:
        """Negotiated ``(send, receive)`` heart-beat intervals in ms, from our side."""
        return self._heartbeats

    @property
    def subscriptions(self) -> dict[str, str]:
        """Active subscriptions: id (1.0 without id: destination) -> ack mode. A copy."""
        return dict(self._books.subscriptions)

    @property
    def transactions(self) -> frozenset[str]:
        """Ids of the open transactions."""
        return frozenset(self._books.transactions)

    @property
    def pending_receipts(self) -> dict[str, Event]:
        """Receipts asked for and not yet answered: receipt id -> the event. A copy."""
        return dict(self._books.receipts)

    @property
    def unacknowledged(self) -> dict[str, list[object]]:
        """Ack ids awaiting ACK/NACK per subscription, in delivery order. A copy."""
        return {sub: list(keys) for sub, keys in self._books.unacked.items() if keys}

    # -- input ---------------------------------------------------------------

    def receive_data(self, data: bytes, now: float | None = None) -> None:
        """Buffer bytes from the peer; ``b""`` means EOF.

        Args:
            data: the bytes, in order, as they arrived.
            now: when they arrived (seconds, any monotonic clock). Any byte
                counts as a sign of life for heart-beating.
        """
        if now is not None:
            self._tick(now)
        if data and self._timer is not None:
            self._timer.received(now)
        if not self._reading and not self._paused():
            if not data:
                self._parser_eof()
            return  # nothing more will be read from this peer
        try:
            self._parser.receive_data(data)
            if not data:
                self._eof = True
        except LocalProtocolError as exc:  # data after EOF
            self._enter_error(exc)
            raise

    def _parser_eof(self) -> None:
        if not self._eof:
            self._eof = True
            self._parser.receive_data(b"")

    def _ignoring_input(self) -> bool:
        return False

    def _paused(self) -> bool:
        return False

    def _set_state(self, state: State) -> None:
        """Enter ``state``; precompute what the hot paths ask of it."""
        self._state = state
        self._own_moves = MOVES[self.role, state]
        self._peer_moves = MOVES[self.peer, state]
        self._reading = state not in _NOT_LIVE and not self._ignoring_input() and not self._paused()
        if state in _NOT_LIVE:
            self._timer = None

    def next_event(self) -> Event | Sentinel:
        """Return the next event from the peer, :data:`NEED_DATA` or :data:`PAUSED`.

        Raises:
            RemoteProtocolError: the peer broke the protocol; the connection
                is now in :attr:`State.ERROR` and raises it again if asked.
        """
        if not self._reading:
            return self._not_reading()
        parser = self._parser
        try:
            item = parser.next_frame()
            if item is None:
                if parser.at_eof:
                    self._set_state(State.CLOSED)
                    return ConnectionClosed()
                return NEED_DATA
            if item is HEARTBEAT:
                if self._state is not State.AWAITING_CONNECT or self.role is Role.CLIENT:
                    return HEARTBEAT
                # POLICY (stomp-notes #8, A7): EOLs before CONNECT are not
                # heart-beats (none is negotiated yet): a server skips them, as
                # RabbitMQ and ActiveMQ do, so its first event is the CONNECT.
                while item is HEARTBEAT:
                    item = parser.next_frame()
                if item is None:
                    return self.next_event()  # NEED_DATA, or ConnectionClosed at EOF
            frame: Frame = item  # type: ignore[assignment]
            kind = self._fast_types.get(frame.command)
            if kind is None:
                return self._receive_frame(frame)
            event: Event = kind._from_frame(frame)
            self._apply(event, self.peer, RemoteProtocolError)
            return event
        except RemoteProtocolError as exc:
            self._enter_error(exc)
            raise

    def _not_reading(self) -> Event | Sentinel:
        state = self._state
        if state is State.ERROR:
            assert self._error is not None
            raise self._error.get()
        if state is State.CLOSED:
            return ConnectionClosed()
        if self._ignoring_input():
            return ConnectionClosed() if self._eof else PAUSED
        return PAUSED

    def _receive_frame(self, frame: Frame) -> Event:
        kind = self._peer_types.get(frame.command)
        if kind is None:
            raise RemoteProtocolError(
                f"the {self.peer.value.lower()} sent {frame.command}, which only a "
                f"{self.role.value.lower()} may send",
                receipt_id=frame.get("receipt"),
            )
        if self._version == "1.0" or (kind is Connect and frame.get("accept-version") is None):
            # POLICY (stomp-notes #15, A12): 1.0 peers pad values ("login: guest");
            # strip the left side in 1.0 sessions, CONNECT included, as RabbitMQ does.
            headers = tuple([(k, v.lstrip(" \t")) for k, v in frame.headers])
            frame = Frame(frame.command, headers, frame.body)
        event: Event = kind._from_frame(frame)
        self._apply(event, self.peer, RemoteProtocolError)
        return event

    # -- output --------------------------------------------------------------

    def send(self, event: Event, now: float | None = None) -> bytes:
        """Return the bytes that put ``event`` on the wire, and advance the state.

        Sending :class:`ConnectionClosed` records that we are closing the
        transport and returns ``b""``.

        Raises:
            LocalProtocolError: the event is not legal now; the connection is
                now in :attr:`State.ERROR`. :meth:`check` says so beforehand.
        """
        if now is not None:
            self._tick(now)
        if self._state is State.ERROR and not (
            self.role is Role.SERVER and isinstance(event, Error)
        ):
            raise LocalProtocolError(_IN_ERROR)
        try:
            if isinstance(event, ConnectionClosed):
                self._set_state(State.CLOSED)
                return b""
            data = self._encode(event)
            if not isinstance(event, Heartbeat):
                self._apply(event, self.role, LocalProtocolError)
        except LocalProtocolError as exc:
            self._enter_error(exc)
            raise
        if self._timer is not None:
            self._timer.sent(self._clock if now is None else now)
        return data

    def check(self, event: Event) -> ProtocolError | None:
        """Say whether :meth:`send` would accept ``event`` now, without sending it.

        Runs every check :meth:`send` runs (the state machine, subscriptions,
        acks, transactions, receipts, limits, and whether the negotiated
        version can write the frame: a body with NUL and no
        ``content-length``, NACK in STOMP 1.0, a header value it cannot
        represent...) and changes nothing: the connection stays out of the
        ERROR state whatever the answer.

        Returns:
            None if ``send(event)`` would succeed now; otherwise the
            :class:`LocalProtocolError` it would raise.

        .. versionadded:: 0.2
        """
        if self._state is State.ERROR and not (
            self.role is Role.SERVER and isinstance(event, Error)
        ):
            return LocalProtocolError(_IN_ERROR)
        if isinstance(event, ConnectionClosed):
            return None
        try:
            self._encode(event)
            if not isinstance(event, Heartbeat):
                self._check_move(event)
        except LocalProtocolError as exc:
            return exc
        return None

    def _encode(self, event: Event) -> bytes:
        """The checks of :meth:`send` that come before the state machine; the bytes."""
        if isinstance(event, Heartbeat):
            if self._state not in (State.CONNECTED, State.DISCONNECTING):
                raise LocalProtocolError(f"cannot send a heart-beat in state {self._state.name}")
            return b"\n"
        if event.COMMAND not in self._own_commands:
            raise LocalProtocolError(f"a {self.role.value.lower()} cannot send {event.COMMAND}")
        version = self._version or self._pre_session_version(event)
        if type(event) is Message and event._template is not None:
            data = event._template._encode(event, version)
            if data is not None:
                return data
        frame = event.to_frame(version)
        return frame.serialize(version, content_length=getattr(event, "content_length", True))

    def _pre_session_version(self, event: Event) -> str:
        # Before CONNECTED only CONNECT, CONNECTED and ERROR can go out. CONNECT
        # and CONNECTED are never escaped; a pre-session ERROR is written with
        # 1.0 rules (no escaping), readable by every version (stomp-notes A28).
        return "1.0"

    # -- timers --------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next be called, or None for never."""
        if self._timer is None or self._state in _NOT_LIVE:
            return None
        return self._timer.deadline()

    def handle_timer(self, now: float, *, reading: bool = True) -> bytes:
        """Advance the clock to ``now``; return a heart-beat EOL to send, or ``b""``.

        Args:
            now: the current time, in seconds, on the caller's monotonic clock.
            reading: pass False while the caller has deliberately stopped
                reading the transport (back-pressure from a slow consumer).
                The peer's silence is then ours, not the peer's, and is not
                held against it; outgoing heart-beats still come due.

        Raises:
            RemoteProtocolError: the peer sent nothing for ``grace`` times the
                negotiated interval; the connection is now in the ERROR state.
        """
        self._tick(now)
        if self._timer is None or self._state in _NOT_LIVE:
            return b""
        if not reading:
            self._timer.received(now)
        beat, silent = self._timer.poll(now)
        if silent is not None:
            exc = RemoteProtocolError(
                f"no data from the {self.peer.value.lower()} for {silent:.3f} s "
                f"(heart-beat every {self._heartbeats[1]} ms, grace x{self.grace:g})"
            )
            self._enter_error(exc)
            raise exc
        return b"\n" if beat else b""

    def _tick(self, now: float) -> None:
        if self._clock is None or now > self._clock:
            self._clock = now

    # -- the state machine ---------------------------------------------------

    def _enter_error(self, exc: ProtocolError) -> None:
        self._error = StickyError(exc)
        self._set_state(State.ERROR)

    def _apply(self, event: Event, sender: Role, err: type[ProtocolError]) -> None:
        """Check ``event`` against the state table and the books; then apply it."""
        kind = type(event)
        moves = self._own_moves if sender is self.role else self._peer_moves
        new_state = moves.get(kind)
        receipt = getattr(event, "receipt", None) if kind._HAS_RECEIPT else None
        if new_state is None:
            raise self._not_allowed(event, sender, err, receipt)
        handler = _HANDLERS.get(kind)
        if handler is not None:
            new_state = handler(self, event, sender, err) or new_state
        if receipt is not None:
            self._books.request_receipt(event, receipt, err)
        if new_state is not self._state:
            self._set_state(new_state)

    def _check_move(self, event: Event) -> None:
        """What :meth:`_apply` checks of an event we send, changing nothing."""
        kind = type(event)
        receipt = getattr(event, "receipt", None) if kind._HAS_RECEIPT else None
        if kind not in self._own_moves:
            raise self._not_allowed(event, self.role, LocalProtocolError, receipt)
        checker = _CHECKS.get(kind)
        if checker is not None:
            checker(self, event)
        if receipt is not None:
            self._books.check_receipt(event, receipt, LocalProtocolError)

    def _not_allowed(
        self, event: Event, sender: Role, err: type[ProtocolError], receipt: str | None
    ) -> ProtocolError:
        return err(
            f"{event.COMMAND} is not allowed from the {sender.value.lower()} "
            f"in state {self._state.name}",
            receipt_id=receipt,
        )

    # -- queries: the rules the core knows, for adapters and brokers -----------

    def subscription_for(self, message: Message) -> str | None:
        """The key of the active subscription ``message`` belongs to, or None.

        The key is what :attr:`subscriptions` is keyed by (the SUBSCRIBE's
        :attr:`~stomp_proto.Subscribe.subscription_key`): the MESSAGE's
        ``subscription`` header; in STOMP 1.0, where a SUBSCRIBE may have no
        ``id`` and its MESSAGEs no ``subscription``, the destination, or else
        the only subscription when there is just one. None when no active
        subscription matches (:meth:`send` would refuse such a MESSAGE from a
        server, and :meth:`next_event` one received by a client, unless the
        subscription just ended).

        .. versionadded:: 0.2
        """
        return self._books.subscription_for(message)

    def ack_key(self, event: Message | Ack | Nack) -> str | tuple[str, str] | None:
        """The key that identifies the message ``event`` delivers or settles, or None.

        The same for a MESSAGE and for the ACK or NACK that names it, in the
        negotiated version's terms: STOMP 1.2, the MESSAGE's ``ack`` header
        (the ACK's ``id``); 1.1, ``(message-id, subscription)``; 1.0,
        ``message-id``. It is the key of :attr:`unacknowledged`. None before
        the session is established, or when ``event`` lacks the headers the
        version needs (a 1.2 MESSAGE of an ``auto`` subscription has no
        ``ack``).

        .. versionadded:: 0.2
        """
        if self._version is None:
            return None
        return self._books.ack_key(event)

    # Handlers: side effects of each frame. They return a state that overrides
    # the table's (DISCONNECT without receipt, the RECEIPT for DISCONNECT).

    def _h_message(self, event: Message, sender: Role, err: type[ProtocolError]) -> None:
        self._books.deliver(event, err, received=sender is not self.role)

    def _h_send(self, event: Send, sender: Role, err: type[ProtocolError]) -> None:
        self._books.check_transaction(event, event.transaction, err)

    def _h_ack(self, event: Ack | Nack, sender: Role, err: type[ProtocolError]) -> None:
        self._books.check_transaction(event, event.transaction, err)
        settled = self._books.acknowledge(event, err)
        if settled and sender is not self.role:
            object.__setattr__(event, "settles", tuple(settled))

    def _h_subscribe(self, event: Subscribe, sender: Role, err: type[ProtocolError]) -> None:
        self._books.subscribe(event, err, received=sender is not self.role)

    def _h_unsubscribe(self, event: Unsubscribe, sender: Role, err: type[ProtocolError]) -> None:
        self._books.unsubscribe(event, err)

    def _h_begin(self, event: Begin, sender: Role, err: type[ProtocolError]) -> None:
        self._books.begin(event, event.transaction, err)

    def _h_commit(self, event: Commit, sender: Role, err: type[ProtocolError]) -> None:
        held = self._books.end(event, event.transaction, err, commit=True)
        if held and sender is not self.role:
            # Each held ACK/NACK (handed out earlier) learns what it settled now.
            for ack, settled in held:
                object.__setattr__(ack, "settles", tuple(settled))
            keys = tuple(key for _, settled in held for key in settled)
            object.__setattr__(event, "settles", keys)

    def _h_abort(self, event: Abort, sender: Role, err: type[ProtocolError]) -> None:
        self._books.end(event, event.transaction, err, commit=False)

    def _h_receipt(self, event: Receipt, sender: Role, err: type[ProtocolError]) -> State | None:
        object.__setattr__(event, "confirms", self._books.answer_receipt(event.receipt_id, err))
        return State.CLOSED if event.receipt_id == self._disconnect_receipt else None

    def _h_disconnect(
        self, event: Disconnect, sender: Role, err: type[ProtocolError]
    ) -> State | None:
        if event.receipt is None:
            return State.CLOSED
        self._disconnect_receipt = event.receipt
        return None

    def _h_connect(self, event: Connect, sender: Role, err: type[ProtocolError]) -> None:
        self._on_connect(event, err)

    def _h_connected(self, event: Connected, sender: Role, err: type[ProtocolError]) -> None:
        self._on_connected(event, err)

    def _on_connect(self, event: Connect, err: type[ProtocolError]) -> None:
        raise NotImplementedError

    def _on_connected(self, event: Connected, err: type[ProtocolError]) -> None:
        raise NotImplementedError

    def _check_connect(self, event: Connect) -> None:
        """Check a CONNECT we send (only a client can)."""

    def _check_connected(self, event: Connected) -> None:
        """Check a CONNECTED we send (only a server can)."""

    # Checks of the events we send, for check(): each is the check half of the
    # handler above (the books' check_* methods are what the handlers call).

    def _c_message(self, event: Message) -> None:
        self._books.check_deliver(event, LocalProtocolError, received=False)

    def _c_send(self, event: Send) -> None:
        self._books.check_transaction(event, event.transaction, LocalProtocolError)

    def _c_ack(self, event: Ack | Nack) -> None:
        self._books.check_transaction(event, event.transaction, LocalProtocolError)
        self._books.check_acknowledge(event, LocalProtocolError)

    def _c_subscribe(self, event: Subscribe) -> None:
        self._books.check_subscribe(event, LocalProtocolError)

    def _c_unsubscribe(self, event: Unsubscribe) -> None:
        self._books.check_unsubscribe(event, LocalProtocolError)

    def _c_begin(self, event: Begin) -> None:
        self._books.check_begin(event, event.transaction, LocalProtocolError)

    def _c_end(self, event: Commit | Abort) -> None:
        self._books.check_transaction(event, event.transaction, LocalProtocolError)

    def _c_receipt(self, event: Receipt) -> None:
        self._books.check_answer(event.receipt_id, LocalProtocolError)

    def _c_connect(self, event: Connect) -> None:
        self._check_connect(event)

    def _c_connected(self, event: Connected) -> None:
        self._check_connected(event)

    def _start_session(
        self, version: str, client: tuple[int, int], server: tuple[int, int]
    ) -> None:
        self._version = version
        if version == "1.0":
            self._fast_types = {}
        self._parser.version = version
        self._parser.max_header_size = self.limits.max_header_size
        self._parser.max_body_size = self.limits.max_body_size
        self._books.version = version
        if version == "1.0":
            return  # POLICY (stomp-notes #58): no heart-beating in 1.0 sessions
        to_server, to_client = negotiate(client, server)
        if self.role is Role.CLIENT:
            self._heartbeats = (to_server, to_client)
        else:
            self._heartbeats = (to_client, to_server)
        if any(self._heartbeats):
            self._timer = HeartbeatTimer(*self._heartbeats, self.grace, self._clock)


_Handler = Callable[[_Connection, Any, Role, type[ProtocolError]], "State | None"]
_HANDLERS: dict[type[Event], _Handler] = {
    Message: _Connection._h_message,
    Send: _Connection._h_send,
    Ack: _Connection._h_ack,
    Nack: _Connection._h_ack,
    Subscribe: _Connection._h_subscribe,
    Unsubscribe: _Connection._h_unsubscribe,
    Begin: _Connection._h_begin,
    Commit: _Connection._h_commit,
    Abort: _Connection._h_abort,
    Receipt: _Connection._h_receipt,
    Disconnect: _Connection._h_disconnect,
    Connect: _Connection._h_connect,
    Connected: _Connection._h_connected,
}


_CHECKS: dict[type[Event], Callable[[_Connection, Any], None]] = {
    Message: _Connection._c_message,
    Send: _Connection._c_send,
    Ack: _Connection._c_ack,
    Nack: _Connection._c_ack,
    Subscribe: _Connection._c_subscribe,
    Unsubscribe: _Connection._c_unsubscribe,
    Begin: _Connection._c_begin,
    Commit: _Connection._c_end,
    Abort: _Connection._c_end,
    Receipt: _Connection._c_receipt,
    Connect: _Connection._c_connect,
    Connected: _Connection._c_connected,
}


class ClientConnection(_Connection):
    """The client end of a STOMP connection.

    Send :class:`Connect` first; the session version is the one the
    server's CONNECTED names, which must be one the CONNECT offered.

    Args:
        grace: how many negotiated intervals of silence mean the server is
            dead. The heart-beat the client offers is the one in its
            :class:`Connect`.
        limits: the :class:`Limits` on frames and tracked state.

    .. versionadded:: 0.1
    """

    role = Role.CLIENT
    peer = Role.SERVER

    def _check_connect(self, event: Connect) -> None:
        unknown = [v for v in event.accept_version if v not in SUPPORTED_VERSIONS]
        if unknown:
            raise LocalProtocolError(f"CONNECT offers unsupported STOMP versions {unknown}")

    def _on_connect(self, event: Connect, err: type[ProtocolError]) -> None:
        # Only ever our own CONNECT: a server's CONNECT is refused by the table.
        self._check_connect(event)
        self._offered = event.accept_version or ("1.0",)
        self._client_beat = event.heart_beat

    def _on_connected(self, event: Connected, err: type[ProtocolError]) -> None:
        if event.version not in self._offered:
            raise err(
                f"CONNECTED names version {event.version[:20]!r}, which the CONNECT did not "
                f"offer ({','.join(self._offered)})"
            )
        self._start_session(event.version, self._client_beat, event.heart_beat)

    def _pre_session_version(self, event: Event) -> str:
        return "1.2"  # only CONNECT can go out, and it is never escaped


class ServerConnection(_Connection):
    """The server end of a STOMP connection.

    The first event is :class:`Connect`; answer it with :meth:`accept`'s
    :class:`Connected` (or an :class:`Error`). Until then :meth:`next_event`
    returns :data:`PAUSED`. After a :class:`RemoteProtocolError`, send
    :meth:`error_for` of it and close the transport.

    Args:
        versions: the STOMP versions this server speaks.
        heart_beat: ``(sx, sy)`` the server offers in CONNECTED by default
            (the server can send every ``sx`` ms, wants data every ``sy`` ms).
        grace: how many negotiated intervals of silence mean the client is dead.
        limits: the :class:`Limits` on frames and tracked state.

    .. versionadded:: 0.1
    """

    role = Role.SERVER
    peer = Role.CLIENT

    def __init__(
        self,
        *,
        versions: tuple[str, ...] = SUPPORTED_VERSIONS,
        heart_beat: tuple[int, int] = (0, 0),
        grace: float = 2.0,
        limits: Limits | None = None,
    ) -> None:
        super().__init__(grace=grace, limits=limits)
        self.heart_beat = heart_beat
        unknown = [v for v in versions if v not in SUPPORTED_VERSIONS]
        if unknown or not versions:
            raise ValueError(f"versions must be a non-empty subset of {SUPPORTED_VERSIONS}")
        self.versions = tuple(sorted(versions, key=float))

    def _ignoring_input(self) -> bool:
        # POLICY (stomp-notes #78, A19): nothing after DISCONNECT is read.
        return self._state is State.DISCONNECTING

    def _paused(self) -> bool:
        # Frames after CONNECT wait (buffered) until CONNECT is answered, so
        # they are parsed with the negotiated version.
        return self._state is State.CONNECTING

    def _on_connect(self, event: Connect, err: type[ProtocolError]) -> None:
        offered = event.accept_version or ("1.0",)
        common = [v for v in self.versions if v in offered]
        if not common:
            raise RemoteProtocolError(
                f"no common STOMP version: the client accepts {','.join(offered)[:60]}, "
                f"this server supports {','.join(self.versions)}",
                error_headers=(("version", ",".join(self.versions)),),
            )
        self._agreed = common[-1]
        self._client_beat = event.heart_beat

    def _check_connected(self, event: Connected) -> None:
        if event.version != self._agreed:
            raise LocalProtocolError(
                f"CONNECTED must name the negotiated version {self._agreed}, "
                f"not {event.version[:20]!r}"
            )

    def _on_connected(self, event: Connected, err: type[ProtocolError]) -> None:
        # Only ever our own CONNECTED: a client's CONNECTED is refused by the table.
        self._check_connected(event)
        self._start_session(event.version, self._client_beat, event.heart_beat)

    @property
    def negotiated_version(self) -> str | None:
        """The version the CONNECT and this server agree on (set once CONNECT is received)."""
        return self._agreed

    def accept(
        self,
        *,
        heart_beat: tuple[int, int] | None = None,
        session: str | None = None,
        server: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Connected:
        """Build the CONNECTED that accepts the received CONNECT.

        It names the negotiated version and offers ``heart_beat`` (default:
        the connection's ``heart_beat``; always ``(0, 0)`` in a 1.0 session).
        """
        if self._state is not State.CONNECTING or self._agreed is None:
            raise LocalProtocolError(f"there is no CONNECT to accept in state {self._state.name}")
        beat = self.heart_beat if heart_beat is None else heart_beat
        return Connected(
            version=self._agreed,
            heart_beat=(0, 0) if self._agreed == "1.0" else beat,
            session=session,
            server=server,
            headers=headers,
        )

    def error_for(self, exc: ProtocolError) -> Error:
        """Build the ERROR frame that answers ``exc`` (send it, then close).

        The ``message`` header is the error text made safe for any STOMP
        parser (no backslash, CR or LF; stomp-notes A28); the body holds the
        exact text as ``text/plain``. It carries ``receipt-id`` when the
        offending frame asked for a receipt, and any headers the error calls
        for (``version`` after a failed negotiation).
        """
        receipt = getattr(exc, "receipt_id", None)
        if receipt is not None and receipt != receipt.translate(_UNSAFE):
            receipt = None  # cannot be written in a pre-session ERROR
        return Error(
            message=exc.message.translate(_UNSAFE)[:200],
            receipt_id=receipt,
            content_type="text/plain",
            body=exc.message.encode(),
            headers=getattr(exc, "error_headers", ()),
        )
