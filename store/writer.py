"""The store actor: the single writer of an event log, committing in groups.

Producers `tell` it pending rows (one row as a list, many as a `Batch` of them). Each time it
wakes it drains everything already waiting in its inbox into one ``BEGIN IMMEDIATE``
transaction written with ``executemany``, so the cost of a commit is shared by every
event that arrived meanwhile. Its inbox is bounded in rows: when producers outrun the
disk, ``tell`` blocks (back-pressure) instead of memory growing.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pykka
from pykka._envelope import Envelope

from actorlog.store.chain import GENESIS, chain_rows
from actorlog.store.errors import StoreWriteError
from actorlog.store.schema import connect

logger = logging.getLogger(__name__)

PendingRow = list[Any]
"""``[None, ts, run, actor, kind, version, correlation, payload, content]``: a row in column
order before the writer fills in its seq (first) and replaces the hashed content by the hash (last)."""


class Ticket:
    """Where an appended row will land: ``seq`` is None until the writer assigns it."""

    __slots__ = ("_row",)

    def __init__(self, row: PendingRow) -> None:
        self._row = row

    @property
    def seq(self) -> int | None:
        """The row's seq once assigned (inside its write transaction), else None."""
        seq: int | None = self._row[0]
        return seq

    def __repr__(self) -> str:
        return f"<Ticket seq={self.seq}>"


class DeferredRow(list[Any]):
    """A pending row whose event refers to the seq of rows appended before it.

    ``resolve`` runs in the writer, in order, when those seqs are known: it sets the
    referring fields and re-encodes the payload. Appending still validated the event with
    the fields unset, so resolving cannot fail on the event's own data.
    """

    def __init__(self, row: PendingRow, event: Any, refs: dict[str, Ticket], encode: Any) -> None:
        super().__init__(row)
        self._event = event
        self._refs = refs
        self._encode = encode

    def resolve(self) -> None:
        """Fill in the referred seqs and re-encode the payload (called by the writer)."""
        changes = {name: ticket.seq for name, ticket in self._refs.items() if ticket.seq is not None}
        if changes:
            payload, content = self._encode(msgspec.structs.replace(self._event, **changes), self)
            self[7] = payload
            self[8] = content


class Batch(list[PendingRow]):
    """Several pending rows sent in one message."""

ROWS_PER_STATEMENT = 50
"""Rows bound into one INSERT statement; executemany runs it once per group of this many rows."""

_COLUMNS = 9
_INSERT = "INSERT INTO events (seq, ts, run, actor, kind, version, correlation, payload, hash) VALUES "
INSERT_ONE_SQL = _INSERT + "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_GROUP_SQL = _INSERT + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * ROWS_PER_STATEMENT)
LAST_ROW_SQL = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"


class Flush:
    """Ask the writer to answer once everything sent before this is committed."""


class LogFileMovedError(OSError):
    """The log file at the store's path is no longer the file the writer opened (the cause of a `StoreWriteError`)."""


@dataclass(frozen=True)
class SaveSnapshot:
    """Ask the writer to store a projection snapshot (in ``snapshots``; events are untouched)."""

    projection: str
    version: int
    position: int
    run: str
    state: str


SNAPSHOTS_DDL = (
    "CREATE TABLE IF NOT EXISTS snapshots (id INTEGER PRIMARY KEY, projection TEXT NOT NULL, "
    "version INTEGER NOT NULL, position INTEGER NOT NULL, run TEXT NOT NULL, created_at REAL NOT NULL, "
    "state TEXT NOT NULL)"
)


@dataclass
class WriterState:
    """What the writer shares with the `EventStore` that owns it (read without locks)."""

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


def _weight(envelope: Envelope[Any]) -> int:
    message = envelope.message
    return len(message) if type(message) is Batch else 1


class RowBoundedInbox(queue.Queue[Envelope[Any]]):
    """An actor inbox whose size is counted in rows, so a batch weighs as much as its rows."""

    def _init(self, maxsize: int) -> None:
        super()._init(maxsize)
        self._rows = 0

    def _qsize(self) -> int:
        return self._rows

    def _put(self, item: Envelope[Any]) -> None:
        self.queue.append(item)
        self._rows += _weight(item)

    def _get(self) -> Envelope[Any]:
        item: Envelope[Any] = self.queue.popleft()
        self._rows -= _weight(item)
        return item

    def take_rows(self, rows: list[PendingRow], limit: int) -> Envelope[Any] | None:
        """Move waiting rows into ``rows`` under one lock acquisition, up to ``limit`` rows.

        Stops at the first envelope that is not a told row or batch (a flush, a stop),
        removes it and returns it for the caller to handle after committing.
        """
        with self.mutex:
            waiting = self.queue
            taken = 0
            other: Envelope[Any] | None = None
            while waiting and len(rows) < limit:
                envelope = waiting.popleft()
                message = envelope.message
                if envelope.reply_to is None and type(message) is list:
                    rows.append(message)
                    taken += 1
                elif envelope.reply_to is None and type(message) is Batch:
                    rows.extend(message)
                    taken += len(message)
                else:
                    self._rows -= 1
                    other = envelope
                    break
            self._rows -= taken
            if taken or other is not None:
                self.not_full.notify_all()
            return other


