"""Reproducing a recorded failure: the same plugin code fed the same messages, offline.

Given the seq of a ``failure.raised`` event, a fresh instance of that plugin is built
from its recorded class path and config, started, and fed every message it received in
that run since its last (re)start, in order, each with its recorded receive time and
random seed. If the plugin was upgraded since that start, the upgrades happen at the same
places in the replay: the instance hands its state (``on_upgrade``) to an instance of the
recorded new class and config (``migrate``), so the failure is replayed by the code that
was active when it happened. Nothing is written to the original log: events the plugin emits are kept
in memory, and calls to other plugins are refused (their answers were not recorded).

A log may come from someone else, and its config and messages decide what the plugin
does, so reproduction is safe by default: opening a log runs nothing you did not allow.
The plugin gets no environment variables, no network and no child processes, unless the
caller allows each (``allow_env``, ``allow_network``, ``allow_processes``, or ``trust``
for all). While anything is withheld, the reproduction runs in a child process of its own
(`actorlog.replay.reproduce_child`) whose environment holds only the variables allowed
and `BASE_ENVIRONMENT`, on Linux in a network namespace of its own where the kernel
allows it; in it, `actorlog.actors.capabilities.confined` refuses connections, name
lookups, process creation and native code (``ctypes``), and ``context.getenv`` reads
what is withheld as unset. The report names what was withheld, what the plugin tried to
use and was refused (so an outcome that depended on it says so), and which isolation was
in force (`Reproduction.isolation`).

Limits: file writes are not withheld, and this guards installed plugins misdirected by a
log's config and messages, not hostile plugin code (Python code can undo Python's guards;
the child's environment and network namespace are what it cannot undo).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from actorlog.actors.capabilities import Capabilities, Capability, confined, names_in_config
from actorlog.actors.clock import RecordedClock
from actorlog.actors.error_policy import qualified_name
from actorlog.actors.loading import load_plugin_class
from actorlog.actors.plugin import Plugin, handlers_of
from actorlog.actors.redaction import redact_text
from actorlog.actors.retry import RetryPolicy
from actorlog.actors.tracebacks import format_traceback, is_cut_of
from actorlog.events import (
    ActorlogError,
    FailureRaised,
    MessageReceived,
    PluginRegistered,
    PluginUpgraded,
    PluginUpgradeFailed,
    PluginUpgrading,
    TypeRegistry,
)
from actorlog.store import EventRecord, EventStore
from actorlog.store.signing import PublicKey


class NotAFailureError(ActorlogError, ValueError):
    """The seq given does not name a ``failure.raised`` event."""


class UntrustedLogError(ActorlogError, ValueError):
    """``trust_key`` was given, but the log is not signed by that key up to the failure."""


class ReproductionRefused(ActorlogError, RuntimeError):
    """A reproduced plugin tried to do something that cannot be replayed (call another plugin)."""


class ReproductionFailed(ActorlogError, RuntimeError):
    """The reproduction's child process ended without a report (it could not start, or it crashed)."""


class Reproduction(msgspec.Struct, frozen=True, kw_only=True):
    """What happened when a failure was replayed."""

    reproduced: bool
    plugin: str
    class_path: str
    recorded_version: str
    current_version: str | None
    messages_replayed: int
    failure_seq: int
    trigger_seq: int | None
    recorded_exc_type: str
    recorded_message: str
    recorded_traceback: str
    exc_type: str | None = None
    message: str | None = None
    traceback: str | None = None
    failed_at_seq: int | None = None
    notes: tuple[str, ...] = ()
    withheld: tuple[str, ...] = ()
    """Capabilities the plugin was not given: ``environment``, ``network``, ``processes`` (empty when trusted)."""
    refused: tuple[str, ...] = ()
    """What the plugin tried to use of them and was refused (``network: connect to ('127.0.0.1', 80)``):
    when not empty, the outcome depended on a withheld capability."""
    upgrades: tuple[int, ...] = ()
    """Seqs of the ``plugin.upgraded`` events replayed between the start and the failure."""
    isolation: str = ""
    """Where the plugin ran and what held it: a child process with a clean environment (and
    on Linux its own network namespace), or this process (audit hooks only)."""


