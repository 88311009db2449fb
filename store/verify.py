"""Integrity verification: schema, append-only triggers and the hash chain."""

from __future__ import annotations

import os
import sqlite3
import threading

import msgspec

from actorlog.store.chain import GENESIS, row_hash
from actorlog.store.query import EventFilter, fetch_all, iter_rows
from actorlog.store.schema import TRIGGERS


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of `EventStore.verify`.

    ``first_bad_seq`` is the first row whose stored hash does not match its content and
    its predecessor's hash: the first row changed, inserted or following a deleted one.
    """

    ok: bool
    events_checked: int
    last_seq: int
    first_bad_seq: int | None = None
    problems: tuple[str, ...] = ()


def verify_log(
    conn: sqlite3.Connection, lock: threading.Lock, chunk_size: int = 5000, *, path: str | os.PathLike[str] = "(unnamed)"
) -> VerifyReport:
    """Recompute the whole chain in seq order, in constant memory.

    Any value in any column is hashed as it is read (a row a foreign writer stored with a
    BLOB or a number where text belongs simply fails to match); an unreadable file raises
    the store error naming it.
    """
    problems: list[str] = []
    with lock:
        rows = fetch_all(conn, "SELECT name FROM sqlite_master WHERE type = 'trigger'", (), path, "listing its triggers")
        triggers = {row[0] for row in rows}
    for name in TRIGGERS:
        if name not in triggers:
            problems.append(f"append-only trigger {name} is missing")
    previous = GENESIS
    checked = 0
    last_seq = 0
    first_bad: int | None = None
    for seq, ts, run, actor, kind, version, correlation, payload, stored in iter_rows(
        conn, lock, EventFilter(), chunk_size, path
    ):
        expected = row_hash(previous, seq, ts, run, actor, kind, version, correlation, payload)
        checked += 1
        last_seq = seq
        if stored != expected and first_bad is None:
            first_bad = seq
            problems.append(f"hash chain broken at seq {seq}: the row or the one before it was changed, added or removed")
        previous = stored if type(stored) is str else repr(stored)  # a tampered hash may be a BLOB
    return VerifyReport(
        ok=not problems, events_checked=checked, last_seq=last_seq, first_bad_seq=first_bad, problems=tuple(problems)
    )
