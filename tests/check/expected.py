"""What ``stomp-proto check`` finds on each server: the verdicts the tests assert.

Every result that is not a PASS, per column of the table in docs/check.rst,
from real runs (tests/check/test_ourbroker.py runs our broker,
tests/interop/test_check_interop.py RabbitMQ and ActiveMQ, each asserting
its column exactly, so that a change in the catalogue or in a server is
noticed here first). A result not listed is a PASS; the WebSocket checks are
a SKIP in the columns of STOMP over TCP. ``python -m tests.check.verdicts``
writes the table of docs/check.rst from this module.

The known deviations of RabbitMQ and ActiveMQ (../shared/stomp-notes.md §5)
are the FAILs and WARNs below; stomp-proto's broker passes every MUST. Its
one WARN, ``frames/client-individual-in-1.0@1.0``, is a POLICY of the
checklist (#65: ``ack:client-individual`` is not a STOMP 1.0 mode) that the
broker does not follow: it accepts the mode in 1.0 sessions.
"""

from __future__ import annotations

from stomp_proto.check import CHECKS
from stomp_proto.check._runner import plan

__all__ = ["COLUMNS", "NOT_PASS", "TIMEOUT", "expected", "keys"]

FAIL, WARN, SKIP = "FAIL", "WARN", "SKIP"

#: The --timeout of the runs (a loaded CI machine answers within it).
TIMEOUT = 3.0

#: column -> (heading, over WebSocket)
COLUMNS = {
    "stomp-proto": ("stomp-proto", False),
    "stomp-proto-ws": ("stomp-proto WebSocket", True),
    "rabbitmq": ("RabbitMQ 3.10", False),
    "rabbitmq-ws": ("RabbitMQ Web-STOMP", True),
    "activemq": ("ActiveMQ 5.17", False),
}

