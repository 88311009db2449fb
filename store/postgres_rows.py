"""Pending rows as lines of PostgreSQL's COPY text format, made in two steps so that little
is left for the ordering lock, which every writer process of a log waits for.

`stage` formats everything but a row's seq and hash before the lock is taken; under it,
`chain_lines` numbers and chains the rows (`actorlog.store.chain.link`) and completes their
lines. Three writer processes on one log spent about a third of each hold of the lock
chaining and formatting rows before (psycopg's ``write_row`` after `chain_rows`).
"""

from __future__ import annotations

import re
from typing import Any

from actorlog.store.chain import link
from actorlog.store.rows import PendingRow

NULL = b"\\N"
"""COPY's text for NULL."""

_SPECIAL = re.compile(rb"[\\\t\n\r]")


def escape(value: bytes) -> bytes:
    """``value`` as one field of a COPY text line: backslash, tab, newline and carriage return escaped."""
    if _SPECIAL.search(value) is None:
        return value
    return value.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\n", b"\\n").replace(b"\r", b"\\r")


def _columns(run: str, actor: str, kind: str, version: int, correlation: str | None) -> bytes:
    return b"%s\t%s\t%s\t%d\t%s" % (
        escape(run.encode()), escape(actor.encode()), escape(kind.encode()), version,
        NULL if correlation is None else escape(correlation.encode()),
    )


def _staged(row: PendingRow, columns: bytes) -> bytes:
    return b"%r\t%s\t%s" % (row[1], columns, escape(row[7].encode()))


def stage(rows: list[PendingRow]) -> list[bytes | None]:
    """Each row's columns from ``ts`` to ``payload`` as COPY text (tab-separated, escaped);
    None for a row whose payload is only known once earlier seqs are (a `DeferredRow`)."""
    known: dict[tuple[Any, ...], bytes] = {}  # a batch repeats a few (run, actor, kind, ...)
    staged: list[bytes | None] = []
    append = staged.append
    for row in rows:
        if type(row) is not list:
            append(None)
            continue
        key = (row[2], row[3], row[4], row[5], row[6])
        columns = known.get(key)
        if columns is None:
            columns = known[key] = _columns(*key)
        append(_staged(row, columns))
    return staged


def chain_lines(previous: str, seq: int, rows: list[PendingRow], staged: list[bytes | None]) -> tuple[str, int, bytes]:
    """Number and chain ``rows`` after ``(seq, previous)``, in place as `chain_rows` does, and
    return the last hash, the last seq and the rows' COPY text lines (all nine columns)."""
    lines: list[bytes] = []
    append = lines.append
    for row, line in zip(rows, staged):
        if line is None:
            if type(row) is not list:
                row.resolve()  # type: ignore[attr-defined]  # a DeferredRow: earlier seqs are known now
            line = _staged(row, _columns(row[2], row[3], row[4], row[5], row[6]))
        seq += 1
        row[0] = seq
        row[8] = previous = link(previous, seq, row[8])
        append(b"%d\t%s\t%s\n" % (seq, line, previous.encode()))
    return previous, seq, b"".join(lines)
