"""Replay of an event log: projections (pure folds) and the statistics rebuilt from a log.

Failure reproduction (`actorlog.replay.reproduce`) and the command line (`actorlog.replay.cli`)
build plugins and systems, so they sit above the actor system and are imported from their
own modules: importing this package loads nothing of `actorlog.actors`.
"""

from actorlog.replay.documents import StatisticsDocument
from actorlog.replay.errors import ErrorStatistics, ErrorStatisticsSnapshot, RecentError
from actorlog.replay.metrics import Metrics, MetricsSnapshot, Summary, percentile
from actorlog.replay.prometheus import to_prometheus
from actorlog.replay.plugins import PluginState, PluginStates, VersionChange
from actorlog.replay.rebuild import (
    newest_snapshot,
    rebuild,
    rebuild_error_statistics,
    rebuild_metrics,
    statistics_document,
    take_snapshot,
)
from actorlog.replay.statistics import ReplayError, Statistics
from actorlog.replay.story import story
from actorlog.replay.times import format_time, parse_time

__all__ = [
    "PluginState",
    "PluginStates",
    "ReplayError",
    "Statistics",
    "StatisticsDocument",
    "format_time",
    "newest_snapshot",
    "parse_time",
    "rebuild",
    "statistics_document",
    "story",
    "take_snapshot",
    "ErrorStatistics",
    "ErrorStatisticsSnapshot",
    "Metrics",
    "MetricsSnapshot",
    "RecentError",
    "Summary",
    "VersionChange",
    "percentile",
    "rebuild_error_statistics",
    "rebuild_metrics",
    "to_prometheus",
]
