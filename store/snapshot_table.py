"""The ``snapshots`` table: cached projection states, written by the store's writer.

It is append-only like ``events``, and each snapshot's digest is a ``snapshot.taken``
event in the chain, written in the same transaction: a snapshot edited afterwards no
longer matches the chain, so ``verify`` names it and ``rebuild`` skips it.
"""

from __future__ import annotations

import hashlib

SNAPSHOTS_DDL = (
    "CREATE TABLE IF NOT EXISTS snapshots (id INTEGER PRIMARY KEY, projection TEXT NOT NULL, "
    "version INTEGER NOT NULL, position INTEGER NOT NULL, run TEXT NOT NULL, created_at REAL NOT NULL, "
    "state TEXT NOT NULL)"
)

SNAPSHOT_TRIGGERS = {
    "snapshots_no_update": "BEFORE UPDATE ON snapshots BEGIN SELECT RAISE(ABORT, 'snapshots are append-only'); END",
    "snapshots_no_delete": "BEFORE DELETE ON snapshots BEGIN SELECT RAISE(ABORT, 'snapshots are append-only'); END",
}
"""The append-only triggers of the snapshots table, as for events."""

SNAPSHOT_TRIGGERS_DDL = tuple(f"CREATE TRIGGER IF NOT EXISTS {name} {body}" for name, body in SNAPSHOT_TRIGGERS.items())

INSERT_SNAPSHOT_SQL = (
    "INSERT INTO snapshots (projection, version, position, run, created_at, state) VALUES (?, ?, ?, ?, ?, ?)"
)


def snapshot_digest(projection: str, version: int, position: int, run: str, state: str) -> str:
    """The SHA-256 (hex) a ``snapshot.taken`` event records for a snapshot's columns."""
    return hashlib.sha256(f"{projection}\n{version}\n{position}\n{run}\n{state}".encode()).hexdigest()
