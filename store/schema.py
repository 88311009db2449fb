"""The event-log schema: creation with sqlite-utils, and the checks made before opening a file.

Nothing here writes to a file that is not already an actorlog log or an empty file.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from actorlog.store.errors import (
    NotAnEventLogError,
    NotWritableError,
    SchemaVersionError,
    StoreError,
    StoreLockedError,
    StoreReadError,
    read_error,
)
from actorlog.store.snapshot_table import SNAPSHOT_TRIGGERS

SCHEMA_VERSION = 1
"""The schema version this code writes and the newest it reads."""

FORMAT_NAME = "actorlog"
SQLITE_HEADER = b"SQLite format 3\x00"

EVENT_COLUMNS = ("seq", "ts", "run", "actor", "kind", "version", "correlation", "payload", "hash")
INDEXED_COLUMNS = ("actor", "kind", "ts", "correlation", "run")

LIFECYCLE_KINDS = (
    "run.started", "run.stopped", "plugin.registered", "plugin.starting", "plugin.started",
    "plugin.health_checked", "plugin.stopping", "plugin.stopped", "plugin.failed", "plugin.restarted", "escalated",
    "plugin.upgrading", "plugin.upgraded", "plugin.upgrade_failed", "plugin.upgrade_refused",
)
RETRY_KINDS = ("retry.scheduled", "task.succeeded", "task.gave_up")
FAILURE_KINDS = ("failure.raised", "failure.assessed", "recovery.decided", *RETRY_KINDS, "escalated")
"""Every kind of the failure family (the ``failures`` view holds one row per assessed failure)."""
MEASUREMENT_KINDS = ("counter.incremented", "gauge.set", "histogram.observed", "operation.timed", "measurements.dropped")


def _in(kinds: tuple[str, ...]) -> str:
    return ", ".join(f"'{kind}'" for kind in kinds)


def _field(name: str, alias: str | None = None, table: str = "") -> str:
    payload = f"{table}.payload" if table else "payload"
    return f"json_extract({payload}, '$.{name}') AS {alias or name}"


def iso_time(column: str = "ts") -> str:
    """SQL for the ISO-8601 UTC form of a Unix-seconds column, to the millisecond: 2026-12-01T16:19:47.123Z."""
    return f"strftime('%Y-%m-%dT%H:%M:%fZ', {column}, 'unixepoch')"


# Every view gives its rows in seq order and has an ISO-8601 UTC `time` beside `ts`. `failures`
# holds one row per failure the error handler assessed (what `actorlog stats` counts), with its
# decision: the first `recovery.decided` of the same correlation after it that names the same failure.
# The order comes from `NOT INDEXED` (SQLite's): each view reads events along the table itself, in
# seq (rowid) order, so `... ORDER BY seq LIMIT n` over a view stops after n rows, and counting a
# view reads no payload. (An ORDER BY inside the view would make SQLite compute every column of
# every row to count them: 1.6 s for a view of 900,000 measurements.)
VIEWS: dict[str, str] = {
    "lifecycle": f"""SELECT seq, ts, {iso_time()} AS time, run, actor, kind, correlation,
    {_field("plugin")}, {_field("class_path")}, {_field("plugin_version")},
    {_field("healthy")}, {_field("detail")}, {_field("reason")}, {_field("restart_count")}
FROM events NOT INDEXED WHERE kind IN ({_in(LIFECYCLE_KINDS)})""",
    "failures": f"""SELECT a.seq, a.ts, {iso_time("a.ts")} AS time, a.run, a.correlation,
    {_field("plugin", table="a")}, {_field("exc_type", table="a")}, {_field("message", table="a")},
    {_field("severity", table="a")}, {_field("action", table="d")}, {_field("delay", table="d")},
    {_field("reason", table="d")}, {_field("failure_seq", "raised_seq", table="a")}, d.seq AS decided_seq
