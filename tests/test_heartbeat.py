"""Heart-beats with a fake clock: negotiation, sending, silence, grace (§4 C)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stomp_proto import (
    ClientConnection,
    Connect,
    Connected,
    Disconnect,
    Error,
    RemoteProtocolError,
    Send,
    ServerConnection,
    State,
)
from stomp_proto._heartbeat import HeartbeatTimer, negotiate

from .helpers import Pair, drain


@pytest.mark.parametrize(
    ("client", "server", "expected"),
    [
        ((10000, 10000), (0, 0), (0, 0)),
        ((10000, 10000), (10000, 10000), (10000, 10000)),
        ((10000, 10000), (5000, 20000), (20000, 10000)),
        ((0, 10000), (10000, 10000), (0, 10000)),
        ((500, 15000), (15000, 1000), (1000, 15000)),
        ((0, 0), (1000, 1000), (0, 0)),
    ],
)
def test_negotiation_worked_examples(
    client: tuple[int, int], server: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert negotiate(client, server) == expected


@given(
    st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
    st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
)
def test_negotiation_formula(client: tuple[int, int], server: tuple[int, int]) -> None:
    (cx, cy), (sx, sy) = client, server
    tcs, tsc = negotiate(client, server)
    assert tcs == (max(cx, sy) if cx and sy else 0)
    assert tsc == (max(sx, cy) if sx and cy else 0)


def beating_pair(
    client_beat: tuple[int, int] = (1000, 1000),
    server_beat: tuple[int, int] = (1000, 1000),
    grace: float = 2.0,
    version: str = "1.2",
) -> Pair:
    pair = Pair(
        client=ClientConnection(grace=grace),
        server=ServerConnection(heart_beat=server_beat, grace=grace),
    )
    return pair.connect(version, now=0.0, heart_beat=client_beat)


def test_connected_starts_the_timers_on_both_sides() -> None:
    pair = beating_pair((1000, 3000), (2000, 500))
    # Tcs = max(1000, 500) = 1000; Tsc = max(2000, 3000) = 3000
    assert pair.client.heartbeat_intervals == (1000, 3000)
    assert pair.server.heartbeat_intervals == (3000, 1000)
    assert pair.client.next_deadline() == 1.0
    assert pair.server.next_deadline() == 2.0  # the client's 1 s times grace 2


def test_no_timers_before_connected() -> None:
    client = ClientConnection()
    client.send(Connect(heart_beat=(1000, 1000)), now=0.0)
    assert client.next_deadline() is None
    assert client.handle_timer(60.0) == b""
    server = ServerConnection(heart_beat=(1000, 1000))
    assert server.handle_timer(60.0) == b""
    assert server.next_deadline() is None


def test_sending_a_heartbeat_when_idle() -> None:
    pair = beating_pair((1000, 0), (0, 1000))
    client = pair.client
    assert client.handle_timer(0.999) == b""
    assert client.handle_timer(1.0) == b"\n"
    assert client.next_deadline() == 2.0


def test_an_outgoing_frame_delays_the_heartbeat() -> None:
    pair = beating_pair((1000, 0), (0, 1000))
    client = pair.client
    client.send(Send(destination="/q"), now=0.9)
    assert client.next_deadline() == pytest.approx(1.9)
    assert client.handle_timer(1.0) == b""


def test_sends_without_now_are_stamped_with_the_latest_time() -> None:
    pair = beating_pair((1000, 0), (0, 1000))
    client = pair.client
    client.handle_timer(0.5)
    client.send(Send(destination="/q"))
    assert client.next_deadline() == 1.5


def test_silent_peer_is_dead_after_grace_times_interval() -> None:
    pair = beating_pair((0, 1000), (1000, 0), grace=2.0)
    client = pair.client
    assert client.next_deadline() == 2.0
    assert client.handle_timer(1.999) == b""
    with pytest.raises(RemoteProtocolError, match=r"no data from the server for 2\.000 s") as info:
        client.handle_timer(2.0)
    assert "heart-beat every 1000 ms, grace x2" in info.value.message
    assert client.state is State.ERROR
    assert client.next_deadline() is None
    assert client.handle_timer(3.0) == b""


def test_grace_is_configurable() -> None:
    pair = beating_pair((0, 1000), (1000, 0), grace=3.0)
    assert pair.client.handle_timer(2.9) == b""
    with pytest.raises(RemoteProtocolError):
        pair.client.handle_timer(3.0)


def test_any_received_byte_counts_as_life() -> None:
    pair = beating_pair((0, 1000), (1000, 0))
    client = pair.client
    big = b"MESSAGE\ndestination:/q\nmessage-id:1\nsubscription:s\n\n" + b"x" * 20 + b"\x00"
    pair.client_sends(__import__("stomp_proto").Subscribe(destination="/q", id="s"), now=0.0)
    now = 0.0
    for i in range(len(big)):
        now += 1.5  # far apart, but each within the 2 s window
        client.handle_timer(now)
        client.receive_data(big[i : i + 1], now)
    assert [type(e).__name__ for e in drain(client)] == ["Message"]


def test_received_bytes_without_now_count_at_the_next_timer_call() -> None:
    pair = beating_pair((0, 1000), (1000, 0))
    client = pair.client
    client.receive_data(b"\n")
    assert client.handle_timer(2.0) == b""  # stamped now, not dead
    assert client.next_deadline() == 4.0
    with pytest.raises(RemoteProtocolError):
        client.handle_timer(4.0)


def test_timers_start_at_the_first_timer_call_when_no_time_was_given() -> None:
    pair = Pair(server=ServerConnection(heart_beat=(1000, 1000))).connect(heart_beat=(1000, 1000))
    client = pair.client
    assert client.next_deadline() == 0.0
    assert client.handle_timer(100.0) == b""
    assert client.next_deadline() == 101.0


def test_1_0_sessions_have_no_heartbeats() -> None:
    pair = beating_pair(version="1.0")
    assert pair.client.heartbeat_intervals == (0, 0)
    assert pair.server.next_deadline() is None


def test_1_0_connected_heartbeat_is_ignored_by_the_client() -> None:
    client = ClientConnection()
    client.send(Connect(accept_version=(), heart_beat=(1000, 1000)), now=0.0)
    client.receive_data(b"CONNECTED\nheart-beat:1000,1000\n\n\x00", 0.0)
    connected = client.next_event()
    assert isinstance(connected, Connected)
    assert connected.heart_beat == (1000, 1000)
    assert client.next_deadline() is None


def test_timers_stop_on_error_disconnect_and_eof() -> None:
    pair = beating_pair()
    pair.server_sends(Error(message="x"))
    assert pair.client.next_deadline() is None is pair.server.next_deadline()
    pair = beating_pair()
    pair.client_sends(Disconnect())
    assert pair.client.next_deadline() is None is pair.server.next_deadline()
    pair = beating_pair()
    pair.client.receive_data(b"")
    drain(pair.client)
    assert pair.client.next_deadline() is None


def test_server_sends_no_heartbeat_before_connected() -> None:
    server = ServerConnection(heart_beat=(1000, 1000))
    server.receive_data(b"CONNECT\naccept-version:1.2\nheart-beat:1000,1000\n\n\x00", 0.0)
    drain(server)
    assert server.handle_timer(60.0) == b""
    assert server.send(server.accept(), now=60.0).startswith(b"CONNECTED")
    assert server.handle_timer(61.0) == b"\n"


@pytest.mark.parametrize("value", [b"abc", b"1", b"1,2,3", b"-1,0", b"1.5,0", b" 1,0"])
def test_malformed_heart_beat_header(value: bytes) -> None:
    server = ServerConnection()
    server.receive_data(b"CONNECT\naccept-version:1.2\nheart-beat:" + value + b"\n\n\x00")
    with pytest.raises(RemoteProtocolError, match="heart-beat:.* is not two non-negative integers"):
        server.next_event()
    assert server.state is State.ERROR


def test_timer_without_any_interval_has_no_deadline() -> None:
    timer = HeartbeatTimer(0, 0, 2.0, 0.0)
    assert timer.deadline() is None
    assert timer.poll(100.0) == (False, None)
    timer.sent(None)
    assert timer.last_send == 0.0


def test_no_timeout_while_the_caller_is_not_reading() -> None:
    pair = beating_pair((1000, 1000), (1000, 1000))
    client = pair.client
    assert client.handle_timer(1.0, reading=False) == b"\n"  # our beats still go out
    assert client.handle_timer(2.5, reading=False) == b"\n"
    assert client.handle_timer(4.0) == b"\n"  # silence counted from 2.5 again
    with pytest.raises(RemoteProtocolError):
        client.handle_timer(4.5)
