"""``stomp-proto demo`` / ``python -m stomp_proto.demo``: serve the portfolio demo.

One port serves both the web page (plain HTTP GETs: ``/``, its script, its
style sheet and the stompjs bundle, @stomp/stompjs 7.5.0 under Apache-2.0,
shipped in ``_static/`` with its license) and STOMP over WebSocket at
``/portfolio``, as Spring's ``registry.addEndpoint("/portfolio")`` does.
The application itself is :mod:`stomp_proto.demo._portfolio`.
"""

from __future__ import annotations

import argparse
import functools
import importlib.resources
import logging
import sys
from collections.abc import Sequence
from typing import Any

from stomp_proto.app import StompApp
from stomp_proto.broker import Broker
from stomp_proto.broker.__main__ import serve_until_signalled

from ._portfolio import create_app

__all__ = ["ENDPOINT", "demo_broker", "main", "pages", "parser"]

log = logging.getLogger("stomp_proto.demo")

#: The WebSocket endpoint's path.
ENDPOINT = "/portfolio"
#: URL path -> (file in _static/, content type)
FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
    "/stomp.umd.min.js": ("stomp.umd.min.js", "text/javascript; charset=utf-8"),
    "/STOMPJS-LICENSE": ("STOMPJS-LICENSE", "text/plain; charset=utf-8"),
}


@functools.cache
def _static(name: str) -> bytes:
    return (
        importlib.resources.files(__package__ or "stomp_proto.demo") / "_static" / name
    ).read_bytes()


def pages(target: str) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """The broker's ``http`` handler: the page and its files; None (404) for
    anything else."""
    path = target.partition("?")[0].partition("#")[0]
    found = FILES.get("/" if path == "/index.html" else path)
    if found is None:
        return None
    name, content_type = found
    headers = [
        ("content-type", content_type),
        ("cache-control", "no-cache"),
        ("x-content-type-options", "nosniff"),
    ]
    return 200, headers, _static(name)


def demo_broker(
    host: str = "127.0.0.1", port: int = 8080, *, app: StompApp | None = None, **options: Any
) -> Broker:
    """A broker serving the portfolio ``app`` (default: a fresh one) and its
    page on ``host:port``; ``options`` as :class:`~stomp_proto.broker.Broker`'s."""
    app = create_app() if app is None else app
    options.setdefault("tcp", [])
    on_start = [_announce, *options.pop("on_start", ())]
    return app.broker(ws=[(host, port, ENDPOINT)], http=pages, on_start=on_start, **options)


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
