"""The two events that assess and decide one failure, and the decision as it can be carried out.

Shared by the error handler actor and by a plugin's actor, which decides a failure of its
own handler where it happened when the policy's defaults decide it and the decision needs
no supervisor (`decide_here`): the same events, built by the same code, either way.
"""

from __future__ import annotations

import time

import msgspec

from actorlog.actors.error_policy import Decision, ErrorPolicy, Failure, lookup, qualified_name
from actorlog.actors.protocol import ReportFailure
from actorlog.actors.tracebacks import fit_texts, safe_str
from actorlog.events import FailureAssessed, RecoveryDecided, Severity

LOCAL_ACTIONS = frozenset({"continue", "retry"})
"""Decisions a plugin's actor carries out by itself: nothing about them is the supervisor's."""


def assessed_event(report: ReportFailure, severity: Severity, limit: int) -> FailureAssessed:
    """The ``failure.assessed`` event of a reported failure, its message cut to fit ``limit``."""
    exc = report.exception
    assessed, truncated = fit_texts(
        FailureAssessed(
            plugin=report.plugin, exc_type=qualified_name(exc), message=safe_str(exc), severity=severity,
            failed_at=report.failed_at if report.failed_at is not None else time.time(),
        ),
        ("message",), limit,
    )
    return msgspec.structs.replace(assessed, truncated=True) if truncated else assessed


def decided_event(report: ReportFailure, decision: Decision, severity: Severity, limit: int) -> RecoveryDecided:
    """The ``recovery.decided`` event of a decision, its reason cut to fit ``limit``."""
    return fit_texts(
        RecoveryDecided(
            plugin=report.plugin, action=decision.action, delay=decision.delay, reason=decision.reason,
            severity=severity,
        ),
        ("reason",), limit,
    )[0]


def decided_by_defaults(policy: ErrorPolicy, exc: BaseException) -> bool:
    """Whether no handler or strategy of the user's is registered for ``exc``: the policy's
    defaults decide (quickly, appending nothing of their own)."""
    exc_type = type(exc)
    return lookup(policy.handlers, exc_type) is None and lookup(policy.strategies, exc_type) is None


def failure_of(report: ReportFailure, severity: Severity) -> Failure:
    """What handlers, strategies and defaults are told about a reported failure."""
    return Failure(
        plugin=report.plugin, exception=report.exception, severity=severity, where=report.where,
        correlation=report.correlation, attempt=report.attempt, retry_delay=report.retry_delay,
        retries_left=report.retries_left,
    )


def carried_out_as(report: ReportFailure, decision: Decision, max_redeliveries: int) -> Decision:
    """The decision as it can be carried out for this failure (the one that is logged)."""
    if report.where == "task" and decision.action == "retry" and not report.retries_left:
        decision = Decision("stop", reason=f"{decision.reason or 'retry chosen'}, but no retry is left")
    if report.where == "handler" and decision.action == "retry":
        chosen = decision.reason or "retry chosen"
        if report.asked:
            decision = Decision("continue", reason=f"{chosen}; the message was asked, so its sender has the "
                                                   f"exception and it is not delivered again")
        elif (report.attempt or 1) > max_redeliveries:
            decision = Decision("continue", reason=f"{chosen}; delivered {report.attempt} times, so it is not "
                                                   f"delivered again (max_redeliveries)")
    if report.where in ("start", "restart") and decision.action in ("continue", "retry"):
        # its start failed: there is no instance to go on with, so the only way on is another start
        decision = Decision(
            "restart", reason=f"{decision.reason}; its start failed, so it is restarted (within the restart limit)"
        )
    return decision


def decide_here(policy: ErrorPolicy | None, report: ReportFailure) -> tuple[Severity, Decision] | None:
    """The severity and decision of a plugin's handler failure when its own actor can carry
    it out (the policy's defaults decide, and decide continue or retry); else None (the
    error handler decides, and the supervisor carries out what it must)."""
    if policy is None or report.where != "handler" or not decided_by_defaults(policy, report.exception):
        return None
    severity = policy.severity_of(report.exception)
    if policy.actions[severity] not in LOCAL_ACTIONS:
        return None
    decision = carried_out_as(report, policy.default(failure_of(report, severity)), policy.max_redeliveries)
    return (severity, decision) if decision.action in LOCAL_ACTIONS else None
