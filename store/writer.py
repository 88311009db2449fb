"""The writer: the one thread that owns an event log's write connection, committing in groups.

Producers `put` pending rows (one row as a list, many as a `Batch`) into its `RowInbox`.
Each time it wakes it drains everything already waiting into one ``BEGIN IMMEDIATE``
transaction written with ``executemany``, so the cost of a commit is shared by every
event that arrived meanwhile. The inbox is bounded in rows: when producers outrun the
disk, they wait (back-pressure) instead of memory growing.

After each COMMIT the committed rows, decoded into `EventRecord`s with their real seq,
time and hash, are handed to the subscribers (the live projections) on this thread,
before any flush sent after those rows is answered.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actorlog.events import Codec
from actorlog.store.chain import GENESIS, chain_rows
from actorlog.store.checkpoints import STORE_ACTOR, Checkpointer
from actorlog.store.errors import StoreWriteError
from actorlog.store.inbox import RowInbox
from actorlog.store.records import Commit, EventRecord
from actorlog.store.rows import PendingRow
from actorlog.store.schema import connect
from actorlog.store.snapshot_table import INSERT_SNAPSHOT_SQL, SNAPSHOT_TRIGGERS_DDL, SNAPSHOTS_DDL

logger = logging.getLogger(__name__)

ROWS_PER_STATEMENT = 50
"""Rows bound into one INSERT statement; executemany runs it once per group of this many rows."""

_COLUMNS = 9
_INSERT = "INSERT INTO events (seq, ts, run, actor, kind, version, correlation, payload, hash) VALUES "
INSERT_ONE_SQL = _INSERT + "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_GROUP_SQL = _INSERT + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * ROWS_PER_STATEMENT)
LAST_ROW_SQL = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"

Subscriber = Callable[[Commit], None]
"""Called on the writer's thread after each commit, with its records (of the kinds it asked for)."""


class LogFileMovedError(OSError):
    """The log file at the store's path is no longer the file the writer opened (the cause of a `StoreWriteError`)."""


@dataclass(frozen=True)
class Request:
    """Something the writer answers through ``reply``: a flush, a snapshot to store, or stop."""

    op: str
    reply: Future[Any] = field(default_factory=Future)
    snapshot: tuple[str, int, int, str, str] | None = None
    """(projection, version, position, run, state) for op ``snapshot``."""
    row: PendingRow | None = None
    """For op ``snapshot``: the ``snapshot.taken`` row to chain with it."""


