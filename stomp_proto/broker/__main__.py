"""``stomp-proto broker`` / ``python -m stomp_proto.broker``: run the reference broker."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import signal
import ssl
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from .. import Limits

if sys.version_info < (3, 11):  # pragma: no cover - anyio brings the backport
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]
from ._broker import Broker
from ._relay import Relay, Upstream
from ._sqlite import SQLiteStore

log = logging.getLogger("stomp_proto.broker")


def _address(text: str) -> tuple[str, int, str]:
    host, _, rest = text.rpartition(":")
    port, slash, path = rest.partition("/")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT[/path], got {text!r}")
    return host.strip("[]"), int(port), "/" + path if slash else ""


def _host_port(text: str) -> tuple[str, int]:
    host, port, path = _address(text)
    if path:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, port


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds (0: none), got {text!r}")
    return seconds


def _user(text: str) -> tuple[str, str]:
    login, colon, passcode = text.partition(":")
    if not colon or not login:
        raise argparse.ArgumentTypeError(f"expected LOGIN:PASSCODE, got {text!r}")
    return login, passcode


def _upstream(text: str) -> Upstream:
    try:
        return Upstream.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
        "--slow-consumer-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="with --slow-consumer disconnect: how long a full client's backlog may take "
        "to drain (default 5)",
    )
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
    store = p.add_argument_group(
        "durable store",
        "keep /queue/ messages sent with persistent:true, and durable topic subscriptions "
        "(durable:true, auto-delete:false, id), in one SQLite file, across restarts",
    )
    store.add_argument(
        "--store",
        metavar="PATH",
        help="the SQLite file (created if missing; one broker at a time). Without it, "
        "nothing is kept",
    )
    store.add_argument(
        "--store-sync",
        choices=("full", "normal"),
        default="full",
        help="full (default): a RECEIPT means the message survives a power failure; "
        "normal: it survives the broker being killed, but an OS crash may lose the last ones",
    )
    store.add_argument(
        "--max-store-bytes",
        type=int,
        default=1 << 30,
        metavar="BYTES",
        help="persistent messages the store may hold, whole frames (default 1 GiB); "
        "a persistent SEND beyond it gets ERROR",
    )
    store.add_argument(
        "--max-queue-messages",
        type=int,
        default=1_000_000,
        metavar="N",
        help="messages one queue or durable subscription may hold waiting (default 1000000)",
    )
    p.add_argument(
        "--stats-interval",
        type=_seconds,
        default=1800.0,
        metavar="SECONDS",
        help="log a stats line (logger stomp_proto.broker.stats) this often; 0: never "
        "(default 1800, Spring's 30 minutes)",
    )
    p.add_argument(
        "--metrics",
        type=_host_port,
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics "
        "(needs pip install 'stomp-proto[metrics]')",
    )
    relay = p.add_argument_group(
        "relay", "hand /topic and /queue to an upstream RabbitMQ or ActiveMQ (docs: Scaling out)"
    )
    relay.add_argument(
        "--relay",
        action="append",
        type=_upstream,
        metavar="stomp://LOGIN:PASSCODE@HOST:PORT[/vhost]",
        help="the upstream broker (repeatable: the addresses are tried in turn; "
        "stomps:// for TLS, verified)",
    )
    relay.add_argument(
        "--relay-connections",
        type=int,
        default=2,
        metavar="N",
        help="upstream connections for client sessions, besides the system one (default 2)",
    )
    relay.add_argument(
        "--relay-send-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long a SEND may wait for the upstream to confirm it, then ERROR (default 10)",
    )
    relay.add_argument(
        "--relay-ca",
        metavar="FILE",
        help="PEM CA certificates to verify stomps:// upstreams with (default: the system's)",
    )
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def build(args: argparse.Namespace) -> Broker:
    return Broker(**options(args))


def options(args: argparse.Namespace) -> dict[str, Any]:
    """The Broker keyword arguments the command line's options say."""
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    return dict(
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
        slow_consumer_timeout=args.slow_consumer_timeout,
        connect_timeout=args.connect_timeout or None,
        max_queue_bytes=args.max_queue_bytes,
        max_transaction_bytes=args.max_transaction_bytes,
        max_memory_bytes=args.max_memory_bytes,
        stats_interval=args.stats_interval,
        metrics=args.metrics,
        relay=_relay(args),
        **_store_options(args),
    )


