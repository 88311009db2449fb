"""Errors raised by the event store. Each names the file, the problem and what to do."""

from __future__ import annotations

import os
import sqlite3

from actorlog.events.errors import ActorlogError


class StoreError(ActorlogError):
    """Base class of event-store errors."""


class NotAnEventLogError(StoreError, ValueError):
    """The path is missing, a directory, not SQLite, or SQLite without actorlog's schema."""


class SchemaVersionError(StoreError):
    """The log was written by a newer actorlog schema than this code reads."""


class NotWritableError(StoreError, PermissionError):
    """The log, or the directory SQLite must create its write-ahead files in, cannot be written
    by this process (permissions, an immutable file, a read-only file system)."""


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


class StoreReadError(StoreError, OSError):
    """Reading the log failed: the file is damaged, unreadable, or vanished from under SQLite."""


_DAMAGED = ("malformed", "not a database", "corrupt")


def is_damage(error: BaseException) -> bool:
    """Whether a store error (or the SQLite error it wraps) says the file is damaged."""
    source = error.__cause__ if isinstance(error.__cause__, sqlite3.Error) else error
    return any(word in str(source).lower() for word in _DAMAGED)


def read_error(path: str | os.PathLike[str], exc: sqlite3.Error, doing: str) -> StoreError:
    """The store error for an SQLite error met while ``doing`` something with the log at ``path``."""
    message = str(exc)
    if "locked" in message.lower() or "busy" in message.lower():
        error: StoreError = StoreLockedError(
            f"event log {str(path)!r} stayed locked by another connection for longer than the busy timeout "
            f"while {doing}; retry later or open the log with a larger busy_timeout"
        )
    elif any(word in message.lower() for word in _DAMAGED):
        error = StoreReadError(
            f"event log {str(path)!r} is damaged: SQLite found {message!r} while {doing}; restore it "
            f"from a backup, or recover what SQLite can with: sqlite3 {str(path)!r} .recover"
        )
    else:
        error = StoreReadError(f"event log {str(path)!r} could not be read while {doing}: {message}")
    error.__cause__ = exc
    return error


def one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped as repr does: an error
    message about a name holding a line break is still one line."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


class MissingDependencyError(StoreError, ImportError):
    """A log needs an optional dependency that is not installed (psycopg for PostgreSQL)."""
