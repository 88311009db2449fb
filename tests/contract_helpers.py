"""Recordings for the live/replay contract suite (tests/test_contract_live_replay.py) and
its worker process (tests/helpers/contract_worker.py).

A scenario runs real ActorSystems over a real log and keeps a `Recording`: the log's
path, every live answer it took (`Capture`: a live system's document, and when the
system was settled its error statistics, metric summaries, Prometheus text and plugin
states, all at the document's position), and for each run a `RunModel` of what the
final statistics must be, computed from the workload and never from the library.

Workloads reuse ``replay_helpers.run_workload`` and its ``STEPS``: `Steps` wraps the
generated steps so that this suite's own steps (see `Performer`: captures, snapshots,
forgeries, measurements recorded by application code) are carried out *between* them,
without ``run_workload`` ever seeing them. Steps that make failures (crashes, retried
fetches, the escalation) run afterwards, once ``run_workload`` has settled its own
(its settling counts only the failures it made).

Message tags start with "contract." (the default registry is process-global).
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

import actorlog.events
from actor_helpers import live_events, wait_until
from log_helpers import ACTORLOG_CLI
from replay_helpers import GENEROUS_RESTARTS, Busy, BusyV2, Expected, Sync, run_workload
from actorlog.actors import ActorSystem, Decision, ErrorPolicy, Failure, MetricsOptions, RestartPolicy, handler
from actorlog.events import (
    CounterIncremented,
    Event,
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
    PluginStopped,
    register,
)
from actorlog.replay import take_snapshot
from actorlog.replay.statistics import SNAPSHOT_PROJECTION
from actorlog.store import EventStore

DEFAULT_RECENT = 10
SUMMARY_WINDOWS = (60.0, 0.05)
"""The windows every settled capture asks ``metric_summary`` for, for every series."""

# -- the independent model ---------------------------------------------------------------------

SEVERITY = {
    "builtins.SystemExit": "critical",
    "builtins.MemoryError": "high",
    "builtins.OSError": "high",
    "builtins.ConnectionError": "high",  # an OSError
    "builtins.ValueError": "medium",
    "builtins.TypeError": "medium",
    "builtins.KeyError": "low",
    "contract_helpers.Transient": "low",
    "builtins.RuntimeError": "low",
    "replay_helpers.T6Error": "low",
}
"""The documented default severities (the README's table), by qualified exception type."""

RESTARTS_ON = frozenset(name for name, severity in SEVERITY.items() if severity == "high")
"""Exception types the default policy restarts a plugin for."""

BUSY_VERSIONS = ("1.0", "2.5")
"""``run_workload`` registers ``w{i}`` as Busy (1.0) for even i, BusyV2 (2.5) for odd i."""


@dataclass
class RunModel:
    """What one run's final statistics must say, computed from its workload."""

    plugins: dict[str, list[Any]] = field(default_factory=dict)
    """name -> [state, version, restarts] at the end of the run."""
    error_types: Counter[str] = field(default_factory=Counter)
    errors_by_plugin: Counter[str] = field(default_factory=Counter)
    counters: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)
    observations: Counter[str] = field(default_factory=Counter)
    """Points recorded per histogram series (before ``max_history`` keeps the newest)."""
    max_history: int = 1000

    @property
    def total_errors(self) -> int:
        return sum(self.error_types.values())

    @property
    def severities(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for exc_type, n in self.error_types.items():
            counts[SEVERITY[exc_type]] += n
        return dict(sorted(counts.items()))

    @property
    def histogram_counts(self) -> dict[str, int]:
        return {label: min(n, self.max_history) for label, n in sorted(self.observations.items())}

    def failed(self, plugin: str, exc_type: str) -> None:
        self.error_types[exc_type] += 1
        self.errors_by_plugin[plugin] += 1
        if exc_type in RESTARTS_ON and plugin in self.plugins:
            self.plugins[plugin][2] += 1

    def count(self, name: str, value: float) -> None:
        self.counters[name] = self.counters.get(name, 0.0) + value

    def measured(self, kind: str, name: str, value: float) -> None:
        """Account for one measurement event of `MEASUREMENTS` kind ``kind``."""
        if kind == "counter":
            self.count(name, value)
        elif kind == "gauge":
            self.gauges[name] = value
        elif kind == "histogram":
            self.observations[name] += 1
        else:
            self.observations[name] += 1
            self.count(f"{name}.calls", 1.0)
            self.count(f"{name}.{'success' if value >= 0 else 'errors'}", 1.0)

    def stopped(self) -> None:
        for plugin in self.plugins.values():
            plugin[0] = "stopped"

    def add_workload(self, plugins: int, steps: Sequence[tuple[Any, ...]], expected: Expected) -> None:
        """Account for a ``run_workload`` run: its `Expected`, and what it leaves out
        (plugins, gauges, operation durations)."""
        for i in range(plugins):
            self.plugins[f"w{i}"] = ["running", BUSY_VERSIONS[i % 2], expected.restarts[f"w{i}"]]
        self.error_types.update(expected.error_types)
        self.errors_by_plugin.update(expected.errors_by_plugin)
        for name, value in expected.counters.items():
            self.count(name, float(value))
        for name, values in expected.observations.items():
            self.observations[name] += len(values)
        for step in steps:
            if step[0] == "gauge":
                self.gauges[step[1]] = step[2]
            elif step[0] == "operation":
                self.observations[step[1]] += 1

    def to_builtins(self) -> dict[str, Any]:
        return {
            "plugins": self.plugins, "error_types": dict(self.error_types),
            "errors_by_plugin": dict(self.errors_by_plugin), "counters": dict(self.counters),
            "gauges": self.gauges, "observations": dict(self.observations), "max_history": self.max_history,
        }

    @classmethod
    def from_builtins(cls, data: Mapping[str, Any]) -> RunModel:
        return cls(
            plugins={k: list(v) for k, v in data["plugins"].items()}, error_types=Counter(data["error_types"]),
            errors_by_plugin=Counter(data["errors_by_plugin"]), counters=dict(data["counters"]),
            gauges=dict(data["gauges"]), observations=Counter(data["observations"]),
            max_history=int(data["max_history"]),
        )


def expected_to_builtins(expected: Expected) -> dict[str, Any]:
    return {
        "error_types": dict(expected.error_types), "errors_by_plugin": dict(expected.errors_by_plugin),
        "counters": dict(expected.counters), "observations": expected.observations,
        "restarts": dict(expected.restarts),
    }


def expected_from_builtins(data: Mapping[str, Any]) -> Expected:
    return Expected(
        error_types=Counter(data["error_types"]), errors_by_plugin=Counter(data["errors_by_plugin"]),
        counters=Counter(data["counters"]), observations={k: list(v) for k, v in data["observations"].items()},
        restarts=Counter(data["restarts"]),
    )


# -- what a live system answered --------------------------------------------------------------


class SummaryAnswer(msgspec.Struct, kw_only=True):
    """``metric_summary(name, tags, as_of=as_of, window_seconds=window_seconds)`` live."""

    name: str
    tags: dict[str, str]
    as_of: float
    window_seconds: float
    summary: Any


class Capture(msgspec.Struct, kw_only=True):
    """What the live system of ``run`` answered at one moment (every answer as builtins;
    an answer that raised is ``{"raised": "Type: message"}``)."""

    run: str
    label: str
    document: Any
    """``statistics(recent=recent, window_seconds=window_seconds)``."""
    recent: int = DEFAULT_RECENT
    window_seconds: float | None = None
    settled: bool = False
    """The system was quiescent: every answer below is as of the document's position."""
    final: bool = False
    """Taken after ``stop()``."""
    errors: Any = None
    metrics: Any = None
    summaries: list[SummaryAnswer] = msgspec.field(default_factory=list)
    prometheus: Any = None
    plugins: Any = None
    states: dict[str, Any] = msgspec.field(default_factory=dict)
    restarts: dict[str, Any] = msgspec.field(default_factory=dict)
    again: Any = None
    """``statistics()`` once more, after every other answer: nothing of this run happened
    meanwhile, so it must be the same document."""

    @property
    def position(self) -> int:
        return int(self.document["position"])

    def where(self) -> str:
        return f"{self.label} of run {self.run} (seq {self.document.get('position')})"


def raised(answer: Any) -> str | None:
    """The exception an answer raised, if it did."""
    if isinstance(answer, dict) and set(answer) == {"raised"}:
        return str(answer["raised"])
    return None


def _answer(read: Callable[[], Any]) -> Any:
    try:
        return msgspec.to_builtins(read())
    except Exception as exc:  # noqa: BLE001 - recorded: the contract test says which answer failed
        return {"raised": f"{type(exc).__name__}: {exc}"}


def parse_label(label: str) -> tuple[str, dict[str, str]]:
    """``name{k=v,...}`` back to (name, tags)."""
    name, _, rest = label.partition("{")
    if not rest:
        return name, {}
    return name, dict(pair.split("=", 1) for pair in rest.rstrip("}").split(","))


def series_of(document: Mapping[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """Every series a statistics document names (counters, gauges and histograms)."""
    metrics = document["metrics"]
    labels = sorted({*metrics["counters"], *metrics["gauges"], *metrics["histograms"]})
    return [parse_label(label) for label in labels]


def capture_document(system: ActorSystem, label: str, *, recent: int = DEFAULT_RECENT,
                     window_seconds: float | None = None) -> Capture:
    """The live document alone: taken while the workload may still be running."""
    document = _answer(lambda: system.statistics(recent=recent, window_seconds=window_seconds))
    return Capture(run=system.run, label=label, document=document, recent=recent, window_seconds=window_seconds)


def capture_settled(system: ActorSystem, label: str, names: Sequence[str], *, recent: int = DEFAULT_RECENT,
                    window_seconds: float | None = None, final: bool = False) -> Capture:
    """Every live answer, at one position, with the states of the plugins ``names``. The
    caller makes the run quiescent first (`quiesce`, or after an escalation or ``stop()``):
    nothing more is committed for it until the last answer, which ``again`` shows."""
    document = _answer(lambda: system.statistics(recent=recent, window_seconds=window_seconds))
    capture = Capture(run=system.run, label=label, document=document, recent=recent,
                      window_seconds=window_seconds, settled=True, final=final)
    capture.errors = _answer(lambda: system.error_statistics(recent))
    capture.metrics = _answer(system.all_metrics)
    if raised(document) is None:
        as_of = document["as_of"]
        for name, tags in series_of(document):
            for window in SUMMARY_WINDOWS:
                capture.summaries.append(SummaryAnswer(
                    name=name, tags=tags, as_of=as_of, window_seconds=window,
                    summary=_answer(lambda: system.metric_summary(name, tags, as_of=as_of, window_seconds=window)),
                ))
        capture.prometheus = _answer(system.prometheus)
    capture.plugins = _answer(lambda: system.plugins)
    for name in names:
        capture.states[name] = _answer(lambda: system.state(name))
        capture.restarts[name] = _answer(lambda: system.restarts(name))
    capture.again = _answer(lambda: system.statistics(recent=recent, window_seconds=window_seconds))
    return capture


def quiesce(system: ActorSystem, names: Sequence[str]) -> None:
    """Wait until every message sent to ``names`` was handled, every failure raised was
    assessed and decided by the error handler, and every restart decided was carried out
    (counting only rows written by the entitled actors)."""
    for name in names:
        assert system.ask(name, Sync(), timeout=10) == "synced"

    def settled() -> bool:
        records = live_events(system, run=system.run,
                              kinds=["failure.raised", "failure.assessed", "recovery.decided", "plugin.restarted"])
        raised_ = sum(1 for r in records if r.kind == "failure.raised")
        assessed = sum(1 for r in records if r.kind == "failure.assessed" and r.actor == "errors")
        decided = [r for r in records if r.kind == "recovery.decided" and r.actor == "errors"]
        restarts = sum(1 for r in decided if r.event.action == "restart")
        restarted = sum(1 for r in records if r.kind == "plugin.restarted" and r.actor == "supervisor")
        return raised_ == assessed == len(decided) and restarted >= restarts

    wait_until(settled, what="every failure assessed and decided, every restart carried out")


def wait_escalated(system: ActorSystem, names: Sequence[str]) -> None:
    """Wait until the supervisor has escalated and stopped every plugin in ``names``."""
    assert system.wait(timeout=10), "the system did not escalate"

    def stopped() -> bool:
        records = live_events(system, run=system.run, actor="supervisor", kinds=["escalated", "plugin.stopped"])
        escalated = [r.seq for r in records if r.kind == "escalated"]
        after = {r.event.plugin for r in records if r.kind == "plugin.stopped" and escalated and r.seq > escalated[0]}
        return bool(escalated) and after >= set(names)

    wait_until(stopped, what="the escalation stopped every plugin")


# -- this suite's own plugin and steps ---------------------------------------------------------


class Transient(Exception):
    """A failure that goes away when the message is delivered again (low severity)."""


@register
class Flaky(Message, tag="contract.flaky", frozen=True):
    """Raise `Transient` on the first ``times`` deliveries of the message ``key``, then succeed."""

    key: str
    times: int


@register
class Crash(Message, tag="contract.crash", frozen=True):
    """Raise the exception named (a key of `CRASHES`)."""

    exception: str


@register
class Fetch(Message, tag="contract.fetch", frozen=True):
    """Run task ``task`` with ``context.retry``: it fails ``failures`` times with ConnectionError."""

    task: str
    failures: int
    max_retries: int


@register
class Measure(Message, tag="contract.measure", frozen=True):
    """``context.emit`` the measurement ``kind`` (a key of `MEASUREMENTS`): allowed, and it counts."""

    measurement: str
    name: str
    value: float


@register
class Forge(Message, tag="contract.forge", frozen=True):
    """Try to ``context.emit`` the forged built-in event ``fact`` (a key of `FORGERIES`) about plugin ``target``."""

    fact: str
    target: str


CRASHES: dict[str, type[BaseException]] = {
    "MemoryError": MemoryError,
    "OSError": OSError,
    "ValueError": ValueError,
    "KeyError": KeyError,
    "SystemExit": SystemExit,
}

FORGERIES: dict[str, Callable[[str], Event]] = {
    "plugin.stopped": lambda target: PluginStopped(plugin=target),
    "plugin.failed": lambda target: PluginFailed(plugin=target, reason="forged"),
    "plugin.restarted": lambda target: PluginRestarted(plugin=target, restart_count=7, reason="forged"),
    "plugin.registered": lambda target: PluginRegistered(plugin=target, class_path="forged:Q", plugin_version="6.6.6"),
    "plugin.health_checked": lambda target: PluginHealthChecked(plugin=target, healthy=False, detail="forged"),
    "failure.assessed": lambda target: FailureAssessed(
        plugin=target, exc_type="forged.Error", message="forged", severity="critical", failed_at=1.0,
    ),
    "measurements.dropped": lambda target: MeasurementsDropped(count=5, reason="forged"),
    "metrics.configured": lambda target: actorlog.events.MetricsConfigured(max_history=1),
}
"""Built-in facts no plugin may write, each about plugin ``target``."""

MEASUREMENTS: dict[str, Callable[[str, float], Event]] = {
    "counter": lambda name, value: CounterIncremented(name=name, value=value),
    "gauge": lambda name, value: GaugeSet(name=name, value=value),
    "histogram": lambda name, value: HistogramObserved(name=name, value=value),
    "operation": lambda name, value: OperationTimed(name=name, value=abs(value), ok=value >= 0),
}
"""Measurement events application code may append under any actor name (they count)."""

CONTRACTED_VERSION = "3.1"


class Contracted(Busy):
    """Busy, plus: `Crash` raises, `Fetch` runs a flaky task with ``context.retry``, `Forge`
    tries to emit a built-in fact and answers what happened."""

    version = CONTRACTED_VERSION

    @handler
    def crash(self, message: Crash) -> None:
        exc_type = CRASHES[message.exception]
        raise exc_type(3) if exc_type is SystemExit else exc_type(f"contract crash: {message.exception}")

    @handler
    def fetch(self, message: Fetch) -> str:
        calls = [0]

        def flaky() -> str:
            calls[0] += 1
            if calls[0] <= message.failures:
                raise ConnectionError(f"attempt {calls[0]} refused")
            return "fetched"

        retrying = self.context.retry(message.task, max_retries=message.max_retries, retry_on=(ConnectionError,),
                                      sleep=lambda _: None, random=lambda: 0.5)
        try:
            return retrying.call(flaky)
        except ConnectionError:
            return "gave up"

    def on_start(self) -> None:
        self.deliveries: Counter[str] = Counter()

    @handler
    def flaky(self, message: Flaky) -> str:
        self.deliveries[message.key] += 1
        if self.deliveries[message.key] <= message.times:
            raise Transient(f"delivery {self.deliveries[message.key]} of {message.key}")
        return "delivered"

    @handler
    def measure(self, message: Measure) -> None:
        self.context.emit(MEASUREMENTS[message.measurement](message.name, message.value))

    @handler
    def forge(self, message: Forge) -> str:
        try:
            self.context.emit(FORGERIES[message.fact](message.target))
        except Exception as exc:  # noqa: BLE001 - the answer says how it was refused
            return f"{type(exc).__name__}: {exc}"
        return "emitted"


class Steps(Sequence[tuple[Any, ...]]):
    """``run_workload``'s steps, with this suite's own steps carried out between them.

    ``between[i]`` runs (through ``perform``) just before step ``i`` is handed out;
    ``between[len(steps)]`` after the last one, before ``run_workload`` settles.
    """

    def __init__(self, steps: Sequence[tuple[Any, ...]], between: Mapping[int, Sequence[tuple[Any, ...]]],
                 perform: Callable[[tuple[Any, ...]], None]) -> None:
        self.steps = list(steps)
        self.between = between
        self.perform = perform

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, index: Any) -> Any:
        return self.steps[index]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        for index, step in enumerate(self.steps):
            for own in self.between.get(index, ()):
                self.perform(own)
            yield step
        for own in self.between.get(len(self.steps), ()):
            self.perform(own)


def placed(steps: Sequence[Any], own: Sequence[tuple[int, tuple[Any, ...]]]) -> dict[int, list[tuple[Any, ...]]]:
    """(position, step) pairs as ``Steps.between`` (positions beyond the end go last)."""
    between: dict[int, list[tuple[Any, ...]]] = {}
    for position, step in own:
        between.setdefault(min(position, len(steps)), []).append(step)
    return between


@dataclass
class Performer:
    """Carries out this suite's own steps on a running system, keeping the captures,
    the model and what the steps observed.

    Steps: ``("document", recent, window)``, ``("settled", recent, window)``,
    ``("snapshot", whole)``, ``("auto_snapshot", every)``, ``("crash", target, exception)``,
    ``("fetch", target, failures, max_retries)``, ``("flaky", target, times, "tell"|"ask",
    redeliveries)``, ``("escalate", target, cause, budget)``,
    ``("forge", "emit"|"append", kind, target)`` and ``("measure",
    "system"|"separate"|"plugin", kind, name, value)``.
    """

    system: ActorSystem
    model: RunModel
    captures: list[Capture]
    names: list[str] = field(default_factory=list)
    """Every plugin to sync with before a settled capture (w0.. and the Contracted ones)."""
    separate: EventStore | None = None
    separate_model: RunModel | None = None
    forger: str = ""
    """The Contracted plugin that forges (and emits measurements)."""
    refusals: list[tuple[str, str]] = field(default_factory=list)
    """(kind, answer) of each forged emit."""
    appended: list[str] = field(default_factory=list)
    """Kinds of the forged rows appended through the store as actor "worker"."""
    unchanged: list[tuple[Capture, Capture]] = field(default_factory=list)
    """(before, after) settled captures around each forgery."""
    fetches: int = 0
    flakes: int = 0
    retries: int = 0
    """Retry decisions the error handler must have carried out for plugins' failures."""

    def __call__(self, step: tuple[Any, ...]) -> None:
        what, args = step[0], step[1:]
        getattr(self, "_" + what)(*args)

    def _document(self, recent: int, window: float | None) -> None:
        self.captures.append(capture_document(self.system, f"document {len(self.captures)}",
                                              recent=recent, window_seconds=window))

    def _settled(self, recent: int, window: float | None) -> None:
        quiesce(self.system, self.names)
        self.captures.append(capture_settled(self.system, f"settled {len(self.captures)}", self.names,
                                             recent=recent, window_seconds=window))

    def _snapshot(self, whole: bool) -> None:
        take_snapshot(self.system.store, run=None if whole else self.system.run)

    def _auto_snapshot(self, every: int) -> None:
        """Wait for the system's next automatic snapshot of its run (``snapshot_every=every``):
        commit enough events for one (each Sync asked is logged), then wait for its row."""
        store, run = self.system.store, self.system.run
        taken = len(store.snapshots(SNAPSHOT_PROJECTION, run=run))
        for _ in range(every):
            assert self.system.ask(self.names[0], Sync(), timeout=10) == "synced"
        self.system.flush()
        wait_until(lambda: len(store.snapshots(SNAPSHOT_PROJECTION, run=run)) > taken, what="an automatic snapshot")

    def _crash(self, target: str, exception: str) -> None:
        try:
            self.system.ask(target, Crash(exception=exception), timeout=10)
        except CRASHES[exception]:
            pass
        self.model.failed(target, f"builtins.{exception}")
        quiesce(self.system, self.names)

    def _flaky(self, target: str, times: int, mode: str, redeliveries: int) -> None:
        """Send ``Flaky(times=times)`` to ``target`` (told or asked); a told one is delivered
        again after each retry decision, at most ``redeliveries`` times; an asked one is not."""
        self.flakes += 1
        message = Flaky(key=f"flaky{self.flakes}", times=times)
        if mode == "tell":
            self.system.tell(target, message)
            failures = min(times, redeliveries + 1)
            self.retries += min(failures, redeliveries)
        else:
            try:
                assert self.system.ask(target, message, timeout=10) == "delivered"
            except Transient:
                pass
            failures = min(times, 1)
        for _ in range(failures):
            self.model.failed(target, "contract_helpers.Transient")
        quiesce(self.system, self.names)

    def _fetch(self, target: str, failures: int, max_retries: int) -> None:
        self.fetches += 1
        task = f"contract.fetch{self.fetches}"
        answer = self.system.ask(target, Fetch(task=task, failures=failures, max_retries=max_retries), timeout=10)
        assert answer == ("fetched" if failures <= max_retries else "gave up")
        for _ in range(min(failures, max_retries + 1)):
            self.model.failed(task, "builtins.ConnectionError")

    def _escalate(self, target: str, cause: str, budget: int) -> None:
        """Make ``target`` fail critically (``cause`` "SystemExit"), or fail high once more
        than the restart budget allows (``cause`` "restarts", with ``RestartPolicy(max_restarts=budget)``)."""
        if cause == "restarts":
            for _ in range(budget):
                self._crash(target, "MemoryError")
            exception = "MemoryError"
        else:
            exception = "SystemExit"
        try:
            self.system.ask(target, Crash(exception=exception), timeout=10)
        except CRASHES[exception]:
            pass
        self.model.error_types[f"builtins.{exception}"] += 1  # a failure, but no restart: escalated
        self.model.errors_by_plugin[target] += 1
        wait_escalated(self.system, self.names)

    def _forge(self, route: str, kind: str, target: str) -> None:
        quiesce(self.system, self.names)
        before = capture_settled(self.system, f"before forging {kind} ({route})", self.names)
        if route == "emit":
            self.refusals.append((kind, self.system.ask(self.forger, Forge(fact=kind, target=target), timeout=10)))
        else:
            self.system.store.append(FORGERIES[kind](target), actor="worker")
            self.appended.append(kind)
        quiesce(self.system, self.names)
        after = capture_settled(self.system, f"after forging {kind} ({route})", self.names)
        self.captures += [before, after]
        self.unchanged.append((before, after))

    def _measure(self, route: str, kind: str, name: str, value: float) -> None:
        """Record a measurement through the system's store ("system"), a separate store
        on the same file ("separate", its own run) or a plugin's ``context.emit`` ("plugin")."""
        event = MEASUREMENTS[kind](name, value)
        model = self.model
        if route == "system":
            self.system.store.append(event, actor="worker")
        elif route == "plugin":
            self.system.ask(self.forger, Measure(measurement=kind, name=name, value=value), timeout=10)
        else:
            assert self.separate is not None and self.separate_model is not None
            self.separate.append(event, actor="worker")
            model = self.separate_model
        model.measured(kind, name, value)


# -- one run of a live system ---------------------------------------------------------------------

CLASSES: dict[str, type[Busy]] = {"Busy": Busy, "BusyV2": BusyV2, "Contracted": Contracted}


def retry_transient(failure: Failure) -> Decision:
    """An error-policy handler: a `Transient` failure is retried (a told message is delivered again)."""
    return Decision("retry", delay=0.0, reason="contract: retry a transient failure")


@dataclass
class RunRecord:
    """What one live run left: its captures, its model and what its steps observed."""

    run: str
    captures: list[Capture]
    model: RunModel
    refusals: list[tuple[str, str]] = field(default_factory=list)
    appended: list[str] = field(default_factory=list)
    unchanged: list[tuple[Capture, Capture]] = field(default_factory=list)
    escalation: str | None = None
    retries: int = 0
    separate_run: str | None = None
    separate_model: RunModel | None = None


def record_run(path: Path, plan: Mapping[str, Any], *, run: str | None = None,
               store: EventStore | None = None) -> RunRecord:
    """Run one live system over ``path`` (or over ``store``, an `EventStore` open on it,
    which the system leaves open) as ``plan`` says, then stop it.

    ``plan``: ``plugins`` and ``steps`` (for ``run_workload``), ``between`` ((position,
    own step) pairs carried out between its steps), ``after`` (own steps once it has
    settled), and optionally ``extra`` (name -> a `CLASSES` key, registered first),
    ``forger`` (the Contracted plugin that forges), ``max_history``, ``restart_budget``
    (``RestartPolicy.max_restarts``; default: generous), ``max_redeliveries`` (an error
    policy that retries `Transient` failures, delivering a told message again so often) and
    ``separate`` (also append through a separate `EventStore` on the same file).
    Captures: the ``between``/``after`` ones, one settled at the end of the run (or after
    the escalation), and the final one after ``stop()``.
    """
    plugins, steps = int(plan["plugins"]), [tuple(step) for step in plan["steps"]]
    max_history = int(plan.get("max_history", 1000))
    budget = plan.get("restart_budget")
    system = ActorSystem(
        path if store is None else store, run=run, metrics=MetricsOptions(max_history=max_history),
        restart_policy=GENEROUS_RESTARTS if budget is None else RestartPolicy(max_restarts=budget, within_seconds=600),
        error_policy=None if plan.get("max_redeliveries") is None else ErrorPolicy(
            handlers={Transient: retry_transient}, max_redeliveries=int(plan["max_redeliveries"])),
        snapshot_every=plan.get("snapshot_every"),
    )
    model = RunModel(max_history=max_history)
    separate = EventStore(path) if plan.get("separate") else None
    extra = dict(plan.get("extra", {}))
    names = [f"w{i}" for i in range(plugins)] + list(extra)
    performer = Performer(system, model, [], names=names, separate=separate,
                          separate_model=RunModel() if separate else None, forger=str(plan.get("forger", "")))
    try:
        for name, key in extra.items():
            system.register(name, CLASSES[key])
            model.plugins[name] = ["running", str(CLASSES[key].version), 0]
        own = [(int(position), tuple(step)) for position, step in plan.get("between", [])]
        expected = run_workload(system, plugins, Steps(steps, placed(steps, own), performer))
        model.add_workload(plugins, steps, expected)
        for step in plan.get("after", []):
            performer(tuple(step))
        if system.escalation is None:
            performer(("settled", DEFAULT_RECENT, None))
        else:
            performer.captures.append(capture_settled(system, "after the escalation", names))
    finally:
        system.stop()
        if separate is not None:
            separate.close()
    model.stopped()
    performer.captures.append(capture_settled(system, "final", names, final=True))
    return RunRecord(
        run=system.run, captures=performer.captures, model=model, refusals=performer.refusals,
        appended=performer.appended, unchanged=performer.unchanged, retries=performer.retries,
        escalation=None if system.escalation is None else str(system.escalation),
        separate_run=None if separate is None else separate.run, separate_model=performer.separate_model,
    )


@dataclass
class Recording:
    """A scenario's log and everything its live systems answered."""

    path: Path
    records: list[RunRecord]

    @property
    def captures(self) -> list[Capture]:
        return [capture for record in self.records for capture in record.captures]

    @property
    def models(self) -> dict[str, RunModel]:
        """Every run's model, runs without a live system (a separate store's) included."""
        models = {record.run: record.model for record in self.records}
        for record in self.records:
            if record.separate_run is not None and record.separate_model is not None:
                models[record.separate_run] = record.separate_model
        return models

    @property
    def finals(self) -> dict[str, Capture]:
        return {c.run: c for c in self.captures if c.final}


# -- the command line ----------------------------------------------------------------------------


def run_cli_all(commands: Sequence[Sequence[object]], timeout: float = 60) -> list[subprocess.CompletedProcess[str]]:
    """Run several real ``actorlog`` commands at once; their results, in order."""
    processes = [
        (args, subprocess.Popen([str(ACTORLOG_CLI), *map(str, args)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True))
        for args in commands
    ]
    results = []
    for args, process in processes:
        stdout, stderr = process.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess([str(a) for a in args], process.returncode, stdout, stderr))
    return results


def stats_command(path: Path, capture: Capture) -> list[object]:
    """``actorlog stats`` arguments that must print ``capture.document``."""
    args: list[object] = ["stats", path, "--run", capture.run, "--until-seq", capture.position, "--json",
                          "--recent", capture.recent]
    if capture.window_seconds is not None:
        args += ["--window", repr(capture.window_seconds)]
    return args


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
