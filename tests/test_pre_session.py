"""Before the session: leading EOLs, and refusals that always have an ERROR to send.

Issue 9 item 15: ``\\nCONNECT...`` was answered by a bare close. RabbitMQ and
ActiveMQ skip EOLs before CONNECT (stomp-notes #8, A7), and every refusal
before or at CONNECT must give the server an ERROR frame to send.
"""

from __future__ import annotations

import pytest

from stomp_proto import (
    NEED_DATA,
    ClientConnection,
    Connect,
    ConnectionClosed,
    Error,
    Frame,
    FrameParser,
    Heartbeat,
    Limits,
    RemoteProtocolError,
    Send,
    ServerConnection,
    State,
)

from .helpers import drain

CONNECT = b"CONNECT\naccept-version:1.2\nhost:/\n\n\x00"


@pytest.mark.parametrize(
    "before", [b"\n", b"\r\n", b"\n\n\n", b"\r\n\n\x00\r\n", b"\x00\x00\n"], ids=repr
)
@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_eols_before_connect_are_skipped(before: bytes, bytewise: bool) -> None:
    server = ServerConnection()
    data = before + CONNECT
    events = []
    for chunk in [data[i : i + 1] for i in range(len(data))] if bytewise else [data]:
        server.receive_data(chunk)
        events += drain(server)
    assert events == [Connect(accept_version=("1.2",), host="/")]
    assert server.state is State.CONNECTING


def test_only_eols_then_eof_is_a_clean_close() -> None:
    server = ServerConnection()
    server.receive_data(b"\n\r\n")
    assert server.next_event() is NEED_DATA
    server.receive_data(b"")
    assert server.next_event() == ConnectionClosed()


def test_eols_after_connect_are_heartbeats_again() -> None:
    server = ServerConnection()
    server.receive_data(b"\n" + CONNECT)
    assert isinstance(server.next_event(), Connect)
    server.send(server.accept())
    server.receive_data(b"\n")
    assert drain(server) == [Heartbeat()]


def test_a_client_still_sees_eols_before_connected_as_heartbeats() -> None:
    client = ClientConnection()
    client.send(Connect())
    client.receive_data(b"\n")
    assert drain(client) == [Heartbeat()]


TLS_CLIENT_HELLO = bytes.fromhex("160301020001000001fc0303") + bytes(32)

REFUSED = {
    "tls-client-hello": TLS_CLIENT_HELLO,
    "http-request": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "eols-then-garbage": b"\n\r\n\x16\x03",
    "lowercase-connect": b"connect\n\n\x00",
    "cr-without-lf": b"\rX",
    "send-before-connect": b"SEND\ndestination:/q\nreceipt:r1\n\n\x00",
    "connected-from-a-client": b"CONNECTED\nversion:1.2\n\n\x00",
    "no-common-version": b"CONNECT\naccept-version:2.0\nhost:/\n\n\x00",
    "bad-heart-beat": b"CONNECT\naccept-version:1.2\nheart-beat:x\n\n\x00",
    "header-without-colon": b"CONNECT\naccept-version:1.2\nhost\n\n\x00",
    "invalid-utf8": b"CONNECT\naccept-version:1.2\nlogin:\xff\n\n\x00",
    "bad-content-length": b"CONNECT\ncontent-length:x\n\n\x00",
    "counted-body-without-nul": b"CONNECT\ncontent-length:1\n\nab\x00",
    "eof-inside-connect": b"CONNECT\naccept-version:1.2\n",
    "unsafe-receipt": b"SEND\ndestination:/q\nreceipt:a\\b\n\n\x00",
}


