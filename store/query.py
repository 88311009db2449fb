"""Filters over the events table, always as bound parameters, read in seq-ordered chunks."""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import msgspec

from actorlog.store.errors import read_error

class Reader(Protocol):
    """What `iter_rows` reads through (a backend's `ReadConnection`)."""

    def fetch(self, sql: str, params: Any, doing: str) -> list[Any]: ...


ROW_COLUMNS = "seq, ts, run, actor, kind, version, correlation, payload, hash"


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
    reader: Reader,
    lock: threading.Lock,
    selection: EventFilter,
    chunk_size: int,
) -> Iterator[tuple[Any, ...]]:
    """Yield raw rows in seq order, fetching ``chunk_size`` at a time (keyset paging on seq).

    Memory stays bounded by one chunk whatever the log's length, and the connection is
    not held between chunks, so readers in other threads and appends go on meanwhile.
    Errors become `StoreLockedError` or `StoreReadError` naming the log and the seq reading
    had reached.
    """
    clauses, params = selection.where()
    after = clamp_seq(selection.from_seq - 1) if selection.from_seq is not None else -1
    upper = clamp_seq(selection.to_seq) if selection.to_seq is not None else None
    sql_tail = " AND ".join(["seq > ?"] + (["seq <= ?"] if upper is not None else []) + clauses)
    sql = f"SELECT {ROW_COLUMNS} FROM events WHERE {sql_tail} ORDER BY seq LIMIT ?"
    while True:
        bound = [after] + ([upper] if upper is not None else []) + params + [chunk_size]
        with lock:
            chunk = reader.fetch(sql, bound, f"reading the events after seq {max(after, 0)}")
        yield from chunk
        if len(chunk) < chunk_size:
            return
        after = chunk[-1][0]
