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
    """

    def __init__(self, row: PendingRow, event: Any, refs: dict[str, Ticket], encode: Reencode) -> None:
        super().__init__(row)
        self._event = event
        self._refs = refs
        self._encode = encode

    def resolve(self) -> None:
        """Fill in the referred seqs and re-encode the payload (called by the writer)."""
        changes = {name: ticket.seq for name, ticket in self._refs.items() if ticket.seq is not None}
        if changes:
            payload, content = self._encode(msgspec.structs.replace(self._event, **changes), self)
            self[7] = payload
            self[8] = content


class Batch(list[PendingRow]):
    """Several pending rows sent to the writer as one item."""
