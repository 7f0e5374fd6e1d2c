"""ClientConnection / ServerConnection: lifecycle, negotiation, tracking (§4 B-G)."""

from __future__ import annotations

import pytest

from stomp_proto import (
    NEED_DATA,
    PAUSED,
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
    Heartbeat,
    Limits,
    LocalProtocolError,
    Message,
    Receipt,
    RemoteProtocolError,
    Send,
    ServerConnection,
    State,
    Subscribe,
    Unsubscribe,
)

from .helpers import Pair, drain


def server_with(data: bytes, **kwargs: object) -> ServerConnection:
    server = ServerConnection(**kwargs)  # type: ignore[arg-type]
    server.receive_data(data)
    return server


def connected_server(version: str = "1.2", **kwargs: object) -> ServerConnection:
    return Pair(server=ServerConnection(**kwargs)).connect(version).server  # type: ignore[arg-type]


def remote_error(server: ServerConnection, data: bytes) -> RemoteProtocolError:
    server.receive_data(data)
    with pytest.raises(RemoteProtocolError) as info:
        drain(server)
    assert server.state is State.ERROR
    return info.value


# -- B: lifecycle and negotiation -------------------------------------------------------------


def test_full_session_in_memory() -> None:
    pair = Pair().connect()
    assert pair.client.state is State.CONNECTED is pair.server.state
    sub = Subscribe(destination="/topic/a", id="0", receipt="r0")
    assert pair.client_sends(sub) == [sub]
    assert pair.client.pending_receipts == {"r0": sub}
    (receipt,) = pair.server_sends(sub.make_receipt())
    assert isinstance(receipt, Receipt)
    assert receipt.confirms == sub
    assert pair.client.pending_receipts == {}
    msg = Message(destination="/topic/a", message_id="1", subscription="0", body=b"x")
    assert pair.server_sends(msg) == [msg]
    send = Send(destination="/queue/b", body=b"\x00bin", headers=(("x-a", "a:b"),))
    assert pair.client_sends(send) == [send]
    bye = Disconnect(receipt="bye")
    assert pair.client_sends(bye) == [bye]
    assert pair.client.state is State.DISCONNECTING is pair.server.state
    receipt, closed = pair.server_sends(bye.make_receipt())
    assert receipt.confirms == bye  # type: ignore[attr-defined]
    assert closed == ConnectionClosed()
    assert pair.client.state is State.CLOSED is pair.server.state


@pytest.mark.parametrize("stomp", [False, True])
def test_stomp_is_handled_like_connect(stomp: bool) -> None:
    client = ClientConnection()
    data = client.send(Connect(host="h", stomp=stomp))
    assert data.startswith(b"STOMP\n" if stomp else b"CONNECT\n")
    server = server_with(data)
    (connect, *_) = [server.next_event()]
    assert isinstance(connect, Connect)
    assert connect.stomp is stomp
    assert server.send(server.accept()) == b"CONNECTED\nversion:1.2\n\n\x00"


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (b"1.2,1.1,1.0", "1.2"),
        (b"1.0,1.1", "1.1"),
        (b"1.1,2.0", "1.1"),
        (b"1.0, 1.2", "1.2"),
        (None, "1.0"),
    ],
)
def test_version_negotiation(offered: bytes | None, chosen: str) -> None:
    header = b"" if offered is None else b"accept-version:" + offered + b"\n"
    server = server_with(b"CONNECT\n" + header + b"\n\x00")
    assert isinstance(server.next_event(), Connect)
    assert server.negotiated_version == chosen
    accepted = server.accept(heart_beat=(5, 5))
    assert accepted.version == chosen
    if chosen == "1.0":
        assert accepted.heart_beat == (0, 0)  # POLICY #58
    server.send(accepted)
    assert server.version == chosen


def test_server_versions_limit_the_choice() -> None:
    server = server_with(b"CONNECT\naccept-version:1.1,1.2\n\n\x00", versions=("1.1",))
    server.next_event()
    assert server.negotiated_version == "1.1"
    with pytest.raises(ValueError, match="subset"):
        ServerConnection(versions=("2.0",))


