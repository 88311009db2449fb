"""The built-in event catalogue: every fact the actor system itself records.

Tags are grouped by family (``run.*``, ``plugin.*``, failures and recovery,
``message.*``, measurements). The SQL views ``lifecycle``, ``failures`` and
``measurements`` are built on these tags.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import msgspec

from actorlog.events.base import Event

Severity = Literal["low", "medium", "high", "critical"]
"""How serious a failure is; assessed by the error handler."""

RecoveryAction = Literal["continue", "retry", "restart", "restart_with_dependents", "stop", "escalate"]
"""What the error handler decided to do about a failure."""


class RunStarted(Event, tag="run.started", frozen=True):
    """An actor-system run began writing to this log (the run id is the row's ``run``)."""

    pid: int
    host: str
    python: str
    actorlog_version: str


class RunStopped(Event, tag="run.stopped", frozen=True):
    """An actor-system run ended. ``clean`` is False when it stopped by escalation."""

    reason: str = "normal"
    clean: bool = True


class PluginRegistered(Event, tag="plugin.registered", frozen=True):
    """A plugin was registered: enough to build a fresh instance of it later."""

    plugin: str
    class_path: str
    plugin_version: str
    config: dict[str, Any] = msgspec.field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    log_messages: bool = True


class PluginStarting(Event, tag="plugin.starting", frozen=True):
    """A plugin's ``on_start`` is about to run."""

    plugin: str


class PluginStarted(Event, tag="plugin.started", frozen=True):
    """A plugin's ``on_start`` finished; it now handles messages."""

    plugin: str


class PluginHealthChecked(Event, tag="plugin.health_checked", frozen=True):
    """The result of one health check of a plugin."""

    plugin: str
    healthy: bool
    detail: str = ""


class PluginStopping(Event, tag="plugin.stopping", frozen=True):
    """A plugin's ``on_stop`` is about to run."""

    plugin: str


class PluginStopped(Event, tag="plugin.stopped", frozen=True):
    """A plugin stopped; it handles no more messages."""

    plugin: str


class PluginFailed(Event, tag="plugin.failed", frozen=True):
    """A plugin could not start or was stopped because of a failure."""

    plugin: str
    reason: str
    exc_type: str | None = None


class PluginStopTimedOut(Event, tag="plugin.stop_timed_out", frozen=True):
    """A plugin did not stop (or halt for a restart) within ``timeout`` seconds; its thread was
    abandoned. ``handling`` names the message type its handler was running, if any."""

    plugin: str
    timeout: float
    handling: str | None = None


class PluginRestarted(Event, tag="plugin.restarted", frozen=True):
    """A fresh instance of a plugin replaced a failed one."""

    plugin: str
    restart_count: int
    reason: str = ""


class PluginUpgrading(Event, tag="plugin.upgrading", frozen=True):
    """An upgrade of a running plugin began: its messages now wait for the new instance.

    ``old_*`` name the class, version and config running until now, the others what
    replaces them (the config redacted, as at registration). ``migrate`` says whether
    the old instance's state is handed over (``on_upgrade``, then ``migrate``).
    """

    plugin: str
    old_class_path: str
    old_version: str
    old_config: dict[str, Any]
    class_path: str
    plugin_version: str
    config: dict[str, Any]
    migrate: bool = True


class PluginUpgraded(Event, tag="plugin.upgraded", frozen=True):
    """A new class, version or config of a plugin took over its messages (same fields as
    ``plugin.upgrading``, under the same correlation); what waited is delivered to it."""

    plugin: str
    old_class_path: str
    old_version: str
    old_config: dict[str, Any]
    class_path: str
    plugin_version: str
    config: dict[str, Any]
    migrate: bool = True


class PluginUpgradeFailed(Event, tag="plugin.upgrade_failed", frozen=True):
    """An upgrade failed once begun (the new instance's ``on_start`` or ``migrate`` raised, the
    old one's ``on_upgrade`` raised, or it did not halt in time). ``rolled_back`` is True when
    the old class and config run again; False when even that failed (a failed restart)."""

    plugin: str
    class_path: str
    plugin_version: str
    reason: str
    exc_type: str | None = None
    traceback: str = ""
    rolled_back: bool = True
    handed_over: bool = True
    """Whether the old instance had handed over its state and stopped (False: it never stopped)."""


class PluginUpgradeRefused(Event, tag="plugin.upgrade_refused", frozen=True):
    """An upgrade was refused by its checks before anything changed; ``reason`` says why."""

    plugin: str
    class_path: str
    plugin_version: str
    reason: str


class ConfigReloaded(Event, tag="config.reloaded", frozen=True):
    """``actorlog run`` applied a changed config file (on SIGHUP): the plugins it upgraded,
    added and removed, in the order it did so."""

    path: str
    upgraded: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


class ConfigReloadRefused(Event, tag="config.reload_refused", frozen=True):
    """``actorlog run`` was asked to reload its config file and refused it: nothing changed."""

    path: str
    reason: str


class FailureRaised(Event, tag="failure.raised", frozen=True):
    """A handler, start, stop or health check raised.

    ``exc_type`` is the exception's qualified type (``module.QualName``);
    ``trigger_seq`` is the seq of the ``message.received`` event that caused it, if any.
    ``truncated`` is True when ``message`` or ``traceback`` was too long to keep whole
    and was cut in the middle (a marker in the text says how many characters).
    """

    plugin: str
    exc_type: str
    message: str
    traceback: str
    severity: Severity | None = None
    trigger_seq: int | None = None
    truncated: bool = False


class FailureAssessed(Event, tag="failure.assessed", frozen=True):
    """The error handler's assessment of one failure: what failed, how badly, and when.

    Self-contained, so error statistics are a fold over these events alone.
    ``failure_seq`` is the seq of the ``failure.raised`` event it assesses; ``truncated``
    is True when ``message`` was cut in the middle, as in ``failure.raised``.
    """

    plugin: str
    exc_type: str
    message: str
    severity: Severity
    failed_at: float
    failure_seq: int | None = None
    truncated: bool = False


class RecoveryDecided(Event, tag="recovery.decided", frozen=True):
    """The error handler's decision about one failure."""

    plugin: str
    action: RecoveryAction
    delay: float = 0.0
    reason: str = ""
    severity: Severity | None = None
    failure_seq: int | None = None


class RetryScheduled(Event, tag="retry.scheduled", frozen=True):
    """Attempt ``attempt`` of a task failed; the next one runs after ``delay`` seconds."""

    task: str
    attempt: int
    delay: float
    exc_type: str = ""


class TaskSucceeded(Event, tag="task.succeeded", frozen=True):
    """A task run with recovery succeeded after ``attempts`` attempts."""

    task: str
    attempts: int


class TaskGaveUp(Event, tag="task.gave_up", frozen=True):
    """A task run with recovery failed for good; its last exception was re-raised."""

    task: str
    attempts: int
    exc_type: str
    message: str


class Escalated(Event, tag="escalated", frozen=True):
    """A failure was escalated: the system stops with an error."""

    plugin: str
    reason: str
    exc_type: str | None = None


class MessageReceived(Event, tag="message.received", frozen=True):
    """A plugin received a message. With the row's ``ts`` (the receive time) and
    ``seed`` (for the handler's random numbers), this is what reproduction replays."""

    recipient: str
    sender: str
    message: dict[str, Any]
    seed: int = 0


class MessageRefused(Event, tag="message.refused", frozen=True):
    """A message was refused before reaching its handler (permissions, unknown type, stopped plugin)."""

    recipient: str
    sender: str
    message_kind: str
    reason: str


class CounterIncremented(Event, tag="counter.incremented", frozen=True):
    """A counter went up by ``value``."""

    name: str
    value: float = 1.0
    tags: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_finite(self)


class GaugeSet(Event, tag="gauge.set", frozen=True):
    """A gauge was set to ``value``."""

    name: str
    value: float
    tags: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_finite(self)


class HistogramObserved(Event, tag="histogram.observed", frozen=True):
    """A histogram observed ``value``."""

    name: str
    value: float
    tags: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_finite(self)


def _require_finite(event: CounterIncremented | GaugeSet | HistogramObserved | OperationTimed) -> None:
    if not math.isfinite(event.value):
        raise ValueError(
            f"{type(event).__name__} {event.name!r}: value must be a finite number, got {event.value!r}"
        )


class OperationTimed(Event, tag="operation.timed", frozen=True):
    """One monitored operation: its duration (seconds) and whether it succeeded.

    Metrics read it as an observation of the histogram ``name`` plus increments of the
    counters ``name.calls`` and ``name.success`` or ``name.errors``.
    """

    name: str
    value: float
    ok: bool = True
    tags: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_finite(self)


class Checkpoint(Event, tag="checkpoint", frozen=True):
    """A signed statement of the log's state, written by the store (actor ``store``).

    It names the row just before it (``covered_seq`` and its chain hash), the ``time`` and
    ``run`` it was written at and by, the signing key's id, and an Ed25519 ``signature``
    over those (see `actorlog.store.signing.checkpoint_message`). Like any row, it is part
    of the chain: rewriting history before it breaks either the chain or the signature.
    """

    covered_seq: int
    covered_hash: str
    time: float
    run: str
    key_id: str
    signature: str


class SnapshotTaken(Event, tag="snapshot.taken", frozen=True):
    """A projection snapshot was stored; its content's SHA-256 ``digest`` is now in the chain,
    so a snapshot edited afterwards is found by ``verify`` and skipped by ``rebuild``."""

    projection: str
    projection_version: int
    position: int
    run: str
    digest: str


class MetricsConfigured(Event, tag="metrics.configured", frozen=True):
    """The options that shape a run's metrics, recorded at its start so replay keeps the same.

    ``buckets`` are the upper bounds of the Prometheus histogram buckets of this run's
    observations and timed operations, ``histogram_buckets`` those of named metrics; None
    (a log written before buckets existed): the default buckets."""

    max_history: int
    buckets: list[float] | None = None
    histogram_buckets: dict[str, list[float]] = {}


class MeasurementsDropped(Event, tag="measurements.dropped", frozen=True):
    """Measurements were dropped under an explicit sampling policy; ``count`` says how many."""

    count: int
    reason: str


BUILTIN_EVENTS: tuple[type[Event], ...] = (
    RunStarted,
    RunStopped,
    PluginRegistered,
    PluginStarting,
    PluginStarted,
    PluginHealthChecked,
    PluginStopping,
    PluginStopped,
    PluginFailed,
    PluginStopTimedOut,
    PluginRestarted,
    PluginUpgrading,
    PluginUpgraded,
    PluginUpgradeFailed,
    PluginUpgradeRefused,
    ConfigReloaded,
    ConfigReloadRefused,
    FailureRaised,
    FailureAssessed,
    RecoveryDecided,
    RetryScheduled,
    TaskSucceeded,
    TaskGaveUp,
    Escalated,
    MessageReceived,
    MessageRefused,
    CounterIncremented,
    GaugeSet,
    HistogramObserved,
    OperationTimed,
    MeasurementsDropped,
    MetricsConfigured,
    Checkpoint,
    SnapshotTaken,
)
"""Every built-in event type, registered in the default registry at import."""

MEASUREMENT_KINDS: frozenset[str] = frozenset(
    {"counter.incremented", "gauge.set", "histogram.observed", "operation.timed"}
)
"""Measurements: the built-in kinds application code may record under any actor name, and that count."""

RESERVED_KINDS: frozenset[str] = frozenset(str(cls.__struct_config__.tag) for cls in BUILTIN_EVENTS) - MEASUREMENT_KINDS
"""Built-in facts only the actor system's own actors write (run, plugin lifecycle, message,
failure, recovery, retry/task and metrics bookkeeping): a plugin cannot emit them, and the
projections fold each only from the actor entitled to write it."""
