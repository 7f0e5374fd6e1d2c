"""Typing regression tests for the durable store's public API (``mypy --strict``).

As ``test_public_api.py``: each ``assert_type`` pins what a user sees, inside a
small real scenario that pytest runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    from typing import assert_type
elif TYPE_CHECKING:
    from typing_extensions import assert_type
else:  # Python 3.10 at run time: only mypy needs the real one

    def assert_type(value: Any, typ: Any, /) -> Any:
        return value


from stomp_proto import Send
from stomp_proto.broker import (
    Bind,
    Broker,
    Effect,
    Put,
    Remove,
    Router,
    Session,
    Snapshot,
    SQLiteStore,
    Store,
    StoredMessage,
    StoreError,
    Unbind,
)


def test_the_router_store_effects(tmp_path: Path) -> None:
    router = Router(durable=True, max_store_bytes=1 << 20, max_queue_messages=10)
    assert_type(router.durable, bool)
    session = router.open("s", "1.2")
    router.handle(
        session, Send(destination="/queue/q", body=b"x", headers=(("persistent", "true"),))
    )
    assert_type(router.effects, list[Put | Remove | Bind | Unbind])
    effect: Effect = router.effects[0]
    assert type(effect) is Put
    assert_type(effect.row, int)
    assert_type(effect.queue, str)
    assert_type(router.awaiting, set[Session])
    assert_type(router.stored_bytes, int)

    store: Store = SQLiteStore(tmp_path / "s.db", synchronous="normal")
    snapshot = store.load()
    assert_type(snapshot, Snapshot)
    assert_type(snapshot.messages, list[StoredMessage])
    assert_type(snapshot.subscriptions, list[Bind])
    store.write(router.effects)
    store.close()
    assert issubclass(StoreError, RuntimeError)
    again = Router(durable=True)
    reopened = SQLiteStore(tmp_path / "s.db")
    assert_type(again.restore(reopened.load()), None)
    reopened.close()
    assert again.queued() == 1

    broker = Broker(store=tmp_path / "b.db", max_store_bytes=1 << 20, max_durable_subscriptions=5)
    assert_type(broker, Broker)
    Broker(store=SQLiteStore(tmp_path / "c.db"))
    Broker(store=str(tmp_path / "d.db"))
