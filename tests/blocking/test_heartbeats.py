"""Heart-beats and the handshake's edge cases, against a scripted server.

The client's clock is fake: tests move it and wake the reader thread, so no
test waits for a heart-beat interval to pass.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from stomp_proto import Connected, Error, Message, Receipt, Send, Subscribe
from stomp_proto.blocking import Client, ConnectionLost, StompError

from .conftest import HOST
from .scripted import ScriptedServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    s = ScriptedServer(heart_beat=(1000, 1000))
    yield s
    s.close()


def open_client(server: ScriptedServer, clock: FakeClock, **options: object) -> Client:
    client = Client(
        HOST,
        server.port,
        heart_beat=(1000, 1000),
        clock=clock,
        timeout=5,
        disconnect_timeout=0.2,
        **options,  # type: ignore[arg-type]
    )
    result: list[Client] = []
    opener = threading.Thread(target=lambda: result.append(client.open()))
    opener.start()
    server.accept_connect()
    opener.join(5)
    assert result == [client]
    return client


def test_a_heart_beat_goes_out_when_the_send_interval_is_due(server: ScriptedServer) -> None:
    clock = FakeClock()
    client = open_client(server, clock)
    try:
        assert client.connected is not None
        assert client.connected.heart_beat == (1000, 1000)
        clock.now += 0.5
        client._wake()
        assert not server.wait_beat(0.2)  # not due yet
        clock.now += 0.5
        client._wake()
        assert server.wait_beat(5)
        clock.now += 1.0
        client._wake()
        assert server.wait_beat(5)
        assert server.beats == 2
    finally:
        client.disconnect()


def test_a_silent_server_ends_the_session(server: ScriptedServer) -> None:
    clock = FakeClock()
    client = open_client(server, clock)
    sub = client.subscribe("/queue/q", receipt=False)
    subscribe = server.next_event()
    assert isinstance(subscribe, Subscribe)
    clock.now += 2.5
    # A sign of life at 1002.5 that the test can see the client read (a bare
    # EOL could be read after the clock moves on, and be stamped later).
    alive = Message(destination="/queue/q", message_id="m-1", subscription=subscribe.id)
    server.send_raw(server.conn.send(alive))
    assert sub.get(timeout=5).message_id == "m-1"
    assert server.wait_beat(5)  # (the client's own beat, due at 1001)
    clock.now += 2.9  # 2.9 s after the last byte: within grace (3 x 1 s)
    client._wake()
    assert server.wait_beat(5)
    assert client.is_connected
    clock.now += 0.2  # now 3.1 s of silence
    client._wake()
    with pytest.raises(ConnectionLost, match="no data from the server"):
        sub.get(timeout=5)
    assert client.closed
    client.disconnect()


def test_back_pressure_is_not_held_against_the_server(server: ScriptedServer) -> None:
    clock = FakeClock()
    client = open_client(server, clock, buffer=1)
    try:
        sub = client.subscribe("/queue/q", receipt=False)
        subscribe = server.next_event()
        assert isinstance(subscribe, Subscribe)
        # Three MESSAGEs in one write, so the reader parses them in one go: once
        # m0 is buffered, it is waiting for room for m1 and reads nothing.
        server.send_raw(
            b"".join(
                server.conn.send(
                    Message(destination="/queue/q", message_id=f"m{i}", subscription=subscribe.id)
                )
                for i in range(3)
            )
        )
        deadline = time.monotonic() + 5
        while sub.buffered < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert sub.buffered == 1
        # Now the server stays silent for far longer than the grace.
        clock.now += 10
        assert server.wait_beat(5)  # beats still go out while the reader waits
        assert client.is_connected
        got = [sub.get(timeout=5).message_id for _ in range(3)]
        assert got == ["m0", "m1", "m2"]
        assert client.is_connected
    finally:
        client.disconnect()


def test_heart_beats_before_connected_are_skipped_and_error_refuses() -> None:
    server = ScriptedServer()
    errors: list[BaseException] = []

    def open_() -> None:
        try:
            Client(HOST, server.port, timeout=5).open()
        except BaseException as exc:
            errors.append(exc)

    opener = threading.Thread(target=open_)
    opener.start()
    try:
        server.next_event()  # CONNECT
        server.send_raw(b"\n\n")
        server.send(Error(message="no entry", body=b"go away"))
        opener.join(5)
    finally:
        server.close()
    assert isinstance(errors[0], StompError)
    assert str(errors[0]) == "no entry: go away"
    assert errors[0].error.body == b"go away"


def test_eof_before_connected_is_connection_lost() -> None:
    server = ScriptedServer()
    errors: list[BaseException] = []

    def open_() -> None:
        try:
            Client(HOST, server.port, timeout=5).open()
        except BaseException as exc:
            errors.append(exc)

    opener = threading.Thread(target=open_)
    opener.start()
    server.next_event()
    assert server.sock is not None
    server.sock.close()
    opener.join(5)
    server.close()
    assert isinstance(errors[0], ConnectionLost)


def test_frames_right_behind_connected_are_not_lost() -> None:
    server = ScriptedServer()
    client = Client(HOST, server.port, timeout=5, heart_beat=(0, 0), disconnect_timeout=0.2)
    opener = threading.Thread(target=client.open)
    opener.start()
    try:
        server.next_event()
        # CONNECTED and a RECEIPT in one write: the handshake must leave the
        # RECEIPT buffered in the core for the reader.
        data = server.conn.send(server.conn.accept())
        server.send_raw(data)
        opener.join(5)
        assert isinstance(client.connected, Connected)
        sent: list[object] = []
        t = threading.Thread(
            target=lambda: sent.append(client.send("/queue/a", b"x", receipt="r-1"))
        )
        t.start()
        send = server.next_event()
        assert isinstance(send, Send)
        server.send(Receipt(receipt_id="r-1"))
        t.join(5)
        assert isinstance(sent[0], Receipt)
    finally:
        client.disconnect()
        server.close()
