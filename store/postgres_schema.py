"""The event-log schema on PostgreSQL: one schema per log, with the same tables, columns,
views and guarantees as an SQLite file.

- ``payload`` is ``json``, never ``jsonb``: json keeps the text as written, so the hash chain
  verifies; jsonb rewrites it. Reads take it back as text.
- Append-only: statement triggers refuse UPDATE, DELETE and TRUNCATE on ``events`` (and
  on ``snapshots``), and an INSERT guard refuses rows from a session that does not hold
  the log's ordering lock, so no writer can bypass the order that keeps seq gap-free.
- The ordering lock is the transaction-scoped advisory lock ``(ORDER_LOCK_CLASS,
  hashtext(schema) & 0x7fffffff)``: one per log, it does not conflict with VACUUM.
"""

from __future__ import annotations

from actorlog.store.schema import INDEXED_COLUMNS, LIFECYCLE_KINDS, MEASUREMENT_KINDS, RETRY_KINDS

ORDER_LOCK_CLASS = 1633907826
"""The first key of every log's ordering lock ("actr")."""

CREATE_LOCK_CLASS = 1633907827
"""The first key of the lock held while a log's schema is created (hosts may start at once)."""

ORDER_LOCK_SQL = f"SELECT pg_advisory_xact_lock({ORDER_LOCK_CLASS}, hashtext(%s) & 2147483647)"
CREATE_LOCK_SQL = f"SELECT pg_advisory_xact_lock({CREATE_LOCK_CLASS}, hashtext(%s) & 2147483647)"
FROZEN_HOLDER_SQL = (
    "SELECT a.pid, a.application_name FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
    f"WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {ORDER_LOCK_CLASS}::oid "
    "AND l.objid = (pg_catalog.hashtext(%s) & 2147483647)::oid AND l.objsubid = 2 "
    "AND a.state = 'active' AND a.wait_event = 'ClientRead' "
    "AND a.state_change < pg_catalog.now() - pg_catalog.make_interval(secs => %s)"
)
"""The session holding a log's ordering lock (schema, seconds) if it has kept the server
waiting for its data that long: a writer frozen with its COPY open."""

EVENT_COLUMN_TYPES = {
    "seq": "bigint", "ts": "double precision", "run": "text", "actor": "text", "kind": "text",
    "version": "integer", "correlation": "text", "payload": "json", "hash": "text",
}
"""Each column of ``events`` and its type, as information_schema names it."""

REFUSE_CHANGE_BODY = (
    "BEGIN RAISE EXCEPTION 'actorlog: the event log is append-only, % on % is refused', TG_OP, TG_TABLE_NAME; END"
)
REQUIRE_LOCK_BODY = (
    "BEGIN IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' "
    "AND pid = pg_catalog.pg_backend_pid() AND granted "
    f"AND classid = {ORDER_LOCK_CLASS}::oid AND objid = (pg_catalog.hashtext(TG_TABLE_SCHEMA) & 2147483647)::oid "
    "AND objsubid = 2) THEN RAISE EXCEPTION 'actorlog: INSERT into %.events without the log''s ordering lock is "
    "refused; append through actorlog', TG_TABLE_SCHEMA; END IF; RETURN NULL; END"
)

FUNCTIONS = {"actorlog_refuse_change": REFUSE_CHANGE_BODY, "actorlog_require_order_lock": REQUIRE_LOCK_BODY}

TRIGGERS: dict[str, dict[str, tuple[str, str]]] = {
    "events": {
        "events_refuse_update": ("BEFORE UPDATE", "actorlog_refuse_change"),
        "events_refuse_delete": ("BEFORE DELETE", "actorlog_refuse_change"),
        "events_refuse_truncate": ("BEFORE TRUNCATE", "actorlog_refuse_change"),
        "events_require_order_lock": ("BEFORE INSERT", "actorlog_require_order_lock"),
    },
    "snapshots": {
        "snapshots_no_update": ("BEFORE UPDATE", "actorlog_refuse_change"),
        "snapshots_no_delete": ("BEFORE DELETE", "actorlog_refuse_change"),
        "snapshots_no_truncate": ("BEFORE TRUNCATE", "actorlog_refuse_change"),
    },
}
"""Per table, each guard trigger: when it fires and the function it runs (statement-level)."""


