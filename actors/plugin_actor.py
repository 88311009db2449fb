"""The pykka actor that runs one plugin for the whole life of the system.

The actor outlives the plugin instances it runs: a restart replaces the instance
inside it, so messages queued meanwhile reach the new instance instead of being lost.
After a failure the actor is *suspended*: it stashes new deliveries, in order, until
the supervisor's decision (resume, retry, restart, stop) arrives as a control message.
A retry delivers the failed message again after its delay, on a timer of this actor's
own, so no other plugin's recovery waits for it.

The plugin's lifecycle state (``PluginEntry.state``, which senders read to know whether
it takes messages) is written by this actor's thread only.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from concurrent.futures import Future
from typing import Any

import msgspec
import pykka

from actorlog.actors.assessment import assessed_event, decide_here, decided_event
from actorlog.actors.context import PluginContext
from actorlog.actors.error_handler import ACTOR as ERRORS_ACTOR
from actorlog.actors.error_handler import MAX_RETRY_DELAY
from actorlog.actors.error_policy import Decision
from actorlog.actors.error_policy import qualified_name
from actorlog.actors.errors import EscalationError, PluginNotRunningError, UnhealthyError
from actorlog.actors.plugin import Health, Plugin
from actorlog.actors.protocol import Control, Delivery, ReportFailure, StartFailed, Where
from actorlog.actors.router import PluginEntry, Router
from actorlog.actors.failures import record_failure
from actorlog.actors.upgrade import NotUpgradable, Version
from actorlog.actors.tracebacks import fit_texts, safe_str
from actorlog.events import EncodeError, MessageReceived, MessageRefused, PluginHealthChecked, Severity, tag_of
from actorlog.store import Ticket

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
        self.failed: Delivery | None = None
        """The told message whose handler failed, kept while its decision is awaited (a retry redelivers it)."""
        self.generation = 0
        """Counts suspensions, so a redelivery timer of an earlier one is ignored."""
        self._timer: threading.Timer | None = None

    def on_start(self) -> None:
        self.entry.thread = threading.current_thread()

    # -- dispatch ----------------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        try:
            if type(message) is Delivery:
                if self.suspended or self.instance is None:
                    self._on_delivery(message)
                else:  # the common case, one call shorter
                    self._deliver(message)
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
        function = entry.handlers.get(type(message))
        if function is None:
            message = self._reloaded(delivery)
            if message is None:  # sent before an upgrade that dropped its type (allow_dropped_messages)
                self._refuse(delivery, TypeError(
                    f"plugin {entry.name!r} no longer handles {type(delivery.message).__qualname__}: its upgrade to "
                    f"version {entry.version} dropped it"))
                return
            function = entry.handlers[type(message)]
        if entry.log_messages:
            # The message is encoded to JSON once; those bytes are logged, and the handler is
            # given them decoded to its type: exactly what reproduction decodes from the log.
            try:
                raw = self.store.codec.encode(message)[2]  # refuses NaN and infinity, as for any event
                message = _decoder(type(message)).decode(raw)
            except (EncodeError, TypeError, msgspec.ValidationError) as exc:  # the sender is told why
                self._refuse(delivery, _unloggable(message, exc))
                return
            seed = _seeds.getrandbits(63)
            ticket = self.store.append(
                MessageReceived(recipient=entry.name, sender=delivery.sender, message=_embedded(raw), seed=seed),
                actor=entry.name, correlation=delivery.correlation,
            )
            context.begin(ticket.ts, seed, delivery.correlation)  # the handler's clock reads the logged time
        else:
            context.begin(None, None, delivery.correlation)  # nothing recorded: clock and randomness are live
        entry.handling = type(message).__qualname__
        try:
            result = function(self.instance, message)
        except BaseException as exc:  # noqa: BLE001 - reported, and handed to an asking caller
            entry.handling = None
            context.end()
            self._release(delivery)
            if delivery.reply is None:
                self.failed = msgspec.structs.replace(delivery, bounded=False, attempt=delivery.attempt + 1)
            self._failed(exc, "handler", delivery.correlation, ticket, delivery)
            if delivery.reply is not None:
                _reply_error(delivery.reply, exc)
            return
        entry.handling = None
        context.end()
        if delivery.bounded:  # inlined `_release` and `_reply`: the hot path
            entry.inbox.give_back()
        reply = delivery.reply
        if reply is not None and not reply.done():
            reply.set_result(result)

    def _reloaded(self, delivery: Delivery) -> Any:
        """A message sent before an upgrade whose class was imported again (same tag, new class),
        as an instance of the class the new handlers take; None if they take none of that tag."""
        kind = tag_of(type(delivery.message))
        for handled in self.entry.handlers:
            if tag_of(handled) == kind:
                try:
                    return _decoder(handled).decode(msgspec.json.encode(delivery.message))
                except msgspec.ValidationError:
                    return None
        return None

    def _release(self, delivery: Delivery) -> None:
        if delivery.bounded:
            self.entry.inbox.give_back()

    def _refuse(self, delivery: Delivery, error: Exception | None = None) -> None:
        self._release(delivery)
        error = error if error is not None else PluginNotRunningError(self.entry.name, self.entry.state)
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

    def _failed(
        self, exc: BaseException, where: Where, correlation: str | None, trigger: Ticket | None,
        delivery: Delivery | None = None,
    ) -> Ticket:
        """Record a failure, and decide it here when it needs no supervisor (`_decided_here`);
        otherwise suspend and report it to the error handler (for handler and health failures)."""
        failure = self.record_failure(exc, correlation, trigger)
        report = ReportFailure(
            plugin=self.entry.name, exception=exc, where=where, correlation=correlation, failure=failure,
            failed_at=failure.ts, attempt=delivery.attempt if delivery is not None else None,
            asked=delivery is not None and delivery.reply is not None,
        )
        decided = decide_here(self.router.error_policy, report)
        if decided is not None:
            self._decided_here(report, *decided)
        else:
            self._suspend("suspended")
            self.router.report(report)
        return failure

    def _decided_here(self, report: ReportFailure, severity: Severity, decision: Decision) -> None:
        """Log the error handler's two events for a failure the policy's defaults decide, and
        carry the decision out: continue at once, or deliver the message again after its delay.
        After an escalation the plugin stays suspended (the supervisor ignores every decision)."""
        limit = self.store.max_payload_bytes
        refs = {"failure_seq": report.failure}
        self.store.append_together(
            [(assessed_event(report, severity, limit), refs), (decided_event(report, decision, severity, limit), refs)],
            actor=ERRORS_ACTOR, correlation=report.correlation,
        )
        if decision.action == "continue" and not isinstance(self.router.stopped, EscalationError):
            self.failed = None  # never suspended: the next message is handled as if nothing happened
            return
        self._suspend("suspended")
        if isinstance(self.router.stopped, EscalationError):
            return
        if decision.delay > 0:
            self._retry_after(min(decision.delay, MAX_RETRY_DELAY))
        else:  # told, not called: a message failing again must not recurse here
            self._tell_self(Control(op="redeliver", generation=self.generation))

    def _suspend(self, state: str) -> None:
        self.suspended = True
        self.entry.state = state
        self.generation += 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

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
                self.failed = None
            elif op == "retry":
                self._retry_after(control.delay)
            elif op == "redeliver":
                if control.generation != self.generation:
                    return  # a restart or stop came first
            elif op == "health":
                result = self._check_health(control.reason)
            elif op == "upgrade_halt":
                if control.reply is not None and not control.reply.set_running_or_notify_cancel():
                    return  # the supervisor stopped waiting for this halt: nothing changes
                result = self._upgrade_halt(control.upgrade, control.correlation)
            elif op == "upgrade_start":
                self._upgrade_start(control.upgrade, control.state, control.correlation)
            else:
                raise ValueError(f"unknown control operation {op!r}")
        except BaseException as exc:  # noqa: BLE001 - the supervisor gets it through the reply
            _reply_error(control.reply, exc)
            return
        _reply(control.reply, result)
        if op in ("resume", "redeliver"):
            self._run_again()

    def _retry_after(self, delay: float) -> None:
        """Deliver the failed message again after ``delay`` seconds; meanwhile new ones wait."""
        if self.failed is None or delay <= 0:
            self._run_again()
            return
        redeliver = Control(op="redeliver", generation=self.generation)
        self._timer = threading.Timer(delay, self._tell_self, (redeliver,))
        self._timer.daemon = True
        self._timer.start()

    def _tell_self(self, control: Control) -> None:
        try:
            self.actor_ref.tell(control)
        except pykka.ActorDeadError:
            pass

    def _run_again(self) -> None:
        """Leave the suspension: the failed message first (after a retry), then what was stashed."""
        self._timer = None
        self.suspended = False
        self.entry.state = "running"
        failed, self.failed = self.failed, None
        if failed is not None:
            self.stash.appendleft(failed)
        self._drain_stash()

    def _start(self, correlation: str | None = None) -> None:
        """Build a fresh instance and run its ``on_start``.

        Messages keep being stashed until the supervisor, having recorded the start,
        sends ``resume``: nothing is handled before ``plugin.started`` is in the log.
        """
        entry = self.entry
        restarting = entry.state == "restarting"
        self._suspend("restarting" if restarting else "starting")
        try:
            instance = entry.cls(self.context, entry.config)
            instance.on_start()
        except BaseException as exc:  # noqa: BLE001 - handed to the supervisor with its failure event
            entry.state = "suspended" if restarting else "failed"
            failure = self.record_failure(exc, correlation)
            raise StartFailed(exc, failure, failure.ts) from exc
        self.instance = entry.instance = instance

    def _halt(self) -> None:
        """Stop the current instance but keep stashing messages for the next one (a restart)."""
        self._suspend("restarting")
        self.failed = None  # its decision was this restart: the failed message is not handled again
        self._stop_instance()

    def _upgrade_halt(self, target: Version, correlation: str | None) -> Any:
        """Hand over the running instance's state (``on_upgrade``) and stop it (``on_stop``);
        from now on messages are stashed for the new instance. If ``on_upgrade`` raises, the
        old instance goes on as if nothing happened (the upgrade fails, rolled back)."""
        entry = self.entry
        instance = self.instance
        if instance is None or self.suspended or entry.state != "running":
            raise NotUpgradable(f"it is {entry.state}; only a running plugin can be upgraded")
        self._suspend("upgrading")
        try:
            state = instance.on_upgrade() if target.migrate else None
        except BaseException as exc:  # noqa: BLE001 - recorded; the old instance takes messages again
            self.record_failure(exc, correlation)
            self.suspended = False
            entry.state = "running"  # nothing was stashed meanwhile: this actor did nothing else
            raise
        self._stop_instance()
        return state

    def _upgrade_start(self, target: Version, state: Any, correlation: str | None) -> None:
        """Build an instance of ``target``, run its ``on_start`` then ``migrate(state, ...)``; on
        success it is the plugin's instance (its class, config and handlers now the entry's).
        Messages stay stashed until the supervisor, having logged the outcome, sends ``resume``."""
        entry = self.entry
        started: Plugin | None = None
        try:
            instance = target.cls(self.context, target.config)
            instance.on_start()
            started = instance
            if target.migrate:
                instance.migrate(state, target.from_version)
        except BaseException as exc:  # noqa: BLE001 - handed to the supervisor, which rolls back
            failure = self.record_failure(exc, correlation)
            if started is not None:
                try:
                    started.on_stop()
                except BaseException as stop_exc:  # noqa: BLE001 - recorded; the rollback goes on
                    self.record_failure(stop_exc, correlation)
            raise StartFailed(exc, failure, failure.ts) from exc
        entry.cls, entry.config, entry.version = target.cls, target.config, target.version
        entry.handlers = target.handlers  # senders check types against the new handlers from now on
        self.instance = entry.instance = instance

    def _stop_plugin(self) -> None:
        """Stop for good: run ``on_stop`` and refuse what was stashed."""
        self._suspend("stopping")
        self.failed = None
        try:
            self._stop_instance()
        finally:
            self.entry.state = "stopped"
            self.suspended = False
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


_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _decoder(message_type: type[Any]) -> msgspec.json.Decoder[Any]:
    """The JSON decoder of one message type (built once; a race builds an equal one)."""
    decoder = _decoders.get(message_type)
    if decoder is None:
        decoder = _decoders[message_type] = msgspec.json.Decoder(message_type)
    return decoder


def _embedded(raw: bytes) -> dict[str, Any]:
    """``raw`` (a message's JSON) to embed as is in a ``message.received`` event: it is
    encoded as that JSON object, and read back from the log as the dict it encodes."""
    return msgspec.Raw(raw)  # type: ignore[return-value]


def _unloggable(message: object, exc: Exception) -> Exception:
    """Why a message that cannot be logged faithfully is refused, as the sender is told."""
    if isinstance(exc, msgspec.ValidationError):
        kind = tag_of(type(message)) or type(message).__qualname__  # type: ignore[arg-type]
        refusal = TypeError(
            f"{kind} message does not match its own type ({exc}); the handler would get something its "
            f"reproduction cannot: build it with values of the declared field types"
        )
        refusal.__cause__ = exc
        return refusal
    return exc


def _reply(future: Future[Any] | None, result: Any) -> None:
    if future is not None and not future.done():
        future.set_result(result)


def _reply_error(future: Future[Any] | None, exc: BaseException) -> None:
    if future is not None and not future.done():
        future.set_exception(exc)
    elif future is None:
        logger.error("control operation failed with nobody waiting", exc_info=exc)
