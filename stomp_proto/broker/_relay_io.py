"""The relay's runtime: its upstream connections, kept up, fed into the books.

One task per upstream connection of a :class:`~._relay.Relay` (the system
connection and each pool connection): it connects to the first upstream
address, hands CONNECTED to the books (which re-establish subscriptions and
send again what was unconfirmed), then runs the connection with the
adapter's :class:`~.._adapter._link.Link` (reader and heart-beat ticker) and
a writer that writes what the books put in the connection's outbox. When the
connection ends (EOF, a silent upstream, an ERROR frame), the books are told
and the task connects again: the same address first, the next one when that
fails (failover), with back-off. A ticker tells the books the time twice a
second (deadlines of unconfirmed SENDs, lingering topic subscriptions).

Everything the books return for clients goes out through the router's
:meth:`~._router.Router.emit`. Availability changes are logged here (and
reach the relay's own listeners from the books).
"""

from __future__ import annotations

import logging
import ssl as _ssl
import weakref

import anyio
import anyio.abc

from .. import Error, Limits, LocalProtocolError, Message, ProtocolError, Receipt
from .._adapter._link import ConnectionLost, Link, StompError
from ._relay import Relay, RelayAvailability, Upstream, encode
from ._router import Post

__all__ = ["relay_room", "run_relay"]

log = logging.getLogger("stomp_proto.broker.relay")

#: Limits of an upstream connection: it carries many client sessions'
#: subscriptions, unacknowledged messages and receipts, so far more than one
#: client may hold (the relay's own bounds, prefetch and backlog bytes, apply).
_UPSTREAM_LIMITS = {
    "max_subscriptions": 1_000_000,
    "max_transactions": 100_000,
    "max_pending_receipts": 1_000_000,
    "max_unacknowledged": 10_000_000,
}


def _log_availability(event: RelayAvailability) -> None:
    if event.available:
        log.info("relay: %s connected to %s", event.connection, event.upstream)
    else:
        log.warning(
            "relay: %s unavailable (%s): %s", event.connection, event.upstream, event.reason
        )