def test_no_common_version_is_an_error_with_the_version_header() -> None:
    server = ServerConnection()
    exc = remote_error(server, b"CONNECT\naccept-version:2.0\n\n\x00")
    assert "no common STOMP version" in exc.message
    error = server.error_for(exc)
    assert ("version", "1.0,1.1,1.2") in error.headers
    data = server.send(error)
    assert data.startswith(b"ERROR\nmessage:no common STOMP version")
    assert b"content-type:text/plain" in data
    assert server.state is State.CLOSED
    assert server.next_event() == ConnectionClosed()


def test_1_0_connect_values_are_left_trimmed() -> None:
    server = server_with(b"CONNECT\nlogin: guest\npasscode:\tpw\n\n\x00")
    connect = server.next_event()
    assert isinstance(connect, Connect)
    assert (connect.login, connect.passcode) == ("guest", "pw")


def test_1_0_session_values_are_left_trimmed() -> None:
    pair = Pair().connect("1.0")
    pair.server.receive_data(b"SEND\ndestination: /q \ncontent-length:1\n\nx\x00")
    (send,) = drain(pair.server)
    assert isinstance(send, Send)
    assert (send.destination, send.body) == ("/q ", b"x")


def test_1_2_connect_values_are_not_trimmed() -> None:
    server = server_with(b"CONNECT\naccept-version:1.2\npasscode: pw \n\n\x00")
    connect = server.next_event()
    assert isinstance(connect, Connect)
    assert connect.passcode == " pw "


def test_connect_headers_are_not_unescaped_and_keep_extras() -> None:
    server = server_with(
        b"CONNECT\naccept-version:1.2\nhost:/\npasscode:a\\cb:c\nclient-id:x\nreceipt:r\n\n\x00"
    )
    connect = server.next_event()
    assert isinstance(connect, Connect)
    assert connect.passcode == "a\\cb:c"
    assert connect.headers == (("client-id", "x"), ("receipt", "r"))
    data = server.send(server.accept())
    assert data == b"CONNECTED\nversion:1.2\n\n\x00"  # POLICY #83: no RECEIPT for CONNECT


def test_stompjs_connect_without_host() -> None:
    server = server_with(
        b"CONNECT\naccept-version:1.2,1.1,1.0\nheart-beat:10000,10000\n\n\x00",
        heart_beat=(5000, 20000),
    )
    connect = server.next_event()
    assert isinstance(connect, Connect)
    assert connect.host is None
    server.send(server.accept())
    assert server.heartbeat_intervals == (10000, 20000)


def test_frames_after_connect_wait_for_the_answer() -> None:
    server = server_with(
        b"CONNECT\naccept-version:1.1\n\n\x00SEND\ndestination:/q\nh:a\\cb\n\n\x00"
    )
    assert isinstance(server.next_event(), Connect)
    assert server.next_event() is PAUSED
    assert server.next_event() is PAUSED
    server.send(server.accept())
    send = server.next_event()
    assert isinstance(send, Send)
    assert send.headers == (("h", "a:b"),)  # parsed with 1.1 rules
    assert server.next_event() is NEED_DATA


def test_connected_must_name_the_agreed_version() -> None:
    server = server_with(b"CONNECT\naccept-version:1.1\n\n\x00")
    server.next_event()
    with pytest.raises(LocalProtocolError, match="negotiated version 1.1"):
        server.send(Connected(version="1.2"))
    assert server.state is State.ERROR


def test_accept_needs_a_connect() -> None:
    with pytest.raises(LocalProtocolError, match="no CONNECT to accept"):
        ServerConnection().accept()


def test_server_may_reject_connect_with_error() -> None:
    server = server_with(b"CONNECT\nlogin:x\n\n\x00")
    server.next_event()
    data = server.send(Error(message="bad credentials"))
    assert data == b"ERROR\nmessage:bad credentials\n\n\x00"
    assert server.state is State.CLOSED


@pytest.mark.parametrize(
    "frame",
    [
        b"SEND\ndestination:/q\n\n\x00",
        b"SUBSCRIBE\ndestination:/q\nid:0\n\n\x00",
        b"DISCONNECT\n\n\x00",
    ],
)
def test_frames_before_connect_are_errors(frame: bytes) -> None:
    exc = remote_error(ServerConnection(), frame)
    assert "in state AWAITING_CONNECT" in exc.message


def test_second_connect_is_an_error() -> None:
    server = connected_server()
    exc = remote_error(server, b"CONNECT\naccept-version:1.2\n\n\x00")
    assert "CONNECT is not allowed from the client in state CONNECTED" in exc.message