FROM events a NOT INDEXED
LEFT JOIN events d ON d.seq = (
    SELECT x.seq FROM events x
    WHERE x.correlation IS a.correlation AND x.seq > a.seq AND x.kind = 'recovery.decided' AND x.actor = 'errors'
        AND json_extract(x.payload, '$.failure_seq') IS json_extract(a.payload, '$.failure_seq')
    ORDER BY x.seq LIMIT 1
)
WHERE a.kind = 'failure.assessed' AND a.actor = 'errors'""",
    "retries": f"""SELECT seq, ts, {iso_time()} AS time, run, actor, kind, correlation,
    {_field("task")}, coalesce(json_extract(payload, '$.attempt'), json_extract(payload, '$.attempts')) AS attempt,
    {_field("delay")}, {_field("exc_type")}, {_field("message")}
FROM events NOT INDEXED WHERE kind IN ({_in(RETRY_KINDS)})""",
    "measurements": f"""SELECT seq, ts, {iso_time()} AS time, run, actor, kind, correlation,
    CASE kind WHEN 'counter.incremented' THEN 'counter' WHEN 'gauge.set' THEN 'gauge'
        WHEN 'histogram.observed' THEN 'histogram' WHEN 'operation.timed' THEN 'operation' ELSE 'dropped' END
        AS metric_type,
    {_field("name")}, coalesce(json_extract(payload, '$.value'), json_extract(payload, '$.count')) AS value,
    {_field("ok")}, {_field("tags")}, {_field("reason")}
FROM events NOT INDEXED WHERE kind IN ({_in(MEASUREMENT_KINDS)})""",
}
"""The views, as plain SQL (``CREATE VIEW name AS <sql>``)."""


def view_sql(name: str) -> str:
    """The statement that creates view ``name``, exactly as SQLite keeps it in sqlite_master."""
    return f'CREATE VIEW "{name}" AS {VIEWS[name]}'


TRIGGERS: dict[str, str] = {
    "events_refuse_update": "BEFORE UPDATE ON events BEGIN "
    "SELECT RAISE(ABORT, 'actorlog: the event log is append-only, UPDATE on events is refused'); END",
    "events_refuse_delete": "BEFORE DELETE ON events BEGIN "
    "SELECT RAISE(ABORT, 'actorlog: the event log is append-only, DELETE on events is refused'); END",
}


def connect(path: Path, *, readonly: bool, busy_timeout: float) -> sqlite3.Connection:
    """Open a connection in autocommit mode (transactions are explicit).

    A read-only connection to a log in a directory this process cannot write, with no
    ``-wal`` or ``-shm`` file beside it (a log closed cleanly, then archived or shared
    read-only), is opened as immutable: SQLite could not create the ``-shm`` file it
    otherwise needs, and nobody can be writing it, since a writer would have created them.
    """
    if readonly:
        target, uri = path.resolve().as_uri() + "?mode=ro", True
        if not _directory_writable(path) and not _wal_file(path, "wal").exists() and not _wal_file(path, "shm").exists():
            target += "&immutable=1"
    else:
        target, uri = str(path), False
    try:
        return sqlite3.connect(
            target, uri=uri, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise NotAnEventLogError(f"cannot open event log {str(path)!r}: {exc}") from None


def _wal_file(path: Path, suffix: str) -> Path:
    return path.with_name(f"{path.name}-{suffix}")


def _directory_writable(path: Path) -> bool:
    return os.access(path.parent, os.W_OK | os.X_OK)


_NOT_REGULAR = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def describe_os_error(path: str | os.PathLike[str], exc: OSError) -> str:
    """What an `OSError` from looking at ``path`` means, in words (one line)."""
    if exc.errno == errno.ENAMETOOLONG:
        return (
            f"the path {str(path)!r} is too long: a name in it may be at most 255 bytes and the whole path "
            f"4096 bytes; pass a shorter path"
        )
    if exc.errno == errno.ELOOP:
        return f"the path {str(path)!r} has too many levels of symbolic links (a link loop?)"
    if exc.errno == errno.ENOTDIR:
        return f"the path {str(path)!r} goes through a file as if it were a directory"
    return f"cannot look at {str(path)!r}: {exc.strerror or exc}"


def file_kind(mode: int) -> str | None:
    """What a file that is neither regular nor a directory is ("a named pipe (FIFO)", ...), else None."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return next((name for test, name in _NOT_REGULAR if test(mode)), "not a regular file")


