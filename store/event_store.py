"""`EventStore`: open, append to, read, and verify one SQLite event log."""

from __future__ import annotations

import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pykka
import sqlite_utils

from actorlog.events import Codec, TypeRegistry
from actorlog.events.codec import default_codec
from actorlog.store.errors import PayloadTooLargeError, ReadOnlyError, StoreClosedError, StoreWriteError
from actorlog.store.query import EventFilter, fetch_all, iter_rows, make_filter
from actorlog.store.records import EventRecord, column_problems, malformed_record
from actorlog.store.schema import open_database
from actorlog.store.verify import VerifyReport, verify_log
from actorlog.store.chain import row_content
from actorlog.store.exit import close_at_exit
from actorlog.store.writer import Batch, DeferredRow, Flush, PendingRow, SaveSnapshot, StoreWriter, Ticket, WriterState

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

DEFAULT_MAX_PAYLOAD_BYTES = 1 << 20
_BATCH_MESSAGE_ROWS = 1000

_open_stores: weakref.WeakSet[EventStore] = close_at_exit(lambda store: store.close())


def new_run_id() -> str:
    """A run id that sorts by start time: ``20261124T101800-3fa2c1``."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


class EventStore:
    """One SQLite event log, opened for appending (default) or read-only.

    ::

        with EventStore("app.db") as store:
            store.append(GaugeSet(name="queue_depth", value=3), actor="worker")
            store.flush()
            for record in store.events(kinds=["gauge.set"]):
                print(record.seq, record.event)

    Appends are handed to the store actor, which commits them in groups; they return
    without waiting for the disk unless its backlog is full (back-pressure). `flush`
    waits until everything appended before it is committed. Closing flushes.

    A commit that fails (a full disk, a lock held past ``busy_timeout``, the file removed
    or replaced while open) stops writing: `flush`, `append` and `close` raise the
    `StoreWriteError`, and what was committed before it stays intact. ``max_log_bytes``
    caps the file's size (SQLite's ``max_page_count`` on the write connection): a commit
    that would grow it past the cap fails as a full disk would. A log already past the cap
    when opened cannot grow at all. Opening a file this process cannot write for writing
    raises `NotWritableError`; read it with `open_readonly`.
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
        self.path = Path(path)
        self.readonly = readonly
        self.run = run if run is not None else new_run_id()
        self.codec = Codec(registry) if registry is not None else default_codec
        self.max_payload_bytes = max_payload_bytes
        self.chunk_size = chunk_size
        self.db: sqlite_utils.Database = open_database(self.path, readonly=readonly, busy_timeout=busy_timeout)
        """A sqlite-utils `Database` on the reading connection, for ad-hoc queries."""
        self._read_lock = threading.Lock()
        self._closed = False
        self._state = WriterState()
        self._writer: pykka.ActorRef[StoreWriter] | None = None
        if not readonly:
            self._writer = StoreWriter.start(
                self.path, self._state, synchronous=synchronous, busy_timeout=busy_timeout,
                max_batch_rows=max_batch_rows, max_pending_rows=max_pending_rows, max_log_bytes=max_log_bytes,
            )
        _open_stores.add(self)

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
        return f"<EventStore {str(self.path)!r} {mode}{' closed' if self._closed else ''}>"

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
        """Append one event; returns once the store actor has it (not when it is committed).

        The returned `Ticket`'s ``seq`` is filled in when the row is written. ``refs`` maps
        fields of ``event`` to tickets of rows appended earlier: each field is set to that
        row's seq as this one is written, so an event can name the seq of another without
        waiting for the disk (a failure naming the message that caused it).

        Raises `NotRegisteredError` for anything but a registered type's instance,
        `PayloadTooLargeError` over the payload limit, and `StoreWriteError` once a
        commit has failed. ``ts`` defaults to now.
        """
        writer = self._writable()
        row = self._pending(event, actor, correlation, ts)
        if refs:
            row = DeferredRow(row, event, dict(refs), self._reencode)
            writer.tell(Batch([row]))
        else:
            writer.tell(row)
        return Ticket(row)

    def append_many(
        self,
        events: Iterable[object],
        *,
        actor: str = "app",
        correlation: str | None = None,
        ts: float | Sequence[float] | None = None,
    ) -> None:
        """Append several events in order; all are encoded and checked before any is sent.

        ``ts`` is one time for all of them, one time per event, or None for now.
        """
        writer = self._writable()
        if ts is None or isinstance(ts, (int, float)):
            rows = [self._pending(event, actor, correlation, ts) for event in events]
        else:
            events = list(events)
            if len(ts) != len(events):
                raise ValueError(f"append_many got {len(events)} events but {len(ts)} timestamps")
            rows = [self._pending(event, actor, correlation, stamp) for event, stamp in zip(events, ts)]
        for start in range(0, len(rows), _BATCH_MESSAGE_ROWS):
            writer.tell(Batch(rows[start : start + _BATCH_MESSAGE_ROWS]))

    def flush(self, timeout: float | None = None) -> int:
        """Wait until every event appended before this call is committed.

        Returns the seq of the newest event this store has committed, or the log's last
        seq when it was opened if it has committed none since.
        """
        writer = self._writable()
        try:
            seq = int(writer.ask(Flush(), block=True, timeout=timeout))
        except pykka.ActorDeadError:
            raise StoreClosedError(f"{self!r}: the store actor has stopped") from None
        return seq

    def save_snapshot(self, projection: str, version: int, position: int, state: str, *, run: str = "") -> None:
        """Store a projection's state (JSON text) as of ``position`` in the ``snapshots`` table.

        Waits until it is written. Events are never touched; ``run`` is "" for a
        snapshot of all runs.
        """
        writer = self._writable()
        writer.ask(SaveSnapshot(projection, version, position, run, state), block=True)

    def snapshots(self, projection: str, *, run: str = "") -> list[tuple[int, int, str]]:
        """``(version, position, state)`` of a projection's snapshots, newest position first."""
        self._check_open()
        doing = f"reading the {projection} snapshots"
        with self._read_lock:
            exists = fetch_all(
                self.db.conn, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'snapshots'", (),
                self.path, doing,
            )
            if not exists:
                return []
            rows = fetch_all(
                self.db.conn,
                "SELECT version, position, state FROM snapshots WHERE projection = ? AND run = ? "
                "ORDER BY position DESC, id DESC",
                (projection, run), self.path, doing,
            )
        # a snapshot is only a cache: one whose columns were tampered with is skipped, never misread
        return [(v, p, s) for v, p, s in rows if type(v) is int and type(p) is int and type(s) is str]

    @property
    def failure(self) -> Exception | None:
        """The commit failure that stopped writing, if any."""
        return self._state.failure

    def on_failure(self, listener: Callable[[StoreWriteError], None]) -> None:
        """Call ``listener`` with the `StoreWriteError` when writing fails, once (at once if it
        already has). It runs on the store actor's thread: keep it short and never wait on the store."""
        self._state.on_failure(listener)

    @property
    def unwritten(self) -> int:
        """Events that reached the store actor but were not written because a commit failed
        (the failed batch and everything after it); 0 while writing works."""
        return self._state.lost

    def _writable(self) -> pykka.ActorRef[StoreWriter]:
        if self._closed:
            raise StoreClosedError(f"{self!r} is closed; open the log again to write")
        if self._writer is None:
            raise ReadOnlyError(f"{self!r} was opened read-only; open it without readonly=True to append")
        if self._state.failure is not None:
            raise self._state.failure
        return self._writer

    def _pending(self, event: object, actor: str, correlation: str | None, ts: float | None) -> PendingRow:
        kind, version, payload = self.codec.encode(event)
        if len(payload) > self.max_payload_bytes:
            raise PayloadTooLargeError(
                f"{kind} event is {len(payload):,} bytes encoded, over this store's limit of "
                f"{self.max_payload_bytes:,}; store large data elsewhere and log a reference, "
                f"or open the store with a larger max_payload_bytes"
            )
        if type(actor) is not str or (correlation is not None and type(correlation) is not str):
            raise TypeError(f"actor must be a str and correlation a str or None, got {actor!r} and {correlation!r}")
        ts = time.time() if ts is None else float(ts)
        run = self.run
        content = row_content(ts, run, actor, kind, version, correlation, payload)
        return [None, ts, run, actor, kind, version, correlation, payload.decode(), content]

    def _reencode(self, event: object, row: PendingRow) -> tuple[str, bytes]:
        _, _, payload = self.codec.encode(event)
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
        for row in iter_rows(self.db.conn, self._read_lock, selection, self.chunk_size, self.path):
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
        return iter_rows(self.db.conn, self._read_lock, selection, self.chunk_size, self.path)

    def count(self) -> int:
        """How many events the log holds (committed ones only)."""
        self._check_open()
        with self._read_lock:
            row = fetch_all(self.db.conn, "SELECT count(*) FROM events", (), self.path, "counting events")[0]
        return int(row[0])

    def last_seq(self) -> int:
        """The seq of the newest committed event, 0 for an empty log."""
        self._check_open()
        with self._read_lock:
            row = fetch_all(self.db.conn, "SELECT max(seq) FROM events", (), self.path, "finding the last seq")[0]
        return int(row[0] or 0)

    def verify(self, *, check_file: bool = True) -> VerifyReport:
        """Check the file (SQLite's quick_check, unless ``check_file`` is false), the append-only
        triggers and their SQL, and recompute the hash chain over every committed row."""
        self._check_open()
        return verify_log(self.db.conn, self._read_lock, path=self.path, check_file=check_file)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"{self!r} is closed")

    # -- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Flush pending events, stop the store actor and close the file. Idempotent.

        A pending commit failure is raised after everything is closed.
        """
        if self._closed:
            return
        self._closed = True
        failure: Exception | None = None
        if self._writer is not None:
            try:
                self._writer.ask(Flush())
            except Exception as exc:  # noqa: BLE001 - re-raised once the file is closed
                failure = exc
            try:
                self._writer.stop(block=True)
            except pykka.ActorDeadError:
                pass
        with self._read_lock:
            self.db.conn.close()
        _open_stores.discard(self)
        if failure is not None:
            raise failure