@dataclass
class WriterState:
    """What the writer shares with the `EventStore` that owns it (written by the writer only)."""

    failure: StoreWriteError | None = None
    committed: int = 0
    transactions: int = 0
    last_seq: int = 0
    lost: int = 0
    listeners: list[Callable[[StoreWriteError], None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, error: StoreWriteError) -> None:
        """Record the failure that stops writing and tell every listener, once."""
        with self.lock:
            if self.failure is not None:
                return
            self.failure = error
            listeners = list(self.listeners)
        for listener in listeners:
            try:
                listener(error)
            except Exception:  # noqa: BLE001 - a listener must not stop the writer from failing cleanly
                logger.exception("a store failure listener raised")

    def on_failure(self, listener: Callable[[StoreWriteError], None]) -> None:
        """Call ``listener`` when writing fails (at once if it already has)."""
        with self.lock:
            failure = self.failure
            if failure is None:
                self.listeners.append(listener)
                return
        listener(failure)


class StoreWriter:
    """The thread that owns the only write connection to one event log."""

    def __init__(
        self,
        path: Path,
        state: WriterState,
        codec: Codec,
        *,
        synchronous: str,
        busy_timeout: float,
        max_batch_rows: int,
        max_pending_rows: int,
        max_log_bytes: int | None = None,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self.inbox = RowInbox(max_pending_rows)
        self._checkpointer = checkpointer
        self._newest_ts = 0.0
        self._path = path
        self._absolute = os.path.abspath(path)  # the writer must find the file it opened even after a chdir
        self._state = state
        self._codec = codec
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._max_batch_rows = max_batch_rows
        self._max_log_bytes = max_log_bytes
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._subscribers: tuple[tuple[Subscriber, frozenset[str] | None], ...] = ()
        self._subscribe_lock = threading.Lock()
        # a daemon: an unclosed store must not hang interpreter exit (atexit closes it)
        self._thread = threading.Thread(target=self._run, name=f"StoreWriter-{path.name}", daemon=True)
        self._thread.start()

    # -- the producers' side (any thread) ----------------------------------------------------

    def put(self, item: Any) -> None:
        """Queue a pending row or a `Batch` of them; waits while the inbox is full."""
        self.inbox.put(item)

    def request(
        self, op: str, snapshot: tuple[str, int, int, str, str] | None = None, row: PendingRow | None = None
    ) -> Future[Any]:
        """Queue a request behind everything sent before it; its answer arrives in the future."""
        request = Request(op, snapshot=snapshot, row=row)
        if not self._thread.is_alive():
            request.reply.set_exception(StoreWriteError(f"event log {str(self._path)!r}: its writer has stopped"))
            return request.reply
        self.inbox.put(request)
        return request.reply

    def subscribe(self, subscriber: Subscriber, kinds: Collection[str] | None = None) -> Callable[[], None]:
        """Hand ``subscriber`` the records of every later commit (only ``kinds``, if given).

        Returns a function that ends the subscription.
        """
        entry = (subscriber, frozenset(kinds) if kinds is not None else None)
        with self._subscribe_lock:
            self._subscribers = self._subscribers + (entry,)

        def unsubscribe() -> None:
            with self._subscribe_lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not entry)

        return unsubscribe

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (after a ``stop`` request)."""
        self._thread.join(timeout)

    # -- the writer's thread -------------------------------------------------------------------

    def _run(self) -> None:
        self._open()
        inbox = self.inbox
        while True:
            item = inbox.get()
            if type(item) is Request:
                if self._answer(item):
                    break
                continue
            rows: list[PendingRow] = list(item) if type(item) is not list else [item]
            other = inbox.take_rows(rows, self._max_batch_rows)
            self._commit(rows)
            if other is not None and self._answer(other):
                break
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _open(self) -> None:
        try:
            conn = connect(self._path, readonly=False, busy_timeout=self._busy_timeout)
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            if self._max_log_bytes is not None:
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count = {max(1, self._max_log_bytes // page_size)}").fetchall()
            self._state.last_seq = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            self._identity = self._file_identity()
            self._conn = conn
        except Exception as exc:  # noqa: BLE001 - reported to every later flush
            self._fail(exc, "opening the write connection")

    def _answer(self, request: Request) -> bool:
        """Answer one request; True when it asks the writer to stop."""
        try:
            if request.op == "flush":
                request.reply.set_result(self._answer_flush())
            elif request.op == "snapshot":
                assert request.snapshot is not None and request.row is not None
                self._save_snapshot(*request.snapshot, request.row)
                request.reply.set_result(None)
            elif request.op == "stop":
                if self._checkpointer is not None and self._checkpointer.since:
                    self._commit([], checkpoint=True)  # a clean close signs everything written
                request.reply.set_result(None)
                return True
            else:
                raise ValueError(f"the store writer has no operation {request.op!r}")
        except Exception as exc:  # noqa: BLE001 - handed to the one waiting for the answer
            request.reply.set_exception(exc)
        return False

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            status = os.stat(self._absolute)
        except OSError:
            return None
        return (status.st_dev, status.st_ino)

    def _check_file(self) -> None:
        """Raise if the log file was removed or replaced since the writer opened it.

        SQLite would go on writing to the open file, so commits would "succeed" into a file
        that no one can open again (removed) or that is no longer the log at this path.
        """
        if self._file_identity() != self._identity:
            raise LogFileMovedError(
                f"the file was removed, renamed or replaced after the store opened it, so events committed "
                f"now would not be in {str(self._path)!r}"
            )

    def _commit(self, rows: list[PendingRow], *, checkpoint: bool = False) -> None:
        state = self._state
        conn = self._conn
        if state.failure is not None or conn is None:
            state.lost += len(rows)
            return
        checkpointer = self._checkpointer
        signed = None
        try:
            self._check_file()
            conn.execute("BEGIN IMMEDIATE")
            last = conn.execute(LAST_ROW_SQL).fetchone()
            seq, previous = (last[0], last[1]) if last is not None else (0, GENESIS)
            previous, seq, flat = chain_rows(previous, seq, rows)
            if checkpointer is not None and (checkpointer.due(len(rows)) or checkpoint) and seq > 0:
                # its time is its batch's newest, so the run's events stay in time order
                stamp = max((row[1] for row in rows), default=max(time.time(), self._newest_ts))
                row, signed = checkpointer.pending(seq, previous, stamp)
                previous, seq, more = chain_rows(previous, seq, [row])
                flat.extend(more)
                rows = rows + [row]
            _insert(conn, flat)
            conn.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - becomes the store's failure, raised to producers
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            state.lost += len(rows)
            self._fail(exc, f"committing {len(rows)} events")
            if isinstance(exc, LogFileMovedError):
                self._release_wal()
            return
        self._newest_ts = max(self._newest_ts, max((row[1] for row in rows), default=0.0))
        state.committed += len(rows)
        state.transactions += 1
        state.last_seq = seq
        if signed is not None and checkpointer is not None:
            try:
                checkpointer.written(signed, seq, previous)
            except OSError as exc:  # the log holds the checkpoint; only the copy outside is missing
                logger.error("event log %r: could not write checkpoint seq %d to the witness: %s",
                             str(self._path), seq, exc)
        if self._subscribers and rows:
            self._publish(rows, seq)

    def _publish(self, rows: list[PendingRow], last_seq: int) -> None:
        """Hand the committed rows, decoded, to every subscriber (each gets the kinds it asked for)."""
        subscribers = self._subscribers
        wanted: frozenset[str] | None = frozenset()
        for _, kinds in subscribers:
            wanted = None if kinds is None or wanted is None else wanted | kinds
        decode = self._codec.decode
        records = [
            EventRecord(
                seq=row[0], ts=row[1], run=row[2], actor=row[3], kind=row[4], version=row[5], correlation=row[6],
                event=decode(row[4], row[5], row[7], seq=row[0]), hash=row[8],
            )
            for row in rows
            if wanted is None or row[4] in wanted
        ]
        # the store's own rows (checkpoints, snapshot records) move no statistic
        counted = [row for row in rows if row[3] != STORE_ACTOR]
        if not counted:
            return
        last_seq = counted[-1][0]
        newest_ts = max(row[1] for row in counted)
        for subscriber, kinds in subscribers:
            selected = records if kinds is None else [r for r in records if r.kind in kinds]
            try:
                subscriber(Commit(records=selected, last_seq=last_seq, newest_ts=newest_ts))
            except Exception:  # noqa: BLE001 - a subscriber must not stop the log
                logger.exception("a subscriber of event log %r raised", str(self._path))

    def _release_wal(self) -> None:
        """After the log file was moved: copy every committed frame from the -wal file into the
        file the connection still holds, and empty the -wal file.

        SQLite finds a log's -wal by name. Left full, it would hold this log's committed events
        apart from the renamed file, and lend them to whatever file is put at the path next.
        """
        if self._conn is None:
            return
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            logger.warning("event log %r: could not empty the -wal file after the log was moved", str(self._path),
                           exc_info=True)

    def _fail(self, exc: BaseException, doing: str) -> None:
        limit = ""
        if self._max_log_bytes is not None and "full" in str(exc):
            limit = f" (this store's max_log_bytes is {self._max_log_bytes:,})"
        error = StoreWriteError(
            f"event log {str(self._path)!r}: {doing} failed: {exc}{limit}; events sent after this are not written. "
            f"Fix the cause (disk space, permissions, a lock held by another process) and open the log again"
        )
        error.__cause__ = exc
        logger.error("%s", error, exc_info=sys.exc_info() if sys.exc_info()[0] else None)
        self._state.fail(error)

    def _save_snapshot(
        self, projection: str, version: int, position: int, run: str, state: str, taken: PendingRow
    ) -> None:
        """Store a snapshot and chain its ``snapshot.taken`` row, in one transaction. One that
        cannot be stored (a full disk, a lock) raises a `StoreWriteError` to the asker;
        writing events goes on, since no event was lost."""
        conn = self._conn
        if self._state.failure is not None:
            raise self._state.failure
        assert conn is not None
        try:
            self._check_file()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(SNAPSHOTS_DDL)
            for ddl in SNAPSHOT_TRIGGERS_DDL:
                conn.execute(ddl)
            conn.execute(INSERT_SNAPSHOT_SQL, (projection, version, position, run, time.time(), state))
            last = conn.execute(LAST_ROW_SQL).fetchone()
            seq, previous = (last[0], last[1]) if last is not None else (0, GENESIS)
            previous, seq, flat = chain_rows(previous, seq, [taken])
            _insert(conn, flat)
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise StoreWriteError(
                f"event log {str(self._path)!r}: saving a {projection} snapshot at seq {position} "
                f"failed: {exc}; events are unaffected"
            ) from exc
        self._state.committed += 1
        self._state.last_seq = seq
        self._newest_ts = max(self._newest_ts, taken[1])

    def _answer_flush(self) -> int:
        failure = self._state.failure
        if failure is None and self._conn is not None:
            try:
                self._check_file()
            except LogFileMovedError as exc:
                self._fail(exc, "flushing")
                self._release_wal()
                failure = self._state.failure
        if failure is not None:
            raise failure
        return self._state.last_seq


def _insert(conn: sqlite3.Connection, flat: list[Any]) -> None:
    """Insert rows given as one flat list of column values, mostly as multi-row statements.

    executemany over a 50-row INSERT costs about a third less per row than over a
    one-row INSERT, because the per-statement work is shared by 50 rows.
    """
    group = _COLUMNS * ROWS_PER_STATEMENT
    whole = len(flat) - len(flat) % group
    if whole:
        conn.executemany(INSERT_GROUP_SQL, [flat[i : i + group] for i in range(0, whole, group)])
    if whole < len(flat):
        conn.executemany(INSERT_ONE_SQL, [flat[i : i + _COLUMNS] for i in range(whole, len(flat), _COLUMNS)])
