"""The error handler actor: assesses each reported failure and decides what to do about it.

For every failure it appends a ``failure.assessed`` event (severity) and a
``recovery.decided`` event (action), both carrying the failure's correlation and the
seq of its ``failure.raised`` event. Plugin failures go on to the supervisor; a task
run with retries gets the decision as the answer to its question.

Its error statistics are an `ErrorStatistics` projection fed with the very assessments
it emits, so they equal what replay rebuilds from the log.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pykka

from actorlog.actors.error_policy import Decision, ErrorPolicy, Failure, Handler, as_decision, lookup
from actorlog.actors.error_policy import qualified_name
from actorlog.actors.plugin_actor import record_failure
from actorlog.actors.protocol import CarryOut, GetErrorStatistics, ReportFailure
from actorlog.actors.router import Router
from actorlog.actors.tracebacks import fit_texts, safe_str
from actorlog.events import FailureAssessed, RecoveryDecided, Severity
from actorlog.replay.errors import ErrorStatistics, ErrorStatisticsSnapshot
from actorlog.store import EventRecord, Ticket

logger = logging.getLogger(__name__)

ACTOR = "errors"

Policy = Callable[[ReportFailure], "CarryOut | Decision"]
"""A low-level decision function, for full control: it replaces handlers, strategies and defaults."""


class ErrorHandler(pykka.ThreadingActor):
    """Assesses failures, decides with an `ErrorPolicy` (or a `Policy` function), records both."""

    use_daemon_thread = True

    def __init__(self, router: Router, supervisor: pykka.ActorRef[Any], policy: ErrorPolicy | Policy) -> None:
        super().__init__()
        self.router = router
        self.store = router.store
        self.supervisor = supervisor
        self.policy = policy
        self.severities = policy if isinstance(policy, ErrorPolicy) else ErrorPolicy()
        self.statistics = ErrorStatistics()
        self._unapplied: list[tuple[Ticket, FailureAssessed, Ticket | None, str | None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def on_stop(self) -> None:
        if self._loop is not None:
            self._loop.close()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ReportFailure):
            # Often a tell: raising here would make pykka stop the error handler.
            try:
                return self._handle(message)
            except BaseException as exc:  # noqa: BLE001 - the failure path itself failed (the log is broken)
                logger.exception("the error handler could not decide on a failure of %r", message.plugin)
                reason = f"the error handler could not record its decision: {qualified_name(exc)}: {exc}"
                self.supervisor.tell(
                    CarryOut(plugin=message.plugin, action="escalate", reason=reason, correlation=message.correlation)
                )
                return Decision("escalate", reason=reason)
        if isinstance(message, GetErrorStatistics):
            return self._statistics(message.recent)  # always asked: an error goes to the asker
        logger.error("the error handler ignored a %s", type(message).__qualname__)
        return None

    # -- deciding ------------------------------------------------------------------------

    def _handle(self, report: ReportFailure) -> Decision:
        exc = report.exception
        severity = self.severities.severity_of(exc)
        refs = {"failure_seq": report.failure} if report.failure is not None else None
        limit = self.store.max_payload_bytes  # texts are cut to fit the log; the policy sees exc itself
        assessed, truncated = fit_texts(
            FailureAssessed(
                plugin=report.plugin, exc_type=qualified_name(exc), message=safe_str(exc), severity=severity,
                failed_at=report.failed_at if report.failed_at is not None else time.time(),
            ),
            ("message",), limit,
        )
        if truncated:
            assessed = msgspec.structs.replace(assessed, truncated=True)
        self._fold_committed()
        ticket = self.store.append(assessed, actor=ACTOR, correlation=report.correlation, refs=refs)
        self._unapplied.append((ticket, assessed, report.failure, report.correlation))
        decision = self._decide(report, severity)
        decided, _ = fit_texts(
            RecoveryDecided(
                plugin=report.plugin, action=decision.action, delay=decision.delay, reason=decision.reason,
                severity=severity,
            ),
            ("reason",), limit,
        )
        self.store.append(decided, actor=ACTOR, correlation=report.correlation, refs=refs)
        if report.where != "task" or decision.action == "escalate":
            self.supervisor.tell(
                CarryOut(
                    plugin=report.plugin, action=decision.action, reason=decided.reason, delay=decision.delay,
                    severity=severity, correlation=report.correlation, exc_type=qualified_name(exc),
                )
            )
        return decision

    def _decide(self, report: ReportFailure, severity: Severity) -> Decision:
        if not isinstance(self.policy, ErrorPolicy):
            return self._custom(report)
        policy = self.policy
        failure = Failure(
            plugin=report.plugin, exception=report.exception, severity=severity, where=report.where,
            correlation=report.correlation, attempt=report.attempt, retry_delay=report.retry_delay,
            retries_left=report.retries_left,
        )
        decision = None
        for table, kind in ((policy.handlers, "handler"), (policy.strategies, "recovery strategy")):
            function: Handler | None = lookup(table, type(report.exception))
            if function is None:
                continue
            outcome = self._consult(function, failure, f"{kind} {getattr(function, '__qualname__', function)!r}")
            if outcome is _RAISED:
                decision = None
                break  # a handler that raised: the default policy applies
            if outcome is not None:
                decision = outcome
                break
        if decision is None:
            decision = policy.default(failure)
        if report.where == "task" and decision.action == "retry" and not report.retries_left:
            decision = Decision("stop", reason=f"{decision.reason or 'retry chosen'}, but no retry is left")
        if report.where in ("start", "restart") and decision.action in ("continue", "retry"):
            # its start failed: there is no instance to go on with, so the only way on is another start
            decision = Decision(
                "restart", reason=f"{decision.reason}; its start failed, so it is restarted (within the restart limit)"
            )
        return decision

    def _consult(self, function: Handler, failure: Failure, source: str) -> Any:
        try:
            outcome = function(failure)
            if inspect.isawaitable(outcome):
                outcome = self._event_loop().run_until_complete(_awaited(outcome))
            return as_decision(outcome, source)
        except BaseException as exc:  # noqa: BLE001 - not even SystemExit from a handler may take it down
            record_failure(
                self.store, ACTOR, exc, actor=ACTOR, correlation=failure.correlation,
            )
            logger.warning("%s raised while handling %s", source, qualified_name(failure.exception), exc_info=exc)
            return _RAISED

    def _custom(self, report: ReportFailure) -> Decision:
        try:
            result = self.policy(report)  # type: ignore[operator]
            if isinstance(result, CarryOut):
                return Decision(result.action, delay=result.delay, reason=result.reason)
            if isinstance(result, Decision):
                return result
            raise TypeError(f"error policy returned {result!r}; return a Decision or CarryOut")
        except BaseException as exc:  # noqa: BLE001 - not even SystemExit from a policy may take it down
            record_failure(self.store, ACTOR, exc, actor=ACTOR, correlation=report.correlation)
            logger.warning("error policy raised; the default policy applies", exc_info=exc)
            severity = self.severities.severity_of(report.exception)
            failure = Failure(
                plugin=report.plugin, exception=report.exception, severity=severity, where=report.where,
                correlation=report.correlation, attempt=report.attempt, retry_delay=report.retry_delay,
                retries_left=report.retries_left,
            )
            return self.severities.default(failure)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop

    # -- statistics ----------------------------------------------------------------------

    def _statistics(self, recent: int) -> ErrorStatisticsSnapshot:
        """Fold the assessments made so far (once their seqs are known) and report."""
        if self._unapplied:
            self.store.flush()
            self._fold_committed()
        return self.statistics.snapshot(recent)

    def _fold_committed(self) -> None:
        """Apply the oldest assessments whose seqs are known, in order, and forget them, so
        memory holds only what the store has not committed yet."""
        done = 0
        for ticket, assessed, failure, correlation in self._unapplied:
            if ticket.seq is None or (failure is not None and failure.seq is None):
                break
            event = msgspec.structs.replace(assessed, failure_seq=failure.seq if failure is not None else None)
            self.statistics.apply(
                EventRecord(
                    seq=ticket.seq, ts=0.0, run=self.store.run, actor=ACTOR, kind="failure.assessed",
                    version=FailureAssessed.version, correlation=correlation, event=event, hash="",
                )
            )
            done += 1
        del self._unapplied[:done]


_RAISED = object()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
