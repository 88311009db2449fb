"""Rebuilding projections by folding the log (streamed in chunks: memory stays flat)."""

from __future__ import annotations

import os

from actorlog.replay.errors import DEFAULT_RECENT, ErrorStatistics, ErrorStatisticsSnapshot
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


def _fold(store: EventStore, run: str | None, until_seq: int | None, recent: int) -> ErrorStatisticsSnapshot:
    projection = ErrorStatistics()
    for record in store.events(run=run, to_seq=until_seq, kinds=ErrorStatistics.kinds):
        projection.apply(record)
    return projection.snapshot(recent)
