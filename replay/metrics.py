"""Metrics: a projection folded from the metrics collector's measurement events.

A *series* is a metric name with one set of tags. Counters keep their total, gauges
their latest value, and every series keeps its last ``max_history`` points
``(ts, value)``; a monitored operation (``operation.timed``) is a point of the series
``name`` (its duration) and an increment of the counters ``name.calls`` and
``name.success`` or ``name.errors``. Summaries are computed over a window ending at an
explicit ``as_of`` time, so the same summary comes out live and in replay.

For Prometheus, each run also keeps *cumulative* series (`RunMetrics`): counter totals
(that never go down), gauge values, and a `Histogram` per observed series with bucket
counts, ``count`` and ``sum`` over every observation of the run, whatever ``max_history``
and the window. Their buckets are what the run recorded in ``metrics.configured``.

Percentiles interpolate linearly between the closest ranks (numpy's default): for
sorted values ``v`` and ``0 <= q <= 100``, rank ``r = (n - 1) * q / 100`` and the
result ``v[floor(r)] + (v[ceil(r)] - v[floor(r)]) * (r - floor(r))``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Mapping
from typing import Any

import msgspec

from actorlog.events import (
    MEASUREMENT_KINDS,
    CounterIncremented,
    GaugeSet,
    HistogramObserved,
    MeasurementsDropped,
    MetricsConfigured,
    OperationTimed,
)
from actorlog.store import EventRecord

METRICS_ACTOR = "metrics"
DEFAULT_MAX_HISTORY = 1000
DEFAULT_WINDOW = 60.0

DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
"""Upper bounds of the default histogram buckets, in seconds (Prometheus' own defaults; +Inf is implied)."""

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
"""A metric name with its tags, sorted: the identity of a series."""


def bucket_problem(bounds: object) -> str | None:
    """Why ``bounds`` cannot be histogram bucket bounds, or None when they can: a non-empty
    sequence of finite numbers, strictly increasing (+Inf is always added)."""
    if isinstance(bounds, (str, bytes)) or not isinstance(bounds, (list, tuple)) or not bounds:
        return f"buckets must be a non-empty list of numbers, got {bounds!r}"
    for value in bounds:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"bucket bounds must be finite numbers (+Inf is added), got {value!r}"
    if any(low >= high for low, high in zip(bounds, bounds[1:])):
        return f"bucket bounds must be strictly increasing, got {list(bounds)!r}"
    return None


class Histogram:
    """One series' cumulative histogram: observations per bucket, their count and sum."""

    __slots__ = ("bounds", "counts", "count", "sum", "seconds")

    def __init__(self, bounds: tuple[float, ...], seconds: bool = False) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        """Observations per bucket (not cumulative); the last is above every bound."""
        self.count = 0
        self.sum = 0.0
        self.seconds = seconds
        """Whether the series is a timed operation's durations (its unit is seconds)."""

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # bucket `le` holds values <= its bound
        self.count += 1
        self.sum += value

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations <= it) for every bucket, +Inf last: Prometheus' ``_bucket`` samples."""
        result, running = [], 0
        for bound, count in zip((*self.bounds, math.inf), self.counts):
            running += count
            result.append((bound, running))
        return result


class RunMetrics:
    """One run's cumulative series, as Prometheus exports them."""

    __slots__ = ("buckets", "named_buckets", "counters", "gauges", "histograms")

    def __init__(self) -> None:
        self.buckets = DEFAULT_BUCKETS
        self.named_buckets: dict[str, tuple[float, ...]] = {}
        self.counters: dict[SeriesKey, float] = {}
        self.gauges: dict[SeriesKey, float] = {}
        self.histograms: dict[SeriesKey, Histogram] = {}

    def observe(self, key: SeriesKey, value: float, seconds: bool) -> None:
        histogram = self.histograms.get(key) or self.histogram(key, seconds)
        histogram.seconds = histogram.seconds or seconds
        histogram.observe(value)

    def histogram(self, key: SeriesKey, seconds: bool) -> Histogram:
        """The histogram of a series observed for the first time."""
        histogram = self.histograms[key] = Histogram(self.named_buckets.get(key[0], self.buckets), seconds)
        return histogram

    def count(self, key: SeriesKey, value: float) -> None:
        if value < 0:  # refused at the caller; one in an older log is not exported: a counter never goes down
            return
        counters = self.counters
        counters[key] = counters.get(key, 0.0) + value


