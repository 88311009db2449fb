"""Rows on their way to the writer: pending rows, batches of them, and tickets for their seqs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

PendingRow = list[Any]
"""``[None, ts, run, actor, kind, version, correlation, payload, content]``: a row in column
order before the writer fills in its seq (first) and replaces the hashed content by the hash (last)."""

Reencode = Callable[[Any, PendingRow], tuple[str, bytes]]
"""Re-encodes an event for a pending row: returns the new payload text and hashed content."""


class Ticket:
    """Where an appended row will land: ``seq`` is None until the writer assigns it."""

    __slots__ = ("_row",)

    def __init__(self, row: PendingRow) -> None:
        self._row = row

    @property
    def seq(self) -> int | None:
        """The row's seq once assigned (inside its write transaction), else None."""
        seq: int | None = self._row[0]
        return seq

    @property
    def ts(self) -> float:
        """The row's time, as it is logged."""
        ts: float = self._row[1]
        return ts

    def __repr__(self) -> str:
        return f"<Ticket seq={self.seq}>"


class DeferredRow(list[Any]):
    """A pending row whose event refers to the seq of rows appended before it.

    ``resolve`` runs in the writer, in order, when those seqs are known: it sets the
    referring fields and re-encodes the payload. Appending still validated the event with
    the fields unset, so resolving cannot fail on the event's own data.

    Resolving is on the writer's thread, the one every append waits for, so it splices the
    seqs into the payload where it can (`_splice_points`) instead of encoding the event again.
    """

    def __init__(self, row: PendingRow, event: Any, refs: dict[str, Ticket], encode: Reencode) -> None:
        super().__init__(row)
        self._event = event
        self._refs = refs
        self._encode = encode
        self._splice = _splice_points(row[7], event, refs)

    def resolve(self) -> None:
        """Fill in the referred seqs and re-encode the payload (called by the writer)."""
        changes = {name: ticket.seq for name, ticket in self._refs.items() if ticket.seq is not None}
        if not changes:
            return
        splice = self._splice
        if splice is None:
            self[7], self[8] = self._encode(msgspec.structs.replace(self._event, **changes), self)
            return
        pieces, names = splice
        parts = [pieces[0]]
        for name, piece in zip(names, pieces[1:]):
            seq = changes.get(name)
            parts += ("null" if seq is None else str(seq), piece)
        payload = "".join(parts)
        old: bytes = self[8]
        self[7] = payload
        self[8] = old[: old.index(b"\n") + 1] + payload.encode()  # the header holds no newline


def _splice_points(payload: str, event: Any, refs: dict[str, Ticket]) -> tuple[list[str], list[str]] | None:
    """``payload`` cut just before and after the ``null`` of each referring field, and the
    fields in the order they appear; None if that cannot be done safely (then `resolve`
    encodes the event again).

    Safe when each field is None now and its key, followed by ``null``, occurs exactly once:
    the encoder writes every field (``omit_defaults`` off), compact, and a key inside a JSON
    string would have its quotes escaped, so that one occurrence is the field itself. An int
    spliced in reads as the encoder would have written it.
    """
    cls = type(event)
    config = getattr(cls, "__struct_config__", None)
    if config is None or config.omit_defaults:
        return None
    encode_names = _encode_names(cls)
    found: list[tuple[int, str, int]] = []
    for name in refs:
        key = encode_names.get(name)
        if key is None or getattr(event, name, 0) is not None:
            return None
        needle = f'"{key}":null'
        at = payload.find(needle)
        if at < 0 or payload.find(needle, at + 1) >= 0:
            return None
        start = at + len(needle) - 4
        found.append((start, name, start + 4))
    found.sort()
    pieces: list[str] = []
    position = 0
    for start, _, end in found:
        pieces.append(payload[position:start])
        position = end
    pieces.append(payload[position:])
    return pieces, [name for _, name, _ in found]


_encode_names_of: dict[type[Any], dict[str, str]] = {}


def _encode_names(cls: type[Any]) -> dict[str, str]:
    """Each field's name in the JSON (a struct may rename them), built once per type."""
    names = _encode_names_of.get(cls)
    if names is None:
        names = _encode_names_of[cls] = {f.name: f.encode_name for f in msgspec.structs.fields(cls)}
    return names


class Batch(list[PendingRow]):
    """Several pending rows sent to the writer as one item."""
