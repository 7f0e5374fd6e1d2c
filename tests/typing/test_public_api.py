"""Typing regression tests for the public API (checked by ``mypy --strict``).

Each ``assert_type`` pins the static type a user of :mod:`stomp_proto` sees; a
change in an annotation makes mypy fail here, as h2's ``tests/typing`` does.
The checks sit in ``test_*`` functions that run a small real scenario, so that
pytest also executes them and every asserted value really exists at run time.
mypy checks this file as Python 3.10 (see ``[tool.mypy]``), where
``assert_type`` comes from ``typing_extensions``' stubs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Literal

if sys.version_info >= (3, 11):
    from typing import assert_type
elif TYPE_CHECKING:
    from typing_extensions import assert_type
else:  # Python 3.10 at run time: only mypy needs the real one

    def assert_type(value: Any, typ: Any, /) -> Any:
        return value


import stomp_proto
from stomp_proto import (
    NEED_DATA,
    PAUSED,
    SUPPORTED_VERSIONS,
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
    Frame,
    FrameParser,
    Heartbeat,
    Limits,
    LocalProtocolError,
    Message,
    Nack,
    ProtocolError,
    Receipt,
    RemoteProtocolError,
    Send,
    Sentinel,
    ServerConnection,
    State,
    Subscribe,
    Unsubscribe,
)


def _handshake(
    heart_beat: tuple[int, int] = (0, 0),
) -> tuple[ClientConnection, ServerConnection]:
    client = ClientConnection()
    server = ServerConnection(heart_beat=heart_beat)
    server.receive_data(client.send(Connect(host="typing", heart_beat=heart_beat), now=0.0))
    connect = server.next_event()
    assert isinstance(connect, Connect)
    client.receive_data(server.send(server.accept(), now=0.0), now=0.0)
    assert isinstance(client.next_event(), Connected)
    return client, server


def _next(conn: ClientConnection | ServerConnection) -> Event:
    event = conn.next_event()
    assert_type(event, Event | Sentinel)
    assert isinstance(event, Event), event
    return event


def test_module_constants() -> None:
    assert_type(SUPPORTED_VERSIONS, tuple[str, ...])
    assert_type(stomp_proto.__version__, str)
    assert all(hasattr(stomp_proto, name) for name in stomp_proto.__all__)
    assert_type(NEED_DATA, Literal[Sentinel.NEED_DATA])
    assert_type(PAUSED, Literal[Sentinel.PAUSED])
    assert NEED_DATA is Sentinel.NEED_DATA
    assert PAUSED is Sentinel.PAUSED
    assert State.CONNECTED.name == "CONNECTED"


def test_narrowing_next_event() -> None:
    client, _ = _handshake()
    event = client.next_event()
    assert_type(event, Event | Sentinel)
    # Comparing with the enum members narrows the union; so does isinstance.
    # (Comparing with the NEED_DATA / PAUSED aliases does not narrow yet.)
    if event is Sentinel.NEED_DATA or event is Sentinel.PAUSED:
        assert event is NEED_DATA
    else:
        assert_type(event, Event)
        raise AssertionError(f"unexpected {event!r}")
    client.receive_data(b"\n")
    event = client.next_event()
    if isinstance(event, Sentinel):
        raise AssertionError(f"unexpected {event!r}")
    assert_type(event, Event)
    assert isinstance(event, Heartbeat)


def test_frame_and_parser() -> None:
    parser = FrameParser("1.2", max_header_size=1024, max_headers=10, max_body_size=1024)
    assert_type(parser.version, str)
    assert_type(parser.buffered, int)
    assert_type(parser.at_eof, bool)
    items = parser.feed(b"\nSEND\ndestination:/q\ndestination:/r\ncontent-length:2\n\nhi\0")
    assert_type(items, list[Frame | Heartbeat])
    heartbeat, frame = items
    assert isinstance(heartbeat, Heartbeat)
    assert isinstance(frame, Frame)
    assert_type(frame.command, str)
    assert_type(frame.headers, tuple[tuple[str, str], ...])
    assert_type(frame.body, bytes)
    assert_type(frame.get("destination"), str | None)
    assert_type(frame.get("missing", "default"), str | None)
    assert_type(frame.get_all("destination"), list[str])
    assert_type(frame.text(), str)
    assert frame.get("destination") == "/q"
    assert frame.get_all("destination") == ["/q", "/r"]
    assert_type(frame.serialize("1.1", content_length=False), bytes)
    parser.receive_data(b"")
    assert_type(parser.next_frame(), Frame | Heartbeat | None)
    assert parser.at_eof


def test_events_and_helpers() -> None:
    message = Message(destination="/q", message_id="m1", subscription="0", ack="a1", body=b"{}")
    assert_type(message.destination, str)
    assert_type(message.message_id, str)
    assert_type(message.subscription, str | None)
    assert_type(message.ack, str | None)
    assert_type(message.body, bytes)
    assert_type(message.headers, tuple[tuple[str, str], ...])
    assert_type(message.text(), str)
    assert_type(message.to_frame("1.2"), Frame)
    ack = message.make_ack(transaction="t", receipt="r")
    assert_type(ack, Ack)
    assert_type(message.make_nack(), Nack)
    assert_type(ack.id, str | None)
    assert ack.id == "a1"

    subscribe = Subscribe(destination="/q", id="0", ack="client", receipt="r1")
    assert_type(subscribe.make_receipt(), Receipt)
    assert_type(subscribe.ack, str)
    receipt = subscribe.make_receipt()
    assert_type(receipt.receipt_id, str)
    assert_type(receipt.confirms, Event | None)

    connect = Connect(accept_version=("1.2",), host="h", heart_beat=(1, 2))
    assert_type(connect.accept_version, tuple[str, ...])
    assert_type(connect.heart_beat, tuple[int, int])
    assert_type(connect.stomp, bool)
    connected = Connected(version="1.2")
    assert_type(connected.version, str)
    assert_type(connected.heart_beat, tuple[int, int])
    error = Error(message="boom", receipt_id="r")
    assert_type(error.message, str | None)
    assert_type(Send(destination="/q").content_length, bool)
    assert_type(Begin(transaction="t").transaction, str)
    assert_type(Commit(transaction="t"), Commit)
    assert_type(Abort(transaction="t"), Abort)
    assert_type(Unsubscribe(id="0").id, str | None)
    assert_type(Disconnect(receipt="bye").receipt, str | None)
    assert_type(Heartbeat(), Heartbeat)
    assert_type(ConnectionClosed(), ConnectionClosed)
    assert_type(Event.COMMAND, str)


def test_client_connection() -> None:
    client, server = _handshake()
    assert_type(client.state, State)
    assert_type(client.version, str | None)
    assert_type(client.heartbeat_intervals, tuple[int, int])
    assert_type(client.grace, float)
    assert_type(client.limits, Limits)
    data = client.send(Subscribe(destination="/q", id="0", ack="client", receipt="r1"))
    assert_type(data, bytes)
    assert_type(client.subscriptions, dict[str, str])
    assert_type(client.transactions, frozenset[str])
    assert_type(client.pending_receipts, dict[str, Event])
    assert_type(client.unacknowledged, dict[str, list[object]])
    server.receive_data(data)
    subscribe = _next(server)
    assert isinstance(subscribe, Subscribe)
    client.receive_data(
        server.send(subscribe.make_receipt())
        + server.send(Message(destination="/q", message_id="m1", subscription="0", ack="a1"))
    )
    receipt = _next(client)
    assert isinstance(receipt, Receipt)
    assert_type(receipt.confirms, Event | None)
    assert receipt.confirms == subscribe
    message = _next(client)
    assert isinstance(message, Message)
    assert_type(client.send(message.make_ack()), bytes)
    assert client.next_event() is NEED_DATA
    client.receive_data(b"")
    assert isinstance(client.next_event(), ConnectionClosed)
    assert client.state is State.CLOSED


def test_server_connection() -> None:
    server = ServerConnection(
        versions=("1.1", "1.2"),
        heart_beat=(1000, 1000),
        grace=3.0,
        limits=Limits(max_subscriptions=10),
    )
    assert_type(server.versions, tuple[str, ...])
    assert_type(server.heart_beat, tuple[int, int])
    assert_type(server.negotiated_version, str | None)
    server.receive_data(Connect(accept_version=("1.2",)).to_frame().serialize())
    assert isinstance(_next(server), Connect)
    assert server.next_event() is PAUSED
    connected = server.accept(heart_beat=(0, 0), session="s", server="typing")
    assert_type(connected, Connected)
    assert_type(server.send(connected), bytes)
    server.receive_data(b"BOGUS\n\n\0")
    try:
        server.next_event()
    except RemoteProtocolError as exc:
        assert_type(exc.message, str)
        assert_type(exc.receipt_id, str | None)
        assert_type(exc.error_headers, tuple[tuple[str, str], ...])
        error = server.error_for(exc)
        assert_type(error, Error)
        assert_type(server.send(error), bytes)
    else:
        raise AssertionError("BOGUS was accepted")
    assert server.state is State.CLOSED


def test_timers() -> None:
    client, _ = _handshake(heart_beat=(1000, 1000))
    deadline = client.next_deadline()
    assert_type(deadline, float | None)
    assert deadline == 1.0
    assert_type(client.handle_timer(1.0), bytes)
    client.receive_data(b"\n", now=1.5)
    assert isinstance(_next(client), Heartbeat)


def test_errors() -> None:
    try:
        Send(destination="")
    except ProtocolError as exc:
        assert_type(exc, ProtocolError)
        assert isinstance(exc, LocalProtocolError)
    else:
        raise AssertionError("an empty destination was accepted")
    assert issubclass(RemoteProtocolError, ProtocolError)


def test_queries() -> None:
    """The core's queries (0.2): subscription keys, ack keys, non-fatal checks."""
    assert_type(Subscribe(destination="/q").subscription_key, str)
    assert_type(Unsubscribe(id="0").subscription_key, str | None)
    client, server = _handshake()
    server.receive_data(client.send(Subscribe(destination="/q", id="0", ack="client")))
    assert isinstance(_next(server), Subscribe)
    message = Message(destination="/q", message_id="m1", subscription="0", ack="a1")
    assert_type(server.subscription_for(message), str | None)
    assert_type(server.check(message), ProtocolError | None)
    assert server.check(message) is None
    client.receive_data(server.send(message))
    assert isinstance(_next(client), Message)
    assert_type(client.ack_key(message), str | tuple[str, str] | None)
    assert_type(client.ack_key(message.make_ack()), str | tuple[str, str] | None)
    assert_type(client.ack_key(message.make_nack()), str | tuple[str, str] | None)
    assert client.ack_key(message) == client.ack_key(message.make_ack()) == "a1"
    assert_type(Limits().max_connect_frame_size, int)


def test_settles() -> None:
    assert_type(Ack().settles, tuple[str | tuple[str, str], ...])
    assert_type(Nack().settles, tuple[str | tuple[str, str], ...])
    assert_type(Commit(transaction="t").settles, tuple[str | tuple[str, str], ...])
    assert Ack().settles == ()