def test_server_frames_from_a_client_are_errors() -> None:
    exc = remote_error(
        connected_server(), b"MESSAGE\ndestination:/q\nmessage-id:1\nreceipt:z\n\n\x00"
    )
    assert "the client sent MESSAGE, which only a server may send" in exc.message
    assert exc.receipt_id == "z"


def test_client_frames_from_a_server_are_errors() -> None:
    client = ClientConnection()
    client.send(Connect())
    client.receive_data(b"SEND\ndestination:/q\n\n\x00")
    with pytest.raises(RemoteProtocolError, match="the server sent SEND"):
        client.next_event()


def test_client_refuses_a_version_it_did_not_offer() -> None:
    client = ClientConnection()
    client.send(Connect(accept_version=("1.1", "1.2")))
    client.receive_data(b"CONNECTED\n\n\x00")  # no version header: 1.0
    with pytest.raises(RemoteProtocolError, match="CONNECTED names version '1.0'"):
        client.next_event()


def test_client_refuses_to_offer_unknown_versions() -> None:
    with pytest.raises(LocalProtocolError, match="unsupported STOMP versions"):
        ClientConnection().send(Connect(accept_version=("1.2", "2.0")))


def test_1_0_client_session() -> None:
    pair = Pair().connect("1.0")
    assert pair.client.version == "1.0"
    assert pair.server.heartbeat_intervals == (0, 0)
    assert pair.client.next_deadline() is None


def test_send_wrong_role_events() -> None:
    with pytest.raises(LocalProtocolError, match="a client cannot send MESSAGE"):
        ClientConnection().send(Message(destination="/q", message_id="1"))
    with pytest.raises(LocalProtocolError, match="a server cannot send SEND"):
        ServerConnection().send(Send(destination="/q"))


def test_error_state_is_sticky() -> None:
    server = ServerConnection()
    exc = remote_error(server, b"FOO\n\n\x00")
    with pytest.raises(RemoteProtocolError) as again:
        server.next_event()
    assert again.value is exc
    with pytest.raises(LocalProtocolError, match="ERROR state"):
        server.send(Receipt(receipt_id="x"))
    server.receive_data(b"more")  # ignored
    assert server.send(server.error_for(exc)).startswith(b"ERROR\n")
    assert server.state is State.CLOSED


def test_error_for_a_frame_with_receipt() -> None:
    server = connected_server()
    exc = remote_error(server, b"SEND\nreceipt:r-7\n\n\x00")
    assert "SEND frame has no 'destination' header" in exc.message
    error = server.error_for(exc)
    assert error.receipt_id == "r-7"
    assert error.body == exc.message.encode()
    data = server.send(error)
    assert b"receipt-id:r-7" in data


def test_error_message_is_sanitized() -> None:
    server = connected_server()
    exc = remote_error(server, b"SEND\ndestination:/a\\tb\nreceipt:a\\\\b\n\n\x00")
    error = server.error_for(exc)
    assert error.message is not None
    assert "\\" not in error.message
    assert "\\" in error.body.decode()
    server.send(error)


def test_unsafe_receipt_id_is_dropped_from_error() -> None:
    server = connected_server()
    exc = RemoteProtocolError("x", receipt_id="a\nb")
    assert server.error_for(exc).receipt_id is None


# -- E: receipts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        Send(destination="/q", receipt="r"),
        Subscribe(destination="/q", id="9", receipt="r"),
        Begin(transaction="t", receipt="r"),
        Disconnect(receipt="r"),
    ],
)
def test_receipts_for_client_frames(event: Send | Subscribe | Begin | Disconnect) -> None:
    pair = Pair().connect()
    assert pair.client_sends(event) == [event]
    receipt, *closed = pair.server_sends(event.make_receipt())
    assert closed == ([ConnectionClosed()] if isinstance(event, Disconnect) else [])
    assert isinstance(receipt, Receipt)
    assert receipt.receipt_id == "r"
    assert receipt.confirms is not None
    assert receipt.confirms == event


def test_receipts_may_be_answered_out_of_order() -> None:
    pair = Pair().connect()
    a, b = Send(destination="/q", receipt="a"), Send(destination="/q", receipt="b")
    pair.client_sends(a)
    pair.client_sends(b)
    (rb,) = pair.server_sends(b.make_receipt())
    (ra,) = pair.server_sends(a.make_receipt())
    assert rb.confirms is b  # type: ignore[attr-defined]
    assert ra.confirms is a  # type: ignore[attr-defined]


