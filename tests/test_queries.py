"""The core's queries, so that adapters and brokers ask instead of re-deriving (issue 10).

``Subscribe/Unsubscribe.subscription_key``, ``subscription_for(message)``,
``ack_key(event)`` and ``check(event)``.
"""

from __future__ import annotations

import pytest

from stomp_proto import (
    Ack,
    ClientConnection,
    Connect,
    Connected,
    Error,
    Heartbeat,
    LocalProtocolError,
    Message,
    Nack,
    RemoteProtocolError,
    Send,
    ServerConnection,
    State,
    Subscribe,
    Unsubscribe,
)

from .helpers import Pair


def test_subscription_key_of_subscribe_and_unsubscribe() -> None:
    assert Subscribe(destination="/q", id="s1").subscription_key == "s1"
    assert Subscribe(destination="/q").subscription_key == "/q"
    assert Unsubscribe(id="s1", destination="/q").subscription_key == "s1"
    assert Unsubscribe(destination="/q").subscription_key == "/q"
    assert Unsubscribe().subscription_key is None


def _message(n: int, sub: str | None, ack: str | None = None, dest: str = "/q") -> Message:
    return Message(destination=dest, message_id=f"m{n}", subscription=sub, ack=ack)


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
@pytest.mark.parametrize("role", ["client", "server"])
def test_subscription_for_by_id(version: str, role: str) -> None:
    pair = Pair().connect(version)
    pair.client_sends(Subscribe(destination="/a", id="s1"))
    pair.client_sends(Subscribe(destination="/b", id="s2"))
    conn = pair.client if role == "client" else pair.server
    assert conn.subscription_for(_message(1, "s2")) == "s2"
    assert conn.subscription_for(_message(1, "nope")) is None


def test_subscription_for_without_subscription_header() -> None:
    pair = Pair().connect("1.2")
    pair.client_sends(Subscribe(destination="/a", id="s1"))
    # 1.1+ MESSAGEs must name their subscription: no fallback.
    assert pair.client.subscription_for(_message(1, None, dest="/a")) is None


def test_subscription_for_in_1_0_by_destination_and_the_only_one() -> None:
    pair = Pair().connect("1.0")
    pair.client_sends(Subscribe(destination="/a"))
    for conn in (pair.client, pair.server):
        # The only subscription takes a MESSAGE without subscription, whatever its destination.
        assert conn.subscription_for(_message(1, None, dest="/a")) == "/a"
        assert conn.subscription_for(_message(1, None, dest="/other")) == "/a"
    pair.client_sends(Subscribe(destination="/b"))
    for conn in (pair.client, pair.server):
        assert conn.subscription_for(_message(1, None, dest="/b")) == "/b"
        assert conn.subscription_for(_message(1, None, dest="/other")) is None
        # A subscription header that names nothing active gets no fallback.
        assert conn.subscription_for(_message(1, "x", dest="/a")) is None


def test_subscription_for_answers_what_the_server_may_send() -> None:
    # Issue 9 item 19: two 1.0 SUBSCRIBEs without id; a MESSAGE for an unknown
    # destination is refused, one asked for by subscription_for is accepted.
    pair = Pair().connect("1.0")
    pair.client_sends(Subscribe(destination="/qu\x0b"))
    pair.client_sends(Subscribe(destination="1.0 /qu\x0b"))
    wrong = _message(2, None, dest="/fuzz")
    assert pair.server.subscription_for(wrong) is None
    assert isinstance(pair.server.check(wrong), LocalProtocolError)
    assert pair.server.state is State.CONNECTED
    right = _message(2, None, dest="1.0 /qu\x0b")
    assert pair.server.subscription_for(right) == "1.0 /qu\x0b"
    assert pair.server.check(right) is None
    assert pair.server_sends(right) == [right]


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.2", "k1"), ("1.1", ("m1", "s1")), ("1.0", "m1")],
)
def test_ack_key_is_the_same_for_a_message_and_its_ack(
    version: str, expected: str | tuple[str, str]
) -> None:
    pair = Pair().connect(version)
    pair.client_sends(Subscribe(destination="/q", id="s1", ack="client"))
    message = _message(1, "s1", ack="k1")
    pair.server_sends(message)
    for conn in (pair.client, pair.server):
        assert conn.ack_key(message) == expected
        assert conn.ack_key(message.make_ack()) == expected
        assert conn.unacknowledged == {"s1": [expected]}
        if version != "1.0":
            assert conn.ack_key(message.make_nack()) == expected


def test_ack_key_is_none_without_the_headers_or_before_the_session() -> None:
    assert ClientConnection().ack_key(_message(1, "s", ack="k")) is None
    pair = Pair().connect("1.2")
    assert pair.client.ack_key(_message(1, "s")) is None  # an auto MESSAGE has no ack
    assert pair.client.ack_key(Ack(message_id="m1", subscription="s")) is None
    pair = Pair().connect("1.1")
    assert pair.client.ack_key(Nack(message_id="m1")) is None
    assert pair.client.ack_key(_message(1, None)) is None


def test_check_refuses_what_the_adapter_used_to_pre_check() -> None:
    pair = Pair().connect("1.0")
    pair.client_sends(Subscribe(destination="/q", ack="client"))
    message = _message(1, None, dest="/q")
    pair.server_sends(message)
    client = pair.client
    nack = client.check(message.make_nack())
    assert isinstance(nack, LocalProtocolError)
    assert nack.message == "NACK does not exist in STOMP 1.0"
    nul = client.check(Send(destination="/q", body=b"a\0b", content_length=False))
    assert isinstance(nul, LocalProtocolError) and "NUL" in nul.message
    lf = client.check(Send(destination="/q\nx"))
    assert isinstance(lf, LocalProtocolError)
    assert client.state is State.CONNECTED  # none of these was fatal
    assert client.check(message.make_ack()) is None
    assert client.unacknowledged == {"/q": ["m1"]}  # and none changed the books
    client.send(message.make_ack())
    assert client.unacknowledged == {}


def test_check_before_the_session_and_in_error() -> None:
    client = ClientConnection()
    assert client.check(Heartbeat()) is not None
    assert client.check(Connect(accept_version=("9.9",))) is not None
    assert client.check(Connect()) is None
    server = ServerConnection()
    server.receive_data(b"FOO\n\n\x00")
    with pytest.raises(RemoteProtocolError):
        server.next_event()
    assert server.check(Error(message="bye")) is None  # the ERROR that answers it
    refused = server.check(_message(1, "s"))
    assert refused is not None and "ERROR state" in refused.message


def test_check_of_connected_names_the_negotiated_version() -> None:
    server = ServerConnection()
    server.receive_data(b"CONNECT\naccept-version:1.1\n\n\x00")
    server.next_event()
    assert server.check(server.accept()) is None
    wrong = server.check(Connected(version="1.2"))
    assert wrong is not None and "negotiated version 1.1" in wrong.message


def test_check_of_receipts() -> None:
    pair = Pair().connect()
    client = pair.client
    assert client.check(Send(destination="/q", receipt="r1")) is None
    assert client.pending_receipts == {}
    client.send(Send(destination="/q", receipt="r1"))
    again = client.check(Subscribe(destination="/q", id="s", receipt="r1"))
    assert again is not None and "reuses receipt id 'r1'" in again.message
    empty = client.check(Send(destination="/q", receipt=""))
    assert empty is not None and "empty receipt" in empty.message
    assert client.state is State.CONNECTED and client.subscriptions == {}
