"""One listener for every server transport: accept, upgrade, then a session.

:func:`~stomp_proto.asyncio.serve` (TCP) and
:func:`~stomp_proto.asyncio.serve_websocket` differ only in their *upgrade*
step, the coroutine that turns an accepted byte stream into a STOMP
:class:`~._transport.Transport` (TCP: the stream itself; WebSocket: the HTTP
Upgrade handshake). Everything else lives here, once: the accept loop, TLS,
the deadline for the handshakes, and the hand-off to the session.

The accept loop survives the errors a busy or attacked server meets (issue 9,
item 8): out of descriptors (``EMFILE``, ``ENFILE``), out of buffers or memory
(``ENOBUFS``, ``ENOMEM``), a connection reset before it was accepted
(``ECONNABORTED``). It logs (rate-limited), backs off briefly and goes on:
the connections still in the kernel's backlog are accepted once descriptors
are free again. Any other error ends the listener, as before.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import ssl as _ssl
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

import anyio
import anyio.abc

from ._aiostream import fast_listeners
from ._log import RateLimitedLog
from ._transport import Transport

__all__ = ["TRANSIENT_ACCEPT_ERRORS", "accept_loop", "listen"]

log = logging.getLogger("stomp_proto.server")
#: Rate-limited lines of the listeners (and of the sessions they start).
server_log = RateLimitedLog(log)

#: accept() errors that a listener waits out instead of dying of.
TRANSIENT_ACCEPT_ERRORS = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED}
)
#: The first and the longest pause after a failed accept(), in seconds.
_MIN_BACKOFF = 0.01
_MAX_BACKOFF = 1.0

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Accepting(Protocol[T_co]):
    """What the accept loop needs: AnyIO's socket listeners have it."""

    async def accept(self) -> T_co: ...  # pragma: no cover


#: Turns an accepted (and TLS-wrapped) stream into a transport; None drops it.
Upgrade = Callable[[anyio.abc.ByteStream], Awaitable[Transport | None]]


class Start(Protocol):
    """Runs a session over an upgraded transport: (transport, peer, CONNECT
    deadline, the task group its helper tasks may share)."""

    def __call__(
        self,
        transport: Transport,
        peer: object,
        deadline: float | None,
        helpers: anyio.abc.TaskGroup | None = None,
        /,
    ) -> Awaitable[None]: ...  # pragma: no cover


def _transient_errno(exc: BaseException) -> int | None:
    # asyncio raises the OSError itself; AnyIO's trio backend wraps it in
    # BrokenResourceError, with the OSError as the cause.
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, OSError) and candidate.errno in TRANSIENT_ACCEPT_ERRORS:
            return candidate.errno
    return None


async def accept_loop(
    listener: Accepting[T],
    handle: Callable[[T], Coroutine[Any, Any, None]],
    task_group: anyio.abc.TaskGroup,
    *,
    min_backoff: float = _MIN_BACKOFF,
    max_backoff: float = _MAX_BACKOFF,
    rate_limited: RateLimitedLog = server_log,
) -> None:
    """Accept connections forever, starting ``handle(stream)`` in ``task_group`` for each.

    A transient error (:data:`TRANSIENT_ACCEPT_ERRORS`) is logged and waited
    out, the pause doubling from ``min_backoff`` to ``max_backoff`` while the
    errors last; anything else propagates.
    """
    backoff = min_backoff
    while True:
        try:
            stream = await listener.accept()
        except (OSError, anyio.BrokenResourceError) as exc:
            code = _transient_errno(exc)
            if code is None:
                raise
            rate_limited(
                f"accept {errno.errorcode.get(code, code)}",
                logging.WARNING,
                "accept() failed: %s; retrying in %.2f s",
                os.strerror(code),
                backoff,
            )
            await anyio.sleep(backoff)
            backoff = min(max_backoff, backoff * 2)
            continue
        backoff = min_backoff
        task_group.start_soon(handle, stream)


async def listen(
    host: str,
    port: int,
    *,
    upgrade: Upgrade,
    start: Start,
    ssl: _ssl.SSLContext | None,
    connect_timeout: float | None,
    handshake_timeout: float | None,
    task_status: anyio.abc.TaskStatus[int],
) -> None:
    """Listen on ``host:port``; for each connection: TLS, ``upgrade``, then ``start``.

    The TLS handshake and the upgrade must finish within ``handshake_timeout``
    and within ``connect_timeout`` of the accept; the rest of
    ``connect_timeout`` is the session's deadline for CONNECT (None: none).
    The bound port is reported through ``task_status``.
    """
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    bound: int = listener.extra(anyio.abc.SocketAttribute.local_port)
    # The listener's task group: each connection's task, and its session's
    # writer and timer while they run (no task group per connection).
    shared: list[anyio.abc.TaskGroup] = []

    async def run(stream: anyio.abc.ByteStream) -> None:
        accepted = anyio.current_time()
        deadline = math.inf if connect_timeout is None else accepted + connect_timeout
        if handshake_timeout is not None:
            handshake_deadline = min(deadline, accepted + handshake_timeout)
        else:
            handshake_deadline = deadline
        peer = stream.extra(anyio.abc.SocketAttribute.remote_address, None)
        transport: Transport | None = None
        try:
            with anyio.move_on_at(handshake_deadline):
                if ssl is not None:
                    from anyio.streams.tls import TLSStream

                    stream = await TLSStream.wrap(
                        stream, server_side=True, ssl_context=ssl, standard_compatible=False
                    )
                transport = await upgrade(stream)
        except (
            OSError,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            anyio.EndOfStream,
        ) as exc:
            # ssl.SSLError is an OSError: a client that is not TLS, or gave up.
            server_log("handshake", logging.DEBUG, "handshake with %s failed: %r", peer, exc)
        except Exception:  # a bug in one handshake must not take the listener down
            server_log(
                "handshake bug", logging.ERROR, "handshake with %s failed", peer, exc_info=True
            )
        if transport is None:
            with anyio.CancelScope(shield=True):
                await stream.aclose()
            return
        try:
            await start(transport, peer, None if connect_timeout is None else deadline, shared[0])
        except Exception:  # the session catches its handler's errors; this is the rest
            server_log("session bug", logging.ERROR, "session with %s failed", peer, exc_info=True)
            await transport.aclose()

    listeners: list[Accepting[anyio.abc.SocketStream]] = list(
        getattr(listener, "listeners", None) or [listener]
    )
    # On asyncio, our leaner streams (no per-read epoll_ctl, writes without a task).
    fast = fast_listeners(listeners)  # type: ignore[arg-type]
    if fast is not None:
        listeners = list(fast)
    async with listener:
        task_status.started(bound)
        async with anyio.create_task_group() as tg:
            shared.append(tg)
            for each in listeners:
                tg.start_soon(accept_loop, each, run, tg)
