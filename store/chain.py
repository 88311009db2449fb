"""The hash chain: each row's hash covers the previous row's hash and this row's fields."""

from __future__ import annotations

import hashlib

import msgspec

GENESIS = ""
"""The 'previous hash' of the first row."""

Row = tuple[int, float, str, str, str, int, str | None, str]
"""(seq, ts, run, actor, kind, version, correlation, payload): a row's immutable content."""

_encode = msgspec.json.encode


def row_hash(previous: str, row: Row) -> str:
    """SHA-256 (hex) over the previous hash and the row's content, encoded as a JSON array."""
    return hashlib.sha256(previous.encode() + _encode(row)).hexdigest()
