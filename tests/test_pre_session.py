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
    RemoteProtocolError,
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
