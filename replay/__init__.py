"""Replay of an event log: projections, rebuilt statistics, failure reproduction, and the CLI."""

from actorlog.replay.errors import ErrorStatistics, ErrorStatisticsSnapshot, RecentError
from actorlog.replay.metrics import Metrics, MetricsSnapshot, Summary, percentile
from actorlog.replay.prometheus import to_prometheus
from actorlog.replay.rebuild import rebuild_error_statistics, rebuild_metrics

__all__ = [
    "ErrorStatistics",
    "ErrorStatisticsSnapshot",
    "Metrics",
    "MetricsSnapshot",
    "RecentError",
    "Summary",
    "percentile",
    "rebuild_error_statistics",
    "rebuild_metrics",
    "to_prometheus",
]
