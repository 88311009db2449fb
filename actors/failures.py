"""Recording a failure: the ``failure.raised`` event every failing part of the system appends."""

from __future__ import annotations

from actorlog.actors.error_policy import qualified_name
from actorlog.actors.tracebacks import format_traceback
from actorlog.events import FailureRaised
from actorlog.store import EventStore, Ticket


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
    """Append a ``failure.raised`` event for ``exc`` (the trigger's seq is filled in at commit)."""
    return store.append(
        FailureRaised(
            plugin=plugin, exc_type=qualified_name(exc), message=str(exc),
            traceback=format_traceback(exc),
        ),
        actor=actor, correlation=correlation, ts=failed_at,
        refs={"trigger_seq": trigger} if trigger is not None else None,
    )
