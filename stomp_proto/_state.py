"""The connection state machine, as data.

One table, shared by both roles, in the manner of h11's ``_state.py``: a
connection has one conversation state, and the table maps *(who sends, the
current state, the event type)* to the next state. A ClientConnection
consults it with ``sender=CLIENT`` when its user sends and ``sender=SERVER``
when a frame arrives; a ServerConnection the other way round. Anything not
in the table is a protocol error; the connection then enters ``ERROR``.

Which frames carry which side effects (subscriptions, receipts, ack ids,
transactions) lives beside it in ``_tracking.py``; this module only knows
the order in which frames may come.

States (stomp-notes §2.1)::

    AWAITING_CONNECT -> CONNECTING -> CONNECTED -> DISCONNECTING -> CLOSED
    (any) --ERROR frame--> CLOSED          (any) --protocol error--> ERROR
"""

from __future__ import annotations

import enum

from ._events import (
    Abort,
    Ack,
    Begin,
    Commit,
    Connect,
    Connected,
    Disconnect,
    Error,
    Event,
    Message,
    Nack,
    Receipt,
    Send,
    Subscribe,
    Unsubscribe,
)

__all__ = ["MOVES", "TRANSITIONS", "Role", "State"]


class Role(enum.Enum):
    """Which end of a STOMP connection."""

    CLIENT = "CLIENT"
    SERVER = "SERVER"


class State(enum.Enum):
    """The state of a STOMP connection (the same for both ends).

    .. versionadded:: 0.1
    """

    #: Nothing exchanged yet: the client must send CONNECT or STOMP.
    AWAITING_CONNECT = "AWAITING_CONNECT"
    #: CONNECT sent; the server must answer CONNECTED or ERROR.
    CONNECTING = "CONNECTING"
    #: A session is open.
    CONNECTED = "CONNECTED"
    #: DISCONNECT with a receipt sent; waiting for that RECEIPT.
    DISCONNECTING = "DISCONNECTING"
    #: The session is over (ERROR frame, DISCONNECT done, or EOF).
    CLOSED = "CLOSED"
    #: A protocol error happened; the transport should be closed.
    ERROR = "ERROR"


CLIENT, SERVER = Role.CLIENT, Role.SERVER
AWAITING_CONNECT, CONNECTING, CONNECTED = State.AWAITING_CONNECT, State.CONNECTING, State.CONNECTED
DISCONNECTING, CLOSED, ERROR = State.DISCONNECTING, State.CLOSED, State.ERROR

_SESSION_FRAMES: tuple[type[Event], ...] = (
    Send,
    Subscribe,
    Unsubscribe,
    Ack,
    Nack,
    Begin,
    Commit,
    Abort,
)

#: (sender, state, event type) -> next state. DISCONNECT goes to
#: DISCONNECTING; without a receipt to wait for, the connection moves on to
#: CLOSED at once (see ``_connection.py``).
TRANSITIONS: dict[tuple[Role, State, type[Event]], State] = {
    (CLIENT, AWAITING_CONNECT, Connect): CONNECTING,
    **{(CLIENT, CONNECTED, kind): CONNECTED for kind in _SESSION_FRAMES},
    (CLIENT, CONNECTED, Disconnect): DISCONNECTING,
    (SERVER, CONNECTING, Connected): CONNECTED,
    (SERVER, CONNECTED, Message): CONNECTED,
    (SERVER, CONNECTED, Receipt): CONNECTED,
    # Frames the server sent before it read the DISCONNECT still arrive.
    (SERVER, DISCONNECTING, Message): DISCONNECTING,
    (SERVER, DISCONNECTING, Receipt): DISCONNECTING,
    **{
        (SERVER, state, Error): CLOSED
        for state in (AWAITING_CONNECT, CONNECTING, CONNECTED, DISCONNECTING, ERROR)
    },
}

#: The same table indexed for lookups on the hot path: (sender, state) ->
#: {event type: next state}. (Enum hashing is a Python-level call; type
#: hashing is not.)
MOVES: dict[tuple[Role, State], dict[type[Event], State]] = {
    (sender, state): {
        kind: target
        for (who, where, kind), target in TRANSITIONS.items()
        if (who, where) == (sender, state)
    }
    for sender in Role
    for state in State
}
