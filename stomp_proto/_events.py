"""Events: one class per STOMP command, plus Heartbeat and ConnectionClosed.

The same classes travel both ways, as in h11 and wsproto: a connection's
``next_event()`` returns them and its ``send()`` takes them. Each is a
frozen, slotted, keyword-only dataclass with a typed field for every header
the STOMP specification defines for that frame; all other headers (user
headers, broker extensions such as ``selector`` or ``prefetch-count``, and
later repeats of a typed header, which STOMP 1.2 keeps only as history) stay
in ``headers`` in wire order. ``content-length`` is never a field: it is
derived from ``body`` when serializing.

Each header's wire name is declared once, in its field's metadata
(``field(metadata=header("content-type"))``); the tables the serializer, the
validation and the compiled ``_from_frame`` builders use are derived from the
dataclass fields. Commands that share fields are siblings over a private base
(:class:`Ack` and :class:`Nack`; :class:`Begin`, :class:`Commit` and
:class:`Abort`), as h11's responses are over ``_ResponseBase``: no event is an
instance of another command's class.

Events built by users are validated on construction; events the parser
builds skip that step (h11's fast path), since the frame was already checked.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn

from ._errors import LocalProtocolError, RemoteProtocolError
from ._frame import SUPPORTED_VERSIONS, Frame

__all__ = [
    "HEARTBEAT",
    "Abort",
    "Ack",
    "Begin",
    "Commit",
    "Connect",
    "Connected",
    "ConnectionClosed",
    "Disconnect",
    "Error",
    "Event",
    "Heartbeat",
    "Message",
    "MessageTemplate",
    "Nack",
    "Receipt",
    "Send",
    "Subscribe",
    "Unsubscribe",
]

Headers = tuple[tuple[str, str], ...]
_new = object.__new__
_set = object.__setattr__
_SAME = object()


def header(wire: str, *, parsed_default: object = _SAME) -> dict[str, object]:
    """The metadata of a field that holds the header called ``wire``.

    Written ``field(metadata=header("content-type"))``; the field's own
    default applies when a parsed frame lacks the header, unless
    ``parsed_default`` says otherwise (a CONNECTED without ``version`` is
    STOMP 1.0). A field without a default is a header the frame requires.
    """
    if parsed_default is _SAME:
        return {"header": wire}
    return {"header": wire, "parsed_default": parsed_default}


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base class of every event.

    .. versionadded:: 0.1
    """

    #: The STOMP command this event stands for ("" for Heartbeat/ConnectionClosed).
    COMMAND: ClassVar[str] = ""
    # Derived from the fields by _derive() (the wire names are declared once,
    # in each field's metadata; see header()):
    # (wire name, attribute) of the typed string headers, in the order written.
    _FIELDS: ClassVar[tuple[tuple[str, str], ...]] = ()
    # Attributes that must be present (in a parsed frame) and non-empty.
    _REQUIRED: ClassVar[tuple[str, ...]] = ()
    # (attribute, value when a parsed frame lacks the header), per _FIELDS.
    _SLOTS: ClassVar[tuple[tuple[str, str | None], ...]] = ()
    # wire name -> attribute, plus content-length -> "" (derived from the body).
    _WIRE: ClassVar[dict[str, str]] = {}
    _HAS_BODY: ClassVar[bool] = False
    # (attribute, value) of the private fields a parsed frame leaves at their default.
    _PRIVATE: ClassVar[tuple[tuple[str, object], ...]] = ()
    _HAS_RECEIPT: ClassVar[bool] = False
    _CONVERTS: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for wire, attr in self._FIELDS:
            value = getattr(self, attr)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{self.COMMAND} {wire} must be a str, not {type(value).__name__}")
        for attr in self._REQUIRED:
            if not getattr(self, attr):
                wire = next(w for w, a in self._FIELDS if a == attr)
                raise LocalProtocolError(f"{self.COMMAND} needs a non-empty {wire} header")
        headers = getattr(self, "headers", ())
        if not isinstance(headers, tuple) or not all(
            isinstance(pair, tuple)
            and len(pair) == 2
            and isinstance(pair[0], str)
            and isinstance(pair[1], str)
            for pair in headers
        ):
            raise TypeError(f"{self.COMMAND} headers must be a tuple of (str, str) pairs")
        body = getattr(self, "body", b"")
        if not isinstance(body, bytes):
            raise TypeError(f"{self.COMMAND} body must be bytes")

    # -- conversion to and from frames ---------------------------------------

    @classmethod
    def _from_frame(cls, frame: Frame) -> Any:
        """Build the event for a parsed ``frame`` without re-validating it.

        Replaced on every concrete event class by a function compiled from the
        class's field table (see :func:`_compile_from_frame`); this generic
        version is its reference and its error path.
        """
        wire = cls._WIRE
        values: dict[str, str] = {}
        extra = []
        for name, value in frame.headers:
            attr = wire.get(name)
            if attr is None or attr in values:
                extra.append((name, value))
            else:
                values[attr] = value
        for attr in cls._REQUIRED:
            if not values.get(attr):
                cls._missing(frame, attr, values)
        event = _new(cls)
        for attr, default in cls._SLOTS:
            _set(event, attr, values.get(attr, default))
        _set(event, "headers", tuple(extra))
        for private, initial in cls._PRIVATE:
            _set(event, private, initial)
        if cls._HAS_BODY:
            _set(event, "body", frame.body)
        if cls._CONVERTS:
            event._convert(frame)
        return event

    @classmethod
    def _missing(cls, frame: Frame, attr: str, values: dict[str, str]) -> NoReturn:
        name = next(w for w, a in cls._FIELDS if a == attr)
        what = "an empty" if attr in values else "no"
        raise RemoteProtocolError(
            f"{frame.command} frame has {what} {name!r} header",
            receipt_id=values.get("receipt"),
        )

    def _convert(self, frame: Frame) -> None:
        """Set the fields that are not plain strings (overridden where needed)."""

    def _frame_headers(self, version: str) -> list[tuple[str, str]]:
        out = [
            (wire, value)
            for wire, attr in self._FIELDS
            if (value := getattr(self, attr)) is not None
        ]
        out.extend(getattr(self, "headers", ()))
        return out

    def to_frame(self, version: str = "1.2") -> Frame:
        """Return the :class:`Frame` for this event in a session of ``version``."""
        body = getattr(self, "body", b"") if self._HAS_BODY else b""
        return Frame(self.COMMAND, tuple(self._frame_headers(version)), body)

    def make_receipt(self) -> Receipt:
        """Return the RECEIPT that answers this client frame's ``receipt`` header.

        Raises:
            LocalProtocolError: the frame did not ask for a receipt.
        """
        receipt = getattr(self, "receipt", None)
        if receipt is None:
            raise LocalProtocolError(f"this {self.COMMAND or 'event'} did not ask for a receipt")
        return Receipt(receipt_id=receipt)


