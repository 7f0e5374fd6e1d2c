"""stomp-proto: a sans-IO implementation of STOMP 1.0, 1.1 and 1.2.

Only the names listed in ``__all__`` are public.
"""

from ._connection import NEED_DATA, PAUSED, ClientConnection, Limits, Sentinel, ServerConnection
from ._errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ._events import (
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
    MessageTemplate,
    Nack,
    Receipt,
    Send,
    Subscribe,
    Unsubscribe,
)
from ._frame import SUPPORTED_VERSIONS, Frame
from ._parser import FrameParser
from ._state import State

__version__ = "0.1.0.dev0"

__all__ = (
    "NEED_DATA",
    "PAUSED",
    "SUPPORTED_VERSIONS",
    "Abort",
    "Ack",
    "Begin",
    "ClientConnection",
    "Commit",
    "Connect",
    "Connected",
    "ConnectionClosed",
    "Disconnect",
    "Error",
    "Event",
    "Frame",
    "FrameParser",
    "Heartbeat",
    "Limits",
    "LocalProtocolError",
    "Message",
    "MessageTemplate",
    "Nack",
    "ProtocolError",
    "Receipt",
    "RemoteProtocolError",
    "Send",
    "Sentinel",
    "ServerConnection",
    "State",
    "Subscribe",
    "Unsubscribe",
    "__version__",
)
