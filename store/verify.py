"""Integrity verification: schema, append-only triggers and the hash chain."""

from __future__ import annotations

import sqlite3
import threading

import msgspec

from actorlog.store.chain import GENESIS, row_hash
from actorlog.store.query import EventFilter, iter_rows
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


def verify_log(conn: sqlite3.Connection, lock: threading.Lock, chunk_size: int = 5000) -> VerifyReport:
    """Recompute the whole chain in seq order, in constant memory."""
    problems: list[str] = []
    with lock:
        triggers = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    for name in TRIGGERS:
        if name not in triggers:
            problems.append(f"append-only trigger {name} is missing")
    previous = GENESIS
    checked = 0
    last_seq = 0
    first_bad: int | None = None
    for seq, ts, run, actor, kind, version, correlation, payload, stored in iter_rows(
        conn, lock, EventFilter(), chunk_size
    ):
        expected = row_hash(previous, seq, ts, run, actor, kind, version, correlation, payload)
        checked += 1
        last_seq = seq
        if stored != expected and first_bad is None:
            first_bad = seq
            problems.append(f"hash chain broken at seq {seq}: the row or the one before it was changed, added or removed")
        previous = stored
    return VerifyReport(
        ok=not problems, events_checked=checked, last_seq=last_seq, first_bad_seq=first_bad, problems=tuple(problems)
    )