def _store_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Broker keyword arguments of the ``--store`` options."""
    if not args.store:
        return {"max_queue_messages": args.max_queue_messages}
    if args.relay:
        raise SystemExit(
            "stomp-proto: --store and --relay do not go together: with a relay, the "
            "upstream broker keeps the /topic and /queue messages"
        )
    return {
        "store": SQLiteStore(args.store, synchronous=args.store_sync),
        "max_store_bytes": args.max_store_bytes,
        "max_queue_messages": args.max_queue_messages,
    }


def _relay(args: argparse.Namespace) -> Relay | None:
    if not args.relay:
        return None
    if args.relay_connections < 1:
        raise SystemExit("stomp-proto: --relay-connections must be at least 1")
    context = None
    if args.relay_ca:
        try:
            context = ssl.create_default_context(cafile=args.relay_ca)
        except (OSError, ssl.SSLError) as exc:
            raise SystemExit(f"stomp-proto: --relay-ca {args.relay_ca}: {exc}") from None
    return Relay(
        args.relay,
        connections=args.relay_connections,
        send_timeout=args.relay_send_timeout,
        ssl=context,
    )


def _metrics_missing(args: argparse.Namespace, prog: str) -> bool:
    """``--metrics`` without prometheus_client: one line naming the install."""
    if args.metrics is not None and importlib.util.find_spec("prometheus_client") is None:
        print(
            f"{prog} --metrics needs prometheus_client: pip install 'stomp-proto[metrics]'",
            file=sys.stderr,
        )
        return True
    return False


async def run(broker: Broker) -> None:
    """Serve until SIGINT or SIGTERM; then stop accepting, flush and close."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with broker:
            log.info("ready")
            async for signum in signals:
                log.info("%s: stopping", signal.Signals(signum).name)
                break
    log.info("stopped")


def serve_until_signalled(broker: Broker, level: str) -> int:
    """Run ``broker`` until SIGINT/SIGTERM; a listener that cannot be opened
    (a busy port, say) is one line on stderr and exit status 1."""
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        anyio.run(run, broker)
    except (OSError, RuntimeError) as exc:
        print(f"stomp-proto: {exc}", file=sys.stderr)
        return 1
    except BaseExceptionGroup as group:  # raised from inside the listeners' task group
        leaves = _leaves(group)
        if leaves and all(isinstance(e, OSError | RuntimeError) for e in leaves):
            print(f"stomp-proto: {leaves[0]}", file=sys.stderr)
            return 1
        raise
    return 0


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if _metrics_missing(args, "stomp-proto broker"):
        return 1
    return serve_until_signalled(build(args), args.log_level)


def run_parser() -> argparse.ArgumentParser:
    p = parser()
    p.prog = "stomp-proto run"
    p.description = (
        "Serve a STOMP application (a stomp_proto.app.StompApp) with the broker: "
        "MODULE:ATTR names it, as uvicorn's module:app does."
    )
    p.add_argument("app", metavar="MODULE:ATTR", help="e.g. myproject.stomp:app")
    return p


def load_app(spec: str) -> Any:
    """The object ``MODULE:ATTR`` names (a callable is called with no arguments)."""
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr:
        raise SystemExit(f"stomp-proto run: expected MODULE:ATTR, got {spec!r}")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # the current directory, as uvicorn and python -m do
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"stomp-proto run: cannot import {module_name!r}: {exc}") from None
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:  # noqa: PERF203 - a dotted name of a few parts
            raise SystemExit(f"stomp-proto run: {module_name!r} has no {attr!r}") from None
    if not hasattr(target, "broker") and callable(target):
        try:
            target = target()  # an application factory
        except Exception as exc:
            raise SystemExit(f"stomp-proto run: {spec} is not a StompApp ({exc})") from None
    if not hasattr(target, "broker"):
        raise SystemExit(f"stomp-proto run: {spec} is not a StompApp")
    return target


def run_app(argv: Sequence[str] | None = None) -> int:
    """``stomp-proto run MODULE:ATTR [broker options]``."""
    args = run_parser().parse_args(argv)
    if _metrics_missing(args, "stomp-proto run"):
        return 1
    app = load_app(args.app)
    return serve_until_signalled(app.broker(**options(args)), args.log_level)


def cli(argv: Sequence[str] | None = None) -> int:
    """The ``stomp-proto`` console script (see :mod:`stomp_proto._cli`)."""
    from .._cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