@pytest.mark.parametrize("data", list(REFUSED.values()), ids=list(REFUSED))
def test_every_refusal_before_or_at_connect_has_an_error_frame_to_send(data: bytes) -> None:
    server = ServerConnection()
    server.receive_data(data)
    server.receive_data(b"")
    with pytest.raises(RemoteProtocolError) as info:
        drain(server)
    assert server.state is State.ERROR
    error = server.error_for(info.value)
    wire = server.send(error)
    # Any client, whatever version it asked for, reads it as an ERROR frame.
    (frame,) = FrameParser("1.0").feed(wire)
    assert isinstance(frame, Frame) and frame.command == "ERROR"
    assert frame.get("message") == error.message and error.message
    for offered in [(), ("1.1",), ("1.0", "1.1", "1.2")]:
        client = ClientConnection()
        client.send(Connect(accept_version=offered))
        client.receive_data(wire)
        event, closed = drain(client)
        assert isinstance(event, Error) and event.body == info.value.message.encode()
        assert closed == ConnectionClosed()


# -- Issue 9 item 9: small limits before the session is established --------------------


def test_a_connect_declaring_a_16_mib_body_is_refused_with_its_headers() -> None:
    server = ServerConnection()
    server.receive_data(b"CONNECT\naccept-version:1.2\ncontent-length:16777216\n\n")
    with pytest.raises(RemoteProtocolError, match="exceeds the 8192-byte body limit"):
        server.next_event()
    assert server.send(server.error_for(RemoteProtocolError("x"))).startswith(b"ERROR\n")


def test_a_connect_sending_a_16_mib_body_is_refused_while_it_arrives() -> None:
    server = ServerConnection()
    server.receive_data(b"CONNECT\naccept-version:1.2\n\n")
    assert server.next_event() is NEED_DATA
    chunk = b"x" * 65536
    server.receive_data(chunk)
    with pytest.raises(RemoteProtocolError, match="CONNECT body exceeds the 8192-byte limit"):
        server.next_event()


def test_a_connect_with_a_large_header_block_is_refused() -> None:
    server = ServerConnection()
    server.receive_data(b"CONNECT\naccept-version:1.2\npasscode:" + b"p" * 9000)
    with pytest.raises(RemoteProtocolError, match="header block exceeds the 8192-byte limit"):
        server.next_event()


def test_a_connect_with_a_bearer_token_fits() -> None:
    token = "t" * 4096
    server = ServerConnection()
    server.receive_data(f"CONNECT\naccept-version:1.2\npasscode:{token}\n\n\x00".encode())
    event = server.next_event()
    assert isinstance(event, Connect) and event.passcode == token


def test_the_session_gets_the_full_limits_back() -> None:
    server = ServerConnection()
    big = b"y" * (1 << 20)
    header = "h" * 20_000
    server.receive_data(CONNECT)
    assert isinstance(server.next_event(), Connect)
    server.send(server.accept())
    server.receive_data(
        f"SEND\ndestination:/q\nx:{header}\ncontent-length:{len(big)}\n\n".encode() + big + b"\0"
    )
    (send,) = drain(server)
    assert isinstance(send, Send)
    assert send.body == big and ("x", header) in send.headers


def test_the_connect_limit_is_configurable_and_never_raises_the_others() -> None:
    server = ServerConnection(limits=Limits(max_connect_frame_size=100_000))
    server.receive_data(b"CONNECT\npasscode:" + b"p" * 50_000 + b"\n\n\x00")
    assert isinstance(server.next_event(), Connect)
    server = ServerConnection(limits=Limits(max_header_size=64, max_connect_frame_size=100_000))
    server.receive_data(b"CONNECT\npasscode:" + b"p" * 100 + b"\n\n\x00")
    with pytest.raises(RemoteProtocolError, match="exceeds the 64-byte limit"):
        server.next_event()


def test_a_client_keeps_its_limits_before_connected() -> None:
    # An ERROR before CONNECTED may carry a long text (ActiveMQ sends stack traces).
    client = ClientConnection()
    client.send(Connect())
    text = b"at org.apache.activemq..." * 1000
    client.receive_data(b"ERROR\nmessage:no\ncontent-length:%d\n\n" % len(text) + text + b"\0")
    error = client.next_event()
    assert isinstance(error, Error) and error.body == text
