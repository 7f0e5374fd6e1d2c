"""Every (role, state, event, direction) either follows the table or raises into ERROR.

The h2 approach (tests/test_state_machines.py): drive a connection of each
role into each state, then offer it each kind of event, sent by us or
received from the peer. Either the connection moves as ``TRANSITIONS`` says
(or to CLOSED for the DISCONNECT/RECEIPT/EOF rules), or a ProtocolError is
raised and the connection is in ERROR.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stomp_proto import (
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
    Heartbeat,
    LocalProtocolError,
    Message,
    Nack,
    ProtocolError,
    Receipt,
    Send,
    ServerConnection,
    State,
    Subscribe,
    Unsubscribe,
)
from stomp_proto._state import TRANSITIONS, Role

from .helpers import Pair, drain

Conn = ClientConnection | ServerConnection


def _pair_in(state: State) -> Pair:
    pair = Pair()
    if state is State.AWAITING_CONNECT:
        return pair
    if state is State.CONNECTING:
        pair.client_sends(Connect())
        return pair
    pair.connect()
    pair.client_sends(Subscribe(destination="/q", id="s", ack="client"))
    pair.server_sends(Message(destination="/q", message_id="m", subscription="s", ack="k"))
    pair.client_sends(Begin(transaction="t"))
    pair.client_sends(Send(destination="/q", receipt="r"))
    if state is State.DISCONNECTING:
        pair.client_sends(Disconnect(receipt="bye"))
    elif state is State.CLOSED:
        pair.server_sends(Error(message="x"))
    elif state is State.ERROR:
        for conn in (pair.client, pair.server):
            conn.receive_data(b"FOO\n\n\x00")
            with pytest.raises(ProtocolError):
                drain(conn)
    assert pair.client.state is state is pair.server.state
    return pair


EVENTS: list[Event] = [
    Connect(),
    Connected(version="1.2"),
    Send(destination="/q", transaction="t"),
    Subscribe(destination="/q", id="s2"),
    Unsubscribe(id="s"),
    Ack(id="k"),
    Nack(id="k"),
    Begin(transaction="t2"),
    Commit(transaction="t"),
    Abort(transaction="t"),
    Disconnect(),
    Message(destination="/q", message_id="m2", subscription="s", ack="k2"),
    Receipt(receipt_id="r"),
    Error(message="boom"),
    Heartbeat(),
    ConnectionClosed(),
]
STATES = list(State)


def _offer(conn: Conn, event: Event, *, sent_by_us: bool) -> None:
    if sent_by_us:
        conn.send(event)
        return
    if isinstance(event, Heartbeat):
        conn.receive_data(b"\n")
    elif isinstance(event, ConnectionClosed):
        conn.receive_data(b"")
    else:
        conn.receive_data(event.to_frame("1.2").serialize("1.2"))
    drain(conn)


def _check(conn: Conn, event: Event, *, sent_by_us: bool) -> None:
    before = conn.state
    sender = conn.role if sent_by_us else conn.peer  # type: ignore[attr-defined]
    try:
        _offer(conn, event, sent_by_us=sent_by_us)
    except ProtocolError:
        assert conn.state is State.ERROR
        return
    after = conn.state
    expected = TRANSITIONS.get((sender, before, type(event)))
    if isinstance(event, ConnectionClosed):
        assert after in (State.CLOSED, before)
    elif isinstance(event, Heartbeat):
        assert after is before
    elif expected is not None:
        assert after in (expected, State.CLOSED)
    else:
        # Input that a closed or closing connection no longer reads.
        assert not sent_by_us
        assert before in (State.CLOSED, State.DISCONNECTING, State.CONNECTING)
        assert after is before


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.name)
@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name)
@pytest.mark.parametrize("sent_by_us", [True, False], ids=["send", "receive"])
def test_every_state_and_event(role: Role, state: State, event: Event, sent_by_us: bool) -> None:
    pair = _pair_in(state)
    conn: Conn = pair.client if role is Role.CLIENT else pair.server
    _check(conn, event, sent_by_us=sent_by_us)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(STATES),
    st.lists(
        st.tuples(st.sampled_from(EVENTS), st.booleans(), st.sampled_from(list(Role))), max_size=8
    ),
)
def test_random_sequences_keep_the_invariant(
    state: State, steps: list[tuple[Event, bool, Role]]
) -> None:
    pair = _pair_in(state)
    pick: Callable[[Role], Conn] = lambda r: pair.client if r is Role.CLIENT else pair.server  # noqa: E731
    for event, sent_by_us, role in steps:
        _check(pick(role), event, sent_by_us=sent_by_us)


# -- check(): the verdict of send(), without sending (issue 10) -------------------------


def _books(conn: Conn) -> object:
    return (
        conn.state,
        conn.version,
        conn.subscriptions,
        conn.transactions,
        conn.pending_receipts,
        conn.unacknowledged,
        conn.next_deadline(),
    )


def _check_agrees_with_send(conn: Conn, event: Event) -> None:
    before = _books(conn)
    verdict = conn.check(event)
    assert _books(conn) == before, "check() changed the connection"
    if verdict is None:
        conn.send(event)
    else:
        assert isinstance(verdict, LocalProtocolError)
        with pytest.raises(LocalProtocolError) as info:
            conn.send(event)
        assert info.value.message == verdict.message


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.name)
@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name)
def test_check_says_what_send_would_do(role: Role, state: State, event: Event) -> None:
    pair = _pair_in(state)
    _check_agrees_with_send(pair.client if role is Role.CLIENT else pair.server, event)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(STATES),
    st.lists(st.tuples(st.sampled_from(EVENTS), st.sampled_from(list(Role))), max_size=8),
)
def test_check_agrees_with_send_along_random_sequences(
    state: State, steps: list[tuple[Event, Role]]
) -> None:
    pair = _pair_in(state)
    for event, role in steps:
        conn: Conn = pair.client if role is Role.CLIENT else pair.server
        _check_agrees_with_send(conn, event)
