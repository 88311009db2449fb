"""`EventStore`: open, append to, read, and verify one SQLite event log."""

from __future__ import annotations

import logging
import math
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import msgspec
import sqlite_utils

from actorlog.events import Checkpoint, Codec, SnapshotTaken, TypeRegistry
from actorlog.events.codec import default_codec
from actorlog.store.errors import PayloadTooLargeError, ReadOnlyError, StoreClosedError, StoreWriteError
from actorlog.store.backend import ReadConnection, WriteConnection, open_backend
from actorlog.store.location import LogLocation, parse_location
from actorlog.store.query import (
    FOLD_COLUMNS,
    EventFilter,
    RunSummary,
    count_matching,
    distinct_values,
    has_value,
    iter_chunks,
    iter_rows,
    make_filter,
    run_summaries,
)
from actorlog.store.records import EventRecord, column_problems, malformed_record
from actorlog.store.sqlite_backend import SqliteReader
from actorlog.store.verify import VerifyReport, verify_log
from actorlog.store.chain import row_content
from actorlog.store.exit import close_at_exit
from actorlog.store.checkpoints import (
    STORE_ACTOR,
    DEFAULT_CHECKPOINT_EVERY,
    DEFAULT_CHECKPOINT_INTERVAL,
    Checkpointer,
    read_witness,
    witness_file,
)
from actorlog.store.rows import Batch, DeferredRow, PendingRow, Ticket
from actorlog.store.audit import ChainAudit, parse_expect, witness_pins
from actorlog.store.signing import KEY_ENV, PublicKey, SigningKey
from actorlog.store.snapshot_table import snapshot_digest
from actorlog.store.writer import StoreWriter, Subscriber, WriterState

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

DEFAULT_MAX_PAYLOAD_BYTES = 1 << 20
_BATCH_MESSAGE_ROWS = 1000
_plain_encode = msgspec.json.Encoder().encode

logger = logging.getLogger(__name__)

_open_stores: weakref.WeakSet[EventStore] = close_at_exit(lambda store: store.close())


class _Locked:
    """A reader whose every statement holds the store's read lock (the lock is not held between them)."""

    def __init__(self, reader: ReadConnection, lock: threading.Lock) -> None:
        self._reader, self._lock = reader, lock
        self.walks_indexes = reader.walks_indexes

    def fetch(self, sql: str, params: Any, doing: str) -> list[Any]:
        with self._lock:
            return self._reader.fetch(sql, params, doing)

    def is_text(self, column: str) -> str:
        return self._reader.is_text(column)

    def has_value(self, column: str, value: str) -> bool:
        with self._lock:
            return self._reader.has_value(column, value)

    def payload_value(self, field: str, *, flag: bool = False) -> str:
        return self._reader.payload_value(field, flag=flag)


