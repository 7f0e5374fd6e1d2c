"""``stomp-proto demo`` / ``python -m stomp_proto.demo``: serve the portfolio demo.

One port serves the web page (``/``, its script, its style sheet and the
stompjs bundle), ``POST /api/price`` and STOMP over WebSocket at
``/portfolio``, as Spring's ``registry.addEndpoint("/portfolio")`` does: the
broker's own WebSocket listener, whose HTTP handler is the demo's
(:class:`~stomp_proto.demo.PortfolioDemo`, which ``uvicorn
stomp_proto.demo:app`` serves as an ASGI application: the same page, API and
endpoint). The application itself is :mod:`stomp_proto.demo._portfolio`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from stomp_proto.broker import Broker
from stomp_proto.broker.__main__ import serve_until_signalled

from ._web import ENDPOINT, FILES, PortfolioDemo, pages

__all__ = ["ENDPOINT", "FILES", "demo_broker", "main", "pages", "parser"]

log = logging.getLogger("stomp_proto.demo")


def demo_broker(host: str = "127.0.0.1", port: int = 8080, **options: Any) -> Broker:
    """The broker of a fresh :class:`~stomp_proto.demo.PortfolioDemo` serving it
    on ``host:port``: the page, ``POST /api/price`` and
    ``ws://host:port/portfolio`` (``options``: ``interval``, ``seed``, and
    :class:`~stomp_proto.broker.Broker`'s)."""
    on_start = [_announce, *options.pop("on_start", ())]
    demo = PortfolioDemo(ws=[(host, port, ENDPOINT)], on_start=on_start, **options)
    return demo.broker


async def _announce(broker: Broker) -> None:
    for kind, host, port in broker.addresses:
        if kind == "ws":
            shown = f"[{host}]" if ":" in host else host
            log.info(
                "portfolio demo at http://%s:%d/ (log in as fabrice:fab123 or paulson:bond)",
                shown,
                port,
            )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stomp-proto demo",
        description="The stock portfolio demo: a web page trading over STOMP over WebSocket "
        "with a stomp_proto.app application (Spring's portfolio sample).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        default=8080,
        help="port of the page and ws://HOST:PORT/portfolio (default 8080; 0 picks a free one)",
    )
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the demo until SIGINT or SIGTERM; the exit status."""
    args = parser().parse_args(argv)
    return serve_until_signalled(demo_broker(args.host, args.port), args.log_level)


if __name__ == "__main__":
    sys.exit(main())
