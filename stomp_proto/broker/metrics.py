"""Prometheus metrics for the broker: ``pip install 'stomp-proto[metrics]'``.

A :class:`BrokerCollector` reads the broker's own counters when Prometheus
scrapes (a custom collector, as prometheus_client calls it): the router's and
the sessions' plain integers, queue depths and subscriptions counted at that
moment. Nothing is recorded per message for the metrics' sake, so the hot path
costs the same with metrics as without.

:meth:`Broker.metrics_app() <stomp_proto.broker.Broker.metrics_app>` is an
ASGI application serving them (``prometheus_client.make_asgi_app``), to mount
at ``/metrics`` in any ASGI application; ``Broker(metrics=(host, port))`` and
``stomp-proto broker --metrics HOST:PORT`` serve it on a port of its own, on
the broker's event loop (no thread, no ASGI server needed). :data:`METRICS`
lists every metric.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import anyio
import anyio.abc

try:
    from prometheus_client import CollectorRegistry, make_asgi_app
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import Collector
except ModuleNotFoundError as exc:  # pragma: no cover - the extra is in the test set
    if (exc.name or "").partition(".")[0] != "prometheus_client":
        raise
    raise ModuleNotFoundError(
        "the broker's metrics need prometheus_client: pip install 'stomp-proto[metrics]'",
        name="prometheus_client",
    ) from None

from .. import __version__
from .._adapter._listener import Accepting, accept_loop
from ._stats import BUCKETS, BY_CLIENT, snapshot

if TYPE_CHECKING:
    from ._broker import Broker

__all__ = ("METRICS", "ASGIApp", "BrokerCollector")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
SendMessage = Callable[[MutableMapping[str, Any]], Awaitable[None]]
#: An ASGI application: ``await app(scope, receive, send)``.
ASGIApp = Callable[[Scope, Receive, SendMessage], Awaitable[None]]

#: Every metric the collector exports: (name, type, labels, what it counts).
#: Counters are named as exposed (``_total``); histograms add ``_bucket``,
#: ``_sum`` and ``_count``. No counter's name without ``_total`` is another
#: metric's (OpenMetrics names a counter family so).
METRICS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("stomp_info", "gauge", ("version",), "the broker's version (always 1)"),
    ("stomp_connections_accepted_total", "counter", ("transport",), "connections accepted"),
    ("stomp_connections", "gauge", ("transport",), "connections open now"),
    (
        "stomp_connections_closed_total",
        "counter",
        ("reason", "by"),
        "connections closed, by cause and by side",
    ),
    ("stomp_sessions", "gauge", (), "sessions (logged-in connections) open now"),
    ("stomp_logins_total", "counter", (), "logins accepted (sessions opened)"),
    (
        "stomp_auth_refusals_total",
        "counter",
        ("stage",),
        "logins refused (stage=login) and frames denied by authorization (stage=authorize)",
    ),
    ("stomp_subscriptions", "gauge", ("kind",), "subscriptions now, by destination kind"),
    (
        "stomp_messages_in_total",
        "counter",
        ("kind", "prefix"),
        "messages accepted (SENDs, application publishes), by destination kind",
    ),
    (
        "stomp_messages_out_total",
        "counter",
        ("kind", "prefix"),
        "MESSAGE frames sent, by destination kind",
    ),
    ("stomp_frames_in_total", "counter", ("command",), "frames received, by command"),
    ("stomp_frames_out_total", "counter", ("command",), "frames sent, by command"),
    ("stomp_bytes_in_total", "counter", (), "bytes read from clients"),
    ("stomp_bytes_out_total", "counter", (), "bytes written to clients"),
    (
        "stomp_deliveries_dropped_total",
        "counter",
        (),
        "topic copies not sent to a slow consumer (or one at its prefetch-count)",
    ),
    ("stomp_redeliveries_total", "counter", (), "MESSAGE frames marked redelivered"),
    ("stomp_requeued_total", "counter", (), "queue messages given back to their queue"),
    ("stomp_refused_total", "counter", (), "frames refused with an ERROR by the broker's rules"),
    ("stomp_queues", "gauge", (), "queues"),
    ("stomp_queued_messages", "gauge", (), "messages waiting in all queues"),
    ("stomp_queued_bytes", "gauge", (), "bytes waiting in all queues (whole frames)"),
    ("stomp_queue_messages", "gauge", ("queue",), "messages waiting, per queue"),
    ("stomp_queue_bytes", "gauge", ("queue",), "bytes waiting, per queue"),
    ("stomp_memory_bytes", "gauge", (), "queued and transaction-held bytes (max_memory_bytes)"),
    ("stomp_pending_bytes", "gauge", (), "bytes waiting to be written to clients"),
    (
        "stomp_handler_calls_total",
        "counter",
        ("kind", "handler"),
        "application handler calls",
    ),
    (
        "stomp_handler_errors_total",
        "counter",
        ("kind", "handler"),
        "application handler calls that raised",
    ),
    (
        "stomp_handler_seconds",
        "histogram",
        ("kind", "handler"),
        "application handler latency, in seconds",
    ),
)

_HELP = {name: text for name, _, _, text in METRICS}


def _help(name: str) -> str:
    return _HELP[name]


class BrokerCollector(Collector):
    """A Prometheus collector reading one broker's counters at scrape time.

    ``max_queues`` bounds the per-queue series (``stomp_queue_messages``,
    ``stomp_queue_bytes``): queue names are the clients' choice, so past it
    only the deepest queues get a series of their own (the totals count all).
    Register it on any registry (``REGISTRY.register(broker.collector())``),
    or let :meth:`~stomp_proto.broker.Broker.metrics_app` make one.
    """

    def __init__(self, broker: Broker, *, max_queues: int = 1000) -> None:
        self.broker = broker
        self.max_queues = max_queues

    def collect(self) -> Iterator[Metric]:
        s = snapshot(self.broker)

        def counter(name: str, labels: tuple[str, ...] = ()) -> CounterMetricFamily:
            return CounterMetricFamily(name.removesuffix("_total"), _help(name), labels=labels)

        def gauge(name: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, _help(name), labels=labels)

        info = gauge("stomp_info", ("version",))
        info.add_metric([__version__], 1)
        yield info

        total = counter("stomp_connections_accepted_total", ("transport",))
        now = gauge("stomp_connections", ("transport",))
        for transport in sorted(set(s.connections_total) | set(s.connections_open)):
            total.add_metric([transport], s.connections_total.get(transport, 0))
            now.add_metric([transport], s.connections_open.get(transport, 0))
        yield total
        yield now

        closed = counter("stomp_connections_closed_total", ("reason", "by"))
        for reason, n in s.closed.items():
            closed.add_metric([reason, "client" if reason in BY_CLIENT else "server"], n)
        yield closed

        sessions = gauge("stomp_sessions")
        sessions.add_metric([], s.sessions)
        yield sessions
        yield _one(counter("stomp_logins_total"), s.sessions_total)

        refusals = counter("stomp_auth_refusals_total", ("stage",))
        refusals.add_metric(["login"], s.closed.get("login-refused", 0))
        refusals.add_metric(["authorize"], s.router.get("denied", 0))
        yield refusals

        subscriptions = gauge("stomp_subscriptions", ("kind",))
        for kind, n in sorted(s.subscriptions.items()):
            subscriptions.add_metric([kind], n)
        yield subscriptions

        for name, figures in (
            ("stomp_messages_in_total", s.messages_in),
            ("stomp_messages_out_total", s.messages_out),
        ):
            family = counter(name, ("kind", "prefix"))
            for (kind, prefix), n in sorted(figures.items()):
                family.add_metric([kind, prefix], n)
            yield family

        for name, frames in (
            ("stomp_frames_in_total", s.frames_in),
            ("stomp_frames_out_total", s.frames_out),
        ):
            family = counter(name, ("command",))
            for command, n in sorted(frames.items()):
                family.add_metric([command], n)
            yield family

        yield _one(counter("stomp_bytes_in_total"), s.bytes_in)
        yield _one(counter("stomp_bytes_out_total"), s.bytes_out)
        yield _one(counter("stomp_deliveries_dropped_total"), s.router.get("dropped", 0))
        yield _one(counter("stomp_redeliveries_total"), s.router.get("redelivered", 0))
        yield _one(counter("stomp_requeued_total"), s.router.get("requeued", 0))
        yield _one(counter("stomp_refused_total"), s.router.get("refused", 0))

        yield _one(gauge("stomp_queues"), len(s.queues))
        yield _one(gauge("stomp_queued_messages"), sum(n for n, _ in s.queues.values()))
        yield _one(gauge("stomp_queued_bytes"), sum(b for _, b in s.queues.values()))
        queues = sorted(s.queues.items(), key=lambda item: (-item[1][0], item[0]))
        depth = gauge("stomp_queue_messages", ("queue",))
        size = gauge("stomp_queue_bytes", ("queue",))
        for name, (n, nbytes) in queues[: self.max_queues]:
            depth.add_metric([name], n)
            size.add_metric([name], nbytes)
        yield depth
        yield size
        yield _one(gauge("stomp_memory_bytes"), s.memory)
        yield _one(gauge("stomp_pending_bytes"), s.pending_bytes)

        calls = counter("stomp_handler_calls_total", ("kind", "handler"))
        errors = counter("stomp_handler_errors_total", ("kind", "handler"))
        latency = HistogramMetricFamily(
            "stomp_handler_seconds", _help("stomp_handler_seconds"), labels=("kind", "handler")
        )
        for (kind, handler), h in sorted(s.handlers.items()):
            calls.add_metric([kind, handler], h.calls)
            errors.add_metric([kind, handler], h.errors)
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for bound, n in zip((*BUCKETS, math.inf), h.buckets, strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == math.inf else repr(bound), cumulative))
            latency.add_metric([kind, handler], buckets, h.seconds)
        yield calls
        yield errors
        yield latency


def _one(family: CounterMetricFamily | GaugeMetricFamily, figure: float) -> Metric:
    family.add_metric([], figure)
    return family


def make_metrics_app(broker: Broker, registry: CollectorRegistry) -> ASGIApp:
    """``registry`` served as Prometheus text (prometheus_client's ASGI app) on
    any path it is mounted at; it also answers an ASGI server's lifespan
    messages, so that it runs on its own too (``uvicorn module:app``)."""
    serve: ASGIApp = make_asgi_app(registry)

    async def metrics(scope: Scope, receive: Receive, send: SendMessage) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if kind != "http":
            raise RuntimeError(f"the metrics application serves HTTP, not {kind!r}")
        if scope.get("method") not in ("GET", "HEAD"):
            await send(
                {
                    "type": "http.response.start",
                    "status": 405,
                    "headers": [(b"allow", b"GET, HEAD"), (b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.body", "body": b"method not allowed\n"})
            return
        await serve(scope, receive, send)

    metrics.broker = broker  # type: ignore[attr-defined]  # which broker it reports on
    return metrics


# -- a standalone endpoint ---------------------------------------------------------------

#: The longest request head the standalone endpoint reads, and how long it waits.
_MAX_HEAD = 16384
_REQUEST_TIMEOUT = 10.0
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 400: "Bad Request"}


async def serve_metrics(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    path: str = "/metrics",
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` at ``http://host:port/metrics`` (HTTP/1.1, one request per
    connection), on this event loop: a metrics port needs no ASGI server."""
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    bound: int = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                with anyio.move_on_after(_REQUEST_TIMEOUT):
                    await _answer(stream, app, path, host, bound)

    listeners: list[Accepting[anyio.abc.SocketStream]] = list(
        getattr(listener, "listeners", None) or [listener]
    )
    async with listener:
        task_status.started(bound)
        async with anyio.create_task_group() as tg:
            for each in listeners:  # out of descriptors: they back off, not die
                tg.start_soon(accept_loop, each, handle, tg)


async def _answer(
    stream: anyio.abc.SocketStream, app: ASGIApp, path: str, host: str, port: int
) -> None:
    head = b""
    while b"\r\n\r\n" not in head:
        if len(head) > _MAX_HEAD:
            await stream.send(_response(400, [], b"request head too large\n"))
            return
        head += await stream.receive()
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        await stream.send(_response(400, [], b"bad request\n"))
        return
    method, target, _ = parts
    target_path, _, query = target.partition("?")
    if unquote(target_path) != path:
        await stream.send(_response(404, [], b"not found: the metrics are at " + path.encode()))
        return
    headers = []
    for line in lines[1:]:
        name, colon, field_value = line.partition(":")
        if colon:
            headers.append((name.strip().lower().encode("latin-1"), field_value.strip().encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": target_path,
        "raw_path": target_path.encode("latin-1"),
        "query_string": query.encode("latin-1"),
        "root_path": "",
        "headers": headers,
        "client": stream.extra(anyio.abc.SocketAttribute.remote_address, None),
        "server": (host, port),
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    out = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
    await stream.send(_response(start["status"], out, b"" if method == "HEAD" else body, len(body)))


def _response(
    status: int, headers: list[tuple[str, str]], body: bytes, length: int | None = None
) -> bytes:
    if not headers:
        headers = [("content-type", "text/plain")]
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines += [f"content-length: {len(body) if length is None else length}", "connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
