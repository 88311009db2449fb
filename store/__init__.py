"""The event log (an SQLite file, or a PostgreSQL schema): schema, the single writer, readers and verification."""

from actorlog.store.chain import row_hash
from actorlog.store.errors import (
    MissingDependencyError,
    NotAnEventLogError,
    NotWritableError,
    PayloadTooLargeError,
    ReadOnlyError,
    SchemaVersionError,
    StoreClosedError,
    StoreError,
    StoreLockedError,
    StoreReadError,
    StoreWriteError,
)
from actorlog.store.event_store import DEFAULT_MAX_PAYLOAD_BYTES, EventStore, Synchronous, new_run_id
from actorlog.store.copy import CopyReport, copy_log
from actorlog.store.location import LogLocation, parse_location
from actorlog.store.query import EventFilter
from actorlog.store.records import Commit, EventRecord
from actorlog.store.schema import SCHEMA_VERSION
from actorlog.store.verify import VerifyReport
from actorlog.store.rows import Ticket

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "SCHEMA_VERSION",
    "Commit",
    "CopyReport",
    "EventFilter",
    "EventRecord",
    "EventStore",
    "LogLocation",
    "MissingDependencyError",
    "NotAnEventLogError",
    "NotWritableError",
    "PayloadTooLargeError",
    "ReadOnlyError",
    "SchemaVersionError",
    "Ticket",
    "StoreClosedError",
    "StoreError",
    "StoreLockedError",
    "StoreReadError",
    "StoreWriteError",
    "Synchronous",
    "VerifyReport",
    "copy_log",
    "new_run_id",
    "parse_location",
    "row_hash",
]
