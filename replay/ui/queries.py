"""What the audit UI tells Datasette about an event log: its metadata and its canned queries.

Plain data (no Datasette import), so the same SQL can be measured and tested on its own.
Every query reads only; each one that lists events orders them by seq and gives an ISO-8601
UTC ``time`` beside ``ts``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from actorlog.store.schema import FORMAT_NAME, iso_time

TIME = iso_time()
MEASURED = "'counter.incremented', 'gauge.set', 'histogram.observed', 'operation.timed'"

CANNED_QUERIES: dict[str, dict[str, Any]] = {
    "story": {
        "title": "A failure's story",
        "description": "Every event of one correlation, in order: the message, the failure, its assessment, "
                       "the decision, the retries. The correlation column of any view links here too.",
        "sql": f"SELECT seq, {TIME} AS time, run, actor, kind, payload FROM events "
               f"WHERE correlation = :correlation ORDER BY seq",
    },
    "failures_by_type": {
        "title": "Failures by type and plugin",
        "description": "One count per failure the error handler assessed: the same numbers as `actorlog stats`.",
        "sql": "SELECT exc_type, plugin, count(*) AS failures, min(time) AS first, max(time) AS last "
               "FROM failures GROUP BY exc_type, plugin ORDER BY failures DESC, exc_type, plugin",
    },
    "restarts_over_time": {
        "title": "Restarts per plugin over time",
        "description": "Plugin restarts per plugin and minute (UTC).",
        "sql": "SELECT plugin, strftime('%Y-%m-%dT%H:%M:00Z', ts, 'unixepoch') AS minute, count(*) AS restarts "
               "FROM lifecycle WHERE kind = 'plugin.restarted' GROUP BY plugin, minute ORDER BY minute, plugin",
    },
    "runs": {
        "title": "Runs",
        "description": "Every run of the actor system in this log: when it started and stopped, and how.",
        "sql": f"""SELECT s.run, {iso_time("s.ts")} AS started, {iso_time("e.ts")} AS stopped,
    json_extract(e.payload, '$.clean') AS clean, json_extract(e.payload, '$.reason') AS reason,
    json_extract(s.payload, '$.host') AS host, json_extract(s.payload, '$.pid') AS pid
FROM events s LEFT JOIN events e ON e.run = s.run AND e.kind = 'run.stopped' AND e.actor = 'system'
WHERE s.kind = 'run.started' AND s.actor = 'system' ORDER BY s.seq""",
    },
    "slowest_operations": {
        "title": "Slowest operations",
        "description": "The 100 longest timed operations (seconds), slowest first.",
        "sql": f"SELECT seq, {TIME} AS time, run, correlation, json_extract(payload, '$.name') AS name, "
               f"json_extract(payload, '$.value') AS seconds, json_extract(payload, '$.ok') AS ok, "
               f"json_extract(payload, '$.tags') AS tags FROM events WHERE kind = 'operation.timed' "
               f"ORDER BY seconds DESC LIMIT 100",
    },
    "metric_series": {
        "title": "A metric's series",
        "description": "The newest 1,000 measurements of one metric name, newest first "
                       "(as a chart: /-/actorlog/metric/NAME).",
        "sql": f"SELECT seq, {TIME} AS time, run, kind, json_extract(payload, '$.value') AS value, "
               f"json_extract(payload, '$.ok') AS ok, json_extract(payload, '$.tags') AS tags "
               f"FROM events NOT INDEXED WHERE kind IN ({MEASURED}) AND json_extract(payload, '$.name') = :name "
               f"ORDER BY seq DESC LIMIT 1000",
    },
}
"""Canned queries: name -> Datasette's query options."""

TABLES: dict[str, dict[str, Any]] = {
    "events": {
        "description": "Every event, in one global order (seq). Append-only: triggers refuse UPDATE and DELETE.",
        "columns": {
            "seq": "the global order, gap-free", "ts": "when the fact happened (Unix seconds, UTC)",
            "run": "the actor-system run that wrote it", "actor": "the emitting actor",
            "kind": "the event's tag", "version": "the schema version of that kind",
            "correlation": "ties a message to the failure it caused, its retries and decisions",
            "payload": "the event as JSON", "hash": "chain hash over the previous row's hash and this row",
        },
    },
    "lifecycle": {"sort": "seq", "description": "Runs starting and stopping, plugins registered, started, "
                                                "health-checked, stopped, failed and restarted, escalations; in order."},
    "failures": {"sort": "seq", "description": "One row per failure the error handler assessed (what `actorlog "
                                               "stats` counts), with its severity and the recovery decided for it; "
                                               "in order."},
    "retries": {"sort": "seq", "description": "Retries scheduled, tasks that succeeded (after how many attempts) "
                                              "and tasks that gave up; in order."},
    "measurements": {"sort": "seq", "description": "Counters, gauges, histogram observations and timed "
                                                   "operations; in order."},
    "meta": {"description": "The log's format and schema version."},
}


def metadata(database: str) -> dict[str, Any]:
    """Datasette metadata for the event log served as ``database``."""
    return {
        "title": "actorlog event log",
        "description_html": (
            "An <a href=\"https://pypi.org/project/actorlog/\">actorlog</a> event log, opened read-only. "
            "Timelines: follow a correlation or run link; charts: "
            f"<a href=\"/-/actorlog/charts?db={database}\">restarts, errors and metrics over time</a>."
        ),
        "tables": TABLES,
        "queries": CANNED_QUERIES,
    }



def is_event_log(path: str | Path) -> bool:
    """Whether the SQLite file at ``path`` is an actorlog event log (read-only look at its meta table)."""
    try:
        conn = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return row is not None and row[0] == FORMAT_NAME