BASE_ENVIRONMENT = ("PATH", "LANG", "LANGUAGE", "TZ", "SYSTEMROOT")
"""What a confined reproduction's child process gets of the caller's environment besides
the variables allowed: these, every ``LC_*`` locale variable, and ``PYTHONPATH`` set to the
caller's import paths (so it imports the same code). ``SYSTEMROOT`` only matters on Windows."""

CHILD_MODULE = "actorlog.replay.reproduce_child"
"""The module the child process runs (``python -P -m CHILD_MODULE``)."""


class ChildRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What the parent asks the child process to reproduce (on its stdin, as JSON)."""

    log: str
    failure_seq: int
    allow_env: tuple[str, ...] = ()
    allow_network: bool = False
    allow_processes: bool = False
    sys_path: tuple[str, ...] = ()
    """The caller's import paths: the child imports the plugin from the same places."""
    absent: tuple[str, ...] = ()
    """Names (never values) of the caller's variables the child was not given, for the report."""


class ChildAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """The child's answer (on its original stdout): the report, or the error that stopped it."""

    report: Reproduction | None = None
    error_type: str = ""
    """The qualified name of the `ActorlogError` raised (``actorlog.replay.reproduce.NotAFailureError``)."""
    error: str = ""


class _RefusingRef:
    def __init__(self, name: str) -> None:
        self.name = name

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise ReproductionRefused(
            f"during reproduction, plugin {self.name!r} cannot be called: its answers were not recorded"
        )

    tell = ask = ask_async = _refuse


class _Metrics:
    def increment(self, *_: Any, **__: Any) -> None:
        """Measurements during reproduction are not recorded."""

    gauge = observe = increment


class _Monitor:
    """Timing during reproduction: the operation runs, nothing is recorded."""

    def time(self, name: str, **_: Any) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    def timed(self, name: Any = None, **_: Any) -> Any:
        return name if callable(name) else (lambda function: function)

    def start(self, name: str, **_: Any) -> None:
        return None

    def end(self, operation: Any, **_: Any) -> float:
        return 0.0


