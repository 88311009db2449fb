"""The statistics a log holds: plugin states, error statistics and metrics, as of any event.

`Statistics` folds every event record into the three projections; `document` renders
the stable JSON shape that ``actorlog stats --json`` prints::

    {"as_of": ..., "position": ...,
     "plugins": {run: {name: {"state", "version", "class_path", "restarts", "healthy", ...}}},
     "errors": {"total_errors", "error_types", "severity_distribution", "errors_by_plugin", "recent_errors"},
     "metrics": {"counters": {...}, "gauges": {...}, "dropped": n,
                 "histograms": {name: {"count", "min", "max", "avg", "latest", "p50", "p95", "p99", "window_seconds", "as_of"}}}}

``as_of`` defaults to the newest time among the events folded, so a finished log always gives
the same document; histogram summaries cover every kept point up to ``as_of`` unless a
window is given. Plugins are keyed by run, then name: a document of one run (a live
system's, or ``--run``) has one key there; a document of a whole log has one per run.
"""

from __future__ import annotations

from typing import Any

import msgspec

from actorlog.replay.errors import DEFAULT_RECENT, ErrorStatistics
from actorlog.replay.metrics import DEFAULT_MAX_HISTORY, Metrics, series_label
from actorlog.replay.plugins import PluginStates
from actorlog.store import EventRecord

SNAPSHOT_PROJECTION = "statistics"
"""The projection name of statistics snapshots in the ``snapshots`` table."""

STATISTICS_VERSION = 2
"""Bumped when a projection's state changes shape: older snapshots are then skipped, never misread."""


class Statistics:
    """All projections behind ``actorlog stats``, folded together in one pass."""

    version = STATISTICS_VERSION

    def __init__(self, max_history: int | None = None) -> None:
        self.plugins = PluginStates()
        self.errors = ErrorStatistics()
        self.metrics = Metrics(max_history)
        self.position = 0
        self.last_ts: float | None = None
        self._route()

    def _route(self) -> None:
        self._routes: dict[str, tuple[Any, ...]] = {}
        for projection in (self.plugins, self.errors, self.metrics):
            for kind in projection.kinds:
                self._routes[kind] = self._routes.get(kind, ()) + (projection,)

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every event kind some projection folds."""
        return tuple(self._routes)

    def apply(self, record: EventRecord) -> None:
        """Fold one event record into whichever projections read its kind."""
        for projection in self._routes.get(record.kind, ()):
            projection.apply(record)
        self.position = record.seq
        # measurements arrive in per-thread batches, not in time order: "now" is the newest time seen
        self.last_ts = record.ts if self.last_ts is None or record.ts > self.last_ts else self.last_ts

    def advance(self, seq: int, newest_ts: float | None) -> None:
        """Move to ``seq`` past events no projection reads, whose newest time was ``newest_ts``:
        the position and "now" of a fold cover every event in its range, read or not."""
        self.position = max(self.position, seq)
        if newest_ts is not None:
            self.last_ts = newest_ts if self.last_ts is None else max(self.last_ts, newest_ts)

    def document(
        self, *, as_of: float | None = None, recent: int = DEFAULT_RECENT, window_seconds: float | None = None
    ) -> dict[str, Any]:
        """The statistics as the stable JSON-ready document."""
        moment = as_of if as_of is not None else (self.last_ts if self.last_ts is not None else 0.0)
        metrics = self.metrics
        snapshot = metrics.snapshot()
        histograms = {}
        for key in metrics.histogram_keys():
            summary = metrics.summary(key[0], dict(key[1]), as_of=moment, window_seconds=window_seconds)
            fields = msgspec.to_builtins(summary)
            del fields["name"], fields["tags"]
            histograms[series_label(key)] = fields
        return {
            "as_of": moment,
            "position": self.position,
            "plugins": self.plugins.snapshot(),
            "errors": msgspec.to_builtins(self.errors.snapshot(recent)),
            "metrics": {
                "counters": snapshot.counters,
                "gauges": snapshot.gauges,
                "histograms": histograms,
                "dropped": snapshot.dropped,
            },
        }

    def state(self) -> dict[str, Any]:
        """Every projection's state, for a snapshot."""
        return {
            "position": self.position, "last_ts": self.last_ts,
            "plugins": self.plugins.state(), "errors": self.errors.state(), "metrics": self.metrics.state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Statistics:
        """Rebuild from a snapshot's state."""
        statistics = cls(int(state["metrics"]["max_history"]))
        statistics.plugins = PluginStates.from_state(state["plugins"])
        statistics.errors = ErrorStatistics.from_state(state["errors"])
        statistics.metrics = Metrics.from_state(state["metrics"])
        statistics.position = int(state["position"])
        statistics.last_ts = state["last_ts"]
        statistics._route()
        return statistics
