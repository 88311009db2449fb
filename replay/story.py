"""Following one correlation id: a message's or a failure's whole story, in order."""

from __future__ import annotations

import os

from actorlog.store import EventRecord, EventStore


def story(log: str | os.PathLike[str] | EventStore, correlation: str) -> list[EventRecord]:
    """Every event carrying ``correlation``, in log order (a path is opened read-only).

    For a failure that is the message received, ``failure.raised``, ``failure.assessed``,
    ``recovery.decided`` and what the supervisor did; for a task run with retries, every
    attempt, retry and the final outcome.
    """
    if isinstance(log, EventStore):
        return list(log.events(correlation=correlation, lenient=True))
    with EventStore.open_readonly(log) as store:
        return list(store.events(correlation=correlation, lenient=True))