class StoreWriter(pykka.ThreadingActor):
    """The pykka actor that owns the only write connection to one event log."""

    use_daemon_thread = True  # an unclosed store must not hang interpreter exit; atexit closes it

    def __init__(
        self,
        path: Path,
        state: WriterState,
        *,
        synchronous: str,
        busy_timeout: float,
        max_batch_rows: int,
        max_pending_rows: int,
        max_log_bytes: int | None = None,
    ) -> None:
        self._max_pending_rows = max_pending_rows
        super().__init__()
        self._path = path
        self._absolute = os.path.abspath(path)  # the writer must find the file it opened even after a chdir
        self._state = state
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._max_batch_rows = max_batch_rows
        self._max_log_bytes = max_log_bytes
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None

    def _create_actor_inbox(self) -> queue.Queue[Envelope[Any]]:  # type: ignore[override]
        # pykka calls this from Actor.__init__; the bound is set just before that call.
        return RowBoundedInbox(maxsize=self._max_pending_rows)

    def on_start(self) -> None:
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

    def on_stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def on_receive(self, message: Any) -> Any:
        if type(message) is list:
            rows: list[PendingRow] = [message]
        elif type(message) is Batch:
            rows = list(message)
        elif isinstance(message, Flush):
            return self._answer_flush()
        elif isinstance(message, SaveSnapshot):
            return self._save_snapshot(message)
        else:
            raise TypeError(f"the store writer does not handle {type(message).__name__}")
        pending = self._drain_into(rows)
        self._commit(rows)
        if pending is not None:
            self._dispatch(pending)
        return None

    def _drain_into(self, rows: list[PendingRow]) -> Envelope[Any] | None:
        """Move rows already waiting in the inbox into ``rows``; return the first envelope that is not a row."""
        inbox = self.actor_inbox
        assert isinstance(inbox, RowBoundedInbox)
        return inbox.take_rows(rows, self._max_batch_rows)

    def _dispatch(self, envelope: Envelope[Any]) -> None:
        """Handle an envelope taken out of the inbox while draining, as pykka's loop would."""
        try:
            response = self._handle_receive(envelope.message)
            if envelope.reply_to is not None:
                envelope.reply_to.set(response)
        except Exception:
            if envelope.reply_to is not None:
                envelope.reply_to.set_exception()
            else:
                logger.exception("store writer failed to handle %r", envelope.message)

    def _commit(self, rows: list[PendingRow]) -> None:
        state = self._state
        conn = self._conn
        if state.failure is not None or conn is None:
            state.lost += len(rows)
            return
        try:
            self._check_file()
            conn.execute("BEGIN IMMEDIATE")
            last = conn.execute(LAST_ROW_SQL).fetchone()
            seq, previous = (last[0], last[1]) if last is not None else (0, GENESIS)
            previous, seq, flat = chain_rows(previous, seq, rows)
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
        state.committed += len(rows)
        state.transactions += 1
        state.last_seq = seq

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

    def _save_snapshot(self, snapshot: SaveSnapshot) -> None:
        """Store a snapshot. One that cannot be stored (a full disk, a lock) raises a
        `StoreWriteError` to the asker; writing events goes on, since no event was lost."""
        conn = self._conn
        if self._state.failure is not None:
            raise self._state.failure
        assert conn is not None
        try:
            self._check_file()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(SNAPSHOTS_DDL)
            conn.execute(
                "INSERT INTO snapshots (projection, version, position, run, created_at, state) VALUES (?, ?, ?, ?, ?, ?)",
                (snapshot.projection, snapshot.version, snapshot.position, snapshot.run, time.time(), snapshot.state),
            )
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise StoreWriteError(
                f"event log {str(self._path)!r}: saving a {snapshot.projection} snapshot at seq {snapshot.position} "
                f"failed: {exc}; events are unaffected"
            ) from exc

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
