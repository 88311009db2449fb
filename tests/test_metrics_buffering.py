"""Buffering, delivery on flush/stop, bad measurements, and overload (block, sample, memory bound)."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from actorlog.actors import ActorSystem, MetricsOptions
from actorlog.replay.rebuild import rebuild_metrics
from actorlog.store import EventStore
from metrics_helpers import (
    BAD_NAMES,
    BAD_VALUES,
    LIFECYCLE_KINDS,
    MEASUREMENT_KINDS,
    BadRecord,
    Fail,
    MetricsPlugin,
    PendingSampler,
    hold_write_lock,
    measurement_records,
    read_log,
    wait_until,
)


def record_many(system: ActorSystem, thread: int, count: int) -> None:
    """``count`` measurements of every kind, in turn, tagged with the thread's number."""
    tags = {"thread": str(thread)}
    for i in range(count):
        match i % 4:
            case 0:
                system.metrics.increment("load.count", tags=tags)
            case 1:
                system.metrics.gauge("load.gauge", float(i), tags=tags)
            case 2:
                system.metrics.observe("load.hist", float(i), tags=tags)
            case _:
                system.monitor.end(system.monitor.start("load.op", tags=tags))


def run_threads(target: Any, count: int, *args: Any) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, args=(i, *args), name=f"t5-recorder-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    return threads


# -- delivery: flush and stop -------------------------------------------------------------------------------------


@pytest.mark.parametrize("buffer_size", [1, 7, 256, 5000])
def test_stop_delivers_every_buffered_measurement_from_several_threads(tmp_path: Path, buffer_size: int) -> None:
    path = tmp_path / "app.db"
    per_thread = 1000
    options = MetricsOptions(buffer_size=buffer_size, flush_interval=3600.0)  # no background sends
    with ActorSystem(path, metrics=options) as system:
        threads = run_threads(lambda i: record_many(system, i, per_thread), 3)
        for thread in threads:
            thread.join()
        # the recording threads have ended; their buffers are delivered all the same
        assert not any(thread.is_alive() for thread in threads)
    records = measurement_records(path)
    assert len(records) == 3 * per_thread
    by_thread = Counter(r.event.tags["thread"] for r in records)
    assert by_thread == {"0": per_thread, "1": per_thread, "2": per_thread}
    # each thread's measurements stay in the order it recorded them
    for thread in "012":
        gauges = [r.event.value for r in records if r.kind == "gauge.set" and r.event.tags["thread"] == thread]
        assert gauges == [float(i) for i in range(1, per_thread, 4)]
    assert {r.actor for r in records} == {"metrics"}
    assert read_log(path, kinds=["measurements.dropped"]) == []
    rebuilt = rebuild_metrics(path).snapshot()
    for thread in "012":
        assert rebuilt.counters[f"load.count{{thread={thread}}}"] == per_thread / 4
        assert rebuilt.counters[f"load.op.calls{{thread={thread}}}"] == per_thread / 4