class _ReplayRetrying:
    """Retries during reproduction: the policy's own rule (``retry_on``, ``give_up_on``,
    ``max_retries``), without waiting and without logging; the error handler is not consulted."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            return self.call(function, *args, **kwargs)

        return run

    def call(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        attempt = 1
        while True:
            try:
                return function(*args, **kwargs)
            except Exception as exc:
                if attempt > self.policy.max_retries or not self.policy.retryable(exc):
                    raise
                attempt += 1


class ReplayContext(RecordedClock):
    """The context a reproduced plugin sees: the recorded clock and seeds (the same `RecordedClock`
    live plugins use), nothing written anywhere, other plugins unreachable."""

    def __init__(
        self, name: str, run: str, depends_on: tuple[str, ...], capabilities: Capabilities | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.run = run
        self.deps: Mapping[str, Any] = {dep: _RefusingRef(dep) for dep in depends_on}
        self.metrics = _Metrics()
        self.monitor = _Monitor()
        self.emitted: list[Any] = []
        self.capabilities = capabilities if capabilities is not None else Capabilities.withheld()
        self.refused: list[str] = []
        """What the plugin asked for through this context and was refused."""

    def getenv(self, name: str, default: str | None = None) -> str | None:
        """The environment variable, if allowed; otherwise read as unset (and noted)."""
        if self.capabilities.allows_variable(name):
            return os.environ.get(name, default)
        self._note(f"environment: {name} read as unset")
        return default

    def allows(self, capability: Capability) -> bool:
        """Whether the user allowed ``capability``; a refusal is noted in the report."""
        if self.capabilities.allows(capability):
            return True
        self._note(f"{capability}: asked for by the plugin")
        return False

    def _note(self, entry: str) -> None:
        if entry not in self.refused:
            self.refused.append(entry)

    def emit(self, event: object, *, correlation: str | None = None) -> None:
        self.emitted.append(event)

    def ref(self, name: str) -> Any:
        return _RefusingRef(name)

    def retry(self, task: str | None = None, *, policy: RetryPolicy | None = None, **options: Any) -> _ReplayRetrying:
        """Retries by the policy alone: no waits, nothing logged (the live error handler's say is not replayed)."""

        for injected in ("clock", "sleep", "async_sleep", "random", "correlation"):
            options.pop(injected, None)
        return _ReplayRetrying(policy or RetryPolicy(**options))

    def tell(self, name: str, *_: Any, **__: Any) -> None:
        _RefusingRef(name).tell()

    def ask(self, name: str, *_: Any, **__: Any) -> Any:
        return _RefusingRef(name).ask()


def reproduce(
    log: str | EventStore,
    failure_seq: int,
    *,
    allow_env: Iterable[str] = (),
    allow_network: bool = False,
    allow_processes: bool = False,
    trust: bool = False,
    trust_key: str | os.PathLike[str] | None = None,
    isolate: bool | None = None,
) -> Reproduction:
    """Replay the messages that led to the failure at ``failure_seq`` and compare outcomes.

    The plugin runs without environment variables, network or child processes, except the
    variables named in ``allow_env`` and what ``allow_network`` and ``allow_processes``
    allow; ``trust=True`` allows everything (only for a log whose origin you trust), and so
    does ``trust_key`` (a ``.pub`` file) for a log whose signed checkpoints verify with that
    key up to the failure (`UntrustedLogError` otherwise).

    While anything is withheld the reproduction runs, by default (``isolate=None`` or
    True), in a child process with the same import paths (``sys.path``), whose environment
    holds only the variables allowed and `BASE_ENVIRONMENT`, on Linux in a network namespace
    of its own when the network is withheld and the kernel allows one; the report says
    which (`Reproduction.isolation`). ``isolate=False`` runs it in this process instead,
    held by audit hooks only (`actorlog.actors.capabilities.confined`): the kernel's copy of
    the environment (``/proc/self/environ``) and variables not named like secrets stay
    readable there. A trusted log (``trust``, or a ``trust_key`` that vouches for it) is
    always reproduced in this process."""
    capabilities = (
        Capabilities.everything() if trust
        else Capabilities.withheld(allow_env=allow_env, allow_network=allow_network, allow_processes=allow_processes)
    )
    location = _location_of(log)
    if isolate is not False and trust_key is None and capabilities.withholds_anything() and location is not None:
        return _in_child(location, failure_seq, capabilities)
    if isolate is not False and trust_key is None and capabilities.withholds_anything():
        where = "in this process: the log was given as an open store that a child process cannot reopen; audit hooks only"
    elif capabilities.withholds_anything() and trust_key is None:
        where = ("in this process (isolate=False): audit hooks only; the kernel's copy of the environment and "
                 "variables not named like secrets stay readable")
    else:
        where = "in this process: trusted, nothing withheld"
    if isinstance(log, EventStore):
        return _reproduce(log, failure_seq, capabilities, trust_key, isolation=where)
    with EventStore.open_readonly(log) as store:
        return _reproduce(store, failure_seq, capabilities, trust_key, isolation=where)


def _location_of(log: str | EventStore) -> str | None:
    """What a child process opens the log by: the path or URL given, an open store's file; None
    for an open PostgreSQL store (its password is not kept where it could be handed over)."""
    if not isinstance(log, EventStore):
        return os.fspath(log)
    return str(log.path) if log.path is not None else None


def child_environment(capabilities: Capabilities) -> dict[str, str]:
    """The child process's environment: the variables allowed, `BASE_ENVIRONMENT`, ``LC_*``
    and ``PYTHONPATH`` (the caller's import paths)."""
    env = {
        name: value for name, value in os.environ.items()
        if name in BASE_ENVIRONMENT or name.startswith("LC_") or capabilities.allows_variable(name)
    }
    env["PYTHONPATH"] = os.pathsep.join(entry for entry in sys.path if entry)
    return env


def _in_child(location: str, failure_seq: int, capabilities: Capabilities) -> Reproduction:
    """`_reproduce` in a child process of its own (`CHILD_MODULE`), its report handed back."""
    env = child_environment(capabilities)
    request = ChildRequest(
        log=location, failure_seq=failure_seq, allow_env=tuple(sorted(capabilities.environment or ())),
        allow_network=capabilities.network, allow_processes=capabilities.processes, sys_path=tuple(sys.path),
        absent=tuple(sorted(name for name in os.environ if name not in env)),
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, a module of this package
        [sys.executable, "-P", "-m", CHILD_MODULE], input=msgspec.json.encode(request), capture_output=True,
        env=env, check=False,
    )
    try:
        answer = msgspec.json.decode(done.stdout, type=ChildAnswer)
    except msgspec.DecodeError:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ReproductionFailed(
            f"the reproduction's child process ended with status {done.returncode} without a report"
            + (f": {redact_text(said[-1])}" if said else "")
        ) from None
    if done.stderr:  # what the plugin printed, as it would have shown in this process
        sys.stderr.write(done.stderr.decode("utf-8", "replace"))
    if answer.report is None:
        raise _error(answer.error_type, answer.error)
    return answer.report


def _error(qualified: str, message: str) -> ActorlogError:
    """The child's error as this process raises it: the same `ActorlogError` class where it
    takes a message, else `ReproductionFailed`."""
    module, _, name = qualified.rpartition(".")
    if module == "actorlog" or module.startswith("actorlog."):
        try:
            cls = getattr(importlib.import_module(module), name)
            if isinstance(cls, type) and issubclass(cls, ActorlogError):
                error = cls(message)
                if str(error) == message:
                    return error
        except Exception:  # noqa: BLE001 - any class that cannot be rebuilt is reported generically
            pass
    return ReproductionFailed(message)


def reproduce_here(
    store: EventStore, failure_seq: int, capabilities: Capabilities, *, absent: Iterable[str] = (), isolation: str,
) -> Reproduction:
    """The reproduction itself, in this process, confined by ``capabilities`` (the child
    process's work; `reproduce` is the entry point). ``absent``: variables the process was
    not given, reported like those unset for it; ``isolation``: what the report says of it."""
    return _reproduce(store, failure_seq, capabilities, absent=absent, isolation=isolation)


def _vouched(store: EventStore, failure_seq: int, trust_key: str | os.PathLike[str]) -> str:
    """The note saying the log is signed by ``trust_key`` up to the failure; `UntrustedLogError` if not."""
    key = PublicKey(trust_key)
    report = store.verify(check_file=False, public_key=key)
    if not report.ok:
        problem = report.problems[0] if report.problems else "it does not verify"
        raise UntrustedLogError(
            f"the log is not vouched for by key {key.key_id} ({str(key.path)!r}): {problem}; reproduce it without "
            f"--trust-key to run its plugin without environment, network or child processes"
        )
    if not report.signed_up_to or report.signed_up_to < failure_seq:
        covered = (f"signed this log only up to seq {report.signed_up_to}, not up to the failure at seq {failure_seq}"
                   if report.signed_up_to else "signed no checkpoint of this log")
        raise UntrustedLogError(
            f"key {key.key_id} ({str(key.path)!r}) {covered}; reproduce it without --trust-key to run its plugin "
            f"without environment, network or child processes"
        )
    return f"the log is signed by the trusted key {key.key_id} up to seq {report.signed_up_to}: every capability allowed"


def _reproduce(
    store: EventStore, failure_seq: int, capabilities: Capabilities, trust_key: str | os.PathLike[str] | None = None,
    *, absent: Iterable[str] = (), isolation: str = "",
) -> Reproduction:
    found = list(store.events(from_seq=failure_seq, to_seq=failure_seq, lenient=True))
    if not found:
        last = store.last_seq()
        where = f"the log's last seq is {last}" if last else "the log holds no events"
        raise NotAFailureError(f"seq {failure_seq} is past the end of the log ({where}), not a failure.raised "
                               f"event; list failures with `actorlog query LOG --kind failure.raised`")
    if not isinstance(found[0].event, FailureRaised):
        raise NotAFailureError(f"seq {failure_seq} is {found[0].kind!r}, not a failure.raised event; list failures "
                               f"with `actorlog query LOG --kind failure.raised`")
    failure_record = found[0]
    vouched = _vouched(store, failure_seq, trust_key) if trust_key is not None else None
    if vouched is not None:
        capabilities = Capabilities.everything()
    failure: FailureRaised = failure_record.event
    run, name = failure_record.run, failure.plugin
    registered = _registration(store, run, name, failure_seq)
    notes: list[str] = []
    if registered is None:
        raise NotAFailureError(
            f"failure {failure_seq} is of {name!r}, which was never registered as a plugin in run {run} "
            f"(a task's failure cannot be reproduced this way)"
        )
    at_start, changes, active = _lineage(store, run, name, failure_seq, registered)
    base: dict[str, Any] = dict(
        plugin=name, class_path=active.class_path, recorded_version=active.version,
        failure_seq=failure_seq, trigger_seq=failure.trigger_seq, recorded_exc_type=failure.exc_type,
        recorded_message=failure.message, recorded_traceback=failure.traceback,
        upgrades=tuple(change.seq for change in changes if change.upgraded), isolation=isolation,
    )
    if not registered.log_messages:
        return Reproduction(
            reproduced=False, current_version=None, messages_replayed=0,
            notes=(f"cannot reproduce: plugin {name!r} was registered with log_messages=False, so the messages "
                   f"it received are not in the log",), **base,
        )
    context = ReplayContext(name, run, registered.depends_on, capabilities)
    named = set().union(*(names_in_config(spec.config) for spec in [at_start, *(c.spec for c in changes)]))
    outcome: dict[str, Any] = {}
    replayed, current = 0, None
    stages: list[_Stage] | None = None
    # the log names the modules to import: even importing them happens under the capabilities
    with confined(capabilities, named) as confinement:
        stages = _load_stages(at_start, changes, notes)
        if stages is not None:
            current = str(stages[-1].cls.version)
            notes += _upgrade_notes(changes)
            messages = _messages_since_start(store, run, name, failure_seq)
            first = messages[0].seq if messages else failure_seq
            recorded_failures = _earlier_failures(store, run, name, first, failure_seq)
            if failure.trigger_seq is None:
                notes.append("the failure was not caused by a logged message (start, stop, health check or upgrade)")
            outcome, replayed = _replay(stages, context, messages, recorded_failures, failure, notes)
    withheld = capabilities.denied()
    refused = tuple(context.refused) + tuple(confinement.refused)
    unset = sorted({*confinement.unset, *absent})
    notes += _capability_notes(withheld, refused, vouched, [v for v in unset if v in named])
    if isolation:
        notes.append(f"isolation: {isolation}")
    if stages is None:
        return Reproduction(
            reproduced=False, current_version=None, messages_replayed=0, notes=tuple(notes), withheld=withheld,
            refused=refused, **base,
        )
    same = (
        bool(outcome)
        and outcome["exc_type"] == failure.exc_type
        and is_cut_of(failure.message, outcome["message"])  # the log may hold a long message cut in the middle
        and outcome["failed_at_seq"] == failure.trigger_seq
    )
    if outcome and not same:
        notes.append("a different outcome: " + _difference(outcome, failure))
    if not outcome:
        notes.append(f"no exception was raised by the {replayed} replayed message(s)")
    return Reproduction(
        reproduced=same, current_version=current, messages_replayed=replayed, notes=tuple(notes),
        exc_type=outcome.get("exc_type"), message=outcome.get("message"), traceback=outcome.get("traceback"),
        failed_at_seq=outcome.get("failed_at_seq"), withheld=withheld, refused=refused, **base,
    )


def _capability_notes(
    withheld: tuple[str, ...], refused: tuple[str, ...], vouched: str | None, named_unset: list[str],
) -> list[str]:
    """What the report says of the capabilities: the key that vouched, what was withheld and refused."""
    notes = [vouched] if vouched is not None else []
    if withheld:
        notes.append(
            "capabilities withheld from the plugin, as for any log of unknown origin: " + ", ".join(withheld)
            + " (allow them with --allow-env NAME, --allow-network, --allow-processes, or --trust)"
        )
    if named_unset:
        notes.append(
            "environment variables the recorded config names were unset while the plugin ran: "
            + ", ".join(named_unset) + " (allow one with --allow-env NAME)"
        )
    if refused:
        notes.append(
            "the outcome depended on withheld capabilities: the plugin tried " + "; ".join(refused)
            + "; it may differ from the recording for that reason"
        )
    return notes


class _Spec(msgspec.Struct, frozen=True):
    """A version of the plugin as the log records it."""

    class_path: str
    version: str
    config: dict[str, Any]
    migrate: bool = True


class _Change(msgspec.Struct, frozen=True):
    """At ``seq``, the running instance handed over to a new instance of ``spec`` (an upgrade,
    or a rollback to the same version, or the upgrade that was under way when the failure happened)."""

    seq: int
    spec: _Spec
    from_version: str
    what: str
    """``upgraded``, ``rolled_back`` or ``under_way`` (the upgrade the failure happened in)."""

    @property
    def upgraded(self) -> bool:
        return self.what == "upgraded"


class _Stage(msgspec.Struct, frozen=True):
    """A loaded version to run from ``seq`` on (None: from the start)."""

    seq: int | None
    spec: _Spec
    cls: type[Plugin]
    handlers: dict[type[Any], Callable[..., Any]]
    registry: TypeRegistry
    from_version: str = ""


def _lineage(
    store: EventStore, run: str, name: str, failure_seq: int, registered: PluginRegistered
) -> tuple[_Spec, list[_Change], _Spec]:
    """The version the plugin last started as before the failure, the hand-overs since, and the
    version active when the failure happened (the log's supervisor events, in order)."""
    current = _Spec(registered.class_path, registered.plugin_version, registered.config)
    at_start, pending = current, None
    changes: list[_Change] = []
    kinds = ("plugin.registered", "plugin.started", "plugin.upgrading", "plugin.upgraded", "plugin.upgrade_failed")
    for record in store.events(run=run, kinds=kinds, to_seq=failure_seq, lenient=True):
        event = record.event
        if record.actor != "supervisor" or getattr(event, "plugin", None) != name:
            continue
        if isinstance(event, PluginRegistered):
            current = _Spec(event.class_path, event.plugin_version, event.config)
            at_start, changes, pending = current, [], None
        elif record.kind == "plugin.started":  # a start or restart builds a fresh instance of what is current
            at_start, changes, pending = current, [], None
        elif isinstance(event, PluginUpgrading):
            pending = _Change(record.seq, _Spec(event.class_path, event.plugin_version, event.config, event.migrate),
                              current.version, "under_way")
        elif isinstance(event, PluginUpgraded):
            new = _Spec(event.class_path, event.plugin_version, event.config, event.migrate)
            changes.append(_Change(record.seq, new, current.version, "upgraded"))
            current, pending = new, None
        elif isinstance(event, PluginUpgradeFailed):
            if event.handed_over and event.rolled_back and pending is not None:  # the old version, with its state
                rolled_back = msgspec.structs.replace(current, migrate=pending.spec.migrate)
                changes.append(_Change(record.seq, rolled_back, current.version, "rolled_back"))
            pending = None
    if pending is not None:  # the failure happened during this upgrade (on_upgrade, on_start or migrate)
        changes.append(pending)
        return at_start, changes, pending.spec
    return at_start, changes, current


def _load_stages(at_start: _Spec, changes: list[_Change], notes: list[str]) -> list[_Stage] | None:
    """Each version's class, loaded; None (with a note) if one cannot be."""
    stages: list[_Stage] = []
    for seq, spec, from_version in [(None, at_start, ""), *((c.seq, c.spec, c.from_version) for c in changes)]:
        try:
            cls = load_plugin_class(spec.class_path)
        except ActorlogError as exc:
            if not changes:
                notes.append(_unloadable(spec.class_path, exc))
            else:
                when = "when it started" if seq is None else f"from the upgrade at seq {seq}"
                notes.append(f"cannot reproduce: the class {spec.class_path} (version {spec.version}), active {when}, "
                             f"can no longer be loaded: {exc}")
            return None
        installed = str(cls.version)
        if installed != spec.version and all(stage.cls is not cls for stage in stages):
            what = "the plugin's code has changed" if not changes else f"the code of {spec.class_path} has changed"
            notes.append(
                f"{what}: the log recorded version {spec.version}, this installation has {installed}; the outcome "
                f"may differ for that reason"
            )
        handlers = handlers_of(cls)
        registry = TypeRegistry()
        for message_type in handlers:
            registry.register(message_type)
        stages.append(_Stage(seq, spec, cls, handlers, registry, from_version))
    return stages


def _upgrade_notes(changes: list[_Change]) -> list[str]:
    notes = []
    for change in changes:
        spec = change.spec
        if change.upgraded:
            notes.append(f"upgraded at seq {change.seq} from version {change.from_version} to {spec.class_path} "
                         f"{spec.version}: replayed there, the state handed over as it was live")
        elif change.what == "under_way":
            notes.append(f"the failure happened during the upgrade at seq {change.seq} to {spec.class_path} "
                         f"{spec.version}: replayed with it")
        else:
            notes.append(f"an upgrade was rolled back at seq {change.seq}: the old version started again there")
    return notes


def _hand_over(instance: Plugin, stage: _Stage, context: ReplayContext) -> Plugin:
    """What an upgrade did live: ``on_upgrade`` and ``on_stop`` of ``instance``, then a new
    instance of ``stage`` started and given the state."""
    state = instance.on_upgrade() if stage.spec.migrate else None
    try:
        instance.on_stop()
    except Exception:  # noqa: BLE001 - live, a raising on_stop is recorded and the upgrade goes on
        pass
    new: Plugin = stage.cls(context, stage.spec.config)  # type: ignore[arg-type]
    new.on_start()
    if stage.spec.migrate:
        new.migrate(state, stage.from_version)
    return new


def _replay(
    stages: list[_Stage], context: ReplayContext, messages: list[EventRecord], recorded_failures: set[int],
    failure: FailureRaised, notes: list[str],
) -> tuple[dict[str, Any], int]:
    """Start a fresh instance and feed it the messages, handing over to each later stage where the
    log says it took over; the outcome (empty when nothing was raised) and how many messages were replayed."""
    outcome: dict[str, Any] = {}
    replayed = 0
    stage, waiting = stages[0], list(stages[1:])
    # Whatever a plugin raises is an outcome to report, BaseExceptions (SystemExit,
    # KeyboardInterrupt, GeneratorExit) included: the live system recorded them all.
    try:
        instance: Plugin = stage.cls(context, stage.spec.config)  # type: ignore[arg-type]
        instance.on_start()
    except BaseException as exc:  # noqa: BLE001 - the outcome is what we report
        return _outcome(exc, None), 0
    decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}
    for record in [*messages, None]:  # None: after the last message, the hand-overs left before the failure
        while waiting and (record is None or (waiting[0].seq or 0) < record.seq):
            stage = waiting.pop(0)
            try:
                instance = _hand_over(instance, stage, context)
            except BaseException as exc:  # noqa: BLE001 - the outcome is what we report
                return _outcome(exc, None), replayed
        if record is None:
            break
        received: MessageReceived = record.event
        message_kind = received.message.get("kind")
        handled = stage.registry.type_for(message_kind) if isinstance(message_kind, str) else None
        if handled is None:
            notes.append(f"message at seq {record.seq} ({message_kind!r}) has no handler in the current code; skipped")
            continue
        try:
            message = _logged_message(received, handled, decoders)
        except msgspec.ValidationError as exc:
            notes.append(f"message at seq {record.seq} ({message_kind!r}) does not decode as the current code's "
                         f"{handled.__qualname__} ({exc}); skipped")
            continue
        context.begin(record.ts, received.seed, record.correlation)
        replayed += 1
        try:
            stage.handlers[handled](instance, message)
        except BaseException as exc:  # noqa: BLE001 - the outcome is what we report
            if record.seq in recorded_failures and record.seq != failure.trigger_seq:
                continue  # it failed here in the recording too, and the plugin went on
            outcome = _outcome(exc, record.seq)
            break
    return outcome, replayed


