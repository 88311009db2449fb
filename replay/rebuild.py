"""Rebuilding projections by folding the log (streamed in chunks: memory stays flat)."""

from __future__ import annotations

import os

from actorlog.replay.errors import DEFAULT_RECENT, ErrorStatistics, ErrorStatisticsSnapshot
from actorlog.replay.metrics import DEFAULT_MAX_HISTORY, Metrics
from actorlog.store import EventStore


def rebuild_error_statistics(
    log: str | os.PathLike[str] | EventStore,
    *,
    run: str | None = None,
    until_seq: int | None = None,
    recent: int = DEFAULT_RECENT,
) -> ErrorStatisticsSnapshot:
    """Error statistics folded from a log (one run or all, up to a seq), opened read-only if a path."""
    if isinstance(log, EventStore):
        return _fold(log, run, until_seq, recent)
    with EventStore.open_readonly(log) as store:
        return _fold(store, run, until_seq, recent)


def rebuild_metrics(
    log: str | os.PathLike[str] | EventStore,
    *,
    run: str | None = None,
    until_seq: int | None = None,
    max_history: int = DEFAULT_MAX_HISTORY,
) -> Metrics:
    """The metrics projection folded from a log (one run or all, up to a seq), opened read-only if a path.

    Ask it for summaries (``.summary(name, as_of=..., window_seconds=...)``), a snapshot,
    or a Prometheus export (`to_prometheus`).
    """
    if isinstance(log, EventStore):
        return _fold_metrics(log, run, until_seq, max_history)
    with EventStore.open_readonly(log) as store:
        return _fold_metrics(store, run, until_seq, max_history)


def _fold_metrics(store: EventStore, run: str | None, until_seq: int | None, max_history: int) -> Metrics:
    projection = Metrics(max_history)
    for record in store.events(run=run, to_seq=until_seq, kinds=Metrics.kinds):
        projection.apply(record)
    return projection


def _fold(store: EventStore, run: str | None, until_seq: int | None, recent: int) -> ErrorStatisticsSnapshot:
    projection = ErrorStatistics()
    for record in store.events(run=run, to_seq=until_seq, kinds=ErrorStatistics.kinds):
        projection.apply(record)
    return projection.snapshot(recent)
