"""The live/replay contract, written once and kept by every scenario.

`LiveReplayContract` holds the contract: for every live answer a scenario captured from
the live system of run R, replay of the same log (``rebuild(log, run=R, until_seq=...)``,
``statistics_document``, ``rebuild_error_statistics``, ``rebuild_metrics`` and the real
``actorlog stats --run R`` command) gives the same answer, at the end of the run and as
of any seq; the whole log keeps each run's plugins apart; and the final statistics agree
with a model of the workload computed without the library, so live and replay cannot
pass by computing the same wrong thing.

Each scenario subclass only says how to produce a log and the live answers it took
(``record``), from a generated workload (``workloads``) or the hand-written ``example``
that the named tests use.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actorlog.events
from contract_helpers import (
    FORGERIES,
    MEASUREMENTS,
    SUMMARY_WINDOWS,
    Capture,
    Recording,
    RunModel,
    RunRecord,
    json_lines,
    raised,
    record_run,
    run_cli_all,
    series_of,
    stats_command,
)
from log_helpers import HELPERS
from pg_helpers import new_schema
from replay_helpers import LOG_FACTORY, STEPS, fresh_log, read
from actorlog.replay.statistics import SNAPSHOT_PROJECTION
from actorlog.store import EventStore
from actorlog.replay import (
    rebuild,
    rebuild_error_statistics,
    rebuild_metrics,
    statistics_document,
    to_prometheus,
)

WORKER = HELPERS / "contract_worker.py"

# -- generated workloads ----------------------------------------------------------------------------

CAPTURES = st.one_of(
    st.tuples(st.just("document"), st.sampled_from([0, 1, 10]), st.sampled_from([None, 0.5, 60.0])),
    st.tuples(st.just("settled"), st.sampled_from([0, 2, 10]), st.sampled_from([None, 60.0])),
    st.tuples(st.just("snapshot"), st.booleans()),
)
"""Live captures (document alone / every answer once settled; recent; window) and snapshots."""

BETWEEN = st.lists(st.tuples(st.integers(0, 10), CAPTURES), min_size=1, max_size=4)
"""Captures and snapshots placed between a workload's steps."""

WORKLOAD_STEPS = st.lists(STEPS, min_size=1, max_size=10)
MAX_HISTORY = st.sampled_from([2, 3, 1000])


def no_restarts(step: tuple[Any, ...]) -> tuple[Any, ...]:
    """The step, with a failure that would restart a plugin made a medium one instead."""
    if step[0] in ("ask", "tell") and step[2] == "OSError":
        return (step[0], step[1], "ValueError", step[3])
    return step


