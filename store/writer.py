"""The store actor: the single writer of an event log, committing in groups.

Producers `tell` it pending rows (one row as a tuple, many as a list). Each time it
wakes it drains everything already waiting in its inbox into one ``BEGIN IMMEDIATE``
transaction written with ``executemany``, so the cost of a commit is shared by every
event that arrived meanwhile. Its inbox is bounded in rows: when producers outrun the
disk, ``tell`` blocks (back-pressure) instead of memory growing.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykka
from pykka._envelope import Envelope

from actorlog.store.chain import GENESIS, row_hash
from actorlog.store.errors import StoreWriteError
from actorlog.store.schema import connect

logger = logging.getLogger(__name__)

PendingRow = tuple[float, str, str, str, int, str | None, str]
"""(ts, run, actor, kind, version, correlation, payload): a row before seq and hash are assigned."""

INSERT_SQL = (
    "INSERT INTO events (seq, ts, run, actor, kind, version, correlation, payload, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
LAST_ROW_SQL = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"


class Flush:
    """Ask the writer to answer once everything sent before this is committed."""


@dataclass
class WriterState:
    """What the writer shares with the `EventStore` that owns it (read without locks)."""

    failure: StoreWriteError | None = None
    committed: int = 0
    transactions: int = 0
    last_seq: int = 0
    lost: int = 0


def _weight(envelope: Envelope[Any]) -> int:
    message = envelope.message
    return len(message) if type(message) is list else 1


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
        item = self.queue.popleft()
        self._rows -= _weight(item)
        return item


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
    ) -> None:
        self._max_pending_rows = max_pending_rows
        super().__init__()
        self._path = path
        self._state = state
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._max_batch_rows = max_batch_rows
        self._conn: sqlite3.Connection | None = None

    def _create_actor_inbox(self) -> queue.Queue[Envelope[Any]]:  # type: ignore[override]
        # pykka calls this from Actor.__init__; the bound is set just before that call.
        return RowBoundedInbox(maxsize=self._max_pending_rows)

    def on_start(self) -> None:
        try:
            conn = connect(self._path, readonly=False, busy_timeout=self._busy_timeout)
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._conn = conn
        except Exception as exc:  # noqa: BLE001 - reported to every later flush
            self._fail(exc, "opening the write connection")

    def on_stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def on_receive(self, message: Any) -> Any:
        if type(message) is tuple:
            rows: list[PendingRow] = [message]
        elif type(message) is list:
            rows = list(message)
        elif isinstance(message, Flush):
            return self._answer_flush()
        else:
            raise TypeError(f"the store writer does not handle {type(message).__name__}")
        pending = self._drain_into(rows)
        self._commit(rows)
        if pending is not None:
            self._dispatch(pending)
        return None

    def _drain_into(self, rows: list[PendingRow]) -> Envelope[Any] | None:
        """Move rows already waiting in the inbox into ``rows``; return the first envelope that is not a row."""
        get = self.actor_inbox.get_nowait
        limit = self._max_batch_rows
        while len(rows) < limit:
            try:
                envelope = get()
            except queue.Empty:
                return None
            message = envelope.message
            if envelope.reply_to is None:
                if type(message) is tuple:
                    rows.append(message)
                    continue
                if type(message) is list:
                    rows.extend(message)
                    continue
            return envelope
        return None

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
            conn.execute("BEGIN IMMEDIATE")
            last = conn.execute(LAST_ROW_SQL).fetchone()
            seq, previous = (last[0], last[1]) if last is not None else (0, GENESIS)
            out = []
            for ts, run, actor, kind, version, correlation, payload in rows:
                seq += 1
                previous = row_hash(previous, (seq, ts, run, actor, kind, version, correlation, payload))
                out.append((seq, ts, run, actor, kind, version, correlation, payload, previous))
            conn.executemany(INSERT_SQL, out)
            conn.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - becomes the store's failure, raised to producers
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            state.lost += len(rows)
            self._fail(exc, f"committing {len(rows)} events")
            return
        state.committed += len(rows)
        state.transactions += 1
        state.last_seq = seq

    def _fail(self, exc: BaseException, doing: str) -> None:
        error = StoreWriteError(
            f"event log {str(self._path)!r}: {doing} failed: {exc}; events sent after this are not written. "
            f"Fix the cause (disk space, permissions, a lock held by another process) and open the log again"
        )
        error.__cause__ = exc
        self._state.failure = error
        logger.error("%s", error, exc_info=sys.exc_info() if sys.exc_info()[0] else None)

    def _answer_flush(self) -> int:
        failure = self._state.failure
        if failure is not None:
            raise failure
        return self._state.last_seq
