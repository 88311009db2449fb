"""The supervisor: starts and stops plugins in dependency order and carries out recovery decisions.

It is a pykka actor, so lifecycle operations and decisions are applied one at a time,
in the order they arrive. Every transition it causes is an event (actor ``supervisor``).
It never sleeps: a retry's delay runs on the plugin's own timer. Each lifecycle step it
asks of a plugin (halt, stop) waits at most ``control_timeout`` seconds, so a plugin
stuck in a handler cannot hold up supervision for ever: a halt that times out
escalates, a stop that times out abandons the plugin's thread (``plugin.stop_timed_out``).
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, NoReturn

import msgspec
import pykka

from actorlog.actors.errors import DependencyError, EscalationError, StartError, UpgradeError, UpgradeRefusedError
from actorlog.actors.graph import dependents_of, start_order
from actorlog.actors.error_policy import qualified_name
from actorlog.actors.protocol import CarryOut, Control, ReportFailure, StartFailed
from actorlog.actors.router import PluginEntry, Router
from actorlog.actors.tracebacks import fit_texts, format_traceback, safe_str
from actorlog.actors.upgrade import NotUpgradable, UpgradePlugin, Version, upgrade_events
from actorlog.store import StoreError
from actorlog.events import (
    Escalated,
    PluginFailed,
    PluginRestarted,
    PluginStarted,
    PluginStarting,
    PluginStopped,
    PluginStopping,
    PluginStopTimedOut,
    PluginUpgradeFailed,
    PluginUpgradeRefused,
)

logger = logging.getLogger(__name__)

ACTOR = "supervisor"


class ControlTimeout(TimeoutError):
    """A plugin's actor did not carry out a lifecycle step in time (its handler is busy)."""

    def __init__(self, plugin: str, op: str, timeout: float | None, handling: str | None) -> None:
        busy = f"busy handling {handling}" if handling else "busy"
        super().__init__(f"plugin {plugin!r} did not {op} within {timeout:g} s ({busy})")


class StartAbandoned(RuntimeError):
    """The system began to stop while a plugin's ``on_start`` was still running."""

    def __init__(self, plugin: str) -> None:
        super().__init__(f"on_start of plugin {plugin!r} had not returned when the system began to stop")


START_POLL = 0.1
"""Seconds between looks, while a plugin starts, at whether the system began to stop."""


class StartPlugins(msgspec.Struct):
    """Start every registered plugin not yet started in dependency order (asked by the system).
    With ``keep_running``, a failure stops only the plugins this start started."""

    keep_running: bool = False


class StopPlugins(msgspec.Struct):
    """Stop every running plugin in reverse dependency order (asked by the system); each
    may take ``timeout`` seconds (default: the policy's ``control_timeout``)."""

    timeout: float | None = None


class StopPlugin(msgspec.Struct):
    """Stop one plugin for good, once no started plugin depends on it (asked by the system,
    to remove a plugin from a reloaded config file)."""

    name: str


class RestartPolicy(msgspec.Struct, frozen=True):
    """Restart intensity: more than ``max_restarts`` restarts of one plugin within
    ``within_seconds`` escalates instead of restarting again. ``control_timeout`` bounds
    how long the supervisor waits for a plugin to halt (for a restart) or stop."""

    max_restarts: int = 3
    within_seconds: float = 60.0
    control_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0 or not 0 < self.within_seconds < math.inf or not 0 < self.control_timeout < math.inf:
            raise ValueError(
                f"invalid restart policy {self!r}: max_restarts must be >= 0, within_seconds and control_timeout "
                f"finite and > 0"
            )