def new_run_id() -> str:
    """A run id that sorts by start time: ``20261124T101800-3fa2c1``."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


class EventStore:
    """One event log, opened for appending (default) or read-only: an SQLite file, or a
    PostgreSQL schema named by a URL (``postgresql://user@host/db?schema=shop``; needs
    ``pip install 'actorlog[postgres]'``) that many processes and hosts append to as one
    history. Both behave the same: one gap-free seq, the same chain, append-only.

    ::

        with EventStore("app.db") as store:
            store.append(GaugeSet(name="queue_depth", value=3), actor="worker")
            store.flush()
            for record in store.events(kinds=["gauge.set"]):
                print(record.seq, record.event)

    Appends are handed to the store writer, which commits them in groups; they return
    without waiting for the disk unless its backlog is full (back-pressure). `flush`
    waits until everything appended before it is committed. Closing flushes.

    A commit that fails (a full disk, a lock held past ``busy_timeout``, the file removed
    or replaced while open) stops writing: `flush`, `append` and `close` raise the
    `StoreWriteError`, and what was committed before it stays intact. ``max_log_bytes``
    caps the file's size (SQLite's ``max_page_count`` on the write connection): a commit
    that would grow it past the cap fails as a full disk would. A log already past the cap
    when opened cannot grow at all. Opening a file this process cannot write for writing
    raises `NotWritableError`; read it with `open_readonly`.

    With ``signing_key`` (the path of an Ed25519 private key made by ``actorlog keygen``;
    default: the file named by ``$ACTORLOG_SIGNING_KEY``, if set), the writer appends a
    signed ``checkpoint`` every ``checkpoint_every`` events and every
    ``checkpoint_interval`` seconds, and at a clean close; ``witness`` (a directory or a
    ``.jsonl`` file) keeps a copy of each outside the log. The key never enters the log.

    A new log is created readable by its owner only (``file_mode=0o600``, less the umask;
    its -wal and -shm files get the same): logs hold what a system did, and a sandboxed
    program or another user must not read them. ``file_mode=None`` leaves the mode to
    SQLite (0644 less the umask).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        run: str | None = None,
        registry: TypeRegistry | None = None,
        synchronous: Synchronous = "NORMAL",
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        max_pending_rows: int = 5_000,
        max_batch_rows: int = 1_000,
        busy_timeout: float = 5.0,
        chunk_size: int = 1000,
        max_log_bytes: int | None = None,
        signing_key: str | os.PathLike[str] | None = None,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL,
        witness: str | os.PathLike[str] | None = None,
        file_mode: int | None = 0o600,
    ) -> None:
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be one of OFF, NORMAL, FULL, EXTRA, got {synchronous!r}")
        for name, value in (
            ("max_payload_bytes", max_payload_bytes), ("max_pending_rows", max_pending_rows),
            ("max_batch_rows", max_batch_rows), ("chunk_size", chunk_size),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if max_log_bytes is not None and (type(max_log_bytes) is not int or max_log_bytes < 1):
            raise ValueError(f"max_log_bytes must be a positive int (bytes) or None, got {max_log_bytes!r}")
        if file_mode is not None and (type(file_mode) is not int or not 0 <= file_mode <= 0o777):
            raise ValueError(f"file_mode must be a permission mode such as 0o600, or None, got {file_mode!r}")
        self.location: LogLocation = parse_location(path)
        """Where the log lives; ``location.display`` names it in messages (never with a password)."""
        self.path: Path | None = self.location.path
        """The SQLite file; None for a PostgreSQL log."""
        self.readonly = readonly
        if run is not None and (type(run) is not str or "\x00" in run):
            raise ValueError(f"run must be a str without NUL characters, got {run!r}")
        self.run = run if run is not None else new_run_id()
        self.codec = Codec(registry) if registry is not None else default_codec
        self.max_payload_bytes = max_payload_bytes
        self.chunk_size = chunk_size
        # the key is checked before the file is opened: a bad key leaves nothing open
        checkpointer = None if readonly else self._checkpointer(signing_key, checkpoint_every, checkpoint_interval,
                                                                witness)
        self._reader: ReadConnection
        connection: WriteConnection | None
        self._reader, connection = open_backend(
            self.location, readonly=readonly, busy_timeout=busy_timeout, synchronous=synchronous,
            max_log_bytes=max_log_bytes, file_mode=file_mode, run=self.run,
        )
        self._read_lock = threading.Lock()
        self._order = threading.Lock()
        """Held while a row is stamped and queued, so in-order rows reach the writer in time order."""
        self._last_stamp = 0.0
        self._closed = False
        self._state = WriterState()
        self._redact: Callable[[Any], Any] | None = None
        self._writer: StoreWriter | None = None
        if connection is not None:
            self._writer = StoreWriter(
                connection, self._state, self.codec, max_batch_rows=max_batch_rows,
                max_pending_rows=max_pending_rows, checkpointer=checkpointer,
            )
        _open_stores.add(self)

    def _checkpointer(
        self, signing_key: str | os.PathLike[str] | None, every: int, interval: float,
        witness: str | os.PathLike[str] | None,
    ) -> Checkpointer | None:
        if signing_key is None:
            signing_key = os.environ.get(KEY_ENV) or None
        if signing_key is None:
            if witness is not None:
                raise ValueError("a witness keeps signed checkpoints: give a signing_key too")
            return None
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"checkpoint_every must be a positive int, got {every!r}")
        if not isinstance(interval, (int, float)) or not 0 < interval < math.inf:
            raise ValueError(f"checkpoint_interval must be a finite number of seconds > 0, got {interval!r}")
        return Checkpointer(
            SigningKey(signing_key), self.codec, self.run, self.location.display, every=every,
            interval=float(interval), witness=witness_file(witness, self.location.name) if witness is not None else None,
        )

    @classmethod
    def open_readonly(cls, path: str | os.PathLike[str], **options: Any) -> EventStore:
        """Open an existing log for reading only: audits and replay never change the file."""
        return cls(path, readonly=True, **options)

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.readonly else f"run={self.run}"
        return f"<EventStore {self.location.display!r} {mode}{' closed' if self._closed else ''}>"

    @property
    def db(self) -> sqlite_utils.Database:
        """A sqlite-utils `Database` on the reading connection of an SQLite log, for ad-hoc queries.

        A PostgreSQL log has none: query it with psql or any PostgreSQL client.
        """
        if not isinstance(self._reader, SqliteReader):
            raise TypeError(f"{self!r} is a PostgreSQL log; it has no sqlite-utils Database: query it with psql")
        return self._reader.db

    def query(self, sql: str, params: Sequence[Any] = (), *, doing: str = "running a query") -> list[Any]:
        """Rows of a read-only SQL query on either backend (``?`` placeholders, SQL both share)."""
        self._check_open()
        with self._read_lock:
            return self._reader.fetch(sql, params, doing)

    def has_table(self, name: str) -> bool:
        """Whether the log has table ``name`` (``snapshots`` exists once a snapshot was stored)."""
        self._check_open()
        with self._read_lock:
            return self._reader.table_exists(name)

    def runs(self) -> list[tuple[Any, ...]]:
        """Per run, in order of its first event: ``(run, first ts, last ts, events, failures,
        escalations, clean, reason)``; ``clean`` and ``reason`` come from its ``run.stopped``
        event (None when it has none: still running, or killed)."""
        return [(r.run, r.start, r.end, r.events, r.failures, r.escalations, r.clean, r.reason)
                for r in self.run_summaries(last_seq=self.last_seq())]

    def run_summaries(self, *, last_seq: int, progress: Callable[[int], None] | None = None) -> list[RunSummary]:
        """Every run up to ``last_seq``, oldest first, added up over seq ranges (``progress`` gets
        the rows of each range; the log is not held between them)."""
        self._check_open()
        return run_summaries(_Locked(self._reader, self._read_lock), last_seq=last_seq, progress=progress)

    def has_value(self, column: str, value: str) -> bool:
        """Whether any event has ``value`` in ``column`` (``run``, ``actor`` or ``kind``)."""
        self._check_open()
        return has_value(_Locked(self._reader, self._read_lock), column, value)

    def distinct_values(self, column: str, limit: int = 10_000) -> list[str]:
        """The distinct values of ``column`` (``run``, ``actor`` or ``kind``), at most ``limit``."""
        self._check_open()
        return distinct_values(_Locked(self._reader, self._read_lock), column, limit)

    def count_matching(self, selection: EventFilter, *, last_seq: int,
                       progress: Callable[[int], None] | None = None) -> int:
        """How many events up to ``last_seq`` match ``selection``, counted over seq ranges."""
        self._check_open()
        return count_matching(_Locked(self._reader, self._read_lock), selection, last_seq=last_seq,
                              progress=progress)

    def wait_for_commit(self, after_seq: int, timeout: float) -> None:
        """Return when events after ``after_seq`` may have been committed by any writer, or after
        ``timeout`` seconds: a notification on PostgreSQL (LISTEN/NOTIFY), a plain wait on SQLite.
        Call `events` after it to read them; it never says for certain that there are any."""
        self._check_open()
        self._reader.wait_for_commit(after_seq, timeout)

    # -- writing -------------------------------------------------------------------------

    def append(
        self,
        event: object,
        *,
        actor: str = "app",
        correlation: str | None = None,
        ts: float | None = None,
        refs: Mapping[str, Ticket] | None = None,
    ) -> Ticket:
        """Append one event; returns once the store writer has it (not when it is committed).

        The returned `Ticket`'s ``seq`` is filled in when the row is written. ``refs`` maps
        fields of ``event`` to tickets of rows appended earlier: each field is set to that
        row's seq as this one is written, so an event can name the seq of another without
        waiting for the disk (a failure naming the message that caused it).

        Raises `NotRegisteredError` for anything but a registered type's instance,
        `PayloadTooLargeError` over the payload limit, and `StoreWriteError` once a
        commit has failed.

        ``ts`` defaults to now, stamped in order: the events this store stamps are committed
        in strictly increasing time, so the statistics of a run "as of time T" are exactly
        those of the events committed up to some seq (time travel by time and by seq agree).
        A ``ts`` given is kept as it is; the ticket's ``ts`` is the time logged.
        """
        writer = self._writable()
        if self._redact is not None:
            event = self._redact(event)
        kind, version, payload = self._encoded(event, actor, correlation)
        if ts is not None:
            row = self._row(kind, version, payload, actor, correlation, float(ts))
            return self._send(writer, row, event, refs)
        with self._order:
            row = self._row(kind, version, payload, actor, correlation, self._stamp(None))
            return self._send(writer, row, event, refs)

    def append_together(
        self,
        events: Sequence[tuple[object, Mapping[str, Ticket] | None]],
        *,
        actor: str = "app",
        correlation: str | None = None,
    ) -> list[Ticket]:
        """Append ``(event, refs)`` pairs (as `append` does each) so that they are committed
        in one transaction, stamped now in order. All are encoded and checked before any is sent."""
        writer = self._writable()
        redact = self._redact
        encoded = [
            (self._encoded(event, actor, correlation), event, refs)
            for event, refs in (events if redact is None else [(redact(event), refs) for event, refs in events])
        ]
        batch = Batch()
        with self._order:
            for (kind, version, payload), event, refs in encoded:
                row = self._row(kind, version, payload, actor, correlation, self._stamp(None))
                batch.append(DeferredRow(row, event, dict(refs), self._reencode) if refs else row)
            writer.put(batch)  # one item: the writer never splits a batch between transactions
        return [Ticket(row) for row in batch]

    def redact_with(self, function: Callable[[Any], Any] | None) -> None:
        """Pass every event appended from now on through ``function`` before it is encoded
        (None: no longer). The actor system installs its redaction of secrets here, so no
        path of its own can write one; the function must return an event of the same kind."""
        self._redact = function

    def _send(self, writer: StoreWriter, row: PendingRow, event: object, refs: Mapping[str, Ticket] | None) -> Ticket:
        if refs:
            row = DeferredRow(row, event, dict(refs), self._reencode)
            writer.put(Batch([row]))
        else:
            writer.put(row)
        return Ticket(row)

    def _stamp(self, taken: float | None) -> float:
        """A time for the next in-order row: ``taken`` (default now), moved just after the
        newest time stamped so far if it is not later. Called with ``_order`` held."""
        stamp = time.time() if taken is None else taken
        if stamp <= self._last_stamp:
            stamp = math.nextafter(self._last_stamp, math.inf)
        self._last_stamp = stamp
        return stamp

    def append_many(
        self,
        events: Iterable[object],
        *,
        actor: str = "app",
        correlation: str | None = None,
        ts: float | Sequence[float] | None = None,
        in_order: bool = False,
    ) -> None:
        """Append several events in order; all are encoded and checked before any is sent.

        ``ts`` is one time for all of them, one time per event, or None for now (stamped in
        order, as by `append`). With ``in_order=True`` the times given are stamped in order
        too: one not later than the newest this store has stamped is moved just after it
        (how buffered measurements keep their run's events in time order).
        """
        writer = self._writable()
        events = list(events) if self._redact is None else [self._redact(event) for event in events]
        if ts is None or isinstance(ts, (int, float)):
            taken: list[float | None] = [None if ts is None else float(ts)] * len(events)
        else:
            if len(ts) != len(events):
                raise ValueError(f"append_many got {len(events)} events but {len(ts)} timestamps")
            taken = [float(stamp) for stamp in ts]
        encoded = [self._encoded(event, actor, correlation) for event in events]
        if ts is not None and not in_order:
            self._send_rows(writer, [
                self._row(kind, version, payload, actor, correlation, stamp)  # type: ignore[arg-type]
                for (kind, version, payload), stamp in zip(encoded, taken)
            ])
            return
        with self._order:
            self._send_rows(writer, [
                self._row(kind, version, payload, actor, correlation, self._stamp(stamp))
                for (kind, version, payload), stamp in zip(encoded, taken)
            ])

    @staticmethod
    def _send_rows(writer: StoreWriter, rows: list[PendingRow]) -> None:
        for start in range(0, len(rows), _BATCH_MESSAGE_ROWS):
            writer.put(Batch(rows[start : start + _BATCH_MESSAGE_ROWS]))

    def flush(self, timeout: float | None = None) -> int:
        """Wait until every event appended before this call is committed.

        Returns the seq of the newest event this store has committed, or the log's last
        seq when it was opened if it has committed none since.
        """
        future = self._writable().request("flush")
        try:
            seq = int(future.result(timeout))
        except TimeoutError:
            if future.done():
                raise
            raise TimeoutError(f"{self!r}: the events appended were not all committed within {timeout} s") from None
        return seq

    def save_snapshot(self, projection: str, version: int, position: int, state: str, *, run: str = "") -> None:
        """Store a projection's state (JSON text) as of ``position`` in the ``snapshots`` table.

        Waits until it is written. Events are never touched; ``run`` is "" for a
        snapshot of all runs.
        """
        writer = self._writable()
        taken = SnapshotTaken(projection=projection, projection_version=version, position=position, run=run,
                              digest=snapshot_digest(projection, version, position, run, state))
        kind, kind_version, payload = self._encoded(taken, STORE_ACTOR, None)
        with self._order:  # stamped in order, queued behind what was appended before it
            row = self._row(kind, kind_version, payload, STORE_ACTOR, None, self._stamp(None))
            future = writer.request("snapshot", (projection, version, position, run, state), row)
        future.result()

    def subscribe(
        self, subscriber: Subscriber, *, kinds: Collection[str] | None = None, decoded: bool = True
    ) -> Callable[[], None]:
        """Hand ``subscriber`` a `Commit` after every later commit of this store: the committed
        `EventRecord`s, decoded, with their real seq, time and hash (only the ``kinds`` given,
        if any), and the commit's last seq and newest time. With ``decoded=False`` it gets the
        rows undecoded instead (`Commit.rows`, for `Statistics.fold_chunks`), and decodes them
        on its own thread.

        It is called on the writer's thread right after each COMMIT, before any `flush` sent
        after those events returns: keep it short (hand the records to a thread of your own)
        and never wait on the store from it. Returns a function that ends the subscription.
        """
        return self._writable().subscribe(subscriber, kinds, decoded=decoded)

    def statistics(self) -> dict[str, int]:
        """The writer's figures: rows waiting in its inbox and its bound, events committed,
        transactions, events lost to a failed commit."""
        figures = {"committed": self._state.committed, "transactions": self._state.transactions,
                   "unwritten": self._state.lost}
        if self._writer is not None:
            figures.update(self._writer.inbox.statistics())
        return figures

    def snapshots(self, projection: str, *, run: str = "") -> list[tuple[int, int, str]]:
        """``(version, position, state)`` of a projection's snapshots, newest position first.

        Only snapshots the chain vouches for are given: each must match the digest of a
        ``snapshot.taken`` event the store wrote. One that does not (edited after it was
        stored, or stored before snapshots were chained) is skipped with a warning naming it.
        """
        self._check_open()
        doing = f"reading the {projection} snapshots"
        with self._read_lock:
            if not self._reader.table_exists("snapshots"):
                return []
            rows = self._reader.fetch(
                "SELECT id, version, position, state FROM snapshots WHERE projection = ? AND run = ? "
                "ORDER BY position DESC, id DESC",
                (projection, run), doing,
            )
        if not rows:
            return []
        vouched = self.snapshot_digests()
        usable = []
        for snapshot_id, v, p, s in rows:
            # a snapshot is only a cache: one whose columns were tampered with is skipped, never misread
            if not (type(v) is int and type(p) is int and type(s) is str):
                continue
            if snapshot_digest(projection, v, p, run, s) not in vouched:
                logger.warning("event log %r: snapshot id %s (%s at seq %s) does not match the digest recorded in "
                               "the chain; it is skipped", self.location.display, snapshot_id, projection, p)
                continue
            usable.append((v, p, s))
        return usable

    def snapshot_digests(self) -> set[str]:
        """The digests of every snapshot the chain records (``snapshot.taken`` events of the store)."""
        return {
            record.event.digest for record in self.events(kinds="snapshot.taken", actor=STORE_ACTOR, lenient=True)
            if isinstance(record.event, SnapshotTaken)
        }

    @property
    def failure(self) -> Exception | None:
        """The commit failure that stopped writing, if any."""
        return self._state.failure

    def on_failure(self, listener: Callable[[StoreWriteError], None]) -> None:
        """Call ``listener`` with the `StoreWriteError` when writing fails, once (at once if it
        already has). It runs on the store writer's thread: keep it short and never wait on the store."""
        self._state.on_failure(listener)

    @property
    def unwritten(self) -> int:
        """Events that reached the store writer but were not written because a commit failed
        (the failed batch and everything after it); 0 while writing works."""
        return self._state.lost

    def _writable(self) -> StoreWriter:
        if self._closed:
            raise StoreClosedError(f"{self!r} is closed; open the log again to write")
        if self._writer is None:
            raise ReadOnlyError(f"{self!r} was opened read-only; open it without readonly=True to append")
        if self._state.failure is not None:
            raise self._state.failure
        return self._writer

    def _encoded(self, event: object, actor: str, correlation: str | None) -> tuple[str, int, bytes]:
        kind, version, payload = self.codec.encode(event)
        if len(payload) > self.max_payload_bytes:
            raise PayloadTooLargeError(
                f"{kind} event is {len(payload):,} bytes encoded, over this store's limit of "
                f"{self.max_payload_bytes:,}; store large data elsewhere and log a reference, "
                f"or open the store with a larger max_payload_bytes"
            )
        if type(actor) is not str or (correlation is not None and type(correlation) is not str):
            raise TypeError(f"actor must be a str and correlation a str or None, got {actor!r} and {correlation!r}")
        if "\x00" in actor or (correlation is not None and "\x00" in correlation):
            raise ValueError(f"actor and correlation must not hold NUL characters (a log must copy to PostgreSQL, "
                             f"whose text cannot hold them), got {actor!r} and {correlation!r}")
        return kind, version, payload

    def _row(
        self, kind: str, version: int, payload: bytes, actor: str, correlation: str | None, ts: float
    ) -> PendingRow:
        run = self.run
        content = row_content(ts, run, actor, kind, version, correlation, payload)
        return [None, ts, run, actor, kind, version, correlation, payload.decode(), content]

    def _reencode(self, event: object, row: PendingRow) -> tuple[str, bytes]:
        # Only seq fields (ints) were set since `append` checked the event with the codec, so
        # the plain encoder gives the codec's bytes without its NaN search again.
        payload = _plain_encode(event)
        return payload.decode(), row_content(row[1], row[2], row[3], row[4], row[5], row[6], payload)

    # -- reading -------------------------------------------------------------------------

    def events(
        self,
        *,
        run: str | None = None,
        actor: str | None = None,
        kinds: Iterable[str] | str | None = None,
        from_seq: int | None = None,
        to_seq: int | None = None,
        since: float | None = None,
        until: float | None = None,
        correlation: str | None = None,
        lenient: bool = False,
    ) -> Iterator[EventRecord]:
        """Stream committed events in seq order, decoded, matching every filter given.

        Reads in chunks of ``chunk_size`` rows: memory does not grow with the log.
        Strict reads raise on an event whose kind is not registered (naming its seq);
        ``lenient=True`` yields `UnknownEvent` placeholders instead.
        """
        selection = make_filter(
            run=run, actor=actor, kinds=kinds, from_seq=from_seq, to_seq=to_seq,
            since=since, until=until, correlation=correlation,
        )
        return self.select(selection, lenient=lenient)

    def select(self, selection: EventFilter, *, lenient: bool = False) -> Iterator[EventRecord]:
        """Like `events`, with the filter given as an `EventFilter`."""
        self._check_open()
        decode = self.codec.decode
        _float, _int, _str = float, int, str
        for row in iter_rows(self._reader, self._read_lock, selection, self.chunk_size):
            seq, ts, run, actor, kind, version, correlation, payload, digest = row
            if (
                type(ts) is not _float or type(version) is not _int or type(kind) is not _str
                or type(run) is not _str or type(actor) is not _str or type(digest) is not _str
                or (correlation is not None and type(correlation) is not _str)
            ):  # only a foreign writer leaves such a row: checked in line, it costs little
                problems = column_problems(ts, run, actor, kind, version, correlation, digest)
                if problems:
                    yield malformed_record(row, problems, lenient=lenient)
                    continue
            yield EventRecord(
                seq=seq, ts=ts, run=run, actor=actor, kind=kind, version=version, correlation=correlation,
                event=decode(kind, version, payload, seq=seq, lenient=lenient), hash=digest,
            )

    def rows(
        self, *, run: str | None = None, from_seq: int | None = None, to_seq: int | None = None,
        until: float | None = None,
    ) -> Iterator[tuple[int, float, str, str, str, int, str | None, str, str]]:
        """Raw rows ``(seq, ts, run, actor, kind, version, correlation, payload, hash)`` in seq order,
        undecoded, read in chunks along the primary key: the fast path for folding a whole log."""
        self._check_open()
        selection = make_filter(run=run, from_seq=from_seq, to_seq=to_seq, until=until)
        return iter_rows(self._reader, self._read_lock, selection, self.chunk_size)

    def fold_chunks(
        self, *, run: str | None = None, from_seq: int | None = None, to_seq: int | None = None,
        until: float | None = None,
    ) -> Iterator[list[tuple[int, float, str, str, str, int, str]]]:
        """Raw rows ``(seq, ts, run, actor, kind, version, payload)`` in seq order, in lists of
        at most ``chunk_size``: `rows` without the correlation and the hash, which no projection
        reads, for replay's fast path (`Statistics.fold_chunks`)."""
        self._check_open()
        selection = make_filter(run=run, from_seq=from_seq, to_seq=to_seq, until=until)
        return iter_chunks(self._reader, self._read_lock, selection, self.chunk_size, FOLD_COLUMNS)

    def count(self) -> int:
        """How many events the log holds (committed ones only)."""
        self._check_open()
        with self._read_lock:
            row = self._reader.fetch("SELECT count(*) FROM events", (), "counting events")[0]
        return int(row[0])

    def last_seq(self) -> int:
        """The seq of the newest committed event, 0 for an empty log."""
        self._check_open()
        with self._read_lock:
            row = self._reader.fetch("SELECT max(seq) FROM events", (), "finding the last seq")[0]
        return int(row[0] or 0)

    def verify(
        self,
        *,
        check_file: bool = True,
        public_key: str | os.PathLike[str] | PublicKey | None = None,
        witness: str | os.PathLike[str] | None = None,
        expect: Iterable[str] = (),
        progress: Callable[[int], None] | None = None,
    ) -> VerifyReport:
        """Check the file (SQLite's quick_check, unless ``check_file`` is false), the append-only
        triggers and their SQL, and recompute the hash chain over every committed row.

        ``public_key`` (the ``.pub`` file keygen wrote): every signed checkpoint must verify,
        and the rows before each must hash to what it signed. ``witness`` (a directory or a
        ``.jsonl`` file) and ``expect`` (``"SEQ:HASH"`` strings): the log must hold each of
        those rows with that hash, so truncation and rollback are found. Snapshots must match
        the digests the chain recorded. ``progress`` is called with the rows hashed since its last call.
        """
        self._check_open()
        pins = [(*parse_expect(text), f"--expect {text}") for text in expect]
        if witness is not None:
            source = witness_file(witness, self.location.name)
            try:
                entries = read_witness(source)
            except OSError as exc:
                raise ValueError(f"witness {str(source)!r} cannot be read: {exc.strerror or exc}") from None
            pins += witness_pins(entries, f"the witness {str(source)!r}")
        key = PublicKey(public_key) if public_key is not None and not isinstance(public_key, PublicKey) else public_key
        audit = ChainAudit(key, pins)
        return verify_log(self._reader, self._read_lock, check_file=check_file, audit=audit, progress=progress)

    def newest_checkpoint(self) -> tuple[EventRecord, Checkpoint] | None:
        """The newest signed checkpoint the store wrote, with its record; None if there is none."""
        self._check_open()
        with self._read_lock:
            found = self._reader.fetch(
                "SELECT max(seq) FROM events WHERE kind = 'checkpoint' AND actor = ?", (STORE_ACTOR,),
                "finding the newest checkpoint",
            )
        seq = found[0][0] if found else None
        if seq is None:
            return None
        for record in self.events(from_seq=seq, to_seq=seq):
            if isinstance(record.event, Checkpoint):
                return record, record.event
        return None

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"{self!r} is closed")

    # -- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Flush pending events, stop the store writer and close the file. Idempotent.

        A pending commit failure is raised after everything is closed.
        """
        if self._closed:
            return
        self._closed = True
        failure: Exception | None = None
        if self._writer is not None:
            try:
                self._writer.request("flush").result()
            except Exception as exc:  # noqa: BLE001 - re-raised once the file is closed
                failure = exc
            self._writer.request("stop").result()
            self._writer.join()
        with self._read_lock:
            self._reader.close()
        _open_stores.discard(self)
        if failure is not None:
            raise failure