async def run_relay(
    relay: Relay, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Run ``relay``'s upstream connections until cancelled."""
    if _log_availability not in relay.listeners:
        relay.listeners.insert(0, _log_availability)
    runners = [_Runner(relay, conn.index) for conn in relay.connections]
    relay.wake = lambda index: runners[index].wake()
    try:
        async with anyio.create_task_group() as tg:
            for runner in runners:
                tg.start_soon(runner.run)
            tg.start_soon(_ticker, relay)
            log.info(
                "relay: %d upstream connections to %s",
                len(runners),
                ", ".join(str(u) for u in relay.upstreams),
            )
            task_status.started()
    finally:
        relay.wake = None


#: relay -> the event its congested clients wait on (one for all of them).
_ROOM: weakref.WeakKeyDictionary[Relay, anyio.Event] = weakref.WeakKeyDictionary()


async def relay_room(relay: Relay) -> None:
    """Wait while ``relay`` is congested (the runtime calls it after a
    client's SEND: that client's socket is not read meanwhile)."""
    while relay.congested:
        room = _ROOM.get(relay)
        if room is None:
            room = _ROOM[relay] = anyio.Event()

            def wake(relay: Relay = relay) -> None:
                waiting = _ROOM.pop(relay, None)
                if waiting is not None:
                    waiting.set()

            relay.on_room = wake
        await room.wait()


async def _ticker(relay: Relay) -> None:
    router = relay._router()
    while True:
        await anyio.sleep(0.5)
        try:
            router.emit(relay.tick(anyio.current_time()))
        except Exception:  # a bug must not stop the broker: say it, carry on
            log.exception("relay: tick failed")


class _Runner:
    """One upstream connection, connected again and again."""

    def __init__(self, relay: Relay, index: int) -> None:
        self.relay = relay
        self.index = index
        self.name = relay.connections[index].name
        self._wake = anyio.Event()

    def wake(self) -> None:
        self._wake.set()

    def _emit(self, posts: list[Post]) -> None:
        if posts:
            self.relay._router().emit(posts)

    async def run(self) -> None:
        relay = self.relay
        addresses = relay.upstreams
        at = 0
        delays = relay.reconnect.delays()
        while True:
            upstream = addresses[at % len(addresses)]
            try:
                link = await self._open(upstream)
            except (OSError, TimeoutError, StompError, ProtocolError, ConnectionLost) as exc:
                self._emit(relay.connect_failed(self.index, upstream, _describe(exc)))
                at += 1  # the next address (failover)
                await anyio.sleep(next(delays, relay.reconnect.max_delay))
                continue
            delays = relay.reconnect.delays()  # back-off starts over after a connect
            try:
                reason = await self._serve(upstream, link)
            except Exception as exc:  # a bug must not stop the broker: reconnect
                log.exception("relay: %s failed; connecting again", self.name)
                reason = f"internal error: {exc!r}"
            self._emit(relay.lost(self.index, reason))
            await anyio.sleep(next(delays, relay.reconnect.max_delay))

    async def _open(self, upstream: Upstream) -> Link:
        relay = self.relay
        ssl: bool | _ssl.SSLContext = False
        if upstream.tls:
            ssl = relay.ssl if relay.ssl is not None else True
        return await Link.open(
            upstream.host,
            upstream.port,
            relay.connect_frame(self.index, upstream),
            epoch=relay.connections[self.index].epoch + 1,
            grace=relay.grace,
            limits=Limits(**_UPSTREAM_LIMITS),
            ssl=ssl,
            server_hostname=upstream.host if upstream.tls else None,
            timeout=relay.connect_timeout,
        )

    async def _serve(self, upstream: Upstream, link: Link) -> str:
        """Run one connection; returns why it ended."""
        relay = self.relay
        index = self.index
        self._emit(relay.connected(index, upstream, link.connected, anyio.current_time()))

        async def on_message(link: Link, message: Message) -> None:
            self._emit(relay.on_message(index, message))

        def on_receipt(receipt: Receipt) -> None:
            self._emit(relay.on_receipt(index, receipt))

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._writer, link)
                error = await link.run(on_message, on_receipt)
                tg.cancel_scope.cancel()
        finally:
            # Also when the relay is stopped (cancelled): the upstream then
            # requeues what this connection held unacknowledged at once.
            with anyio.CancelScope(shield=True):
                await link.aclose()
        if isinstance(error, StompError):
            self._emit(relay.on_error(index, error.error))
            return _describe(error)
        return _describe(error) if error is not None else "closed"

    async def _writer(self, link: Link) -> None:
        """Write what the books put in the outbox, in order."""
        relay = self.relay
        conn = link.conn
        lock = link._write_lock  # shared with the heart-beat ticker: bytes stay in order
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            async with lock:
                # Taken and serialized with no await in between: the core's
                # books and the relay's see the same frames in the same order.
                events = relay.take_outbox(self.index)
                now = anyio.current_time()
                writes: list[bytes] = []
                chunk: list[bytes] = []
                try:
                    for event in events:
                        if event is None:
                            if chunk:
                                writes.append(b"".join(chunk))
                                chunk = []
                            continue
                        chunk.append(encode(conn, event, now))
                except LocalProtocolError as exc:  # the books and the core disagree: a bug
                    log.error("relay: %s: %s; reconnecting", self.name, exc)
                    link.fail(ConnectionLost(f"local protocol error: {exc}"))
                    return
                if chunk:
                    writes.append(b"".join(chunk))
                try:
                    for data in writes:
                        await link.transport.send(data)
                except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                    link.fail(ConnectionLost(f"write failed: {exc!r}"))
                    return


def _describe(exc: BaseException) -> str:
    if isinstance(exc, StompError):
        error: Error = exc.error
        body = error.body.decode("utf-8", "replace").strip()[:200]
        text = error.message or "ERROR"
        return f"ERROR {text}" + (f": {body}" if body and body != text else "")
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    return str(exc) or type(exc).__name__
