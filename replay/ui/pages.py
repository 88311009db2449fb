"""The audit UI's own pages: timelines of a correlation or a run, and charts over time.

Each page reads the log through Datasette's read-only connection, orders events by seq, and
hands the browser a JSON document that ``static/actorlog.js`` draws with Observable Plot.
What a page shows is bounded (``LIMIT``s below), so it answers quickly on a log of millions
of events; a page that shows part says so and links to the rest.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from actorlog.replay.metrics import percentile
from actorlog.store.schema import LIFECYCLE_KINDS, MEASUREMENT_KINDS

TIMELINE_LIMIT = 2000
"""Events one timeline page shows; the rest is on the next page (``?after=SEQ``)."""
CHART_LIMIT = 20_000
"""Events a restarts or errors chart counts (the newest ones)."""
POINTS_LIMIT = 2000
"""Points a metric chart shows by default (the newest ones; ``?points=N`` for more)."""
METRIC_NAMES_FROM = 20_000
"""The metrics listed on the charts page are those of the newest this many measurements."""
QUANTILE_BINS = 40
TIME_LIMIT_MS = 10_000
PAYLOAD_CHARS = 4000

_MEASUREMENTS = ", ".join(f"'{k}'" for k in MEASUREMENT_KINDS)
_DECISIONS = ("recovery.decided",)
_RETRIES = ("retry.scheduled", "task.succeeded")
_FAILURES = ("failure.raised", "failure.assessed", "plugin.failed", "escalated", "task.gave_up")
_MESSAGES = ("message.received", "message.refused")


class Rows(Protocol):
    """What Datasette's ``Database.execute`` answers: rows that index by column name."""

    @property
    def rows(self) -> Sequence[Any]: ...


class ReadOnlyDatabase(Protocol):
    """The part of Datasette's ``Database`` the pages use."""

    async def execute(self, sql: str, params: Any = None, *, custom_time_limit: int | None = None) -> Any: ...


