"""``stomp-proto check``: a conformance checker for any STOMP server.

It runs a catalogue of checks against a running server (RabbitMQ, ActiveMQ,
Artemis, a Spring relay, stomp-proto's own broker...) and reports, one line
per check, whether the server does what the STOMP 1.0, 1.1 and 1.2
specifications require: framing, version and heart-beat negotiation, every
command, receipts, errors and closing, subscriptions, acknowledgement modes,
transactions, limits, bad input, and STOMP over WebSocket. Each check is tied
to a numbered requirement of the conformance checklist and its level (MUST,
SHOULD, MAY, or POLICY for what the specification leaves open).

The checker drives the wire with the public sans-IO core: the CONNECT
handshake goes through a :class:`~stomp_proto.ClientConnection`, frames are
serialized with :meth:`~stomp_proto.Frame.serialize` (or written byte by byte
when a check must send what no client should), and every answer is read with
:class:`~stomp_proto.FrameParser`. It needs only the standard library
(asyncio) for ``stomp://`` and ``stomps://``; ``ws://`` and ``wss://`` need
wsproto (the ``websocket`` extra).

From the command line: ``stomp-proto check stomp://guest:guest@localhost:61613/%2F``
(see ``stomp-proto check --help``); from Python, :func:`run`.

.. versionadded:: 0.2
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ._catalogue import CHECKS
from ._cli import main
from ._model import SECTIONS, Check, Level, Report, Result, Verdict
from ._runner import PreflightError, run_checks
from ._wire import parse_target

__all__ = (
    "CHECKS",
    "SECTIONS",
    "Check",
    "Level",
    "PreflightError",
    "Report",
    "Result",
    "Verdict",
    "main",
    "run",
)


def run(
    url: str,
    *,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    version: str | None = None,
    timeout: float = 2.0,
    jobs: int = 8,
    vhost: str | None = None,
    ca_file: str | None = None,
    insecure: bool = False,
    queue_prefix: str = "/queue/",
    topic_prefix: str = "/topic/",
) -> Report:
    """Check the server at ``url`` and return the :class:`Report` (blocking).

    The arguments are the command line's options (see ``stomp-proto check
    --help``): ``only`` and ``skip`` take selectors (a section, a requirement
    number, a check id with ``*`` wildcards), ``version`` restricts the
    sessions to one STOMP version, ``timeout`` is how long one answer may
    take, ``jobs`` how many checks run at once.

    Raises:
        ValueError: a bad URL, selector or option.
        PreflightError: the server cannot be reached, or refuses every CONNECT.

    .. versionadded:: 0.2
    """
    target = parse_target(url, vhost=vhost, ca_file=ca_file, insecure=insecure)
    return asyncio.run(
        run_checks(
            target,
            only=only,
            skip=skip,
            version=version,
            timeout=timeout,
            jobs=jobs,
            queue_prefix=queue_prefix,
            topic_prefix=topic_prefix,
        )
    )
