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

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import msgspec

from actorlog.events import ActorlogError, Codec
from actorlog.events.errors import shown
from actorlog.replay.documents import HistogramDocument, StatisticsDocument
from actorlog.replay.errors import DEFAULT_RECENT, ErrorStatistics
from actorlog.replay.measurements import decode_view, measurement_folds
from actorlog.replay.metrics import DEFAULT_MAX_HISTORY, Metrics, series_label
from actorlog.replay.plugins import PluginStates
from actorlog.store import EventRecord
from actorlog.store.checkpoints import STORE_ACTOR

Progress = Callable[[int], None]
"""Called with the number of events folded since the last call."""


class ReplayError(ActorlogError, ValueError):
    """An event of the log could not be folded into a projection; the message names its seq and kind."""

    def __init__(self, seq: int, kind: Any, problem: str) -> None:
        super().__init__(f"event seq {seq} (kind {shown(kind)}) could not be replayed: {problem}")
        self.seq = seq
        self.kind = kind
        self.problem = problem


def _chunked(rows: Iterable[tuple[Any, ...]], size: int = 1000) -> Iterator[list[tuple[Any, ...]]]:
    """``rows`` in lists of ``size``."""
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


SNAPSHOT_PROJECTION = "statistics"
"""The projection name of statistics snapshots in the ``snapshots`` table."""

STATISTICS_VERSION = 3
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
        self._folds: dict[str, tuple[Callable[..., None], ...]] = {}
        for projection in (self.plugins, self.errors, self.metrics):
            for kind in projection.kinds:
                self._routes[kind] = self._routes.get(kind, ()) + (projection,)
                self._folds[kind] = self._folds.get(kind, ()) + (projection.fold,)

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

    def fold_rows(
        self, rows: Iterable[tuple[Any, ...]], decode: Callable[..., Any], progress: Progress | None = None
    ) -> int:
        """Fold raw rows ``(seq, ts, run, actor, kind, version, correlation, payload, hash)`` in
        seq order (`EventStore.rows`), decoding only the kinds a projection reads; returns how
        many were read. ``decode`` is a codec's ``decode`` (measurements of that codec's built-in
        types take the fast path of `fold_chunks`)."""
        codec = getattr(decode, "__self__", None)
        return self.fold_chunks(
            _chunked((row[0], row[1], row[2], row[3], row[4], row[5], row[7]) for row in rows),
            codec if isinstance(codec, Codec) else Codec(), progress, decode=decode,
        )

    def fold_chunks(
        self, chunks: Iterable[Sequence[tuple[Any, ...]]], codec: Codec, progress: Progress | None = None,
        *, decode: Callable[..., Any] | None = None,
    ) -> int:
        """Fold chunks of rows ``(seq, ts, run, actor, kind, version, payload)`` in seq order
        (`EventStore.fold_chunks`), decoding only the kinds a projection reads, with no record
        built per event; returns how many rows were read, and calls ``progress`` with the
        length of each chunk.

        Measurements (most of a log) are decoded to views of the fields the metrics read
        (`actorlog.replay.measurements`); every other kind a projection reads goes through
        ``decode`` (the codec's, by default). An event that cannot be decoded or folded
        raises an `ActorlogError` naming its seq.

        The position and "now" cover every row read but the store's own bookkeeping
        (checkpoints, snapshot records): signing a log or snapshotting it changes no statistic.
        """
        decode = codec.decode if decode is None else decode
        routes = self._folds
        # the measurements read through a view: kind -> (view type, version, Metrics method)
        fast = measurement_folds(codec.registry, self.metrics)
        _float = float
        folded = 0
        last_seq, newest = 0, None
        # what `apply` does per record, kept in locals and stored once at the end
        applied_seq, applied_ts = None, self.last_ts
        metrics_seq = 0
        try:
            for chunk in chunks:
                folded += len(chunk)
                for seq, ts, run, actor, kind, version, payload in chunk:
                    if type(ts) is _float:
                        if actor != STORE_ACTOR:
                            last_seq = seq
                            if newest is None or ts > newest:
                                newest = ts
                        view = fast.get(kind)
                        if view is not None and version == view[1]:  # the fast path
                            try:
                                measurement = decode_view(payload)
                            except Exception:  # noqa: BLE001 - decoded again below, by the codec, which names the problem
                                measurement = None
                            if type(measurement) is view[0]:
                                try:
                                    view[2](measurement, ts, run)
                                except ActorlogError:
                                    raise
                                except Exception as exc:
                                    raise ReplayError(seq, kind, f"{type(exc).__name__}: {str(exc)[:300]}") from exc
                                metrics_seq = applied_seq = seq
                                if applied_ts is None or ts > applied_ts:
                                    applied_ts = ts
                                continue
                    elif actor != STORE_ACTOR:
                        last_seq = seq
                    folds = routes.get(kind)
                    if folds is None:
                        continue
                    try:
                        if type(ts) is not _float:  # only a row written by something else than actorlog
                            raise ValueError(f"its time (ts) is {shown(ts)}, not a number")
                        event = decode(kind, version, payload, seq=seq)
                        for fold in folds:
                            fold(kind, event, seq, ts, run, actor)
                    except ActorlogError:
                        raise  # already names the event
                    except Exception as exc:
                        raise ReplayError(seq, kind, f"{type(exc).__name__}: {str(exc)[:300]}") from exc
                    applied_seq = seq
                    if applied_ts is None or ts > applied_ts:
                        applied_ts = ts
                if progress is not None:
                    progress(len(chunk))
        finally:
            if metrics_seq > self.metrics.position:
                self.metrics.position = metrics_seq
            if applied_seq is not None:
                self.position = applied_seq
            self.last_ts = applied_ts
        self.advance(last_seq, newest)
        return folded

    def advance(self, seq: int, newest_ts: float | None) -> None:
        """Move to ``seq`` past events no projection reads, whose newest time was ``newest_ts``:
        the position and "now" of a fold cover every event in its range, read or not."""
        self.position = max(self.position, seq)
        if newest_ts is not None:
            self.last_ts = newest_ts if self.last_ts is None else max(self.last_ts, newest_ts)

    def document(
        self, *, as_of: float | None = None, recent: int = DEFAULT_RECENT, window_seconds: float | None = None
    ) -> StatisticsDocument:
        """The statistics as the stable JSON-ready document (a `StatisticsDocument`)."""
        moment = as_of if as_of is not None else (self.last_ts if self.last_ts is not None else 0.0)
        metrics = self.metrics
        snapshot = metrics.snapshot()
        histograms: dict[str, HistogramDocument] = {}
        for key in metrics.histogram_keys():
            summary = metrics.summary(key[0], dict(key[1]), as_of=moment, window_seconds=window_seconds)
            fields = msgspec.to_builtins(summary)
            del fields["name"], fields["tags"]
            histograms[series_label(key)] = fields
        return {
            "as_of": moment,
            "position": self.position,
            "plugins": self.plugins.snapshot(),  # type: ignore[typeddict-item]  # PluginState as builtins
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
