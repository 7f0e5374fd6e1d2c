"""@stomp/stompjs 7 (npm, a client nobody here wrote) in node over WebSocket
(the ``ws`` package, subprotocols ``v12.stomp``/``v11.stomp``/``v10.stomp``),
against each broker in ``TARGETS``.

Each test runs one scenario of ``js/scenarios.mjs`` in a node process, which
prints one JSON line describing what stompjs saw; the assertions are here.
The npm packages come from ``js/package-lock.json`` (``npm ci``, run by
``.ci/install-peers``). stompjs sends no ``host`` header, as in a browser.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .brokers import Broker
from .node import JS_DIR, node_missing, run_scenario
from .ourbroker import _ourbroker_session, ourbroker, require_peer  # noqa: F401

TARGETS = ["ourbroker", "rabbitmq"]
SCRIPT = JS_DIR / "scenarios.mjs"


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> Broker:
    require_peer(node_missing())
    result: Broker = request.getfixturevalue(request.param)
    assert result.ws_port is not None, f"{result.name} has no WebSocket listener"
    return result


def is_rabbitmq(target: Broker) -> bool:
    return target.name == "rabbitmq"


def name() -> str:
    return uuid.uuid4().hex[:10]


def run(target: Broker, scenario: str, timeout_ms: int = 30000, **config: Any) -> dict[str, Any]:
    """Runs one scenario in node; returns its JSON result (``ok`` is true)."""
    config.update(
        url=target.ws_url,  # type: ignore[attr-defined]
        login=target.login,
        passcode=target.passcode,
    )
    return run_scenario(SCRIPT, scenario, config, against=target.name, timeout_ms=timeout_ms)


def test_connect_and_subscribe_to_patterns(target: Broker) -> None:
    n = name()
    one = "/topic/price.stock.*"
    # RabbitMQ's topic patterns: `#` for any number of words; ours: `**`.
    many = "/topic/price.#" if is_rabbitmq(target) else "/topic/price.**"
    matching = [f"/topic/price.stock.MMM{n}", f"/topic/price.stock.AAPL{n}"]
    others = [
        f"/topic/price.bond.X{n}",
        f"/topic/price.stock.deep.Y{n}",
        f"/topic/prices.stock.Z{n}",
    ]
    end = f"/topic/price.stock.END{n}"
    result = run(target, "pattern", patterns=[one, many], publish=matching + others, end=end)
    assert result["connected"]["version"] == "1.2"
    assert result["protocol"] == "v12.stomp"
    assert not result["errors"]
    got = {p: [(m["destination"], m["body"]) for m in ms] for p, ms in result["received"].items()}
    # The MESSAGE carries the real destination; its body is what was sent there.
    expected_one = [(d, f"to {d}") for d in matching] + [(end, "end")]
    assert got[one] == expected_one
    expected_many = [(d, f"to {d}") for d in matching + others[:2]] + [(end, "end")]
    assert sorted(got[many]) == sorted(expected_many)
    subscriptions = {p: {m["subscription"] for m in ms} for p, ms in result["received"].items()}
    assert len(subscriptions[one]) == 1 and len(subscriptions[many]) == 1
    assert subscriptions[one] != subscriptions[many]


def test_publish_round_trip_with_receipts(target: Broker) -> None:
    # RabbitMQ sends a MESSAGE whose body is not UTF-8 as a *text* WebSocket
    # message, which node's ws rejects (the connection drops): the binary body is
    # for our broker only.
    binary = not is_rabbitmq(target)
    result = run(target, "roundtrip", queue=f"/queue/stompjs-rt-{name()}", binary=binary)
    text = result["text"]
    assert text["body"] == "héllo wörld €"
    assert text["headers"]["x-escaped"] == "a:b\nc\\d"  # escaped on the wire in 1.2
    assert text["headers"]["content-type"] == "text/plain;charset=utf-8"
    if binary:
        assert result["binary"] == result["binarySent"]
    expected = result["receiptsExpected"]
    assert sorted(result["receiptOrder"]) == sorted(expected)
    if not is_rabbitmq(target):  # RabbitMQ holds a SEND's RECEIPT for its confirm
        assert result["receiptOrder"] == expected
    assert not result["errors"]


def test_client_individual_ack_nack_and_redelivery(target: Broker) -> None:
    result = run(target, "ack", queue=f"/queue/stompjs-ack-{name()}")
    assert [m["body"] for m in result["first"]] == ["m0", "m1", "m2"]
    assert all(m["headers"].get("ack") for m in result["first"])
    # m0 and m2 were acknowledged; m1 comes back to the next subscriber...
    assert result["redelivered"]["body"] == "m1"
    assert result["redelivered"]["redelivered"] == "true"
    # ...and after a NACK, once more.
    assert result["afterNack"]["body"] == "m1"
    assert result["afterNack"]["redelivered"] == "true"
    assert result["extra"] == []
    assert not result["errors"]


def test_heart_beats_keep_an_idle_connection(target: Broker) -> None:
    result = run(target, "heartbeat", queue=f"/queue/stompjs-hb-{name()}", idleMs=3500)
    sx, sy = (int(v) for v in result["connected"]["heart-beat"].split(","))
    assert 0 < sx <= 1000 and sy > 0, result["connected"]
    idle = result["idle"]
    assert idle["heartbeatsReceived"] >= 2, idle
    assert idle["pingsSent"] >= 2, idle
    assert idle["heartbeatsLost"] == 0, idle
    assert idle["closes"] == 0 and idle["connected"], idle
    assert result["after"]["body"] == "still here"
    assert not result["errors"]


def test_one_mib_message_split_into_websocket_chunks(target: Broker) -> None:
    size, chunk = 1024 * 1024, 8 * 1024
    result = run(
        target,
        "large",
        timeout_ms=60000,
        queue=f"/queue/stompjs-large-{name()}",
        sizeBytes=size,
        chunkSize=chunk,
    )
    assert result["sentBytes"] == size
    # Cut every 8 Ki JavaScript characters (a little over 1 MiB of STOMP frame).
    assert result["chunksSent"] >= 100, result["chunksSent"]
    assert result["receivedBytes"] == size
    assert result["receivedSha256"] == result["sentSha256"]
    assert result["contentLength"] == str(size)
    assert not result["errors"]
