"""Live metrics equal replayed metrics at every as_of; the Prometheus export, live and replayed."""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from actorlog.actors import ActorSystem, MetricsOptions
from actorlog.replay.metrics import Metrics, series_key
from actorlog.replay.prometheus import to_prometheus
from actorlog.replay.rebuild import rebuild_metrics
from actorlog.store import EventStore
from metrics_helpers import measurement_records, spin_past

NAMES = ["api.latency", "jobs", "queue_depth", "a.b.c"]
TAGS = [{}, {"region": "eu"}, {"region": "us", "tier": "gold"}]
FINITE = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)

MEASUREMENT = st.tuples(
    st.sampled_from(["counter", "gauge", "histogram", "operation"]),
    st.sampled_from(NAMES),
    st.integers(min_value=0, max_value=len(TAGS) - 1),
    FINITE,
    st.booleans(),
)


def record(system: ActorSystem, kind: str, name: str, tags: dict[str, str], value: float, ok: bool) -> None:
    if kind == "counter":
        system.metrics.increment(name, value, tags=tags)
    elif kind == "gauge":
        system.metrics.gauge(name, value, tags=tags)
    elif kind == "histogram":
        system.metrics.observe(name, value, tags=tags)
    else:
        system.monitor.end(system.monitor.start(name, tags=tags), ok=ok)


def all_series(metrics: Metrics) -> list[tuple[str, dict[str, str]]]:
    """Every series the projection knows, and every name/tags pair of the pools (mostly absent)."""
    keys = set(metrics.points) | {series_key(n, t) for n in NAMES for t in TAGS}
    return [(name, dict(tags)) for name, tags in sorted(keys)]


