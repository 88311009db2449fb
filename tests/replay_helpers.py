"""Shared message types, plugins, workloads and CLI helpers for the replay and CLI tests
(tests/test_replay_*.py, tests/test_cli_*.py).

Message tags start with "t6." and are unique across the test session (the default type
registry is process-global). The reproduction plugin lives in tests/replay_plugins/
(imported here as the top-level module ``calc_plugin``), so subprocesses can import it
with ``actorlog reproduce --import-path``.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from click.testing import CliRunner, Result
from hypothesis import strategies as st

from actor_helpers import shared, wait_until
from log_helpers import ACTORLOG_CLI, sha256_of
from actorlog.actors import ActorSystem, Health, Plugin, RestartPolicy, handler
from actorlog.events import (
    CounterIncremented,
    FailureAssessed,
    GaugeSet,
    HistogramObserved,
    MeasurementsDropped,
    Message,
    OperationTimed,
    PluginFailed,
    PluginHealthChecked,
    PluginRegistered,
    PluginRestarted,
    PluginStarted,
    PluginStarting,
    PluginStopped,
    PluginStopping,
    RetryScheduled,
    register,
)
from actorlog.replay.main import cli
from actorlog.store import EventStore
from actorlog.store.records import EventRecord

PLUGINS_DIR = Path(__file__).parent / "replay_plugins"
"""Folder of plugin modules that subprocesses import (``--import-path``)."""

if str(PLUGINS_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGINS_DIR))

import calc_plugin  # noqa: E402 - needs PLUGINS_DIR on sys.path

__all__ = ["ACTORLOG_CLI", "calc_plugin", "sha256_of", "wait_until"]

COMMANDS = ("stats", "query", "runs", "tail", "verify", "reproduce", "snapshot")
"""Every command of ``actorlog``."""

# -- message types and plugins ------------------------------------------------------------------


@register
class Work(Message, tag="t6.work", frozen=True):
    """Succeed (recording measurements) or, when ``fail`` names an exception, raise it."""

    value: float = 1.0
    fail: str = ""
    text: str = "failed"


@register
class Sync(Message, tag="t6.sync", frozen=True):
    """Do nothing: answering it means every message sent before it was handled."""


class T6Error(Exception):
    """An application error (low severity by default)."""


EXCEPTIONS: dict[str, type[Exception]] = {
    "ValueError": ValueError,  # medium: continue
    "TypeError": TypeError,  # medium: continue
    "KeyError": KeyError,  # low: continue
    "RuntimeError": RuntimeError,  # low: continue
    "T6Error": T6Error,  # low: continue
    "OSError": OSError,  # high: restart
}


def qualified(name: str) -> str:
    """The qualified type name the log records for exception ``name`` of `EXCEPTIONS`."""
    cls = EXCEPTIONS[name]
    return f"{cls.__module__}.{cls.__qualname__}"


class Busy(Plugin):
    """The workload plugin: `Work` succeeds (a counter, an observation, a timed operation)
    or raises the exception it names. Health comes from ``config["health"]``, the key of a
    shared dict whose "mode" is ok / sick / raise."""

    version = "1.0"

    @handler
    def work(self, message: Work) -> float:
        if message.fail:
            raise EXCEPTIONS[message.fail](message.text)
        metrics = self.context.metrics
        metrics.increment("t6.done", tags={"plugin": self.context.name})
        metrics.observe("t6.value", message.value)
        return message.value

    @handler
    def sync(self, message: Sync) -> str:
        return "synced"

    def health_check(self) -> bool | Health:
        key = self.config.get("health")
        mode = shared(key).get("mode", "ok") if key else "ok"
        if mode == "sick":
            return Health(False, "disk full")
        if mode == "raise":
            raise OSError("probe failed")
        return Health(True, "fine")


class BusyV2(Busy):
    version = "2.5"


GENEROUS_RESTARTS = RestartPolicy(max_restarts=1000, within_seconds=60.0)
"""Workloads restart plugins often; they must never escalate."""


# -- paths, files and the command line ----------------------------------------------------------


LOG_FACTORY: list[Callable[[], str]] = []
"""While a suite runs on another backend: what makes its new logs (a PostgreSQL URL of a fresh schema)."""


def fresh_log(directory: Path) -> Path:
    """A new log in ``directory`` (hypothesis examples share a tmp_path): a file path, or, while
    `LOG_FACTORY` holds a factory (a suite run on PostgreSQL), the URL of a new log there."""
    if LOG_FACTORY:
        return LOG_FACTORY[-1]()  # type: ignore[return-value]  # a URL, used wherever a path is
    return directory / f"log-{uuid.uuid4().hex[:12]}.db"


def run_cli(*args: object, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real ``actorlog`` console script."""
    return subprocess.run(
        [str(ACTORLOG_CLI), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout,
        check=False,
    )


def invoke(*args: object) -> Result:
    """Run ``actorlog`` in-process through click's CliRunner (stdout and stderr kept apart).

    ``reproduce`` puts its import paths on ``sys.path``; they are taken off again here."""
    saved = list(sys.path)
    try:
        return CliRunner().invoke(cli, [str(a) for a in args], prog_name="actorlog")
    finally:
        sys.path[:] = saved


def assert_one_line_error(exit_code: int, stdout: str, stderr: str) -> str:
    """Exit status 2, a single ``actorlog: error:`` line on stderr, no traceback anywhere."""
    assert exit_code == 2, (exit_code, stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("actorlog: error:"), stderr
    assert "Traceback" not in stdout + stderr
    return lines[0]


def events_rows(path: Path) -> list[tuple[Any, ...]]:
    """Every row of the events table, read with plain sqlite3 (read-only)."""
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        return conn.execute("SELECT * FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()


def snapshot_rows(path: Path) -> list[dict[str, Any]]:
    """Every row of the snapshots table, oldest first (empty when there is none)."""
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'snapshots'").fetchone()
        return [dict(row) for row in conn.execute("SELECT * FROM snapshots ORDER BY id")] if exists else []
    finally:
        conn.close()


def read(path: Path, **filters: Any) -> list[EventRecord]:
    with EventStore.open_readonly(path) as store:
        return list(store.events(lenient=True, **filters))


def count(system: ActorSystem, kind: str) -> int:
    system.store.flush()
    return sum(1 for _ in system.store.events(kinds=[kind], run=system.run))


# -- system workloads ---------------------------------------------------------------------------


@dataclass
class Expected:
    """What a workload must leave in the statistics (a model computed independently)."""

    error_types: Counter[str] = field(default_factory=Counter)
    errors_by_plugin: Counter[str] = field(default_factory=Counter)
    counters: Counter[str] = field(default_factory=Counter)
    observations: dict[str, list[float]] = field(default_factory=dict)
    sends: Counter[str] = field(default_factory=Counter)
    restarts: Counter[str] = field(default_factory=Counter)

    @property
    def total_errors(self) -> int:
        return sum(self.error_types.values())


FAILURES = st.sampled_from(["", "", "", "ValueError", "KeyError", "RuntimeError", "T6Error", "TypeError", "OSError"])
VALUES = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda v: round(v, 3))

STEPS = st.one_of(
    st.tuples(st.just("ask"), st.integers(0, 2), FAILURES, VALUES),
    st.tuples(st.just("tell"), st.integers(0, 2), FAILURES, VALUES),
    st.tuples(st.just("counter"), st.sampled_from(["t6.a", "t6.b"]), st.integers(1, 5).map(float)),
    st.tuples(st.just("gauge"), st.sampled_from(["t6.g", "t6.h"]), VALUES),
    st.tuples(st.just("observe"), st.sampled_from(["t6.lat", "t6.size"]), VALUES),
    st.tuples(st.just("operation"), st.sampled_from(["t6.op", "t6.query"]), st.booleans()),
    st.tuples(st.just("task"), st.integers(0, 3), st.integers(0, 2)),
    st.tuples(st.just("health"), st.integers(0, 2)),
)
"""One step of a workload: messages (some failing), measurements, monitored operations,
tasks run with retries (``("task", failures, max_retries)``) and health checks."""

WORKLOADS = st.tuples(st.integers(1, 3), st.lists(STEPS, min_size=1, max_size=14))
"""(number of plugins, steps)."""


def plugin_name(index: int, plugins: int) -> str:
    return f"w{index % plugins}"


def run_workload(system: ActorSystem, plugins: int, steps: Sequence[tuple[Any, ...]]) -> Expected:
    """Register and start ``plugins`` Busy plugins, run ``steps``, then wait until every
    message was handled, every failure decided and every restart carried out."""
    expected = Expected()
    for i in range(plugins):
        system.register(f"w{i}", Busy if i % 2 == 0 else BusyV2)
    system.start()
    sleeps: list[float] = []
    for number, step in enumerate(steps):
        what = step[0]
        if what in ("ask", "tell"):
            _, index, fail, value = step
            name = plugin_name(index, plugins)
            message = Work(value=value, fail=fail, text=f"step {number}")
            expected.sends[name] += 1
            if fail:
                expected.error_types[qualified(fail)] += 1
                expected.errors_by_plugin[name] += 1
                if fail == "OSError":
                    expected.restarts[name] += 1
            else:
                expected.counters[f"t6.done{{plugin={name}}}"] += 1
                expected.observations.setdefault("t6.value", []).append(value)
            if what == "tell":
                system.tell(name, message)
            else:
                try:
                    system.ask(name, message, timeout=10)
                except Exception as exc:  # noqa: BLE001 - the failure is the point
                    assert fail and type(exc) is EXCEPTIONS[fail]
        elif what == "counter":
            system.metrics.increment(step[1], step[2])
            expected.counters[step[1]] += step[2]
        elif what == "gauge":
            system.metrics.gauge(step[1], step[2])
        elif what == "observe":
            system.metrics.observe(step[1], step[2])
            expected.observations.setdefault(step[1], []).append(step[2])
        elif what == "operation":
            name, ok = step[1], step[2]
            try:
                with system.monitor.time(name):
                    if not ok:
                        raise T6Error("operation failed")
            except T6Error:
                pass
            expected.counters[f"{name}.calls"] += 1
            expected.counters[f"{name}.{'success' if ok else 'errors'}"] += 1
        elif what == "task":
            _, failures, max_retries = step
            task = f"t6.task{number}"
            calls = [0]

            def flaky(calls: list[int] = calls, failures: int = failures) -> str:
                calls[0] += 1
                if calls[0] <= failures:
                    raise ConnectionError(f"attempt {calls[0]} refused")
                return "done"

            retrying = system.retry(task, max_retries=max_retries, retry_on=(ConnectionError,),
                                    sleep=sleeps.append, random=lambda: 0.5)
            attempts = min(failures, max_retries + 1)
            try:
                assert retrying.call(flaky) == "done"
            except ConnectionError:
                assert failures > max_retries
            if attempts:
                expected.error_types["builtins.ConnectionError"] += attempts
                expected.errors_by_plugin[task] += attempts
        elif what == "health":
            system.check_health(plugin_name(step[1], plugins), timeout=10)
    settle(system, plugins, expected)
    return expected


def settle(system: ActorSystem, plugins: int, expected: Expected) -> None:
    """Wait until everything the workload set going is in the log."""
    for i in range(plugins):
        assert system.ask(f"w{i}", Sync(), timeout=10) == "synced"
    wait_until(lambda: count(system, "failure.assessed") == expected.total_errors, what="every failure assessed")
    wait_until(lambda: count(system, "recovery.decided") == expected.total_errors, what="every failure decided")
    wait_until(lambda: count(system, "plugin.restarted") == sum(expected.restarts.values()), what="every restart")


# -- event-level workloads (appended directly, with explicit times) -----------------------------

PLUGIN_NAMES = st.sampled_from(["pa", "pb", "pc"])
SEVERITIES = st.sampled_from(["low", "medium", "high", "critical"])
TAGS = st.sampled_from([{}, {"zone": "eu"}, {"zone": "us"}])
SMALL = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)

EVENTS = st.one_of(
    st.builds(lambda p, v: ("supervisor", PluginRegistered(plugin=p, class_path=f"mod:{p.upper()}", plugin_version=v)),
              PLUGIN_NAMES, st.sampled_from(["1.0", "2.0"])),
    st.builds(lambda cls, p: ("supervisor", cls(plugin=p)),
              st.sampled_from([PluginStarting, PluginStarted, PluginStopping, PluginStopped]), PLUGIN_NAMES),
    st.builds(lambda p: ("supervisor", PluginFailed(plugin=p, reason="gone")), PLUGIN_NAMES),
    st.builds(lambda p, n: ("supervisor", PluginRestarted(plugin=p, restart_count=n)), PLUGIN_NAMES, st.integers(1, 5)),
    st.builds(lambda p, h: (p, PluginHealthChecked(plugin=p, healthy=h, detail="d" if h else "sick")),
              PLUGIN_NAMES, st.booleans()),
    st.builds(lambda p, t, s, seq: ("errors", FailureAssessed(plugin=p, exc_type=t, message=f"m{t}", severity=s,
                                                              failed_at=1.0, failure_seq=seq)),
              PLUGIN_NAMES, st.sampled_from(["a.E", "b.F", "c.G"]), SEVERITIES, st.none() | st.integers(1, 99)),
    st.builds(lambda n, v, t: ("metrics", CounterIncremented(name=n, value=v, tags=t)),
              st.sampled_from(["c1", "c2"]), SMALL, TAGS),
    st.builds(lambda n, v, t: ("metrics", GaugeSet(name=n, value=v, tags=t)), st.sampled_from(["g1", "g2"]), SMALL, TAGS),
    st.builds(lambda n, v, t: ("metrics", HistogramObserved(name=n, value=v, tags=t)),
              st.sampled_from(["h1", "h2"]), SMALL, TAGS),
    st.builds(lambda n, v, ok: ("metrics", OperationTimed(name=n, value=abs(v), ok=ok)),
              st.sampled_from(["op1", "op2"]), SMALL, st.booleans()),
    st.builds(lambda c: ("metrics", MeasurementsDropped(count=c, reason="overload")), st.integers(1, 9)),
    # measurements written by another actor and events nobody folds: ignored by the projections
    st.builds(lambda v: ("app", CounterIncremented(name="c1", value=v)), SMALL),
    st.builds(lambda a: ("app", RetryScheduled(task="t", attempt=a, delay=0.5)), st.integers(1, 3)),
)
"""(actor, event) pairs touching every projection, and some they must ignore."""

TIME_STEPS = st.sampled_from([0.0, 0.25, 1.0, 7.5, 90.0])
"""Gaps between consecutive events' times (0: equal times)."""

BASE_TS = 1_800_000_000.0


def timed_events(events: Sequence[tuple[str, Any]], gaps: Sequence[float]) -> list[tuple[str, Any, float]]:
    """(actor, event, ts) with times growing by ``gaps`` (cycled) from BASE_TS."""
    out, ts = [], BASE_TS
    for i, (actor, event) in enumerate(events):
        ts += gaps[i % len(gaps)] if gaps else 1.0
        out.append((actor, event, ts))
    return out


def append_timed(store: EventStore, items: Iterable[tuple[str, Any, float]]) -> None:
    for actor, event, ts in items:
        store.append(event, actor=actor, ts=ts)


# -- the recorded log the CLI tests read ---------------------------------------------------------

RUN_ONE = "t6-run-one"
RUN_TWO = "t6-run-two"


@dataclass
class RecordedLog:
    """A log of two real runs, written and closed: the CLI tests' fixture."""

    path: Path
    divide_failure_seq: int
    """seq of the calc plugin's ZeroDivisionError (reproducible with --import-path PLUGINS_DIR)."""
    failure_correlation: str
    """correlation of alpha's OSError: message, failure, assessment, decision and restart."""
    task_correlation: str
    """correlation of the task that failed once and was retried."""


def record_log(path: Path) -> RecordedLog:
    """Two runs over one file: failures (continued and restarted), a retried task,
    measurements, a monitored operation, health checks, a reproducible failure."""
    with ActorSystem(path, run=RUN_ONE, restart_policy=GENEROUS_RESTARTS) as system:
        system.register("alpha", Busy)
        system.register("beta", BusyV2)
        system.register("calc", calc_plugin.Calc, config={"limit": 100})
        system.start()
        system.ask("alpha", Work(value=2.0), timeout=10)
        system.ask("beta", Work(value=5.0), timeout=10)
        for text in ("first", "second"):
            try:
                system.ask("beta", Work(fail="ValueError", text=text), timeout=10)
            except ValueError:
                pass
        try:
            system.ask("alpha", Work(fail="OSError", text="disk gone"), timeout=10)
        except OSError:
            pass
        wait_until(lambda: count(system, "plugin.restarted") == 1, what="alpha restarted")
        system.ask("calc", calc_plugin.Add(x=1.0), timeout=10)
        try:
            system.ask("calc", calc_plugin.Divide(a=1.0, b=0.0), timeout=10)
        except ZeroDivisionError:
            pass
        calls = [0]

        def flaky() -> str:
            calls[0] += 1
            if calls[0] == 1:
                raise ConnectionError("refused once")
            return "ok"

        system.retry("t6.fetch", max_retries=2, sleep=lambda _: None, random=lambda: 0.5).call(flaky)
        system.metrics.increment("t6.requests", 3.0)
        system.metrics.gauge("t6.queue", 4.0)
        for value in (1.0, 2.0, 3.0, 4.0):
            system.metrics.observe("t6.latency", value, tags={"route": "/a"})
        with system.monitor.time("t6.handle"):
            pass
        system.check_health("beta", timeout=10)
        settle_all(system, expected_failures=5)
    with ActorSystem(path, run=RUN_TWO) as system:
        system.register("alpha", Busy)
        system.start()
        try:
            system.ask("alpha", Work(fail="KeyError", text="missing"), timeout=10)
        except KeyError:
            pass
        system.ask("alpha", Work(value=1.0), timeout=10)
        settle_all(system, expected_failures=1)
    records = read(path)
    failures = [r for r in records if r.kind == "failure.raised"]
    divide = next(r for r in failures if r.event.exc_type == "builtins.ZeroDivisionError")
    restart = next(r for r in failures if r.event.exc_type == "builtins.OSError")
    task = next(r for r in failures if r.event.exc_type == "builtins.ConnectionError")
    return RecordedLog(path=path, divide_failure_seq=divide.seq, failure_correlation=restart.correlation,
                       task_correlation=task.correlation)


def settle_all(system: ActorSystem, *, expected_failures: int) -> None:
    wait_until(lambda: count(system, "recovery.decided") == expected_failures, what="every failure decided")
    system.flush()


# -- comparing outputs ---------------------------------------------------------------------------


def record_row(record: EventRecord) -> dict[str, Any]:
    """What ``actorlog query --format json`` prints for one record (time aside)."""
    return {
        "seq": record.seq, "ts": record.ts, "run": record.run, "actor": record.actor, "kind": record.kind,
        "version": record.version, "correlation": record.correlation, "payload": msgspec.to_builtins(record.event),
    }


def strip_time(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "time"}


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]

