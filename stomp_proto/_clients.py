"""What every client of stomp-proto shares, whatever its I/O: errors, reconnect policy, types.

The asyncio/trio client (``stomp_proto.asyncio``, ``stomp_proto.trio``) and
the blocking client (``stomp_proto.blocking``) raise the same exceptions and
take the same :class:`ReconnectPolicy`, so code (and an ``except`` clause)
that works with one works with the other. The argument types both accept
(:data:`AckMode`, :data:`HeadersArg`) and their checks live here too, so the
two clients refuse the same mistakes with the same words. Standard library
only: the blocking client must not need anyio.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._events import Error, Message
from ._frame import SUPPORTED_VERSIONS

__all__ = [
    "ACK_MODES",
    "AckMode",
    "ConnectionLost",
    "HeadersArg",
    "MessageView",
    "ReconnectPolicy",
    "StompError",
    "check_ack_mode",
    "check_versions",
    "header_pairs",
]

#: The acknowledgement modes of SUBSCRIBE (STOMP 1.2 section "SUBSCRIBE ack Header").
AckMode = Literal["auto", "client", "client-individual"]
ACK_MODES: tuple[AckMode, ...] = ("auto", "client", "client-individual")
#: Extra headers: a mapping, or ``(name, value)`` pairs (for repeated names).
HeadersArg = Mapping[str, str] | Iterable[tuple[str, str]] | None


def header_pairs(headers: HeadersArg) -> tuple[tuple[str, str], ...]:
    """``headers`` as the core's tuple of pairs (a mapping in its order).

    A mapping's keys and values are converted with ``str()``, as stomp.py does
    (``{"priority": 9}`` sends ``priority:9``; ``mypy`` still flags it); pairs
    are taken as they are, and the core refuses any that is not ``(str, str)``.
    """
    if headers is None:
        return ()
    if isinstance(headers, Mapping):
        return tuple((str(k), str(v)) for k, v in headers.items())
    if isinstance(headers, (str, bytes)):
        raise TypeError(
            f"headers must be a mapping or (name, value) pairs, not {type(headers).__name__}"
        )
    return tuple(headers)


def check_ack_mode(ack: str) -> None:
    """Refuse an ``ack`` SUBSCRIBE does not define, naming the three that it does."""
    if ack not in ACK_MODES:
        raise ValueError(f"ack must be 'auto', 'client' or 'client-individual', not {ack!r}")


def check_versions(versions: Sequence[str]) -> tuple[str, ...]:
    """``versions`` as a tuple, refusing a bare str and versions STOMP does not have.

    ``()`` stays allowed: a CONNECT without ``accept-version``, which is STOMP 1.0.
    """
    if isinstance(versions, str):
        raise TypeError(f"versions must be a sequence such as ({versions!r},), not a str")
    offered = tuple(versions)
    if any(v not in SUPPORTED_VERSIONS for v in offered):
        raise ValueError(
            f"versions must be some of {', '.join(SUPPORTED_VERSIONS)}, not {offered!r}"
        )
    return offered


class StompError(Exception):
    """The server sent an ERROR frame; ``error`` is the :class:`~stomp_proto.Error` event.

    Raised when the login is refused, and by every pending or later call once
    an ERROR has ended the session (STOMP 1.2: the server closes the
    connection after ERROR).
    """

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


class MessageView:
    """What both clients' received messages show of their MESSAGE (their
    ``ReceivedMessage`` adds ``ack()`` and ``nack()``, blocking or awaitable).

    Attributes:
        event: the :class:`~stomp_proto.Message` event as parsed.
    """

    __slots__ = ("event",)

    def __init__(self, event: Message) -> None:
        self.event = event

    @property
    def body(self) -> bytes:
        """The body, as bytes."""
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

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name``, or ``default`` when it is absent."""
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def text(self) -> str:
        """The body decoded per ``content-type``'s charset (UTF-8 by default)."""
        return self.event.text()

    def json(self) -> Any:
        """The body parsed as JSON (:func:`json.loads` of :meth:`text`)."""
        return json.loads(self.text())

    def __repr__(self) -> str:
        return f"<ReceivedMessage {self.event.message_id!r} on {self.event.destination!r}>"