def plans(**fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Plans for `record_run`: generated plugins, steps and captures, and ``fields``
    (strategies, or fixed values)."""
    base: dict[str, Any] = {"plugins": st.integers(1, 3), "steps": WORKLOAD_STEPS, "between": BETWEEN}
    for name, value in fields.items():
        base[name] = value if isinstance(value, st.SearchStrategy) else st.just(value)
    return st.fixed_dictionaries(base)


def after(*steps: st.SearchStrategy[tuple[Any, ...]], max_size: int = 6) -> st.SearchStrategy[list[Any]]:
    """Own steps run once the workload has settled, with settled captures among them."""
    settled = st.tuples(st.just("settled"), st.sampled_from([1, 10]), st.sampled_from([None, 60.0]))
    return st.lists(st.one_of(*steps, settled), min_size=1, max_size=max_size)


# -- comparing ------------------------------------------------------------------------------------


def builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def differences(live: Any, other: Any, path: str = "") -> list[str]:
    """Where ``live`` and ``other`` differ, as ``path: live ... != ...`` lines."""
    if isinstance(live, dict) and isinstance(other, dict):
        found: list[str] = []
        for key in sorted(set(live) | set(other), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in live:
                found.append(f"{where}: missing live (expected {_short(other[key])})")
            elif key not in other:
                found.append(f"{where}: live has {_short(live[key])}, expected nothing")
            else:
                found += differences(live[key], other[key], where)
        return found
    return [] if live == other else [f"{path or 'value'}: live {_short(live)} != expected {_short(other)}"]


class Findings:
    """Every disagreement a check finds, reported together (each capture, not only the first)."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def answered(self, capture: Capture, name: str, answer: Any) -> bool:
        """Whether the live ``name`` answered (rather than raised)."""
        problem = raised(answer)
        if problem is not None:
            self.items.append(f"{capture.where()}: the live {name} raised {problem}")
        return problem is None

    def same(self, live: Any, expected: Any, where: str) -> None:
        if live != expected:
            self.items.append(f"{where}: " + "; ".join(differences(live, expected)[:6]))

    def true(self, condition: bool, where: str) -> None:
        if not condition:
            self.items.append(where)

    def check(self) -> None:
        if self.items:
            shown = "\n  ".join(self.items[:25])
            raise AssertionError(f"{len(self.items)} disagreement(s):\n  {shown}")


def timeless(document: Mapping[str, Any]) -> dict[str, Any]:
    """A document without its position and times (what events nobody folds still move)."""
    out = {k: v for k, v in document.items() if k not in ("as_of", "position")}
    out["metrics"] = dict(document["metrics"])
    out["metrics"]["histograms"] = {
        k: {f: v for f, v in h.items() if f != "as_of"} for k, h in document["metrics"]["histograms"].items()
    }
    return out


def compare_with_model(findings: Findings, document: Mapping[str, Any], model: RunModel, run: str,
                       where: str) -> None:
    """A run's final statistics are what its workload must give."""
    errors, metrics = document["errors"], document["metrics"]
    findings.same(
        {"total_errors": errors["total_errors"], "error_types": errors["error_types"],
         "errors_by_plugin": errors["errors_by_plugin"], "severity_distribution": errors["severity_distribution"]},
        {"total_errors": model.total_errors, "error_types": dict(model.error_types),
         "errors_by_plugin": dict(model.errors_by_plugin), "severity_distribution": model.severities},
        f"{where}, errors")
    findings.same(
        {"counters": metrics["counters"], "gauges": metrics["gauges"], "dropped": metrics["dropped"],
         "histogram counts": {name: h["count"] for name, h in metrics["histograms"].items()}},
        {"counters": {name: float(v) for name, v in model.counters.items()}, "gauges": model.gauges, "dropped": 0,
         "histogram counts": model.histogram_counts},
        f"{where}, metrics")
    findings.same(list(document["plugins"]), [run] if model.plugins else [], f"{where}, runs of the plugins")
    plugins = document["plugins"].get(run, {})
    findings.same({name: [p["state"], p["version"], p["restarts"]] for name, p in plugins.items()}, model.plugins,
                  f"{where}, plugins [state, version, restarts]")


# -- the contract ---------------------------------------------------------------------------------


class LiveReplayContract:
    """The contract between a live system's answers and replay of its log.

    Subclasses set ``workloads`` (a strategy) and ``example`` (one workload) and implement
    ``record``; they may add scenario facts in ``check_scenario``.
    """

    workloads: ClassVar[st.SearchStrategy[Any]]
    example: ClassVar[Any]
    max_examples: ClassVar[int] = 6

    def record(self, directory: Path, workload: Any) -> Recording:
        raise NotImplementedError

    def check_scenario(self, recording: Recording) -> None:
        """Facts of this scenario beyond the contract (none by default)."""

    @pytest.fixture(scope="class")
    @classmethod
    def recording(cls, tmp_path_factory: pytest.TempPathFactory) -> Recording:
        """The scenario's ``example``, recorded once for the class's named tests."""
        return cls().record(tmp_path_factory.mktemp(cls.__name__), cls.example)

    # the contract, one family of answers each

    def check_model(self, recording: Recording) -> None:
        """Each run's final statistics are what its workload must give; a run without a
        live system (a separate store's) is checked through replay."""
        findings, finals = Findings(), recording.finals
        for run, model in recording.models.items():
            if run not in finals:
                compare_with_model(findings, rebuild(recording.path, run=run).document(), model, run,
                                   f"replay of run {run}")
            elif findings.answered(finals[run], "statistics()", finals[run].document):
                compare_with_model(findings, finals[run].document, model, run, finals[run].where())
        findings.check()

    def check_documents(self, recording: Recording) -> None:
        """Every live document is the rebuild of its run as of its position."""
        findings, path = Findings(), recording.path
        for capture in recording.captures:
            if not findings.answered(capture, "statistics()", capture.document):
                continue
            options: dict[str, Any] = {"recent": capture.recent, "window_seconds": capture.window_seconds}
            for snapshots in (True, False):
                rebuilt = rebuild(path, run=capture.run, until_seq=capture.position, use_snapshots=snapshots)
                findings.same(capture.document, rebuilt.document(**options),
                              f"{capture.where()} vs rebuild (snapshots {snapshots})")
                document = statistics_document(path, run=capture.run, until_seq=capture.position,
                                               use_snapshots=snapshots, **options)
                findings.same(capture.document, document, f"{capture.where()} vs statistics_document")
        findings.check()

    def check_idle_documents(self, recording: Recording) -> None:
        """While its run is idle, a live system's document stays the same, whatever other
        runs and processes append to the log meanwhile."""
        findings = Findings()
        for capture in (c for c in recording.captures if c.settled):
            findings.same(capture.again, capture.document, f"{capture.where()}, read again while idle")
        findings.check()

    def check_finals(self, recording: Recording) -> None:
        """After ``stop()``, a run's statistics are the rebuild of the whole run."""
        findings, finals = Findings(), recording.finals
        findings.same(sorted(finals), sorted(record.run for record in recording.records), "runs with a final capture")
        for run, capture in finals.items():
            if not findings.answered(capture, "statistics() after stop", capture.document):
                continue
            for snapshots in (True, False):
                rebuilt = rebuild(recording.path, run=run, use_snapshots=snapshots)
                findings.same(capture.document,
                              rebuilt.document(recent=capture.recent, window_seconds=capture.window_seconds),
                              f"{capture.where()} vs rebuild(log, run=...) (snapshots {snapshots})")
        findings.check()

    def check_error_statistics(self, recording: Recording) -> None:
        """``error_statistics()`` is the rebuild of its run's errors at the same point."""
        findings = Findings()
        for capture in (c for c in recording.captures if c.settled):
            if not findings.answered(capture, "error_statistics()", capture.errors):
                continue
            rebuilt = rebuild_error_statistics(recording.path, run=capture.run, until_seq=capture.position,
                                               recent=capture.recent)
            findings.same(capture.errors, builtins(rebuilt), f"{capture.where()} vs rebuild_error_statistics")
            if findings.answered(capture, "statistics()", capture.document):
                findings.same(capture.errors, capture.document["errors"], f"{capture.where()} vs its document")
        findings.check()

    def check_metric_answers(self, recording: Recording) -> None:
        """``metric_summary``, ``all_metrics`` and ``prometheus`` are the rebuilt metrics' answers."""
        findings = Findings()
        for capture in (c for c in recording.captures if c.settled):
            if not findings.answered(capture, "statistics()", capture.document):
                continue
            metrics = rebuild_metrics(recording.path, run=capture.run, until_seq=capture.position)
            if findings.answered(capture, "all_metrics()", capture.metrics):
                findings.same(capture.metrics, builtins(metrics.snapshot()), f"{capture.where()}, all_metrics()")
            findings.same(len(capture.summaries), len(series_of(capture.document)) * len(SUMMARY_WINDOWS),
                          f"{capture.where()}, summaries asked")
            for asked in capture.summaries:
                if findings.answered(capture, f"metric_summary({asked.name!r})", asked.summary):
                    rebuilt = metrics.summary(asked.name, asked.tags, as_of=asked.as_of,
                                              window_seconds=asked.window_seconds)
                    findings.same(asked.summary, builtins(rebuilt), f"{capture.where()}, metric_summary"
                                  f"({asked.name!r}, {asked.tags}, window_seconds={asked.window_seconds})")
            if findings.answered(capture, "prometheus()", capture.prometheus):
                prometheus = to_prometheus(metrics)
                findings.same(capture.prometheus, prometheus, f"{capture.where()}, prometheus()")
        findings.check()

    def check_plugin_states(self, recording: Recording) -> None:
        """``state(name)``, ``restarts(name)`` and ``plugins`` are the rebuilt plugin states."""
        findings, models = Findings(), recording.models
        for capture in (c for c in recording.captures if c.settled):
            findings.same(sorted(capture.states), sorted(models[capture.run].plugins), f"{capture.where()}, plugins")
            statistics = rebuild(recording.path, run=capture.run, until_seq=capture.position)
            rebuilt: dict[str, Any] = {}
            for name in capture.states:
                plugin = statistics.plugins.get(capture.run, name)
                rebuilt[name] = None if plugin is None else plugin.state
                if findings.answered(capture, f"state({name!r})", capture.states[name]):
                    findings.same(capture.states[name], rebuilt[name], f"{capture.where()}, state({name!r})")
                if findings.answered(capture, f"restarts({name!r})", capture.restarts[name]):
                    findings.same(capture.restarts[name], None if plugin is None else plugin.restarts,
                                  f"{capture.where()}, restarts({name!r})")
            if findings.answered(capture, "plugins", capture.plugins):
                findings.same(capture.plugins, rebuilt, f"{capture.where()}, plugins")
        findings.check()

    def check_whole_log(self, recording: Recording) -> None:
        """``rebuild(log)`` covers every run, each run's plugins apart under its own run."""
        findings, models, finals = Findings(), recording.models, recording.finals
        error_types = sum((model.error_types for model in models.values()), Counter())
        counters: dict[str, float] = {}
        for model in models.values():
            for name, value in model.counters.items():
                counters[name] = counters.get(name, 0.0) + value
        for snapshots in (True, False):
            whole = rebuild(recording.path, use_snapshots=snapshots).document()
            where = f"rebuild(log) (snapshots {snapshots})"
            findings.same({"total_errors": whole["errors"]["total_errors"], "error_types": whole["errors"]["error_types"],
                           "counters": whole["metrics"]["counters"]},
                          {"total_errors": sum(error_types.values()), "error_types": dict(error_types),
                           "counters": {name: float(v) for name, v in counters.items()}}, f"{where}, totals")
            findings.same(sorted(whole["plugins"]), sorted(run for run, model in models.items() if model.plugins),
                          f"{where}, runs of the plugins")
            for run, capture in finals.items():
                if run in whole["plugins"] and findings.answered(capture, "statistics()", capture.document):
                    findings.same(capture.document["plugins"].get(run), whole["plugins"][run],
                                  f"{where}, plugins of run {run} vs its final document")
        findings.check()

    def check_contract(self, recording: Recording) -> None:
        self.check_model(recording)
        self.check_documents(recording)
        self.check_idle_documents(recording)
        self.check_finals(recording)
        self.check_error_statistics(recording)
        self.check_metric_answers(recording)
        self.check_plugin_states(recording)
        self.check_whole_log(recording)
        self.check_scenario(recording)

    # the tests

    def test_final_statistics_match_a_model_of_the_workload(self, recording: Recording) -> None:
        self.check_model(recording)

    def test_each_live_document_is_the_rebuild_of_its_run_as_of_its_position(self, recording: Recording) -> None:
        self.check_documents(recording)

    def test_an_idle_runs_document_stays_the_same(self, recording: Recording) -> None:
        self.check_idle_documents(recording)

    def test_final_documents_are_the_rebuild_of_their_whole_run(self, recording: Recording) -> None:
        self.check_finals(recording)

    def test_error_statistics_are_the_rebuilt_error_statistics(self, recording: Recording) -> None:
        self.check_error_statistics(recording)

    def test_metric_answers_are_the_rebuilt_metrics(self, recording: Recording) -> None:
        self.check_metric_answers(recording)

    def test_plugin_states_are_the_rebuilt_plugin_states(self, recording: Recording) -> None:
        self.check_plugin_states(recording)

    def test_the_whole_log_keeps_each_runs_plugins_apart(self, recording: Recording) -> None:
        self.check_whole_log(recording)

    def test_scenario_facts(self, recording: Recording) -> None:
        self.check_scenario(recording)

    def test_the_cli_prints_the_live_documents(self, recording: Recording) -> None:
        """``actorlog stats LOG --run R --until-seq P --json`` (a real process) prints each run's
        final document; when the log holds several runs, also a document taken along the way
        and, without ``--run``, the whole log's."""
        path, several = recording.path, len(recording.models) > 1
        chosen = list(recording.finals.values())
        if several:
            chosen += [c for c in recording.captures if not c.final and raised(c.document) is None][:1]
        commands = [stats_command(path, c) for c in chosen] + ([["stats", path, "--json"]] if several else [])
        results = run_cli_all(commands)
        findings = Findings()
        for capture, result in zip(chosen, results):
            findings.same(result.returncode, 0, f"{' '.join(result.args)}: {result.stderr}")
            if result.returncode == 0 and findings.answered(capture, "statistics()", capture.document):
                findings.same(capture.document, json.loads(result.stdout), f"{capture.where()} vs actorlog stats")
        if several:
            assert results[-1].returncode == 0, results[-1].stderr
            findings.same(json.loads(results[-1].stdout), rebuild(path).document(), "actorlog stats LOG vs rebuild(LOG)")
        findings.check()

    def test_generated_workloads_keep_the_contract(self, tmp_path: Path) -> None:
        @settings(max_examples=self.max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(workload=self.workloads)
        def keeps_the_contract(workload: Any) -> None:
            directory = Path(tempfile.mkdtemp(dir=tmp_path))
            self.check_contract(self.record(directory, workload))

        keeps_the_contract()


# -- the scenarios ----------------------------------------------------------------------------------


def record_runs(directory: Path, plans_: list[dict[str, Any]]) -> Recording:
    """Sequential live systems, one per plan, on one log."""
    path = fresh_log(directory)
    return Recording(path=path, records=[record_run(path, plan) for plan in plans_])


class TestOneRun(LiveReplayContract):
    """One live system: workloads with failures (continued and restarted), retried tasks,
    measurements, timed operations and health checks; documents taken along the way;
    snapshots of the run and of the log; ``max_history`` kept as the system was told."""

    workloads = plans(max_history=MAX_HISTORY, after=st.just([]))
    example = {
        "plugins": 2, "max_history": 3,
        "steps": [
            ("ask", 0, "", 1.5), ("tell", 1, "ValueError", 2.0), ("observe", "t6.lat", 1.0),
            ("observe", "t6.lat", 2.0), ("task", 2, 3), ("observe", "t6.lat", 3.0), ("ask", 1, "OSError", 0.0),
            ("observe", "t6.lat", 4.0), ("counter", "t6.a", 2.0), ("gauge", "t6.g", 4.0),
            ("operation", "t6.op", False), ("observe", "t6.lat", 5.0), ("health", 0), ("ask", 0, "", -3.25),
        ],
        "between": [(2, ("document", 1, None)), (4, ("settled", 10, 0.5)), (6, ("snapshot", False)),
                    (8, ("document", 10, 60.0)), (10, ("snapshot", True)), (12, ("settled", 0, None))],
    }

    def record(self, directory: Path, workload: Any) -> Recording:
        return record_runs(directory, [workload])



class TestAutomaticSnapshots(LiveReplayContract):
    """A system that stores a snapshot of its run's live statistics every few events
    (``snapshot_every``): later rebuilds of the run start from those snapshots."""

    workloads = plans(
        snapshot_every=5, max_history=MAX_HISTORY, after=st.just([]),
        between=st.lists(st.tuples(st.integers(0, 10), st.one_of(CAPTURES, st.just(("auto_snapshot", 5)))),
                         min_size=2, max_size=5).filter(lambda own: any(s[0] == "auto_snapshot" for _, s in own)),
    )
    example = {
        "plugins": 2, "snapshot_every": 5, "max_history": 2,
        "steps": [("ask", 0, "ValueError", 1.0), ("observe", "t6.lat", 1.0), ("observe", "t6.lat", 2.0),
                  ("tell", 1, "OSError", 1.0), ("observe", "t6.lat", 3.0), ("task", 1, 1)],
        "between": [(1, ("auto_snapshot", 5)), (2, ("document", 10, None)), (4, ("auto_snapshot", 5)),
                    (5, ("settled", 10, None))],
    }
    max_examples = 3

    def record(self, directory: Path, workload: Any) -> Recording:
        return record_runs(directory, [workload])

    def check_scenario(self, recording: Recording) -> None:
        (record,) = recording.records
        with EventStore.open_readonly(recording.path) as store:
            assert store.snapshots(SNAPSHOT_PROJECTION, run=record.run), "the system stored snapshots of its run"


class TestSeveralRunsInOneFile(LiveReplayContract):
    """Sequential systems on one path, each its own run: the same plugin names (and a
    plugin "same" of another version in each run), different ``max_history``."""

    workloads = st.lists(
        plans(max_history=MAX_HISTORY, extra=st.sampled_from([{"same": "Busy"}, {"same": "BusyV2"}]),
              after=st.just([])),
        min_size=2, max_size=3,
    )
    example = [
        {"plugins": 2, "max_history": 2, "extra": {"same": "Busy"},
         "steps": [("ask", 0, "ValueError", 1.0), ("ask", 1, "OSError", 1.0), ("observe", "t6.lat", 1.0),
                   ("observe", "t6.lat", 2.0), ("observe", "t6.lat", 3.0), ("counter", "t6.a", 1.0)],
         "between": [(1, ("document", 10, None)), (3, ("settled", 10, None))]},
        {"plugins": 1, "max_history": 1000, "extra": {"same": "BusyV2"},
         "steps": [("ask", 0, "KeyError", 1.0), ("ask", 0, "", 1.0), ("observe", "t6.lat", 9.0),
                   ("task", 1, 1), ("counter", "t6.a", 4.0)],
         "between": [(0, ("snapshot", True)), (2, ("settled", 1, 60.0)), (4, ("snapshot", False))]},
        {"plugins": 3, "max_history": 3, "extra": {"same": "Busy"},
         "steps": [("tell", 2, "OSError", 1.0), ("ask", 1, "TypeError", 1.0), ("health", 2)],
         "between": [(1, ("snapshot", False)), (3, ("document", 0, 0.5))]},
    ]
    max_examples = 3

    def record(self, directory: Path, workload: Any) -> Recording:
        return record_runs(directory, workload)

    def check_scenario(self, recording: Recording) -> None:
        whole = rebuild(recording.path)
        for record in recording.records:
            same = whole.plugins.get(record.run, "same")
            assert same is not None and same.version == record.model.plugins["same"][1]


class TestSeveralProcessesAtOnce(LiveReplayContract):
    """Several processes, each its own ActorSystem (its own run) with the same plugin
    names, writing one file at the same time; each prints its live answers."""

    workloads = st.lists(plans(max_history=MAX_HISTORY, after=st.just([])), min_size=2, max_size=3)
    example = [
        {"plugins": 2, "max_history": 3,
         "steps": [("ask", 0, "ValueError", 1.0), ("tell", 1, "OSError", 2.0), ("observe", "t6.lat", 1.0),
                   ("task", 1, 2), ("observe", "t6.lat", 2.0), ("counter", "t6.a", 3.0)] * 2,
         "between": [(2, ("document", 10, None)), (5, ("document", 1, 0.5)), (8, ("settled", 10, None))]},
        {"plugins": 1, "max_history": 1000,
         "steps": [("ask", 0, "KeyError", 1.0), ("ask", 0, "", 5.0), ("counter", "t6.a", 1.0)] * 3,
         "between": [(1, ("document", 10, None)), (4, ("snapshot", False)), (7, ("document", 10, 60.0))]},
        {"plugins": 3, "max_history": 2,
         "steps": [("tell", 2, "TypeError", 1.0), ("operation", "t6.op", True), ("health", 1),
                   ("gauge", "t6.g", 7.0)] * 2,
         "between": [(3, ("settled", 0, None)), (6, ("document", 10, None))]},
    ]
    max_examples = 2

    def record(self, directory: Path, workload: Any) -> Recording:
        path = fresh_log(directory)
        workers = [
            subprocess.Popen([sys.executable, str(WORKER), str(path), json.dumps(plan)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for plan in workload
        ]
        try:
            for worker in workers:  # every worker is up before any starts its workload
                assert worker.stdout is not None and worker.stdout.readline().startswith("ready"), \
                    worker.communicate(timeout=30)[1]
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.flush()
            outputs = [worker.communicate(timeout=60) for worker in workers]
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()
        records = []
        for worker, (stdout, stderr) in zip(workers, outputs):
            assert worker.returncode == 0, stderr
            lines = json_lines(stdout)
            captures = [msgspec.convert(line["capture"], Capture) for line in lines if "capture" in line]
            (model,) = [RunModel.from_builtins(line["model"]) for line in lines if "model" in line]
            records.append(RunRecord(run=captures[0].run, captures=captures, model=model))
        assert len({record.run for record in records}) == len(workload), "each process is its own run"
        return Recording(path=path, records=records)

    def check_scenario(self, recording: Recording) -> None:
        # the plugins of every process share names, never identities
        whole = rebuild(recording.path)
        for record in recording.records:
            for name, (_, version, restarts) in record.model.plugins.items():
                rebuilt = whole.plugins.get(record.run, name)
                assert rebuilt is not None and (rebuilt.version, rebuilt.restarts) == (version, restarts)


CRASH_TARGETS = st.sampled_from(["c0", "c1"])


class TestRestarts(LiveReplayContract):
    """High failures (MemoryError, OSError) restart the plugin, medium and low ones
    continue: restart counts and states live and replayed."""

    workloads = plans(
        extra={"c0": "Contracted", "c1": "Contracted"},
        after=after(st.tuples(st.just("crash"), CRASH_TARGETS,
                              st.sampled_from(["MemoryError", "MemoryError", "OSError", "ValueError", "KeyError"]))),
    )
    example = {
        "plugins": 1, "extra": {"c0": "Contracted", "c1": "Contracted"},
        "steps": [("ask", 0, "OSError", 1.0), ("observe", "t6.lat", 1.0)],
        "between": [(1, ("settled", 10, None))],
        "after": [("crash", "c0", "MemoryError"), ("settled", 10, None), ("crash", "c0", "MemoryError"),
                  ("crash", "c1", "OSError"), ("crash", "c1", "ValueError"), ("document", 10, None),
                  ("crash", "c0", "KeyError"), ("settled", 1, 60.0)],
    }

    def record(self, directory: Path, workload: Any) -> Recording:
        return record_runs(directory, [workload])

    def check_scenario(self, recording: Recording) -> None:
        (record,) = recording.records
        final = recording.finals[record.run]
        for name, (_, _, restarts) in record.model.plugins.items():
            assert final.restarts[name] == restarts


REDELIVERIES = st.sampled_from([0, 1, 3])


class TestRetries(LiveReplayContract):
    """Retries: tasks run with ``system.retry`` (in the workload) and with ``context.retry``
    inside a plugin, and plugin failures the error policy decides to retry (a told message
    is delivered again, at most ``max_redeliveries`` times; an asked one is not)."""

    workloads = REDELIVERIES.flatmap(lambda redeliveries: plans(
        extra={"c0": "Contracted"}, max_redeliveries=redeliveries,
        after=after(st.tuples(st.just("fetch"), st.just("c0"), st.integers(0, 3), st.integers(0, 2)),
                    st.tuples(st.just("flaky"), st.just("c0"), st.integers(0, 5), st.sampled_from(["tell", "ask"]),
                              st.just(redeliveries))),
    ))
    example = {
        "plugins": 1, "extra": {"c0": "Contracted"}, "max_redeliveries": 2,
        "steps": [("task", 2, 3), ("task", 3, 1), ("tell", 0, "KeyError", 1.0)],
        "between": [(1, ("document", 10, None))],
        "after": [("fetch", "c0", 2, 2), ("flaky", "c0", 2, "tell", 2), ("settled", 10, None),
                  ("flaky", "c0", 5, "tell", 2), ("flaky", "c0", 1, "ask", 2), ("fetch", "c0", 3, 1),
                  ("fetch", "c0", 0, 0)],
    }

    def record(self, directory: Path, workload: Any) -> Recording:
        return record_runs(directory, [workload])

    def check_scenario(self, recording: Recording) -> None:
        (record,) = recording.records
        decided = read(recording.path, run=record.run, kinds=["recovery.decided"], actor="errors")
        retried = [r for r in decided if r.event.action == "retry" and r.event.plugin == "c0"]
        assert len(retried) == record.retries, "every retry decision about c0's told messages"


class TestEscalation(LiveReplayContract):
    """A critical failure (a handler raising SystemExit) or one restart too many escalates:
    the statistics stay readable after the escalation and after ``stop()``."""

    workloads = plans(
        steps=st.lists(STEPS.map(no_restarts), min_size=1, max_size=8),
        extra=st.just({"c0": "Contracted"}),
        after=st.tuples(st.sampled_from(["SystemExit", "restarts"]), st.integers(0, 2)).map(
            lambda cause: [("settled", 10, None), ("escalate", "c0", cause[0], cause[1])]),
    ).map(lambda plan: {**plan, "restart_budget": plan["after"][-1][3]})
    example = {
        "plugins": 2, "extra": {"c0": "Contracted"}, "restart_budget": 1,
        "steps": [("ask", 0, "ValueError", 1.0), ("observe", "t6.lat", 1.0), ("task", 1, 2)],
        "between": [(1, ("document", 10, None))],
        "after": [("settled", 10, None), ("escalate", "c0", "restarts", 1)],
    }

    def record(self, directory: Path, workload: Any) -> Recording:
        return record_runs(directory, [workload])

    def check_scenario(self, recording: Recording) -> None:
        (record,) = recording.records
        assert record.escalation is not None and "'c0'" in record.escalation
        labels = [c.label for c in record.captures if c.settled]
        assert labels[-2:] == ["after the escalation", "final"]
        for capture in record.captures[-2:]:
            answers = [capture.document, capture.errors, capture.metrics, capture.prometheus, capture.plugins,
                       *capture.states.values(), *capture.restarts.values(), *(s.summary for s in capture.summaries)]
            assert [raised(a) for a in answers if raised(a)] == [], capture.where()


FORGED_KINDS = st.sampled_from(sorted(FORGERIES))


class TestForgedEvents(LiveReplayContract):
    """A plugin emitting built-in facts (``PluginStopped(plugin=...)``, ``FailureAssessed``,
    ...) is refused with PermissionError; the same rows appended through the store as actor
    "worker" are in the log (``query`` shows them) but change no statistic."""

    workloads = plans(
        extra={"c0": "Contracted", "q": "Busy"}, forger="c0",
        after=after(st.tuples(st.just("forge"), st.sampled_from(["emit", "append"]), FORGED_KINDS,
                              st.sampled_from(["q", "w0", "c0"]))),
    )
    example = {
        "plugins": 1, "extra": {"c0": "Contracted", "q": "Busy"}, "forger": "c0",
        "steps": [("ask", 0, "ValueError", 1.0), ("observe", "t6.lat", 2.0)],
        "between": [(1, ("document", 10, None))],
        "after": [("forge", "emit", "plugin.stopped", "q"), ("forge", "emit", "failure.assessed", "q"),
                  ("forge", "append", "plugin.stopped", "q"), ("forge", "append", "failure.assessed", "q"),
                  ("forge", "emit", "plugin.restarted", "w0"), ("forge", "append", "measurements.dropped", "q"),
                  ("forge", "append", "plugin.registered", "q"), ("forge", "emit", "plugin.health_checked", "c0")],
    }

    def record(self, directory: Path, workload: Any) -> Recording:
        return record_runs(directory, [workload])

    def check_scenario(self, recording: Recording) -> None:
        (record,) = recording.records
        findings = Findings()
        for kind, answer in record.refusals:
            findings.true(answer.startswith("PermissionError: ") and kind in answer,
                          f"emitting {kind} from a plugin answered {answer!r}")
        for before, after_ in record.unchanged:
            findings.same(timeless(after_.document), timeless(before.document), after_.where())
            findings.same([after_.states, after_.errors], [before.states, before.errors], after_.where())
        findings.same([r.kind for r in read(recording.path, run=record.run, actor="worker")], record.appended,
                      "rows appended as worker")
        findings.check()
        assert set(FORGERIES) <= actorlog.events.RESERVED_KINDS

    def test_query_shows_the_forged_rows(self, recording: Recording) -> None:
        (record,) = recording.records
        (result,) = run_cli_all([["query", recording.path, "--actor", "worker", "--format", "json"]])
        assert result.returncode == 0, result.stderr
        rows = json.loads(result.stdout)
        assert [row["kind"] for row in rows] == record.appended
        assert all(row["run"] == record.run for row in rows)


MEASURED = st.one_of(
    st.tuples(st.just("measure"), st.sampled_from(["system", "separate"]), st.just("counter"),
              st.sampled_from(["app.orders", "app.items"]), st.integers(1, 9).map(float)),
    st.tuples(st.just("measure"), st.just("system"), st.just("gauge"), st.just("app.queue"),
              st.integers(-5, 50).map(float)),
    st.tuples(st.just("measure"), st.just("separate"), st.just("gauge"), st.just("ext.queue"),
              st.integers(-5, 50).map(float)),
    st.tuples(st.just("measure"), st.sampled_from(["system", "separate", "plugin"]), st.just("histogram"),
              st.just("app.latency"), st.floats(0, 10, allow_nan=False)),
    st.tuples(st.just("measure"), st.sampled_from(["system", "separate", "plugin"]), st.just("operation"),
              st.just("app.call"), st.sampled_from([-0.5, 0.25, 1.0])),
    st.tuples(st.just("measure"), st.just("plugin"), st.sampled_from(["counter"]), st.just("app.items"),
              st.integers(1, 9).map(float)),
)
"""Measurements recorded by application code as actor "worker": through the system's own
store (they count in its run), a separate EventStore on the same file (its own run), or
emitted by a plugin (``context.emit`` allows measurements, and they count)."""


class TestApplicationMeasurements(LiveReplayContract):
    """Measurements appended by application code count: through the system's store in the
    live run's statistics; through a separate EventStore in its own run and the whole log."""

    workloads = plans(
        separate=True, max_history=MAX_HISTORY, extra={"c0": "Contracted"}, forger="c0",
        between=st.lists(st.tuples(st.integers(0, 10), st.one_of(MEASURED, CAPTURES)), min_size=1, max_size=8),
        after=after(MEASURED),
    )
    example = {
        "plugins": 1, "separate": True, "max_history": 1000, "extra": {"c0": "Contracted"}, "forger": "c0",
        "steps": [("counter", "t6.a", 1.0), ("ask", 0, "", 2.0)],
        "between": [(0, ("measure", "system", "gauge", "app.queue", 3.0)),
                    (0, ("measure", "separate", "counter", "app.orders", 5.0)),
                    (1, ("measure", "system", "counter", "app.orders", 2.0)), (1, ("document", 10, None)),
                    (2, ("measure", "separate", "gauge", "ext.queue", 7.0))],
        "after": [("measure", "system", "histogram", "app.latency", 0.5),
                  ("measure", "separate", "histogram", "app.latency", 9.5), ("settled", 10, None),
                  ("measure", "plugin", "operation", "app.call", -0.5), ("measure", "plugin", "counter", "app.items", 2.0),
                  ("measure", "system", "operation", "app.call", 1.0), ("measure", "system", "counter", "app.orders", 1.0)],
    }

    def record(self, directory: Path, workload: Any) -> Recording:
        return record_runs(directory, [workload])

    def check_scenario(self, recording: Recording) -> None:
        (record,) = recording.records
        assert record.separate_run is not None and record.separate_run != record.run
        live = recording.finals[record.run].document["metrics"]
        separate = rebuild(recording.path, run=record.separate_run).document()["metrics"]
        assert "ext.queue" not in live["gauges"]
        assert set(separate["gauges"]) <= {"ext.queue"}
        whole = rebuild(recording.path).document()["metrics"]
        assert whole["gauges"] == {**live["gauges"], **separate["gauges"]}


BEFORE = st.lists(
    st.one_of(
        st.tuples(st.just("counter"), st.sampled_from(["app.orders", "app.items"]), st.integers(1, 9).map(float)),
        st.tuples(st.just("gauge"), st.just("app.queue"), st.integers(0, 9).map(float)),
        st.tuples(st.just("histogram"), st.just("app.latency"), st.floats(0, 10, allow_nan=False)),
    ),
    min_size=1, max_size=4,
)
"""Measurements application code appends through an open EventStore (as the README's
event-log example does) before it hands that store to an ActorSystem."""


class TestSystemOnAnOpenStore(LiveReplayContract):
    """``ActorSystem(store)``: the system runs on an open `EventStore` (its documented
    alternative to a path) that application code has already appended measurements to.
    The system's run is the store's run, so ``rebuild(log, run=system.run)`` folds those
    rows, and the live statistics must too."""

    workloads = st.tuples(BEFORE, plans(max_history=MAX_HISTORY, after=st.just([])))
    example = (
        [("counter", "app.orders", 2.0), ("gauge", "app.queue", 5.0), ("histogram", "app.latency", 0.25)],
        {"plugins": 1, "snapshot_every": 3, "steps": [("ask", 0, "", 1.0), ("counter", "t6.a", 1.0)],
         "between": [(1, ("settled", 10, None)), (2, ("auto_snapshot", 3))]},
    )
    max_examples = 3

    def check_scenario(self, recording: Recording) -> None:
        # an automatic snapshot stores the live statistics: replay from it must agree with a full fold
        (record,) = recording.records
        findings = Findings()
        findings.same(rebuild(recording.path, run=record.run, use_snapshots=True).document(),
                      rebuild(recording.path, run=record.run, use_snapshots=False).document(),
                      f"rebuild(log, run={record.run}) from its automatic snapshot vs without snapshots")
        findings.check()

    def record(self, directory: Path, workload: Any) -> Recording:
        before, plan = workload
        path = fresh_log(directory)
        with EventStore(path) as store:
            for kind, name, value in before:
                store.append(MEASUREMENTS[kind](name, value), actor="worker")
            store.flush()
            record = record_run(path, plan, store=store)
        assert record.run == store.run
        for kind, name, value in before:
            record.model.measured(kind, name, value)
        return Recording(path=path, records=[record])


# -- the same contract on PostgreSQL ------------------------------------------------------------


class OnPostgres:
    """A scenario's whole contract on PostgreSQL logs: each new log a fresh schema of the
    tests' server, appended to (by several processes, where the scenario has them) and
    replayed through the same API and CLI."""

    max_examples = 2

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def logs_on_postgres(cls, postgres_server: Any) -> Any:
        LOG_FACTORY.append(lambda: postgres_server.url(new_schema()))
        yield
        LOG_FACTORY.pop()


class TestOneRunOnPostgres(OnPostgres, TestOneRun):
    pass


class TestAutomaticSnapshotsOnPostgres(OnPostgres, TestAutomaticSnapshots):
    pass


class TestSeveralRunsInOneLogOnPostgres(OnPostgres, TestSeveralRunsInOneFile):
    pass


class TestSeveralProcessesAtOnceOnPostgres(OnPostgres, TestSeveralProcessesAtOnce):
    max_examples = 1


class TestRestartsOnPostgres(OnPostgres, TestRestarts):
    pass


class TestRetriesOnPostgres(OnPostgres, TestRetries):
    pass


class TestEscalationOnPostgres(OnPostgres, TestEscalation):
    pass


class TestForgedEventsOnPostgres(OnPostgres, TestForgedEvents):
    pass


class TestApplicationMeasurementsOnPostgres(OnPostgres, TestApplicationMeasurements):
    pass


class TestSystemOnAnOpenStoreOnPostgres(OnPostgres, TestSystemOnAnOpenStore):
    pass