def iso(ts: float) -> str:
    """``ts`` (Unix seconds) as ISO 8601 UTC to the millisecond, as the views show it."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def category(kind: str) -> str:
    """How the timeline marks an event: failure, decision, retry, lifecycle, message, measurement or other."""
    if kind in _FAILURES:
        return "failure"
    if kind in _DECISIONS:
        return "decision"
    if kind in _RETRIES:
        return "retry"
    if kind in LIFECYCLE_KINDS:
        return "lifecycle"
    if kind in _MESSAGES:
        return "message"
    if kind in MEASUREMENT_KINDS:
        return "measurement"
    return "other"


def summary(kind: str, payload: Mapping[str, Any]) -> str:
    """One line saying what the event says."""
    def get(name: str) -> str:
        value = payload.get(name)
        return "" if value is None else str(value)

    if kind in ("failure.raised", "task.gave_up"):
        return f"{get('exc_type')}: {get('message')}"
    if kind == "failure.assessed":
        return f"assessed {get('severity')}: {get('exc_type')}"
    if kind == "recovery.decided":
        delay = payload.get("delay") or 0
        return f"decided {get('action')}" + (f" after {delay:.3g} s" if delay else "") + (
            f": {get('reason')}" if payload.get("reason") else "")
    if kind == "retry.scheduled":
        return f"retry {get('task')} (attempt {get('attempt')}) in {float(payload.get('delay') or 0):.3g} s"
    if kind == "task.succeeded":
        return f"{get('task')} succeeded after {get('attempts')} attempt(s)"
    if kind in _MESSAGES:
        message = payload.get("message")
        tag = message.get("kind") if isinstance(message, dict) else None
        return f"{get('sender')} → {get('recipient')}: {tag or ''}".rstrip(": ")
    if kind in MEASUREMENT_KINDS:
        return f"{get('name')} = {get('value') or get('count')}"
    for name in ("plugin", "reason", "task", "name"):
        if payload.get(name) is not None:
            return f"{kind} {get(name)}"
    return kind


def _event(row: Any) -> dict[str, Any]:
    try:
        payload = json.loads(row["payload"])
    except (TypeError, ValueError):
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    text = json.dumps(payload, indent=2, ensure_ascii=False, default=str)
    return {
        "seq": row["seq"], "ts": row["ts"], "time": iso(row["ts"]), "run": row["run"], "actor": row["actor"],
        "kind": row["kind"], "correlation": row["correlation"], "category": category(row["kind"]),
        "summary": summary(row["kind"], payload),
        "traceback": payload.get("traceback") if isinstance(payload.get("traceback"), str) else None,
        "payload": text if len(text) <= PAYLOAD_CHARS else text[:PAYLOAD_CHARS] + "\n…",
    }


async def timeline(db: ReadOnlyDatabase, *, correlation: str | None = None, run: str | None = None,
                   after: int = 0) -> dict[str, Any]:
    """The events of one correlation (every kind) or one run (all but measurements), in order."""
    params: dict[str, Any] = {"key": correlation if correlation is not None else run, "after": after}
    if correlation is not None:
        source, where = "events", "correlation = :key"
    else:  # in seq order from the run's first event (found by the run index): a page stops early
        source = "events NOT INDEXED"
        where = (f"seq >= (SELECT min(seq) FROM events WHERE run = :key) AND run = :key "
                 f"AND kind NOT IN ({_MEASUREMENTS})")
    result = await db.execute(
        f"SELECT seq, ts, run, actor, kind, correlation, payload FROM {source} WHERE {where} AND seq > :after "
        f"ORDER BY seq LIMIT {TIMELINE_LIMIT + 1}", params, custom_time_limit=TIME_LIMIT_MS,
    )
    rows = list(result.rows)
    more = len(rows) > TIMELINE_LIMIT
    events = [_event(row) for row in rows[:TIMELINE_LIMIT]]
    actors: list[str] = []
    for event in events:
        if event["actor"] not in actors:
            actors.append(event["actor"])
    return {
        "events": events, "actors": actors, "more_after": events[-1]["seq"] if more else None,
        "runs": sorted({e["run"] for e in events}), "failures": sum(e["kind"] == "failure.raised" for e in events),
    }


async def counted_events(db: ReadOnlyDatabase, kind: str, group: str, run: str | None, actor: str) -> list[dict[str, Any]]:
    """The newest `CHART_LIMIT` events of ``kind`` written by ``actor`` (one run, or all): time and group."""
    where = "kind = :kind AND actor = :actor" + (" AND run = :run" if run else "")
    result = await db.execute(
        f"SELECT ts, json_extract(payload, '$.{group}') AS grp FROM events WHERE {where} "
        f"ORDER BY seq DESC LIMIT {CHART_LIMIT}", {"kind": kind, "actor": actor, "run": run},
        custom_time_limit=TIME_LIMIT_MS,
    )
    return [{"ts": row["ts"], "group": row["grp"] or "?"} for row in reversed(list(result.rows))]


async def metric_names(db: ReadOnlyDatabase) -> list[tuple[str, str]]:
    """(name, metric type) of the metrics among the newest `METRIC_NAMES_FROM` measurements."""
    result = await db.execute(
        "SELECT DISTINCT name, kind FROM (SELECT json_extract(payload, '$.name') AS name, kind FROM events NOT INDEXED "
        f"WHERE kind IN ('counter.incremented', 'gauge.set', 'histogram.observed', 'operation.timed') "
        f"ORDER BY seq DESC LIMIT {METRIC_NAMES_FROM}) ORDER BY name",
        custom_time_limit=TIME_LIMIT_MS,
    )
    return [(row["name"], row["kind"].split(".")[0]) for row in result.rows if isinstance(row["name"], str)]


def _tags_label(tags: Any) -> str:
    if not isinstance(tags, str) or tags in ("", "{}"):
        return ""
    try:
        parsed = json.loads(tags)
    except ValueError:
        return tags
    return ",".join(f"{k}={v}" for k, v in sorted(parsed.items())) if isinstance(parsed, dict) else tags


def quantile_lines(points: Iterable[Mapping[str, Any]], bins: int = QUANTILE_BINS) -> list[dict[str, Any]]:
    """p50/p95/p99 of the points in each of ``bins`` equal time bins: three lines over time."""
    ordered = sorted(points, key=lambda p: p["ts"])
    if not ordered:
        return []
    start, end = ordered[0]["ts"], ordered[-1]["ts"]
    width = (end - start) / bins or 1.0
    grouped: dict[int, list[float]] = defaultdict(list)
    for point in ordered:
        grouped[min(bins - 1, int((point["ts"] - start) / width))].append(point["value"])
    lines = []
    for index in sorted(grouped):
        values = sorted(grouped[index])
        middle = start + (index + 0.5) * width
        for label, q in (("p50", 50), ("p95", 95), ("p99", 99)):
            lines.append({"ts": middle, "time": iso(middle), "quantile": label, "value": percentile(values, q)})
    return lines


async def metric_series(db: ReadOnlyDatabase, name: str, run: str | None, points: int) -> dict[str, Any]:
    """The newest ``points`` measurements of ``name`` (one run, or all), and for timed operations
    and histograms their p50/p95/p99 over time."""
    where = ("kind IN ('counter.incremented', 'gauge.set', 'histogram.observed', 'operation.timed') "
             "AND json_extract(payload, '$.name') = :name" + (" AND run = :run" if run else ""))
    result = await db.execute(
        f"SELECT seq, ts, kind, json_extract(payload, '$.value') AS value, json_extract(payload, '$.tags') AS tags "
        f"FROM events NOT INDEXED WHERE {where} ORDER BY seq DESC LIMIT {points + 1}",
        {"name": name, "run": run}, custom_time_limit=TIME_LIMIT_MS,
    )
    rows = list(result.rows)
    more = len(rows) > points
    series = []
    for row in reversed(rows[:points]):
        value = row["value"]
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        label = _tags_label(row["tags"])
        series.append({"seq": row["seq"], "ts": row["ts"], "time": iso(row["ts"]), "value": value,
                       "series": name + (f"{{{label}}}" if label else "")})
    kinds = {row["kind"] for row in rows}
    distribution = bool(kinds & {"operation.timed", "histogram.observed"})
    return {
        "name": name, "points": series, "quantiles": quantile_lines(series) if distribution else [],
        "unit": "seconds" if "operation.timed" in kinds else "", "more": more,
        "kinds": sorted(kinds),
    }

