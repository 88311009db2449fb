"""Rebuilding statistics from a log: plugin states, error statistics, metrics, and the
options that choose what is folded (run, until_seq, as_of), streamed in small chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actor_helpers import live_events, share
from actorlog.actors import ActorSystem, ErrorPolicy
from actorlog.actors.errors import UnhealthyError
from actorlog.replay import rebuild, rebuild_error_statistics, rebuild_metrics, statistics_document
from actorlog.store import EventStore
from replay_helpers import (
    EVENTS,
    GENEROUS_RESTARTS,
    TIME_STEPS,
    Busy,
    BusyV2,
    RecordedLog,
    T6Error,
    Work,
    append_timed,
    count,
    fresh_log,
    read,
    record_log,
    timed_events,
    wait_until,
)

HYPOTHESIS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> RecordedLog:
    return record_log(tmp_path_factory.mktemp("recorded") / "app.db")


def qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# -- plugin states and error statistics from a real run ------------------------------------------


def stop_on_app_error(failure: Any) -> str | None:
    return "stop" if isinstance(failure.exception, T6Error) else None


def test_rebuild_reports_plugin_states_versions_restarts_health_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    steady_health, shaky_health = {"mode": "ok"}, {"mode": "ok"}
    policy = ErrorPolicy(handlers={T6Error: stop_on_app_error})
    with ActorSystem(path, restart_policy=GENEROUS_RESTARTS, error_policy=policy) as system:
        system.register("steady", BusyV2, config={"health": share(steady_health)})
        system.register("shaky", Busy, config={"health": share(shaky_health)})
        system.register("doomed", Busy)
        system.start()
        assert system.check_health("steady", timeout=10)["steady"].healthy
        with pytest.raises(OSError):
            system.ask("shaky", Work(fail="OSError", text="disk gone"), timeout=10)
        wait_until(lambda: count(system, "plugin.restarted") == 1)
        wait_until(lambda: system.state("shaky") == "running")  # resumed: the health check reaches the instance
        shaky_health["mode"] = "sick"
        assert not system.check_health("shaky", timeout=10)["shaky"].healthy
        wait_until(lambda: count(system, "plugin.restarted") == 2)
        with pytest.raises(T6Error):
            system.ask("doomed", Work(fail="T6Error", text="give up"), timeout=10)
        wait_until(lambda: any(r.event.plugin == "doomed" for r in live_events(system, kinds=["plugin.stopped"])))
        live = system.statistics()
        run = system.run

    checks = {r.event.plugin: r for r in read(path, kinds=["plugin.health_checked"])}
    assert set(checks) == {"steady", "shaky"}
    assert list(live["plugins"]) == [run]
    plugins = live["plugins"][run]
    registered = {r.event.plugin: r for r in read(path, kinds=["plugin.registered"])}

    def history(name: str, version: str, path: str) -> list[dict[str, object]]:
        record = registered[name]
        return [{"seq": record.seq, "time": record.ts, "change": "registered", "version": version, "class_path": path}]

    assert plugins["steady"] == {
        "state": "running", "version": "2.5", "class_path": "replay_helpers:BusyV2", "restarts": 0,
        "healthy": True, "health_detail": "fine", "last_health_at": checks["steady"].ts, "run": run,
        "history": history("steady", "2.5", "replay_helpers:BusyV2"),
    }
    assert plugins["shaky"] == {
        "state": "running", "version": "1.0", "class_path": "replay_helpers:Busy", "restarts": 2,
        "healthy": False, "health_detail": "disk full", "last_health_at": checks["shaky"].ts, "run": run,
        "history": history("shaky", "1.0", "replay_helpers:Busy"),
    }
    assert plugins["doomed"]["state"] == "stopped"
    assert plugins["doomed"]["healthy"] is None and plugins["doomed"]["last_health_at"] is None

    after = rebuild(path)
    final = after.plugins.snapshot()[run]
    assert {name: p["state"] for name, p in final.items()} == {"steady": "stopped", "shaky": "stopped", "doomed": "stopped"}
    assert final["shaky"]["restarts"] == 2 and final["shaky"]["healthy"] is False

    raised = read(path, kinds=["failure.raised"])
    errors = after.document()["errors"]
    assert errors["total_errors"] == 3
    assert errors["error_types"] == {"builtins.OSError": 1, qualname(UnhealthyError): 1, qualname(T6Error): 1}
    assert errors["severity_distribution"] == {"high": 2, "low": 1}
    assert errors["errors_by_plugin"] == {"shaky": 2, "doomed": 1}
    assert [(e["plugin"], e["type"], e["seq"]) for e in errors["recent_errors"]] == [
        (r.event.plugin, r.event.exc_type, r.seq) for r in raised
    ]
    assert [e["message"] for e in errors["recent_errors"]][::2] == ["disk gone", "give up"]
    assert errors == live["errors"]
    assert rebuild_error_statistics(path).total_errors == 3


def test_rebuild_reports_counters_gauges_and_histogram_summaries(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.metrics.increment("t6.c", 2.0)
        system.metrics.increment("t6.c", 2.0, tags={"zone": "eu"})
        system.metrics.increment("t6.c", 2.0)
        system.metrics.gauge("t6.g", 3.0)
        system.metrics.gauge("t6.g", 7.0)
        for value in (5.0, 1.0, 4.0, 2.0, 3.0):
            system.metrics.observe("t6.h", value)
        with system.monitor.time("t6.op"):
            pass
        with pytest.raises(T6Error), system.monitor.time("t6.op"):
            raise T6Error("no")
    metrics = rebuild(path).document()["metrics"]
    assert metrics["counters"] == {"t6.c": 4.0, "t6.c{zone=eu}": 2.0, "t6.op.calls": 2.0, "t6.op.errors": 1.0,
                                   "t6.op.success": 1.0}
    assert metrics["gauges"] == {"t6.g": 7.0}
    assert set(metrics["histograms"]) == {"t6.h", "t6.op"}
    h = metrics["histograms"]["t6.h"]
    assert (h["count"], h["min"], h["max"], h["avg"], h["latest"], h["p50"]) == (5, 1.0, 5.0, 3.0, 3.0, 3.0)
    assert h["p95"] == pytest.approx(4.8) and h["p99"] == pytest.approx(4.96)
    assert metrics["histograms"]["t6.op"]["count"] == 2
    assert metrics["dropped"] == 0
    assert rebuild_metrics(path).snapshot().counters["t6.c"] == 4.0


# -- run= ---------------------------------------------------------------------------------------


def test_each_runs_statistics_count_only_that_runs_events(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with ActorSystem(path, run="t6-first") as system:
        system.register("a", Busy)
        system.start()
        for text in ("x", "y"):
            with pytest.raises(ValueError):
                system.ask("a", Work(fail="ValueError", text=text), timeout=10)
        system.metrics.increment("t6.c", 1.0)
        wait_until(lambda: count(system, "failure.assessed") == 2)
    with ActorSystem(path, run="t6-second") as system:
        system.register("b", BusyV2)
        system.start()
        for text in ("p", "q", "r"):
            with pytest.raises(KeyError):
                system.ask("b", Work(fail="KeyError", text=text), timeout=10)
        system.metrics.increment("t6.c", 10.0)
        wait_until(lambda: count(system, "failure.assessed") == 3)

    first = statistics_document(path, run="t6-first")
    second = statistics_document(path, run="t6-second")
    both = statistics_document(path)
    assert first["errors"]["total_errors"] == 2 and first["errors"]["error_types"] == {"builtins.ValueError": 2}
    assert second["errors"]["total_errors"] == 3 and second["errors"]["error_types"] == {"builtins.KeyError": 3}
    assert both["errors"]["total_errors"] == 5
    assert first["plugins"] == {"t6-first": first["plugins"]["t6-first"]} and set(first["plugins"]["t6-first"]) == {"a"}
    assert set(second["plugins"]["t6-second"]) == {"b"} and set(both["plugins"]) == {"t6-first", "t6-second"}
    assert first["plugins"]["t6-first"]["a"]["run"] == "t6-first"
    assert second["plugins"]["t6-second"]["b"]["version"] == "2.5"
    assert first["metrics"]["counters"] == {"t6.c": 1.0}
    assert second["metrics"]["counters"] == {"t6.c": 10.0}
    assert both["metrics"]["counters"] == {"t6.c": 11.0}
    runs = {r.run: r.seq for r in read(path)}  # the last seq of each run
    assert first["position"] == runs["t6-first"] and second["position"] == runs["t6-second"]
    assert statistics_document(path, run="no-such-run")["errors"]["total_errors"] == 0
    assert statistics_document(path, run="no-such-run")["plugins"] == {}


# -- until_seq= -----------------------------------------------------------------------------------


def model_state(records: list[Any], plugin: str, until: int) -> str | None:
    """An independent reading of a plugin's state as of seq ``until``."""
    states = {"plugin.registered": "registered", "plugin.starting": "starting", "plugin.started": "running",
              "plugin.stopping": "stopping", "plugin.stopped": "stopped", "plugin.failed": "failed"}
    state = None
    for record in records:
        if record.seq <= until and record.kind in states and record.event.plugin == plugin:
            state = states[record.kind]
    return state