def check_regular_file(path: str | os.PathLike[str], what: str) -> bool:
    """Refuse, without opening it, a path that is not a regular file; return whether it exists.

    A named pipe would block the first read forever, a device is no place for ``what``; a
    path too long for the file system is one line, not an `OSError` traceback. Raises
    `ValueError` (the caller wraps it in its own error).
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ValueError(describe_os_error(path, exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{str(path)!r} is a directory, not {what}")
    kind = file_kind(info.st_mode)
    if kind is not None:
        raise ValueError(f"{str(path)!r} is {kind}, not {what}; pass the path of a regular file")
    return True


def check_path(path: Path, *, readonly: bool) -> bool:
    """Refuse paths that cannot be an event log, or cannot be written when opened for writing;
    return whether the file already exists.

    Nothing is opened before the path is known to be a regular file (or absent, when
    writing creates it): a named pipe would block the header read forever.
    """
    try:
        info: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise NotAnEventLogError(describe_os_error(path, exc)) from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise NotAnEventLogError(f"{str(path)!r} is a directory, not an event log file; pass the path of a .db file")
    if info is not None and (kind := file_kind(info.st_mode)) is not None:
        raise NotAnEventLogError(
            f"{str(path)!r} is {kind}, not an event log; pass the path of a regular file (a .db file, or a new path)"
        )
    for suffix in ("wal", "shm", "journal"):
        _check_companion(path, _wal_file(path, suffix))
    if info is None:
        if readonly:
            raise NotAnEventLogError(f"no event log at {str(path)!r}: the file does not exist")
        if not path.parent.is_dir():
            raise NotAnEventLogError(
                f"cannot create event log {str(path)!r}: directory {str(path.parent)!r} does not exist"
            )
        if not _directory_writable(path):
            raise NotWritableError(
                f"cannot create event log {str(path)!r}: this process cannot create files in directory "
                f"{str(path.parent)!r} (its permissions, or a read-only file system)"
            )
        return False
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise NotAnEventLogError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    if header and header != SQLITE_HEADER:
        raise NotAnEventLogError(
            f"{str(path)!r} is not an SQLite database (its header is not SQLite's); "
            f"pass the path of an actorlog event log, or a new path to create one"
        )
    if not readonly:
        _check_writable(path)
    return True


def _check_companion(path: Path, companion: Path) -> None:
    """SQLite opens ``-wal``, ``-shm`` and ``-journal`` beside the log: refuse one that is not a regular file."""
    try:
        info = os.stat(companion)
    except OSError:
        return  # absent (or a name too long, which the log's own name already was not)
    if stat.S_ISREG(info.st_mode):
        return
    kind = "a directory" if stat.S_ISDIR(info.st_mode) else file_kind(info.st_mode)
    raise NotAnEventLogError(
        f"{str(companion)!r}, beside event log {str(path)!r}, is {kind}: SQLite keeps its "
        f"{companion.name.rpartition('-')[2]} file there and cannot use it; remove it"
    )


def _check_writable(path: Path) -> None:
    if not os.access(path, os.W_OK):
        raise NotWritableError(
            f"event log {str(path)!r} is read-only for this process (its permissions, an immutable file or a "
            f"read-only file system); read it with EventStore.open_readonly (as every actorlog command but "
            f"snapshot does), or make it writable to append to it"
        )
    if not _directory_writable(path) and not (_wal_file(path, "wal").exists() and _wal_file(path, "shm").exists()):
        raise NotWritableError(
            f"event log {str(path)!r} cannot be written: SQLite must create {path.name}-wal and {path.name}-shm "
            f"beside it, and this process cannot create files in directory {str(path.parent)!r}; make the "
            f"directory writable, or read the log with EventStore.open_readonly"
        )


def _cannot_open(path: Path, exc: sqlite3.Error) -> StoreError:
    """The error for a file SQLite cannot open, saying why when the directory is the reason."""
    if "unable to open" in str(exc) and not _directory_writable(path):
        return StoreReadError(
            f"{str(path)!r} cannot be opened: SQLite must create {path.name}-shm beside it to read the changes "
            f"in {path.name}-wal, and this process cannot create files in directory {str(path.parent)!r}; "
            f"copy the log together with its -wal file to a writable directory"
        )
    return NotAnEventLogError(f"{str(path)!r} cannot be opened as an event log: {exc}")


def user_tables(db: sqlite_utils.Database) -> list[str]:
    """Tables in the file, ignoring SQLite's own."""
    return [name for name in db.table_names() if not name.startswith("sqlite_")]