INDEX_METHODS = {
    "ts": "USING brin (ts)",
    "correlation": "(correlation) WHERE correlation IS NOT NULL",
}
"""How the columns SQLite indexes with a plain B-tree are indexed here where it differs, each to
cost less per appended row (each B-tree costs the server about a microsecond a row, a fifth of
its work): times grow with seq, which a BRIN index summarises per block range; a lookup by
correlation names one (``correlation = ?``), so rows without one (every measurement) are left out."""

BLOOM_COLUMNS = ("run", "actor", "kind")
"""Columns indexed by a bloom BRIN index on servers that have one (PostgreSQL 14 and later).

Each holds a few values repeated over millions of rows, so a B-tree on it grows by an entry a
row, which an append pays for (the three cost the server about three microseconds a row, a
third of all it does); a bloom summary of each block range costs an append next to nothing,
and a lookup (``run = ?``, ``kind IN (...)``) reads the block ranges whose summary may hold
the value. Ranges written since the last summary are read whole until a VACUUM summarises
them (`SUMMARISED_EVERY`)."""

BLOOM_METHOD = "USING brin ({column} text_bloom_ops) WITH (pages_per_range = 16)"
"""The bloom BRIN index of one of `BLOOM_COLUMNS` (16 pages, a few hundred rows, per range)."""

SUMMARISED_EVERY = 100_000
"""Rows appended between two autovacuums of ``events``, each of which summarises the BRIN
indexes' new ranges: the default (a fifth of the table) would leave millions of rows of a big
log unsummarised, and BRIN's own ``autosummarize`` queues one request per range in a server-wide
queue of 256, which three bloom indexes overflow within seconds (each lost request logged)."""

BLOOM_SINCE = 140000
"""The first server version (``server_version_num``) with bloom operator classes for BRIN."""


def index_method(column: str, server_version: int) -> str:
    """How ``column`` of ``events`` is indexed on a server of ``server_version``."""
    if column in BLOOM_COLUMNS and server_version >= BLOOM_SINCE:
        return BLOOM_METHOD.format(column=column)
    return INDEX_METHODS.get(column, f"({column})")


def _in(kinds: tuple[str, ...]) -> str:
    return ", ".join(f"'{kind}'" for kind in kinds)


def _field(name: str, cast: str = "", alias: str | None = None, table: str = "") -> str:
    value = f"({table + '.' if table else ''}payload->>'{name}')"
    return f"{value}::{cast} AS {alias or name}" if cast else f"{value} AS {alias or name}"


def _time(column: str = "ts") -> str:
    """The ISO-8601 UTC form of a Unix-seconds column, to the millisecond, digit for digit as the
    SQLite views give it: SQLite turns Unix seconds into a whole number of milliseconds as
    ``(sqlite3_int64)(ts * 1000.0 + 210866760000000.0 + 0.5)`` (its Julian-day epoch), in
    doubles, so the same double arithmetic gives the same millisecond; the seconds and the
    milliseconds are then formatted apart so no further rounding can move a digit."""
    epoch = "210866760000000.0::float8"
    ms = f"(floor(({column} * 1000.0::float8 + {epoch}) + 0.5::float8) - {epoch})"
    return (f"""to_char(to_timestamp(floor({ms} / 1000)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '.' || """
            f"""lpad(({ms} - floor({ms} / 1000) * 1000)::bigint::text, 3, '0') || 'Z' AS time""")


