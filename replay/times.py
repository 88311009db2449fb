"""Reading times given on the command line: Unix seconds or ISO 8601."""

from __future__ import annotations

import math
from datetime import datetime, timezone


def parse_time(text: str) -> float:
    """Unix seconds (``1732406400.5``) or ISO 8601 (``2026-11-24T10:00:00``, ``...Z``, ``...+01:00``).

    An ISO time without a zone is taken as UTC. Raises `ValueError` naming the text.
    """
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"{text!r} is not a time: give a finite number of Unix seconds or ISO 8601")
        return seconds
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give Unix seconds (1732406400) or ISO 8601 (2026-11-24T10:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def format_time(ts: float) -> str:
    """A Unix time as ISO 8601 in UTC with milliseconds (the number itself when it is no date:
    infinite, NaN or out of range, as only a foreign row can hold)."""
    try:
        moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    except (OverflowError, ValueError, OSError):
        return repr(ts)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