def _logged_message(
    received: MessageReceived, handled: type[Any], decoders: dict[type[Any], msgspec.json.Decoder[Any]]
) -> Any:
    """The message as its handler got it live: the logged JSON decoded to the handler's type.

    The live plugin actor decodes the JSON it logs with the same kind of decoder; the log's
    JSON, read as a dict and encoded again, is that same JSON (any file, old or new).
    """
    decoder = decoders.get(handled)
    if decoder is None:
        decoder = decoders[handled] = msgspec.json.Decoder(handled)
    return decoder.decode(msgspec.json.encode(received.message))


def _unloadable(class_path: str, exc: BaseException) -> str:
    """Why the recorded class cannot be loaded, and for a class of a script's ``__main__`` what to do."""
    module = class_path.partition(":")[0] if ":" in class_path else class_path.rpartition(".")[0]
    if module == "__main__":
        attr = class_path.rpartition(":")[2] if ":" in class_path else class_path.rpartition(".")[2]
        return (
            f"cannot reproduce: the plugin class {class_path!r} was defined in the script that ran the system "
            f"(its __main__ module), which no other process can import. Make it importable: move {attr} into a "
            f"module of its own (say {attr.lower()}.py beside the script, imported there with `from {attr.lower()} "
            f"import {attr}`), or run the script as a module of a package (`python -m yourpackage.app`, the class "
            f"imported from another module of it), so the log records an importable path; then run reproduce "
            f"with --import-path pointing at the folder that holds it"
        )
    return (f"cannot reproduce: the plugin class cannot be loaded: {exc}; if its module is not an installed "
            f"package, pass --import-path DIR with the folder that holds it (the current folder is searched only "
            f"for a log you trust: --trust or --trust-key)")


