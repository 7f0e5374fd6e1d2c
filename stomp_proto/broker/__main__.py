"""``stomp-proto broker`` / ``python -m stomp_proto.broker``: run the reference broker."""

from __future__ import annotations

import argparse
import logging
import signal
import ssl
import sys
from collections.abc import Sequence

import anyio

from .. import Limits
from ._broker import Broker

log = logging.getLogger("stomp_proto.broker")


def _address(text: str) -> tuple[str, int, str]:
    host, _, rest = text.rpartition(":")
    port, slash, path = rest.partition("/")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT[/path], got {text!r}")
    return host.strip("[]"), int(port), "/" + path if slash else ""


def _user(text: str) -> tuple[str, str]:
    login, colon, passcode = text.partition(":")
    if not colon or not login:
        raise argparse.ArgumentTypeError(f"expected LOGIN:PASSCODE, got {text!r}")
    return login, passcode


def _pair(text: str) -> tuple[int, int]:
    a, comma, b = text.partition(",")
    if not (comma and a.isdigit() and b.isdigit()):
        raise argparse.ArgumentTypeError(f"expected two integers like 10000,10000, got {text!r}")
    return int(a), int(b)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stomp-proto broker",
        description="A STOMP 1.0/1.1/1.2 broker over TCP and WebSocket (RabbitMQ Web-STOMP's "
        "default ports, so stompjs examples work unchanged).",
    )
    p.add_argument(
        "--tcp",
        action="append",
        type=_address,
        metavar="HOST:PORT",
        help="serve STOMP over TCP here (repeatable; default 127.0.0.1:61613)",
    )
    p.add_argument(
        "--ws",
        action="append",
        type=_address,
        metavar="HOST:PORT[/path]",
        help="serve STOMP over WebSocket here (repeatable; default 127.0.0.1:15674/ws)",
    )
    p.add_argument(
        "--user",
        action="append",
        type=_user,
        metavar="LOGIN:PASSCODE",
        help="accept this login (repeatable; with none, any login is accepted)",
    )
    p.add_argument(
        "--tls-cert", metavar="FILE", help="PEM certificate (chain) for TLS on every listener"
    )
    p.add_argument("--tls-key", metavar="FILE", help="PEM private key for --tls-cert")
    p.add_argument(
        "--heart-beat",
        type=_pair,
        default=(10_000, 10_000),
        metavar="SX,SY",
        help="heart-beat offered in CONNECTED, ms (default 10000,10000)",
    )
    p.add_argument(
        "--grace", type=float, default=2.0, help="silent intervals before a client is dropped"
    )
    p.add_argument("--max-body-size", type=int, default=Limits().max_body_size, metavar="BYTES")
    p.add_argument("--max-header-size", type=int, default=Limits().max_header_size, metavar="BYTES")
    p.add_argument("--max-subscriptions", type=int, default=Limits().max_subscriptions, metavar="N")
    p.add_argument(
        "--max-unacknowledged", type=int, default=Limits().max_unacknowledged, metavar="N"
    )
    p.add_argument(
        "--max-pending-bytes",
        type=int,
        default=4 << 20,
        metavar="BYTES",
        help="outgoing backlog per client before the slow-consumer policy applies",
    )
    p.add_argument("--slow-consumer", choices=("drop", "disconnect"), default="drop")
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="close a connection that has not completed CONNECT by then (default 5)",
    )
    p.add_argument(
        "--max-queue-bytes",
        type=int,
        default=64 << 20,
        metavar="BYTES",
        help="what one queue may hold while nobody takes it (default 64 MiB)",
    )
    p.add_argument(
        "--max-transaction-bytes",
        type=int,
        default=32 << 20,
        metavar="BYTES",
        help="what one open transaction may hold (default 32 MiB)",
    )
    p.add_argument(
        "--max-memory-bytes",
        type=int,
        default=256 << 20,
        metavar="BYTES",
        help="broker-wide: queued and held messages beyond which SENDs get ERROR (default 256 MiB)",
    )
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def build(args: argparse.Namespace) -> Broker:
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    return Broker(
        tcp=[(h, p) for h, p, _ in (args.tcp or [("127.0.0.1", 61613, "")])],
        ws=[(h, p, path or "/ws") for h, p, path in (args.ws or [("127.0.0.1", 15674, "/ws")])],
        users=dict(args.user) if args.user else None,
        ssl=context,
        heart_beat=args.heart_beat,
        grace=args.grace,
        limits=Limits(
            max_body_size=args.max_body_size,
            max_header_size=args.max_header_size,
            max_subscriptions=args.max_subscriptions,
            max_unacknowledged=args.max_unacknowledged,
        ),
        max_pending_bytes=args.max_pending_bytes,
        slow_consumer=args.slow_consumer,
        connect_timeout=args.connect_timeout or None,
        max_queue_bytes=args.max_queue_bytes,
        max_transaction_bytes=args.max_transaction_bytes,
        max_memory_bytes=args.max_memory_bytes,
    )


async def run(broker: Broker) -> None:
    """Serve until SIGINT or SIGTERM; then stop accepting, flush and close."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with broker:
            log.info("ready")
            async for signum in signals:
                log.info("%s: stopping", signal.Signals(signum).name)
                break
    log.info("stopped")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    anyio.run(run, build(args))
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    """The ``stomp-proto`` console script: ``stomp-proto broker [options]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "broker":
        print("usage: stomp-proto broker [options]   (stomp-proto broker --help)", file=sys.stderr)
        return 2
    return main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
