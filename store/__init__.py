"""The SQLite event log: schema, the single-writer store actor, readers and verification."""

from actorlog.store.chain import row_hash
from actorlog.store.errors import (
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
from actorlog.store.query import EventFilter
from actorlog.store.records import Commit, EventRecord
from actorlog.store.schema import SCHEMA_VERSION
from actorlog.store.verify import VerifyReport
from actorlog.store.rows import Ticket

__all__ = [
    "DEFAULT_MAX_PAYLOAD_BYTES",
    "SCHEMA_VERSION",
    "Commit",
    "EventFilter",
    "EventRecord",
    "EventStore",
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
    "new_run_id",
    "row_hash",
]
