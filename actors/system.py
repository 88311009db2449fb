"""`ActorSystem`: the actor system an application embeds.

::

    with ActorSystem("app.db") as system:
        system.register("llm", LLMPlugin, config={"model": "offline"})
        system.register("agent", AgentPlugin, depends_on=["llm"])
        system.start()
        reply = system.ask("agent", Solve(task="..."), timeout=5)
    # leaving the block stops every plugin in reverse dependency order and flushes the log
"""

from __future__ import annotations

import logging
import math
import os
import platform
import socket
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from concurrent.futures import Future
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Any, TypeVar

import msgspec
import pykka

from actorlog.actors.context import PluginRef
from actorlog.actors.error_handler import ErrorHandler, Policy
from actorlog.actors.error_policy import ErrorPolicy
from actorlog.actors.errors import DependencyError, EscalationError, RegistrationError, SystemStoppedError
from actorlog.actors.graph import start_order, unmet_requirement
from actorlog.actors.loading import available_plugins, class_path, load_plugin_class
from actorlog.actors.health import HealthScheduler
from actorlog.actors.metrics import METRICS_MESSAGES, Backlog, MetricsCollector, MetricsOptions, Recorder
from actorlog.actors.metrics_server import DEFAULT_PORT, MetricsServer, parse_address
from actorlog.actors.monitor import MetricsClient, PerformanceMonitor
from actorlog.actors.plugin import Health, Plugin, handlers_of
from actorlog.actors.plugin_actor import PluginActor
from actorlog.actors.projector import LiveProjections, Read, Seed
from actorlog.actors.protocol import SYSTEM_MESSAGES, CarryOut, Control
from actorlog.actors.redaction import check_config, redact_event, redacted
from actorlog.actors.retry import Retrying, RetryPolicy, make_retrying
from actorlog.actors.correlation import new_correlation
from actorlog.actors.inbox_bound import InboxBound
from actorlog.actors.router import ANYONE, APP, PluginEntry, Router
from actorlog.actors.snapshots import AutoSnapshots
from actorlog.actors.tracebacks import fit_texts
from actorlog.actors.supervisor import RestartPolicy, StartPlugins, StopPlugin, StopPlugins, Supervisor
from actorlog.actors.upgrade import Registration, UpgradePlugin, UpgradeRefused, prepare_upgrade
from actorlog.events import Message, MetricsConfigured, PluginRegistered, RunStarted, RunStopped, TypeRegistry
from actorlog.replay.errors import ErrorStatisticsSnapshot
from actorlog.replay.metrics import DEFAULT_WINDOW, METRICS_ACTOR, MetricsSnapshot, Summary
from actorlog.replay.plugins import PluginState
from actorlog.replay.prometheus import families, to_prometheus
from actorlog.replay.documents import StatisticsDocument
from actorlog.replay.statistics import Statistics
from actorlog.store import EventStore, StoreError
from actorlog.store.exit import close_at_exit

RESERVED_NAMES = frozenset({APP, ANYONE, "supervisor", "errors", "metrics", "system"})
ACTOR = "system"
T = TypeVar("T")

logger = logging.getLogger("actorlog")
_running: weakref.WeakSet[ActorSystem] = close_at_exit(lambda system: system.stop())


def _actorlog_version() -> str:
    try:
        return version("actorlog")
    except PackageNotFoundError:  # pragma: no cover - uninstalled source tree
        return "unknown"