#: column -> {result key: verdict} for every result that is not a PASS.
NOT_PASS: dict[str, dict[str, str]] = {
    "stomp-proto": {
        "frames/client-individual-in-1.0@1.0": WARN,
    },
    "stomp-proto-ws": {
        "frames/client-individual-in-1.0@1.0": WARN,
    },
    "rabbitmq": {
        "connect/accept-version-spaces": WARN,
        "connect/bad-credentials": WARN,
        "connect/frame-before-connect": WARN,
        "connect/no-common-version": FAIL,
        "connect/second-connect@1.2": WARN,
        "frames/ack-twice@1.2": WARN,
        "frames/client-individual-in-1.0@1.0": WARN,
        "frames/duplicate-transaction-id@1.2": WARN,
        "frames/nack-in-1.0@1.0": WARN,
        "frames/send-error-closes@1.2": FAIL,
        "frames/server-owned-headers@1.2": WARN,
        "frames/subscribe-error-closes@1.2": FAIL,
        "frames/subscribe-without-id@1.2": FAIL,
        "framing/bad-content-length@1.2": WARN,
        "framing/body-on-subscribe@1.2": WARN,
        "framing/connect-not-unescaped@1.2": FAIL,
        "framing/content-length-without-nul@1.2": WARN,
        "framing/empty-header-name@1.2": WARN,
        "framing/escape-r-in-1.1@1.1": FAIL,
        "framing/header-without-colon@1.2": WARN,
        "framing/invalid-utf-8@1.2": WARN,
        "framing/lone-cr@1.2": WARN,
        "framing/no-escapes-in-1.0@1.0": WARN,
        "framing/oversized-headers@1.2": WARN,
        "framing/trailing-backslash@1.2": WARN,
        "framing/undefined-escape@1.2": WARN,
        "heart-beat/malformed@1.2": WARN,
        "heart-beat/none-in-1.0@1.0": WARN,
        "receipts/error-receipt-id@1.2": WARN,
        "receipts/in-order@1.2": WARN,
        "server-frames/close-after-error@1.2": FAIL,
        "server-frames/nothing-after-error@1.2": WARN,
    },
    "rabbitmq-ws": {
        "connect/accept-version-spaces": WARN,
        "connect/bad-credentials": WARN,
        "connect/frame-before-connect": WARN,
        "connect/no-common-version": FAIL,
        "connect/second-connect@1.2": WARN,
        "frames/ack-twice@1.2": WARN,
        "frames/client-individual-in-1.0@1.0": WARN,
        "frames/disconnect-receipt@1.2": WARN,
        "frames/duplicate-subscription-id@1.2": WARN,
        "frames/duplicate-transaction-id@1.2": WARN,
        "frames/nack-in-1.0@1.0": WARN,
        "frames/send-error-closes@1.2": FAIL,
        "frames/server-owned-headers@1.2": WARN,
        "frames/subscribe-error-closes@1.2": FAIL,
        "frames/subscribe-without-id@1.2": FAIL,
        "framing/bad-content-length@1.2": WARN,
        "framing/body-on-subscribe@1.2": WARN,
        "framing/connect-not-unescaped@1.2": FAIL,
        "framing/content-length-without-nul@1.2": WARN,
        "framing/empty-header-name@1.2": WARN,
        "framing/escape-r-in-1.1@1.1": FAIL,
        "framing/header-without-colon@1.2": WARN,
        "framing/invalid-utf-8@1.2": WARN,
        "framing/large-body@1.2": WARN,
        "framing/lone-cr@1.2": WARN,
        "framing/no-escapes-in-1.0@1.0": WARN,
        "framing/oversized-headers@1.2": WARN,
        "framing/trailing-backslash@1.2": WARN,
        "framing/undefined-escape@1.2": WARN,
        "heart-beat/malformed@1.2": WARN,
        "heart-beat/none-in-1.0@1.0": WARN,
        "receipts/error-receipt-id@1.2": WARN,
        "receipts/every-frame@1.2": FAIL,
        "receipts/in-order@1.2": WARN,
        "server-frames/close-after-error@1.2": FAIL,
        "server-frames/nothing-after-error@1.2": WARN,
        "websocket/binary-body": WARN,
    },
    "activemq": {
        "acks/nack-redelivers@1.2": WARN,
        "connect/accept-version-spaces": WARN,
        "connect/bad-credentials": SKIP,
        "connect/frame-before-connect": WARN,
        "connect/no-common-version": WARN,
        "connect/second-connect@1.2": WARN,
        "frames/bad-ack-mode@1.2": WARN,
        "frames/client-individual-in-1.0@1.0": WARN,
        "frames/duplicate-subscription-id@1.2": WARN,
        "frames/send-error-closes@1.2": FAIL,
        "frames/subscribe-error-closes@1.2": FAIL,
        "framing/body-on-subscribe@1.2": WARN,
        "framing/content-length-without-nul@1.2": FAIL,
        "framing/empty-header-name@1.2": WARN,
        "framing/escape-r-in-1.1@1.1": FAIL,
        "framing/header-without-colon@1.2": WARN,
        "framing/invalid-utf-8@1.2": WARN,
        "framing/lone-cr@1.2": FAIL,
        "framing/no-escapes-in-1.0@1.0": WARN,
        "framing/trailing-backslash@1.2": FAIL,
        "framing/undefined-escape@1.2": FAIL,
        "heart-beat/crlf-heart-beats@1.2": FAIL,
        "heart-beat/none-in-1.0@1.0": WARN,
        "server-frames/close-after-error@1.2": FAIL,
        "server-frames/error-headers@1.2": WARN,
        "server-frames/nothing-after-error@1.2": WARN,
    },
}


def keys() -> list[str]:
    """Every result key of a full run against a server that speaks 1.0, 1.1 and 1.2."""
    return [f"{c.id}@{v}" if v else c.id for c, v in plan(CHECKS)]


def expected(column: str) -> dict[str, str]:
    """The full ``key -> verdict`` map of a run for ``column``."""
    websocket = COLUMNS[column][1]
    ws_checks = {c.id for c in CHECKS if c.websocket}
    out = {}
    for key in keys():
        default = SKIP if key.partition("@")[0] in ws_checks and not websocket else "PASS"
        out[key] = NOT_PASS[column].get(key, default)
    return out
