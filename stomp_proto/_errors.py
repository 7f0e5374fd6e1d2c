"""The exceptions stomp-proto raises.

Two kinds of misbehaviour are kept apart, as h11 and wsproto do:

* :class:`LocalProtocolError`: *our caller* asked for something the protocol
  forbids (sending a frame in the wrong state, a header value the negotiated
  version cannot represent, ...). It is a bug in the calling program.
* :class:`RemoteProtocolError`: *the peer* sent something illegal. Every
  malformed input ends in this exception and nothing else.

After either, the connection object that raised is in its ``ERROR`` state.
A remote error knows what the ERROR frame answering it should say, so that a
server can tell the client why it is being disconnected (STOMP 1.2: "the
server MUST close the connection" after ERROR).
"""

from __future__ import annotations

import weakref

__all__ = ["LocalProtocolError", "ProtocolError", "RemoteProtocolError", "StickyError"]


class ProtocolError(Exception):
    """Base class of every protocol violation stomp-proto reports.

    Attributes:
        message: a one-line description naming the offending command, header
            or byte offset.
        receipt_id: the ``receipt`` header of the offending frame, when it had
            one and it could be read (an ERROR answering a remote error then
            carries ``receipt-id``).
        error_headers: extra headers the answering ERROR frame should carry,
            e.g. ``version`` after a failed version negotiation.
    """

    def __init__(
        self,
        message: str,
        *,
        receipt_id: str | None = None,
        error_headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.receipt_id = receipt_id
        self.error_headers = error_headers


class LocalProtocolError(ProtocolError):
    """The local program asked for something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class StickyError:
    """The error a parser or connection failed with, kept to be raised again.

    Holding the exception itself would make a reference cycle: its traceback
    holds the frames that raised it, and they hold the object that failed. A
    closed session would then stay in memory, receive buffer included, until
    the cycle collector ran. So the error is held weakly, with what it takes
    to build it again: while anyone still has the exception, :meth:`get`
    returns that very object; once nobody has, a new one with the same
    message, receipt id and ERROR headers (nobody can tell the difference).
    """

    __slots__ = ("_error_headers", "_kind", "_message", "_receipt_id", "_ref")

    def __init__(self, exc: ProtocolError) -> None:
        self._kind = type(exc)
        self._message = exc.message
        self._receipt_id = exc.receipt_id
        self._error_headers = exc.error_headers
        self._ref = weakref.ref(exc)

    def get(self) -> ProtocolError:
        """The error, to raise again."""
        exc = self._ref()
        if exc is None:
            exc = self._kind(
                self._message, receipt_id=self._receipt_id, error_headers=self._error_headers
            )
            self._ref = weakref.ref(exc)
        return exc