def by_name(plugins: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Plugins by name, each from the latest run that has it (runs come in order here)."""
    return {name: plugin for named in plugins.values() for name, plugin in named.items()}


def test_until_seq_gives_the_statistics_as_of_every_event(recorded: RecordedLog) -> None:
    records = read(recorded.path)
    assessed = {r.seq for r in records if r.kind == "failure.assessed"}
    restarted = next(r.seq for r in records if r.kind == "plugin.restarted")
    previous = rebuild(recorded.path, until_seq=0)
    assert previous.position == 0 and previous.plugins.snapshot() == {}
    for record in records:
        statistics = rebuild(recorded.path, until_seq=record.seq)
        assert statistics.position == record.seq
        total, before = statistics.errors.total, previous.errors.total
        assert total == before + (1 if record.seq in assessed else 0), record
        plugins = by_name(statistics.plugins.snapshot())
        for name in ("alpha", "beta", "calc"):
            assert plugins.get(name, {}).get("state") == model_state(records, name, record.seq), (name, record)
        if "alpha" in plugins and record.run == records[0].run:
            assert plugins["alpha"]["restarts"] == (1 if record.seq >= restarted else 0)
        previous = statistics


def test_until_seq_between_started_and_stopped_is_running(recorded: RecordedLog) -> None:
    records = read(recorded.path)
    started = next(r.seq for r in records if r.kind == "plugin.started" and r.event.plugin == "beta")
    stopping = next(r.seq for r in records if r.kind == "plugin.stopping" and r.event.plugin == "beta")
    stopped = next(r.seq for r in records if r.kind == "plugin.stopped" and r.event.plugin == "beta")
    assert stopping - started > 2
    for seq in (started, (started + stopping) // 2, stopping - 1):
        assert by_name(rebuild(recorded.path, until_seq=seq).plugins.snapshot())["beta"]["state"] == "running"
    assert by_name(rebuild(recorded.path, until_seq=stopping).plugins.snapshot())["beta"]["state"] == "stopping"
    assert by_name(rebuild(recorded.path, until_seq=stopped).plugins.snapshot())["beta"]["state"] == "stopped"
    assert by_name(rebuild(recorded.path, until_seq=started - 1).plugins.snapshot())["beta"]["state"] == "starting"


def test_one_seq_before_a_failure_is_assessed_there_is_one_error_less(recorded: RecordedLog) -> None:
    last = read(recorded.path, kinds=["failure.assessed"])[-1]
    at = statistics_document(recorded.path, until_seq=last.seq)
    before = statistics_document(recorded.path, until_seq=last.seq - 1)
    assert at["errors"]["total_errors"] == before["errors"]["total_errors"] + 1
    assert at["errors"]["recent_errors"][-1]["type"] == last.event.exc_type
    assert last.event.exc_type not in before["errors"]["error_types"] or (
        at["errors"]["error_types"][last.event.exc_type] == before["errors"]["error_types"][last.event.exc_type] + 1
    )


# -- as_of= ---------------------------------------------------------------------------------------


@HYPOTHESIS
@given(events=st.lists(EVENTS, min_size=1, max_size=25), gaps=st.lists(TIME_STEPS, min_size=1, max_size=5),
       probe=st.floats(min_value=-1.0, max_value=1.0))
def test_as_of_a_time_equals_until_the_last_event_at_or_before_it(
    tmp_path: Path, events: list[Any], gaps: list[float], probe: float
) -> None:
    path = fresh_log(tmp_path)
    items = timed_events(events, gaps)
    with EventStore(path) as store:
        append_timed(store, items)
    times = [ts for _, _, ts in items]
    moments = sorted(set(times)) + [times[0] - 1.0, times[-1] + 100.0, times[0] + (times[-1] - times[0]) * abs(probe)]
    for moment in moments:
        last = max((seq for seq, ts in enumerate(times, start=1) if ts <= moment), default=0)
        by_time = rebuild(path, as_of=moment).document(as_of=moment)
        by_seq = rebuild(path, until_seq=last).document(as_of=moment)
        assert by_time == by_seq, (moment, last)
        assert by_time["position"] == last
        assert statistics_document(path, as_of=moment) == by_time


def test_as_of_moves_the_end_of_metric_windows(tmp_path: Path) -> None:
    from actorlog.events import HistogramObserved

    path = tmp_path / "app.db"
    with EventStore(path) as store:
        for i in range(10):
            store.append(HistogramObserved(name="t6.h", value=float(i)), actor="metrics", ts=1000.0 + i)
    whole = statistics_document(path, as_of=1009.0)["metrics"]["histograms"]["t6.h"]
    assert (whole["count"], whole["min"], whole["max"], whole["latest"]) == (10, 0.0, 9.0, 9.0)
    early = statistics_document(path, as_of=1004.5)["metrics"]["histograms"]["t6.h"]
    assert (early["count"], early["max"], early["latest"], early["as_of"]) == (5, 4.0, 4.0, 1004.5)
    window = statistics_document(path, as_of=1006.0, window_seconds=3.0)["metrics"]["histograms"]["t6.h"]
    assert (window["count"], window["min"], window["max"]) == (3, 4.0, 6.0)


# -- streaming ------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 3, 7])
def test_rebuild_streams_in_tiny_chunks_to_the_same_result(recorded: RecordedLog, chunk_size: int) -> None:
    records = read(recorded.path)
    with EventStore.open_readonly(recorded.path, chunk_size=chunk_size) as store:
        for until in (None, records[len(records) // 2].seq, records[-1].seq):
            assert rebuild(store, until_seq=until).document() == rebuild(recorded.path, until_seq=until).document()
        assert rebuild(store, run=records[-1].run).document() == rebuild(recorded.path, run=records[-1].run).document()
        assert store.count() == len(records)  # the store given is left open for its owner
