"""What the asyncio/trio and blocking clients share (stomp_proto._clients)."""

from __future__ import annotations

import random

from stomp_proto import Error
from stomp_proto._clients import ConnectionLost, ReconnectPolicy, StompError


def test_stomp_error_text_joins_message_and_body() -> None:
    both = StompError(Error(message="access refused", body=b"unknown login\n"))
    assert str(both) == "access refused: unknown login" and both.error.message == "access refused"
    assert str(StompError(Error(message="same", body=b"same"))) == "same"
    assert str(StompError(Error(body=b""))) == "ERROR frame"
    assert issubclass(ConnectionLost, ConnectionError)


def test_reconnect_delays_back_off_with_jitter_and_a_cap() -> None:
    policy = ReconnectPolicy(initial_delay=1.0, max_delay=5.0, jitter=0.0, max_attempts=5)
    assert list(policy.delays()) == [1.0, 2.0, 4.0, 5.0, 5.0]
    jittered = list(ReconnectPolicy(jitter=0.5, max_attempts=3).delays(random.Random(7)))
    assert len(jittered) == 3 and all(d >= 0.0 for d in jittered)
    forever = ReconnectPolicy(max_attempts=None, jitter=0.0, max_delay=1.0).delays()
    assert [next(forever) for _ in range(50)][-1] == 1.0


def test_message_view_shows_the_message() -> None:
    from stomp_proto import Message
    from stomp_proto._clients import MessageView

    event = Message(
        destination="/topic/t",
        message_id="m-1",
        subscription="0",
        content_type="application/json",
        body=b'{"price": 1.5}',
        headers=(("x-a", "1"), ("x-a", "2")),
    )
    view = MessageView(event)
    assert (view.destination, view.message_id, view.content_type) == (
        "/topic/t",
        "m-1",
        "application/json",
    )
    assert view.body == b'{"price": 1.5}' and view.text() == '{"price": 1.5}'
    assert view.json() == {"price": 1.5}
    assert view.header("x-a") == "1" and view.header("missing", "d") == "d"
    assert ("subscription", "0") in view.headers
    assert repr(view) == "<ReceivedMessage 'm-1' on '/topic/t'>"


def test_header_pairs_take_a_mapping_or_pairs() -> None:
    import pytest

    from stomp_proto._clients import header_pairs

    assert header_pairs(None) == ()
    assert header_pairs({"priority": "9", "x-a": "1"}) == (("priority", "9"), ("x-a", "1"))
    assert header_pairs({"priority": 9}) == (("priority", "9"),)  # type: ignore[dict-item]
    assert header_pairs([("x-tag", "a"), ("x-tag", "b")]) == (("x-tag", "a"), ("x-tag", "b"))
    assert header_pairs(iter([("k", "v")])) == (("k", "v"),)
    for wrong in ("k:v", b"k:v"):
        with pytest.raises(TypeError, match="mapping or \\(name, value\\) pairs"):
            header_pairs(wrong)  # type: ignore[arg-type]


def test_ack_modes_and_versions_are_checked_with_their_names() -> None:
    import pytest

    from stomp_proto._clients import ACK_MODES, check_ack_mode, check_versions

    for mode in ACK_MODES:
        check_ack_mode(mode)
    with pytest.raises(ValueError, match="'client-individual', not 'client_individual'"):
        check_ack_mode("client_individual")
    assert check_versions(["1.1", "1.2"]) == ("1.1", "1.2")
    assert check_versions(()) == ()  # no accept-version: STOMP 1.0
    with pytest.raises(TypeError, match=r"a sequence such as \('1.2',\), not a str"):
        check_versions("1.2")
    with pytest.raises(ValueError, match="some of 1.0, 1.1, 1.2, not"):
        check_versions(("1.2", "2.0"))
