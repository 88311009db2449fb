"""The error handler actor: assesses each reported failure and decides what to do about it.

For every failure it appends a ``failure.assessed`` event (severity) and a
``recovery.decided`` event (action), both carrying the failure's correlation and the
seq of its ``failure.raised`` event. Plugin failures go on to the supervisor; a task
run with retries gets the decision as the answer to its question.

Its assessments reach the error statistics as every fact does: the live statistics fold
them once the log has committed them, as replay does.
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

from actorlog.actors.assessment import (
    assessed_event,
    carried_out_as,
    decided_by_defaults,
    decided_event,
    failure_of,
)
from actorlog.actors.error_policy import Decision, ErrorPolicy, Failure, Handler, as_decision, lookup
from actorlog.actors.error_policy import qualified_name
from actorlog.actors.failures import record_failure
from actorlog.actors.protocol import CarryOut, ReportFailure
from actorlog.actors.router import Router
from actorlog.actors.tracebacks import fit_texts, safe_str
from actorlog.events import FailureAssessed, RecoveryDecided, Severity

logger = logging.getLogger(__name__)

ACTOR = "errors"

MAX_RETRY_DELAY = 60.0
"""Seconds: a longer retry delay decided is carried out as this one (as the supervisor did)."""

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
        logger.error("the error handler ignored a %s", type(message).__qualname__)
        return None

    # -- deciding ------------------------------------------------------------------------

    def _handle(self, report: ReportFailure) -> Decision:
        exc = report.exception
        severity = self.severities.severity_of(exc)
        refs = {"failure_seq": report.failure} if report.failure is not None else None
        limit = self.store.max_payload_bytes  # texts are cut to fit the log; the policy sees exc itself
        assessed = assessed_event(report, severity, limit)
        together = isinstance(self.policy, ErrorPolicy) and decided_by_defaults(self.policy, exc)
        if not together:  # a handler of the user's may take its time, and append events of its own
            self.store.append(assessed, actor=ACTOR, correlation=report.correlation, refs=refs)
        try:
            decision = self._decide(report, severity)
        except BaseException:
            if together:
                self.store.append(assessed, actor=ACTOR, correlation=report.correlation, refs=refs)
            raise
        decided = decided_event(report, decision, severity, limit)
        if together:  # one failure's assessment and decision are committed in one transaction
            self.store.append_together([(assessed, refs), (decided, refs)], actor=ACTOR, correlation=report.correlation)
        else:
            self.store.append(decided, actor=ACTOR, correlation=report.correlation, refs=refs)
        self._carry_out(report, decision, decided.reason, severity)
        return decision

    def _carry_out(self, report: ReportFailure, decision: Decision, reason: str, severity: Severity) -> None:
        """Hand the decision to the supervisor, which carries decisions out one at a time in the
        order they arrive (a task's caller has its decision as its answer, unless it escalates)."""
        if report.where == "task" and decision.action != "escalate":
            return
        self.supervisor.tell(
            CarryOut(
                plugin=report.plugin, action=decision.action, reason=reason, delay=decision.delay,
                severity=severity, correlation=report.correlation, exc_type=qualified_name(report.exception),
            )
        )

    def _decide(self, report: ReportFailure, severity: Severity) -> Decision:
        decision = self._custom(report) if not isinstance(self.policy, ErrorPolicy) else self._policy(report, severity)
        return carried_out_as(report, decision, self.severities.max_redeliveries)

    def _policy(self, report: ReportFailure, severity: Severity) -> Decision:
        policy = self.policy
        assert isinstance(policy, ErrorPolicy)
        failure = failure_of(report, severity)
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
        return decision if decision is not None else policy.default(failure)

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
            return self.severities.default(failure_of(report, severity))

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop

_RAISED = object()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable
