"""Replay of an event log: projections, rebuilt statistics, failure reproduction, and the CLI."""

from actorlog.replay.errors import ErrorStatistics, ErrorStatisticsSnapshot, RecentError
from actorlog.replay.rebuild import rebuild_error_statistics

__all__ = ["ErrorStatistics", "ErrorStatisticsSnapshot", "RecentError", "rebuild_error_statistics"]
