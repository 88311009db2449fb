"""The performance monitor: decorator (sync and async), context manager, start/end; errors;
one measurement (one event) per monitored call; plugins' context.metrics and context.monitor."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from actorlog.actors import ActorSystem, MetricsOptions, Operation
from metrics_helpers import (
    MEASUREMENT_KINDS,
    MetricsPlugin,
    PluginBoom,
    RecordVia,
    TimeVia,
    measurement_records,
    read_log,
    wait_until,
)


def operation_events(path: Path, name: str | None = None) -> list[Any]:
    events = [r for r in read_log(path, kinds=["operation.timed"])]
    assert all(r.actor == "metrics" for r in events)
    return [r.event for r in events if name is None or r.event.name == name]


def check_operation(
    path: Path, snapshot: Any, name: str, *, ok: list[bool], tags: dict[str, str] | None = None
) -> None:
    """The log holds one operation.timed event per call, and the counters and series agree."""
    events = [e for e in operation_events(path, name) if e.tags == (tags or {})]
    assert [e.ok for e in events] == ok
    assert all(e.value >= 0.0 for e in events)
    label = name + ("{" + ",".join(f"{k}={v}" for k, v in sorted((tags or {}).items())) + "}" if tags else "")

    def with_suffix(suffix: str) -> str:
        return name + suffix + label[len(name):]

    assert snapshot.counters.get(with_suffix(".calls")) == float(len(ok))
    assert snapshot.counters.get(with_suffix(".success"), 0.0) == float(ok.count(True))
    assert snapshot.counters.get(with_suffix(".errors"), 0.0) == float(ok.count(False))
    assert label in snapshot.series


# -- decorator --------------------------------------------------------------------------------------------------


def test_timed_sync_function(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:

        @system.monitor.timed("llm.generate", tags={"model": "offline"})
        def generate(prompt: str, *, suffix: str = "!") -> str:
            """Generate."""
            return prompt.upper() + suffix

        assert generate("hi") == "HI!"
        assert generate("x", suffix="?") == "X?"
        assert generate.__name__ == "generate" and generate.__doc__ == "Generate."
        snapshot = system.all_metrics()
        durations = system.metric_summary("llm.generate", {"model": "offline"}, window_seconds=3600)
    check_operation(path, snapshot, "llm.generate", ok=[True, True], tags={"model": "offline"})
    assert durations.count == 2 and durations.min is not None and durations.min >= 0.0
    assert durations.max == max(e.value for e in operation_events(path))


def test_timed_async_function(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:

        @system.monitor.timed("agent.solve")
        async def solve(task: str) -> str:
            await asyncio.sleep(0)
            return f"solved {task}"

        async def main() -> list[str]:
            return list(await asyncio.gather(solve("a"), solve("b"), solve("c")))

        assert asyncio.iscoroutinefunction(solve)
        assert asyncio.run(main()) == ["solved a", "solved b", "solved c"]
        snapshot = system.all_metrics()
        assert system.metric_summary("agent.solve", window_seconds=3600).count == 3
    check_operation(path, snapshot, "agent.solve", ok=[True, True, True])


def test_timed_without_a_name_uses_the_qualified_name(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:

        @system.monitor.timed
        def plain() -> int:
            return 1

        @system.monitor.timed()
        async def coro() -> int:
            return 2

        class Service:
            @system.monitor.timed
            def handle(self) -> int:
                return 3

        assert plain() == 1
        assert asyncio.run(coro()) == 2
        assert Service().handle() == 3
        snapshot = system.all_metrics()
    prefix = "test_timed_without_a_name_uses_the_qualified_name.<locals>."
    names = [e.name for e in operation_events(path)]
    assert names == [prefix + "plain", prefix + "coro", prefix + "Service.handle"]
    for name in names:
        check_operation(path, snapshot, name, ok=[True])


# -- context manager ------------------------------------------------------------------------------------------------


def test_time_context_manager(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        with system.monitor.time("sandbox.run", tags={"lang": "python"}) as operation:
            assert isinstance(operation, Operation)
            total = sum(range(100))
        assert total == 4950
        assert operation.ended
        with system.monitor.time("sandbox.run", tags={"lang": "python"}):
            pass
        snapshot = system.all_metrics()
    check_operation(path, snapshot, "sandbox.run", ok=[True, True], tags={"lang": "python"})


# -- start / end ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["op_with_underscores", "a.b_c.d", "op:with:colons", "x_1_2", "名前"])
def test_start_end_uses_the_name_as_given(tmp_path: Path, name: str) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        first = system.monitor.start(name)
        second = system.monitor.start(name, tags={"k": "v"})
        assert first is not second
        duration = system.monitor.end(second, ok=False)
        assert duration >= 0.0
        assert system.monitor.end(first) >= 0.0
        snapshot = system.all_metrics()
    events = operation_events(path)
    assert [(e.name, e.ok, e.tags) for e in events] == [(name, False, {"k": "v"}), (name, True, {})]
    assert events[0].value == duration
    check_operation(path, snapshot, name, ok=[True])
    check_operation(path, snapshot, name, ok=[False], tags={"k": "v"})


def test_end_twice_raises_value_error_and_records_once(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        operation = system.monitor.start("once")
        system.monitor.end(operation)
        with pytest.raises(ValueError, match="already ended"):
            system.monitor.end(operation)
        with pytest.raises(ValueError):
            system.monitor.end(operation, ok=False)
        with system.monitor.time("ctx") as timed:
            pass
        with pytest.raises(ValueError):
            system.monitor.end(timed)
        snapshot = system.all_metrics()
    assert [e.name for e in operation_events(path)] == ["once", "ctx"]
    check_operation(path, snapshot, "once", ok=[True])


@pytest.mark.parametrize("thing", ["op_with_underscores", None, 42, object()])
def test_end_of_something_else_raises_type_error(tmp_path: Path, thing: object) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        with pytest.raises(TypeError):
            system.monitor.end(thing)  # type: ignore[arg-type]
        system.flush()
    assert operation_events(path) == []


@pytest.mark.parametrize("name", ["", None, 3])
def test_invalid_operation_names_are_refused(tmp_path: Path, name: object) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        with pytest.raises(ValueError):
            system.monitor.start(name)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            system.monitor.time(name)  # type: ignore[arg-type]
    assert operation_events(path) == []


# -- exceptions: counted as errors, re-raised unchanged --------------------------------------------------------------


class Unusual(Exception):
    pass


def test_raising_sync_function_counts_an_error_and_reraises_the_same_exception(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    error = Unusual("the original")
    with ActorSystem(path) as system:

        @system.monitor.timed("flaky")
        def flaky(fail: bool) -> str:
            if fail:
                raise error
            return "fine"

        assert flaky(False) == "fine"
        with pytest.raises(Unusual) as info:
            flaky(True)
        assert info.value is error
        with pytest.raises(KeyboardInterrupt):
            system.monitor.timed("interrupted")(_raise_keyboard_interrupt)()
        snapshot = system.all_metrics()
    check_operation(path, snapshot, "flaky", ok=[True, False])
    check_operation(path, snapshot, "interrupted", ok=[False])


def _raise_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


def test_raising_async_function_counts_an_error_and_reraises_the_same_exception(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    error = Unusual("async original")
    with ActorSystem(path) as system:

        @system.monitor.timed("aflaky", tags={"t": "1"})
        async def aflaky(fail: bool) -> str:
            await asyncio.sleep(0)
            if fail:
                raise error
            return "fine"

        assert asyncio.run(aflaky(False)) == "fine"
        with pytest.raises(Unusual) as info:
            asyncio.run(aflaky(True))
        assert info.value is error
        snapshot = system.all_metrics()
    check_operation(path, snapshot, "aflaky", ok=[True, False], tags={"t": "1"})


def test_raising_with_block_counts_an_error_and_reraises_the_same_exception(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    error = Unusual("block original")
    with ActorSystem(path) as system:
        with pytest.raises(Unusual) as info:
            with system.monitor.time("block"):
                raise error
        assert info.value is error
        with system.monitor.time("block"):
            pass
        snapshot = system.all_metrics()
    check_operation(path, snapshot, "block", ok=[False, True])


# -- one measurement per monitored call ------------------------------------------------------------------------------


def test_n_monitored_calls_make_exactly_n_events(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    n = 300
    with ActorSystem(path) as system:

        @system.monitor.timed("step")
        def step(i: int) -> int:
            return i

        for i in range(n // 3):
            step(i)
            with system.monitor.time("step"):
                pass
            system.monitor.end(system.monitor.start("step"))
        system.flush()
        snapshot = system.all_metrics()
    records = measurement_records(path)
    # one operation.timed event per call: the counters .calls/.success are not separate events
    assert [r.kind for r in records] == ["operation.timed"] * n
    assert snapshot.counters == {"step.calls": float(n), "step.success": float(n)}


def test_measurements_travel_in_batches_of_buffer_size(tmp_path: Path) -> None:
    """With a long flush interval, nothing reaches the collector until a thread's buffer
    holds ``buffer_size`` measurements; then all of them arrive as one batch, unasked."""
    path = tmp_path / "app.db"
    options = MetricsOptions(buffer_size=10, flush_interval=3600.0)
    with ActorSystem(path, metrics=options) as system:
        def calls_seen() -> float:
            # the log only (no flush of the thread's buffer): what the collector has recorded so far
            system.store.flush()
            return float(sum(1 for _ in system.store.events(kinds="operation.timed")))

        for _ in range(9):
            with system.monitor.time("batch"):
                pass
        assert calls_seen() == 0.0
        with system.monitor.time("batch"):  # the 10th fills the buffer
            pass
        wait_until(lambda: calls_seen() == 10.0, what="a full buffer is sent without a flush")
        for _ in range(5):
            with system.monitor.time("batch"):
                pass
        assert calls_seen() == 10.0
        system.store.flush()
        assert len(measurement_records(path)) == 10
        system.flush()  # sends the partly filled buffer
        assert calls_seen() == 15.0
    assert len(measurement_records(path)) == 15


# -- plugins -----------------------------------------------------------------------------------------------------------


def test_plugin_context_metrics_and_monitor_record_as_the_metrics_actor(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("worker", MetricsPlugin)
        system.start()
        system.ask("worker", RecordVia(name="w", value=2.5, tags={"k": "v"}), timeout=5)
        system.ask("worker", RecordVia(name="w", value=4.0, tags={"k": "v"}), timeout=5)
        assert system.ask("worker", TimeVia(name="w.op"), timeout=5) == "timed"
        with pytest.raises(PluginBoom):
            system.ask("worker", TimeVia(name="w.op", fail=True), timeout=5)
        snapshot = system.all_metrics()
        hist = system.metric_summary("w.hist", {"k": "v"}, window_seconds=3600)
    records = measurement_records(path)
    assert {r.actor for r in records} == {"metrics"}
    assert sorted({r.kind for r in records}) == sorted(MEASUREMENT_KINDS)
    assert snapshot.counters["w.count{k=v}"] == 6.5
    assert snapshot.gauges["w.gauge{k=v}"] == 4.0
    assert (hist.count, hist.min, hist.max, hist.latest) == (2, 2.5, 4.0, 4.0)
    check_operation(path, snapshot, "w.op", ok=[True, False], tags={"plugin": "worker"})
