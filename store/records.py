"""What reading the log yields: one stored event with its envelope columns."""

from __future__ import annotations

from typing import Any

import msgspec


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