class ActorSystem:
    """Runs plugins as actors over one event log.

    ``log`` is a path (the system opens and closes the log) or an open `EventStore`
    (the system flushes it on stop and leaves it open). ``restart_policy`` bounds
    restarts. ``error_policy`` assesses and decides on failures: an `ErrorPolicy`
    (severities, per-type handlers and strategies; the default one escalates critical
    failures, restarts plugins on high ones and continues on the rest), or a function
    from `ReportFailure` to a decision for full control. ``store_options`` go to
    `EventStore` when the system opens the log. ``metrics`` sets how measurements are
    kept, buffered and bounded under overload (`MetricsOptions`). ``snapshot_every``
    stores a snapshot of this run's statistics each time that many more events are
    committed, so replays of the run fold only what follows it. ``signing_key`` and
    ``witness`` go to the `EventStore`: signed checkpoints, and a copy of each outside the log.
    ``metrics_address`` (``"HOST:PORT"``) serves ``/metrics`` for Prometheus there (`serve_metrics`).

    Every statistic it answers (`statistics`, `error_statistics`, `metric_summary`,
    `all_metrics`, `prometheus`, `state`) is a read of one `Statistics` projection fed the
    records its log commits, the very fold ``rebuild(log, run=system.run)`` computes. It
    covers this run only.
    """

    def __init__(
        self,
        log: str | os.PathLike[str] | EventStore,
        *,
        run: str | None = None,
        registry: TypeRegistry | None = None,
        restart_policy: RestartPolicy | None = None,
        error_policy: ErrorPolicy | Policy | None = None,
        store_options: Mapping[str, Any] | None = None,
        metrics: MetricsOptions | None = None,
        snapshot_every: int | None = None,
        health_tick: float = 0.05,
        signing_key: str | os.PathLike[str] | None = None,
        witness: str | os.PathLike[str] | None = None,
        metrics_address: str | None = None,
    ) -> None:
        metrics_options = metrics or MetricsOptions()
        listen = parse_address(metrics_address) if metrics_address is not None else None  # refused before the log opens
        self.metrics_server: MetricsServer | None = None
        """The ``/metrics`` endpoint, once `serve_metrics` (or ``metrics_address``) started it."""
        if isinstance(log, EventStore):
            if signing_key is not None or witness is not None or store_options:
                raise ValueError("store options (signing_key, witness, store_options) apply when the system opens "
                                 "the log; give them to the EventStore instead")
            self.store, self._owns_store = log, False
        else:
            options = dict(store_options or {})
            for name, value in (("signing_key", signing_key), ("witness", witness)):
                if value is not None:
                    options[name] = value
            self.store, self._owns_store = EventStore(log, run=run, registry=registry, **options), True
        self.store.redact_with(redact_event)  # no secret any part of the system writes reaches the log
        self.run = self.store.run
        self.registry = self.store.codec.registry
        for message_type in SYSTEM_MESSAGES + METRICS_MESSAGES:
            self.registry.register(message_type)
        self._router = Router(self.store, self.registry)
        self._lock = threading.RLock()
        self._upgrading = threading.Lock()
        """Held by one upgrade at a time: each checks against what the previous one left."""
        self._stopped = False
        self._started = False
        self._failed_start: str | None = None
        self._health_tick = health_tick
        self._health: HealthScheduler | None = None
        self._final: Statistics | None = None
        """The statistics once the system has stopped (then no longer changing)."""
        self._projections = LiveProjections.start(self.store.codec)
        self._unsubscribe = self.store.subscribe(self._projections.tell, kinds=Statistics().kinds, decoded=False)
        self._seed_projections()
        self._restart_policy = restart_policy or RestartPolicy()
        self._supervisor = Supervisor.start(self._router, self._restart_policy)
        policy = error_policy or ErrorPolicy()
        self._errors = ErrorHandler.start(self._router, self._supervisor, policy)
        # a plugin's actor decides by the policy's defaults itself (a policy function: never)
        self._router.error_policy = policy if isinstance(policy, ErrorPolicy) else None
        self.metrics_options = metrics_options
        backlog = Backlog(self.metrics_options.max_pending, self.metrics_options.overload)
        self._metrics_actor = MetricsCollector.start(self.store, self.metrics_options, backlog)
        self._recorder = Recorder(self._metrics_actor, backlog, self.metrics_options)
        self._router.errors = self._errors
        self._router.recorder = self._recorder
        self.metrics = MetricsClient(self._recorder)
        """Counters, gauges and histograms recorded from application code (never waits for the disk)."""
        self.monitor = PerformanceMonitor(self._recorder)
        """Timing of named operations: ``@system.monitor.timed("name")``, ``with system.monitor.time(...)``."""
        self.store.append(
            RunStarted(pid=os.getpid(), host=socket.gethostname(), python=platform.python_version(),
                       actorlog_version=_actorlog_version()),
            actor=ACTOR,
        )
        # every option that shapes the statistics is in the log, so replay uses the same
        self.store.append(
            MetricsConfigured(
                max_history=metrics_options.max_history, buckets=list(metrics_options.buckets),
                histogram_buckets={name: list(b) for name, b in metrics_options.histogram_buckets.items()},
            ),
            actor=METRICS_ACTOR,
        )
        self._snapshots = (
            AutoSnapshots(self.store, self._snapshot_state, snapshot_every) if snapshot_every else None
        )
        _running.add(self)
        self.store.on_failure(self._log_failed)
        if listen is not None:
            try:
                self.serve_metrics(*listen)
            except BaseException as exc:
                self._failed_start = f"the metrics endpoint could not start: {exc}"  # the run ends not clean
                self.stop()
                raise

    def _seed_projections(self) -> None:
        """Start the live statistics from the rows of this run already in the log (a store
        appended to before it was handed over, a run id given again), then follow commits."""
        last = self.store.flush()
        seed = Statistics()
        seed.fold_rows(self.store.rows(run=self.run, to_seq=last), self.store.codec.decode)
        self._projections.tell(Seed(statistics=seed, position=last))

    def _log_failed(self, error: Exception) -> None:
        """The store could not write: nothing more can be recorded, so the system escalates."""
        if not self._stopped:
            self._supervisor.tell(CarryOut(plugin=ACTOR, action="escalate", reason=f"the event log failed: {error}"))

    # -- context manager -----------------------------------------------------------------

    def __enter__(self) -> ActorSystem:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if exc is None and self.escalation is not None:
            raise self.escalation

    def __repr__(self) -> str:
        return f"<ActorSystem run={self.run} plugins={list(self._router.plugins)}>"

    # -- registration --------------------------------------------------------------------

    def register(
        self,
        name: str,
        plugin: type[Plugin] | str,
        *,
        config: Mapping[str, Any] | None = None,
        depends_on: Iterable[str] | None = None,
        requires: Mapping[str, str] | None = None,
        permissions: Mapping[type[Message], Collection[str]] | None = None,
        log_messages: bool | None = None,
        health_interval: float | None = None,
        max_inbox: int | None = None,
    ) -> None:
        """Register a plugin under ``name``; it starts with `start`.

        ``plugin`` is a `Plugin` subclass, an import path (``"pkg.module:Class"``) or the
        name of an ``actorlog.plugins`` entry point. Every other argument overrides the
        class attribute of the same name. ``config`` must be JSON-serialisable: it is
        logged, so a plugin can be rebuilt from the log to reproduce a failure; it is
        redacted first (`actorlog.actors.redaction`): values under secret-looking keys
        (``api_key``, ``password``, ``headers.Authorization``...), credentials in URLs and
        token-shaped strings are logged as ``"***"``, at any depth. Keep secrets out of
        config: name the environment variable that holds them (``api_key_env``); a value that
        looks like a credential under such a key (``*_env``, ``*_var``) is refused with
        `RegistrationError`, before anything is logged and without echoing it.
        """
        self._check_running()
        if not isinstance(name, str) or not name or name in RESERVED_NAMES:
            raise RegistrationError(
                f"invalid plugin name {name!r}: use a non-empty string other than {', '.join(sorted(RESERVED_NAMES))}"
            )
        cls = load_plugin_class(plugin)
        config = dict(config or {})
        check_config(name, config)
        try:
            msgspec.json.encode(config)
        except (TypeError, msgspec.EncodeError) as exc:
            raise RegistrationError(f"config of plugin {name!r} cannot be logged as JSON: {exc}") from None
        handlers = handlers_of(cls)
        for message_type in handlers:
            self.registry.register(message_type)
        entry = PluginEntry(
            name=name, cls=cls, config=config,
            depends_on=tuple(depends_on if depends_on is not None else cls.depends_on),
            requires=dict(requires if requires is not None else cls.requires),
            permissions=_permissions(name, permissions if permissions is not None else cls.permissions, handlers),
            log_messages=cls.log_messages if log_messages is None else log_messages,
            health_interval=cls.health_interval if health_interval is None else health_interval,
            handlers=handlers,
        )
        limit = cls.max_inbox if max_inbox is None else max_inbox
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise RegistrationError(f"max_inbox of plugin {name!r} must be a positive int, got {limit!r}")
        entry.inbox = InboxBound(limit)
        with self._lock:
            if name in self._router.plugins:
                raise RegistrationError(f"a plugin named {name!r} is already registered; choose another name")
            entry.ref = PluginActor.start(self._router, entry)
            self._router.plugins[name] = entry
        self.store.append(
            PluginRegistered(
                plugin=name, class_path=class_path(cls), plugin_version=str(cls.version), config=redacted(config),
                depends_on=entry.depends_on, log_messages=entry.log_messages,
            ),
            actor="supervisor",
        )

    def upgrade(
        self,
        name: str,
        plugin: type[Plugin] | str,
        *,
        config: Mapping[str, Any] | None = None,
        version: str | None = None,
        migrate: bool = True,
        allow_dropped_messages: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Replace running plugin ``name``'s class and config without losing a message.

        ``plugin`` is given as to `register`; ``config`` None keeps the running config;
        ``version`` overrides the class's ``version``. Checks first, changing nothing if one
        fails (`UpgradeRefusedError`, logged as ``plugin.upgrade_refused``): every dependent's
        ``requires`` must accept the new version, the new class must handle every message
        type the plugin has been sent (unless ``allow_dropped_messages``: those are then
        refused), and the config is checked and redacted as at registration.

        Then messages already queued go to the old instance; new ones wait (counted against
        ``max_inbox``). The old instance's ``on_upgrade`` hands over its state (if
        ``migrate``), ``on_stop`` runs, the new instance's ``on_start`` then ``migrate(state,
        old_version)`` run, and what waited is delivered to it, in order. Returns once the new
        instance takes messages. If ``on_start`` or ``migrate`` raises, the old class and
        config start again with the same state and `UpgradeError` is raised (if that fails
        too, it is a failed restart: restart intensity, then escalation). ``timeout``
        (default: the restart policy's ``control_timeout``) bounds the wait for the old
        instance to reach the upgrade behind its queued messages; if it does not, nothing
        changes and `UpgradeError` says so. The log records ``plugin.upgrading`` and
        ``plugin.upgraded`` (or ``plugin.upgrade_failed``) under one correlation.
        """
        self._check_running()
        budget = self._restart_policy.control_timeout if timeout is None else timeout
        if not 0 < budget < math.inf:
            raise ValueError(f"upgrade timeout must be a finite number of seconds > 0, got {timeout!r}")
        correlation = new_correlation()
        with self._upgrading:
            entry = self._router.entry(name)
            try:
                target = prepare_upgrade(self._router, entry, plugin, config, version, migrate=migrate,
                                         allow_dropped_messages=allow_dropped_messages)
            except UpgradeRefused as refused:
                self.store.append(refused.event(), actor="supervisor", correlation=correlation)
                raise
            self._supervisor.ask(UpgradePlugin(name, target, budget, correlation), block=True)

    def check_upgrade(
        self,
        name: str,
        plugin: type[Plugin] | str,
        *,
        config: Mapping[str, Any] | None = None,
        version: str | None = None,
        allow_dropped_messages: bool = False,
    ) -> None:
        """Make `upgrade`'s checks without upgrading or logging anything; `UpgradeRefusedError` says which failed."""
        self._check_running()
        with self._upgrading:
            prepare_upgrade(self._router, self._router.entry(name), plugin, config, version, migrate=True,
                            allow_dropped_messages=allow_dropped_messages)

    def registration(self, name: str) -> Registration:
        """What plugin ``name`` runs now: its class path, version and dependencies."""
        entry = self._router.entry(name)
        return Registration(class_path=class_path(entry.cls), version=entry.version, depends_on=entry.depends_on)

    def remove(self, name: str) -> None:
        """Stop plugin ``name`` for good and unregister it; refused (`DependencyError`) while a
        registered plugin depends on it. The log keeps its history; the name may be registered again."""
        self._check_running()
        with self._lock:
            entry = self._router.entry(name)
            users = [n for n, e in self._router.plugins.items() if name in e.depends_on]
            if users:
                raise DependencyError(
                    f"plugin {name!r} cannot be removed while {', '.join(map(repr, users))} depend on it; "
                    f"remove them first"
                )
            self._supervisor.ask(StopPlugin(name), block=True)
            # a new table, not an edit: threads iterating the old one (health checks) are not disturbed
            self._router.plugins = {n: e for n, e in self._router.plugins.items() if n != name}
        if entry.ref is not None:
            try:
                entry.ref.stop(block=True, timeout=self._restart_policy.control_timeout)
            except (pykka.ActorDeadError, pykka.Timeout):
                pass

    @staticmethod
    def available_plugins() -> dict[str, str]:
        """Plugins installed under the ``actorlog.plugins`` entry-point group: name -> import path."""
        return available_plugins()

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> list[str]:
        """Start every registered plugin not yet started, dependencies first; returns the order.

        Cycles, missing dependencies and unmet version requirements are refused before
        anything starts. If a plugin's ``on_start`` raises, its dependents are not
        started, everything started is stopped, and `StartError` says which and why.
        Once the system has started, a later `start` (of plugins registered since) stops
        only the plugins it started itself when one fails: the others run on.
        """
        self._check_running()
        if self._started:
            self._validate()
            started: list[str] = self._supervisor.ask(StartPlugins(keep_running=True), block=True)
            self._start_health_checks()
            return started
        try:
            self._validate()
            order: list[str] = self._supervisor.ask(StartPlugins(), block=True)
        except Exception as exc:
            self._failed_start = f"the start failed: {exc}"  # the run is then recorded as not clean
            raise
        self._started = True
        self._start_health_checks()
        return order

    def _validate(self) -> None:
        plugins = self._router.plugins
        start_order({name: entry.depends_on for name, entry in plugins.items()})
        for name, entry in plugins.items():
            for dep, spec in entry.requires.items():
                dep_entry = plugins.get(dep)
                problem = unmet_requirement(name, dep, spec, entry.depends_on, dep_entry.cls if dep_entry else None,
                                            dep_entry.version if dep_entry else None)
                if problem:
                    raise DependencyError(problem)

    def stop(self, timeout: float | None = None) -> None:
        """Stop every plugin in reverse dependency order, then the system's own actors; flush the log.

        Each plugin gets ``timeout`` seconds to stop (default: the restart policy's
        ``control_timeout``). One that does not (a handler that never returns, a slow
        ``on_stop``) is recorded as ``plugin.stop_timed_out``, naming the message type it
        was handling, and its thread is abandoned; the run then ends not clean. So `stop`
        always returns. Idempotent. Afterwards the statistics stay readable: they are final.
        """
        budget = self._restart_policy.control_timeout if timeout is None else timeout
        if not 0 < budget < math.inf:
            raise ValueError(f"stop timeout must be a finite number of seconds > 0, got {timeout!r}")
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._router.stopping = True
        if self.metrics_server is not None:
            self.metrics_server.close()  # the endpoint stops with the system
        self._announce_shutdown()
        if self._health is not None:
            self._health.close()
        if self._snapshots is not None:
            self._snapshots.close()
        abandoned: list[str] = []
        plugins = list(self._router.plugins.values())
        try:
            # the supervisor may itself be busy (a start that does not return): bounded too
            abandoned = self._supervisor.ask(StopPlugins(budget), block=True, timeout=budget * (len(plugins) + 1))
        except pykka.Timeout:
            abandoned = [entry.name for entry in plugins]
            logger.warning("the supervisor did not stop the plugins within %g s; their threads are abandoned",
                           budget * (len(plugins) + 1))
        except pykka.ActorDeadError:
            pass
        except Exception:  # noqa: BLE001 - stopping must finish: every actor below is stopped all the same
            logger.exception("stopping the plugins failed; stopping the rest")
        for entry in plugins:
            if entry.ref is None:
                continue
            if entry.name in abandoned:  # stuck in a handler: its (daemon) thread is left behind
                entry.ref.stop(block=False)
                continue
            try:
                entry.ref.stop(block=True, timeout=budget)
            except pykka.Timeout:
                abandoned.append(entry.name)
        try:
            self._recorder.close()  # every buffered measurement reaches the log
        except pykka.ActorDeadError:
            pass
        except Exception:  # noqa: BLE001 - a failed log cannot take them; stopping goes on
            logger.exception("delivering the last measurements failed")
        for ref in (self._errors, self._supervisor, self._metrics_actor):
            try:
                ref.stop(block=True, timeout=budget)
            except (pykka.ActorDeadError, pykka.Timeout):
                pass
        escalation = self.escalation
        if self._router.stopped is None:
            self._router.stopped = SystemStoppedError("stop() was called")
        _running.discard(self)
        try:
            if self.store.failure is None:
                failure = str(escalation) if escalation else self._failed_start
                reason = failure or "normal"
                if abandoned:
                    reason += f"; {', '.join(map(repr, abandoned))} did not stop in time (threads abandoned)"
                stopped, _ = fit_texts(RunStopped(reason=reason, clean=failure is None and not abandoned),
                                       ("reason",), self.store.max_payload_bytes)  # a failure's text may be huge
                self.store.append(stopped, actor=ACTOR)
            if self._owns_store:
                self.store.close()
            else:
                self.store.flush()
        finally:
            self._unsubscribe()
            # the projections have folded every commit by now: their statistics become final
            self._final = self._projections.ask(Read(_itself), block=True)
            self._projections.stop(block=True)

    def _announce_shutdown(self) -> None:
        for entry in list(self._router.plugins.values()):
            instance = entry.instance
            if instance is None:
                continue
            try:
                instance.on_shutdown()
            except Exception:  # noqa: BLE001 - stopping goes on; on_stop still runs
                logger.exception("on_shutdown of plugin %r raised; stopping goes on", entry.name)

    @property
    def escalation(self) -> EscalationError | None:
        """The escalation that stopped the system, if one did."""
        stopped = self._router.stopped
        return stopped if isinstance(stopped, EscalationError) else None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the system stops (by `stop` or escalation); True if it did within ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._router.stopped is None:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _check_running(self) -> None:
        if self._stopped or self._router.stopped is not None:
            raise SystemStoppedError(
                f"{self!r} is stopped" + (f": {self._router.stopped}" if self._router.stopped else "")
            )

    # -- messages ------------------------------------------------------------------------

    def ref(self, name: str) -> PluginRef:
        """A reference to plugin ``name`` that sends as the application."""
        self._router.entry(name)
        return PluginRef(self._router, name, APP)

    def tell(self, name: str, message: object, *, correlation: str | None = None) -> None:
        """Send ``message`` to plugin ``name`` without waiting.

        Refused at once with `TypeError` (not a registered message type the plugin
        handles), `PermissionError`, `UnknownPluginError` or `PluginNotRunningError`.
        """
        self._router.send(APP, name, message, correlation, None)

    def ask(self, name: str, message: object, *, timeout: float | None = None, correlation: str | None = None) -> Any:
        """Send ``message`` and wait for the handler's return value, or raise its exception."""
        future: Future[Any] = Future()
        self._router.send(APP, name, message, correlation, future)
        return self._router.wait(future, name, message, timeout)

    async def ask_async(
        self, name: str, message: object, *, timeout: float | None = None, correlation: str | None = None
    ) -> Any:
        """`ask` for async code: awaits the reply without blocking the event loop."""
        return await PluginRef(self._router, name, APP).ask_async(message, timeout=timeout, correlation=correlation)

    # -- reading the live statistics ---------------------------------------------------------

    def flush(self, timeout: float | None = None) -> int:
        """Deliver every buffered measurement and commit everything sent so far; returns the last seq."""
        self._check_running()
        self._recorder.flush(timeout)
        return self.store.flush(timeout)

    def _read(self, read: Callable[[Statistics], T], *, measurements: bool = True, timeout: float | None = 10.0) -> T:
        """``read`` of the live statistics, once everything sent so far is committed and folded.

        After an escalation the system takes no more work, but its statistics stay
        readable (what could still be committed is); after `stop` they are final.
        """
        final = self._final
        if final is not None:
            return read(final)
        if self._router.stopped is None:
            if measurements:
                self._recorder.flush(timeout)
            self.store.flush(timeout)
        else:
            try:  # escalated: the log itself may be what failed
                if measurements:
                    self._recorder.flush(timeout)
                self.store.flush(timeout)
            except (StoreError, pykka.ActorDeadError, SystemStoppedError):
                pass
        try:
            result: T = self._projections.ask(Read(read), block=True, timeout=timeout)
        except pykka.ActorDeadError:  # stop() finished meanwhile
            final = self._final
            assert final is not None
            return read(final)
        except pykka.Timeout:
            raise TimeoutError(f"{self!r}: the live statistics did not answer within {timeout} s") from None
        return result

    def metric_summary(
        self,
        name: str,
        tags: Mapping[str, str] | None = None,
        *,
        window_seconds: float = DEFAULT_WINDOW,
        as_of: float | None = None,
        timeout: float | None = 10.0,
    ) -> Summary:
        """Count, min, max, avg, latest and p50/p95/p99 of a series over ``window_seconds``
        ending at ``as_of`` (default: now), after delivering buffered measurements."""
        moment = time.time() if as_of is None else as_of
        tags = dict(tags or {})
        return self._read(
            lambda s: s.metrics.summary(name, tags, as_of=moment, window_seconds=window_seconds), timeout=timeout
        )

    def all_metrics(self, *, timeout: float | None = 10.0) -> MetricsSnapshot:
        """Every counter total, gauge value and series name, after delivering buffered measurements."""
        return self._read(lambda s: s.metrics.snapshot(), timeout=timeout)

    def prometheus(self, *, timeout: float | None = 10.0) -> str:
        """This run's metrics in the Prometheus text exposition format (cumulative counters and
        histograms, gauges; see `actorlog.replay.prometheus`), after delivering buffered measurements."""
        return self._read(lambda s: to_prometheus(s.metrics), timeout=timeout)

    def serve_metrics(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> MetricsServer:
        """Serve ``/metrics`` for Prometheus on ``host:port`` (port 0: any free port; the server's
        ``port`` says which) with prometheus_client's HTTP server, until the system stops.
        A port in use raises `MetricsAddressError`."""
        with self._lock:  # stop() marks the system stopped under this lock, then closes the server
            self._check_running()
            if self.metrics_server is not None:
                raise RuntimeError(f"{self!r} already serves metrics at {self.metrics_server.url}")
            self.metrics_server = MetricsServer(lambda: self._read(lambda s: families(s.metrics)), host, port)
            return self.metrics_server

    def statistics(self, *, recent: int = 10, window_seconds: float | None = None) -> StatisticsDocument:
        """This run's statistics, in exactly the shape ``actorlog stats --json`` prints.

        Everything sent so far is delivered and committed, then the live projections are
        read: the document equals ``actorlog stats LOG --run RUN --json`` for this log at the
        same position. After `stop`, it is the final document, the run's stop included.
        """
        return self._read(lambda s: s.document(recent=recent, window_seconds=window_seconds))

    def error_statistics(self, recent: int = 10, *, timeout: float | None = 10.0) -> ErrorStatisticsSnapshot:
        """This run's error statistics: totals by type, severity and plugin, and the newest errors."""
        return self._read(lambda s: s.errors.snapshot(recent), measurements=False, timeout=timeout)

    def _plugin(self, name: str) -> PluginState:
        self._router.entry(name)
        run = self.run
        state = self._read(lambda s: s.plugins.get(run, name), measurements=False)
        assert state is not None, "a registered plugin is in the log"
        return state

    def state(self, name: str) -> str:
        """The state of plugin ``name`` as the log says: registered, starting, running, stopping, stopped or failed."""
        return self._plugin(name).state

    @property
    def plugins(self) -> dict[str, str]:
        """Every registered plugin's state as the log says, in registration order."""
        run, names = self.run, list(self._router.plugins)
        states = self._read(lambda s: {n: s.plugins.get(run, n) for n in names}, measurements=False)
        return {name: state.state for name, state in states.items() if state is not None}

    def restarts(self, name: str) -> int:
        """How many times plugin ``name`` was restarted in this run."""
        return self._plugin(name).restarts

    def _snapshot_state(self) -> tuple[int, str]:
        """(position, state as JSON) of the live statistics, for an automatic snapshot of this run."""
        return self._read(lambda s: (s.position, msgspec.json.encode(s.state()).decode()), measurements=False)

    # -- failures --------------------------------------------------------------------------

    def retry(
        self,
        task: str | None = None,
        *,
        policy: RetryPolicy | None = None,
        correlation: str | None = None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
        async_sleep: Callable[[float], Awaitable[None]] | None = None,
        random: Callable[[], float] | None = None,
        **options: Any,
    ) -> Retrying:
        """Run callables with retries: a decorator (sync or async) and ``.call(fn, ...)``.

        ``options`` are `RetryPolicy` fields (``max_retries=5, retry_on=(ConnectionError,)``);
        ``task`` names the task in the log (default: the function's qualified name).
        ``clock``, ``sleep``, ``async_sleep`` and ``random`` are injectable for tests.
        """
        return make_retrying(
            self._router, policy, options, task=task, caller=APP, correlation=correlation,
            clock=clock, sleep=sleep, async_sleep=async_sleep, random=random,
        )

    # -- health ----------------------------------------------------------------------------

    def check_health(self, name: str | None = None, *, timeout: float | None = 10.0) -> dict[str, Health]:
        """Run health checks now (one plugin, or every running one); each result is logged.

        An unhealthy or raising check is reported as a failure, like a failing handler.
        """
        names = [name] if name is not None else [n for n, e in self._router.plugins.items() if e.state == "running"]
        futures: dict[str, Future[Any]] = {}
        for plugin in names:
            entry = self._router.entry(plugin)
            future: Future[Any] = Future()
            if entry.ref is None:
                continue
            entry.ref.tell(Control(op="health", reply=future))
            futures[plugin] = future
        deadline = None if timeout is None else time.monotonic() + timeout
        results: dict[str, Health] = {}
        for plugin, future in futures.items():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                results[plugin] = future.result(left)
            except TimeoutError:
                if future.done():  # the check itself raised it: the plugin did answer
                    raise
                raise TimeoutError(f"plugin {plugin!r} did not answer its health check within {timeout:g} s") from None
        return results

    def _start_health_checks(self) -> None:
        if self._health is not None or not any(e.health_interval for e in self._router.plugins.values()):
            return
        self._health = HealthScheduler(
            lambda: self._router.plugins.values(), lambda entry: entry.state == "running", tick=self._health_tick
        )


def _itself(statistics: Statistics) -> Statistics:
    return statistics


def _permissions(
    name: str, permissions: Mapping[type[Message], Collection[str]] | None, handlers: Mapping[type[Message], Any]
) -> dict[type[Message], frozenset[str]] | None:
    if permissions is None:
        return None
    normalised: dict[type[Message], frozenset[str]] = {}
    for message_type, senders in permissions.items():
        if message_type not in handlers:
            raise RegistrationError(
                f"plugin {name!r} declares permissions for {getattr(message_type, '__qualname__', message_type)!r}, "
                f"which it has no handler for"
            )
        if isinstance(senders, str):
            senders = (senders,)
        normalised[message_type] = frozenset(senders)
    return normalised
