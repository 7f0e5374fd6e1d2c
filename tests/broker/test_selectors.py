"""SUBSCRIBE selectors: the grammar, its refusals, and routing by them (issue 11)."""

from __future__ import annotations

import pytest

from stomp_proto import Error, Message, Send, Subscribe
from stomp_proto.broker import Router
from stomp_proto.broker._selectors import MAX_SELECTOR_LENGTH, SelectorError, compile_selector

HEADERS = {"type": "trade", "region": "EU", "priority": "5", "note": "it's"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("type = 'trade'", True),
        ("type = 'quote'", False),
        ("type <> 'quote'", True),
        ("type != 'trade'", False),
        ("priority = 5", True),
        ("priority = 5.0", True),
        ("priority = 6", False),
        ("type = 5", False),
        ("region in ('EU', 'US')", True),
        ("region not in ('EU', 'US')", False),
        ("missing in ('x')", False),
        ("missing not in ('x')", False),
        ("missing = 'x'", False),
        ("missing <> 'x'", False),
        ("missing is null", True),
        ("type is not null", True),
        ("type IS NULL", False),
        ("type = 'trade' and region = 'US'", False),
        ("type = 'trade' or region = 'US'", True),
        ("not type = 'trade'", False),
        ("NOT (type = 'quote' OR region = 'US') AND priority = 5", True),
        ("type = 'quote' or type = 'trade' and region = 'EU'", True),  # and binds tighter
        ("(type = 'quote' or type = 'trade') and region = 'US'", False),
        ("note = 'it''s'", True),
        ("destination = '/topic/t'", True),
    ],
)
def test_grammar(selector: str, expected: bool) -> None:
    assert compile_selector(selector)({**HEADERS, "destination": "/topic/t"}) is expected


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("", "empty"),
        ("type =", "expected a 'string' or a number, found the end"),
        ("type", "expected =, <> or 'in' after 'type', found the end"),
        ("type = 'x' and", "expected word, found the end"),
        ("type == 'x'", "expected a 'string' or a number, found '=' at character 6"),
        ("type = 'x' region", "unexpected 'region' at character 11"),
        ("(type = 'x'", "expected ), found the end"),
        ("type not = 'x'", "expected 'in' after 'type' not"),
        ("type in 'x'", "expected (, found"),
        ("type is 'x'", "expected null"),
        ("type = 'x' ; drop", "unexpected '; drop' at character 11"),
        ("type = 'unclosed", "unexpected"),
        ("x = 1" + " and x = 1" * 200, f"longer than {MAX_SELECTOR_LENGTH} characters"),
        ("(" * 40 + "x = 1" + ")" * 40, "nested more than 32 deep"),
        ("not " * 40 + "x = 1", "nested more than 32 deep"),
    ],
)
def test_refusals_say_what_and_where(selector: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        compile_selector(selector)
    assert message in str(caught.value)


def test_topic_subscriptions_get_only_what_their_selector_accepts() -> None:
    router = Router()
    s = router.open("s", "1.2")
    router.handle(
        s, Subscribe(destination="/topic/t", id="eu", headers=(("selector", "region = 'EU'"),))
    )
    router.handle(s, Subscribe(destination="/topic/t", id="all"))
    out = router.handle(s, Send(destination="/topic/t", body=b"1", headers=(("region", "US"),)))
    assert [e.subscription for _, e in out if isinstance(e, Message)] == ["all"]
    out = router.handle(s, Send(destination="/topic/t", body=b"2", headers=(("region", "EU"),)))
    assert sorted(e.subscription or "" for _, e in out if isinstance(e, Message)) == ["all", "eu"]


def test_a_bad_selector_and_a_queue_selector_are_refused() -> None:
    router = Router()
    s = router.open("s", "1.2")
    [(_, error)] = router.handle(
        s, Subscribe(destination="/topic/t", id="0", headers=(("selector", "type =="),))
    )
    assert isinstance(error, Error) and "does not parse" in str(error.message)
    t = router.open("t", "1.2")
    [(_, error)] = router.handle(
        t, Subscribe(destination="/queue/q", id="0", headers=(("selector", "a = 'b'"),))
    )
    assert isinstance(error, Error)
    assert "selectors are not supported on /queue/ subscriptions" in str(error.message)
