"""The PostgreSQL backend: a log in one schema of a database, shared by many writer processes.

Each group commit runs at READ COMMITTED and takes the log's advisory ordering lock, then
reads the last ``(seq, hash)`` and numbers and chains its rows after it: seq stays global
and gap-free, and readers that follow ``seq > last`` never miss a row committed out of
order. Rows go in with COPY; the commit announces its last seq with NOTIFY, which
``tail --follow`` and other followers LISTEN for.

A connection lost during COMMIT leaves its outcome unknown: the writer reconnects and
compares the stored hash at the batch's last seq with the hash it computed (which covers
the seq, the content and the row before), and writes the batch again only if it is not
there. A writer frozen while holding the lock is ended by the server after
``hold_timeout`` seconds (``idle_in_transaction_session_timeout``, ``statement_timeout``
and TCP timeouts on its session), so it cannot stall the other hosts for longer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from actorlog.store.errors import (
    MissingDependencyError,
    NotAnEventLogError,
    SchemaVersionError,
    StoreClosedError,
    StoreError,
    StoreLockedError,
    StoreReadError,
    one_line,
)
from actorlog.store.location import LogLocation
from actorlog.store.postgres_copy import OpenCopy
from actorlog.store.postgres_rows import chain_lines, stage
from actorlog.store.postgres_schema import (
    CREATE_LOCK_SQL,
    EVENT_COLUMN_TYPES,
    FROZEN_HOLDER_SQL,
    FUNCTIONS,
    ORDER_LOCK_SQL,
    TRIGGERS,
    VIEWS,
    notify_channel,
    schema_ddl,
    view_ddl,
    views_digest,
)
from actorlog.store.rows import PendingRow
from actorlog.store.schema import FORMAT_NAME, SCHEMA_VERSION

logger = logging.getLogger(__name__)

T = TypeVar("T")

INSTALL_HINT = "pip install 'actorlog[postgres]'"
CONNECT_TIMEOUT = 10
"""Seconds to wait for the server when connecting."""

_COLUMNS = "seq, ts, run, actor, kind, version, correlation, payload, hash"
COPY_CHUNK_ROWS = 256
"""Rows per piece of a group commit's COPY data (about 80 KB of measurements)."""


TRIGGER_TYPES = {"BEFORE INSERT": 2 | 4, "BEFORE DELETE": 2 | 8, "BEFORE UPDATE": 2 | 16, "BEFORE TRUNCATE": 2 | 32}
"""pg_trigger.tgtype of each guard: BEFORE (2) and its event, once per statement (no ROW bit, 1)."""


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise MissingDependencyError(
            f"a postgresql:// event log needs psycopg, which is not installed: {INSTALL_HINT}"
        ) from None
    return psycopg


