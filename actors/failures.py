"""Recording a failure: the ``failure.raised`` event every failing part of the system appends."""

from __future__ import annotations

import msgspec

from actorlog.actors.error_policy import qualified_name
from actorlog.actors.tracebacks import fit_texts, format_traceback, safe_str
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