def test_unknown_receipt_is_a_remote_error() -> None:
    pair = Pair().connect()
    pair.client.receive_data(b"RECEIPT\nreceipt-id:nope\n\n\x00")
    with pytest.raises(RemoteProtocolError, match="receipt-id 'nope', which no frame asked for"):
        pair.client.next_event()


def test_server_cannot_invent_receipts() -> None:
    server = connected_server()
    with pytest.raises(LocalProtocolError, match="which no frame asked for"):
        server.send(Receipt(receipt_id="x"))


def test_client_cannot_reuse_a_pending_receipt() -> None:
    pair = Pair().connect()
    pair.client.send(Send(destination="/q", receipt="r"))
    with pytest.raises(LocalProtocolError, match="reuses receipt id 'r'"):
        pair.client.send(Send(destination="/q", receipt="r"))


def test_pending_receipt_limit() -> None:
    client = Pair(client=ClientConnection(limits=Limits(max_pending_receipts=2))).connect().client
    client.send(Send(destination="/q", receipt="1"))
    client.send(Send(destination="/q", receipt="2"))
    with pytest.raises(LocalProtocolError, match="limit of 2 pending receipts"):
        client.send(Send(destination="/q", receipt="3"))


def test_make_receipt_without_receipt() -> None:
    with pytest.raises(LocalProtocolError, match="did not ask for a receipt"):
        Send(destination="/q").make_receipt()


# -- DISCONNECT ----------------------------------------------------------------------------------


def test_disconnect_without_receipt_closes_at_once() -> None:
    pair = Pair().connect()
    pair.client_sends(Disconnect())
    assert pair.client.state is State.CLOSED is pair.server.state
    assert pair.server.next_event() == ConnectionClosed()


def test_client_sends_nothing_after_disconnect() -> None:
    pair = Pair().connect()
    pair.client.send(Disconnect(receipt="x"))
    with pytest.raises(
        LocalProtocolError, match="SEND is not allowed from the client in state DISCONNECTING"
    ):
        pair.client.send(Send(destination="/q"))


def test_server_ignores_input_after_disconnect() -> None:
    pair = Pair().connect()
    pair.client_sends(Disconnect(receipt="x"))
    pair.server.receive_data(b"SEND\ndestination:/q\n\n\x00GARBAGE")
    assert pair.server.next_event() is PAUSED
    pair.server.receive_data(b"")
    assert pair.server.next_event() == ConnectionClosed()


def test_messages_in_flight_during_disconnect_are_accepted() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="0"))
    pair.client.send(Disconnect(receipt="x"))
    pair.client.receive_data(b"MESSAGE\ndestination:/q\nmessage-id:1\nsubscription:0\n\n\x00")
    assert isinstance(pair.client.next_event(), Message)


def test_eof_while_disconnecting_is_a_clean_close() -> None:
    pair = Pair().connect()
    pair.client.send(Disconnect(receipt="x"))
    pair.client.receive_data(b"")
    assert pair.client.next_event() == ConnectionClosed()
    assert pair.client.state is State.CLOSED
    assert pair.client.next_event() == ConnectionClosed()


def test_eof_mid_frame_is_an_error() -> None:
    pair = Pair().connect()
    pair.client.receive_data(b"MESSAGE\ndest")
    pair.client.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="middle of a frame"):
        pair.client.next_event()


def test_closing_locally() -> None:
    pair = Pair().connect()
    assert pair.client.send(ConnectionClosed()) == b""
    assert pair.client.state is State.CLOSED
    pair.client.receive_data(b"MESSAGE\n")  # dropped
    assert pair.client.next_event() == ConnectionClosed()


def test_error_frame_is_terminal_for_the_client() -> None:
    pair = Pair().connect()
    error, closed = pair.server_sends(
        Error(message="boom", body=b"details", content_type="text/plain")
    )
    assert closed == ConnectionClosed()
    assert isinstance(error, Error)
    assert error.message == "boom"
    assert pair.client.state is State.CLOSED is pair.server.state
    with pytest.raises(
        LocalProtocolError, match="SEND is not allowed from the client in state CLOSED"
    ):
        pair.client.send(Send(destination="/q"))


