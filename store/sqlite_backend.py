"""The SQLite backend: a log in one file (WAL), its reading and writing connections."""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import sqlite_utils

from actorlog.store.chain import chain_rows
from actorlog.store.location import LogLocation
from actorlog.store.query import fetch_all
from actorlog.store.rows import PendingRow
from actorlog.store.schema import TRIGGERS, connect
from actorlog.store.snapshot_table import INSERT_SNAPSHOT_SQL, SNAPSHOT_TRIGGERS, SNAPSHOT_TRIGGERS_DDL, SNAPSHOTS_DDL

logger = logging.getLogger(__name__)

ROWS_PER_STATEMENT = 200
"""Rows bound into one INSERT statement at most (fewer if this SQLite allows fewer variables).

Each step of a statement gives the interpreter lock up, and taking it back while another
thread runs may take the switch interval (5 ms): a commit of a thousand rows in a few large
statements, rather than twenty of 50 rows and one per row left over, keeps the writer from
spending its time waiting for that lock while the producers fill its inbox."""

_COLUMNS = 9
_INSERT = "INSERT INTO events (seq, ts, run, actor, kind, version, correlation, payload, hash) VALUES "


@functools.lru_cache(maxsize=ROWS_PER_STATEMENT)
def insert_sql(rows: int) -> str:
    """The INSERT of ``rows`` rows in one statement."""
    return _INSERT + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * rows)


INSERT_ONE_SQL = insert_sql(1)
LAST_ROW_SQL = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"

class LogFileMovedError(OSError):
    """The log file at the store's path is no longer the file the writer opened (the cause of a `StoreWriteError`)."""


def normalised_sql(sql: str) -> str:
    """SQL text compared without regard to case, line breaks or runs of spaces."""
    return " ".join(sql.split()).casefold()


_GUARDS = {"events": TRIGGERS, "snapshots": SNAPSHOT_TRIGGERS}


class SqliteReader:
    """The reading connection of an SQLite log (a sqlite-utils `Database`)."""

    checks_storage = True
    reads_ahead = False
    walks_indexes = True

    def __init__(self, location: LogLocation, db: sqlite_utils.Database) -> None:
        self.location = location
        self.db = db
        self._path = location.display

    def fetch(self, sql: str, params: Any, doing: str) -> list[Any]:
        return fetch_all(self.db.conn, sql, params, self._path, doing)

    def table_exists(self, name: str) -> bool:
        return bool(self.fetch("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,),
                               f"looking for the {name} table"))

    def structure_problems(self, table: str) -> list[str]:
        rows = self.fetch("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'", (),
                          "listing its triggers")
        triggers = {name: (on, sql) for name, on, sql in rows}
        problems = []
        for name, body in _GUARDS[table].items():
            if name not in triggers:
                problems.append(_missing(table, name))
                continue
            on, sql = triggers[name]
            if on != table or type(sql) is not str or normalised_sql(sql) != normalised_sql(f"CREATE TRIGGER {name} {body}"):
                problems.append(_replaced(table, name))
        return problems

    def damage(self, limit: int) -> list[str]:
        found = [str(row[0]) for row in self.fetch(f"PRAGMA quick_check({int(limit)})", (), "checking the file")]
        return [] if found == ["ok"] else [" ".join(problem.split()) for problem in found]

    def is_text(self, column: str) -> str:
        return f"typeof({column}) = 'text'"

    def has_value(self, column: str, value: str) -> bool:
        return bool(self.fetch(f"SELECT 1 FROM events WHERE {column} = ? LIMIT 1", [value], f"looking up a {column}"))

    def payload_value(self, field: str, *, flag: bool = False) -> str:
        return f"CASE WHEN json_valid(payload) THEN json_extract(payload, '$.{field}') END"  # true is 1 already

    def wait_for_commit(self, after_seq: int, timeout: float) -> None:
        time.sleep(timeout)  # SQLite has no notifications: followers poll

    def close(self) -> None:
        self.db.conn.close()


def _missing(table: str, name: str) -> str:
    if table == "events":
        return f"append-only trigger {name} is missing"
    return f"append-only trigger {name} of the snapshots table is missing or replaced"


def _replaced(table: str, name: str) -> str:
    if table == "events":
        return (f"append-only trigger {name} was replaced: its SQL is not actorlog's, so it may no longer refuse "
                f"{name.rpartition('_')[2].upper()} on events")
    return f"append-only trigger {name} of the snapshots table is missing or replaced"


