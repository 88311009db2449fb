"""The hash chain: each row's hash covers the previous row's hash and this row's content.

A row's ``hash`` is the SHA-256 (hex) of::

    previous_hash | seq | content

where ``content`` is the JSON array ``[ts, run, actor, kind, version, correlation]``,
a newline, and the payload bytes (a JSON array never holds a raw newline, so the parts
cannot run into each other). The first row's previous hash is the empty string.
Changing, inserting or removing any row breaks the chain at that row (or, for a
removal, at the row after it).

Producers build ``content`` when they append (`row_content`); the writer computes the
hash inside ``BEGIN IMMEDIATE`` (`link`), the one place where the previous row is known
for certain even when several processes append to one file.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

GENESIS = ""
"""The 'previous hash' of the first row."""

_encode = msgspec.json.encode
_sha256 = hashlib.sha256

LINK = b"%s|%d|%s"
"""What a row's chain hash covers, formatted with the previous row's hash (hex, as bytes), the
row's seq and its content: the one definition `link` and the writers' loops share."""


def row_content(
    ts: float, run: str, actor: str, kind: str, version: int, correlation: str | None, payload: bytes
) -> bytes:
    """The bytes a row's hash covers besides its seq and the previous hash."""
    return _encode((ts, run, actor, kind, version, correlation)) + b"\n" + payload


def link(previous: str, seq: int, content: bytes) -> str:
    """The chain hash (hex) of the row at ``seq`` holding ``content``, after a row hashed ``previous``."""
    return _sha256(LINK % (previous.encode(), seq, content)).hexdigest()


def chain_rows(previous: str, seq: int, rows: list[list[Any]]) -> tuple[str, int, list[Any]]:
    """Assign seqs after ``seq`` and chain hashes after ``previous`` to pending rows, in place.

    Each row is ``[None, ts, run, actor, kind, version, correlation, payload, content]``;
    its first slot becomes the seq and its last the hash. A row that is not a plain list
    refers to earlier rows' seqs and has a ``resolve()`` method, called once those seqs are
    assigned (rows are processed in order, so they always are). Returns the last hash, the last
    seq, and every row's columns as one flat list (ready for multi-row INSERTs). This is
    `link` in a loop, kept in one function because it is the writer's hot path.
    """
    flat: list[Any] = []
    extend = flat.extend
    sha256, covered = _sha256, LINK  # locals: this loop runs once a row
    for row in rows:
        if type(row) is not list:
            row.resolve()  # type: ignore[attr-defined]  # a DeferredRow
        seq += 1
        row[0] = seq
        row[8] = previous = sha256(covered % (previous.encode(), seq, row[8])).hexdigest()
        extend(row)
    return previous, seq, flat


def row_hash(
    previous: str, seq: int, ts: float, run: str, actor: str, kind: str, version: int,
    correlation: str | None, payload: str | bytes,
) -> str:
    """The chain hash of a stored row from its columns, as `verify` recomputes it.

    ``payload`` is text as the store writes it; bytes (a BLOB a foreign writer stored) are hashed as they are.
    """
    data = payload if isinstance(payload, bytes) else payload.encode()
    return link(previous, seq, row_content(ts, run, actor, kind, version, correlation, data))
