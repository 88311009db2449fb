"""Replay's fast path folds to exactly what the live path folds (issue 20).

`Statistics.fold_chunks` decodes measurements to views of their payloads and folds rows
without building records; the live system applies one `EventRecord` at a time. Both must
leave every projection in the same state, for any mix of measurements (tags that change,
runs that interleave, negative counters, names shared by several kinds, max_history
changing mid-log) and the other kinds the projections read. A payload the fast path
refuses is refused with the codec's own error, naming its seq.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorlog.events import (
    ActorlogError,
    CounterIncremented,
    MEASUREMENT_KINDS,
    FailureAssessed,
    GaugeSet,
    HistogramObserved,
    MeasurementsDropped,
    MetricsConfigured,
    OperationTimed,
    PluginHealthChecked,
    PluginRegistered,
    PluginStarted,
    TypeRegistry,
    default_codec,
)
from actorlog.events.codec import Codec
from actorlog.replay.measurements import VIEWS, measurement_folds
from actorlog.replay.metrics import Histogram, Metrics, RunMetrics, SeriesKey, series_key
from actorlog.replay.statistics import Statistics
from actorlog.store import EventRecord

NAMES = st.sampled_from(["lat", "tasks", "queue", "op"])
TAGS = st.sampled_from([{}, {"model": "a"}, {"model": "b"}, {"b": "2", "a": "1"}, {"a": "1", "b": "2"}])
VALUES = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.integers(-5, 5).map(float)

MEASUREMENTS = st.one_of(
    st.builds(CounterIncremented, name=NAMES, value=VALUES, tags=TAGS),
    st.builds(GaugeSet, name=NAMES, value=VALUES, tags=TAGS),
    st.builds(HistogramObserved, name=NAMES, value=VALUES, tags=TAGS),
    st.builds(OperationTimed, name=NAMES, value=VALUES, ok=st.booleans(), tags=TAGS),
)
OTHERS = st.one_of(
    st.builds(MetricsConfigured, max_history=st.integers(1, 6),
              buckets=st.none() | st.just([0.1, 1.0]), histogram_buckets=st.just({"lat": [0.5]})),
    st.builds(MeasurementsDropped, count=st.integers(0, 3), reason=st.just("sampled")),
    st.just(PluginRegistered(plugin="p", class_path="app:P", plugin_version="1")),
    st.just(PluginStarted(plugin="p")),
    st.just(PluginHealthChecked(plugin="p", healthy=True, detail="ok")),
    st.builds(FailureAssessed, plugin=st.just("p"), exc_type=st.just("builtins.ValueError"), message=st.just("m"),
              severity=st.just("low"), failed_at=st.just(5.0), failure_seq=st.none()),
)
ACTORS = st.sampled_from(["metrics", "metrics", "metrics", "supervisor", "errors", "p", "app", "store"])
ROWS = st.lists(
    st.tuples(st.one_of(MEASUREMENTS, MEASUREMENTS, OTHERS), ACTORS, st.sampled_from(["run-a", "run-b"]),
              st.floats(min_value=0, max_value=100, allow_nan=False)),
    max_size=60,
)


def encoded(events: list[tuple[Any, str, str, float]]) -> list[tuple[int, float, str, str, str, int, str]]:
    rows = []
    for seq, (event, actor, run, ts) in enumerate(events, 1):
        kind, version, payload = default_codec.encode(event)
        rows.append((seq, ts, run, actor, kind, version, payload.decode()))
    return rows


def applied_one_by_one(rows: list[tuple[Any, ...]], max_history: int | None) -> Statistics:
    """What the live system does: one decoded record at a time."""
    statistics = Statistics(max_history)
    for seq, ts, run, actor, kind, version, payload in rows:
        if kind in statistics.kinds:
            statistics.apply(EventRecord(seq=seq, ts=ts, run=run, actor=actor, kind=kind, version=version,
                                         correlation=None, event=default_codec.decode(kind, version, payload), hash=""))
    if rows:
        statistics.advance(max(r[0] for r in rows if r[3] != "store") if any(r[3] != "store" for r in rows) else 0,
                           max((r[1] for r in rows if r[3] != "store"), default=None))
    return statistics


def reference_metrics(rows: list[tuple[Any, ...]], max_history: int | None) -> Metrics:
    """The metrics fold as written before the fast path (no caches): the oracle for both paths."""
    metrics = Metrics(max_history)

    def run_series(run: str) -> RunMetrics:
        return metrics.runs.setdefault(run, RunMetrics())

    def point(key: SeriesKey, ts: float, value: float) -> None:
        metrics.points.setdefault(key, deque(maxlen=metrics.max_history)).append((ts, value))

    def observe(run: str, key: SeriesKey, value: float, seconds: bool) -> None:
        series = run_series(run)
        histogram = series.histograms.get(key)
        if histogram is None:
            histogram = series.histograms[key] = Histogram(series.named_buckets.get(key[0], series.buckets), seconds)
        histogram.seconds = histogram.seconds or seconds
        histogram.observe(value)

    def count(name: str, tags: dict[str, str], ts: float, value: float, run: str) -> None:
        key = series_key(name, tags)
        metrics.counters[key] = metrics.counters.get(key, 0.0) + value
        series = run_series(run)
        if value >= 0:
            series.counters[key] = series.counters.get(key, 0.0) + value
        point(key, ts, value)

    for seq, ts, run, actor, kind, version, payload in rows:
        if kind not in metrics.kinds or (kind not in MEASUREMENT_KINDS and actor != "metrics"):
            continue
        event = default_codec.decode(kind, version, payload)
        if isinstance(event, HistogramObserved | OperationTimed):
            key = series_key(event.name, event.tags)
            point(key, ts, event.value)
            observe(run, key, event.value, isinstance(event, OperationTimed))
            if isinstance(event, OperationTimed):
                count(event.name + ".calls", event.tags, ts, 1.0, run)
                count(event.name + (".success" if event.ok else ".errors"), event.tags, ts, 1.0, run)
        elif isinstance(event, CounterIncremented):
            count(event.name, event.tags, ts, event.value, run)
        elif isinstance(event, GaugeSet):
            key = series_key(event.name, event.tags)
            metrics.gauges[key] = event.value
            run_series(run).gauges[key] = event.value
            point(key, ts, event.value)
        elif isinstance(event, MeasurementsDropped):
            metrics.dropped += event.count
        elif isinstance(event, MetricsConfigured):
            if not metrics.fixed and event.max_history >= 1:
                wanted = event.max_history if not metrics.configured else max(metrics.max_history, event.max_history)
                metrics.configured = True
                if wanted != metrics.max_history:
                    metrics.max_history = wanted
                    metrics.points = {k: deque(v, maxlen=wanted) for k, v in metrics.points.items()}
            Metrics._configure_buckets(run_series(run), event.buckets, event.histogram_buckets)
        metrics.position = seq
    return metrics


@settings(max_examples=300, deadline=None)
@given(events=ROWS, max_history=st.none() | st.none() | st.integers(1, 4), chunk=st.integers(1, 7))
def test_the_fast_fold_leaves_every_projection_as_applying_records_one_by_one(
    events: list[tuple[Any, str, str, float]], max_history: int | None, chunk: int
) -> None:
    rows = encoded(events)
    fast = Statistics(max_history)
    folded = fast.fold_chunks([rows[i:i + chunk] for i in range(0, len(rows), chunk)], default_codec)
    slow = applied_one_by_one(rows, max_history)
    assert folded == len(rows)
    assert fast.state() == slow.state()
    assert fast.metrics.state() == reference_metrics(rows, max_history).state()
    assert fast.document() == slow.document()
    for run in ("run-a", "run-b"):
        assert (run in fast.metrics.runs) == (run in slow.metrics.runs)


def default_of(field: msgspec.structs.FieldInfo) -> Any:
    return field.default_factory() if field.default_factory is not msgspec.NODEFAULT else field.default


def test_a_max_history_recorded_mid_log_applies_to_the_series_already_folded() -> None:
    events = [(GaugeSet(name="g", value=float(i), tags={"a": "1"}), "metrics", "r", float(i)) for i in range(5)]
    events.insert(2, (MetricsConfigured(max_history=3), "metrics", "r", 1.5))
    events.insert(4, (MetricsConfigured(max_history=2), "metrics", "r", 2.5))
    events += [(OperationTimed(name="g", value=1.0), "metrics", "r", 9.0)] * 4
    rows = encoded(events)
    fast = Statistics()
    fast.fold_chunks([rows[:3], rows[3:]], default_codec)
    expected = reference_metrics(rows, None)
    assert fast.metrics.state() == expected.state()
    assert list(fast.metrics.points[("g", (("a", "1"),))]) == [(2.0, 2.0), (3.0, 3.0), (4.0, 4.0)]  # the largest recorded


def test_views_hold_the_fields_of_the_registered_types_with_the_same_types_and_defaults() -> None:
    for event_type, view in VIEWS.items():
        assert view.__struct_config__.tag == event_type.__struct_config__.tag
        event_fields = msgspec.structs.fields(event_type)
        view_fields = msgspec.structs.fields(view)
        assert [f.name for f in view_fields] == [f.name for f in event_fields], view
        assert [default_of(f) for f in view_fields] == [default_of(f) for f in event_fields], view
        event_info = msgspec.inspect.type_info(event_type).fields  # type: ignore[attr-defined]
        for event_field, view_field in zip(event_info, msgspec.inspect.type_info(view).fields):  # type: ignore[attr-defined]
            if isinstance(event_field.type, msgspec.inspect.FloatType):  # the finite check, done by msgspec
                assert view_field.type == msgspec.inspect.FloatType(ge=-1.7976931348623157e308,
                                                                    le=1.7976931348623157e308), view
            else:
                assert view_field.type == event_field.type, (view, event_field.name)


BAD_PAYLOADS = [
    '{"kind":"gauge.set","name":"q","value":1e400}',  # out of range: not finite
    '{"kind":"gauge.set","name":"q","value":"1"}',
    '{"kind":"gauge.set","name":"q","value":true}',
    '{"kind":"gauge.set","value":1.0}',
    '{"name":"q","value":1.0}',  # no tag
    '{"kind":"histogram.observed","name":"q","value":1.0}',  # another kind's tag
    '{"kind":"gauge.set","name":"q","value":1.0,"tags":{"a":1}}',
    '{"kind":"gauge.set","name":"q","value":1.0,"tags":[]}',
    '{"kind":"gauge.set","name":"q","value":1.0',
    "[" * 5000 + "]" * 5000,
    "not json",
]


@pytest.mark.parametrize("payload", BAD_PAYLOADS)
def test_a_payload_the_fast_path_refuses_is_refused_with_the_codecs_error_naming_its_seq(payload: str) -> None:
    rows = [(1, 1.0, "r", "metrics", "gauge.set", 1, json.dumps({"kind": "gauge.set", "name": "q", "value": 2.0})),
            (2, 2.0, "r", "metrics", "gauge.set", 1, payload)]
    with pytest.raises(ActorlogError) as fast:
        Statistics().fold_chunks([rows], default_codec)
    with pytest.raises(ActorlogError) as codec:
        default_codec.decode("gauge.set", 1, payload, seq=2)
    assert "seq 2" in str(fast.value)
    assert str(fast.value) == str(codec.value)


def test_a_kind_registered_to_another_type_is_decoded_by_the_codec_not_by_a_view() -> None:
    registry = TypeRegistry()
    registry.register(CounterIncremented)
    assert set(measurement_folds(registry, Metrics())) == {"counter.incremented"}
    assert measurement_folds(TypeRegistry(), Metrics()) == {}
    rows = [(1, 1.0, "r", "metrics", "gauge.set", 1, '{"kind":"gauge.set","name":"q","value":1.0}')]
    with pytest.raises(ActorlogError, match="seq 1"):  # not registered there: the codec says so
        Statistics().fold_chunks([rows], Codec(registry))


def test_a_payload_of_an_older_version_goes_through_the_codec() -> None:
    rows = [(1, 1.0, "r", "metrics", "gauge.set", 0, '{"kind":"gauge.set","name":"q","value":1.0}')]
    with pytest.raises(ActorlogError, match="seq 1") as caught:
        Statistics().fold_chunks([rows], default_codec)
    assert "upcaster" in str(caught.value)