def _parse_heart_beat(command: str, value: str | None) -> tuple[int, int]:
    if value is None:
        return (0, 0)
    parts = value.split(",")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) < 16 for p in parts):
        raise RemoteProtocolError(
            f"{command} header heart-beat:{value[:40]!r} is not two non-negative integers"
        )
    return (int(parts[0]), int(parts[1]))


def _check_heart_beat(command: str, value: object) -> None:
    if not (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        raise LocalProtocolError(f"{command} heart_beat must be two non-negative ints")


# -- client frames -----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Connect(Event):
    """CONNECT (or its 1.1+ alias STOMP): open a session.

    Attributes:
        accept_version: the versions the client speaks; ``()`` means the
            header is absent, which means STOMP 1.0.
        host: the virtual host (required by 1.1+; stompjs omits it).
        heart_beat: ``(cx, cy)`` in milliseconds: the client can send every
            ``cx`` ms and wants to hear from the server every ``cy`` ms.
        stomp: send the frame as ``STOMP`` instead of ``CONNECT``.
    """

    COMMAND: ClassVar[str] = "CONNECT"

    accept_version: tuple[str, ...] = ("1.0", "1.1", "1.2")
    host: str | None = field(default=None, metadata=header("host"))
    login: str | None = field(default=None, metadata=header("login"))
    passcode: str | None = field(default=None, metadata=header("passcode"))
    heart_beat: tuple[int, int] = (0, 0)
    stomp: bool = False
    headers: Headers = ()

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        if not isinstance(self.accept_version, tuple) or not all(
            isinstance(v, str) for v in self.accept_version
        ):
            raise TypeError("CONNECT accept_version must be a tuple of str")
        _check_heart_beat("CONNECT", self.heart_beat)

    def _convert(self, frame: Frame) -> None:
        extra = []
        accept = heart = None
        for name, value in self.headers:
            if name == "accept-version" and accept is None:
                accept = value
            elif name == "heart-beat" and heart is None:
                heart = value
            else:
                extra.append((name, value))
        _set(self, "headers", tuple(extra))
        _set(
            self,
            "accept_version",
            () if accept is None else tuple(v.strip() for v in accept.split(",")),
        )
        _set(self, "heart_beat", _parse_heart_beat(frame.command, heart))
        _set(self, "stomp", frame.command == "STOMP")

    def _frame_headers(self, version: str) -> list[tuple[str, str]]:
        out = []
        if self.accept_version:
            out.append(("accept-version", ",".join(self.accept_version)))
        out.extend(Event._frame_headers(self, version))
        if self.heart_beat != (0, 0):
            out.append(("heart-beat", f"{self.heart_beat[0]},{self.heart_beat[1]}"))
        return out

    def to_frame(self, version: str = "1.2") -> Frame:
        return Frame("STOMP" if self.stomp else "CONNECT", tuple(self._frame_headers(version)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Send(Event):
    """SEND: publish ``body`` to ``destination``.

    Attributes:
        content_length: write a ``content-length`` header (default). False
            leaves it out, which ActiveMQ takes as a text message; refused
            for a body containing NUL.
    """

    COMMAND: ClassVar[str] = "SEND"

    destination: str = field(metadata=header("destination"))
    body: bytes = b""
    content_type: str | None = field(default=None, metadata=header("content-type"))
    transaction: str | None = field(default=None, metadata=header("transaction"))
    receipt: str | None = field(default=None, metadata=header("receipt"))
    headers: Headers = ()
    content_length: bool = field(default=True, compare=False)

    def _convert(self, frame: Frame) -> None:
        _set(self, "content_length", True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe(Event):
    """SUBSCRIBE to ``destination`` as subscription ``id``.

    ``ack`` is ``"auto"``, ``"client"`` or ``"client-individual"`` (1.1+).
    ``id`` is optional only in STOMP 1.0.
    """

    COMMAND: ClassVar[str] = "SUBSCRIBE"

    destination: str = field(metadata=header("destination"))
    id: str | None = field(default=None, metadata=header("id"))
    ack: str = field(default="auto", metadata=header("ack"))
    receipt: str | None = field(default=None, metadata=header("receipt"))
    headers: Headers = ()

    @property
    def subscription_key(self) -> str:
        """The key the subscription is known by: its ``id``, else its ``destination``.

        Only STOMP 1.0 allows a SUBSCRIBE without ``id``; such a subscription
        is then known by its destination (what :attr:`ClientConnection.subscriptions
        <stomp_proto.ClientConnection.subscriptions>` is keyed by, and what
        :meth:`~stomp_proto.ClientConnection.subscription_for` returns).

        .. versionadded:: 0.2
        """
        return self.destination if self.id is None else self.id


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribe(Event):
    """UNSUBSCRIBE subscription ``id`` (STOMP 1.0 also allows ``destination``)."""

    COMMAND: ClassVar[str] = "UNSUBSCRIBE"

    id: str | None = field(default=None, metadata=header("id"))
    destination: str | None = field(default=None, metadata=header("destination"))
    receipt: str | None = field(default=None, metadata=header("receipt"))
    headers: Headers = ()

    @property
    def subscription_key(self) -> str | None:
        """The subscription this ends: its ``id``, else its ``destination`` (STOMP 1.0).

        None when the frame has neither. 1.1 and 1.2 require ``id``; only a
        1.0 session looks at ``destination``.

        .. versionadded:: 0.2
        """
        return self.destination if self.id is None else self.id


@dataclass(frozen=True, slots=True, kw_only=True)
class _AckBase(Event):
    """What ACK and NACK share: how they identify a message (not public).

    :class:`Ack` and :class:`Nack` are siblings over this base, as h11's
    Response and InformationalResponse are over ``_ResponseBase``, so that
    ``isinstance(event, Ack)`` is never true of a NACK.
    """

    id: str | None = field(default=None, metadata=header("id"))
    message_id: str | None = field(default=None, metadata=header("message-id"))
    subscription: str | None = field(default=None, metadata=header("subscription"))
    transaction: str | None = field(default=None, metadata=header("transaction"))
    receipt: str | None = field(default=None, metadata=header("receipt"))
    headers: Headers = ()
    #: On a connection that received this frame: the ack keys (see
    #: :meth:`~stomp_proto.ServerConnection.ack_key`) of the messages it settled,
    #: in delivery order: several for a cumulative ``client`` ACK. In a
    #: transaction, () until the COMMIT is handed out, then what it settled at
    #: COMMIT. Not part of equality.
    settles: tuple[str | tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    def _convert(self, frame: Frame) -> None:
        _set(self, "settles", ())

    def _frame_headers(self, version: str) -> list[tuple[str, str]]:
        if version == "1.2":
            ident = [("id", self.id)]
        else:
            ident = [("message-id", self.message_id)]
            if self.subscription is not None:
                ident.append(("subscription", self.subscription))
        missing = [name for name, value in ident if value is None and name != "subscription"]
        if version == "1.1" and self.subscription is None:
            missing.append("subscription")
        if missing:
            raise LocalProtocolError(
                f"{self.COMMAND} in STOMP {version} needs {' and '.join(missing)}"
            )
        out = [(name, value) for name, value in ident if value is not None]
        if self.transaction is not None:
            out.append(("transaction", self.transaction))
        if self.receipt is not None:
            out.append(("receipt", self.receipt))
        out.extend(self.headers)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack(_AckBase):
    """ACK a message.

    STOMP identifies the message differently per version: 1.2 by ``id`` (the
    MESSAGE's ``ack`` header), 1.1 by ``message_id`` and ``subscription``,
    1.0 by ``message_id``. :meth:`Message.make_ack` fills all three and the
    connection writes the ones its version needs.

    Attributes:
        settles: on the connection that received it, the ack keys of the
            messages it settled (several for a cumulative ``client`` ACK). In
            a transaction it stays ``()`` until the COMMIT is handed out, and
            then holds what it settled at COMMIT (see :attr:`Commit.settles`).

    .. versionchanged:: 0.2
       :class:`Nack` is no longer a subclass; ``settles``.
    """

    COMMAND: ClassVar[str] = "ACK"


@dataclass(frozen=True, slots=True, kw_only=True)
class Nack(_AckBase):
    """NACK a message (STOMP 1.1+); identified like :class:`Ack`.

    .. versionchanged:: 0.2
       No longer a subclass of :class:`Ack` (``isinstance(event, Ack)`` is
       false for a NACK; test ``isinstance(event, (Ack, Nack))`` for both).
    """

    COMMAND: ClassVar[str] = "NACK"


@dataclass(frozen=True, slots=True, kw_only=True)
class _TransactionBase(Event):
    """What BEGIN, COMMIT and ABORT share (not public); they are siblings over it."""

    transaction: str = field(metadata=header("transaction"))
    receipt: str | None = field(default=None, metadata=header("receipt"))
    headers: Headers = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Begin(_TransactionBase):
    """BEGIN transaction ``transaction``.

    .. versionchanged:: 0.2
       :class:`Commit` and :class:`Abort` are no longer subclasses.
    """

    COMMAND: ClassVar[str] = "BEGIN"


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit(_TransactionBase):
    """COMMIT transaction ``transaction``.

    Attributes:
        settles: on the connection that received it, the ack keys of the
            messages its transaction's ACKs and NACKs settled, in the order
            they were settled (not part of equality).

    .. versionchanged:: 0.2
       No longer a subclass of :class:`Begin`; ``settles``.
    """

    COMMAND: ClassVar[str] = "COMMIT"

    settles: tuple[str | tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    def _convert(self, frame: Frame) -> None:
        _set(self, "settles", ())


@dataclass(frozen=True, slots=True, kw_only=True)
class Abort(_TransactionBase):
    """ABORT transaction ``transaction``.

    .. versionchanged:: 0.2
       No longer a subclass of :class:`Begin`.
    """

    COMMAND: ClassVar[str] = "ABORT"


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnect(Event):
    """DISCONNECT, gracefully when ``receipt`` is set (wait for its RECEIPT)."""

    COMMAND: ClassVar[str] = "DISCONNECT"

    receipt: str | None = field(default=None, metadata=header("receipt"))
    headers: Headers = ()


# -- server frames -----------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected(Event):
    """CONNECTED: the server accepted the session in ``version``.

    ``heart_beat`` is ``(sx, sy)``: the server can send every ``sx`` ms and
    wants to hear from the client every ``sy`` ms.
    """

    COMMAND: ClassVar[str] = "CONNECTED"

    # A CONNECTED without version comes from a STOMP 1.0 server.
    version: str = field(default="1.2", metadata=header("version", parsed_default="1.0"))
    heart_beat: tuple[int, int] = (0, 0)
    session: str | None = field(default=None, metadata=header("session"))
    server: str | None = field(default=None, metadata=header("server"))
    headers: Headers = ()

    def __post_init__(self) -> None:
        Event.__post_init__(self)
        _check_heart_beat("CONNECTED", self.heart_beat)

    def _convert(self, frame: Frame) -> None:
        extra = []
        heart = None
        for name, value in self.headers:
            if name == "heart-beat" and heart is None:
                heart = value
            else:
                extra.append((name, value))
        _set(self, "headers", tuple(extra))
        _set(self, "heart_beat", _parse_heart_beat("CONNECTED", heart))

    def _frame_headers(self, version: str) -> list[tuple[str, str]]:
        out = Event._frame_headers(self, version)
        if self.heart_beat != (0, 0):
            out.append(("heart-beat", f"{self.heart_beat[0]},{self.heart_beat[1]}"))
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Message(Event):
    """MESSAGE: a message delivered to subscription ``subscription``.

    ``ack`` (1.2) is the id an ACK or NACK must echo; present for client and
    client-individual subscriptions.
    """

    COMMAND: ClassVar[str] = "MESSAGE"

    destination: str = field(metadata=header("destination"))
    message_id: str = field(metadata=header("message-id"))
    subscription: str | None = field(default=None, metadata=header("subscription"))
    ack: str | None = field(default=None, metadata=header("ack"))
    content_type: str | None = field(default=None, metadata=header("content-type"))
    body: bytes = b""
    headers: Headers = ()
    # The template this delivery was made from (MessageTemplate.message), whose
    # encoding send() reuses; None for every other Message.
    _template: MessageTemplate | None = field(default=None, init=False, compare=False, repr=False)

    def make_ack(self, *, transaction: str | None = None, receipt: str | None = None) -> Ack:
        """Return the ACK for this message (any version's identification)."""
        return Ack(
            id=self.ack,
            message_id=self.message_id,
            subscription=self.subscription,
            transaction=transaction,
            receipt=receipt,
        )

    def make_nack(self, *, transaction: str | None = None, receipt: str | None = None) -> Nack:
        """Return the NACK for this message (STOMP 1.1+)."""
        return Nack(
            id=self.ack,
            message_id=self.message_id,
            subscription=self.subscription,
            transaction=transaction,
            receipt=receipt,
        )

    def text(self, default_charset: str = "utf-8") -> str:
        """The body decoded per ``content-type``'s charset (UTF-8 by default)."""
        return self.to_frame().text(default_charset)


def _plain_pairs(headers: tuple[Any, ...]) -> bool:
    for pair in headers:
        if not (
            type(pair) is tuple and len(pair) == 2 and type(pair[0]) is str and type(pair[1]) is str
        ):
            return False
    return True


def _plain_lines(text: str, lines: int) -> bool:
    """Whether ``text``, ``lines`` header lines each ending in LF, is the same
    in every version: nothing to escape or refuse (Frame.serialize's fast
    path: one colon per line, no backslash, CR or LF in a value, no empty name)."""
    return not (
        "\\" in text
        or "\r" in text
        or text.count(":") != lines
        or text.count("\n") != lines
        or text.startswith(":")
        or "\n:" in text
    )


class MessageTemplate:
    """What every delivery of one message shares, checked once and encoded
    once per STOMP version: a broker's way to write one message to many
    subscriptions, or a queue message to its consumer, without building and
    serializing the whole frame each time.

    The arguments are :class:`Message`'s, less the delivery's own
    ``subscription`` and ``ack``, and are validated as :class:`Message`
    validates them. :meth:`message` returns the :class:`Message` of one
    delivery; a connection's ``send()`` writes it as the header lines encoded
    the first time, with the delivery's ``subscription`` and ``ack`` lines in
    their place: the same bytes as ``message.to_frame(version).serialize(version)``.
    A Message changed since (``dataclasses.replace`` of a shared field), or
    whose ``subscription`` or ``ack`` needs escaping, is serialized in full.

    >>> from stomp_proto import Message, MessageTemplate
    >>> template = MessageTemplate(destination="/topic/a", message_id="m-1", body=b"hi")
    >>> message = template.message(subscription="0")
    >>> message == Message(destination="/topic/a", message_id="m-1", subscription="0", body=b"hi")
    True
    >>> message.to_frame().serialize()
    b'MESSAGE\\ndestination:/topic/a\\nmessage-id:m-1\\nsubscription:0\\ncontent-length:2\\n\\nhi\\x00'

    .. versionadded:: 0.2
    """

    __slots__ = ("_encoded", "body", "content_type", "destination", "headers", "message_id")

    def __init__(
        self,
        *,
        destination: str,
        message_id: str,
        content_type: str | None = None,
        body: bytes = b"",
        headers: Headers = (),
    ) -> None:
        if not (
            type(destination) is str
            and type(message_id) is str
            and destination
            and message_id
            and (content_type is None or type(content_type) is str)
            and type(body) is bytes
            and type(headers) is tuple
            and _plain_pairs(headers)
        ):
            # Not the plain types: Message says what is wrong (or accepts subclasses).
            Message(
                destination=destination,
                message_id=message_id,
                content_type=content_type,
                body=body,
                headers=headers,
            )
        self.destination = destination
        self.message_id = message_id
        self.content_type = content_type
        self.body = body
        self.headers = headers
        # version -> (the bytes up to the message-id line, the header lines
        # after the delivery's own and the blank line).
        self._encoded: dict[str, tuple[bytes, bytes]] = {}

    def message(self, *, subscription: str | None = None, ack: str | None = None) -> Message:
        """The :class:`Message` that delivers this message to ``subscription``."""
        if not (subscription is None or type(subscription) is str) or not (
            ack is None or type(ack) is str
        ):
            raise TypeError("MESSAGE subscription and ack must be str or None")
        event = _new(Message)
        _set(event, "destination", self.destination)
        _set(event, "message_id", self.message_id)
        _set(event, "subscription", subscription)
        _set(event, "ack", ack)
        _set(event, "content_type", self.content_type)
        _set(event, "body", self.body)
        _set(event, "headers", self.headers)
        _set(event, "_template", self)
        return event

    def _encode(self, message: Message, version: str) -> bytes | None:
        """The wire bytes of ``message`` (one of :meth:`message`'s), or None
        when only the general serializer can say (and refuse).

        The first delivery in a version is serialized in full, and its bytes
        cut around its ``subscription`` and ``ack`` lines for the next ones.
        """
        if (
            message.body is not self.body
            or message.headers is not self.headers
            or message.destination is not self.destination
            or message.message_id is not self.message_id
            or message.content_type is not self.content_type
        ):
            return None
        line = ""
        lines = 0
        if message.subscription is not None:
            line = "subscription:" + message.subscription + "\n"
            lines = 1
        if message.ack is not None:
            line += "ack:" + message.ack + "\n"
            lines += 1
        if lines and not _plain_lines(line, lines):
            return None  # a value to escape, or to refuse
        own = line.encode()
        parts = self._encoded.get(version)
        if parts is None:
            parts = self._plain()
            if parts is not None:
                self._encoded = dict.fromkeys(SUPPORTED_VERSIONS, parts)
        if parts is not None:
            return b"".join((parts[0], own, parts[1], self.body, b"\0"))
        data = message.to_frame(version).serialize(version)
        # MESSAGE, destination and message-id come first, a line each (an
        # encoded header line has no LF inside), then this delivery's lines.
        at = data.index(b"\n", data.index(b"\n", data.index(b"\n") + 1) + 1) + 1
        self._encoded[version] = (data[:at], data[at + len(own) : len(data) - len(self.body) - 1])
        return data

    def _plain(self) -> tuple[bytes, bytes] | None:
        """The encoding when nothing needs escaping or checking, the same in
        every version (Frame.serialize's fast path); None otherwise."""
        front = "destination:" + self.destination + "\nmessage-id:" + self.message_id + "\n"
        rest = "".join([name + ":" + value + "\n" for name, value in self.headers])
        lines = 2 + len(self.headers)
        if self.content_type is not None:
            rest = "content-type:" + self.content_type + "\n" + rest
            lines += 1
        text = front + rest
        if not _plain_lines(text, lines) or "\ncontent-length:" in text:
            return None  # to escape, refuse, or check against the body
        if self.body:
            rest += "content-length:" + str(len(self.body)) + "\n"
        return ("MESSAGE\n" + front).encode(), (rest + "\n").encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt(Event):
    """RECEIPT for the client frame whose ``receipt`` header was ``receipt_id``.

    Attributes:
        confirms: on a :class:`ClientConnection`, the event this RECEIPT
            confirms (set when received; not part of equality).
    """

    COMMAND: ClassVar[str] = "RECEIPT"

    receipt_id: str = field(metadata=header("receipt-id"))
    headers: Headers = ()
    confirms: Event | None = field(default=None, compare=False, repr=False)

    def _convert(self, frame: Frame) -> None:
        _set(self, "confirms", None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Error(Event):
    """ERROR: the server reports a failure and closes the connection."""

    COMMAND: ClassVar[str] = "ERROR"

    message: str | None = field(default=None, metadata=header("message"))
    receipt_id: str | None = field(default=None, metadata=header("receipt-id"))
    content_type: str | None = field(default=None, metadata=header("content-type"))
    body: bytes = b""
    headers: Headers = ()


# -- not frames ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat(Event):
    """An EOL between frames: a heart-beat (or just liveness) from the peer."""

    def to_frame(self, version: str = "1.2") -> Frame:
        raise LocalProtocolError("a heart-beat is not a frame")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed(Event):
    """The connection is over: the peer closed the transport (EOF), or the
    session ended (ERROR, DISCONNECT done). Close the transport.

    Sending it to a connection records that we are closing; it returns ``b""``.
    """

    def to_frame(self, version: str = "1.2") -> Frame:
        raise LocalProtocolError("ConnectionClosed is not a frame")


_FROM_FRAME = """\
def from_frame(frame):
    {init} = _M
    extra = None
    for name, value in frame.headers:
{branches}
        if extra is None:
            extra = []
        extra.append((name, value))
    if {missing}:
        return generic(frame)  # raises, naming the missing header
    event = new(cls)
{sets}
    set_headers(event, () if extra is None else tuple(extra))
{body}{convert}    return event
"""


def _derive(cls: type[Event]) -> None:
    """Set the class's field tables from its dataclass fields (see :class:`Event`)."""
    fields = dataclasses.fields(cls)
    typed = [f for f in fields if "header" in f.metadata]
    required = [f for f in typed if f.default is dataclasses.MISSING]
    cls._FIELDS = tuple((f.metadata["header"], f.name) for f in typed)
    cls._REQUIRED = tuple(f.name for f in required)
    cls._SLOTS = tuple(
        (f.name, f.metadata.get("parsed_default", None if f in required else f.default))
        for f in typed
    )
    wire = dict(cls._FIELDS)
    wire["content-length"] = ""  # derived from the body; never kept
    cls._WIRE = wire
    cls._HAS_RECEIPT = "receipt" in wire
    cls._HAS_BODY = any(f.name == "body" for f in fields)
    cls._PRIVATE = tuple((f.name, f.default) for f in fields if not f.init)
    cls._CONVERTS = cls._convert is not Event._convert


def _compile_from_frame(cls: type[Event]) -> None:
    """Give ``cls`` a straight-line ``_from_frame``, as dataclasses and namedtuple
    generate their methods: one pass over the headers with a local variable per
    typed header (first occurrence wins; later ones stay in ``headers``), then
    one slot store per field. Twice as fast as the generic loop, and this is
    the per-MESSAGE cost of a ClientConnection."""
    fields = [*cls._FIELDS, ("content-length", "_length")]
    names = [attr for _, attr in fields]
    branches = []
    for index, (wire, attr) in enumerate(fields):
        keyword = "if" if index == 0 else "elif"
        branches.append(
            f"        {keyword} name == {wire!r}:\n"
            f"            if {attr} is _M:\n"
            f"                {attr} = value\n"
            f"                continue"
        )
    missing = " or ".join(f"{attr} is _M or not {attr}" for attr in cls._REQUIRED) or "False"
    sets = []
    namespace: dict[str, Any] = {
        "_M": _MISSING,
        "new": _new,
        "cls": cls,
        "generic": Event._from_frame.__func__.__get__(cls),  # type: ignore[attr-defined]
        "set_headers": getattr(cls, "headers").__set__,  # noqa: B009
    }
    for attr, default in cls._SLOTS:
        namespace[f"set_{attr}"] = getattr(cls, attr).__set__
        namespace[f"default_{attr}"] = default
        sets.append(f"    set_{attr}(event, default_{attr} if {attr} is _M else {attr})")
    for private, initial in cls._PRIVATE:
        namespace[f"set_{private}"] = getattr(cls, private).__set__
        namespace[f"default_{private}"] = initial
        sets.append(f"    set_{private}(event, default_{private})")
    body = ""
    if cls._HAS_BODY:
        namespace["set_body"] = getattr(cls, "body").__set__  # noqa: B009
        body = "    set_body(event, frame.body)\n"
    convert = "    event._convert(frame)\n" if cls._CONVERTS else ""
    source = _FROM_FRAME.format(
        init=" = ".join(names),
        branches="\n".join(branches),
        missing=missing,
        sets="\n".join(sets),
        body=body,
        convert=convert,
    )
    exec(compile(source, f"<stomp_proto {cls.__name__}._from_frame>", "exec"), namespace)
    cls._from_frame = staticmethod(namespace["from_frame"])  # type: ignore[method-assign]


_MISSING = object()

#: The event class of every STOMP frame, one per command (STOMP is Connect).
FRAME_EVENTS: tuple[type[Event], ...] = (
    Connect,
    Connected,
    Send,
    Subscribe,
    Unsubscribe,
    Ack,
    Nack,
    Begin,
    Commit,
    Abort,
    Disconnect,
    Message,
    Receipt,
    Error,
)

for _cls in FRAME_EVENTS:
    _derive(_cls)
    _compile_from_frame(_cls)

#: The one Heartbeat instance the parser hands out.
HEARTBEAT = Heartbeat()
