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
import sys
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from actorlog.events import Codec
from actorlog.store.checkpoints import STORE_ACTOR, Checkpointer
from actorlog.store.errors import StoreWriteError
from actorlog.store.inbox import RowInbox
from actorlog.store.records import Commit, EventRecord
from actorlog.store.rows import PendingRow
from actorlog.store.backend import WriteConnection

logger = logging.getLogger(__name__)

MAX_COMMIT_ATTEMPTS = 10
"""Tries of one group commit whose connection is lost each time (PostgreSQL) before writing stops;
each retry follows a successful reconnection, so a server that is gone stops writing at once."""

Subscriber = Callable[[Commit], None]
"""Called on the writer's thread after each commit, with its records (of the kinds it asked for)."""


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
        connection: WriteConnection,
        state: WriterState,
        codec: Codec,
        *,
        max_batch_rows: int,
        max_pending_rows: int,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        self.inbox = RowInbox(max_pending_rows)
        self._checkpointer = checkpointer
        self._newest_ts = 0.0
        self._last_outcome: tuple[list[PendingRow], int, str, Any] = ([], 0, "", None)
        """The rows, last seq, last hash and checkpoint of the commit being tried (for a lost connection)."""
        self._conn = connection
        self._opened = False
        self._name = connection.location.display
        self._state = state
        self._codec = codec
        self._max_batch_rows = max_batch_rows
        self._subscribers: tuple[tuple[Subscriber, frozenset[str] | None, bool], ...] = ()
        self._subscribe_lock = threading.Lock()
        # a daemon: an unclosed store must not hang interpreter exit (atexit closes it)
        self._thread = threading.Thread(target=self._run, name=f"StoreWriter-{connection.location.name}", daemon=True)
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
            request.reply.set_exception(StoreWriteError(f"event log {self._name!r}: its writer has stopped"))
            return request.reply
        self.inbox.put(request)
        return request.reply

    def subscribe(
        self, subscriber: Subscriber, kinds: Collection[str] | None = None, *, decoded: bool = True
    ) -> Callable[[], None]:
        """Hand ``subscriber`` the records of every later commit (only ``kinds``, if given), or
        with ``decoded=False`` its rows undecoded (`Commit.rows`).

        Returns a function that ends the subscription.
        """
        entry = (subscriber, frozenset(kinds) if kinds is not None else None, decoded)
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
            item = inbox.get(self._checkpoint_wait())
            if item is None:  # idle past the checkpoint interval: sign what was written
                self._commit([], checkpoint=True)
                continue
            if type(item) is Request:
                if self._answer(item):
                    break
                continue
            rows: list[PendingRow] = list(item) if type(item) is not list else [item]
            other = inbox.take_rows(rows, self._max_batch_rows)
            self._commit(rows)
            if other is not None and self._answer(other):
                break
        self._conn.close()

    def _checkpoint_wait(self) -> float | None:
        """How long the writer may wait for work before a time-based checkpoint is due; None:
        no checkpoint is pending (no key, nothing unsigned, or writing has stopped)."""
        checkpointer = self._checkpointer
        if checkpointer is None or not checkpointer.since or self._state.failure is not None or not self._opened:
            return None
        return max(0.0, checkpointer.last_at + checkpointer.interval - time.monotonic())

    def _open(self) -> None:
        try:
            self._state.last_seq = self._conn.open()
            self._opened = True
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

    def _commit(self, rows: list[PendingRow], *, checkpoint: bool = False) -> None:
        state = self._state
        if state.failure is not None or not self._opened:
            state.lost += len(rows)
            return
        try:
            outcome = self._write_resolving_lost_connections(rows, checkpoint)
        except Exception as exc:  # noqa: BLE001 - becomes the store's failure, raised to producers
            state.lost += len(rows)
            self._fail(exc, f"committing {len(rows)} events")
            self._conn.after_failure(exc)
            return
        rows, seq, previous, signed = outcome
        self._newest_ts = max(self._newest_ts, max((row[1] for row in rows), default=0.0))
        state.committed += len(rows)
        state.transactions += 1
        state.last_seq = seq
        if signed is not None and self._checkpointer is not None:
            try:
                self._checkpointer.written(signed, seq, previous)
            except OSError as exc:  # the log holds the checkpoint; only the copy outside is missing
                logger.error("event log %r: could not write checkpoint seq %d to the witness: %s",
                             self._name, seq, exc)
        if self._subscribers and rows:
            self._publish(rows, seq)

    def _write_resolving_lost_connections(
        self, rows: list[PendingRow], checkpoint: bool
    ) -> tuple[list[PendingRow], int, str, Any]:
        """`_write`, tried again after a connection lost mid-commit (PostgreSQL) unless the
        commit landed after all; any other failure, or a server that cannot be reached, raises."""
        conn = self._conn
        # the chain overwrites each row's content with its hash: keep it for a retry
        contents = [row[8] for row in rows] if conn.retries_lost_commits else None
        for attempt in range(1, MAX_COMMIT_ATTEMPTS + 1):
            try:
                return self._write(rows, checkpoint)
            except Exception as exc:
                conn.rollback()
                if contents is None or not conn.is_disconnect(exc) or attempt == MAX_COMMIT_ATTEMPTS:
                    raise
                if self._landed_after(rows, exc):
                    return self._last_outcome
                for row, content in zip(rows, contents):
                    row[8] = content  # chained again after whatever row is last now
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _write(self, rows: list[PendingRow], checkpoint: bool) -> tuple[list[PendingRow], int, str, Any]:
        """One try of a group commit: lock, chain after the last row, insert, commit."""
        conn = self._conn
        checkpointer = self._checkpointer
        signed = None
        self._last_outcome = (rows, 0, "", None)
        conn.check()
        staged = conn.stage(rows)  # before the lock, which other writer processes wait for
        seq, previous = conn.begin_insert()
        previous, seq = conn.insert_chained(previous, seq, rows, staged)
        if checkpointer is not None and (checkpointer.due(len(rows)) or checkpoint) and seq > 0:
            # its time is its batch's newest, so the run's events stay in time order
            stamp = max((row[1] for row in rows), default=max(time.time(), self._newest_ts))
            row, signed = checkpointer.pending(seq, previous, stamp)
            previous, seq = conn.insert_chained(previous, seq, [row], conn.stage([row]))
            rows = rows + [row]
        self._last_outcome = (rows, seq, previous, signed)
        conn.commit(seq)
        return self._last_outcome

    def _landed_after(self, rows: list[PendingRow], exc: BaseException) -> bool:
        """After the connection was lost mid-commit: reconnect, and say whether the batch was
        committed after all (its last row is there with the hash computed for it). Lost before
        its rows were inserted: it was not."""
        _, seq, previous, _ = self._last_outcome  # seq 0: lost before COMMIT was sent
        conn = self._conn
        logger.warning("event log %r: the connection was lost while committing %d events (%s); checking whether "
                       "the commit landed", self._name, len(rows), conn.describe(exc))
        for attempt in range(1, MAX_COMMIT_ATTEMPTS + 1):
            try:
                return conn.landed(seq, previous)
            except Exception as again:
                # the check's own connection lost too: the answer is still unknown, so ask again
                if not conn.is_disconnect(again) or attempt == MAX_COMMIT_ATTEMPTS:
                    raise
                logger.warning("event log %r: the connection was lost again while checking (%s); checking again",
                               self._name, conn.describe(again))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _publish(self, rows: list[PendingRow], last_seq: int) -> None:
        """Hand the committed rows to every subscriber (each gets the kinds it asked for), decoded
        into records for those that asked for records; decoding is left to the others' threads
        (the live projections), off this one, which every producer waits on."""
        subscribers = self._subscribers
        wanted: frozenset[str] | None = frozenset()
        for _, kinds, decoded in subscribers:
            if decoded:
                wanted = None if kinds is None or wanted is None else wanted | kinds
        decode = self._codec.decode
        records = [
            EventRecord(
                seq=row[0], ts=row[1], run=row[2], actor=row[3], kind=row[4], version=row[5], correlation=row[6],
                event=decode(row[4], row[5], row[7], seq=row[0]), hash=row[8],
            )
            for row in rows
            if wanted is None or row[4] in wanted
        ] if wanted is None or wanted else []
        # the store's own rows (checkpoints, snapshot records) move no statistic
        counted = [row for row in rows if row[3] != STORE_ACTOR]
        if not counted:
            return
        last_seq = counted[-1][0]
        newest_ts = max(row[1] for row in counted)
        for subscriber, kinds, decoded in subscribers:
            if decoded:
                commit = Commit(records=records if kinds is None else [r for r in records if r.kind in kinds],
                                last_seq=last_seq, newest_ts=newest_ts)
            else:
                commit = Commit(records=[], last_seq=last_seq, newest_ts=newest_ts, rows=[
                    (row[0], row[1], row[2], row[3], row[4], row[5], row[7])
                    for row in rows if kinds is None or row[4] in kinds
                ])
            try:
                subscriber(commit)
            except Exception:  # noqa: BLE001 - a subscriber must not stop the log
                logger.exception("a subscriber of event log %r raised", self._name)

    def _fail(self, exc: BaseException, doing: str) -> None:
        error = StoreWriteError(
            f"event log {self._name!r}: {doing} failed: {self._conn.describe(exc)}; events sent after this are not "
            f"written. {self._conn.advice()}"
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
        try:
            conn.check()
            seq, previous = conn.begin()
            conn.insert_snapshot(projection, version, position, run, time.time(), state)
            previous, seq = conn.insert_chained(previous, seq, [taken], conn.stage([taken]))
            conn.commit(seq)
        except Exception as exc:
            conn.rollback()
            raise StoreWriteError(
                f"event log {self._name!r}: saving a {projection} snapshot at seq {position} "
                f"failed: {conn.describe(exc)}; events are unaffected"
            ) from exc
        self._state.committed += 1
        self._state.last_seq = seq
        self._newest_ts = max(self._newest_ts, taken[1])

    def _answer_flush(self) -> int:
        failure = self._state.failure
        if failure is None and self._opened:
            try:
                self._conn.check()
            except OSError as exc:
                self._fail(exc, "flushing")
                self._conn.after_failure(exc)
                failure = self._state.failure
        if failure is not None:
            raise failure
        return self._state.last_seq
