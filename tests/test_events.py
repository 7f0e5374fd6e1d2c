"""Events: validation on construction, conversion to and from frames."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

import stomp_proto
from stomp_proto import (
    Ack,
    ClientConnection,
    Connect,
    Connected,
    ConnectionClosed,
    Frame,
    Heartbeat,
    Limits,
    LocalProtocolError,
    Message,
    Nack,
    RemoteProtocolError,
    Send,
    Subscribe,
)

from .helpers import Pair, drain


def test_events_are_frozen_slotted_and_keyword_only() -> None:
    send = Send(destination="/q")
    with pytest.raises(dataclasses.FrozenInstanceError):
        send.destination = "/r"  # type: ignore[misc]
    assert not hasattr(send, "__dict__")
    with pytest.raises(TypeError):
        Send("/q")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: Send(destination=5), TypeError, "SEND destination must be a str, not int"),  # type: ignore[arg-type]
        (lambda: Send(destination=""), LocalProtocolError, "SEND needs a non-empty destination"),
        (lambda: Send(destination="/q", headers=[("a", "b")]), TypeError, "tuple of"),  # type: ignore[arg-type]
        (lambda: Send(destination="/q", headers=(("a", 1),)), TypeError, "tuple of"),  # type: ignore[arg-type]
        (lambda: Send(destination="/q", body="text"), TypeError, "body must be bytes"),  # type: ignore[arg-type]
        (lambda: Connect(heart_beat=(1, -1)), LocalProtocolError, "heart_beat"),
        (lambda: Connect(heart_beat=(True, 1)), LocalProtocolError, "heart_beat"),  # type: ignore[arg-type]
        (lambda: Connected(heart_beat=(1,)), LocalProtocolError, "heart_beat"),  # type: ignore[arg-type]
        (lambda: Connect(accept_version=["1.2"]), TypeError, "accept_version"),  # type: ignore[arg-type]
        (lambda: Message(destination="/q", message_id=""), LocalProtocolError, "message-id"),
    ],
)
def test_validation_on_construction(build: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        build()  # type: ignore[operator]


def test_parsed_events_keep_extra_and_repeated_headers_in_order() -> None:
    frame = Frame(
        "MESSAGE",
        (
            ("destination", "/q"),
            ("x-a", "1"),
            ("destination", "/old"),
            ("message-id", "m"),
            ("content-length", "2"),
        ),
        b"hi",
    )
    msg = Message._from_frame(frame)
    assert msg.destination == "/q"
    assert msg.headers == (("x-a", "1"), ("destination", "/old"))
    assert msg.to_frame().serialize() == (
        b"MESSAGE\ndestination:/q\nmessage-id:m\nx-a:1\ndestination:/old\ncontent-length:2\n\nhi\x00"
    )


def test_connect_conversion_both_ways() -> None:
    frame = Frame(
        "STOMP",
        (
            ("accept-version", "1.1, 1.2"),
            ("heart-beat", "10,20"),
            ("heart-beat", "30,40"),
            ("receipt", "ignored"),
        ),
    )
    connect = Connect._from_frame(frame)
    assert connect == Connect(
        accept_version=("1.1", "1.2"),
        heart_beat=(10, 20),
        stomp=True,
        headers=(("heart-beat", "30,40"), ("receipt", "ignored")),
    )
    assert connect.to_frame().command == "STOMP"


def test_connected_conversion_keeps_repeats() -> None:
    frame = Frame("CONNECTED", (("heart-beat", "1,2"), ("heart-beat", "3,4"), ("version", "1.1")))
    connected = Connected._from_frame(frame)
    assert connected.heart_beat == (1, 2)
    assert connected.version == "1.1"
    assert connected.headers == (("heart-beat", "3,4"),)


def test_connected_without_version_means_1_0() -> None:
    assert Connected._from_frame(Frame("CONNECTED")).version == "1.0"


def test_ack_frame_headers_per_version() -> None:
    ack = Nack(
        id="k",
        message_id="m",
        subscription="s",
        transaction="t",
        receipt="r",
        headers=(("x", "y"),),
    )
    assert ack.to_frame("1.2").headers == (
        ("id", "k"),
        ("transaction", "t"),
        ("receipt", "r"),
        ("x", "y"),
    )
    assert ack.to_frame("1.1").headers[:2] == (("message-id", "m"), ("subscription", "s"))
    assert Ack(message_id="m").to_frame("1.0").headers == (("message-id", "m"),)
    with pytest.raises(LocalProtocolError, match="ACK in STOMP 1.0 needs message-id"):
        Ack(id="k").to_frame("1.0")


def test_message_helpers() -> None:
    msg = Message(
        destination="/q",
        message_id="m",
        subscription="s",
        ack="k",
        content_type="text/plain;charset=latin-1",
        body="é".encode("latin-1"),
    )
    assert msg.text() == "é"
    assert msg.make_ack(transaction="t", receipt="r") == Ack(
        id="k", message_id="m", subscription="s", transaction="t", receipt="r"
    )
    assert isinstance(msg.make_nack(), Nack)


@pytest.mark.parametrize("event", [Heartbeat(), ConnectionClosed()])
def test_non_frames_have_no_frame(event: Heartbeat | ConnectionClosed) -> None:
    with pytest.raises(LocalProtocolError, match="not a frame"):
        event.to_frame()


def test_send_content_length_suppression_through_a_connection() -> None:
    pair = Pair().connect()
    data = pair.client.send(Send(destination="/q", body=b"text", content_length=False))
    assert data == b"SEND\ndestination:/q\n\ntext\x00"


def test_empty_receipt_is_refused() -> None:
    pair = Pair().connect()
    pair.server.receive_data(b"SEND\ndestination:/q\nreceipt:\n\n\x00")
    with pytest.raises(RemoteProtocolError, match="SEND has an empty receipt header"):
        drain(pair.server)
    with pytest.raises(LocalProtocolError, match="empty receipt"):
        Pair().connect().client.send(Send(destination="/q", receipt=""))


def test_empty_required_header_in_a_parsed_frame() -> None:
    pair = Pair().connect()
    pair.server.receive_data(b"SUBSCRIBE\ndestination:\nid:0\n\n\x00")
    with pytest.raises(
        RemoteProtocolError, match="SUBSCRIBE frame has an empty 'destination' header"
    ):
        drain(pair.server)


def test_unacknowledged_limit() -> None:
    pair = Pair(client=ClientConnection(limits=Limits(max_unacknowledged=1))).connect()
    pair.client_sends(Subscribe(destination="/q", id="s", ack="client"))
    pair.server_sends(Message(destination="/q", message_id="1", subscription="s", ack="1"))
    pair.client.receive_data(
        b"MESSAGE\ndestination:/q\nmessage-id:2\nsubscription:s\nack:2\n\n\x00"
    )
    with pytest.raises(RemoteProtocolError, match="limit of 1 unacknowledged messages"):
        drain(pair.client)


def test_eof_twice_in_closed_state() -> None:
    pair = Pair().connect()
    pair.client.send(ConnectionClosed())
    pair.client.receive_data(b"")
    pair.client.receive_data(b"")
    assert pair.client.next_event() == ConnectionClosed()


EVENT_CLASSES = [
    Connect,
    Send,
    Subscribe,
    stomp_proto.Unsubscribe,
    Ack,
    Nack,
    Connected,
    Message,
    stomp_proto.Receipt,
    stomp_proto.Error,
    stomp_proto.Begin,
    stomp_proto.Commit,
    stomp_proto.Abort,
    stomp_proto.Disconnect,
]
NAMES = st.sampled_from(
    [
        "destination",
        "message-id",
        "subscription",
        "ack",
        "id",
        "receipt",
        "receipt-id",
        "transaction",
        "content-type",
        "content-length",
        "message",
        "host",
        "login",
        "passcode",
        "version",
        "session",
        "server",
        "x-user",
        "accept-version",
        "heart-beat",
    ]
)
VALUES = st.sampled_from(["", "v", "1,2", "1.2", "0"])


@given(
    st.sampled_from(EVENT_CLASSES),
    st.lists(st.tuples(NAMES, VALUES), max_size=8),
    st.binary(max_size=3),
)
def test_compiled_from_frame_matches_the_generic_reference(
    cls: type[stomp_proto.Event], headers: list[tuple[str, str]], body: bytes
) -> None:
    frame = Frame(cls.COMMAND, tuple(headers), body if cls._HAS_BODY else b"")
    generic = stomp_proto.Event._from_frame.__func__  # type: ignore[attr-defined]

    def outcome(build: object) -> object:
        try:
            event = build(frame)  # type: ignore[operator]
        except RemoteProtocolError as exc:
            return ("error", exc.message, exc.receipt_id)
        return (event, event.headers)

    assert outcome(cls._from_frame) == outcome(lambda f: generic(cls, f))


@pytest.mark.parametrize(
    "frame",
    [
        Frame("MESSAGE", (("destination", "/q"), ("message-id", "1"), ("x", "y")), b"b"),
        Frame("CONNECT", (("accept-version", "1.2"), ("host", "h"), ("host", "again"))),
        Frame("SEND", (("destination", "/q"), ("receipt", "r"))),
        Frame("SEND", (("receipt", "r"),)),
    ],
)
def test_generic_from_frame_reference_on_fixed_frames(frame: Frame) -> None:
    """The generic reference (used by the compiled builders' error path) on fixed
    inputs, so coverage never depends on what hypothesis happens to draw."""
    cls = {"MESSAGE": Message, "CONNECT": Connect, "SEND": Send}[frame.command]
    generic = stomp_proto.Event._from_frame.__func__  # type: ignore[attr-defined]
    try:
        expected = cls._from_frame(frame)
    except RemoteProtocolError as exc:
        with pytest.raises(RemoteProtocolError) as info:
            generic(cls, frame)
        assert info.value.message == exc.message
        assert info.value.receipt_id == exc.receipt_id == "r"
    else:
        event = generic(cls, frame)
        assert event == expected
        assert event.headers == expected.headers


# -- issue 10: wire names declared once; siblings, not subclasses ----------------------


def test_nack_is_not_an_ack_and_commit_abort_are_not_begins() -> None:
    nack = Nack(id="a1")
    assert not isinstance(nack, Ack)
    assert not isinstance(Ack(id="a1"), Nack)
    for cls in (stomp_proto.Commit, stomp_proto.Abort):
        event = cls(transaction="t")
        assert not isinstance(event, stomp_proto.Begin)
    assert not isinstance(stomp_proto.Begin(transaction="t"), stomp_proto.Commit)
    # Still alike: the same fields, written the same way.
    assert [f.name for f in dataclasses.fields(Nack)] == [f.name for f in dataclasses.fields(Ack)]
    assert Nack(id="a1").to_frame("1.2") == Frame("NACK", (("id", "a1"),))
    assert stomp_proto.Commit(transaction="t").to_frame() == Frame(
        "COMMIT", (("transaction", "t"),)
    )


def test_each_header_name_is_declared_once_in_field_metadata() -> None:
    for cls in EVENT_CLASSES:
        typed = [f for f in dataclasses.fields(cls) if "header" in f.metadata]
        assert tuple((f.metadata["header"], f.name) for f in typed) == cls._FIELDS
        required = [f.name for f in typed if f.default is dataclasses.MISSING]
        assert tuple(required) == cls._REQUIRED
    # The order of the declarations is the order headers are written in.
    assert Send._FIELDS == (
        ("destination", "destination"),
        ("content-type", "content_type"),
        ("transaction", "transaction"),
        ("receipt", "receipt"),
    )
    assert Message._REQUIRED == ("destination", "message_id")
    assert (Send._HAS_BODY, Send._HAS_RECEIPT) == (True, True)
    assert (Nack._HAS_BODY, Nack._HAS_RECEIPT) == (False, True)
    assert (Connected._HAS_BODY, Connected._HAS_RECEIPT) == (False, False)


def test_parsed_defaults_come_from_the_fields() -> None:
    assert Subscribe._from_frame(Frame("SUBSCRIBE", (("destination", "/q"),))).ack == "auto"
    # A CONNECTED without version is STOMP 1.0, though Connected() defaults to 1.2.
    assert Connected().version == "1.2"
    assert Connected._from_frame(Frame("CONNECTED")).version == "1.0"


def test_a_required_header_is_one_without_a_default() -> None:
    with pytest.raises(TypeError):
        Message(destination="/q")  # type: ignore[call-arg]
    with pytest.raises(RemoteProtocolError, match="MESSAGE frame has no 'message-id' header"):
        Message._from_frame(Frame("MESSAGE", (("destination", "/q"),)))
