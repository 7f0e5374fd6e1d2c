"""Cumulative ``client`` ACKs cost what they settle, not what is unacknowledged.

Issue 9 item 6 and issue 10: each ACK copied the whole unacknowledged list, so
50,000 messages ACKed one by one took quadratic time. The cost is counted
here, not timed: a counting OrderedDict stands in for the books' per-
subscription queues and records every entry any ACK iterates or pops.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import pytest

import stomp_proto
import stomp_proto._tracking as tracking
from stomp_proto import Ack, Begin, Commit, Message, ServerConnection, Subscribe

from .helpers import Pair, drain


class CountingOrderedDict(OrderedDict[Any, None]):
    """An OrderedDict that counts the entries visited through it."""

    visited = 0

    def __iter__(self) -> Iterator[Any]:
        for key in super().__iter__():
            CountingOrderedDict.visited += 1
            yield key

    def keys(self) -> Any:
        CountingOrderedDict.visited += len(self)
        return super().keys()

    def popitem(self, last: bool = True) -> tuple[Any, None]:
        CountingOrderedDict.visited += 1
        return super().popitem(last)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> type[CountingOrderedDict]:
    monkeypatch.setattr(tracking, "OrderedDict", CountingOrderedDict)
    CountingOrderedDict.visited = 0
    return CountingOrderedDict


def _server_with_unacked(n: int, mode: str = "client", version: str = "1.2") -> ServerConnection:
    pair = Pair().connect(version)
    pair.client_sends(Subscribe(destination="/q", id="s", ack=mode))
    server = pair.server
    for i in range(n):
        server.send(Message(destination="/q", message_id=f"m{i}", subscription="s", ack=f"a{i}"))
    return server


def _ack(server: ServerConnection, i: int, version: str = "1.2") -> None:
    ident = f"id:a{i}" if version == "1.2" else f"message-id:m{i}\nsubscription:s"
    server.receive_data(f"ACK\n{ident}\n\n\x00".encode())
    assert [type(e) for e in drain(server)] == [Ack]


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_acking_each_message_in_order_is_linear(
    counting: type[CountingOrderedDict], version: str
) -> None:
    n = 2000
    server = _server_with_unacked(n, version=version)
    counting.visited = 0
    for i in range(n):
        _ack(server, i, version)
    assert server.unacknowledged == {}
    # One pop per message settled. Copying the queue per ACK visits n(n+1)/2.
    assert counting.visited <= 2 * n


def test_one_ack_costs_the_messages_it_settles(counting: type[CountingOrderedDict]) -> None:
    server = _server_with_unacked(5000)
    counting.visited = 0
    _ack(server, 9)
    assert counting.visited == 10  # m0..m9, not the 4,990 still waiting
    assert len(server.unacknowledged["s"]) == 4990


def test_client_individual_acks_visit_nothing(counting: type[CountingOrderedDict]) -> None:
    server = _server_with_unacked(1000, mode="client-individual")
    counting.visited = 0
    for i in reversed(range(1000)):
        _ack(server, i)
    assert counting.visited == 0 and server.unacknowledged == {}


def test_cumulative_ack_settles_exactly_the_earlier_messages() -> None:
    server = _server_with_unacked(6)
    _ack(server, 2)
    assert server.unacknowledged == {"s": ["a3", "a4", "a5"]}
    _ack(server, 3)
    assert server.unacknowledged == {"s": ["a4", "a5"]}
    _ack(server, 5)
    assert server.unacknowledged == {}


def test_cumulative_ack_in_a_transaction_settles_at_commit() -> None:
    pair = Pair().connect()
    pair.client_sends(Subscribe(destination="/q", id="s", ack="client"))
    messages = [
        Message(destination="/q", message_id=f"m{i}", subscription="s", ack=f"a{i}")
        for i in range(4)
    ]
    for message in messages:
        pair.server_sends(message)
    pair.client_sends(Begin(transaction="t"))
    pair.client_sends(messages[1].make_ack(transaction="t"))
    pair.client_sends(messages[2].make_ack(transaction="t"))  # overlaps the first
    assert pair.server.unacknowledged == {"s": ["a0", "a1", "a2", "a3"]}
    pair.client_sends(Commit(transaction="t"))
    assert pair.server.unacknowledged == {"s": ["a3"]}
    assert pair.client.unacknowledged == pair.server.unacknowledged


def test_cumulative_acks_of_two_subscriptions_are_independent() -> None:
    pair = Pair().connect()
    for sub in ("s1", "s2"):
        pair.client_sends(Subscribe(destination="/q", id=sub, ack="client"))
    for i in range(3):
        for sub in ("s1", "s2"):
            msg = Message(
                destination="/q", message_id=f"{sub}-{i}", subscription=sub, ack=f"{sub}-{i}"
            )
            pair.server_sends(msg)
    pair.client_sends(Ack(id="s2-1"))
    assert pair.server.unacknowledged == {"s1": ["s1-0", "s1-1", "s1-2"], "s2": ["s2-2"]}


# -- Ack/Nack/Commit.settles: the core says what an ACK settled (issue 10) -------------


def _pair_with(mode: str, n: int, version: str = "1.2") -> tuple[Pair, list[Message]]:
    pair = Pair().connect(version)
    pair.client_sends(Subscribe(destination="/q", id="s", ack=mode))
    messages = [
        Message(destination="/q", message_id=f"m{i}", subscription="s", ack=f"a{i}")
        for i in range(n)
    ]
    for message in messages:
        pair.server_sends(message)
    return pair, messages


@pytest.mark.parametrize(
    ("version", "keys"),
    [("1.2", ["a0", "a1", "a2"]), ("1.1", [("m0", "s"), ("m1", "s"), ("m2", "s")])],
)
def test_a_received_cumulative_ack_says_what_it_settled(version: str, keys: list[object]) -> None:
    pair, messages = _pair_with("client", 5, version)
    sent = messages[2].make_ack()
    (ack,) = pair.client_sends(sent)
    assert isinstance(ack, Ack)
    assert ack.settles == tuple(keys)
    assert [pair.server.ack_key(m) for m in messages[:3]] == keys
    assert sent.settles == ()  # what the client sent is left as it was
    assert ack == dataclasses.replace(ack, settles=())  # settles is not part of equality


def test_a_received_individual_ack_or_nack_settles_one() -> None:
    pair, messages = _pair_with("client-individual", 3)
    (nack,) = pair.client_sends(messages[1].make_nack())
    assert nack.settles == ("a1",)  # type: ignore[attr-defined]


def test_acks_in_a_transaction_settle_at_commit() -> None:
    pair, messages = _pair_with("client", 4)
    pair.client_sends(Begin(transaction="t"))
    (first,) = pair.client_sends(messages[1].make_ack(transaction="t"))
    (second,) = pair.client_sends(messages[2].make_ack(transaction="t"))
    assert first.settles == second.settles == ()  # type: ignore[attr-defined]
    (commit,) = pair.client_sends(Commit(transaction="t"))
    assert isinstance(commit, Commit)
    assert commit.settles == ("a0", "a1", "a2")
    # Each held ACK learns what it settled when the COMMIT is handed out.
    assert first.settles == ("a0", "a1")  # type: ignore[attr-defined]
    assert second.settles == ("a2",)  # type: ignore[attr-defined]
    assert pair.server.unacknowledged == {"s": ["a3"]}


def test_an_aborted_transaction_settles_nothing() -> None:
    pair, messages = _pair_with("client-individual", 2)
    pair.client_sends(Begin(transaction="t"))
    (nack,) = pair.client_sends(messages[0].make_nack(transaction="t"))
    pair.client_sends(stomp_proto.Abort(transaction="t"))
    assert nack.settles == ()  # type: ignore[attr-defined]
    assert pair.server.unacknowledged == {"s": ["a0", "a1"]}
