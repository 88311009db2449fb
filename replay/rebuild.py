"""Rebuilding statistics by folding the log, streamed in chunks so memory stays flat.

A rebuild starts from the newest usable snapshot (same projection version and options,
at or before the requested position) and folds only the events after it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import msgspec

from actorlog.events import ActorlogError
from actorlog.events.errors import shown
from actorlog.replay.documents import StatisticsDocument
from actorlog.replay.errors import DEFAULT_RECENT, ErrorStatistics, ErrorStatisticsSnapshot
from actorlog.replay.metrics import Metrics
from actorlog.replay.statistics import SNAPSHOT_PROJECTION, Progress, ReplayError, Statistics
from actorlog.store import EventRecord, EventStore
from actorlog.store.query import clamp_seq


@contextmanager
def _reading(log: str | os.PathLike[str] | EventStore) -> Iterator[EventStore]:
    if isinstance(log, EventStore):
        yield log
    else:
        with EventStore.open_readonly(log) as store:
            yield store


def rebuild(
    log: str | os.PathLike[str] | EventStore,
    *,
    run: str | None = None,
    until_seq: int | None = None,
    as_of: float | None = None,
    max_history: int | None = None,
    use_snapshots: bool = True,
    progress: Progress | None = None,
) -> Statistics:
    """Plugin states, error statistics and metrics folded from a log.

    ``run`` restricts to one run (default: the whole log); ``until_seq`` stops at a seq;
    ``as_of`` stops at a time (and is where metric windows end). ``max_history`` overrides
    the points kept per series that the log recorded. A path is opened read-only.
    """
    with _reading(log) as store:
        # Fix the end first: events committed while folding belong to a later rebuild.
        end_seq = _last_seq(store, run=run, until_seq=until_seq, as_of=as_of)
        if end_seq is None:
            return Statistics(max_history)
        statistics = None
        if use_snapshots and as_of is None:
            statistics = newest_snapshot(store, run=run, until_seq=end_seq, max_history=max_history)
        if statistics is None:
            statistics = Statistics(max_history)
        _fold(statistics, store, run=run, from_seq=statistics.position + 1, to_seq=end_seq,
              until=as_of, progress=progress)
    return statistics


def _fold(
    statistics: Statistics, store: EventStore, *, run: str | None, from_seq: int, to_seq: int | None,
    until: float | None, progress: Progress | None,
) -> int:
    """Fold the rows after ``from_seq`` along the primary key (see `Statistics.fold_chunks`)."""
    return statistics.fold_chunks(
        store.fold_chunks(run=run, from_seq=from_seq, to_seq=to_seq, until=until), store.codec, progress
    )


def _last_seq(store: EventStore, *, run: str | None, until_seq: int | None, as_of: float | None) -> int | None:
    """The last seq among the selected rows (None when there is none): where the fold ends."""
    clauses, params = ["1 = 1"], []
    if until_seq is not None:
        until_seq = clamp_seq(until_seq)
    for column, op, value in (("run", "=", run), ("seq", "<=", until_seq), ("ts", "<=", as_of)):
        if value is not None:
            clauses.append(f"{column} {op} ?")
            params.append(value)
    rows = store.query(f"SELECT max(seq) FROM events WHERE {' AND '.join(clauses)}", params,
                       doing="finding the end of the log")
    return None if not rows or rows[0][0] is None else int(rows[0][0])


def newest_snapshot(
    store: EventStore, *, run: str | None = None, until_seq: int | None = None, max_history: int | None = None
) -> Statistics | None:
    """The newest snapshot usable for this rebuild, or None. Snapshots of another
    projection version or other options are skipped, never misread."""
    for version, position, state in store.snapshots(SNAPSHOT_PROJECTION, run=run or ""):
        if version != Statistics.version or (until_seq is not None and position > until_seq):
            continue
        try:
            data = msgspec.json.decode(state)
            metrics = data["metrics"]
            if metrics["fixed"] != (max_history is not None) or (
                max_history is not None and metrics["max_history"] != max_history
            ):
                continue
            return Statistics.from_state(data)
        except Exception:  # noqa: BLE001 - a snapshot is only a cache: one that cannot be loaded is skipped
            continue
    return None


def take_snapshot(
    store: EventStore, *, run: str | None = None, max_history: int | None = None, progress: Progress | None = None
) -> int:
    """Fold the log (from the newest snapshot) and store a snapshot of it; returns its position.

    ``store`` must be writable: the snapshot goes through its store actor. Events are untouched.
    ``progress`` is called with the number of events folded, as for `rebuild`.
    """
    statistics = rebuild(store, run=run, max_history=max_history, progress=progress)
    position: int = statistics.position
    store.save_snapshot(
        SNAPSHOT_PROJECTION, Statistics.version, position, msgspec.json.encode(statistics.state()).decode(), run=run or ""
    )
    return position


def rebuild_error_statistics(
    log: str | os.PathLike[str] | EventStore,
    *,
    run: str | None = None,
    until_seq: int | None = None,
    recent: int = DEFAULT_RECENT,
) -> ErrorStatisticsSnapshot:
    """Error statistics folded from a log (one run or all, up to a seq), opened read-only if a path."""
    return _fold_one(log, ErrorStatistics(), run=run, until_seq=until_seq).snapshot(recent)


def rebuild_metrics(
    log: str | os.PathLike[str] | EventStore,
    *,
    run: str | None = None,
    until_seq: int | None = None,
    max_history: int | None = None,
) -> Metrics:
    """The metrics projection folded from a log (one run or all, up to a seq), opened read-only if a path.

    Ask it for summaries (``.summary(name, as_of=..., window_seconds=...)``), a snapshot,
    or a Prometheus export (`to_prometheus`).
    """
    return _fold_one(log, Metrics(max_history), run=run, until_seq=until_seq)


P = TypeVar("P", ErrorStatistics, Metrics)


def _fold_one(log: str | os.PathLike[str] | EventStore, projection: P, *, run: str | None, until_seq: int | None) -> P:
    """Fold one projection over the kinds it reads."""
    with _reading(log) as store:
        for record in store.events(run=run, to_seq=until_seq, kinds=projection.kinds):
            try:
                projection.apply(record)
            except Exception as exc:
                raise ReplayError(record.seq, record.kind, f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    return projection


def statistics_document(log: str | os.PathLike[str] | EventStore, **options: Any) -> StatisticsDocument:
    """``rebuild(log, ...)`` rendered as the ``actorlog stats --json`` document."""
    recent = options.pop("recent", DEFAULT_RECENT)
    window = options.pop("window_seconds", None)
    statistics = rebuild(log, **options)
    document: StatisticsDocument = statistics.document(as_of=options.get("as_of"), recent=recent, window_seconds=window)
    return document