def series_key(name: str, tags: Mapping[str, str] | None) -> SeriesKey:
    """The identity of the series ``name`` with ``tags``."""
    return name, tuple(sorted(tags.items())) if tags else ()


def series_label(key: SeriesKey) -> str:
    """A readable name for a series: ``name{tag=value,...}``."""
    name, tags = key
    return name + ("{" + ",".join(f"{k}={v}" for k, v in tags) + "}" if tags else "")


def percentile(ordered: list[float], q: float) -> float:
    """The ``q``-th percentile of already sorted values (linear interpolation)."""
    if not ordered:
        raise ValueError("percentile of no values")
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    if low == high or ordered[low] == ordered[high]:
        return ordered[low]
    fraction = rank - low
    gap = ordered[high] - ordered[low]
    if math.isinf(gap):  # huge values of opposite signs: interpolate without the overflowing difference
        return ordered[low] * (1 - fraction) + ordered[high] * fraction
    return ordered[low] + gap * fraction


def mean(values: list[float]) -> float:
    """The exact mean of finite values, even when their sum overflows a float."""
    try:
        return math.fsum(values) / len(values)
    except OverflowError:
        return math.fsum(value / len(values) for value in values)


def total(values: list[float]) -> float:
    """The sum of values; +/-inf when it overflows a float."""
    try:
        return math.fsum(values)
    except OverflowError:
        return sum(values)


def _latest(points: list[tuple[float, float]]) -> float:
    """The value of the newest point; among equal times, the one recorded last."""
    newest = points[0]
    for point in points:
        if point[0] >= newest[0]:
            newest = point
    return newest[1]


class _Recent:
    """What folding a measurement of one name looks up, for the tags and run it last came with."""

    __slots__ = ("tags", "run", "key", "points", "series", "histogram", "derived", "tallies")

    def __init__(
        self, tags: dict[str, str], run: str, key: SeriesKey, points: deque[tuple[float, float]], series: RunMetrics
    ) -> None:
        self.tags, self.run, self.key, self.points, self.series = tags, run, key, points, series
        self.histogram: Histogram | None = None
        self.derived: tuple[SeriesKey, ...] | None = None
        self.tallies: list[deque[tuple[float, float]] | None] = [None, None, None]
        """The points of the ``derived`` counters, once used."""

    def observed(self, seconds: bool) -> Histogram:
        """The run's histogram of the series, created when it is first observed."""
        self.histogram = self.series.histograms.get(self.key) or self.series.histogram(self.key, seconds)
        return self.histogram

    def operation_keys(self) -> tuple[SeriesKey, ...]:
        """The counter keys of a timed operation: ``name.calls``, ``name.success``, ``name.errors``."""
        name, tags = self.key
        self.derived = (name + ".calls", tags), (name + ".success", tags), (name + ".errors", tags)
        return self.derived


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """A series summarised over ``window_seconds`` ending at ``as_of`` (``count`` 0: no points)."""

    name: str
    tags: dict[str, str]
    count: int
    min: float | None
    max: float | None
    avg: float | None
    latest: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    window_seconds: float | None
    """None: every kept point up to ``as_of``."""
    as_of: float


class MetricsSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Every metric now: counter totals, gauge values and the known series (``name{tags}``)."""

    counters: dict[str, float]
    gauges: dict[str, float]
    series: list[str]
    dropped: int


class Metrics:
    """The metrics projection. ``apply`` takes any event record.

    Measurements (counters, gauges, histograms, timed operations) count whoever recorded
    them: the collector, or application code appending them under its own actor name. The
    collector's bookkeeping (``measurements.dropped``, ``metrics.configured``) counts only
    from the collector (actor ``metrics``).

    ``max_history`` fixes how many points a series keeps. Left None, it is what the log
    recorded (``metrics.configured`` at each run's start; the largest, when several runs
    recorded different ones), and `DEFAULT_MAX_HISTORY` before any was recorded.
    """

    kinds = (
        "counter.incremented", "gauge.set", "histogram.observed", "operation.timed", "measurements.dropped",
        "metrics.configured",
    )
    name = "metrics"
    version = 2

    def __init__(self, max_history: int | None = None) -> None:
        if max_history is not None and max_history < 1:
            raise ValueError(f"max_history must be >= 1, got {max_history}")
        self.fixed = max_history is not None
        """Whether ``max_history`` was given (then what the log recorded is ignored)."""
        self.configured = False
        self.max_history = DEFAULT_MAX_HISTORY if max_history is None else max_history
        self.counters: dict[SeriesKey, float] = {}
        self.gauges: dict[SeriesKey, float] = {}
        self.points: dict[SeriesKey, deque[tuple[float, float]]] = {}
        self.dropped = 0
        self.position = 0
        self.runs: dict[str, RunMetrics] = {}
        """Each run's cumulative series (Prometheus' counters, gauges and histograms)."""
        self._last_run: str | None = None
        self._last_series = RunMetrics()
        self._recent: dict[str, _Recent] = {}

    def apply(self, record: EventRecord) -> None:
        """Fold one event record."""
        self.fold(record.kind, record.event, record.seq, record.ts, record.run, record.actor)

    def fold(self, kind: str, event: Any, seq: int, ts: float, run: str, actor: str) -> None:
        """Fold one event given with its row's columns (``apply`` without an `EventRecord`)."""
        if kind not in MEASUREMENT_KINDS and actor != METRICS_ACTOR:
            return
        self.apply_event(event, ts, run)
        self.position = seq

    def _run(self, run: str) -> RunMetrics:
        if run == self._last_run:  # measurements come in long stretches of one run
            return self._last_series
        found = self.runs.get(run)
        if found is None:
            found = self.runs[run] = RunMetrics()
        self._last_run, self._last_series = run, found
        return found

    def _configure(self, max_history: int) -> None:
        if self.fixed or max_history < 1:
            return
        wanted = max_history if not self.configured else max(self.max_history, max_history)
        self.configured = True
        if wanted != self.max_history:
            self.max_history = wanted
            self.points = {key: deque(points, maxlen=wanted) for key, points in self.points.items()}
            self._recent.clear()  # it holds the replaced deques

    def apply_event(self, event: Any, ts: float, run: str = "") -> None:
        """Fold one measurement event that happened at ``ts`` in ``run``."""
        kind = type(event)
        if kind is HistogramObserved:
            self.observe(event, ts, run)
        elif kind is OperationTimed:
            self.time_operation(event, ts, run)
        elif kind is CounterIncremented:
            self.increment(event, ts, run)
        elif kind is GaugeSet:
            self.set_gauge(event, ts, run)
        elif kind is MeasurementsDropped:
            self.dropped += event.count
        elif kind is MetricsConfigured:
            self._configure(event.max_history)
            self._configure_buckets(self._run(run), event.buckets, event.histogram_buckets)

    # One method per measurement kind, taking anything with its fields: the event itself
    # (`apply_event`, live) or replay's view of its payload (`actorlog.replay.measurements`),
    # so both change the state through the same code.

    # They run once per measurement in a replay. What they look up per event (the series
    # key, made by sorting the tags; its points; the run's cumulative series and histogram)
    # is kept per metric name as `_Recent`, used while the name comes with the same tags in
    # the same run, which is what a log mostly holds. Everything is still created in the
    # order, and at the moment, it was without the cache.

    def observe(self, event: Any, ts: float, run: str) -> None:
        """Fold a ``histogram.observed``: a point of its series and an observation of its run's histogram."""
        recent = self._recent.get(event.name)
        if recent is None or recent.run != run or recent.tags != event.tags:
            recent = self._remember(event.name, event.tags, run)
        value = event.value
        recent.points.append((ts, value))
        histogram = recent.histogram or recent.observed(False)
        histogram.counts[bisect_left(histogram.bounds, value)] += 1
        histogram.count += 1
        histogram.sum += value

    def time_operation(self, event: Any, ts: float, run: str) -> None:
        """Fold an ``operation.timed``: a point and an observation of ``name`` (in seconds), and
        increments of ``name.calls`` and of ``name.success`` or ``name.errors``."""
        recent = self._recent.get(event.name)
        if recent is None or recent.run != run or recent.tags != event.tags:
            recent = self._remember(event.name, event.tags, run)
        value = event.value
        recent.points.append((ts, value))
        histogram = recent.histogram or recent.observed(True)
        histogram.seconds = True
        histogram.counts[bisect_left(histogram.bounds, value)] += 1
        histogram.count += 1
        histogram.sum += value
        derived = recent.derived or recent.operation_keys()
        counters, run_counters = self.counters, recent.series.counters
        for index in (0, 1 if event.ok else 2):  # name.calls, then name.success or name.errors
            counter = derived[index]
            counters[counter] = counters.get(counter, 0.0) + 1.0
            run_counters[counter] = run_counters.get(counter, 0.0) + 1.0
            points = recent.tallies[index]
            if points is None:
                points = recent.tallies[index] = self.points.get(counter) or self._series(counter)
            points.append((ts, 1.0))

    def increment(self, event: Any, ts: float, run: str) -> None:
        """Fold a ``counter.incremented``."""
        recent = self._recent.get(event.name)
        if recent is None or recent.run != run or recent.tags != event.tags:
            recent = self._remember(event.name, event.tags, run)
        key, value, counters = recent.key, event.value, self.counters
        counters[key] = counters.get(key, 0.0) + value
        if value >= 0:  # a negative one (refused at the caller, in an older log) is not exported
            run_counters = recent.series.counters
            run_counters[key] = run_counters.get(key, 0.0) + value
        recent.points.append((ts, value))

    def set_gauge(self, event: Any, ts: float, run: str) -> None:
        """Fold a ``gauge.set``."""
        recent = self._recent.get(event.name)
        if recent is None or recent.run != run or recent.tags != event.tags:
            recent = self._remember(event.name, event.tags, run)
        key, value = recent.key, event.value
        self.gauges[key] = value
        recent.series.gauges[key] = value
        recent.points.append((ts, value))

    @staticmethod
    def _configure_buckets(
        target: RunMetrics, buckets: list[float] | None, named: Mapping[str, list[float]]
    ) -> None:
        # bounds a hand-written event got wrong fall back to the defaults: the export stays valid
        if buckets is not None and bucket_problem(buckets) is None:
            target.buckets = tuple(float(b) for b in buckets)
        target.named_buckets = {
            name: tuple(float(b) for b in bounds) for name, bounds in named.items() if bucket_problem(bounds) is None
        }

    def _remember(self, name: str, tags: Mapping[str, str], run: str) -> _Recent:
        """The series ``name`` with ``tags`` in ``run`` (its points created if new), kept as the name's recent one."""
        key = series_key(name, tags)
        points = self.points.get(key)
        if points is None:
            points = self._series(key)
        recent = self._recent[name] = _Recent(dict(tags), run, key, points, self._run(run))
        return recent

    def _series(self, key: SeriesKey) -> deque[tuple[float, float]]:
        """The points of a series seen for the first time."""
        points = self.points[key] = deque(maxlen=self.max_history)
        return points

    def summary(
        self,
        name: str,
        tags: Mapping[str, str] | None = None,
        *,
        as_of: float,
        window_seconds: float | None = DEFAULT_WINDOW,
    ) -> Summary:
        """Summarise series ``name``/``tags`` over the points with ``as_of - window_seconds < ts <= as_of``
        (every kept point up to ``as_of`` when ``window_seconds`` is None)."""
        if window_seconds is not None and window_seconds <= 0:
            raise ValueError(f"window_seconds must be > 0, got {window_seconds}")
        points = self.points.get(series_key(name, tags), ())
        start = -math.inf if window_seconds is None else as_of - window_seconds
        in_window = [(ts, value) for ts, value in points if start < ts <= as_of]
        values = sorted(value for _, value in in_window)
        if not values:
            return Summary(
                name=name, tags=dict(tags or {}), count=0, min=None, max=None, avg=None, latest=None,
                p50=None, p95=None, p99=None, window_seconds=window_seconds, as_of=as_of,
            )
        return Summary(
            name=name, tags=dict(tags or {}), count=len(values), min=values[0], max=values[-1],
            avg=mean(values), latest=_latest(in_window),
            p50=percentile(values, 50), p95=percentile(values, 95), p99=percentile(values, 99),
            window_seconds=window_seconds, as_of=as_of,
        )

    def histogram_keys(self) -> list[SeriesKey]:
        """Series that are neither counters nor gauges: observations and operation durations."""
        return sorted(k for k in self.points if k not in self.counters and k not in self.gauges)

    def state(self) -> dict[str, Any]:
        """The whole state as builtins (for snapshots)."""
        return {
            "max_history": self.max_history, "fixed": self.fixed, "configured": self.configured,
            "dropped": self.dropped, "position": self.position,
            "counters": [[k[0], [list(t) for t in k[1]], v] for k, v in self.counters.items()],
            "gauges": [[k[0], [list(t) for t in k[1]], v] for k, v in self.gauges.items()],
            "points": [[k[0], [list(t) for t in k[1]], [list(p) for p in v]] for k, v in self.points.items()],
            "runs": {run: _run_state(series) for run, series in self.runs.items()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Metrics:
        """Rebuild a projection saved with `state`."""
        projection = cls(int(state["max_history"]))
        projection.fixed = bool(state["fixed"])
        projection.configured = bool(state["configured"])
        projection.dropped = int(state["dropped"])
        projection.position = int(state["position"])
        for name, tags, value in state["counters"]:
            projection.counters[(name, tuple((k, v) for k, v in tags))] = float(value)
        for name, tags, value in state["gauges"]:
            projection.gauges[(name, tuple((k, v) for k, v in tags))] = float(value)
        for name, tags, points in state["points"]:
            projection.points[(name, tuple((k, v) for k, v in tags))] = deque(
                ((float(ts), float(v)) for ts, v in points), maxlen=projection.max_history
            )
        for run, series in state["runs"].items():
            projection.runs[run] = _run_from_state(series)
        return projection

    def snapshot(self) -> MetricsSnapshot:
        """Every counter, gauge and series by readable name."""
        return MetricsSnapshot(
            counters={series_label(k): v for k, v in sorted(self.counters.items())},
            gauges={series_label(k): v for k, v in sorted(self.gauges.items())},
            series=sorted(series_label(k) for k in self.points),
            dropped=self.dropped,
        )


def _key_state(key: SeriesKey) -> list[Any]:
    return [key[0], [list(t) for t in key[1]]]


def _key(name: str, tags: list[list[str]]) -> SeriesKey:
    return name, tuple((k, v) for k, v in tags)


def _run_state(series: RunMetrics) -> dict[str, Any]:
    return {
        "buckets": list(series.buckets),
        "named_buckets": {name: list(bounds) for name, bounds in series.named_buckets.items()},
        "counters": [[*_key_state(k), v] for k, v in series.counters.items()],
        "gauges": [[*_key_state(k), v] for k, v in series.gauges.items()],
        "histograms": [
            [*_key_state(k), list(h.bounds), h.counts, h.count, h.sum, h.seconds] for k, h in series.histograms.items()
        ],
    }


def _run_from_state(state: Mapping[str, Any]) -> RunMetrics:
    series = RunMetrics()
    series.buckets = tuple(float(b) for b in state["buckets"])
    series.named_buckets = {name: tuple(float(b) for b in bounds) for name, bounds in state["named_buckets"].items()}
    for name, tags, value in state["counters"]:
        series.counters[_key(name, tags)] = float(value)
    for name, tags, value in state["gauges"]:
        series.gauges[_key(name, tags)] = float(value)
    for name, tags, bounds, counts, count, total_, seconds in state["histograms"]:
        histogram = Histogram(tuple(float(b) for b in bounds), bool(seconds))
        histogram.counts = [int(c) for c in counts]
        histogram.count = int(count)
        histogram.sum = float(total_)
        series.histograms[_key(name, tags)] = histogram
    return series