# -- live equals replay -----------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    first=st.lists(MEASUREMENT, max_size=25),
    second=st.lists(MEASUREMENT, max_size=25),
    max_history=st.sampled_from([3, 1000]),
    windows=st.lists(st.sampled_from(["tiny", "half", "span", "hour"]), min_size=1, max_size=3, unique=True),
)
def test_live_summaries_equal_replayed_summaries_at_every_as_of(
    first: list[Any], second: list[Any], max_history: int, windows: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "app.db"
        live: dict[Any, Any] = {}
        with ActorSystem(path, metrics=MetricsOptions(max_history=max_history)) as system:
            before = time.time()
            spin_past(before)
            for kind, name, tag, value, ok in first:
                record(system, kind, name, TAGS[tag], value, ok)
            mid = spin_past(time.time())
            spin_past(mid)
            for kind, name, tag, value, ok in second:
                record(system, kind, name, TAGS[tag], value, ok)
            after = spin_past(time.time())
            system.flush()
            span = after - before
            sizes = {"tiny": span / 1000, "half": span / 2, "span": span * 1.01, "hour": 3600.0}
            moments = [before - 1.0, before, (before + mid) / 2, mid, (mid + after) / 2, after, after + 30.0]
            # while running: a read-only store sees everything flushed
            with EventStore.open_readonly(path) as reader:
                while_running = rebuild_metrics(reader, max_history=max_history)
            series = all_series(while_running)
            for name, tags in series:
                for as_of in moments:
                    for label in windows:
                        live[name, tuple(sorted(tags.items())), as_of, label] = system.metric_summary(
                            name, tags, as_of=as_of, window_seconds=sizes[label]
                        )
            live_snapshot = system.all_metrics()
            assert while_running.snapshot() == live_snapshot
        rebuilt = rebuild_metrics(path, max_history=max_history)
        assert rebuilt.snapshot() == live_snapshot
        assert all_series(rebuilt) == series
        for (name, tags, as_of, label), summary in live.items():
            replayed = rebuilt.summary(name, dict(tags), as_of=as_of, window_seconds=sizes[label])
            assert replayed == summary, (name, tags, as_of, label)
            assert replayed == while_running.summary(name, dict(tags), as_of=as_of, window_seconds=sizes[label])
        # the whole stream is in the log, one event per measurement
        assert len(measurement_records(path)) == len(first) + len(second)


def test_rebuild_until_a_seq_equals_the_live_state_at_that_point(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.metrics.increment("n", 2, tags={"k": "v"})
        system.metrics.gauge("g", 1.0)
        system.metrics.observe("h", 5.0)
        seq = system.flush()
        at_seq = system.all_metrics()
        as_of = time.time()
        summary_then = system.metric_summary("h", as_of=as_of, window_seconds=3600)
        system.metrics.increment("n", 3, tags={"k": "v"})
        system.metrics.gauge("g", 9.0)
        system.metrics.observe("h", 50.0)
        final = system.all_metrics()
    assert rebuild_metrics(path, until_seq=seq).snapshot() == at_seq
    assert rebuild_metrics(path, until_seq=seq).summary("h", as_of=as_of, window_seconds=3600) == summary_then
    assert rebuild_metrics(path).snapshot() == final
    assert final.counters == {"n{k=v}": 5.0} and final.gauges == {"g": 9.0}


def test_rebuild_of_one_run_equals_that_runs_live_metrics(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as first:
        first.metrics.increment("runs")
        first.metrics.observe("h", 1.0)
    with ActorSystem(path) as second:
        second.metrics.increment("runs", 5)
        second.metrics.observe("h", 2.0)
        live = second.all_metrics()
        run = second.run
    assert rebuild_metrics(path, run=run).snapshot() == live
    assert rebuild_metrics(path).snapshot().counters == {"runs": 6.0}


# -- Prometheus -------------------------------------------------------------------------------------------------------


def parse(text: str) -> dict[str, Any]:
    """{family name: (type, {(sample name, frozenset(labels)): value})}."""
    families = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in families, f"family {family.name} exported twice"
        families[family.name] = (
            family.type, {(s.name, frozenset(s.labels.items())): s.value for s in family.samples},
        )
    return families


def test_prometheus_export_parses_back_to_the_metrics(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        before = time.time()
        spin_past(before)
        system.metrics.increment("http.requests", 3, tags={"route": "/a"})
        system.metrics.increment("http.requests", 1.5, tags={"route": "/a"})
        system.metrics.increment("http.requests", tags={"route": "/b"})
        system.metrics.gauge("queue.depth", 7.0)
        system.metrics.gauge("queue.depth", 4.0)
        system.metrics.gauge("pool.size", 2.0, tags={"pool": "db", "az": "1"})
        latencies = [0.25, 0.5, 0.125, 2.0, 1.0, 0.75, 0.5]
        for value in latencies:
            system.metrics.observe("http.latency", value, tags={"route": "/a"})
        with system.monitor.time("db.query"):
            pass
        try:
            with system.monitor.time("db.query"):
                raise RuntimeError("x")
        except RuntimeError:
            pass
        after = spin_past(time.time())
        text = system.prometheus(as_of=after, window_seconds=3600)
        latency = system.metric_summary("http.latency", {"route": "/a"}, as_of=after, window_seconds=3600)
        query = system.metric_summary("db.query", as_of=after, window_seconds=3600)
        empty_text = system.prometheus(as_of=before, window_seconds=3600)
    families = parse(text)
    # counters: <name>_total, dotted names become underscores, tags become labels
    kind, samples = families["http_requests"]
    assert kind == "counter"
    assert samples == {
        ("http_requests_total", frozenset({("route", "/a")})): 4.5,
        ("http_requests_total", frozenset({("route", "/b")})): 1.0,
    }
    assert families["db_query_calls"][1] == {("db_query_calls_total", frozenset()): 2.0}
    assert families["db_query_success"][1] == {("db_query_success_total", frozenset()): 1.0}
    assert families["db_query_errors"][1] == {("db_query_errors_total", frozenset()): 1.0}
    # gauges
    assert families["queue_depth"] == ("gauge", {("queue_depth", frozenset()): 4.0})
    assert families["pool_size"] == ("gauge", {("pool_size", frozenset({("pool", "db"), ("az", "1")})): 2.0})
    # summaries: quantiles equal the summary's percentiles, _count and _sum
    kind, samples = families["http_latency"]
    assert kind == "summary"
    labels = {("route", "/a")}
    assert samples == {
        ("http_latency", frozenset(labels | {("quantile", "0.5")})): latency.p50,
        ("http_latency", frozenset(labels | {("quantile", "0.95")})): latency.p95,
        ("http_latency", frozenset(labels | {("quantile", "0.99")})): latency.p99,
        ("http_latency_count", frozenset(labels)): float(len(latencies)),
        ("http_latency_sum", frozenset(labels)): math.fsum(latencies),
    }
    kind, samples = families["db_query"]
    assert kind == "summary"
    assert samples[("db_query", frozenset({("quantile", "0.95")}))] == query.p95
    assert samples[("db_query_count", frozenset())] == 2.0
    assert math.isclose(samples[("db_query_sum", frozenset())], query.avg * 2)  # type: ignore[operator]
    assert set(families) == {
        "http_requests", "db_query_calls", "db_query_success", "db_query_errors",
        "queue_depth", "pool_size", "http_latency", "db_query",
    }
    # an empty window: counters and gauges as before, summaries with no observations
    empty = parse(empty_text)
    assert empty["http_requests"] == families["http_requests"]
    _, samples = empty["http_latency"]
    assert samples[("http_latency_count", frozenset(labels))] == 0.0
    assert samples[("http_latency_sum", frozenset(labels))] == 0.0
    assert math.isnan(samples[("http_latency", frozenset(labels | {("quantile", "0.5")}))])
    # replay exports the same text
    rebuilt = rebuild_metrics(path)
    assert to_prometheus(rebuilt, as_of=after, window_seconds=3600) == text
    assert to_prometheus(rebuilt, as_of=before, window_seconds=3600) == empty_text


@settings(max_examples=25, deadline=None)
@given(st.lists(MEASUREMENT, min_size=1, max_size=30), st.sampled_from([0.5, 1.0, 2.0]))
def test_prometheus_live_export_equals_the_replayed_export(measurements: list[Any], fraction: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "app.db"
        with ActorSystem(path) as system:
            before = time.time()
            spin_past(before)
            for kind, name, tag, value, ok in measurements:
                # one kind per name: a Prometheus family has one type
                record(system, kind, f"{kind}.{name}", TAGS[tag], value, ok)
            after = spin_past(time.time())
            as_of = before + (after - before) * fraction
            live = system.prometheus(as_of=as_of, window_seconds=3600)
            snapshot = system.all_metrics()
        rebuilt = rebuild_metrics(path)
        assert to_prometheus(rebuilt, as_of=as_of, window_seconds=3600) == live
        families = parse(live)
        for name, tag_items in sorted(rebuilt.points):
            if name.endswith((".calls", ".success", ".errors")) or not name.startswith(("histogram.", "operation.")):
                continue
            summary = rebuilt.summary(name, dict(tag_items), as_of=as_of, window_seconds=3600)
            family = name.replace(".", "_")
            kind, samples = families[family]
            assert kind == "summary"
            labels = frozenset(tag_items)
            assert samples[(family + "_count", labels)] == float(summary.count)
            for q, field in (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99")):
                value = samples[(family, labels | {("quantile", q)})]
                expected = getattr(summary, field)
                assert (math.isnan(value) and expected is None) or value == expected
        for label, total in snapshot.counters.items():
            name, _, tags = label.partition("{")
            labels = frozenset(tuple(kv.split("=", 1)) for kv in tags.rstrip("}").split(",")) if tags else frozenset()
            family = name.replace(".", "_")
            assert families[family][0] == "counter"
            assert families[family][1][(family + "_total", labels)] == total
