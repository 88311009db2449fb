"""How failures are assessed and what is done about them.

::

    policy = ErrorPolicy(severities={PaymentDeclined: "medium"})

    @policy.handler(ConnectionError)        # also ConnectionResetError; the most specific wins
    async def reconnect(failure: Failure) -> Decision:
        return Decision("retry", delay=2.0, reason="transient network error")

    ActorSystem("app.db", error_policy=policy)

For each failure the error handler assesses its severity, then asks the handler
registered for the exception's type (looked up along its MRO), then the recovery
strategy registered for it, and otherwise applies the default for the severity:
critical escalates, high restarts the plugin, medium and low continue. A handler or
strategy returns a `Decision`, an action name, or None to pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import msgspec

from actorlog.actors.errors import UnhealthyError
from actorlog.actors.tracebacks import safe_str
from actorlog.events import RecoveryAction, Severity

DEFAULT_SEVERITIES: dict[type[BaseException], Severity] = {
    SystemExit: "critical",
    KeyboardInterrupt: "critical",
    MemoryError: "high",
    OSError: "high",
    UnhealthyError: "high",
    ValueError: "medium",
    TypeError: "medium",
}
"""The built-in severity of exception types; anything else is low. A failed health
check (`UnhealthyError`) is high, so by default the plugin is restarted."""

DEFAULT_ACTIONS: dict[Severity, RecoveryAction] = {
    "critical": "escalate",
    "high": "restart",
    "medium": "continue",
    "low": "continue",
}
"""The default action for a plugin's failure of each severity."""

ACTIONS: frozenset[str] = frozenset({"continue", "retry", "restart", "restart_with_dependents", "stop", "escalate"})


class Decision(msgspec.Struct, frozen=True):
    """What to do about a failure: an action, an optional delay (for retry), and why."""

    action: RecoveryAction
    delay: float = 0.0
    reason: str = ""


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    """What handlers and strategies are told about a failure."""

    plugin: str
    exception: BaseException
    severity: Severity
    where: str
    correlation: str | None
    attempt: int | None = None
    """For a task run with retries: the attempt that failed (1 for the first); for a handler:
    how many times the failed message was delivered (1, then more after retry decisions)."""
    retry_delay: float | None = None
    """For a task: the backoff delay before the next attempt, or None when its policy would not retry."""
    retries_left: bool = False
    """For a task: whether another attempt is allowed (attempts and deadline); a retry
    decided when none is left is turned into a stop."""


Outcome = Decision | RecoveryAction | None
Handler = Callable[[Failure], Outcome | Awaitable[Outcome]]
"""A handler or recovery strategy: plain or ``async``; returns a decision or None to pass."""

H = TypeVar("H", bound=Handler)


def qualified_name(exc: BaseException) -> str:
    """``module.QualName`` of an exception's type (``builtins.ValueError``)."""
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def lookup(table: Mapping[type[BaseException], Any], exc_type: type[BaseException]) -> Any:
    """The value registered for ``exc_type`` or its nearest base along the MRO, or None."""
    for klass in exc_type.__mro__:
        if klass in table:
            return table[klass]
    return None


class ErrorPolicy:
    """Severities, per-type handlers and recovery strategies, and default actions.

    A ``retry`` decision about a handler's failure delivers the failed message to the
    plugin again after the decision's delay, at most ``max_redeliveries`` times; an asked
    message is not delivered again (its sender already has the exception), so a retry of
    it is carried out as ``continue``.
    """

    def __init__(
        self,
        *,
        severities: Mapping[type[BaseException], Severity] | None = None,
        handlers: Mapping[type[BaseException], Handler] | None = None,
        strategies: Mapping[type[BaseException], Handler] | None = None,
        actions: Mapping[Severity, RecoveryAction] | None = None,
        max_redeliveries: int = 3,
    ) -> None:
        if type(max_redeliveries) is not int or max_redeliveries < 0:
            raise ValueError(f"max_redeliveries must be an int >= 0, got {max_redeliveries!r}")
        self.max_redeliveries = max_redeliveries
        """How many times a ``retry`` decision delivers one failed told message again; then it continues."""
        self.severities: dict[type[BaseException], Severity] = {**DEFAULT_SEVERITIES, **(severities or {})}
        self.handlers: dict[type[BaseException], Handler] = dict(handlers or {})
        self.strategies: dict[type[BaseException], Handler] = dict(strategies or {})
        self.actions: dict[Severity, RecoveryAction] = {**DEFAULT_ACTIONS, **(actions or {})}
        for severity, action in self.actions.items():
            if action not in ACTIONS:
                raise ValueError(f"unknown action {action!r} for severity {severity!r}; choose from {sorted(ACTIONS)}")

    def severity_of(self, exc: BaseException) -> Severity:
        """The severity of an exception: the nearest registered type along its MRO, else low."""
        found: Severity | None = lookup(self.severities, type(exc))
        return found or "low"

    def handler(self, exc_type: type[BaseException]) -> Callable[[H], H]:
        """Decorator: register a handler for ``exc_type`` and its subclasses."""

        def register(function: H) -> H:
            self.handlers[exc_type] = function
            return function

        return register

    def strategy(self, exc_type: type[BaseException]) -> Callable[[H], H]:
        """Decorator: register a recovery strategy for ``exc_type`` and its subclasses."""

        def register(function: H) -> H:
            self.strategies[exc_type] = function
            return function

        return register

    def default(self, failure: Failure) -> Decision:
        """The decision when no handler or strategy decides."""
        severity = failure.severity
        what = f"{qualified_name(failure.exception)}: {safe_str(failure.exception)}"
        if failure.where == "task":
            if severity == "critical":
                return Decision("escalate", reason=f"critical failure of a task ({what})")
            if failure.retry_delay is not None:
                return Decision("retry", delay=failure.retry_delay, reason=f"attempt {failure.attempt} failed; backing off")
            return Decision("stop", reason="no retry left for this task")
        return Decision(self.actions[severity], reason=f"default for {severity} severity ({what})")


def as_decision(outcome: Any, source: str) -> Decision | None:
    """Normalise what a handler returned; raise `TypeError` for anything else."""
    if outcome is None or isinstance(outcome, Decision):
        return outcome
    if isinstance(outcome, str) and outcome in ACTIONS:
        return Decision(outcome, reason=f"chosen by {source}")  # type: ignore[arg-type]
    raise TypeError(f"{source} returned {outcome!r}; return a Decision, an action name ({', '.join(sorted(ACTIONS))}) or None")

