"""The typed shape of the statistics document (``actorlog stats --json``, ``system.statistics()``,
``rebuild(log).document()``): TypedDicts, so ``document["errors"]["total_errors"]`` is an
``int`` to a type checker and the document stays a plain JSON-ready dict at run time."""

from __future__ import annotations

from typing import TypedDict

__all__ = [
    "ErrorsDocument",
    "HistogramDocument",
    "MetricsDocument",
    "PluginDocument",
    "RecentErrorDocument",
    "StatisticsDocument",
]


class VersionChangeDocument(TypedDict):
    """One entry of a plugin's version history (``document["plugins"][run][name]["history"]``)."""

    seq: int
    time: float
    change: str
    version: str
    class_path: str


class PluginDocument(TypedDict):
    """One plugin's state (``document["plugins"][run][name]``)."""

    state: str
    version: str
    class_path: str
    restarts: int
    healthy: bool | None
    health_detail: str
    last_health_at: float | None
    run: str
    history: list[VersionChangeDocument]


class RecentErrorDocument(TypedDict):
    """One of the most recent errors (``document["errors"]["recent_errors"]``)."""

    type: str
    message: str
    severity: str
    plugin: str
    time: float
    seq: int | None


class ErrorsDocument(TypedDict):
    """Error statistics (``document["errors"]``)."""

    total_errors: int
    error_types: dict[str, int]
    severity_distribution: dict[str, int]
    errors_by_plugin: dict[str, int]
    recent_errors: list[RecentErrorDocument]


class HistogramDocument(TypedDict):
    """One series' summary (``document["metrics"]["histograms"][label]``); figures are None without points."""

    count: int
    min: float | None
    max: float | None
    avg: float | None
    latest: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    window_seconds: float | None
    as_of: float


class MetricsDocument(TypedDict):
    """Counters, gauges, histogram summaries and the measurements dropped (``document["metrics"]``)."""

    counters: dict[str, float]
    gauges: dict[str, float]
    histograms: dict[str, HistogramDocument]
    dropped: int


class StatisticsDocument(TypedDict):
    """The whole statistics document: as of a time and a seq, plugins by run then name, errors, metrics."""

    as_of: float
    position: int
    plugins: dict[str, dict[str, PluginDocument]]
    errors: ErrorsDocument
    metrics: MetricsDocument