def test_heartbeat_events_and_sending() -> None:
    pair = Pair().connect()
    pair.client.receive_data(b"\n\r\n")
    assert drain(pair.client) == [Heartbeat(), Heartbeat()]
    assert pair.client.send(Heartbeat()) == b"\n"
    with pytest.raises(
        LocalProtocolError, match="cannot send a heart-beat in state AWAITING_CONNECT"
    ):
        ClientConnection().send(Heartbeat())


# -- D: subscriptions ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_subscribe_needs_an_id_in_1_1_and_later(version: str) -> None:
    exc = remote_error(connected_server(version), b"SUBSCRIBE\ndestination:/q\nreceipt:r\n\n\x00")
    assert f"SUBSCRIBE needs an id header in STOMP {version}" in exc.message
    assert exc.receipt_id == "r"


def test_subscribe_needs_a_destination() -> None:
    exc = remote_error(connected_server(), b"SUBSCRIBE\nid:0\n\n\x00")
    assert "has no 'destination' header" in exc.message


def test_1_0_subscription_without_id_keyed_by_destination() -> None:
    pair = Pair().connect("1.0")
    pair.client_sends(Subscribe(destination="/q", ack="client"))
    assert pair.server.subscriptions == {"/q": "client"}
    msg = Message(destination="/q", message_id="m1")
    assert pair.server_sends(msg) == [msg]
    assert pair.client.unacknowledged == {"/q": ["m1"]}
    pair.client_sends(msg.make_ack())
    assert pair.server.unacknowledged == {}
    pair.client_sends(Unsubscribe(destination="/q"))
    assert pair.server.subscriptions == {}


def test_duplicate_subscription_id() -> None:
    server = connected_server()
    server.receive_data(b"SUBSCRIBE\ndestination:/a\nid:0\n\n\x00")
    drain(server)
    exc = remote_error(server, b"SUBSCRIBE\ndestination:/b\nid:0\n\n\x00")
    assert "SUBSCRIBE id '0' is already in use" in exc.message


@pytest.mark.parametrize(
    ("version", "mode"), [("1.2", "bogus"), ("1.1", "Client"), ("1.0", "Client-individual")]
)
def test_bad_ack_mode(version: str, mode: str) -> None:
    server = connected_server(version)
    exc = remote_error(server, f"SUBSCRIBE\ndestination:/q\nid:0\nack:{mode}\n\n\x00".encode())
    assert f"ack:{mode!r} is not an ack mode of STOMP {version}" in exc.message


# Issue 9 item 16: ack:client-individual on a 1.0 session. A server accepts it
# (RabbitMQ and ActiveMQ do; stomp.py sends it); a client sends only 1.0 modes.
# (It was the 1.0 case of test_bad_ack_mode, with the same message, on a server.)


def test_a_1_0_client_does_not_send_client_individual() -> None:
    pair = Pair().connect("1.0")
    with pytest.raises(LocalProtocolError) as info:
        pair.client.send(Subscribe(destination="/q", ack="client-individual"))
    assert "ack:'client-individual' is not an ack mode of STOMP 1.0" in info.value.message


def test_a_1_0_server_accepts_client_individual_and_acks_individually() -> None:
    server = connected_server("1.0")
    server.receive_data(b"SUBSCRIBE\ndestination:/q\nack:client-individual\n\n\x00")
    (subscribe,) = drain(server)
    assert isinstance(subscribe, Subscribe) and subscribe.ack == "client-individual"
    assert server.subscriptions == {"/q": "client-individual"}
    messages = [Message(destination="/q", message_id=f"m{n}") for n in range(1, 4)]
    for message in messages:
        server.send(message)
    assert server.unacknowledged == {"/q": ["m1", "m2", "m3"]}
    server.receive_data(b"ACK\nmessage-id:m2\n\n\x00")
    assert [type(e) for e in drain(server)] == [Ack]
    assert server.unacknowledged == {"/q": ["m1", "m3"]}  # not cumulative
    server.receive_data(b"ACK\nmessage-id:m3\n\n\x00ACK\nmessage-id:m1\n\n\x00")
    drain(server)
    assert server.unacknowledged == {}
    exc = remote_error(server, b"ACK\nmessage-id:m2\n\n\x00")
    assert "not an unacknowledged message" in exc.message


