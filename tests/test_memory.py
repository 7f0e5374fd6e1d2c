"""Failed parsers and connections are freed by reference counting alone (issue 9 item 12).

A stored exception whose traceback holds the frames that raised it would hold
the object that failed (and its receive buffer) in a reference cycle, freed
only when the cycle collector runs. These tests disable the collector and
check that a weak reference dies as soon as the last strong one goes.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator

import pytest

from stomp_proto import (
    ClientConnection,
    Connect,
    FrameParser,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    Send,
    ServerConnection,
)

from .helpers import Pair


@pytest.fixture(autouse=True)
def no_cycle_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _fail_twice(call: Callable[[], object]) -> None:
    for _ in range(2):  # the first failure, then the sticky one
        with pytest.raises(ProtocolError):
            call()


def test_a_failed_parser_is_freed_by_refcounting() -> None:
    parser = FrameParser(max_body_size=10)
    parser.receive_data(b"SEND\n\n" + b"x" * 100_000)  # a buffer worth freeing
    _fail_twice(parser.next_frame)
    ref = weakref.ref(parser)
    del parser
    assert ref() is None


def test_a_failed_parser_is_freed_after_feed() -> None:
    parser = FrameParser()
    with pytest.raises(RemoteProtocolError):
        parser.feed(b"\x16\x03\x01")
    _fail_twice(parser.next_frame)
    ref = weakref.ref(parser)
    del parser
    assert ref() is None


def test_a_server_that_refused_its_peer_is_freed() -> None:
    server = ServerConnection()
    server.receive_data(b"SEND\ndestination:/q\n\n\x00")
    _fail_twice(server.next_event)
    server.send(server.error_for(RemoteProtocolError("bye")))
    ref = weakref.ref(server)
    del server
    assert ref() is None


def test_a_client_whose_peer_broke_the_protocol_is_freed() -> None:
    pair = Pair().connect()
    client = pair.client
    del pair
    client.receive_data(b"RECEIPT\nreceipt-id:nobody-asked\n\n\x00")
    _fail_twice(client.next_event)
    ref = weakref.ref(client)
    del client
    assert ref() is None


def test_a_connection_misused_locally_is_freed() -> None:
    client = ClientConnection()
    with pytest.raises(LocalProtocolError):
        client.send(Send(destination="/q"))  # before CONNECT
    with pytest.raises(LocalProtocolError):
        client.send(Connect())  # the connection is in ERROR now
    ref = weakref.ref(client)
    del client
    assert ref() is None


def test_the_sticky_error_is_the_same_object_while_it_is_held() -> None:
    server = ServerConnection()
    server.receive_data(b"FOO\n\n\x00")
    with pytest.raises(RemoteProtocolError) as first:
        server.next_event()
    with pytest.raises(RemoteProtocolError) as again:
        server.next_event()
    assert again.value is first.value


def test_once_dropped_the_sticky_error_is_rebuilt_equal() -> None:
    server = ServerConnection()
    server.receive_data(b"SEND\ndestination:/q\nreceipt:r1\n\n\x00")
    with pytest.raises(RemoteProtocolError) as first:
        server.next_event()
    message, receipt = first.value.message, first.value.receipt_id
    assert receipt == "r1"
    del first
    with pytest.raises(RemoteProtocolError) as again:
        server.next_event()
    assert type(again.value) is RemoteProtocolError
    assert (again.value.message, again.value.receipt_id) == (message, receipt)
    assert again.value.error_headers == ()


def test_error_headers_survive_the_rebuild() -> None:
    server = ServerConnection(versions=("1.2",))
    server.receive_data(b"CONNECT\naccept-version:1.0\n\n\x00")
    with pytest.raises(RemoteProtocolError):
        server.next_event()
    with pytest.raises(RemoteProtocolError) as again:
        server.next_event()
    assert again.value.error_headers == (("version", "1.2"),)
