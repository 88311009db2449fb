"""Summaries, windows, as_of, tags, counters and gauges: the Metrics projection and the live system.

Every summary field is checked against the plain computation in `metrics_helpers.ref_summary`.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorlog.actors import ActorSystem, MetricsOptions
from actorlog.events import CounterIncremented, GaugeSet, HistogramObserved, OperationTimed
from actorlog.replay.metrics import Metrics, percentile
from actorlog.replay.rebuild import rebuild_metrics
from metrics_helpers import measurement_records, ref_percentile, ref_summary, spin_past, summary_fields

# Finite floats whose sums and differences cannot overflow (a few dozen of them); the
# overflow case has a test of its own below.
VALUES = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False)
SETTINGS = settings(max_examples=40, deadline=None)


# -- the percentile ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([10.0, 7.0, 4.0, 3.0, 2.0, 1.0], 50, 3.5),  # numpy's docs: np.percentile(a, 50) on sorted a
        ([1.0, 2.0, 3.0, 4.0, 5.0], 95, 4.8),
        ([1.0, 2.0], 99, 1.99),
        ([7.0], 50, 7.0),
        ([7.0], 99, 7.0),
        ([0.0, 10.0], 0, 0.0),
        ([0.0, 10.0], 100, 10.0),
    ],
)
def test_percentile_is_numpys_linear_interpolation(values: list[float], q: float, expected: float) -> None:
    assert percentile(sorted(values), q) == pytest.approx(expected, rel=1e-12)


@SETTINGS
@given(st.lists(VALUES, min_size=1, max_size=30), st.floats(min_value=0, max_value=100))
def test_percentile_matches_the_documented_formula(values: list[float], q: float) -> None:
    ordered = sorted(values)
    assert percentile(ordered, q) == ref_percentile(ordered, q)
    assert ordered[0] <= percentile(ordered, q) <= ordered[-1]


def test_percentile_of_nothing_raises() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)


# -- every summary field, on the projection ----------------------------------------------------------------

# points: distinct integer timestamps (as floats) in a random order of application, so that
# "latest" (greatest ts) differs from "last applied" and window boundaries are hit exactly
POINTS = st.lists(
    st.tuples(st.integers(min_value=0, max_value=60).map(float), VALUES), max_size=25, unique_by=lambda p: p[0]
)
AS_OF = st.integers(min_value=-5, max_value=70).map(float)
WINDOWS = st.sampled_from([0.5, 1.0, 3.0, 10.0, 30.0, 1000.0])


@SETTINGS
@given(POINTS, AS_OF, WINDOWS)
def test_projection_summary_fields_equal_a_plain_computation(
    points: list[tuple[float, float]], as_of: float, window: float
) -> None:
    metrics = Metrics()
    for ts, value in points:
        metrics.apply_event(HistogramObserved(name="lat", value=value), ts)
    summary = metrics.summary("lat", as_of=as_of, window_seconds=window)
    assert summary_fields(summary) == ref_summary(points, as_of=as_of, window=window)
    assert (summary.name, summary.tags) == ("lat", {})


@SETTINGS
@given(st.lists(VALUES, min_size=1, max_size=30))
def test_projection_summary_of_all_points_including_duplicates(values: list[float]) -> None:
    values = values + values[: len(values) // 2]  # duplicates on purpose
    metrics = Metrics()
    points = [(1000.0 + i, v) for i, v in enumerate(values)]
    for ts, value in points:
        metrics.apply_event(HistogramObserved(name="d", value=value, tags={"k": "v"}), ts)
    summary = metrics.summary("d", {"k": "v"}, as_of=5000.0, window_seconds=10_000.0)
    expected = ref_summary(points, as_of=5000.0, window=10_000.0)
    assert summary_fields(summary) == expected
    assert summary.count == len(values)
    assert summary.latest == values[-1]
    assert summary.min == min(values) and summary.max == max(values)


@pytest.mark.parametrize("value", [0.0, -3.25, 1e-300, 7.0])
def test_projection_summary_of_a_single_value(value: float) -> None:
    metrics = Metrics()
    metrics.apply_event(HistogramObserved(name="one", value=value), 10.0)
    summary = metrics.summary("one", as_of=10.0, window_seconds=1.0)
    assert (summary.count, summary.min, summary.max, summary.avg, summary.latest) == (1, value, value, value, value)
    assert (summary.p50, summary.p95, summary.p99) == (value, value, value)


def test_projection_empty_window_and_unknown_series_have_count_zero_and_no_values() -> None:
    metrics = Metrics()
    metrics.apply_event(HistogramObserved(name="x", value=1.0), 100.0)
    for summary in (
        metrics.summary("x", as_of=99.0, window_seconds=10.0),  # before the point
        metrics.summary("x", as_of=200.0, window_seconds=10.0),  # long after it
        metrics.summary("unknown", as_of=100.0, window_seconds=10.0),
        metrics.summary("x", {"other": "tags"}, as_of=100.0, window_seconds=10.0),
    ):
        assert summary.count == 0
        assert [summary.min, summary.max, summary.avg, summary.latest, summary.p50, summary.p95, summary.p99] == [None] * 7
        assert summary.window_seconds == 10.0
    assert metrics.summary("x", as_of=99.0, window_seconds=10.0).as_of == 99.0


# -- windows and as_of, exact boundaries ---------------------------------------------------------------------


def test_window_boundaries_are_exclusive_at_the_start_and_inclusive_at_as_of() -> None:
    metrics = Metrics()
    for ts, value in [(90.0, 1.0), (90.5, 2.0), (100.0, 3.0), (100.25, 4.0)]:
        metrics.apply_event(HistogramObserved(name="b", value=value), ts)
    summary = metrics.summary("b", as_of=100.0, window_seconds=10.0)
    # 90.0 is exactly as_of - window: excluded; 100.0 is as_of: included; 100.25 is after: excluded
    assert summary.count == 2
    assert (summary.min, summary.max, summary.latest) == (2.0, 3.0, 3.0)
    # a window of the smallest positive width still holds a point exactly at as_of
    only = metrics.summary("b", as_of=100.0, window_seconds=1e-9)
    assert (only.count, only.latest) == (1, 3.0)
    assert metrics.summary("b", as_of=90.0, window_seconds=1e-9).latest == 1.0
    assert metrics.summary("b", as_of=89.999, window_seconds=100.0).count == 0


def test_latest_is_the_point_with_the_greatest_timestamp_not_the_last_applied() -> None:
    metrics = Metrics()
    for ts, value in [(5.0, 50.0), (9.0, 90.0), (7.0, 70.0), (3.0, 30.0)]:
        metrics.apply_event(HistogramObserved(name="l", value=value), ts)
    assert metrics.summary("l", as_of=10.0, window_seconds=100.0).latest == 90.0
    assert metrics.summary("l", as_of=8.0, window_seconds=100.0).latest == 70.0
    assert metrics.summary("l", as_of=6.0, window_seconds=2.0).latest == 50.0


def test_latest_among_points_with_the_same_timestamp_is_the_one_recorded_last() -> None:
    """Two gauge settings with the same timestamp: the gauge keeps the second value, and
    the summary's ``latest`` must agree with it (the log order breaks the tie)."""
    metrics = Metrics()
    metrics.apply_event(GaugeSet(name="g", value=1.0), 5.0)
    metrics.apply_event(GaugeSet(name="g", value=2.0), 5.0)
    assert metrics.snapshot().gauges == {"g": 2.0}
    assert metrics.summary("g", as_of=5.0, window_seconds=1.0).latest == 2.0