def test_a_1_0_server_still_refuses_nack_on_client_individual() -> None:
    server = connected_server("1.0")
    server.receive_data(b"SUBSCRIBE\ndestination:/q\nack:client-individual\n\n\x00")
    drain(server)
    server.send(Message(destination="/q", message_id="m1"))
    exc = remote_error(server, b"NACK\nmessage-id:m1\n\n\x00")
    assert exc.message == "NACK does not exist in STOMP 1.0"


def test_subscription_limit() -> None:
    server = connected_server(limits=Limits(max_subscriptions=1))
    server.receive_data(b"SUBSCRIBE\ndestination:/a\nid:0\n\n\x00")
    drain(server)
    exc = remote_error(server, b"SUBSCRIBE\ndestination:/b\nid:1\n\n\x00")
    assert "limit of 1 subscriptions" in exc.message


def test_unsubscribe_unknown_id() -> None:
    exc = remote_error(connected_server(), b"UNSUBSCRIBE\nid:nope\n\n\x00")
    assert "UNSUBSCRIBE names unknown subscription 'nope'" in exc.message


@pytest.mark.parametrize(("version", "need"), [("1.2", "an id"), ("1.0", "an id or destination")])
def test_unsubscribe_needs_an_id(version: str, need: str) -> None:
    exc = remote_error(connected_server(version), b"UNSUBSCRIBE\n\n\x00")
    assert f"UNSUBSCRIBE needs {need} header" in exc.message


def test_message_for_an_unknown_subscription() -> None:
    pair = Pair().connect()
    with pytest.raises(LocalProtocolError, match="subscription '5', which is not active"):
        pair.server.send(Message(destination="/q", message_id="1", subscription="5"))
    pair.client.receive_data(b"MESSAGE\ndestination:/q\nmessage-id:1\nsubscription:5\n\n\x00")
    with pytest.raises(RemoteProtocolError, match="which is not active"):
        pair.client.next_event()


def test_message_needs_a_subscription_in_1_1() -> None:
    pair = Pair().connect("1.1")
    pair.client.receive_data(b"MESSAGE\ndestination:/q\nmessage-id:1\n\n\x00")
    with pytest.raises(RemoteProtocolError, match="MESSAGE '1' has no subscription header"):
        pair.client.next_event()


def test_message_in_flight_after_unsubscribe_is_accepted() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="0", ack="client"))
    pair.client_sends(Subscribe(destination="/r", id="1", ack="client"))
    pair.client.send(Unsubscribe(id="0"))
    pair.client.send(Unsubscribe(id="1"))  # both are remembered as recently ended
    for sub in (b"0", b"1"):
        pair.client.receive_data(
            b"MESSAGE\ndestination:/q\nmessage-id:1\nsubscription:" + sub + b"\nack:1\n\n\x00"
        )
        assert isinstance(pair.client.next_event(), Message)
    assert pair.client.unacknowledged == {}


def test_1_0_message_without_subscription_and_several_subscriptions() -> None:
    pair = Pair().connect("1.0")
    pair.client_sends(Subscribe(destination="/a", id="x"))
    pair.client_sends(Subscribe(destination="/b", id="y"))
    pair.client.receive_data(b"MESSAGE\ndestination:/c\nmessage-id:1\n\n\x00")
    with pytest.raises(RemoteProtocolError, match="not active"):
        pair.client.next_event()


def test_1_0_message_without_subscription_and_one_subscription() -> None:
    pair = Pair().connect("1.0")
    pair.client_sends(Subscribe(destination="/a", id="x", ack="client"))
    pair.client.receive_data(b"MESSAGE\ndestination:/a/b\nmessage-id:1\n\n\x00")
    assert isinstance(pair.client.next_event(), Message)
    assert pair.client.unacknowledged == {"x": ["1"]}


# -- G: acks --------------------------------------------------------------------------------------


def deliver(pair: Pair, sub: str, *ids: str) -> list[Message]:
    out = []
    for ident in ids:
        msg = Message(destination="/q", message_id=ident, subscription=sub, ack="a" + ident)
        assert pair.server_sends(msg) == [msg]
        out.append(msg)
    return out