class SqliteWriter:
    """The writer thread's connection to an SQLite log file."""

    retries_lost_commits = False

    def __init__(
        self, location: LogLocation, *, synchronous: str, busy_timeout: float, max_log_bytes: int | None
    ) -> None:
        assert location.path is not None
        self.location = location
        self._path: Path = location.path
        self._absolute = os.path.abspath(location.path)  # the writer must find the file it opened even after a chdir
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._max_log_bytes = max_log_bytes
        self._conn: sqlite3.Connection | None = None
        self._identity: tuple[int, int] | None = None
        self._rows_per_statement = 1

    def open(self) -> int:
        conn = connect(self._path, readonly=False, busy_timeout=self._busy_timeout)
        try:
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            if self._max_log_bytes is not None:
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count = {max(1, self._max_log_bytes // page_size)}").fetchall()
            last = int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
        except BaseException:
            conn.close()
            raise
        self._identity = self._file_identity()
        self._rows_per_statement = max(1, min(ROWS_PER_STATEMENT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // _COLUMNS))
        self._conn = conn
        return last

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            status = os.stat(self._absolute)
        except OSError:
            return None
        return (status.st_dev, status.st_ino)

    def check(self) -> None:
        """Raise if the log file was removed or replaced since the writer opened it.

        SQLite would go on writing to the open file, so commits would "succeed" into a file
        that no one can open again (removed) or that is no longer the log at this path.
        """
        if self._file_identity() != self._identity:
            raise LogFileMovedError(
                f"the file was removed, renamed or replaced after the store opened it, so events committed "
                f"now would not be in {str(self._path)!r}"
            )

    def begin(self) -> tuple[int, str]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        last = conn.execute(LAST_ROW_SQL).fetchone()
        return (int(last[0]), str(last[1])) if last is not None else (0, "")

    def begin_insert(self) -> tuple[int, str]:
        return self.begin()

    def insert(self, flat: list[Any]) -> None:
        """Insert rows as multi-row statements (executemany over a many-row INSERT costs about a
        third less per row than over a one-row INSERT), the rows left over as one more statement."""
        conn = self._connection()
        per = self._rows_per_statement
        group = _COLUMNS * per
        whole = len(flat) - len(flat) % group
        if whole:
            conn.executemany(insert_sql(per), [flat[i : i + group] for i in range(0, whole, group)])
        if whole < len(flat):
            conn.execute(insert_sql((len(flat) - whole) // _COLUMNS), flat[whole:])

    def stage(self, rows: list[PendingRow]) -> None:
        return None  # nothing to gain: the lock is the file's, held by one process at a time anyway

    def insert_chained(self, previous: str, seq: int, rows: list[PendingRow], staged: None) -> tuple[str, int]:
        previous, seq, flat = chain_rows(previous, seq, rows)
        self.insert(flat)
        return previous, seq

    def insert_snapshot(self, projection: str, version: int, position: int, run: str, created_at: float,
                        state: str) -> None:
        conn = self._connection()
        conn.execute(SNAPSHOTS_DDL)
        for ddl in SNAPSHOT_TRIGGERS_DDL:
            conn.execute(ddl)
        conn.execute(INSERT_SNAPSHOT_SQL, (projection, version, position, run, created_at, state))

    def commit(self, last_seq: int) -> None:
        self._connection().execute("COMMIT")

    def rollback(self) -> None:
        conn = self._conn
        if conn is not None and conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    def is_disconnect(self, exc: BaseException) -> bool:
        return False

    def landed(self, last_seq: int, last_hash: str) -> bool:
        raise NotImplementedError("an SQLite commit is never ambiguous")

    def after_failure(self, exc: BaseException) -> None:
        """After the log file was moved: copy every committed frame from the -wal file into the
        file the connection still holds, and empty the -wal file.

        SQLite finds a log's -wal by name. Left full, it would hold this log's committed events
        apart from the renamed file, and lend them to whatever file is put at the path next.
        """
        if not isinstance(exc, LogFileMovedError) or self._conn is None:
            return
        try:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            logger.warning("event log %r: could not empty the -wal file after the log was moved", str(self._path),
                           exc_info=True)

    def describe(self, exc: BaseException) -> str:
        if self._max_log_bytes is not None and "full" in str(exc):
            return f"{exc} (this store's max_log_bytes is {self._max_log_bytes:,})"
        return str(exc)

    def advice(self) -> str:
        return "Fix the cause (disk space, permissions, a lock held by another process) and open the log again"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.OperationalError("the write connection is not open")
        return self._conn
