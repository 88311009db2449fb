"""Filters over the events table, always as bound parameters, read in seq-ordered chunks."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

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
            params.append(self.since)
        if self.until is not None:
            clauses.append("ts <= ?")
            params.append(self.until)
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


def iter_rows(
    conn: sqlite3.Connection, lock: threading.Lock, selection: EventFilter, chunk_size: int
) -> Iterator[tuple[Any, ...]]:
    """Yield raw rows in seq order, fetching ``chunk_size`` at a time (keyset paging on seq).

    Memory stays bounded by one chunk whatever the log's length, and the connection is
    not held between chunks, so readers in other threads and appends go on meanwhile.
    """
    clauses, params = selection.where()
    after = (selection.from_seq - 1) if selection.from_seq is not None else -1
    upper = selection.to_seq
    sql_tail = " AND ".join(["seq > ?"] + (["seq <= ?"] if upper is not None else []) + clauses)
    sql = f"SELECT {ROW_COLUMNS} FROM events WHERE {sql_tail} ORDER BY seq LIMIT ?"
    while True:
        bound = [after] + ([upper] if upper is not None else []) + params + [chunk_size]
        with lock:
            chunk = conn.execute(sql, bound).fetchall()
        yield from chunk
        if len(chunk) < chunk_size:
            return
        after = chunk[-1][0]