def test_flush_delivers_buffered_measurements_of_ended_threads(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    options = MetricsOptions(buffer_size=10_000, flush_interval=3600.0)
    with ActorSystem(path, metrics=options) as system:
        threads = run_threads(lambda i: record_many(system, i, 333), 3)
        for thread in threads:
            thread.join()
        system.metrics.increment("main.thread")
        system.store.flush()
        assert len(measurement_records(path)) == 0  # all still buffered: nothing waited for the disk
        system.flush()
        # after flush, a read-only reader sees every one of them
        assert len(measurement_records(path)) == 3 * 333 + 1
        snapshot = system.all_metrics()
        assert snapshot.counters["main.thread"] == 1.0
        assert snapshot.counters["load.count{thread=2}"] == 84.0
    assert len(measurement_records(path)) == 3 * 333 + 1


def test_background_sender_delivers_partly_filled_buffers(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path, metrics=MetricsOptions(buffer_size=1000, flush_interval=0.01)) as system:
        for _ in range(5):
            system.metrics.increment("bg")

        def committed() -> int:
            system.store.flush()
            return len(measurement_records(path))

        wait_until(lambda: committed() == 5, what="the background sender delivers without flush")


def test_with_block_delivers_measurements_recorded_just_before_leaving(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path, metrics=MetricsOptions(flush_interval=3600.0)) as system:
        for i in range(1000):
            system.metrics.observe("last.second", float(i))
    records = measurement_records(path)
    assert [r.event.value for r in records] == [float(i) for i in range(1000)]


# -- bad measurements ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", BAD_VALUES, ids=repr)
def test_bad_values_raise_value_error_at_the_caller_and_nothing_is_logged(tmp_path: Path, value: Any) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        for record in (system.metrics.increment, system.metrics.gauge, system.metrics.observe):
            with pytest.raises(ValueError):
                record("bad.value", value)
        system.flush()
        assert measurement_records(path) == []
        # the collector keeps working
        system.metrics.increment("good", 2)
        system.metrics.gauge("good.gauge", 1.5)
        snapshot = system.all_metrics()
    assert snapshot.counters == {"good": 2.0} and snapshot.gauges == {"good.gauge": 1.5}
    assert [r.kind for r in measurement_records(path)] == ["counter.incremented", "gauge.set"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_bad_names_raise_value_error_at_the_caller_and_nothing_is_logged(tmp_path: Path, name: Any) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        for record in (system.metrics.gauge, system.metrics.observe):
            with pytest.raises(ValueError):
                record(name, 1.0)
        with pytest.raises(ValueError):
            system.metrics.increment(name)
        system.metrics.observe("good", 1.0)
        assert system.metric_summary("good", window_seconds=3600).count == 1
    assert [r.event.name for r in measurement_records(path)] == ["good"]


def test_bad_measurements_from_a_plugin_raise_value_error_in_the_handler(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("worker", MetricsPlugin)
        system.start()
        outcomes = system.ask("worker", BadRecord(), timeout=5)
        assert outcomes == ["ValueError"] * (3 * len(BAD_VALUES) + len(BAD_NAMES))
        system.flush()
        assert measurement_records(path) == []
        system.metrics.increment("after")
        assert system.all_metrics().counters == {"after": 1.0}
    assert read_log(path, kinds=["failure.raised"]) == []


@pytest.mark.parametrize("tags", [{"k": 1}, {"k": None}, {1: "v"}, {"k": ["v"]}], ids=repr)
def test_tags_that_the_log_cannot_hold_are_refused_at_the_caller(tmp_path: Path, tags: Any) -> None:
    """Tags are ``dict[str, str]`` in the log. A tag that is not a str must be refused when
    it is recorded, not logged: otherwise the log holds an event replay cannot decode."""
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        with pytest.raises((ValueError, TypeError)):
            system.metrics.increment("tagged", tags=tags)
        with pytest.raises((ValueError, TypeError)):
            system.metrics.observe("tagged", 1.0, tags=tags)
        with pytest.raises((ValueError, TypeError)):
            system.monitor.start("tagged.op", tags=tags)
        system.metrics.increment("fine", tags={"k": "v"})
        live = system.all_metrics()
    assert live.counters == {"fine{k=v}": 1.0}
    assert rebuild_metrics(path).snapshot() == live  # the log replays


# -- overload ---------------------------------------------------------------------------------------------------------


def test_sample_overload_drops_are_counted_and_logged_and_nothing_else_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    threads_n, per_thread, failures = 4, 1500, 5
    options = MetricsOptions(max_pending=50, overload="sample", buffer_size=10)
    store_options = {"busy_timeout": 10, "max_pending_rows": 200}
    with ActorSystem(path, metrics=options, store_options=store_options) as system:
        system.register("flaky", MetricsPlugin)
        system.start()
        system.flush()
        backlog = system._recorder.backlog
        late_done = threading.Event()

        def during_overload() -> None:
            # a plugin registered and started, and failures raised, while the store is slowed
            system.register("late", MetricsPlugin)
            system.start()
            for i in range(failures):
                system.tell("flaky", Fail(text=f"failure {i}"))
            late_done.set()

        with PendingSampler(backlog) as sampler:
            with hold_write_lock(path):
                threads = run_threads(lambda i: record_many(system, i, per_thread), threads_n)
                side = threading.Thread(target=during_overload, name="t5-side")
                side.start()
                for thread in threads:
                    thread.join()  # sampling never waits: every thread finishes while the disk is locked
            side.join(timeout=30)
            assert late_done.is_set()
            wait_until(lambda: len(read_log(path, kinds=["failure.raised"])) == failures, what="failures logged")
            live = system.all_metrics()
        assert sampler.maximum <= options.max_pending + options.buffer_size
    total = threads_n * per_thread
    measurements = measurement_records(path)
    drops = [r.event.count for r in read_log(path, kinds=["measurements.dropped"])]
    assert drops, "the store was locked and the backlog small: some measurements must have been dropped"
    assert all(count > 0 for count in drops)
    assert len(measurements) + sum(drops) == total  # nothing silently lost
    assert len(measurements) < total
    assert live.dropped == sum(drops)
    assert rebuild_metrics(path).snapshot().dropped == sum(drops)
    assert {r.actor for r in read_log(path, kinds=["measurements.dropped"])} == {"metrics"}
    # lifecycle and failure events are never dropped
    lifecycle = [(r.kind, r.event.plugin) for r in read_log(path, kinds=list(LIFECYCLE_KINDS))]
    for plugin in ("flaky", "late"):
        for kind in LIFECYCLE_KINDS:
            assert lifecycle.count((kind, plugin)) == 1, (kind, plugin, lifecycle)
    raised = read_log(path, kinds=["failure.raised"])
    assert sorted(r.event.message for r in raised) == sorted(f"failure {i}" for i in range(failures))
    assert len(read_log(path, kinds=["recovery.decided"])) == failures
    received = [r for r in read_log(path, kinds=["message.received"]) if r.event.recipient == "flaky"]
    assert len(received) == failures


def test_block_overload_slows_senders_and_drops_nothing(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    threads_n, per_thread = 3, 1200
    options = MetricsOptions(max_pending=50, buffer_size=10)  # overload="block" by default
    assert options.overload == "block"
    store_options = {"busy_timeout": 10, "max_pending_rows": 200}
    with ActorSystem(path, metrics=options, store_options=store_options) as system:
        system.flush()
        backlog = system._recorder.backlog
        with PendingSampler(backlog) as sampler:
            with hold_write_lock(path):
                threads = run_threads(lambda i: record_many(system, i, per_thread), threads_n)
                # the store is stuck, the collector waits on it, and the backlog fills up:
                # the senders are now waiting for room (back-pressure), not dropping
                wait_until(
                    lambda: backlog.pending > options.max_pending - options.buffer_size,
                    timeout=5.0, what="the backlog fills while the store is locked",
                )
                assert any(thread.is_alive() for thread in threads)
            for thread in threads:
                thread.join()
            live = system.all_metrics()
        assert sampler.maximum <= options.max_pending + options.buffer_size
        assert backlog.dropped == 0
    measurements = measurement_records(path)
    assert len(measurements) == threads_n * per_thread
    assert read_log(path, kinds=["measurements.dropped"]) == []
    assert live.dropped == 0
    assert Counter(r.event.tags["thread"] for r in measurements) == {str(i): per_thread for i in range(threads_n)}


def test_backlog_is_bounded_under_sustained_load(tmp_path: Path) -> None:
    """Without locking anything: many threads recording as fast as they can never have
    more than max_pending + buffer_size measurements on their way to the collector."""
    path = tmp_path / "app.db"
    for overload in ("block", "sample"):
        options = MetricsOptions(max_pending=100, buffer_size=25, overload=overload)  # type: ignore[arg-type]
        log = path.with_name(f"{overload}.db")
        with ActorSystem(log, metrics=options) as system:
            with PendingSampler(system._recorder.backlog) as sampler:
                threads = run_threads(lambda i: record_many(system, i, 2000), 4)
                for thread in threads:
                    thread.join()
                system.flush()
            assert sampler.samples > 0
            assert sampler.maximum <= options.max_pending + options.buffer_size
            assert system._recorder.backlog.pending == 0
            live = system.all_metrics()
        drops = sum(r.event.count for r in read_log(log, kinds=["measurements.dropped"]))
        assert len(measurement_records(log)) + drops == 4 * 2000
        assert live.dropped == drops
        if overload == "block":
            assert drops == 0


def test_metrics_options_are_validated() -> None:
    for bad in (
        {"max_history": 0}, {"max_pending": 0}, {"buffer_size": 0}, {"flush_interval": 0},
        {"overload": "drop"},
    ):
        with pytest.raises(ValueError):
            MetricsOptions(**bad)  # type: ignore[arg-type]


def test_measurements_share_the_log_with_an_open_store(tmp_path: Path) -> None:
    """A system over an open EventStore: stop delivers the buffers and leaves the store open."""
    path = tmp_path / "app.db"
    with EventStore(path) as store:
        with ActorSystem(store, metrics=MetricsOptions(flush_interval=3600.0)) as system:
            for i in range(50):
                system.metrics.increment("shared")
        store.flush()
        kinds = [r.kind for r in store.events(kinds=list(MEASUREMENT_KINDS))]
    assert kinds == ["counter.incremented"] * 50