# The same views, columns and rows as an SQLite log's (see actorlog.store.schema.VIEWS), each in seq order.
VIEWS: dict[str, str] = {
    "lifecycle": f"""SELECT seq, ts, {_time()}, run, actor, kind, correlation,
    {_field("plugin")}, {_field("class_path")}, {_field("plugin_version")},
    {_field("healthy", "boolean")}, {_field("detail")}, {_field("reason")}, {_field("restart_count", "bigint")}
FROM events WHERE kind IN ({_in(LIFECYCLE_KINDS)}) ORDER BY seq""",
    "failures": f"""SELECT a.seq, a.ts, {_time("a.ts")}, a.run, a.correlation,
    {_field("plugin", table="a")}, {_field("exc_type", table="a")}, {_field("message", table="a")},
    {_field("severity", table="a")}, {_field("action", table="d")}, {_field("delay", "double precision", table="d")},
    {_field("reason", table="d")}, {_field("failure_seq", "bigint", "raised_seq", table="a")}, d.seq AS decided_seq
FROM events a
LEFT JOIN LATERAL (
    SELECT x.seq, x.payload FROM events x
    WHERE x.correlation IS NOT DISTINCT FROM a.correlation AND x.seq > a.seq AND x.kind = 'recovery.decided'
        AND x.actor = 'errors' AND (x.payload->>'failure_seq') IS NOT DISTINCT FROM (a.payload->>'failure_seq')
    ORDER BY x.seq LIMIT 1
) d ON true
WHERE a.kind = 'failure.assessed' AND a.actor = 'errors' ORDER BY a.seq""",
    "retries": f"""SELECT seq, ts, {_time()}, run, actor, kind, correlation,
    {_field("task")}, coalesce(payload->>'attempt', payload->>'attempts')::bigint AS attempt,
    {_field("delay", "double precision")}, {_field("exc_type")}, {_field("message")}
FROM events WHERE kind IN ({_in(RETRY_KINDS)}) ORDER BY seq""",
    "measurements": f"""SELECT seq, ts, {_time()}, run, actor, kind, correlation,
    CASE kind WHEN 'counter.incremented' THEN 'counter' WHEN 'gauge.set' THEN 'gauge'
        WHEN 'histogram.observed' THEN 'histogram' WHEN 'operation.timed' THEN 'operation' ELSE 'dropped' END
        AS metric_type,
    {_field("name")}, coalesce(payload->>'value', payload->>'count')::double precision AS value,
    {_field("ok", "boolean")}, (payload->'tags') AS tags, {_field("reason")}
FROM events WHERE kind IN ({_in(MEASUREMENT_KINDS)}) ORDER BY seq""",
}


def schema_ddl(schema: str, server_version: int) -> list[str]:
    """Every statement that creates a log in ``schema`` (which must not hold one yet) on a
    server of ``server_version`` (``server_version_num``)."""
    s = f'"{schema}"'
    columns = ", ".join(
        f"{name} {kind}{' PRIMARY KEY' if name == 'seq' else ''}{' NOT NULL' if name not in ('seq', 'correlation') else ''}"
        for name, kind in EVENT_COLUMN_TYPES.items()
    )
    storage = (f" WITH (autovacuum_vacuum_insert_threshold = {SUMMARISED_EVERY}, "
               "autovacuum_vacuum_insert_scale_factor = 0)") if server_version >= BLOOM_SINCE else ""
    statements = [
        f"CREATE TABLE {s}.events ({columns}){storage}",
        f"CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL)",
        f"CREATE TABLE {s}.snapshots (id bigserial PRIMARY KEY, projection text NOT NULL, version integer NOT NULL, "
        "position bigint NOT NULL, run text NOT NULL, created_at double precision NOT NULL, state text NOT NULL)",
    ]
    statements += [f"CREATE INDEX events_by_{column} ON {s}.events {index_method(column, server_version)}"
                   for column in INDEXED_COLUMNS]
    statements += view_ddl(schema)
    statements += [
        f"CREATE FUNCTION {s}.{name}() RETURNS trigger LANGUAGE plpgsql AS $actorlog$ {body} $actorlog$"
        for name, body in FUNCTIONS.items()
    ]
    for table, triggers in TRIGGERS.items():
        statements += [
            f"CREATE TRIGGER {name} {when} ON {s}.{table} FOR EACH STATEMENT EXECUTE FUNCTION {s}.{function}()"
            for name, (when, function) in triggers.items()
        ]
    return statements


def view_ddl(schema: str) -> list[str]:
    """The statements that (re)create the views of the log in ``schema``."""
    s = f'"{schema}"'
    return [f"CREATE VIEW {s}.{name} AS {sql.replace('FROM events', f'FROM {s}.events')}"
            for name, sql in VIEWS.items()]


def views_digest() -> str:
    """What the meta row ``views`` holds: a digest of this version's view definitions, so a writer
    that opens an older log can bring its views up to date (they only read events)."""
    import hashlib

    return hashlib.sha256("\n".join(f"{name}\n{sql}" for name, sql in sorted(VIEWS.items())).encode()).hexdigest()


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel on which a log announces each commit (its last seq)."""
    return f"actorlog_{schema}"
