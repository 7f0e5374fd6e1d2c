"""The runtime's half of the durable store: group commit in a worker thread,
and posts that wait for it.

The router appends store effects to :attr:`Router.effects
<stomp_proto.broker.Router.effects>` and names, in :attr:`Router.awaiting
<stomp_proto.broker.Router.awaiting>`, the sessions whose frames produced them.
This module performs them, and holds no rule about what they mean:

* **Group commit.** One task takes the router's whole effect list and hands it
  to :meth:`Store.write <stomp_proto.broker.Store.write>` in a worker thread
  (``anyio.to_thread``: the event loop never waits on the disk); whatever the
  router produces meanwhile is the next batch. Batches are numbered.
* **Holding.** A session named in ``awaiting`` is *held* until the batch that
  was open at that moment is committed: every frame posted to it from then on
  (its RECEIPT first) is kept back, in order, and posted once the commit
  returns. Other sessions are not held: a consumer gets a persistent message
  at once, before it is committed, as RabbitMQ delivers before it confirms.
  A held session whose frames pile up (a producer far ahead of the disk) is
  not read from until they drain: flow control, so that a client cannot make
  the broker hold unbounded RECEIPTs.
* **Written auto-mode deliveries.** A stored message given to an ``auto``
  subscription is consumed once written to the socket; the router cannot
  know when that is, so for the sessions in :attr:`Router.watch
  <stomp_proto.broker.Router.watch>` this task tells it (:meth:`Router.written
  <stomp_proto.broker.Router.written>`) before each commit, and every
  ``watch_interval`` seconds while there are any.
* **Failure.** A batch that cannot be committed (a full disk) is logged, and
  every held session gets an ERROR instead of what it waited for, and is
  closed: a producer never gets a RECEIPT for a message that is not stored.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ._router import Post, Router, Session
from ._sqlite import SQLiteStore
from ._store import Store, StoreError

if TYPE_CHECKING:
    from ._broker import Broker

__all__: list[str] = []

log = logging.getLogger("stomp_proto.broker")

#: Frames held for one session beyond which it is not read from until the
#: next commit releases them (a producer pipelining thousands of receipted
#: SENDs stays far below the core's 10,000 pending receipts).
MAX_HELD = 1000


def open_store(store: str | os.PathLike[str] | Store) -> Store:
    """A path is an :class:`SQLiteStore` with its defaults."""
    if isinstance(store, (str, os.PathLike)):
        return SQLiteStore(store)
    return store


@dataclass(eq=False, slots=True)
class _Hold:
    #: The batch this session's posts wait for (the latest with its effects).
    until: int
    #: The batches, not yet committed, that hold effects of this session.
    batches: set[int] = field(default_factory=set)
    #: ``(batch, post)``, oldest first.
    posts: deque[tuple[int, Post]] = field(default_factory=deque)


class StoreRunner:
    """Performs the router's store effects for ``broker`` (see the module docstring)."""

    watch_interval = 0.05
    max_held = MAX_HELD

    def __init__(self, broker: Broker, store: Store, post: Callable[[list[Post]], None]) -> None:
        self.broker = broker
        self.router: Router = broker.router
        self.store = store
        self._post = post  # the runtime's own posting, past any hold
        self._holds: dict[Session, _Hold] = {}
        self._open = 1  # the batch effects go to now
        self._wake = anyio.Event()
        self._done = anyio.Event()
        self._loaded = False

    # -- start and stop ------------------------------------------------------------------

    async def open(self) -> None:
        """Open the store in a worker thread and give the router what it kept
        (StoreError, naming the file, if it cannot be used)."""
        snapshot = await anyio.to_thread.run_sync(self.store.load)
        if self._loaded:
            return  # served before: the router's memory is newer than the file
        try:
            self.router.restore(snapshot)
        except BaseException:
            await anyio.to_thread.run_sync(self.store.close)  # it will not be served
            raise
        self._loaded = True
        count = len(snapshot.messages)
        log.info(
            "store %s: %d message(s), %d durable subscription(s) restored",
            getattr(self.store, "path", self.store),
            count,
            len(snapshot.subscriptions),
        )

    async def run(self) -> None:
        """The writer: one batch at a time, until cancelled; then the last
        batch (what the sessions' ends produced) and the store is closed."""
        self._wake = anyio.Event()
        self._done = anyio.Event()
        try:
            await self._loop()
        finally:
            with anyio.CancelScope(shield=True):
                await self._last()

    async def _loop(self) -> None:
        router = self.router
        while True:
            if not router.effects:
                if router.watch:
                    with anyio.move_on_after(self.watch_interval):
                        await self._wake.wait()
                else:
                    await self._wake.wait()
                self._wake = anyio.Event()
            self._check_written()
            if router.effects:
                await self._commit()

    async def _last(self) -> None:
        """The broker is stopping: commit (and release) until its sessions have
        ended, then what their ends produced, then close the store."""
        try:
            with anyio.move_on_after(10):
                while self.broker._links:
                    self._check_written()
                    if self.router.effects:
                        await self._commit()
                    else:
                        await anyio.sleep(0.01)
            self._check_written()
            if self.router.effects:
                await self._commit()
        finally:
            await anyio.to_thread.run_sync(self.store.close)

    # -- effects -------------------------------------------------------------------------

    def perform(self, posts: list[Post]) -> None:
        """The runtime's ``_perform`` with a store: hold what must wait, post the rest."""
        router = self.router
        holds = self._holds
        if router.awaiting:
            for state in router.awaiting:
                if state.io is None:
                    continue  # gone
                hold = holds.get(state)
                if hold is None:
                    hold = holds[state] = _Hold(self._open)
                else:
                    hold.until = self._open
                hold.batches.add(self._open)
            router.awaiting.clear()
        if holds and posts:
            now: list[Post] = []
            for post in posts:
                hold = holds.get(post[0])
                if hold is None:
                    now.append(post)
                else:
                    hold.posts.append((hold.until, post))
            posts = now
        self._post(posts)
        if (router.effects or router.watch) and not self._wake.is_set():
            self._wake.set()

    def held(self, state: Session) -> int:
        """How many frames wait for a commit before they can go to ``state``."""
        hold = self._holds.get(state)
        return 0 if hold is None else len(hold.posts)

    async def pace(self, state: Session) -> None:
        """Wait until ``state`` has fewer than :data:`MAX_HELD` frames held."""
        while self.held(state) >= self.max_held:
            await self._done.wait()

    async def settle(self, state: Session) -> None:
        """Wait until nothing is held for ``state`` (its session is ending:
        its last RECEIPT must go out before it closes)."""
        while state in self._holds:
            if not self._wake.is_set():
                self._wake.set()
            await self._done.wait()

    def _check_written(self) -> None:
        router = self.router
        for state in list(router.watch):
            link: Any = state.io
            if link is None:
                router.watch.discard(state)
                continue
            session = link.session
            router.written(state, session.posted_bytes - session.pending_bytes)
            if not state.unwritten:
                router.watch.discard(state)

    async def _commit(self) -> None:
        router = self.router
        batch = router.effects
        router.effects = []
        number = self._open
        self._open += 1
        failure: BaseException | None = None
        try:
            with anyio.CancelScope(shield=True):  # a batch taken is a batch committed
                await anyio.to_thread.run_sync(self.store.write, batch)
        except StoreError as exc:
            failure = exc
            log.error("%s", exc)
        except Exception as exc:  # an engine's bug must not stop the writer
            failure = exc
            log.exception("store %r: commit failed", self.store)
        self._release(number, failure)
        done, self._done = self._done, anyio.Event()
        done.set()

    def _release(self, number: int, failure: BaseException | None) -> None:
        out: list[Post] = []
        for state, hold in list(self._holds.items()):
            posts = hold.posts
            if number in hold.batches:
                hold.batches.discard(number)
                if failure is not None:  # what it sent is not stored
                    self._fail(state, hold, failure)
                    continue
            while posts and posts[0][0] <= number:
                out.append(posts.popleft()[1])
            if not posts and hold.until <= number:
                del self._holds[state]
        if out:
            self._post(out)

    def _fail(self, state: Session, hold: _Hold, failure: BaseException) -> None:
        """A commit failed while ``state`` waited: ERROR instead, and close."""
        del self._holds[state]
        broker = self.broker
        for _, (target, event) in hold.posts:
            if target.unmarked:  # a tracked auto-mode delivery: never written
                broker._mark(target, event, None)
        hold.posts.clear()
        link: Any = state.io
        if link is None or state.ended:
            return
        state.ended = True
        error = Router.error(
            state, None, f"the broker could not store what this session sent: {failure}"
        )
        assert broker._tg is not None
        broker._tg.start_soon(broker._abort, link, error)
