"""The two connections a log's backend provides: one for reading, one for the writer.

`EventStore`, the writer thread, the readers, `verify`, snapshots and ``tail --follow`` go
through these and nothing else, so nothing above ``store/`` knows whether a log is an
SQLite file or a PostgreSQL schema. SQL passed to `ReadConnection.fetch` uses ``?``
placeholders and the SQL both backends share (the events table, its columns, ``max``,
``count``, ``GROUP BY``); anything dialect-specific is a method here.
"""

from __future__ import annotations

from typing import Any, Protocol

from actorlog.store.location import LogLocation
from actorlog.store.rows import PendingRow
from actorlog.store.schema import open_database


class ReadConnection(Protocol):
    """A reading connection to one log. Used under the `EventStore`'s read lock (one thread at a time)."""

    location: LogLocation
    checks_storage: bool
    """Whether `damage` runs a check of the storage itself (SQLite's quick_check; PostgreSQL checks its own)."""
    reads_ahead: bool
    """Whether paged reads fetch the next page on a thread of their own while the caller works
    on this one (PostgreSQL, whose server then works meanwhile; not SQLite, which reads in-process)."""
    walks_indexes: bool
    """Whether ``min(col) WHERE col > ?`` is one index probe for run, actor and kind (SQLite's
    B-trees), so their distinct values are walked one probe each; not on PostgreSQL, whose bloom
    indexes hold no order, where they are read in one scan."""

    def fetch(self, sql: str, params: Any, doing: str) -> list[Any]:
        """Rows of a query (``?`` placeholders); errors become store errors naming the log and ``doing``."""
        ...

    def table_exists(self, name: str) -> bool:
        """Whether the log has table ``name`` (the ``snapshots`` table exists once a snapshot was stored)."""
        ...

    def structure_problems(self, table: str) -> list[str]:
        """What is wrong with ``table``'s append-only guards (triggers missing, replaced or disabled)
        and its column types; [] when they are actorlog's own."""
        ...

    def damage(self, limit: int) -> list[str]:
        """What the storage engine's own check finds wrong (at most ``limit``); [] when intact."""
        ...

    def has_value(self, column: str, value: str) -> bool:
        """Whether any event holds ``value`` in ``column`` (run, actor or kind; the caller checked
        the column's name): found through the column's index."""
        ...

    def is_text(self, column: str) -> str:
        """An SQL condition true where ``column`` holds text (SQLite's columns may hold anything a foreign writer put)."""
        ...

    def payload_value(self, field: str, *, flag: bool = False) -> str:
        """SQL for the payload's top-level ``field`` (NULL where absent or not JSON); with ``flag``, a
        JSON boolean as 1 or 0."""
        ...

    def wait_for_commit(self, after_seq: int, timeout: float) -> None:
        """Return when events after ``after_seq`` may have been committed, or after ``timeout`` seconds."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


class WriteConnection(Protocol):
    """The writer thread's connection: every method is called from that one thread."""

    location: LogLocation
    retries_lost_commits: bool
    """Whether a commit that failed with the connection may have landed, and is resolved by `landed`."""

    def open(self) -> int:
        """Connect; return the log's last seq."""
        ...

    def check(self) -> None:
        """Raise if the log is no longer where the store opened it (before each commit and flush)."""
        ...

    def begin(self) -> tuple[int, str]:
        """Start a transaction holding the log's ordering lock; return its last ``(seq, hash)`` ((0, "") when empty)."""
        ...

    def begin_insert(self) -> tuple[int, str]:
        """`begin` for a transaction that only inserts rows (`insert_chained`) before its
        `commit`: PostgreSQL starts the insert in the same round trip."""
        ...

    def insert(self, flat: list[Any]) -> None:
        """Insert rows given as one flat list of the nine columns' values, in seq order."""
        ...

    def stage(self, rows: list[PendingRow]) -> Any:
        """Prepare ``rows`` for `insert_chained` before the ordering lock is taken (as much as
        does not depend on their seqs); what it returns is handed to `insert_chained`."""
        ...

    def insert_chained(self, previous: str, seq: int, rows: list[PendingRow], staged: Any) -> tuple[str, int]:
        """Number and chain ``rows`` after ``(seq, previous)`` (in place, as `chain_rows` does) and
        insert them, inside the transaction; return the last hash and the last seq."""
        ...

    def insert_snapshot(self, projection: str, version: int, position: int, run: str, created_at: float,
                        state: str) -> None:
        """Store one snapshot (creating the snapshots table and its guards if need be), inside the transaction."""
        ...

    def commit(self, last_seq: int) -> None:
        """Commit; tell followers that events up to ``last_seq`` are there."""
        ...

    def rollback(self) -> None:
        """Roll back the open transaction, if any; never raises."""
        ...

    def is_disconnect(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the connection was lost (so a commit's outcome is unknown)."""
        ...

    def landed(self, last_seq: int, last_hash: str) -> bool:
        """After a lost connection: reconnect, and say whether the row at ``last_seq`` has ``last_hash``
        (the commit landed). Raises when the server cannot be reached."""
        ...

    def after_failure(self, exc: BaseException) -> None:
        """Clean up after the failure that stops writing (SQLite: empty the -wal of a moved file)."""
        ...

    def describe(self, exc: BaseException) -> str:
        """``exc`` in words for a `StoreWriteError` (never a password)."""
        ...

    def advice(self) -> str:
        """What to do about a failed commit, for the error's last words."""
        ...

    def close(self) -> None:
        """Close the connection; never raises."""
        ...


def open_backend(
    location: LogLocation, *, readonly: bool, busy_timeout: float, synchronous: str = "NORMAL",
    max_log_bytes: int | None = None, file_mode: int | None = 0o600, run: str = "",
) -> tuple[ReadConnection, WriteConnection | None]:
    """Open a log's reading connection (creating the log first unless ``readonly``) and make,
    unless ``readonly``, its unopened write connection (the writer thread opens it)."""
    from actorlog.store.sqlite_backend import SqliteReader, SqliteWriter

    if location.path is not None:
        db = open_database(location.path, readonly=readonly, busy_timeout=busy_timeout, file_mode=file_mode)
        writer = None if readonly else SqliteWriter(location, synchronous=synchronous, busy_timeout=busy_timeout,
                                                    max_log_bytes=max_log_bytes)
        return SqliteReader(location, db), writer
    if max_log_bytes is not None:
        raise ValueError(f"max_log_bytes caps an SQLite file; {location.display!r} is a PostgreSQL log "
                         f"(cap its size with the database's own quotas)")
    from actorlog.store.postgres_backend import open_postgres  # psycopg only for PostgreSQL logs

    return open_postgres(location, readonly=readonly, busy_timeout=busy_timeout, synchronous=synchronous, run=run)
