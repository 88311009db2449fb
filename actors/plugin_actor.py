"""The pykka actor that runs one plugin for the whole life of the system.

The actor outlives the plugin instances it runs: a restart replaces the instance
inside it, so messages queued meanwhile reach the new instance instead of being lost.
After a failure the actor is *suspended*: it stashes new deliveries, in order, until
the supervisor's decision (resume, restart, stop) arrives as a control message.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from concurrent.futures import Future
from typing import Any

import msgspec
import pykka

from actorlog.actors.context import PluginContext
from actorlog.actors.error_policy import qualified_name
from actorlog.actors.errors import PluginNotRunningError, UnhealthyError
from actorlog.actors.plugin import Health, Plugin
from actorlog.actors.protocol import Control, Delivery, ReportFailure, StartFailed, Where
from actorlog.actors.router import PluginEntry, Router
from actorlog.actors.tracebacks import fit_texts, format_traceback, safe_str
from actorlog.events import FailureRaised, MessageReceived, MessageRefused, PluginHealthChecked
from actorlog.store import EventStore, Ticket

logger = logging.getLogger(__name__)

_seed = random.SystemRandom().getrandbits(32)
_seeds = random.Random(_seed)


class PluginActor(pykka.ThreadingActor):
    """Runs one plugin: dispatches its messages, logs them, reports its failures."""

    use_daemon_thread = True  # an unstopped system must not hang interpreter exit

    def __init__(self, router: Router, entry: PluginEntry) -> None:
        super().__init__()
        self.router = router
        self.entry = entry
        self.store = router.store
        self.context = PluginContext(router, entry.name, router.store.run, entry.depends_on)
        self.instance: Plugin | None = None
        self.suspended = False
        self.stash: deque[Delivery] = deque()

    # -- dispatch ----------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        try:
            if type(message) is Delivery:
                self._on_delivery(message)
            elif type(message) is Control:
                self._on_control(message)
            else:
                logger.error("plugin actor %r ignored an unexpected %r", self.entry.name, type(message))
        except BaseException as exc:  # noqa: BLE001 - the actor must survive, or pykka stops every actor
            logger.exception("plugin actor %r failed internally", self.entry.name)
            reply = getattr(message, "reply", None)
            if reply is not None and not reply.done():
                reply.set_exception(exc)
        return None

    def _on_delivery(self, delivery: Delivery) -> None:
        if self.suspended:
            self.stash.append(delivery)
        elif self.instance is None:
            self._refuse(delivery)
        else:
            self._deliver(delivery)

    def _deliver(self, delivery: Delivery) -> None:
        entry = self.entry
        message = delivery.message
        context = self.context
        ticket: Ticket | None = None
        if entry.log_messages:
            received_at = time.time()
            seed = _seeds.getrandbits(63)
            ticket = self.store.append(
                MessageReceived(
                    recipient=entry.name, sender=delivery.sender, message=msgspec.to_builtins(message), seed=seed
                ),
                actor=entry.name, correlation=delivery.correlation, ts=received_at,
            )
            context.begin(received_at, seed, delivery.correlation)
        else:
            context.begin(None, None, delivery.correlation)  # nothing recorded: clock and randomness are live
        try:
            result = entry.handlers[type(message)](self.instance, message)
        except BaseException as exc:  # noqa: BLE001 - reported, and handed to an asking caller
            context.end()
            self._release(delivery)
            self._failed(exc, "handler", delivery.correlation, ticket)
            if delivery.reply is not None:
                delivery.reply.set_exception(exc)
            return
        context.end()
        self._release(delivery)
        if delivery.reply is not None:
            delivery.reply.set_result(result)

    def _release(self, delivery: Delivery) -> None:
        if delivery.bounded:
            self.entry.inbox.give_back()

    def _refuse(self, delivery: Delivery) -> None:
        self._release(delivery)
        error = PluginNotRunningError(self.entry.name, self.entry.state)
        if delivery.reply is not None:
            delivery.reply.set_exception(error)
        else:
            kind = self.router.registry.by_type.get(type(delivery.message), ("?",))[0]
            self.store.append(
                MessageRefused(recipient=self.entry.name, sender=delivery.sender, message_kind=kind, reason=str(error)),
                actor=self.entry.name, correlation=delivery.correlation,
            )

    def _drain_stash(self) -> None:
        while self.stash and not self.suspended:
            self._on_delivery(self.stash.popleft())

    # -- failures ------------------------------------------------------------------------

    def _failed(self, exc: BaseException, where: Where, correlation: str | None, trigger: Ticket | None) -> Ticket:
        """Record a failure, suspend, and report it to the error handler (for handler and health failures)."""
        failed_at = time.time()
        failure = self.record_failure(exc, correlation, trigger, failed_at)
        self.suspended = True
        self.entry.state = "suspended"
        self.router.report(
            ReportFailure(
                plugin=self.entry.name, exception=exc, where=where, correlation=correlation, failure=failure,
                failed_at=failed_at,
            )
        )
        return failure

    def record_failure(
        self, exc: BaseException, correlation: str | None, trigger: Ticket | None = None, failed_at: float | None = None
    ) -> Ticket:
        """Append a ``failure.raised`` event for ``exc``; its trigger_seq is filled in at commit."""
        return record_failure(
            self.store, self.entry.name, exc, actor=self.entry.name, correlation=correlation, trigger=trigger,
            failed_at=failed_at,
        )

    # -- control -------------------------------------------------------------------------

    def _on_control(self, control: Control) -> None:
        op = control.op
        try:
            result: Any = None
            if op == "start":
                self._start(control.correlation)
            elif op == "halt":
                self._halt()
            elif op == "stop":
                self._stop_plugin()
            elif op == "resume":
                pass
            elif op == "health":
                result = self._check_health(control.reason)
            else:
                raise ValueError(f"unknown control operation {op!r}")
        except BaseException as exc:  # noqa: BLE001 - the supervisor gets it through the reply
            _reply_error(control.reply, exc)
            return
        if op == "resume":
            self.suspended = False
            self.entry.state = "running"
        _reply(control.reply, result)
        if op == "resume":
            self._drain_stash()

    def _start(self, correlation: str | None = None) -> None:
        """Build a fresh instance and run its ``on_start``.

        Messages keep being stashed until the supervisor, having recorded the start,
        sends ``resume``: nothing is handled before ``plugin.started`` is in the log.
        """
        entry = self.entry
        self.suspended = True
        instance = entry.cls(self.context, entry.config)
        try:
            instance.on_start()
        except BaseException as exc:  # noqa: BLE001 - handed to the supervisor with its failure event
            failed_at = time.time()
            raise StartFailed(exc, self.record_failure(exc, correlation, None, failed_at), failed_at) from exc
        self.instance = entry.instance = instance

    def _halt(self) -> None:
        """Stop the current instance but keep stashing messages for the next one (a restart)."""
        self.suspended = True
        self.entry.state = "restarting"
        self._stop_instance()

    def _stop_plugin(self) -> None:
        """Stop for good: run ``on_stop`` and refuse what was stashed."""
        self.entry.state = "stopped"
        self.suspended = False
        try:
            self._stop_instance()
        finally:
            while self.stash:
                self._refuse(self.stash.popleft())

    def _stop_instance(self) -> None:
        instance, self.instance = self.instance, None
        self.entry.instance = None
        if instance is not None:
            try:
                instance.on_stop()
            except BaseException as exc:  # noqa: BLE001 - recorded; stopping goes on
                self.record_failure(exc, None)

    def _check_health(self, correlation: str) -> Health:
        entry = self.entry
        if self.instance is None or self.suspended:
            return Health(False, f"plugin is {entry.state}")  # not a failure: it is between lifecycle steps
        try:
            outcome = self.instance.health_check()
            health = outcome if isinstance(outcome, Health) else Health(bool(outcome))
        except BaseException as exc:  # noqa: BLE001 - a raising check is a failure
            health = Health(False, f"health check raised {qualified_name(exc)}: {safe_str(exc)}")
            self.store.append(self._health_event(health), actor=entry.name)
            self._failed(exc, "health", correlation or None, None)
            return health
        self.store.append(self._health_event(health), actor=entry.name)
        if not health.healthy:
            self._failed(UnhealthyError(entry.name, health.detail), "health", correlation or None, None)
        return health

    def _health_event(self, health: Health) -> PluginHealthChecked:
        """The ``plugin.health_checked`` event of ``health``, its detail cut to fit the log."""
        event = PluginHealthChecked(plugin=self.entry.name, healthy=health.healthy, detail=health.detail)
        return fit_texts(event, ("detail",), self.store.max_payload_bytes)[0]


def record_failure(
    store: EventStore,
    plugin: str,
    exc: BaseException,
    *,
    actor: str,
    correlation: str | None,
    trigger: Ticket | None = None,
    failed_at: float | None = None,
) -> Ticket:
    """Append a ``failure.raised`` event for ``exc`` (the trigger's seq is filled in at commit).

    Its message and traceback are cut to fit the store's limit (`fit_texts`), so the
    failure is recorded whatever the exception says; ``exc`` itself is left untouched.
    """
    event, truncated = fit_texts(
        FailureRaised(
            plugin=plugin, exc_type=qualified_name(exc), message=safe_str(exc),
            traceback=format_traceback(exc),
        ),
        ("message", "traceback"), store.max_payload_bytes,
    )
    return store.append(
        msgspec.structs.replace(event, truncated=True) if truncated else event,
        actor=actor, correlation=correlation, ts=failed_at,
        refs={"trigger_seq": trigger} if trigger is not None else None,
    )


def _reply(future: Future[Any] | None, result: Any) -> None:
    if future is not None and not future.done():
        future.set_result(result)


def _reply_error(future: Future[Any] | None, exc: BaseException) -> None:
    if future is not None and not future.done():
        future.set_exception(exc)
    elif future is None:
        logger.error("control operation failed with nobody waiting", exc_info=exc)
