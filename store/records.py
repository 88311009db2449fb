"""What reading the log yields: one stored event with its envelope columns."""

from __future__ import annotations

from typing import Any

import msgspec

from actorlog.events import DecodeError, UnknownEvent
from actorlog.events.errors import shown


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the log: the typed ``event`` (or an `UnknownEvent` in lenient reads) and its columns."""

    seq: int
    ts: float
    run: str
    actor: str
    kind: str
    version: int
    correlation: str | None
    event: Any
    hash: str


class Commit(msgspec.Struct, frozen=True, kw_only=True):
    """What one COMMIT of a store wrote, as its subscribers get it."""

    records: list[EventRecord]
    """The committed records of the kinds the subscriber asked for, in seq order (empty for a
    subscriber that asked for rows, ``decoded=False``)."""
    last_seq: int
    """The seq of the last row of the commit (of any kind)."""
    newest_ts: float
    """The newest time among the commit's rows (of any kind)."""
    rows: list[tuple[Any, ...]] = []
    """For a subscriber that asked for rows (``decoded=False``): the committed rows of the kinds
    it asked for, undecoded, as ``(seq, ts, run, actor, kind, version, payload)`` in seq order,
    as `EventStore.fold_chunks` gives them (empty otherwise)."""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def column_problems(
    ts: Any, run: Any, actor: Any, kind: Any, version: Any, correlation: Any, digest: Any
) -> list[str]:
    """What is wrong with a row's columns (empty when each holds its declared type).

    The store never writes such a row; a foreign writer can, since SQLite keeps any value
    in any column (a BLOB, text in a number column).
    """
    problems = []
    if type(ts) is not float:
        problems.append(f"its time (ts) is {shown(ts)}, not a number")
    if type(version) is not int:
        problems.append(f"its version is {shown(version)}, not an integer")
    for name, value in (("run", run), ("actor", actor), ("kind", kind), ("hash", digest)):
        if type(value) is not str:
            problems.append(f"its {name} is {shown(value)}, not text")
    if correlation is not None and type(correlation) is not str:
        problems.append(f"its correlation is {shown(correlation)}, not text")
    return problems


def malformed_record(row: tuple[Any, ...], problems: list[str], *, lenient: bool) -> EventRecord:
    """A row whose columns do not hold their declared types: strict reads raise `DecodeError`
    naming its seq; lenient reads get a record of the declared types (unusable values become
    0, "" or None) carrying an `UnknownEvent` whose reason lists the problems."""
    seq, ts, run, actor, kind, version, correlation, payload, digest = row
    kind_text = _text(kind)
    problem = "its columns are malformed: " + "; ".join(problems)
    if not lenient:
        raise DecodeError(kind_text, version if type(version) is int else 0, seq, problem)
    try:
        raw: Any = msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError, TypeError):
        raw = _text(payload)
    return EventRecord(
        seq=seq, ts=ts if type(ts) is float else 0.0, run=_text(run), actor=_text(actor), kind=kind_text,
        version=version if type(version) is int else 0,
        correlation=None if correlation is None else _text(correlation),
        event=UnknownEvent(kind=kind_text, version=version if type(version) is int else 0, payload=raw, reason=problem),
        hash=_text(digest),
    )