def is_empty(db: sqlite_utils.Database) -> bool:
    """Whether the database holds nothing at all: no table, view, index or trigger, and no
    ``user_version`` or ``application_id`` another application set. Only such a file (or a
    new one) may become an event log."""
    if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        return False
    return not db.execute("PRAGMA user_version").fetchone()[0] and not db.execute("PRAGMA application_id").fetchone()[0]


def _contents(db: sqlite_utils.Database) -> str:
    """What a foreign database holds, briefly: "tables: a, b", "views: v", "user_version 7"."""
    by_type: dict[str, list[str]] = {}
    for kind, name in db.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY rowid"):
        by_type.setdefault(str(kind), []).append(str(name))
    parts = [f"{kind}s: {', '.join(repr(n) if not n.isidentifier() else n for n in names[:10])}"
             + (", ..." if len(names) > 10 else "") for kind, names in by_type.items()]
    if not by_type.get("table"):
        parts.insert(0, "tables: none")
    for pragma in ("user_version", "application_id"):
        value = db.execute(f"PRAGMA {pragma}").fetchone()[0]
        if value:
            parts.append(f"{pragma} {value}")
    return "; ".join(parts)


def check_schema(db: sqlite_utils.Database, path: Path) -> None:
    """Refuse an SQLite file that is not an actorlog log, or one from a newer schema."""
    tables = user_tables(db)
    if "meta" not in tables or "events" not in tables:
        raise NotAnEventLogError(
            f"{str(path)!r} is an SQLite database but not an actorlog event log "
            f"({_contents(db)}); actorlog writes its schema only into a new or empty file: pass a new path to create a log"
        )
    meta = {row["key"]: row["value"] for row in db["meta"].rows}
    if meta.get("format") != FORMAT_NAME:
        raise NotAnEventLogError(
            f"{str(path)!r} has a meta table but it does not mark an actorlog event log; pass a new path"
        )
    try:
        version = int(meta.get("schema_version", ""))
    except ValueError:
        raise NotAnEventLogError(
            f"{str(path)!r} has an unreadable schema_version {meta.get('schema_version')!r} in its meta table"
        ) from None
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{str(path)!r} was written with event-log schema version {version}, but this actorlog "
            f"reads versions up to {SCHEMA_VERSION}; upgrade actorlog to read it"
        )


def create_schema(db: sqlite_utils.Database) -> None:
    """Create the events table, indexes, views, triggers and meta rows, inside the caller's transaction."""
    events = db.table("events")
    events.create(
        {
            "seq": int, "ts": float, "run": str, "actor": str, "kind": str,
            "version": int, "correlation": str, "payload": str, "hash": str,
        },
        pk="seq",
        not_null={"ts", "run", "actor", "kind", "version", "payload", "hash"},
    )
    for column in INDEXED_COLUMNS:
        events.create_index([column], index_name=f"events_by_{column}")
    for name in VIEWS:
        db.execute(view_sql(name))
    for name, body in TRIGGERS.items():
        db.execute(f"CREATE TRIGGER {name} {body}")
    db.table("meta").insert_all(
        [
            {"key": "format", "value": FORMAT_NAME},
            {"key": "schema_version", "value": str(SCHEMA_VERSION)},
            {"key": "created_at", "value": repr(time.time())},
        ],
        pk="key",
    )


