"""The ``snapshots`` table: cached projection states, written by the store's writer."""

from __future__ import annotations

SNAPSHOTS_DDL = (
    "CREATE TABLE IF NOT EXISTS snapshots (id INTEGER PRIMARY KEY, projection TEXT NOT NULL, "
    "version INTEGER NOT NULL, position INTEGER NOT NULL, run TEXT NOT NULL, created_at REAL NOT NULL, "
    "state TEXT NOT NULL)"
)

INSERT_SNAPSHOT_SQL = (
    "INSERT INTO snapshots (projection, version, position, run, created_at, state) VALUES (?, ?, ?, ?, ?, ?)"
)
