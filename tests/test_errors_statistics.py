"""Error statistics: live (`system.error_statistics`) against a plain computation over the
failures caused, and against replay (`rebuild_error_statistics`) of the same log."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actor_helpers import Recorder, read_log, share, wait_until
from actorlog.actors import ActorSystem, Decision, ErrorPolicy, PluginNotRunningError, RestartPolicy
from actorlog.replay import ErrorStatisticsSnapshot, RecentError, rebuild_error_statistics
from error_helpers import (
    AppError,
    Fail,
    Faulty,
    PaymentDeclined,
    decide_one,
    decisions,
    make_exception,
    qualname_of,
    severity_by_mro,
    wait_settled,
)

BUILTIN_SEVERITIES: dict[type[BaseException], str] = {
    SystemExit: "critical", KeyboardInterrupt: "critical", MemoryError: "high", OSError: "high",
    ValueError: "medium", TypeError: "medium",
}
"""The documented default severities, written out for the reference computation."""


def expected_counts(caused: list[tuple[str, BaseException]], severities: dict[type[BaseException], str]) -> dict[str, Any]:
    """Plain counts over the failures caused: (plugin or task, exception) in order."""
    return {
        "total_errors": len(caused),
        "error_types": dict(Counter(qualname_of(type(exc)) for _, exc in caused)),
        "severity_distribution": dict(Counter(severity_by_mro(severities, type(exc)) for _, exc in caused)),
        "errors_by_plugin": dict(Counter(plugin for plugin, _ in caused)),
    }


def counts_of(snapshot: ErrorStatisticsSnapshot) -> dict[str, Any]:
    return {
        "total_errors": snapshot.total_errors,
        "error_types": snapshot.error_types,
        "severity_distribution": snapshot.severity_distribution,
        "errors_by_plugin": snapshot.errors_by_plugin,
    }


def run_task(system: ActorSystem, name: str, errors: list[BaseException], caused: Recorder, max_retries: int) -> None:
    """A retried task that raises ``errors`` in turn, then succeeds (if it gets that far)."""
    pending = list(errors)

    def task() -> str:
        if pending:
            exc = pending.pop(0)
            caused.append((name, exc))
            raise exc
        return "ok"

    try:
        system.retry(name, max_retries=max_retries, sleep=lambda s: None, random=lambda: 0.5).call(task)
    except Exception:  # noqa: BLE001 - a task that gave up: its failures are counted all the same
        pass


# -- each field against a plain computation ---------------------------------------------------------------


def _cause_failures(system: ActorSystem, caused: Recorder) -> None:
    plan = [
        ("alpha", "ValueError"), ("beta", "OSError"), ("alpha", "KeyError"), ("alpha", "ConnectionResetError"),
        ("beta", "PaymentDeclined"), ("beta", "UnicodeDecodeError"), ("alpha", "ValueError"),
    ]
    for i, (plugin, kind) in enumerate(plan):
        decide_one(system, plugin, Fail(error=kind, text=f"{kind} number {i}"))
        wait_settled(system, plugin)
    run_task(system, "sync-prices", [ConnectionError("refused 1"), TimeoutError("slow 2")], caused, max_retries=3)
    run_task(system, "fragile", [AppError("broken for good")], caused, max_retries=0)
    decide_one(system, "beta", Fail(error="ZeroDivisionError", text="divided"))
    wait_settled(system, "beta")
    run_task(system, "sync-prices", [ConnectionResetError("reset")], caused, max_retries=1)
    assert len(decisions(system)) == len(caused)


def test_error_statistics_fields(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    caused = Recorder()
    key = share(caused)
    policy = ErrorPolicy(severities={AppError: "medium"}, actions={"high": "continue"})
    severities = {**BUILTIN_SEVERITIES, AppError: "medium"}
    with ActorSystem(path, error_policy=policy) as system:
        system.register("alpha", Faulty, config={"raised": key})
        system.register("beta", Faulty, config={"raised": key})
        system.start()
        assert system.error_statistics() == ErrorStatisticsSnapshot(
            total_errors=0, error_types={}, severity_distribution={}, errors_by_plugin={}, recent_errors=[],
        )
        _cause_failures(system, caused)
        items = caused.items
        assert len(items) == 12
        default = system.error_statistics()
        three = system.error_statistics(recent=3)
        everything = system.error_statistics(recent=50)
        none = system.error_statistics(recent=0)
        with pytest.raises(ValueError, match="recent"):
            system.error_statistics(recent=-1)
        assert system.error_statistics(recent=1).total_errors == 12  # still answering after the refusal
        system.store.flush()
        raised = [r for r in system.store.events(kinds=["failure.raised"]) if r.actor != "errors"]

    expected = expected_counts(items, severities)
    assert expected["total_errors"] == 12
    assert expected["errors_by_plugin"] == {"alpha": 4, "beta": 4, "sync-prices": 3, "fragile": 1}
    assert expected["error_types"]["builtins.ValueError"] == 2
    assert expected["severity_distribution"] == {"medium": 5, "high": 5, "low": 2}
    for snapshot in (default, three, everything, none):
        assert counts_of(snapshot) == expected

    # recent errors: newest last, each as reported by its failure.raised event
    assert len(raised) == 12
    reference = [
        RecentError(
            type=qualname_of(type(exc)), message=str(exc), severity=severity_by_mro(severities, type(exc)),
            plugin=plugin, time=record.ts, seq=record.seq,
        )
        for (plugin, exc), record in zip(items, raised, strict=True)
    ]
    assert [(r.event.plugin, r.event.message) for r in raised] == [(p, str(e)) for p, e in items]
    assert everything.recent_errors == reference
    assert default.recent_errors == reference[-10:]  # at most 10 by default
    assert three.recent_errors == reference[-3:]
    assert none.recent_errors == []
    assert [e.seq for e in everything.recent_errors] == sorted(e.seq for e in everything.recent_errors)

    # the same from the log
    assert rebuild_error_statistics(path) == default
    assert rebuild_error_statistics(path, recent=3) == three
    assert rebuild_error_statistics(path, recent=50) == everything
    assert rebuild_error_statistics(path, recent=0) == none
    with pytest.raises(ValueError):
        rebuild_error_statistics(path, recent=-1)


def test_statistics_as_of_a_seq_and_per_run(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    runs = []
    caused_by_run = []
    live = []
    for kinds in (["ValueError", "OSError", "RuntimeError"], ["KeyError", "ValueError"]):
        caused = Recorder()
        with ActorSystem(path, error_policy=ErrorPolicy(actions={"high": "continue"})) as system:
            system.register("worker", Faulty, config={"raised": share(caused)})
            system.start()
            for kind in kinds:
                decide_one(system, "worker", Fail(error=kind, text=kind))
                wait_settled(system, "worker")
            live.append(system.error_statistics(recent=10))
            runs.append(system.run)
        caused_by_run.append(caused.items)
    for run, snapshot, caused_items in zip(runs, live, caused_by_run, strict=True):
        assert rebuild_error_statistics(path, run=run) == snapshot
        assert counts_of(snapshot) == expected_counts(caused_items, BUILTIN_SEVERITIES)
    both = rebuild_error_statistics(path)
    assert both.total_errors == 5
    assert both.errors_by_plugin == {"worker": 5}
    assert both.recent_errors == live[0].recent_errors + live[1].recent_errors
    # as of the second assessment of the first run
    assessed = read_log(path, kinds=["failure.assessed"])
    as_of = rebuild_error_statistics(path, until_seq=assessed[1].seq)
    assert counts_of(as_of) == expected_counts(caused_by_run[0][:2], BUILTIN_SEVERITIES)
    assert as_of.recent_errors == live[0].recent_errors[:2]


def test_statistics_after_an_error_policy_restart_and_stop(tmp_path: Path) -> None:
    """Failures decided with restart or stop are counted like any other."""
    path = tmp_path / "app.db"
    policy = ErrorPolicy(handlers={KeyError: lambda f: "stop", ValueError: lambda f: Decision("restart")})
    with ActorSystem(path, error_policy=policy) as system:
        system.register("a", Faulty)
        system.register("b", Faulty)
        system.start()
        decide_one(system, "a", Fail(error="ValueError"))
        wait_until(lambda: system.restarts("a") == 1)
        wait_settled(system, "a")
        decide_one(system, "b", Fail(error="KeyError"))
        wait_settled(system, "b", ["stopped"])
        live = system.error_statistics()
    assert live.errors_by_plugin == {"a": 1, "b": 1}
    assert live.severity_distribution == {"medium": 1, "low": 1}
    assert rebuild_error_statistics(path) == live


# -- hypothesis: live equals replay equals a plain computation --------------------------------------------

POOL = [
    "ValueError", "KeyError", "OSError", "ConnectionResetError", "FileNotFoundError", "RuntimeError",
    "ZeroDivisionError", "UnicodeDecodeError", "AppError", "PaymentDeclined",
]
HANDLED = [ConnectionError, KeyError, LookupError, AppError, PaymentDeclined, ValueError, OSError]
PLUGINS = ["p0", "p1", "p2"]

fail_op = st.tuples(st.just("fail"), st.integers(0, 2), st.sampled_from(POOL))
task_op = st.tuples(st.just("task"), st.lists(st.sampled_from(POOL), max_size=3), st.integers(0, 2))


@settings(
    max_examples=30, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plugins=st.integers(2, 3),
    handlers=st.dictionaries(st.sampled_from(HANDLED), st.sampled_from(["continue", "restart", "stop", None]), max_size=3),
    severities=st.dictionaries(
        st.sampled_from([AppError, PaymentDeclined, KeyError, RuntimeError, ConnectionError]),
        st.sampled_from(["low", "medium", "high"]), max_size=2,
    ),
    ops=st.lists(st.one_of(fail_op, task_op), min_size=1, max_size=8),
    recent=st.integers(0, 12),
)
def test_live_statistics_equal_replay_and_a_plain_computation(
    plugins: int, handlers: dict[type[BaseException], str | None], severities: dict[type[BaseException], str],
    ops: list[tuple[Any, ...]], recent: int,
) -> None:
    def make_handler(outcome: str | None) -> Any:
        return lambda failure: outcome

    policy = ErrorPolicy(severities=severities, handlers={t: make_handler(o) for t, o in handlers.items()})
    reference_severities = {**BUILTIN_SEVERITIES, **severities}
    caused = Recorder()
    key = share(caused)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "app.db"
        with ActorSystem(path, error_policy=policy, restart_policy=RestartPolicy(max_restarts=100)) as system:
            names = PLUGINS[:plugins]
            for name in names:
                system.register(name, Faulty, config={"raised": key})
            system.start()
            for index, op in enumerate(ops):
                if op[0] == "fail":
                    name = names[op[1] % plugins]
                    try:
                        system.ask(name, Fail(error=op[2], text=f"op {index}"), timeout=10)
                    except PluginNotRunningError:
                        assert system.state(name) == "stopped"  # stopped by an earlier decision
                        continue
                    except BaseException:  # noqa: BLE001 - the injected failure, handed back to the asker
                        pass
                    wait_until(lambda: len(decisions(system)) == len(caused), what="every failure decided")
                    wait_settled(system, name)
                else:
                    errors = [make_exception(kind, f"task {index} #{n}") for n, kind in enumerate(op[1])]
                    run_task(system, f"task-{index}", errors, caused, max_retries=op[2])
            assert system.escalation is None
            live = system.error_statistics(recent=recent)
        replayed = rebuild_error_statistics(path, recent=recent)
    items = caused.items
    assert live == replayed
    assert counts_of(live) == expected_counts(items, reference_severities)
    newest = items[-recent:] if recent else []
    assert [(e.plugin, e.type, e.message, e.severity) for e in live.recent_errors] == [
        (plugin, qualname_of(type(exc)), str(exc), severity_by_mro(reference_severities, type(exc)))
        for plugin, exc in newest
    ]