def open_database(
    path: Path, *, readonly: bool, busy_timeout: float, file_mode: int | None = 0o600
) -> sqlite_utils.Database:
    """Open (or, when writable and new or empty, create) an event log and check its schema.

    Another process may be creating or writing the same file: locks are waited for up to
    ``busy_timeout`` seconds, then reported as a `StoreLockedError` naming the file. A new
    file is created with ``file_mode`` (less the umask), which SQLite gives its -wal and
    -shm files too; None leaves it to SQLite (0644 less the umask: readable by everyone).
    """
    exists = check_path(path, readonly=readonly)
    if not readonly and not exists and file_mode is not None:
        _create_file(path, file_mode)
    if not readonly and exists:
        _refuse_foreign_file(path, busy_timeout)
    conn = connect(path, readonly=readonly, busy_timeout=busy_timeout)
    db = sqlite_utils.Database(conn)
    deadline = time.monotonic() + busy_timeout
    try:
        while True:
            try:
                _prepare(db, path, readonly=readonly)
                break
            except sqlite3.OperationalError as exc:
                # Switching to WAL takes an exclusive lock and does not wait on SQLite's busy handler.
                if not _is_locked(exc):
                    raise _cannot_open(path, exc) from None
                if time.monotonic() >= deadline:
                    raise StoreLockedError(
                        f"event log {str(path)!r} stayed locked by another connection for more than "
                        f"{busy_timeout:g} s while opening it; retry later or pass a larger busy_timeout"
                    ) from None
                time.sleep(0.01)
        try:
            check_schema(db, path)
        except sqlite3.Error as exc:
            raise read_error(path, exc, "reading its schema") from exc
        if not readonly:  # only once the file is known to be an actorlog log
            try:
                _upgrade_views(db)
                _upgrade_snapshot_triggers(db)
            except sqlite3.OperationalError as exc:
                if _is_locked(exc):
                    raise StoreLockedError(
                        f"event log {str(path)!r} stayed locked by another connection for more than "
                        f"{busy_timeout:g} s while bringing its views and triggers up to date; retry later"
                    ) from None
                raise _cannot_open(path, exc) from None
    except BaseException:
        conn.close()
        raise
    return db


def _refuse_foreign_file(path: Path, busy_timeout: float) -> None:
    """`check_log_file`'s refusals, before a writable connection opens an existing file that
    has a ``-wal`` or ``-journal`` beside it.

    Opening another program's database for writing would already change it then (SQLite merges
    its ``-wal`` into it, or rolls back the transaction its hot journal holds), so what the
    file is has to be read through a read-only connection first. Without either file, the
    writable open changes nothing before it refuses (and leaves nothing behind, which a
    read-only connection to a WAL database would: the ``-wal`` and ``-shm`` it made). A file that
    could not be read for another reason (locked, say) is left to the writable open, which reports it.
    """
    if not _wal_file(path, "wal").exists() and not _wal_file(path, "journal").exists():
        return
    try:
        check_log_file(path, busy_timeout=busy_timeout)
    except (StoreReadError, StoreLockedError):
        pass


JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")
"""The first bytes of an SQLite rollback journal's header."""


def _hot_journal(path: Path, exc: sqlite3.Error) -> NotAnEventLogError | None:
    """The refusal of a file whose hot rollback journal a read-only connection may not roll
    back: no event log has one (logs are kept in WAL mode), so it is another program's database.

    Except when the journal says the database was empty before its transaction: a log whose
    creation was cut off (switching a new file to WAL goes through a rollback journal) has such
    a journal, and rolling it back leaves an empty file, so nothing anyone committed is lost.
    """
    if getattr(exc, "sqlite_errorname", "") != "SQLITE_READONLY_ROLLBACK":
        return None
    try:
        with open(_wal_file(path, "journal"), "rb") as journal:
            header = journal.read(20)
    except OSError:
        header = b""
    if header[:8] == JOURNAL_MAGIC and len(header) == 20 and int.from_bytes(header[16:20], "big") == 0:
        return None  # the database held nothing before: the writable open rolls it back to empty
    return NotAnEventLogError(
        f"{str(path)!r} is another program's database, not an actorlog event log: it has a rollback "
        f"journal ({_wal_file(path, 'journal').name}) of a transaction left unfinished, which no event log "
        f"has; leave it to the program that wrote it and pass a new path"
    )