def _outcome(exc: BaseException, seq: int | None) -> dict[str, Any]:
    """The replayed outcome, its texts redacted as the live system's were before they were logged
    (so the two compare equal, and a secret the reproduction was allowed to read is not shown)."""
    return {
        "exc_type": qualified_name(exc), "message": redact_text(str(exc)),
        "traceback": redact_text(format_traceback(exc)), "failed_at_seq": seq,
    }


def _difference(outcome: dict[str, Any], failure: FailureRaised) -> str:
    parts = []
    if outcome["exc_type"] != failure.exc_type:
        parts.append(f"raised {outcome['exc_type']} instead of {failure.exc_type}")
    if not is_cut_of(failure.message, outcome["message"]):
        parts.append(f"message {outcome['message']!r} instead of {failure.message!r}")
    if outcome["failed_at_seq"] != failure.trigger_seq:
        parts.append(f"at message seq {outcome['failed_at_seq']} instead of {failure.trigger_seq}")
    return "; ".join(parts)


def _registration(store: EventStore, run: str, name: str, before: int) -> PluginRegistered | None:
    found = None
    for record in store.events(run=run, kinds="plugin.registered", to_seq=before, lenient=True):
        if isinstance(record.event, PluginRegistered) and record.event.plugin == name:
            found = record.event
    return found


def _earlier_failures(store: EventStore, run: str, name: str, first: int, failure_seq: int) -> set[int]:
    """Trigger seqs of the plugin's recorded failures between ``first`` and the failure."""
    return {
        record.event.trigger_seq
        for record in store.events(run=run, kinds="failure.raised", from_seq=first, to_seq=failure_seq - 1, lenient=True)
        if isinstance(record.event, FailureRaised) and record.event.plugin == name and record.event.trigger_seq
    }


def _messages_since_start(store: EventStore, run: str, name: str, failure_seq: int) -> list[EventRecord]:
    """The plugin's received messages in ``run`` after its last start before the failure."""
    last_start = 0
    for record in store.events(run=run, kinds="plugin.started", to_seq=failure_seq, lenient=True):
        if getattr(record.event, "plugin", None) == name:
            last_start = record.seq
    return [
        record
        for record in store.events(run=run, actor=name, kinds="message.received", from_seq=last_start + 1,
                                   to_seq=failure_seq, lenient=True)
        if isinstance(record.event, MessageReceived) and record.event.recipient == name
    ]