def test_client_ack_is_cumulative_per_subscription() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="s1", ack="client"))
    pair.client_sends(Subscribe(destination="/q", id="s2", ack="client"))
    m1, m2, _m3 = deliver(pair, "s1", "1", "2", "3")
    deliver(pair, "s2", "4")
    pair.client_sends(m2.make_ack())
    assert pair.server.unacknowledged == {"s1": ["a3"], "s2": ["a4"]}
    assert pair.client.unacknowledged == pair.server.unacknowledged
    with pytest.raises(LocalProtocolError, match="'a1', which is not an unacknowledged message"):
        pair.client.send(m1.make_ack())


def test_client_individual_ack_is_not_cumulative() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="s", ack="client-individual"))
    _m1, _m2, m3 = deliver(pair, "s", "1", "2", "3")
    pair.client_sends(m3.make_nack())
    assert pair.server.unacknowledged == {"s": ["a1", "a2"]}


def test_ack_twice_is_an_error() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="s", ack="client-individual"))
    (m1,) = deliver(pair, "s", "1")
    pair.client_sends(m1.make_ack())
    exc = remote_error(pair.server, b"ACK\nid:a1\nreceipt:r\n\n\x00")
    assert "ACK for 'a1', which is not an unacknowledged message" in exc.message
    assert exc.receipt_id == "r"


def test_ack_on_auto_subscription_is_an_error() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="s"))
    (m1,) = deliver(pair, "s", "1")
    with pytest.raises(LocalProtocolError, match="not an unacknowledged message"):
        pair.client.send(m1.make_ack())


def test_1_2_message_on_client_subscription_needs_ack_header() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="s", ack="client"))
    with pytest.raises(LocalProtocolError, match="has no ack header"):
        pair.server.send(Message(destination="/q", message_id="1", subscription="s"))


def test_duplicate_ack_id_is_an_error() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="s", ack="client"))
    deliver(pair, "s", "1")
    with pytest.raises(LocalProtocolError, match="reuses ack id 'a1'"):
        pair.server.send(Message(destination="/q", message_id="x", subscription="s", ack="a1"))


@pytest.mark.parametrize(
    ("version", "frame", "message"),
    [
        (
            "1.2",
            b"ACK\nmessage-id:1\nsubscription:s\n\n\x00",
            "ACK needs an id header in STOMP 1.2",
        ),
        (
            "1.1",
            b"ACK\nmessage-id:1\n\n\x00",
            "needs message-id and subscription headers in STOMP 1.1",
        ),
        ("1.1", b"NACK\nsubscription:s\n\n\x00", "NACK needs message-id and subscription"),
        ("1.0", b"ACK\nid:1\n\n\x00", "ACK needs message-id headers in STOMP 1.0"),
        ("1.0", b"NACK\nmessage-id:1\n\n\x00", "NACK does not exist in STOMP 1.0"),
    ],
)
def test_ack_identification_per_version(version: str, frame: bytes, message: str) -> None:
    exc = remote_error(connected_server(version), frame)
    assert message in exc.message


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_ack_round_trip_per_version(version: str) -> None:
    pair = Pair().connect(version)
    pair.client_sends(Subscribe(destination="/q", id="s", ack="client"))
    msg = Message(destination="/q", message_id="m", subscription="s", ack="k")
    pair.server_sends(msg)
    data = pair.client.send(msg.make_ack())
    expected = {
        "1.2": b"ACK\nid:k\n\n\x00",
        "1.1": b"ACK\nmessage-id:m\nsubscription:s\n\n\x00",
        "1.0": b"ACK\nmessage-id:m\nsubscription:s\n\n\x00",
    }[version]
    assert data == expected
    pair.server.receive_data(data)
    (ack,) = drain(pair.server)
    assert isinstance(ack, Ack)
    assert pair.server.unacknowledged == {}


def test_stompjs_1_2_ack_with_extra_subscription_is_accepted() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="s", ack="client"))
    deliver(pair, "s", "1")
    pair.server.receive_data(b"ACK\nid:a1\nsubscription:s\n\n\x00")
    (ack,) = drain(pair.server)
    assert isinstance(ack, Ack)
    assert ack.subscription == "s"


def test_local_ack_missing_identification() -> None:
    pair = Pair().connect("1.1")
    with pytest.raises(LocalProtocolError, match="ACK in STOMP 1.1 needs subscription"):
        pair.client.send(Ack(message_id="m"))
    pair = Pair().connect("1.2")
    with pytest.raises(LocalProtocolError, match="ACK in STOMP 1.2 needs id"):
        pair.client.send(Ack(message_id="m"))


