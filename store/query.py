"""Filters over the events table, always as bound parameters, read in seq-ordered chunks."""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from itertools import chain
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import msgspec

from actorlog.store.errors import read_error
from actorlog.store.read_ahead import read_ahead

class Reader(Protocol):
    """What the queries here read through (a backend's `ReadConnection`)."""

    walks_indexes: bool

    def fetch(self, sql: str, params: Any, doing: str) -> list[Any]: ...

    def is_text(self, column: str) -> str: ...

    def has_value(self, column: str, value: str) -> bool: ...

    def payload_value(self, field: str, *, flag: bool = False) -> str: ...


class PagedReader(Reader, Protocol):
    """A reader that paged reads (`iter_rows`, `iter_chunks`) go through."""

    reads_ahead: bool
    """Whether the next page is read on a thread of its own while the caller works on this one."""


ROW_COLUMNS = "seq, ts, run, actor, kind, version, correlation, payload, hash"

FOLD_COLUMNS = "seq, ts, run, actor, kind, version, payload"
"""The columns a fold reads: no projection reads the correlation or the hash, and
each column left out is one Python object less per row."""


class EventFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which events to read. Every field is optional; all given ones must match.

    Seq bounds and time bounds are inclusive. ``kinds`` matches any of the listed tags.
    """

    run: str | None = None
    actor: str | None = None
    kinds: tuple[str, ...] | None = None
    from_seq: int | None = None
    to_seq: int | None = None
    since: float | None = None
    until: float | None = None
    correlation: str | None = None

    def __post_init__(self) -> None:
        for name in ("run", "actor", "correlation"):
            _check_text(name, getattr(self, name))
        if self.kinds is not None:
            if type(self.kinds) is not tuple:
                raise TypeError(f"the kinds filter must be a tuple of str, got {self.kinds!r}")
            for kind in self.kinds:
                _check_text("kinds", kind)
        for name in ("from_seq", "to_seq"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int):
                raise TypeError(f"the {name} filter must be an int (a seq), got {value!r}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is None:
                continue
            if type(value) not in (int, float):
                raise TypeError(f"the {name} filter must be a number of Unix seconds, got {value!r}")
            try:
                number = float(value)
            except OverflowError:
                raise ValueError(f"the {name} filter {value!r} is out of range for a time") from None
            if math.isnan(number):
                raise ValueError(f"the {name} filter must be a number of Unix seconds, got nan")

    def where(self) -> tuple[list[str], list[Any]]:
        """SQL conditions and their parameters (seq bounds excluded: the pager owns them)."""
        clauses: list[str] = []
        params: list[Any] = []
        for column in ("run", "actor", "correlation"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.kinds is not None:
            clauses.append(f"kind IN ({', '.join('?' * len(self.kinds))})" if self.kinds else "0")
            params.extend(self.kinds)
        if self.since is not None:
            clauses.append("ts >= ?")
            params.append(float(self.since))
        if self.until is not None:
            clauses.append("ts <= ?")
            params.append(float(self.until))
        return clauses, params

    def matches(self, seq: int, ts: float, run: str, actor: str, kind: str, correlation: str | None) -> bool:
        """The same filter in Python, for rows already in hand."""
        return (
            (self.run is None or run == self.run)
            and (self.actor is None or actor == self.actor)
            and (self.kinds is None or kind in self.kinds)
            and (self.from_seq is None or seq >= self.from_seq)
            and (self.to_seq is None or seq <= self.to_seq)
            and (self.since is None or ts >= self.since)
            and (self.until is None or ts <= self.until)
            and (self.correlation is None or correlation == self.correlation)
        )


def make_filter(
    *,
    run: str | None = None,
    actor: str | None = None,
    kinds: Iterable[str] | str | None = None,
    from_seq: int | None = None,
    to_seq: int | None = None,
    since: float | None = None,
    until: float | None = None,
    correlation: str | None = None,
) -> EventFilter:
    """Build an `EventFilter`, accepting one kind as a plain string."""
    if isinstance(kinds, str):
        kinds = (kinds,)
    return EventFilter(
        run=run, actor=actor, kinds=tuple(kinds) if kinds is not None else None,
        from_seq=from_seq, to_seq=to_seq, since=since, until=until, correlation=correlation,
    )


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def clamp_seq(seq: int) -> int:
    """A seq bound SQLite can bind: seqs are 64-bit, so a bound past them selects the same rows."""
    return min(max(seq, INT64_MIN), INT64_MAX)


def _check_text(name: str, value: Any) -> None:
    if value is None:
        return
    if type(value) is not str:
        raise TypeError(f"the {name} filter must be a str, got {value!r}")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError(
            f"the {name} filter {value!r} is not valid text: it holds a lone surrogate "
            f"(as a command-line argument that is not UTF-8 does)"
        ) from None


def _lenient_text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def fetch_all(
    conn: sqlite3.Connection, sql: str, params: Any, path: str | os.PathLike[str], doing: str
) -> list[Any]:
    """``conn.execute(sql, params).fetchall()``, with SQLite's errors turned into store errors
    naming the file, and TEXT that is not UTF-8 (only a foreign writer stores it) read with
    U+FFFD in place of the bad bytes instead of failing the whole read."""
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "decode to UTF-8" not in str(exc):
            raise read_error(path, exc, doing) from exc
    except sqlite3.Error as exc:
        raise read_error(path, exc, doing) from exc
    previous = conn.text_factory
    conn.text_factory = _lenient_text
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.Error as exc:
        raise read_error(path, exc, doing) from exc
    finally:
        conn.text_factory = previous


def iter_rows(
    reader: PagedReader,
    lock: threading.Lock,
    selection: EventFilter,
    chunk_size: int,
    columns: str = ROW_COLUMNS,
) -> Iterator[tuple[Any, ...]]:
    """Yield raw rows (``columns``, seq first) in seq order, fetching ``chunk_size`` at a time
    (keyset paging on seq).

    Memory stays bounded by one chunk whatever the log's length, and the connection is
    not held between chunks, so readers in other threads and appends go on meanwhile.
    Errors become `StoreLockedError` or `StoreReadError` naming the log and the seq reading
    had reached.
    """
    # chained in C: no generator frame resumed per row
    return chain.from_iterable(iter_chunks(reader, lock, selection, chunk_size, columns))


def iter_chunks(
    reader: PagedReader, lock: threading.Lock, selection: EventFilter, chunk_size: int, columns: str = ROW_COLUMNS
) -> Iterator[list[Any]]:
    """`iter_rows` a chunk (a list of at most ``chunk_size`` rows) at a time; read a chunk
    ahead on a thread of its own where the reader says it gains by it (`read_ahead`)."""
    chunks = _chunks(reader, lock, selection, chunk_size, columns)
    return _ahead_after_the_first(chunks, chunk_size) if reader.reads_ahead else chunks


def _ahead_after_the_first(chunks: Iterator[list[Any]], chunk_size: int) -> Iterator[list[Any]]:
    """The first chunk read here, the rest (if it was full) read ahead: a short read, as a
    follower's or a lookup's usually is, starts no thread."""
    first = next(chunks, None)
    if first is None:
        return
    yield first
    if len(first) == chunk_size:
        yield from read_ahead(chunks)


def _chunks(
    reader: Reader, lock: threading.Lock, selection: EventFilter, chunk_size: int, columns: str
) -> Iterator[list[Any]]:
    clauses, params = selection.where()
    after = clamp_seq(selection.from_seq - 1) if selection.from_seq is not None else -1
    upper = clamp_seq(selection.to_seq) if selection.to_seq is not None else None
    sql_tail = " AND ".join(["seq > ?"] + (["seq <= ?"] if upper is not None else []) + clauses)
    sql = f"SELECT {columns} FROM events WHERE {sql_tail} ORDER BY seq LIMIT ?"
    while True:
        bound = [after] + ([upper] if upper is not None else []) + params + [chunk_size]
        with lock:
            chunk = reader.fetch(sql, bound, f"reading the events after seq {max(after, 0)}")
        yield chunk
        if len(chunk) < chunk_size:
            return
        after = chunk[-1][0]


LOOKUP_COLUMNS = ("run", "actor", "kind")
"""Columns `has_value` and `distinct_values` answer for (each has an index: a B-tree on
SQLite, a bloom BRIN index on PostgreSQL 14 and later)."""


def has_value(reader: Reader, column: str, value: str) -> bool:
    """Whether any event has ``value`` in ``column`` (run, actor or kind), found through the
    column's index."""
    if column not in LOOKUP_COLUMNS:
        raise ValueError(f"no lookup by {column!r}; one of {', '.join(LOOKUP_COLUMNS)}")
    return reader.has_value(column, value)


