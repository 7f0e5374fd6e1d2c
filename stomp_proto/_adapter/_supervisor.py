"""The reconnect supervisor: keeps a client connected, one :class:`~._link.Link` at a time.

The supervisor runs each link until it ends. When one ends on its own (EOF, a
silent server, a protocol error, a transport failure), the client is told
(``on_lost``: pending receipts fail, transactions of that connection are
dead); then, under the :class:`ReconnectPolicy`, the supervisor opens a new
link on the next host, with back-off, has the client restore its
subscriptions (``on_reconnected``) and says so (``on_connected``). An ERROR
frame, no policy, or the attempts running out end the client for good
(``on_finished``). :meth:`Supervisor.stop` ends it all at once, a retry loop
included. It knows nothing of what a subscription or a receipt is: those live
in the facade (:mod:`stomp_proto.asyncio`).

What it does is logged on ``stomp_proto.client``: a lost connection and why
(WARNING), each attempt and why it failed (DEBUG), the reconnect (INFO), giving
up (WARNING); the first connect and a clean end at DEBUG.

One rule keeps two retry loops from ever running at once: a link's end starts
recovery only if it was the current link and no recovery is under way; a link
that the retry loop opened and that failed during re-subscription is the
loop's to handle (it is abandoned and the loop goes on).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc

from .. import ProtocolError
from .._clients import ReconnectPolicy
from ._link import ConnectionLost, Link, OnMessage, OnReceipt, StompError, where

__all__ = ["ReconnectPolicy", "Supervisor", "log"]

log = logging.getLogger("stomp_proto.client")

#: Opens a link to ``(host, port)`` with the given epoch.
Opener = Callable[[str, int, int], Awaitable[Link]]
#: What an attempt may fail with and still be retried.
_RETRIED = (OSError, TimeoutError, StompError, ProtocolError, ConnectionLost)


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
        on_lost: Callable[[Link, BaseException, bool], None],
        on_reconnected: Callable[[], Awaitable[None]],
        on_connected: Callable[[Link], None],
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
        self._on_connected = on_connected
        self._on_finished = on_finished
        #: The current link; None while reconnecting (and before the first).
        self.link: Link | None = None
        #: How many links have been opened.
        self.epoch = 0
        #: Set by the client when it starts closing: no more reconnects.
        self.closing = False
        self._recovering = False
        self._retries: anyio.CancelScope | None = None  # the retry loop's, while it runs

    async def open(self, host: str, port: int) -> Link:
        """Open a link and start running it."""
        link = await self._opener(host, port, self.epoch + 1)
        self.epoch = link.epoch
        self.link = link
        self._tg.start_soon(self._run, link)
        return link

    async def start(self, host: str, port: int) -> Link:
        """Open the first link (not retried: a first connect that fails raises)."""
        link = await self.open(host, port)
        log.debug("connected to %s (STOMP %s)", link.where, link.conn.version)
        self._on_connected(link)
        return link

    async def _run(self, link: Link) -> None:
        error = await link.run(self._on_message, self._on_receipt)
        current = self.link is link
        if current:
            self.link = None
        if error is None or not current or self._recovering:
            return  # ended by the client, abandoned, or the retry loop's to handle
        if self.closing:
            log.debug("connection to %s ended while closing: %s", link.where, error)
            self._on_finished(ConnectionLost("the client is closed"))
            return
        await self._recover(link, error)

    async def _recover(self, lost: Link, error: BaseException) -> None:
        """The link died: tell the client, then reconnect or give up."""
        policy = self.policy
        retrying = policy is not None and not isinstance(error, StompError)
        if isinstance(error, StompError):
            log.warning("the server at %s ended the session with ERROR: %s", lost.where, error)
        elif policy is None:
            log.warning(
                "connection to %s lost: %s (no reconnect policy: the session ends)",
                lost.where,
                error,
            )
        else:
            log.warning("connection to %s lost: %s; reconnecting", lost.where, error)
        self._on_lost(lost, error, retrying)
        if policy is None or not retrying:
            self._on_finished(error)
            return
        hosts = list(policy.hosts) or [self.address]
        attempts = 0
        if self.closing:
            return
        self._recovering = True
        retries = self._retries = anyio.CancelScope()
        try:
            with retries:
                for attempts, delay in enumerate(policy.delays(), 1):
                    host, port = hosts[(attempts - 1) % len(hosts)]
                    log.debug(
                        "reconnect attempt %d to %s in %.2f s", attempts, where(host, port), delay
                    )
                    await anyio.sleep(delay)
                    if await self._attempt(attempts, host, port):
                        return
        finally:
            self._recovering = False
            self._retries = None
        if retries.cancel_called or self.closing:
            return  # the client is closing and finishes itself
        log.warning(
            "gave up reconnecting to %s after %d attempt(s); the session ends: %s",
            lost.where,
            attempts,
            error,
        )
        self._on_finished(error)

    async def _attempt(self, attempt: int, host: str, port: int) -> bool:
        """One reconnect attempt: connect, re-subscribe. True once connected."""
        try:
            link = await self.open(host, port)
        except _RETRIED as exc:
            log.debug("reconnect attempt %d to %s failed: %r", attempt, where(host, port), exc)
            return False
        try:
            await self._on_reconnected()
        except _RETRIED as exc:
            log.debug("re-subscribing on %s failed: %r", link.where, exc)
            self._abandon(link)
            return False
        if self.link is not link:  # it died while re-subscribing, without a word
            log.debug("connection to %s ended while re-subscribing", link.where)
            return False
        log.info(
            "reconnected to %s after %d attempt(s) (STOMP %s)",
            link.where,
            attempt,
            link.conn.version,
        )
        self._on_connected(link)
        return True

    def _abandon(self, link: Link) -> None:
        if self.link is link:
            self.link = None
        link.cancel()

    def stop(self) -> Link | None:
        """No more reconnects (a retry loop ends now); end the current link quietly.

        Returns the link that was current, for the caller to close.
        """
        self.closing = True
        if self._retries is not None:
            self._retries.cancel()
        link = self.link
        if link is not None:
            link.cancel()
        return link
