"""Pending rows as lines of PostgreSQL's COPY text format, made in two steps so that little
is left for the ordering lock, which every writer process of a log waits for.

`stage` formats everything but a row's seq and hash before the lock is taken; under it,
`chain_lines` numbers and chains the rows (`actorlog.store.chain.link`, inline) and completes
their lines. Three writer processes on one log spent about a third of each hold of the lock
chaining and formatting rows before (psycopg's ``write_row`` after `chain_rows`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from actorlog.store.chain import LINK
from actorlog.store.rows import PendingRow

NULL = b"\\N"
"""COPY's text for NULL."""


def escape(text: str) -> bytes:
    """``text`` as one field of a COPY text line (UTF-8): backslash, tab, newline and carriage
    return escaped."""
    # searched in the str: four searches there cost less than one in the bytes
    if "\\" not in text and "\t" not in text and "\n" not in text and "\r" not in text:
        return text.encode()
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r").encode()


def _columns(run: str, actor: str, kind: str, version: int, correlation: str | None) -> bytes:
    return b"%s\t%s\t%s\t%d\t%s" % (
        escape(run), escape(actor), escape(kind), version, NULL if correlation is None else escape(correlation),
    )


def _staged(row: PendingRow, columns: bytes) -> bytes:
    # the hashed content begins with the time as JSON, the shortest text that reads back as
    # the same double (a third of the cost of formatting it again); JSON has no text for a
    # time that is not finite (null), which COPY reads as inf, -inf or NaN
    content: bytes = row[8]
    ts = content[1 : content.index(b",")]
    if ts == b"null":
        ts = b"%r" % row[1]
    return b"%s\t%s\t%s" % (ts, columns, escape(row[7]))


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
    sha256, covered = hashlib.sha256, LINK  # locals: this loop runs once a row
    last = previous.encode()
    for row, line in zip(rows, staged):
        if line is None:
            if type(row) is not list:
                row.resolve()  # type: ignore[attr-defined]  # a DeferredRow: earlier seqs are known now
            line = _staged(row, _columns(row[2], row[3], row[4], row[5], row[6]))
        seq += 1
        row[0] = seq
        # `link`, inline: this loop runs under the ordering lock that every writer waits for
        row[8] = previous = sha256(covered % (last, seq, row[8])).hexdigest()
        last = previous.encode()
        append(b"%d\t%s\t%s\n" % (seq, line, last))
    return previous, seq, b"".join(lines)