def check_log_file(path: Path, *, busy_timeout: float = 5.0) -> None:
    """Refuse what `open_database` would refuse for writing, without creating or changing anything.

    For a command that has something to say before it opens the log (``actorlog demo``
    prints a header): a path that is no regular file, a file that is not SQLite, a
    database of another application, a log of a newer schema. A new path, an empty file
    and an existing log pass.
    """
    if not check_path(path, readonly=False) or path.stat().st_size == 0:
        return
    conn = connect(path, readonly=True, busy_timeout=busy_timeout)
    try:
        db = sqlite_utils.Database(conn)
        try:
            if not is_empty(db):
                check_schema(db, path)
        except sqlite3.OperationalError as exc:
            raise _hot_journal(path, exc) or read_error(path, exc, "reading its schema") from None
        except sqlite3.DatabaseError as exc:
            raise NotAnEventLogError(f"{str(path)!r} cannot be read as an SQLite database: {exc}") from None
    finally:
        conn.close()


def _create_file(path: Path, mode: int) -> None:
    """Create the empty file a new log starts as, with ``mode`` (SQLite then writes it as a new database)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    except FileExistsError:
        pass  # another process created it meanwhile: its mode stands


def _prepare(db: sqlite_utils.Database, path: Path, *, readonly: bool) -> None:
    try:
        empty = is_empty(db)
    except sqlite3.OperationalError:
        raise
    except sqlite3.DatabaseError as exc:
        raise NotAnEventLogError(f"{str(path)!r} cannot be read as an SQLite database: {exc}") from None
    if not empty:
        return
    if readonly:
        raise NotAnEventLogError(f"{str(path)!r} is an empty SQLite database, not an actorlog event log")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("BEGIN IMMEDIATE")
    try:
        if is_empty(db):  # another process may have created it meanwhile
            create_schema(db)
        db.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise


def _stale_views(db: sqlite_utils.Database) -> list[str]:
    kept = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view'").fetchall())
    return [name for name in VIEWS if kept.get(name) != view_sql(name)]


def _bring_up_to_date(
    db: sqlite_utils.Database, outdated: Callable[[sqlite_utils.Database], list[str]], mend: Callable[[str], object]
) -> None:
    """``mend`` each name ``outdated`` lists, in one write transaction; listed again once it is
    held, since another writer may have done it meanwhile. Nothing is written when nothing is outdated."""
    if not outdated(db):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for name in outdated(db):
            mend(name)
        db.execute("COMMIT")
    except BaseException:
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise


def _upgrade_views(db: sqlite_utils.Database) -> None:
    """Bring a log's views to this version's definitions (the events stay untouched: views only
    read them), so an older log gets the ordered views with `time` the first time a writer opens it."""

    def recreate(name: str) -> None:
        db.execute(f'DROP VIEW IF EXISTS "{name}"')
        db.execute(view_sql(name))

    _bring_up_to_date(db, _stale_views, recreate)


def _missing_snapshot_triggers(db: sqlite_utils.Database) -> list[str]:
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'snapshots'").fetchall():
        return []
    kept = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()}
    return [name for name in SNAPSHOT_TRIGGERS if name not in kept]


def _upgrade_snapshot_triggers(db: sqlite_utils.Database) -> None:
    """Give the snapshots table of a log from before snapshots were chained its append-only
    triggers, as `_upgrade_views` does for views. Only missing ones are added: a trigger that is
    there but not actorlog's is left for `verify` to name."""
    _bring_up_to_date(db, _missing_snapshot_triggers,
                      lambda name: db.execute(f"CREATE TRIGGER {name} {SNAPSHOT_TRIGGERS[name]}"))


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    message = str(exc).lower()
    return "locked" in message or "busy" in message
