"""Copying a log verbatim to another backend: every row's seq, ts, payload text and hash kept,
so the copy verifies with the same chain (and the same signed checkpoints)."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from actorlog.store.backend import open_backend
from actorlog.store.errors import StoreWriteError
from actorlog.store.event_store import EventStore
from actorlog.store.location import parse_location

COPY_CHUNK_ROWS = 5000


class CopyReport(msgspec.Struct, frozen=True, kw_only=True):
    """What `copy_log` copied: events, snapshots, and the last row's seq and hash on both sides."""

    events: int
    snapshots: int
    last_seq: int
    last_hash: str


def copy_log(
    source: EventStore, target: str, *, busy_timeout: float = 5.0, progress: Callable[[int], None] | None = None
) -> CopyReport:
    """Copy every committed row of ``source`` into the empty log at ``target`` (a path or a
    ``postgresql://`` URL; created if need be), in one transaction: the copy is whole or absent.

    ``progress`` is called with the number of rows copied after each chunk. Raises
    `ValueError` when the target already holds events, and `StoreWriteError` when writing
    fails (nothing of the copy is then left in the target).
    """
    location = parse_location(target)
    reader, writer = open_backend(location, readonly=False, busy_timeout=busy_timeout, run="copy")
    assert writer is not None
    reader.close()
    copied = snapshots = 0
    last_seq, last_hash = 0, ""
    try:
        writer.open()
        seq, _ = writer.begin()
        if seq != 0:
            raise ValueError(f"{location.display!r} already holds events (up to seq {seq}); copy into a new, "
                             f"empty log")
        chunk: list[object] = []
        for row in source.rows():
            chunk.extend(row)
            copied += 1
            last_seq, last_hash = int(row[0]), str(row[8])
            if len(chunk) >= COPY_CHUNK_ROWS * 9:
                writer.insert(chunk)
                chunk = []
                if progress is not None:
                    progress(copied)
        if chunk:
            writer.insert(chunk)
        for projection, version, position, run, created_at, state in source.query(
            "SELECT projection, version, position, run, created_at, state FROM snapshots ORDER BY id",
            doing="reading the snapshots",
        ) if source.has_table("snapshots") else []:
            writer.insert_snapshot(projection, version, position, run, created_at, state)
            snapshots += 1
        writer.commit(last_seq)
    except (ValueError, StoreWriteError):
        writer.rollback()
        raise
    except Exception as exc:
        writer.rollback()
        raise StoreWriteError(f"copying into {location.display!r} failed: {writer.describe(exc)}; nothing was "
                              f"copied. {writer.advice()}") from exc
    finally:
        writer.close()
    if progress is not None:
        progress(copied)
    return CopyReport(events=copied, snapshots=snapshots, last_seq=last_seq, last_hash=last_hash)
