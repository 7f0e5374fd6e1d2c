"""The durable store on SQLite (the standard library's ``sqlite3``): one file, no server.

Strategy:

* **WAL mode, one transaction per batch.** The runtime hands :meth:`SQLiteStore.write`
  every effect that arrived while the previous commit ran; they go in one
  transaction, so a burst of persistent SENDs costs one WAL sync, not one each
  (group commit). A :class:`~stomp_proto.broker.Put` and a
  :class:`~stomp_proto.broker.Remove` of the same row in one batch cancel out.
* **The sync policy** is SQLite's ``synchronous`` setting. ``"full"`` (the
  default) syncs the WAL at every commit: a committed batch survives the
  process being killed, the operating system crashing and the power failing
  (on a disk that honours flushes). ``"normal"`` syncs only at checkpoints: a
  committed batch survives the process being killed (``kill -9``), but the last
  batches before an OS crash or a power failure may be lost.
* **One process at a time.** The file is opened in SQLite's exclusive locking
  mode and written at once, so this process holds its lock until it closes the
  store; a second broker on the same file gets :exc:`~stomp_proto.broker.StoreError`
  at start, as does a file that is corrupt or is not a stomp-proto store
  (``PRAGMA quick_check`` runs at every start).

Schema (``PRAGMA application_id`` marks the file as ours, ``user_version`` is
the schema's version): ``message(row, queue, message_id, destination,
content_type, headers, body)``, ``row`` being the router's number for it
(the rowid, so rows are appended in order), ``headers`` a JSON list of pairs;
and ``subscription(queue, login, destination, id, selector)``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence

try:
    import sqlite3
except ImportError:  # pragma: no cover - a Python built without it
    sqlite3 = None  # type: ignore[assignment]

from ._store import Bind, Effect, Put, Remove, Snapshot, StoredMessage, StoreError, Unbind

__all__ = ["SQLiteStore"]

_APPLICATION_ID = 0x53544F4D  # "STOM"
_SCHEMA = 1
_TABLES = (
    "CREATE TABLE message ("
    " row INTEGER PRIMARY KEY, queue TEXT NOT NULL, message_id TEXT NOT NULL,"
    " destination TEXT NOT NULL, content_type TEXT, headers TEXT NOT NULL,"
    " body BLOB NOT NULL)",
    "CREATE TABLE subscription ("
    " queue TEXT PRIMARY KEY, login TEXT, destination TEXT NOT NULL, id TEXT NOT NULL,"
    " selector TEXT)",
)
_INSERT = (
    "INSERT OR REPLACE INTO message"
    " (row, queue, message_id, destination, content_type, headers, body)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SYNC = {"full": "FULL", "normal": "NORMAL"}


class SQLiteStore:
    """A :class:`~stomp_proto.broker.Store` in the SQLite file ``path``.

    Args:
        path: The database file; created when it does not exist (its directory
            must). SQLite keeps a write-ahead log beside it, ``path + "-wal"``,
            while the broker runs.
        synchronous: ``"full"`` (default) or ``"normal"``: what a committed
            batch survives (see the module docstring and the docs' Durability
            page).
        busy_timeout: Seconds to wait for another process's lock at start
            before giving up.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "full",
        busy_timeout: float = 1.0,
    ) -> None:
        if synchronous not in _SYNC:
            raise ValueError(f"synchronous must be 'full' or 'normal', not {synchronous!r}")
        self.path = os.fspath(path)
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, synchronous={self.synchronous!r})"

    # -- start ----------------------------------------------------------------------

    def load(self) -> Snapshot:
        if sqlite3 is None:  # pragma: no cover - a Python built without it
            raise StoreError(f"store {self.path!r}: this Python has no sqlite3 module")
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,  # transactions are ours: BEGIN ... COMMIT
                check_same_thread=False,  # one worker thread at a time, never two at once
            )
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path!r}: cannot open it: {exc}") from None
        try:
            snapshot = self._open(conn)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(self._explain(exc)) from None
        except StoreError:
            conn.close()
            raise
        self._conn = conn
        return snapshot

    def _explain(self, exc: sqlite3.Error) -> str:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return (
                f"store {self.path!r} is locked: another broker (or program) is using it ({text})"
            )
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            return f"store {self.path!r} is corrupt or not a SQLite database ({text})"
        return f"store {self.path!r}: {text}"

    def _open(self, conn: sqlite3.Connection) -> Snapshot:
        # Exclusive before WAL: the lock is held from the first write until
        # close, and the WAL index lives in this process's memory (no -shm file).
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"store {self.path!r}: cannot use WAL mode (got {mode!r})")
        conn.execute(f"PRAGMA synchronous = {_SYNC[self.synchronous]}")
        conn.execute("BEGIN IMMEDIATE")  # takes the lock now, not at the first SEND
        try:
            self._check_schema(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            found = " ".join(" ".join(problems).split())  # one line: it goes on stderr
            raise StoreError(f"store {self.path!r} is corrupt: {found[:300]}")
        subscriptions = [
            Bind(queue, login, destination, sub_id, selector)
            for queue, login, destination, sub_id, selector in conn.execute(
                "SELECT queue, login, destination, id, selector FROM subscription"
            )
        ]
        messages = [
            StoredMessage(
                row,
                queue,
                message_id,
                destination,
                content_type,
                tuple((str(k), str(v)) for k, v in json.loads(headers)),
                bytes(body),
            )
            for row, queue, message_id, destination, content_type, headers, body in conn.execute(
                "SELECT row, queue, message_id, destination, content_type, headers, body"
                " FROM message ORDER BY row"
            )
        ]
        return Snapshot(messages, subscriptions)

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        application = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if application == 0 and version == 0 and not tables:  # a new (or empty) file
            for statement in _TABLES:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {_SCHEMA}")
            return
        if application != _APPLICATION_ID:
            raise StoreError(
                f"store {self.path!r} is a SQLite database but not a stomp-proto store"
            )
        if version != _SCHEMA:
            raise StoreError(
                f"store {self.path!r} has schema version {version}; this stomp-proto "
                f"reads version {_SCHEMA}"
            )
        if not {"message", "subscription"} <= tables:
            raise StoreError(f"store {self.path!r} is damaged: its tables are missing")

    # -- running --------------------------------------------------------------------

    def write(self, effects: Sequence[Effect]) -> None:
        conn = self._conn
        if conn is None:
            raise StoreError(f"store {self.path!r} is not open")
        puts = {e.row for e in effects if type(e) is Put}
        gone = {e.row for e in effects if type(e) is Remove}
        inserts: list[tuple[object, ...]] = []
        try:
            conn.execute("BEGIN")
            for effect in effects:
                kind = type(effect)
                if kind is Put:
                    row, queue, entry = effect  # type: ignore[misc]
                    if row not in gone:  # consumed in this very batch: never written
                        inserts.append(
                            (
                                row,
                                queue,
                                entry.message_id,
                                entry.destination,
                                entry.content_type,
                                json.dumps(entry.headers, separators=(",", ":")),
                                entry.body,
                            )
                        )
                elif kind is Remove:
                    continue
                else:  # a subscription's change applies after the messages before it
                    if inserts:
                        conn.executemany(_INSERT, inserts)
                        inserts = []
                    if kind is Bind:
                        conn.execute(
                            "INSERT OR REPLACE INTO subscription"
                            " (queue, login, destination, id, selector) VALUES (?, ?, ?, ?, ?)",
                            tuple(effect),
                        )
                    else:
                        assert kind is Unbind
                        conn.execute("DELETE FROM subscription WHERE queue = ?", (effect[0],))
                        conn.execute("DELETE FROM message WHERE queue = ?", (effect[0],))
            if inserts:
                conn.executemany(_INSERT, inserts)
            dead = gone - puts
            if dead:
                conn.executemany("DELETE FROM message WHERE row = ?", [(r,) for r in dead])
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:  # nothing of the batch is applied
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"store {self.path!r}: commit failed: {exc}") from None
            raise

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