def test_invalid_window_raises_value_error_on_the_projection() -> None:
    metrics = Metrics()
    metrics.apply_event(HistogramObserved(name="w", value=1.0), 1.0)
    for window in (0.0, -1.0, -1e-9):
        with pytest.raises(ValueError, match="window_seconds"):
            metrics.summary("w", as_of=1.0, window_seconds=window)


def test_max_history_keeps_the_last_points_per_series_on_the_projection() -> None:
    metrics = Metrics(max_history=5)
    for i in range(12):
        metrics.apply_event(HistogramObserved(name="h", value=float(i)), float(i))
        metrics.apply_event(HistogramObserved(name="h", value=float(-i), tags={"t": "1"}), float(i))
    summary = metrics.summary("h", as_of=100.0, window_seconds=1000.0)
    assert summary.count == 5
    assert (summary.min, summary.max, summary.latest) == (7.0, 11.0, 11.0)
    other = metrics.summary("h", {"t": "1"}, as_of=100.0, window_seconds=1000.0)
    assert (other.count, other.min, other.max) == (5, -11.0, -7.0)
    with pytest.raises(ValueError):
        Metrics(max_history=0)


# -- every summary field, through the live system -----------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(st.lists(VALUES, min_size=1, max_size=20))
def test_system_metric_summary_fields_equal_a_plain_computation(values: list[float]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "app.db"
        with ActorSystem(path) as system:
            before = time.time()
            last = spin_past(before)
            for value in values:
                system.metrics.observe("svc.latency", value, tags={"route": "/a"})
                last = spin_past(time.time())  # every point gets a timestamp of its own
            after = spin_past(last)
            system.flush()
            points = [(r.ts, r.event.value) for r in system.store.events(kinds=["histogram.observed"])]
            assert [v for _, v in points] == values
            assert all(before < ts < after for ts, _ in points)
            window = (after - before) * 2
            summary = system.metric_summary("svc.latency", {"route": "/a"}, as_of=after, window_seconds=window)
            assert summary_fields(summary) == ref_summary(points, as_of=after, window=window)
            assert summary.count == len(values)
            assert summary.latest == values[-1]
            assert summary.tags == {"route": "/a"}
            # as_of before any point: an empty window
            empty = system.metric_summary("svc.latency", {"route": "/a"}, as_of=before, window_seconds=window)
            assert summary_fields(empty) == ref_summary(points, as_of=before, window=window)
            assert empty.count == 0 and empty.p99 is None


def test_system_windows_and_as_of_with_recorded_time_bounds(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        start = time.time()
        spin_past(start)
        for value in (1.0, 2.0, 3.0):
            system.metrics.observe("w", value)
        mid = spin_past(time.time())
        spin_past(mid)
        for value in (10.0, 20.0):
            system.metrics.observe("w", value)
        end = spin_past(time.time())
        late = spin_past(end)
        system.metrics.observe("w", 99.0)  # after `end`
        wide = 3600.0

        upto_mid = system.metric_summary("w", as_of=mid, window_seconds=wide)
        assert (upto_mid.count, upto_mid.min, upto_mid.max, upto_mid.latest) == (3, 1.0, 3.0, 3.0)
        assert upto_mid.as_of == mid and upto_mid.window_seconds == wide

        second = system.metric_summary("w", as_of=end, window_seconds=end - mid)  # (mid, end]
        assert (second.count, second.min, second.max, second.latest, second.avg) == (2, 10.0, 20.0, 20.0, 15.0)

        upto_end = system.metric_summary("w", as_of=end, window_seconds=wide)
        assert upto_end.count == 5 and upto_end.latest == 20.0

        everything = system.metric_summary("w", window_seconds=wide)  # as_of defaults to now
        assert everything.count == 6 and everything.latest == 99.0 and everything.as_of >= late

        assert system.metric_summary("w", as_of=start, window_seconds=wide).count == 0

        for window in (0.0, -5.0):
            with pytest.raises(ValueError, match="window_seconds"):
                system.metric_summary("w", as_of=end, window_seconds=window)
        # a refused query does not stop the collector
        system.metrics.observe("w", 5.0)
        assert system.metric_summary("w", window_seconds=wide).count == 7


def test_system_max_history_keeps_the_last_n_points(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path, metrics=MetricsOptions(max_history=5)) as system:
        for i in range(12):
            system.metrics.observe("hist", float(i))
            system.metrics.gauge("gauge", float(i) * 10)
        summary = system.metric_summary("hist", window_seconds=3600)
        assert summary.count == 5
        assert (summary.min, summary.max, summary.latest) == (7.0, 11.0, 11.0)
        assert summary.avg == 9.0
        assert system.metric_summary("gauge", window_seconds=3600).count == 5
        assert system.all_metrics().gauges == {"gauge": 110.0}
    # every point is in the log; the bound is on memory only
    assert len(measurement_records(path, kinds=["histogram.observed"])) == 12
    rebuilt = rebuild_metrics(path, max_history=5)
    assert rebuilt.summary("hist", as_of=summary.as_of, window_seconds=3600) == summary


# -- overflow: finite values whose sum overflows --------------------------------------------------------


def test_summary_of_huge_finite_values_does_not_raise(tmp_path: Path) -> None:
    """1e308 twice: both values are finite and accepted, their average is 1e308. The sum
    overflows a float, which must not make the summary (or the scrape) raise."""
    metrics = Metrics()
    metrics.apply_event(HistogramObserved(name="huge", value=1e308), 1.0)
    metrics.apply_event(HistogramObserved(name="huge", value=1e308), 2.0)
    summary = metrics.summary("huge", as_of=2.0, window_seconds=10.0)
    assert (summary.count, summary.min, summary.max, summary.p50) == (2, 1e308, 1e308, 1e308)
    assert summary.avg == 1e308
    # opposite huge values: the median lies halfway, not at an overflowed infinity
    assert math.isfinite(percentile([-1.5e308, 1.5e308], 50))
    assert percentile([-1.5e308, 1.5e308], 50) == 0.0

    with ActorSystem(tmp_path / "app.db") as system:
        system.metrics.observe("huge", 1e308)
        system.metrics.observe("huge", 1e308)
        assert system.metric_summary("huge", window_seconds=3600).avg == 1e308
        text = system.prometheus()
    assert f'huge_count{{run="{system.run}"}} 2.0' in text


# -- tags -------------------------------------------------------------------------------------------------


def test_same_name_with_different_tags_are_different_series(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        for value in (1.0, 2.0, 3.0):
            system.metrics.observe("req.latency", value, tags={"route": "/a"})
        for value in (10.0, 20.0):
            system.metrics.observe("req.latency", value, tags={"route": "/b"})
        system.metrics.observe("req.latency", 100.0, tags={"route": "/a", "method": "POST"})
        system.metrics.observe("req.latency", 1000.0)
        a = system.metric_summary("req.latency", {"route": "/a"}, window_seconds=3600)
        b = system.metric_summary("req.latency", {"route": "/b"}, window_seconds=3600)
        ab = system.metric_summary("req.latency", {"method": "POST", "route": "/a"}, window_seconds=3600)
        untagged = system.metric_summary("req.latency", window_seconds=3600)
        also_untagged = system.metric_summary("req.latency", {}, window_seconds=3600, as_of=untagged.as_of)
        missing = system.metric_summary("req.latency", {"route": "/c"}, window_seconds=3600)
        snapshot = system.all_metrics()
    assert (a.count, a.min, a.max, a.tags) == (3, 1.0, 3.0, {"route": "/a"})
    assert (b.count, b.min, b.max) == (2, 10.0, 20.0)
    assert (ab.count, ab.latest, ab.tags) == (1, 100.0, {"method": "POST", "route": "/a"})
    assert (untagged.count, untagged.latest, untagged.tags) == (1, 1000.0, {})
    assert also_untagged == untagged
    assert missing.count == 0
    assert snapshot.series == [
        "req.latency", "req.latency{method=POST,route=/a}", "req.latency{route=/a}", "req.latency{route=/b}",
    ]


def test_tag_order_does_not_matter_and_labels_are_sorted(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        system.metrics.increment("hits", 1.0, tags={"zone": "eu", "app": "x", "m": "1"})
        system.metrics.increment("hits", 2.0, tags={"m": "1", "app": "x", "zone": "eu"})
        system.metrics.gauge("temp", 5.0, tags={"b": "2", "a": "1"})
        system.metrics.gauge("temp", 6.0, tags={"a": "1", "b": "2"})
        snapshot = system.all_metrics()
        summary = system.metric_summary("hits", {"zone": "eu", "m": "1", "app": "x"}, window_seconds=3600)
    assert snapshot.counters == {"hits{app=x,m=1,zone=eu}": 3.0}
    assert snapshot.gauges == {"temp{a=1,b=2}": 6.0}
    assert snapshot.series == ["hits{app=x,m=1,zone=eu}", "temp{a=1,b=2}"]
    assert summary.count == 2 and summary.max == 2.0


def test_counters_and_gauges_are_kept_per_tag_set(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        for i in range(4):
            system.metrics.increment("jobs", tags={"queue": "fast"})
        system.metrics.increment("jobs", 10.0, tags={"queue": "slow"})
        system.metrics.increment("jobs", 0.5)
        system.metrics.gauge("depth", 3.0, tags={"queue": "fast"})
        system.metrics.gauge("depth", 7.0, tags={"queue": "slow"})
        system.metrics.gauge("depth", 4.0, tags={"queue": "fast"})
        snapshot = system.all_metrics()
    assert snapshot.counters == {"jobs": 0.5, "jobs{queue=fast}": 4.0, "jobs{queue=slow}": 10.0}
    assert snapshot.gauges == {"depth{queue=fast}": 4.0, "depth{queue=slow}": 7.0}


# -- counters and gauges ----------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), max_size=30),  # a counter only goes up
    st.lists(VALUES, min_size=1, max_size=10),
)
def test_counter_totals_add_up_and_gauges_keep_the_latest_value(increments: list[float], gauges: list[float]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with ActorSystem(Path(tmp) / "app.db") as system:
            system.metrics.increment("calls")  # default increment is 1
            for value in increments:
                system.metrics.increment("calls", value)
                system.metrics.increment("int.calls", 2)
            for value in gauges:
                system.metrics.gauge("level", value)
            snapshot = system.all_metrics()
    total = 1.0
    for value in increments:
        total += value  # the same additions in the same order
    expected_counters = {"calls": total}
    if increments:
        expected_counters["int.calls"] = 2.0 * len(increments)
    assert snapshot.counters == expected_counters
    assert math.isclose(snapshot.counters["calls"], 1.0 + math.fsum(increments), rel_tol=1e-9, abs_tol=1e-3)
    assert snapshot.gauges == {"level": gauges[-1]}
    assert snapshot.dropped == 0


def test_float_increments_and_the_counter_series(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        for _ in range(10):
            system.metrics.increment("cost", 0.1)
        system.metrics.increment("cost", 0.05)
        snapshot = system.all_metrics()
        series = system.metric_summary("cost", window_seconds=3600)
    total = 0.0
    for value in [0.1] * 10 + [0.05]:
        total += value
    assert snapshot.counters == {"cost": total}
    assert math.isclose(total, 1.05)
    # a counter's increments are also a series: its points are the increments
    assert (series.count, series.min, series.max, series.latest) == (11, 0.05, 0.1, 0.05)


def test_all_metrics_lists_counters_gauges_and_series_names(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        assert system.all_metrics().counters == {} and system.all_metrics().series == []
        system.metrics.increment("a.count", 3)
        system.metrics.gauge("b.gauge", 1.5, tags={"k": "v"})
        system.metrics.observe("c.hist", 2.0)
        with system.monitor.time("d.op"):
            pass
        snapshot = system.all_metrics()
    assert snapshot.counters == {"a.count": 3.0, "d.op.calls": 1.0, "d.op.success": 1.0}
    assert snapshot.gauges == {"b.gauge{k=v}": 1.5}
    assert snapshot.series == ["a.count", "b.gauge{k=v}", "c.hist", "d.op", "d.op.calls", "d.op.success"]
    assert snapshot.dropped == 0


def test_projection_folds_each_event_kind() -> None:
    metrics = Metrics()
    metrics.apply_event(CounterIncremented(name="c", value=2.5, tags={"x": "1"}), 1.0)
    metrics.apply_event(CounterIncremented(name="c", value=0.5, tags={"x": "1"}), 2.0)
    metrics.apply_event(GaugeSet(name="g", value=4.0), 1.0)
    metrics.apply_event(GaugeSet(name="g", value=-1.0), 3.0)
    metrics.apply_event(OperationTimed(name="op", value=0.2, ok=True), 1.0)
    metrics.apply_event(OperationTimed(name="op", value=0.4, ok=False), 2.0)
    snapshot = metrics.snapshot()
    assert snapshot.counters == {"c{x=1}": 3.0, "op.calls": 2.0, "op.errors": 1.0, "op.success": 1.0}
    assert snapshot.gauges == {"g": -1.0}
    assert snapshot.series == ["c{x=1}", "g", "op", "op.calls", "op.errors", "op.success"]
    op = metrics.summary("op", as_of=2.0, window_seconds=10.0)
    assert (op.count, op.min, op.max, op.latest) == (2, 0.2, 0.4, 0.4)