def test_unsubscribe_drops_pending_acks() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="s", ack="client"))
    deliver(pair, "s", "1", "2")
    pair.client_sends(Unsubscribe(id="s"))
    assert pair.server.unacknowledged == {} == pair.client.unacknowledged


# -- transactions -------------------------------------------------------------------------------------


def test_transaction_acks_take_effect_at_commit() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="s", ack="client-individual"))
    m1, _m2 = deliver(pair, "s", "1", "2")
    pair.client_sends(Begin(transaction="t"))
    assert pair.server.transactions == frozenset({"t"})
    pair.client_sends(m1.make_ack(transaction="t"))
    pair.client_sends(m1.make_ack(transaction="t"))  # twice in one transaction: settled once
    pair.client_sends(Send(destination="/q", transaction="t"))
    assert pair.server.unacknowledged == {"s": ["a1", "a2"]}
    pair.client_sends(Commit(transaction="t"))
    assert pair.server.unacknowledged == {"s": ["a2"]}
    assert pair.server.transactions == frozenset()


def test_aborted_acks_leave_messages_unacknowledged() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="s", ack="client"))
    (m1,) = deliver(pair, "s", "1")
    pair.client_sends(Begin(transaction="t"))
    pair.client_sends(m1.make_ack(transaction="t"))
    pair.client_sends(Abort(transaction="t"))
    assert pair.server.unacknowledged == {"s": ["a1"]}
    pair.client_sends(m1.make_ack())
    assert pair.server.unacknowledged == {}


def test_committed_ack_after_unsubscribe_is_ignored() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="s", ack="client"))
    (m1,) = deliver(pair, "s", "1")
    pair.client_sends(Begin(transaction="t"))
    pair.client_sends(m1.make_ack(transaction="t"))
    pair.client_sends(Unsubscribe(id="s"))
    pair.client_sends(Commit(transaction="t"))
    assert pair.server.unacknowledged == {}


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"SEND\ndestination:/q\ntransaction:t9\n\n\x00", "SEND names unknown transaction 't9'"),
        (b"COMMIT\ntransaction:t9\n\n\x00", "COMMIT names unknown transaction 't9'"),
        (b"ABORT\ntransaction:t9\n\n\x00", "ABORT names unknown transaction 't9'"),
        (b"BEGIN\n\n\x00", "BEGIN frame has no 'transaction' header"),
    ],
)
def test_transaction_errors(frame: bytes, message: str) -> None:
    assert message in remote_error(connected_server(), frame).message


def test_ack_in_unknown_transaction() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="s", ack="client"))
    deliver(pair, "s", "1")
    exc = remote_error(pair.server, b"ACK\nid:a1\ntransaction:zz\n\n\x00")
    assert "ACK names unknown transaction 'zz'" in exc.message


def test_begin_twice_and_limit() -> None:
    server = connected_server(limits=Limits(max_transactions=1))
    server.receive_data(b"BEGIN\ntransaction:t\n\n\x00")
    drain(server)
    exc = remote_error(server, b"BEGIN\ntransaction:t\n\n\x00")
    assert "BEGIN of transaction 't', which is already open" in exc.message
    server = connected_server(limits=Limits(max_transactions=1))
    server.receive_data(b"BEGIN\ntransaction:t\n\n\x00")
    drain(server)
    exc = remote_error(server, b"BEGIN\ntransaction:u\n\n\x00")
    assert "limit of 1 open transactions" in exc.message


# -- connection config --------------------------------------------------------------------------


def test_grace_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="grace"):
        ClientConnection(grace=0.5)


def test_limits_reach_the_parser() -> None:
    server = ServerConnection(limits=Limits(max_header_size=64))
    exc = remote_error(server, b"CONNECT\nx:" + b"a" * 100 + b"\n\n\x00")
    assert "64-byte limit" in exc.message


def test_subscriptions_property_is_a_copy() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="s"))
    subs = pair.client.subscriptions
    subs.clear()
    assert pair.client.subscriptions == {"s": "auto"}


def test_data_after_eof_is_a_local_error() -> None:
    server = ServerConnection()
    server.receive_data(b"")
    with pytest.raises(LocalProtocolError, match="after EOF"):
        server.receive_data(b"CONNECT\n\n\x00")
    assert server.state is State.ERROR