class Supervisor(pykka.ThreadingActor):
    """Carries out lifecycle operations and the error handler's decisions."""

    use_daemon_thread = True

    def __init__(self, router: Router, policy: RestartPolicy) -> None:
        super().__init__()
        self.router = router
        self.store = router.store
        self.policy = policy
        self.started: list[str] = []
        self.escalation: EscalationError | None = None
        self.abandoned: list[str] = []
        """Plugins whose stop timed out: their threads were left behind."""

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, CarryOut):
            try:
                self._carry_out(message)
            except Exception:  # noqa: BLE001 - a decision that cannot be carried out must not kill supervision
                logger.exception("supervisor could not carry out %r", message)
            return None
        if isinstance(message, StartPlugins):
            return self._start_all(message.keep_running)
        if isinstance(message, StopPlugins):
            self._stop_all(message.timeout)
            return list(self.abandoned)
        if isinstance(message, UpgradePlugin):
            self._upgrade(message)
            return None
        if isinstance(message, StopPlugin):
            self._stop_removed(message.name)
            return None
        raise TypeError(f"the supervisor does not handle {type(message).__qualname__}")

    # -- lifecycle -----------------------------------------------------------------------

    def _order(self) -> list[str]:
        return start_order({name: entry.depends_on for name, entry in self.router.plugins.items()})

    def _start_all(self, keep_running: bool = False) -> list[str]:
        order = [name for name in self._order() if name not in self.started]
        for index, name in enumerate(order):
            try:
                self._start_one(name)
            except BaseException as failure:  # noqa: BLE001 - becomes a StartError after cleanup
                exc = failure.original if isinstance(failure, StartFailed) else failure
                reason = str(exc) if isinstance(exc, StartAbandoned) else f"on_start raised: {safe_str(exc)}"
                self.store.append(
                    fit_texts(
                        PluginFailed(plugin=name, reason=reason, exc_type=qualified_name(exc)),
                        ("reason",), self.store.max_payload_bytes,
                    )[0],
                    actor=ACTOR,
                )
                unstarted = order[index + 1 :]
                if keep_running:
                    for started in reversed(order[:index]):
                        self._stop_one(started)
                else:
                    self._stop_all()
                raise StartError(name, exc, unstarted) from exc
        return order

    def _start_one(self, name: str) -> None:
        entry = self.router.plugins[name]
        self.store.append(PluginStarting(plugin=name), actor=ACTOR)
        self._await_start(entry)
        self.store.append(PluginStarted(plugin=name), actor=ACTOR)
        self._control(entry, "resume")
        if name not in self.started:
            self.started.append(name)

    def _stop_all(self, timeout: float | None = None) -> list[str]:
        """Stop every started plugin: suspended ones first, then the rest in reverse dependency order.

        A suspended plugin may hold asks from plugins that would otherwise wait for it
        forever inside a handler; stopping it first refuses those asks, so every halt
        after it can be taken.
        """
        stopped = []
        suspended = [n for n in self.started
                     if self.router.plugins[n].state in ("suspended", "restarting", "upgrading")]
        for name in suspended + [n for n in reversed(self.started) if n not in suspended]:
            self._stop_one(name, timeout)
            stopped.append(name)
        return stopped

    def _log(self, event: Any, **options: Any) -> None:
        """Append a lifecycle event; once the log has failed, stopping goes on without it."""
        try:
            self.store.append(event, actor=ACTOR, **options)
        except StoreError:
            logger.warning("could not log %s: the event log has failed", type(event).__qualname__)

    def _stop_one(self, name: str, timeout: float | None = None) -> None:
        entry = self.router.plugins[name]
        self._log(PluginStopping(plugin=name))
        if name in self.started:
            self.started.remove(name)
        timeout = self.policy.control_timeout if timeout is None else timeout
        try:
            self._control(entry, "stop", timeout=timeout)
        except ControlTimeout:
            self.abandoned.append(name)
            self._log(PluginStopTimedOut(plugin=name, timeout=timeout, handling=entry.handling))
            logger.warning("plugin %r did not stop within %g s (handling %s); its thread is abandoned",
                           name, timeout, entry.handling or "nothing")
            return
        except BaseException:  # noqa: BLE001 - on_stop failures are recorded by the plugin's actor
            logger.debug("on_stop of %r raised", name, exc_info=True)
        self._log(PluginStopped(plugin=name))

    def _control(
        self, entry: PluginEntry, op: str, reason: str = "", correlation: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Ask the plugin's actor for one lifecycle step and wait for it (`ControlTimeout` after ``timeout`` s)."""
        assert entry.ref is not None
        future: Future[Any] = Future()
        entry.ref.tell(Control(op=op, reply=future, reason=reason, correlation=correlation))  # type: ignore[arg-type]
        try:
            return future.result(timeout)
        except FutureTimeout:
            if future.done():
                raise
            raise ControlTimeout(entry.name, op, timeout, entry.handling) from None

    def _await_start(self, entry: PluginEntry) -> None:
        """Start the plugin; an ``on_start`` may take as long as it needs, unless the system
        begins to stop meanwhile: then the start is given up (`StartAbandoned`)."""
        assert entry.ref is not None
        future: Future[Any] = Future()
        entry.ref.tell(Control(op="start", reply=future))
        while True:
            try:
                future.result(START_POLL)
                return
            except FutureTimeout:
                if future.done():
                    raise
                if self.router.stopping:
                    raise StartAbandoned(entry.name) from None

    # -- decisions -----------------------------------------------------------------------

    def _carry_out(self, decision: CarryOut) -> None:
        if self.escalation is not None:
            return
        if decision.action == "escalate":  # a task's failure may escalate too: it names no plugin
            self._escalate(
                decision.plugin, decision.reason or "the error handler escalated",
                correlation=decision.correlation, exc_type=decision.exc_type,
            )
            return
        entry = self.router.plugins.get(decision.plugin)
        if entry is None or decision.plugin not in self.started:
            return
        action = decision.action
        if action in ("continue", "retry"):
            assert entry.ref is not None
            # told, not waited for: the plugin redelivers after the delay on a timer of its own
            entry.ref.tell(Control(op="retry", delay=min(decision.delay, 60.0)) if action == "retry"
                           else Control(op="resume"))
        elif action in ("restart", "restart_with_dependents"):
            if self._too_many_restarts(entry):
                self._escalate(
                    decision.plugin,
                    f"restarted {self.policy.max_restarts} times within {self.policy.within_seconds:g} s; "
                    f"restarting it again would loop",
                )
                return
            self._restart(entry, decision, with_dependents=action == "restart_with_dependents")
        elif action == "stop":
            # the failed plugin first: refusing what it holds frees dependents waiting on it
            self._stop_one(decision.plugin)
            for name in self._with_dependents(decision.plugin, reverse=True):
                if name in self.started:
                    self._stop_one(name)

    def _too_many_restarts(self, entry: PluginEntry) -> bool:
        now = time.time()
        window = self.policy.within_seconds
        entry.restart_times[:] = [t for t in entry.restart_times if now - t < window]
        if len(entry.restart_times) >= self.policy.max_restarts:
            return True
        entry.restart_times.append(now)
        return False

    def _with_dependents(self, name: str, *, reverse: bool) -> list[str]:
        graph = {n: e.depends_on for n, e in self.router.plugins.items()}
        affected = dependents_of(name, graph) | {name}
        order = [n for n in start_order(graph) if n in affected]
        return list(reversed(order)) if reverse else order

    def _restart(self, entry: PluginEntry, decision: CarryOut, *, with_dependents: bool) -> None:
        """Restart the failed plugin, then (rest-for-one) the plugins that depend on it.

        The failed plugin goes first: a dependent may be inside a handler waiting for an
        answer that sits in the failed plugin's stash, and would never take its own halt
        before that answer. Dependents are then halted in reverse dependency order and
        started in dependency order; they reach the new instance by name.
        """
        if not self._restart_group([entry.name], decision):
            return
        if with_dependents:
            dependents = [n for n in self._with_dependents(entry.name, reverse=False) if n != entry.name]
            self._restart_group([n for n in dependents if n in self.started], decision)

    def _restart_group(self, names: list[str], decision: CarryOut) -> bool:
        """Halt ``names`` in reverse order, then start each in order; False if a start failed."""
        reason = decision.reason or "restarted after a failure"
        correlation = decision.correlation
        for name in reversed(names):
            self.store.append(PluginStopping(plugin=name), actor=ACTOR, correlation=correlation)
            try:
                self._control(self.router.plugins[name], "halt", timeout=self.policy.control_timeout)
            except ControlTimeout as timed_out:
                self._escalate(name, f"{timed_out}; restarting it would wait for ever", correlation=correlation)
                return False
            self.store.append(PluginStopped(plugin=name), actor=ACTOR, correlation=correlation)
        for name in names:
            target = self.router.plugins[name]
            self.store.append(PluginStarting(plugin=name), actor=ACTOR, correlation=correlation)
            try:
                self._control(target, "start", correlation=correlation)
            except BaseException as failure:  # noqa: BLE001 - a failed restart is a new failure to decide on
                exc = failure.original if isinstance(failure, StartFailed) else failure
                self.store.append(
                    fit_texts(
                        PluginFailed(
                            plugin=name, reason=f"on_start raised during restart: {safe_str(exc)}",
                            exc_type=qualified_name(exc),
                        ),
                        ("reason",), self.store.max_payload_bytes,
                    )[0],
                    actor=ACTOR, correlation=correlation,
                )
                self.router.report(
                    ReportFailure(
                        plugin=name, exception=exc, where="restart", correlation=correlation,
                        failure=failure.failure if isinstance(failure, StartFailed) else None,
                        failed_at=failure.failed_at if isinstance(failure, StartFailed) else None,
                    )
                )
                return False
            target.restarts += 1
            self.store.append(PluginStarted(plugin=name), actor=ACTOR, correlation=correlation)
            self.store.append(
                PluginRestarted(plugin=name, restart_count=target.restarts, reason=reason),
                actor=ACTOR, correlation=correlation,
            )
            self._control(target, "resume")
        return True

    def _escalate(self, plugin: str, reason: str, *, correlation: str | None = None, exc_type: str | None = None) -> None:
        self.escalation = EscalationError(plugin, reason)
        self.router.stopped = self.escalation  # first: logging fails when the log itself is what failed
        self._log(Escalated(plugin=plugin, reason=reason, exc_type=exc_type), correlation=correlation)
        self._stop_all()

    # -- upgrades ------------------------------------------------------------------------

    def _stop_removed(self, name: str) -> None:
        users = [n for n, e in self.router.plugins.items() if name in e.depends_on and n in self.started]
        if users:
            raise DependencyError(
                f"plugin {name!r} cannot be stopped while {', '.join(map(repr, users))} depend on it; stop them first"
            )
        if name in self.started:
            self._stop_one(name)

    def _upgrade(self, request: UpgradePlugin) -> None:
        """Replace a running plugin's version (see `actorlog.actors.upgrade`); raises
        `UpgradeError` if it failed (rolled back), `UpgradeRefusedError` if it could not begin."""
        name, new, correlation = request.plugin, request.new, request.correlation
        entry = self.router.plugins.get(name)
        if entry is None or self.escalation is not None or name not in self.started:
            state = "not registered" if entry is None else entry.state
            why = "the system escalated" if self.escalation is not None else f"it is {state}"
            self._refuse_upgrade(name, new, f"{why}; only a running plugin can be upgraded", correlation)
        assert entry is not None
        old = Version.running(entry, migrate=new.migrate)
        upgrading, upgraded = upgrade_events(old, new, name)
        try:
            # behind the messages queued before it: those go to the old instance
            handed = self._upgrade_step(entry, "upgrade_halt", old, None, correlation, request.timeout)
        except NotUpgradable as refused:
            self._refuse_upgrade(name, new, str(refused), correlation)
        except BaseException as failure:  # noqa: BLE001 - the old instance runs on: logged and raised
            reason = f"the old instance did not hand over: {_cause(failure)}"
            self._upgrade_failed(name, new, reason, failure, correlation, handed_over=False)
            raise UpgradeError(name, reason) from None
        self.store.append(upgrading, actor=ACTOR, correlation=correlation)  # from here, messages wait for the new one
        try:
            self._upgrade_step(entry, "upgrade_start", new, handed, correlation, None)
        except BaseException as failure:  # noqa: BLE001 - rolled back below
            reason = f"{_where(new)} raised: {_cause(failure)}"
            self._roll_back(entry, old, new, handed, reason, failure, correlation)
            raise UpgradeError(name, reason) from None
        self.store.append(upgraded, actor=ACTOR, correlation=correlation)
        self._control(entry, "resume")

    def _refuse_upgrade(self, name: str, new: Version, reason: str, correlation: str) -> NoReturn:
        self._log(PluginUpgradeRefused(plugin=name, class_path=new.class_path, plugin_version=new.version,
                                       reason=reason), correlation=correlation)
        raise UpgradeRefusedError(name, reason)

    def _roll_back(
        self, entry: PluginEntry, old: Version, new: Version, handed: Any, reason: str, failure: BaseException,
        correlation: str,
    ) -> None:
        """Start the old version again after a failed upgrade; if that fails too, it is a failed
        restart for the error handler to decide on (restart intensity, then escalation), and
        `UpgradeError` says the rollback failed."""
        try:
            self._upgrade_step(entry, "upgrade_start", old, handed, correlation, None)
        except BaseException as second:  # noqa: BLE001 - a failed restart, decided on like one
            exc = second.original if isinstance(second, StartFailed) else second
            self._upgrade_failed(entry.name, new, reason, failure, correlation, rolled_back=False)
            self.store.append(
                fit_texts(
                    PluginFailed(plugin=entry.name, reason=f"on_start raised during the rollback of an upgrade: "
                                                           f"{safe_str(exc)}", exc_type=qualified_name(exc)),
                    ("reason",), self.store.max_payload_bytes,
                )[0],
                actor=ACTOR, correlation=correlation,
            )
            self.router.report(
                ReportFailure(
                    plugin=entry.name, exception=exc, where="restart", correlation=correlation,
                    failure=second.failure if isinstance(second, StartFailed) else None,
                    failed_at=second.failed_at if isinstance(second, StartFailed) else None,
                )
            )
            rollback = f"{_where(old)} of the old version raised too: {_cause(second)}"
            raise UpgradeError(entry.name, f"{reason}; {rollback}", rolled_back=False) from None
        self._upgrade_failed(entry.name, new, reason, failure, correlation)
        self._control(entry, "resume")

    def _upgrade_failed(
        self, name: str, new: Version, reason: str, failure: BaseException, correlation: str, *,
        rolled_back: bool = True, handed_over: bool = True,
    ) -> None:
        exc = failure.original if isinstance(failure, StartFailed) else failure
        event = PluginUpgradeFailed(
            plugin=name, class_path=new.class_path, plugin_version=new.version, reason=reason,
            exc_type=qualified_name(exc), traceback=format_traceback(exc), rolled_back=rolled_back,
            handed_over=handed_over,
        )
        self._log(fit_texts(event, ("reason", "traceback"), self.store.max_payload_bytes)[0], correlation=correlation)

    def _upgrade_step(
        self, entry: PluginEntry, op: str, version: Version, state: Any, correlation: str, timeout: float | None,
    ) -> Any:
        """One step of an upgrade on the plugin's actor. With a ``timeout`` (the halt, which waits
        behind the messages queued before it) the step is called off if it has not begun by then."""
        assert entry.ref is not None
        future: Future[Any] = Future()
        entry.ref.tell(Control(op=op, reply=future, correlation=correlation, upgrade=version,  # type: ignore[arg-type]
                               state=state))
        try:
            return future.result(timeout)
        except FutureTimeout:
            if future.done():
                raise
            if future.cancel():  # not begun: the actor will skip it, nothing changed
                raise ControlTimeout(entry.name, "reach the upgrade", timeout, entry.handling) from None
        try:  # begun meanwhile: on_upgrade and on_stop get the control timeout
            return future.result(self.policy.control_timeout)
        except FutureTimeout:
            if future.done():
                raise
            timed_out = ControlTimeout(entry.name, "hand over for the upgrade", self.policy.control_timeout,
                                       entry.handling)
            self._escalate(entry.name, f"{timed_out}; upgrading it would wait for ever", correlation=correlation)
            raise timed_out from None


def _cause(failure: BaseException) -> str:
    exc = failure.original if isinstance(failure, StartFailed) else failure
    return f"{qualified_name(exc)}: {safe_str(exc)}"


def _where(version: Version) -> str:
    return f"on_start or migrate of {version.class_path} (version {version.version})"
