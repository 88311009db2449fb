"""Live metrics equal replayed metrics at every as_of; the Prometheus export, live and replayed."""

from __future__ import annotations

import json
import math
import subprocess
import sys
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
        system.metrics.increment(name, abs(value), tags=tags)  # a counter only goes up (issue 17)
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
        text = system.prometheus()
        query = system.metric_summary("db.query", window_seconds=3600)
    run = ("run", system.run)
    families = parse(text)
    # counters: <name>_total, dotted names become underscores, tags become labels, beside the run
    kind, samples = families["http_requests"]
    assert kind == "counter"
    assert samples == {
        ("http_requests_total", frozenset({run, ("route", "/a")})): 4.5,
        ("http_requests_total", frozenset({run, ("route", "/b")})): 1.0,
    }
    assert families["db_query_calls"][1] == {("db_query_calls_total", frozenset({run})): 2.0}
    assert families["db_query_success"][1] == {("db_query_success_total", frozenset({run})): 1.0}
    assert families["db_query_errors"][1] == {("db_query_errors_total", frozenset({run})): 1.0}
    # gauges
    assert families["queue_depth"] == ("gauge", {("queue_depth", frozenset({run})): 4.0})
    assert families["pool_size"] == ("gauge", {("pool_size", frozenset({run, ("pool", "db"), ("az", "1")})): 2.0})
    # histograms: cumulative buckets (the default ones, in seconds), _count and _sum
    kind, samples = families["http_latency"]
    assert kind == "histogram"
    labels = frozenset({run, ("route", "/a")})
    assert samples[("http_latency_count", labels)] == float(len(latencies))
    assert samples[("http_latency_sum", labels)] == math.fsum(latencies)
    for bound in (0.1, 0.25, 0.5, 1.0, 2.5):
        le = frozenset(labels | {("le", str(bound))})
        assert samples[("http_latency_bucket", le)] == sum(1 for v in latencies if v <= bound)
    assert samples[("http_latency_bucket", frozenset(labels | {("le", "+Inf")}))] == len(latencies)
    # a timed operation is a histogram named in seconds
    kind, samples = families["db_query_seconds"]
    assert kind == "histogram"
    assert samples[("db_query_seconds_count", frozenset({run}))] == 2.0
    assert math.isclose(samples[("db_query_seconds_sum", frozenset({run}))], query.avg * 2)  # type: ignore[operator]
    assert set(families) == {
        "http_requests", "db_query_calls", "db_query_success", "db_query_errors",
        "queue_depth", "pool_size", "http_latency", "db_query_seconds",
    }
    # replay exports the same text
    assert to_prometheus(rebuild_metrics(path)) == text


@settings(max_examples=25, deadline=None)
@given(st.lists(MEASUREMENT, min_size=1, max_size=30), st.sampled_from([0.5, 1.0, 2.0]))
def test_prometheus_live_export_equals_the_replayed_export(measurements: list[Any], fraction: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "app.db"
        cut = max(1, int(len(measurements) * fraction))
        with ActorSystem(path) as system:
            for kind, name, tag, value, ok in measurements[:cut]:
                # one kind per name: a Prometheus family has one type
                record(system, kind, f"{kind}.{name}", TAGS[tag], value, ok)
            earlier = parse(system.prometheus())
            for kind, name, tag, value, ok in measurements[cut:]:
                record(system, kind, f"{kind}.{name}", TAGS[tag], value, ok)
            live = system.prometheus()
            snapshot = system.all_metrics()
        rebuilt = rebuild_metrics(path)
        assert to_prometheus(rebuilt) == live
        families = parse(live)
        run = ("run", system.run)
        # cumulative: no counter, histogram count or bucket went down since the earlier scrape
        for family, (kind, samples) in earlier.items():
            if kind in ("counter", "histogram"):
                for sample, value in samples.items():
                    if not sample[0].endswith("_sum"):
                        assert families[family][1][sample] >= value
        for name, tag_items in sorted(rebuilt.points):
            if name.endswith((".calls", ".success", ".errors")) or not name.startswith(("histogram.", "operation.")):
                continue
            observed = [m for m in measurements
                        if f"{m[0]}.{m[1]}" == name and tuple(sorted(TAGS[m[2]].items())) == tag_items]
            family = name.replace(".", "_") + ("_seconds" if name.startswith("operation.") else "")
            kind, samples = families[family]
            assert kind == "histogram"
            labels = frozenset(tag_items) | {run}
            assert samples[(family + "_count", labels)] == float(len(observed))  # every one, not max_history
        for label, total in snapshot.counters.items():
            name, _, tags = label.partition("{")
            labels = frozenset(tuple(kv.split("=", 1)) for kv in tags.rstrip("}").split(",")) if tags else frozenset()
            family = name.replace(".", "_")
            assert families[family][0] == "counter"
            assert families[family][1][(family + "_total", labels | {run})] == total


def test_a_recorded_max_history_is_what_every_reader_keeps(tmp_path: Path) -> None:
    """The issue's case: with ``max_history=3`` live, ``actorlog stats`` and ``rebuild_metrics``
    kept 1000 points, because the log did not record the option. Now the log does, and no reader
    is told it."""
    path = tmp_path / "app.db"
    with ActorSystem(path, metrics=MetricsOptions(max_history=3)) as system:
        for i in range(10):
            system.metrics.observe("hist", float(i))
        system.flush()
        live = system.metric_summary("hist", window_seconds=3600)
    assert (live.count, live.min, live.max) == (3, 7.0, 9.0)
    rebuilt = rebuild_metrics(path)
    assert rebuilt.max_history == 3
    assert rebuilt.summary("hist", as_of=live.as_of, window_seconds=3600) == live
    cli = Path(sys.executable).parent / "actorlog"
    done = subprocess.run([str(cli), "stats", str(path), "--json"], capture_output=True, text=True, check=True)
    histogram = json.loads(done.stdout)["metrics"]["histograms"]["hist"]
    assert (histogram["count"], histogram["min"], histogram["max"]) == (3, 7.0, 9.0)