def _sql(sql: str) -> str:
    """The shared SQL dialect's ``?`` placeholders as psycopg's ``%s`` (a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _message(location: LogLocation, exc: BaseException) -> str:
    """One line about a server error that never shows the password."""
    text = one_line(" ".join(str(exc).split()))
    password = _password(location.conninfo)
    return text.replace(password, "***") if password else text


def _password(conninfo: str) -> str:
    parts = urlsplit(conninfo)
    return unquote(parts.password) if parts.password else ""


def connect(location: LogLocation, *, purpose: str, run: str = "", timeouts: dict[str, str] | None = None) -> Any:
    """An autocommit connection to the log's server with actorlog's session settings: the
    schema on the search path, json read back as text (byte for byte), and an
    ``application_name`` naming the run, so ``pg_locks`` shows who holds the lock."""
    psycopg = _psycopg()
    options = f"-c search_path={location.schema}"
    for name, value in (timeouts or {}).items():
        options += f" -c {name}={value}"
    try:
        conn = psycopg.connect(
            # UTF-8 whatever the database's or the environment's default: the writer sends COPY text it
            # encoded itself, which must reach the server as the bytes the chain hashed
            location.conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT, options=options, client_encoding="UTF8",
            application_name=f"actorlog {purpose} {run}".strip()[:63],
            keepalives=1, keepalives_idle=max(1, int(location.hold_timeout)), keepalives_interval=1,
            keepalives_count=3, tcp_user_timeout=int(location.hold_timeout * 1000),
        )
    except psycopg.Error as exc:
        raise StoreReadError(
            f"cannot connect to event log {location.display!r}: {_message(location, exc)}; check that the server "
            f"is running and reachable and that the URL's user, database and password are right"
        ) from None
    from psycopg.types.string import TextBinaryLoader, TextLoader

    for name in ("json", "jsonb"):  # jsonb only in a log someone altered: read as text, it fails the chain
        conn.adapters.register_loader(name, TextLoader)
        conn.adapters.register_loader(name, TextBinaryLoader)
    return conn


def _read_meta(conn: Any, location: LogLocation) -> dict[str, str] | None:
    """The log's meta rows, None when the schema holds no log; refuses a foreign schema."""
    tables = {row[0] for row in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (location.schema,))}
    if not tables:
        return None
    if "meta" not in tables or "events" not in tables:
        raise NotAnEventLogError(
            f"schema {location.schema!r} of {location.display!r} holds tables ({', '.join(sorted(tables)[:10])}) but "
            f"no actorlog event log; pass another schema with ?schema=NAME"
        )
    meta = {str(k): str(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    if meta.get("format") != FORMAT_NAME:
        raise NotAnEventLogError(f"schema {location.schema!r} of {location.display!r} has a meta table but it does "
                                 f"not mark an actorlog event log; pass another schema with ?schema=NAME")
    try:
        version = int(meta.get("schema_version", ""))
    except ValueError:
        raise NotAnEventLogError(f"event log {location.display!r} has an unreadable schema_version "
                                 f"{meta.get('schema_version')!r}") from None
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"event log {location.display!r} was written with event-log schema version {version}, but this "
            f"actorlog reads versions up to {SCHEMA_VERSION}; upgrade actorlog to read it"
        )
    return meta


def _create(conn: Any, location: LogLocation, meta: dict[str, str] | None) -> None:
    """Create the log's schema unless it exists (``meta``: what the log's meta table held when
    opened), safely when several hosts start at once, and bring the views of an existing log
    up to this version's (events are never touched)."""
    if meta is not None and meta.get("views") == views_digest():
        return  # a writer's role needs no CREATE privilege once the log exists
    schema = f'"{location.schema}"'
    with conn.transaction():
        conn.execute(CREATE_LOCK_SQL, (location.schema,))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        meta = _read_meta(conn, location)  # again, under the lock: another host may have done it
        if meta is None:
            for statement in schema_ddl(location.schema, conn.info.server_version):
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {schema}.meta (key, value) VALUES (%s, %s), (%s, %s), (%s, %s), (%s, %s)",
                ("format", FORMAT_NAME, "schema_version", str(SCHEMA_VERSION), "created_at", repr(time.time()),
                 "views", views_digest()),
            )
        elif meta.get("views") != views_digest():
            for name in VIEWS:
                conn.execute(f"DROP VIEW IF EXISTS {schema}.{name}")
            for statement in view_ddl(location.schema):
                conn.execute(statement)
            conn.execute(f"INSERT INTO {schema}.meta (key, value) VALUES ('views', %s) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (views_digest(),))


def open_postgres(
    location: LogLocation, *, readonly: bool, busy_timeout: float, synchronous: str, run: str
) -> tuple[PostgresReader, PostgresWriter | None]:
    """Open the reading connection (creating the schema first when writing) and, unless
    ``readonly``, the writer's connection (opened by the writer thread)."""
    psycopg = _psycopg()
    conn = connect(location, purpose="reader", run=run)
    try:
        meta = _read_meta(conn, location)
        if not readonly:
            try:
                _create(conn, location, meta)  # afterwards the log exists
            except psycopg.errors.InsufficientPrivilege as exc:
                if meta is not None:  # only the views are older: they stay as they are
                    logger.warning("event log %r: its views are from an older actorlog and this role may not "
                                   "replace them (%s); the owner of schema %s updates them when it opens the log",
                                   location.display, _message(location, exc), location.schema)
                else:
                    raise NotAnEventLogError(
                        f"cannot create event log {location.display!r}: {_message(location, exc)}; create it once as a "
                        f"role that may, or grant this one CREATE on the database"
                    ) from None
        elif meta is None:
            raise NotAnEventLogError(f"no event log at {location.display!r}: schema {location.schema!r} does not "
                                     f"hold one")
        conn.execute("SET default_transaction_read_only = on")
    except psycopg.Error as exc:
        conn.close()
        raise StoreReadError(f"cannot open event log {location.display!r}: {_message(location, exc)}") from None
    except BaseException:
        conn.close()
        raise
    reader = PostgresReader(location, conn)
    writer = None if readonly else PostgresWriter(location, busy_timeout=busy_timeout, synchronous=synchronous,
                                                  run=run)
    return reader, writer


class PostgresReader:
    """The reading connection of a PostgreSQL log, and its LISTEN connection for followers."""

    checks_storage = False
    reads_ahead = True
    walks_indexes = False

    def __init__(self, location: LogLocation, conn: Any) -> None:
        self.location = location
        self._conn = conn
        self._listener: Any = None
        self._channel = notify_channel(location.schema)
        self._psycopg = _psycopg()
        self._closed = False

    def fetch(self, sql: str, params: Any, doing: str) -> list[Any]:
        # binary results load about a third faster (floats exact either way); prepared, since a
        # reader repeats the same few statements (keyset pages)
        return self._reading(
            lambda conn: list(conn.execute(_sql(sql), tuple(params), prepare=True, binary=True).fetchall()), doing)

    def has_value(self, column: str, value: str) -> bool:
        def probe(conn: Any) -> bool:
            # The planner takes a run's rows for spread over the whole log and scans it from the
            # start for the first one; a run is one stretch, often the newest, which the bloom
            # index finds at once (0.06 ms against 75-110 ms on 1,000,000 rows)
            with conn.transaction():
                conn.execute("SET LOCAL enable_seqscan = off")
                return conn.execute(f"SELECT 1 FROM events WHERE {column} = %s LIMIT 1", (value,)).fetchone() is not None

        return self._reading(probe, f"looking up a {column}")

    def _reading(self, read: Callable[[Any], T], doing: str) -> T:
        """``read(connection)``, on a new connection once if the connection was lost; its errors
        become store errors naming the log and ``doing``."""
        psycopg = self._psycopg
        for attempt in (1, 2):
            if self._closed:  # a page read ahead for a store closed meanwhile: no new connection
                raise StoreClosedError(f"event log {self.location.display!r} was closed while {doing}")
            try:
                if self._conn.closed:
                    self._conn = connect(self.location, purpose="reader")
                    self._conn.execute("SET default_transaction_read_only = on")
                return read(self._conn)
            except psycopg.OperationalError as exc:
                if attempt == 1 and self._conn.broken:
                    logger.warning("event log %r: the connection was lost while %s; reconnecting",
                                   self.location.display, doing)
                    continue  # a reader that reconnects re-reads by seq: nothing skipped, nothing repeated
                raise self._error(exc, doing) from None
            except psycopg.Error as exc:
                raise self._error(exc, doing) from None
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _error(self, exc: BaseException, doing: str) -> StoreError:
        psycopg = self._psycopg
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return StoreLockedError(f"event log {self.location.display!r} stayed locked while {doing}; retry later")
        return StoreReadError(f"event log {self.location.display!r} could not be read while {doing}: "
                              f"{_message(self.location, exc)}")

    def table_exists(self, name: str) -> bool:
        return self.fetch("SELECT to_regclass(?) IS NOT NULL", (f'"{self.location.schema}".{name}',),
                          f"looking for the {name} table")[0][0] is True

    def structure_problems(self, table: str) -> list[str]:
        schema = self.location.schema
        found = {
            str(name): (str(enabled), str(function), int(kind))
            for name, enabled, function, kind in self.fetch(
                "SELECT t.tgname, t.tgenabled, p.proname, t.tgtype FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_proc p ON p.oid = t.tgfoid WHERE n.nspname = ? AND c.relname = ? AND NOT t.tgisinternal",
                (schema, table), "listing its triggers",
            )
        }
        bodies = {str(name): str(body) for name, body in self.fetch(
            "SELECT p.proname, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = ?", (schema,), "reading its trigger functions")}
        problems = []
        for name, (when, function) in TRIGGERS[table].items():
            guard = f"append-only trigger {name}" if table == "events" else \
                f"append-only trigger {name} of the snapshots table"
            if name not in found:
                problems.append(f"{guard} is missing")
            elif (found[name][1] != function or found[name][2] != TRIGGER_TYPES[when]
                  or " ".join(bodies.get(function, "").split()) != FUNCTIONS[function]):
                problems.append(f"{guard} was replaced: it is not actorlog's (its function or when it fires), so it "
                                f"may no longer refuse "
                                f"{when.split()[1]} on {table}")
            elif found[name][0] == "D":
                problems.append(f"{guard} is disabled (ALTER TABLE ... DISABLE TRIGGER), so {when.split()[1]} on "
                                f"{table} is no longer refused")
        if table == "events":
            types = {str(column): str(kind) for column, kind in self.fetch(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? "
                "AND table_name = 'events'", (schema,), "reading its columns")}
            for column, kind in EVENT_COLUMN_TYPES.items():
                if types.get(column) != kind:
                    problems.append(
                        f"column events.{column} is {types.get(column, 'missing')}, not {kind}"
                        + ("; jsonb rewrites the payload text, so the hash chain no longer verifies"
                           if types.get(column) == "jsonb" else "")
                    )
        return problems

    def damage(self, limit: int) -> list[str]:
        return []  # PostgreSQL checks its own pages (data checksums, WAL); nothing to scan from here

    def is_text(self, column: str) -> str:
        return "TRUE"  # its columns are typed

    def payload_value(self, field: str, *, flag: bool = False) -> str:
        if flag:
            return f"CASE (payload->>'{field}') WHEN 'true' THEN 1 WHEN 'false' THEN 0 END"
        return f"(payload->>'{field}')"

    def wait_for_commit(self, after_seq: int, timeout: float) -> None:
        """Wait for a commit's NOTIFY; after (re)connecting the listener, first look whether
        rows came meanwhile. Without LISTEN (a standby, a pooler), wait ``timeout``: polling."""
        psycopg = self._psycopg
        try:
            if self._listener is None or self._listener.closed:
                self._listener = connect(self.location, purpose="follower")
                self._listener.execute(f'LISTEN "{self._channel}"')
                newest = self.fetch("SELECT max(seq) FROM events", (), "following")[0][0]
                if (newest or 0) > after_seq:  # committed before LISTEN began: no notification will say so
                    return
            for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                break
        except (psycopg.Error, StoreError) as exc:
            logger.warning("event log %r: cannot LISTEN for commits (%s); polling instead", self.location.display,
                           _message(self.location, exc))
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            time.sleep(timeout)

    def close(self) -> None:
        self._closed = True
        for conn in (self._listener, self._conn):
            if conn is not None:
                conn.close()


class PostgresWriter:
    """The writer thread's connection to a PostgreSQL log."""

    retries_lost_commits = True

    def __init__(self, location: LogLocation, *, busy_timeout: float, synchronous: str, run: str) -> None:
        self.location = location
        self._run = run
        self._psycopg = _psycopg()
        hold = location.hold_timeout
        self._hold = hold
        self._lock_wait = busy_timeout + hold  # a waiter outlasts a frozen holder, ended after hold_timeout
        self._timeouts = {
            "lock_timeout": f"{int(self._lock_wait * 1000)}ms",
            "idle_in_transaction_session_timeout": f"{int(hold * 1000)}ms",
            "statement_timeout": f"{int((busy_timeout + 2 * hold) * 1000)}ms",
            "synchronous_commit": "off" if synchronous == "OFF" else "on",
        }
        self._conn: Any = None
        self._copy: OpenCopy | None = None  # the group commit's COPY, from `begin_insert` or `insert_chained` to `commit`
        self._channel = notify_channel(location.schema)  # a plain identifier: safe inline
        self._lock_sql = (
            # each wait for the ordering lock lasts up to hold_timeout, then a holder frozen with its
            # COPY open is ended (`_waiting_for_the_lock`); other locks are waited for as long as before
            f"BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL lock_timeout = '{int(hold * 1000)}ms'; "
            + ORDER_LOCK_SQL.replace("%s", f"'{location.schema}'")
            + f"; SET LOCAL lock_timeout = '{int(self._lock_wait * 1000)}ms'"
        )
        self._begin_sql = self._lock_sql + "; SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"

    def open(self) -> int:
        self._conn = connect(self.location, purpose="writer", run=self._run, timeouts=self._timeouts)
        return int(self._conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])

    def check(self) -> None:
        return None

    def begin(self) -> tuple[int, str]:
        # one round trip: at REPEATABLE READ the snapshot would predate the lock, so READ COMMITTED;
        # the last row is read once the lock is held
        cursor = self._waiting_for_the_lock(lambda: self._open().execute(self._begin_sql))
        while cursor.nextset():  # BEGIN's result, SET's, the lock's, SET's, then the last row's
            pass
        last = cursor.fetchone()
        return (int(last[0]), str(last[1])) if last is not None else (0, "")

    def begin_insert(self) -> tuple[int, str]:
        # `begin` and the start of the COPY in one query string, one round trip
        self._copy = copy = self._waiting_for_the_lock(
            lambda: OpenCopy(self._open(), _COLUMNS, self._channel, before=self._begin_sql + "; ")
        )
        last = copy.results_before[-1]  # BEGIN's, SET's, the lock's, SET's, then the last row's (text)
        return (int(last.get_value(0, 0)), last.get_value(0, 1).decode()) if last.ntuples else (0, "")

    def _waiting_for_the_lock(self, start: Callable[[], T]) -> T:
        """``start`` (a transaction that takes the ordering lock first), tried again while another
        session holds the lock, for up to ``busy_timeout + hold_timeout`` seconds in all.

        Each try waits at most ``hold_timeout`` (the session's ``lock_timeout``); after each, a
        holder that has kept the server waiting for its COPY data that long is ended. The server
        ends a session frozen between two statements itself (``idle_in_transaction_session_timeout``),
        but none of its timeouts fires while it waits for COPY data, so a writer frozen there
        would hold the lock, and stall every host, until it woke.
        """
        deadline = time.monotonic() + self._lock_wait
        while True:
            try:
                return start()
            except self._psycopg.errors.LockNotAvailable:
                self.rollback()
                if time.monotonic() >= deadline:
                    raise
                self._end_frozen_holder()

    def _end_frozen_holder(self) -> None:
        psycopg = self._psycopg
        try:
            frozen = self._conn.execute(FROZEN_HOLDER_SQL, (self.location.schema, self._hold)).fetchall()
            for pid, name in frozen:
                logger.warning("event log %r: ending session %d (%s), which held the ordering lock for over %g s "
                               "while the server waited for its COPY data (a frozen writer)",
                               self.location.display, pid, name, self._hold)
                self._conn.execute("SELECT pg_catalog.pg_terminate_backend(%s)", (pid,))
        except psycopg.OperationalError:
            raise  # this connection lost: the caller's to handle
        except psycopg.Error as exc:  # not allowed to end it (another role): wait on, up to the deadline
            logger.warning("event log %r: could not end a frozen holder of the ordering lock: %s",
                           self.location.display, _message(self.location, exc))

    def _open(self) -> Any:
        conn = self._conn
        if conn is None or conn.closed:
            raise self._psycopg.OperationalError("the connection to the server is closed")
        return conn

    def insert(self, flat: list[Any]) -> None:
        with self._conn.cursor() as cursor, cursor.copy(f"COPY events ({_COLUMNS}) FROM STDIN") as copy:
            write = copy.write_row  # psycopg's own (C) formatting of COPY's text rows
            for start in range(0, len(flat), 9):
                write(flat[start : start + 9])

    def stage(self, rows: list[PendingRow]) -> list[bytes | None]:
        return stage(rows)

    def insert_chained(self, previous: str, seq: int, rows: list[PendingRow],
                       staged: list[bytes | None]) -> tuple[str, int]:
        copy = self._copy
        if copy is None:  # after `begin` (a snapshot's transaction): a COPY of its own, committed with it
            self._copy = copy = OpenCopy(self._open(), _COLUMNS, self._channel)
        # sent a few hundred rows at a time: the server inserts while the next ones are chained
        for start in range(0, len(rows), COPY_CHUNK_ROWS):
            end = start + COPY_CHUNK_ROWS
            previous, seq, lines = chain_lines(previous, seq, rows[start:end], staged[start:end])
            copy.write(lines)
        return previous, seq

    def insert_snapshot(self, projection: str, version: int, position: int, run: str, created_at: float,
                        state: str) -> None:
        self._conn.execute(
            "INSERT INTO snapshots (projection, version, position, run, created_at, state) VALUES (%s, %s, %s, %s, %s, %s)",
            (projection, version, position, run, created_at, state),
        )

    def commit(self, last_seq: int) -> None:
        copy, self._copy = self._copy, None
        if copy is not None:
            copy.finish()  # the COPY's query string ends with the notify and the COMMIT
            return
        self._conn.execute(f"SELECT pg_notify('{self._channel}', '{int(last_seq)}'); COMMIT")  # one round trip

    def rollback(self) -> None:
        copy, self._copy = self._copy, None
        if copy is not None:
            copy.abort()
        conn = self._conn
        if conn is None or conn.closed:
            return
        try:
            conn.execute("ROLLBACK")
        except self._psycopg.Error:
            pass

    def is_disconnect(self, exc: BaseException) -> bool:
        # the server ended the session (57P: an administrator, a shutdown; 25P03: idle in transaction
        # too long, an InternalError to psycopg; 08: the connection failed), though psycopg may not
        # have seen the socket close yet
        state = getattr(exc, "sqlstate", None) or ""
        if isinstance(exc, self._psycopg.Error) and state.startswith(("57P", "08", "25P03")):
            return True
        if not isinstance(exc, self._psycopg.OperationalError):
            return False
        conn = self._conn
        return conn is None or conn.broken or conn.closed

    def landed(self, last_seq: int, last_hash: str) -> bool:
        self._copy = None
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._conn = connect(self.location, purpose="writer", run=self._run, timeouts=self._timeouts)
        if last_seq == 0:
            return False
        # under the ordering lock: the lost session may still be committing (its server side did
        # not see the connection go), and a retry chained before it finished would repeat the batch
        cursor = self._waiting_for_the_lock(
            lambda: self._open().execute(f"{self._lock_sql}; SELECT hash FROM events WHERE seq = {int(last_seq)}")
        )
        while cursor.nextset():
            pass
        row = cursor.fetchone()
        self._conn.execute("ROLLBACK")
        return row is not None and row[0] == last_hash

    def after_failure(self, exc: BaseException) -> None:
        return None

    def describe(self, exc: BaseException) -> str:
        return _message(self.location, exc)

    def advice(self) -> str:
        return ("Check that the PostgreSQL server is running and reachable, and that this role may INSERT into "
                f"{self.location.schema}.events, then open the log again")

    def close(self) -> None:
        self._copy = None  # closing the connection abandons it: nothing of it was committed
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection must not mask the real error
                pass
            self._conn = None
