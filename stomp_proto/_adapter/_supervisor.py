"""The reconnect supervisor: keeps a client connected, one :class:`~._link.Link` at a time.

The supervisor runs each link until it ends. When one ends on its own (EOF, a
silent server, a protocol error, a transport failure), the client is told
(``on_lost``: pending receipts fail, transactions of that connection are
dead); then, under the :class:`ReconnectPolicy`, the supervisor opens a new
link on the next host, with back-off, and has the client restore its
subscriptions (``on_reconnected``). An ERROR frame, no policy, or the attempts
running out end the client for good (``on_finished``). It knows nothing of
what a subscription or a receipt is: those live in the facade (``_client.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import anyio.abc

from .. import ProtocolError
from .._clients import ReconnectPolicy
from ._link import ConnectionLost, Link, OnMessage, OnReceipt, StompError

__all__ = ["ReconnectPolicy", "Supervisor"]


#: Opens a link to ``(host, port)`` with the given epoch.
Opener = Callable[[str, int, int], Awaitable[Link]]


class Supervisor:
    """Runs the links of one client in ``task_group`` (see the module docstring)."""

    def __init__(
        self,
        task_group: anyio.abc.TaskGroup,
        opener: Opener,
        address: tuple[str, int],
        policy: ReconnectPolicy | None,
        *,
        on_message: OnMessage,
        on_receipt: OnReceipt,
        on_lost: Callable[[BaseException], None],
        on_reconnected: Callable[[], Awaitable[None]],
        on_finished: Callable[[BaseException], None],
    ) -> None:
        self._tg = task_group
        self._opener = opener
        self.address = address
        self.policy = policy
        self._on_message = on_message
        self._on_receipt = on_receipt
        self._on_lost = on_lost
        self._on_reconnected = on_reconnected
        self._on_finished = on_finished
        #: The current link; None while reconnecting (and before the first).
        self.link: Link | None = None
        #: How many links have been opened.
        self.epoch = 0
        #: Set by the client when it starts closing: no more reconnects.
        self.closing = False

    async def open(self, host: str, port: int) -> Link:
        """Open a link and start running it."""
        link = await self._opener(host, port, self.epoch + 1)
        self.epoch = link.epoch
        self.link = link
        self._tg.start_soon(self._run, link)
        return link

    async def _run(self, link: Link) -> None:
        error = await link.run(self._on_message, self._on_receipt)
        if error is None:
            return  # the client ended this connection
        if self.link is link:
            self.link = None
        if self.closing:
            self._on_finished(ConnectionLost("the client is closed"))
            return
        await self._lost(error)

    async def _lost(self, error: BaseException) -> None:
        """The link died: tell the client, then reconnect or give up."""
        self._on_lost(error)
        policy = self.policy
        if policy is None or isinstance(error, StompError):
            self._on_finished(error)
            return
        hosts = list(policy.hosts) or [self.address]
        for attempt, delay in enumerate(policy.delays()):
            await anyio.sleep(delay)
            if self.closing:
                break
            host, port = hosts[attempt % len(hosts)]
            try:
                link = await self.open(host, port)
            except (OSError, TimeoutError, StompError, ProtocolError, ConnectionLost):
                continue
            if self.closing:
                link.cancel()
                await link.aclose()
                return
            try:
                await self._on_reconnected()
            except (OSError, StompError, ProtocolError, ConnectionLost):
                continue
            return
        self._on_finished(error)

    def stop(self) -> Link | None:
        """No more reconnects; end the current link quietly. Returns it (to close)."""
        self.closing = True
        link = self.link
        if link is not None:
            link.cancel()
        return link
