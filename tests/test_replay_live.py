"""Live statistics equal replayed statistics: ``system.statistics()`` taken while the
system runs equals ``statistics_document(log, until_seq=...)`` folded afterwards, and the
JSON ``actorlog stats --json --until-seq`` prints."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

from actorlog.actors import ActorSystem, MetricsOptions
from actorlog.replay import statistics_document
from replay_helpers import (
    GENEROUS_RESTARTS,
    WORKLOADS,
    Busy,
    Work,
    fresh_log,
    read,
    run_cli,
    run_workload,
)


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(workload=WORKLOADS)
def test_live_statistics_equal_replay_and_the_cli(tmp_path: Path, workload: tuple[int, list[Any]]) -> None:
    plugins, steps = workload
    path = fresh_log(tmp_path)
    with ActorSystem(path, restart_policy=GENEROUS_RESTARTS) as system:
        expected = run_workload(system, plugins, steps)
        live = system.statistics()
        assert system.statistics() == live  # nothing in between: the same document
        run = system.run
    replayed = statistics_document(path, until_seq=live["position"])
    assert replayed == live
    assert statistics_document(path, until_seq=live["position"], use_snapshots=False) == live
    result = run_cli("stats", path, "--json", "--until-seq", live["position"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == live

    # and the statistics are right, not merely equal: an independent model of the workload
    errors = live["errors"]
    assert errors["total_errors"] == expected.total_errors
    assert errors["error_types"] == dict(expected.error_types)
    assert errors["errors_by_plugin"] == dict(expected.errors_by_plugin)
    assert sum(errors["severity_distribution"].values()) == expected.total_errors
    assert live["metrics"]["counters"] == {name: float(v) for name, v in expected.counters.items()}
    assert set(live["metrics"]["histograms"]) >= set(expected.observations)
    for i in range(plugins):
        plugin = live["plugins"][run][f"w{i}"]
        assert plugin["state"] == "running"
        assert plugin["restarts"] == expected.restarts[f"w{i}"]
        assert plugin["version"] == ("1.0" if i % 2 == 0 else "2.5")


def test_live_statistics_taken_while_other_threads_write_equal_replay(tmp_path: Path) -> None:
    """The position a live document reports must be exactly what it folded, even while
    other threads keep appending failures."""
    path = tmp_path / "busy.db"
    documents: list[dict[str, Any]] = []
    with ActorSystem(path) as system:
        system.register("w0", Busy)
        system.start()
        done = threading.Event()

        def hammer() -> None:
            try:
                for i in range(300):
                    try:
                        system.ask("w0", Work(fail="ValueError", text=f"#{i}"), timeout=10)
                    except ValueError:
                        pass
            finally:
                done.set()

        thread = threading.Thread(target=hammer)
        thread.start()
        while not done.is_set() or not documents:
            documents.append(system.statistics())
        thread.join()
    mismatches = [
        (doc["position"], doc["errors"]["total_errors"], replayed["errors"]["total_errors"])
        for doc in documents
        if (replayed := statistics_document(path, until_seq=doc["position"])) != doc
    ]
    assert not mismatches, f"{len(mismatches)} of {len(documents)} live documents differ from replay: {mismatches[:5]}"


def test_live_statistics_count_every_observation_already_folded(tmp_path: Path) -> None:
    """Measurements from different threads reach the log in batches, not in time order:
    the last event folded is not always the newest. A document "as of event N" must still
    summarise every observation up to event N."""
    path = tmp_path / "app.db"
    only_explicit_flushes = MetricsOptions(flush_interval=60.0)
    with ActorSystem(path, metrics=only_explicit_flushes) as system:
        system.register("w0", Busy)
        system.start()
        system.metrics.increment("t6.first")  # the application thread's buffer is sent first
        system.ask("w0", Work(value=5.0), timeout=10)  # the plugin thread observes t6.value
        system.metrics.observe("t6.late", 9.0)  # observed after it, sent before it
        live = system.statistics()
    replayed = statistics_document(path, until_seq=live["position"])
    assert replayed == live
    histograms = live["metrics"]["histograms"]
    assert histograms["t6.value"]["count"] == 1
    assert histograms["t6.late"]["count"] == 1, histograms["t6.late"]
    assert histograms["t6.late"]["latest"] == 9.0
    assert live["as_of"] >= max(r.ts for r in read(path, to_seq=live["position"]))


def test_live_documents_taken_under_load_are_reproduced_from_their_own_as_of(tmp_path: Path) -> None:
    """Time travel by time holds under load: measurements still in a thread's buffer when a
    document is taken commit later, yet never with a time at or before that document's
    ``as_of``, so ``rebuild(log, run=R, as_of=doc["as_of"])`` gives the document back."""
    path = tmp_path / "load.db"
    documents: list[dict[str, Any]] = []
    with ActorSystem(path, metrics=MetricsOptions(buffer_size=64, flush_interval=0.05)) as system:
        system.register("w0", Busy)
        system.start()
        stop = threading.Event()

        def measure(thread: int) -> None:
            i = 0
            while not stop.wait(0.002):  # paced: a steady load, not an overload (that has its own suite)
                for _ in range(20):
                    i += 1
                    system.metrics.observe("t6.load", float(i % 100), tags={"thread": str(thread)})
                    system.metrics.increment("t6.calls")

        def work() -> None:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    system.ask("w0", Work(value=float(i), fail="ValueError" if i % 7 == 0 else ""), timeout=10)
                except ValueError:
                    pass

        threads = [threading.Thread(target=measure, args=(n,)) for n in range(2)] + [threading.Thread(target=work)]
        for thread in threads:
            thread.start()
        try:
            while len(documents) < 20:
                document = system.statistics(window_seconds=1.0)
                # one document per point of the log: on a loaded machine nothing may commit between two reads
                if not documents or document["position"] != documents[-1]["position"]:
                    documents.append(document)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        run = system.run
    assert len({doc["position"] for doc in documents}) == len(documents), "each document at its own point"
    mismatches = [doc["position"] for doc in documents
                  if statistics_document(path, run=run, as_of=doc["as_of"], window_seconds=1.0,
                                         use_snapshots=False) != doc]
    assert not mismatches, f"{len(mismatches)} of {len(documents)} documents differ from rebuild(as_of=...)"
    # and by seq, as before
    assert all(statistics_document(path, run=run, until_seq=doc["position"], window_seconds=1.0) == doc
               for doc in documents[::5])
