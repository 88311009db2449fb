"""actorlog's Datasette plugin: the audit UI of an event log.

Registered through Datasette's ``datasette`` entry point, so ``datasette serve LOG`` gets it
whenever actorlog is installed with its ``ui`` extra; ``actorlog serve LOG`` opens the log
read-only with it. For every database that is an actorlog event log it adds:

- metadata (descriptions of the table, views and columns) and canned queries (`queries`);
- links: a ``correlation`` cell leads to that correlation's story, a ``run`` cell to the run;
- timeline pages ``/-/actorlog/story/<correlation>`` and ``/-/actorlog/run/<run>``;
- charts ``/-/actorlog/charts`` (restarts and errors by type over time) and
  ``/-/actorlog/metric/<name>`` (a metric's series, with p50/p95/p99 for timed operations),
  drawn with Observable Plot served from this package's static assets (no network).

Pages that take a database name accept ``?db=NAME``; without it, the first event log served.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from typing import Any
from urllib.parse import quote

from datasette import Response, hookimpl
from markupsafe import Markup, escape

from actorlog.replay.ui import pages
from actorlog.replay.ui.queries import is_event_log, metadata

STATIC = {
    "actorlog.js": "text/javascript; charset=utf-8", "actorlog.css": "text/css; charset=utf-8",
    "plot.umd.min.js": "text/javascript; charset=utf-8", "d3.min.js": "text/javascript; charset=utf-8",
    "LICENSE-observablehq-plot.txt": "text/plain; charset=utf-8", "LICENSE-d3.txt": "text/plain; charset=utf-8",
}
"""The package's static assets (``static/``), served at ``/-/actorlog/static/NAME``: the charting
library is vendored with its licence, so no page needs the network."""
LINK_COLUMNS = {"correlation": "story", "run": "run"}


@lru_cache(maxsize=64)
def _is_log(path: str) -> bool:
    return is_event_log(path)


def _logs(datasette: Any) -> list[str]:
    """Names of the served databases that are actorlog event logs, in the order served."""
    return [name for name, db in datasette.databases.items() if db.path and _is_log(str(db.path))]


@hookimpl
def get_metadata(datasette: Any, key: Any, database: Any, table: Any) -> dict[str, Any]:
    return {"databases": {name: metadata(name) for name in _logs(datasette)}}


@hookimpl
def render_cell(value: Any, column: str, table: str | None, database: str, datasette: Any) -> Markup | None:
    page = LINK_COLUMNS.get(column)
    if page is None or not isinstance(value, str) or not value or database not in _logs(datasette):
        return None
    href = f"/-/actorlog/{page}/{quote(value, safe='')}?db={quote(database)}"
    return Markup(f'<a class="actorlog-{page}" href="{escape(href)}">{escape(value)}</a>')


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    return [
        (r"^/-/actorlog/story/(?P<correlation>[^/]+)$", story_page),
        (r"^/-/actorlog/run/(?P<run>[^/]+)$", run_page),
        (r"^/-/actorlog/charts$", charts_page),
        (r"^/-/actorlog/metric/(?P<name>[^/]+)$", metric_page),
        (r"^/-/actorlog/static/(?P<name>[^/]+)$", static_asset),
    ]


@lru_cache(maxsize=len(STATIC))
def _asset(name: str) -> bytes:
    return (files(__name__) / "static" / name).read_bytes()


async def static_asset(request: Any) -> Response:
    """One of the package's static assets. (Served here rather than from Datasette's
    ``/-/static-plugins/`` mount, which refuses the links an editable install makes.)"""
    name = request.url_vars["name"]
    if name not in STATIC:
        return Response.text("not found", status=404)
    return Response(_asset(name), content_type=STATIC[name], headers={"Cache-Control": "max-age=3600"})


def _database(datasette: Any, request: Any) -> tuple[str, Any] | Response:
    logs = _logs(datasette)
    wanted = request.args.get("db") or (logs[0] if logs else None)
    if wanted is None or wanted not in logs:
        served = ", ".join(logs) or "none"
        return Response.html(f"<p>No actorlog event log named {escape(str(wanted))!s} is served "
                             f"(event logs served: {escape(served)!s}).</p>", status=404)
    return wanted, datasette.get_database(wanted)


def _int_arg(request: Any, name: str, default: int, low: int, high: int) -> int | Response:
    text = request.args.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        return Response.html(f"<p>?{name}= must be a whole number from {low} to {high}, got "
                             f"{escape(text)!s}.</p>", status=400)
    return int(text)


async def _render(datasette: Any, request: Any, template: str, context: dict[str, Any]) -> Response:
    context = {
        **context,
        "plugin_static": lambda path: datasette.urls.path(f"/-/actorlog/static/{path}"),
        "to_json": lambda data: Markup(json.dumps(data, default=str).replace("</", "<\\/")),
    }
    return Response.html(await datasette.render_template(template, context, request=request))


async def _timeline_page(datasette: Any, request: Any, *, correlation: str | None, run: str | None) -> Response:
    found = _database(datasette, request)
    if isinstance(found, Response):
        return found
    name, db = found
    after = _int_arg(request, "after", 0, 0, 2**63 - 1)
    if isinstance(after, Response):
        return after
    data = await pages.timeline(db, correlation=correlation, run=run, after=after)
    what = "correlation" if correlation is not None else "run"
    key = correlation if correlation is not None else run
    return await _render(datasette, request, "actorlog_timeline.html", {
        "database": name, "what": what, "key": key, "data": data, "limit": pages.TIMELINE_LIMIT,
        "after": after,
    })


async def story_page(datasette: Any, request: Any) -> Response:
    """``/-/actorlog/story/<correlation>``: one correlation's events on a time axis, by actor."""
    return await _timeline_page(datasette, request, correlation=request.url_vars["correlation"], run=None)


async def run_page(datasette: Any, request: Any) -> Response:
    """``/-/actorlog/run/<run>``: one run's events (all but measurements) on a time axis, by actor."""
    return await _timeline_page(datasette, request, correlation=None, run=request.url_vars["run"])


async def charts_page(datasette: Any, request: Any) -> Response:
    """``/-/actorlog/charts``: restarts over time, errors by type over time, and the metrics to chart."""
    found = _database(datasette, request)
    if isinstance(found, Response):
        return found
    name, db = found
    run = request.args.get("run") or None
    restarts = await pages.counted_events(db, "plugin.restarted", "plugin", run, "supervisor")
    errors = await pages.counted_events(db, "failure.assessed", "exc_type", run, "errors")
    return await _render(datasette, request, "actorlog_charts.html", {
        "database": name, "run": run, "metrics": await pages.metric_names(db), "limit": pages.CHART_LIMIT,
        "restarts": {"events": restarts, "label": "restarts", "empty": "No plugin was restarted."},
        "errors": {"events": errors, "label": "errors", "empty": "No failure was assessed."},
    })


async def metric_page(datasette: Any, request: Any) -> Response:
    """``/-/actorlog/metric/<name>``: a metric's newest points over time (``?points=N``, ``?run=RUN``)."""
    found = _database(datasette, request)
    if isinstance(found, Response):
        return found
    database, db = found
    points = _int_arg(request, "points", pages.POINTS_LIMIT, 1, 100_000)
    if isinstance(points, Response):
        return points
    run = request.args.get("run") or None
    data = await pages.metric_series(db, request.url_vars["name"], run, points)
    return await _render(datasette, request, "actorlog_metric.html", {
        "database": database, "run": run, "data": data, "points": points,
    })
