"""The error handler actor: decides what to do about each reported failure.

Every decision is a ``recovery.decided`` event carrying the failure's correlation and
the seq of its ``failure.raised`` event; the supervisor then carries it out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pykka

from actorlog.actors.plugin_actor import qualified_name
from actorlog.actors.protocol import CarryOut, ReportFailure
from actorlog.actors.router import Router
from actorlog.events import RecoveryDecided

logger = logging.getLogger(__name__)

ACTOR = "errors"

Policy = Callable[[ReportFailure], CarryOut]
"""Turns a failure report into a decision."""


def restart_one_for_one(report: ReportFailure) -> CarryOut:
    """The default policy: restart the failed plugin alone; escalate what is not an `Exception`
    (``SystemExit``, ``KeyboardInterrupt``), which asks the whole process to stop."""
    exc = report.exception
    if not isinstance(exc, Exception):
        return CarryOut(
            plugin=report.plugin, action="escalate", severity="critical",
            reason=f"{qualified_name(exc)} is not an Exception", correlation=report.correlation,
        )
    return CarryOut(
        plugin=report.plugin, action="restart", reason=f"{qualified_name(exc)}: default policy restarts one-for-one",
        correlation=report.correlation,
    )


class ErrorHandler(pykka.ThreadingActor):
    """Decides on failures with a policy, records each decision, and hands it to the supervisor."""

    use_daemon_thread = True

    def __init__(self, router: Router, supervisor: pykka.ActorRef[Any], policy: Policy = restart_one_for_one) -> None:
        super().__init__()
        self.router = router
        self.supervisor = supervisor
        self.policy = policy

    def on_receive(self, message: Any) -> Any:
        if not isinstance(message, ReportFailure):
            raise TypeError(f"the error handler does not handle {type(message).__qualname__}")
        try:
            decision = self.policy(message)
        except Exception as exc:  # noqa: BLE001 - a broken policy must not take the error handler down
            logger.exception("error policy raised; falling back to the default")
            decision = restart_one_for_one(message)
            decision = CarryOut(
                plugin=decision.plugin, action=decision.action, correlation=decision.correlation,
                reason=f"policy raised {qualified_name(exc)}; default: {decision.reason}",
            )
        self.router.store.append(
            RecoveryDecided(
                plugin=decision.plugin, action=decision.action, delay=decision.delay, reason=decision.reason,
                severity=decision.severity,
            ),
            actor=ACTOR, correlation=message.correlation,
            refs={"failure_seq": message.failure} if message.failure is not None else None,
        )
        self.supervisor.tell(decision)
        return None