def distinct_values(reader: Reader, column: str, limit: int = 10_000) -> list[str]:
    """The distinct text values of ``column`` (run, actor or kind), at most ``limit`` of them.

    Walked along the column's index one value at a time (``min(col) WHERE col > ?``), so
    it costs one probe per distinct value, not a scan of a log of any length; where the index
    cannot be walked (`Reader.walks_indexes`), read in one scan, not one per value.
    """
    if column not in LOOKUP_COLUMNS:
        raise ValueError(f"no lookup by {column!r}; one of {', '.join(LOOKUP_COLUMNS)}")
    found: list[str] = []
    text = reader.is_text(column)
    if not reader.walks_indexes:
        # in code point order, as SQLite's index gives them
        sql = f'SELECT {column} FROM events WHERE {text} GROUP BY {column} ORDER BY {column} COLLATE "C" LIMIT ?'
        rows = reader.fetch(sql, [limit], f"listing the {column}s")
        return [str(row[0]) for row in rows]
    rows = reader.fetch(f"SELECT min({column}) FROM events WHERE {text}", (), f"listing the {column}s")
    while rows and rows[0][0] is not None and len(found) < limit:
        found.append(str(rows[0][0]))
        rows = reader.fetch(f"SELECT min({column}) FROM events WHERE {column} > ? AND {text}", [found[-1]],
                            f"listing the {column}s")
    return found


def run_summary_sql(reader: Reader) -> str:
    """The per-run figures of one seq range, in the SQL both backends share (the payload's
    ``clean`` flag and ``reason`` read the way the reader's backend reads JSON)."""
    clean, reason = reader.payload_value("clean", flag=True), reader.payload_value("reason")
    return f"""SELECT run, min(seq), min(ts), max(ts), count(*),
       count(CASE WHEN kind = 'failure.raised' THEN 1 END), count(CASE WHEN kind = 'escalated' THEN 1 END),
       max(CASE WHEN kind = 'run.stopped' THEN {clean} END),
       max(CASE WHEN kind = 'run.stopped' THEN {reason} END)
FROM events WHERE seq > ? AND seq <= ? GROUP BY run"""


class RunSummary(msgspec.Struct, kw_only=True):
    """One run's figures, as `run_summaries` adds them up."""

    run: str
    first_seq: int
    start: Any
    end: Any
    events: int = 0
    failures: int = 0
    escalations: int = 0
    clean: Any = None
    reason: Any = None


def run_summaries(
    reader: Reader, *, last_seq: int, chunk_rows: int = 100_000, progress: Callable[[int], None] | None = None,
) -> list[RunSummary]:
    """Every run up to ``last_seq`` (oldest first): its first seq, first and last ts, event,
    failure and escalation counts, and its ``run.stopped`` clean flag and reason.

    Added up over seq ranges of ``chunk_rows``, so a caller can show progress (``progress``
    gets the rows of each range) and the connection is free between ranges.
    """
    runs: dict[str, RunSummary] = {}
    sql = run_summary_sql(reader)
    after = 0
    while after < last_seq:
        upper = min(after + chunk_rows, last_seq)
        for run, first, start, end, events, failures, escalations, clean, reason in reader.fetch(
            sql, [after, upper], "listing its runs"
        ):
            key = str(run)
            summary = runs.get(key)
            if summary is None:
                summary = runs[key] = RunSummary(run=key, first_seq=first, start=start, end=end)
            else:
                summary.start = _least(summary.start, start)
                summary.end = _most(summary.end, end)
            summary.events += events
            summary.failures += failures or 0
            summary.escalations += escalations or 0
            if clean is not None:
                summary.clean = clean if summary.clean is None else max(summary.clean, clean)
            if reason is not None:
                summary.reason = reason if summary.reason is None else max(str(summary.reason), str(reason))
        if progress is not None:
            progress(upper - after)
        after = upper
    return sorted(runs.values(), key=lambda summary: summary.first_seq)


def _least(a: Any, b: Any) -> Any:
    try:
        return b if a is None or (b is not None and b < a) else a
    except TypeError:  # a foreign writer's ts of another type: keep the first seen
        return a


def _most(a: Any, b: Any) -> Any:
    try:
        return b if a is None or (b is not None and b > a) else a
    except TypeError:
        return a


def count_matching(
    reader: Reader, selection: EventFilter, *, last_seq: int, chunk_rows: int = 100_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """How many events up to ``last_seq`` match ``selection``, counted over seq ranges of
    ``chunk_rows`` (``progress`` gets the rows of each range): the connection is free between them."""
    clauses, params = selection.where()
    low = clamp_seq(selection.from_seq - 1) if selection.from_seq is not None else 0
    high = min(last_seq, clamp_seq(selection.to_seq)) if selection.to_seq is not None else last_seq
    sql = " AND ".join(["seq > ?", "seq <= ?"] + clauses)
    found, after = 0, max(low, 0)
    if progress is not None and after:
        progress(min(after, last_seq))
    while after < high:
        upper = min(after + chunk_rows, high)
        found += int(reader.fetch(f"SELECT count(*) FROM events WHERE {sql}", [after, upper, *params],
                                  f"counting the events after seq {after}")[0][0])
        if progress is not None:
            progress(upper - after)
        after = upper
    return found
