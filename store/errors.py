"""Errors raised by the event store. Each names the file, the problem and what to do."""

from __future__ import annotations

from actorlog.events.errors import ActorlogError


class StoreError(ActorlogError):
    """Base class of event-store errors."""


class NotAnEventLogError(StoreError, ValueError):
    """The path is missing, a directory, not SQLite, or SQLite without actorlog's schema."""


class SchemaVersionError(StoreError):
    """The log was written by a newer actorlog schema than this code reads."""


class StoreLockedError(StoreError, TimeoutError):
    """Another connection held the log's lock for longer than the busy timeout."""


class PayloadTooLargeError(StoreError, ValueError):
    """An event's encoded payload exceeds the store's ``max_payload_bytes``."""


class ReadOnlyError(StoreError, PermissionError):
    """A write was attempted on a store opened read-only."""


class StoreClosedError(StoreError):
    """The store was used after `EventStore.close`."""


class StoreWriteError(StoreError, OSError):
    """Committing to the log failed (disk full, I/O error, lock timeout); nothing after it is written."""
