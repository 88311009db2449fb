"""Reading times given on the command line: Unix seconds or ISO 8601."""

from __future__ import annotations

from datetime import datetime, timezone


def parse_time(text: str) -> float:
    """Unix seconds (``1732406400.5``) or ISO 8601 (``2026-11-24T10:00:00``, ``...Z``, ``...+01:00``).

    An ISO time without a zone is taken as UTC. Raises `ValueError` naming the text.
    """
    try:
        return float(text)
    except ValueError:
        pass
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
    """A Unix time as ISO 8601 in UTC with milliseconds."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
