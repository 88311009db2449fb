"""Error statistics: a projection folded from ``failure.assessed`` events.

The live system feeds it the records its log commits; replay feeds it the same records
read from the log. Both therefore report the same statistics. Only assessments written
by the error handler (actor ``errors``) count: a row appended by anything else is still
in the log, but it cannot change the statistics.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

import msgspec

from actorlog.events import FailureAssessed
from actorlog.store import EventRecord

DEFAULT_RECENT = 10
ERRORS_ACTOR = "errors"
"""The only actor entitled to write ``failure.assessed``."""


class RecentError(msgspec.Struct, frozen=True, kw_only=True):
    """One error among the most recent ones."""

    type: str
    message: str
    severity: str
    plugin: str
    time: float
    seq: int | None


class ErrorStatisticsSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Error statistics at one point of the log (the ``errors`` part of ``actorlog stats --json``)."""

    total_errors: int
    error_types: dict[str, int]
    severity_distribution: dict[str, int]
    errors_by_plugin: dict[str, int]
    recent_errors: list[RecentError]


class ErrorStatistics:
    """Counts of errors by type, severity and plugin, and the most recent ones.

    ``apply`` takes every event record (it ignores kinds other than ``failure.assessed``);
    ``snapshot`` reports the statistics as of the last record applied.
    """

    kinds = ("failure.assessed",)
    name = "errors"
    version = 1

    def __init__(self, keep_recent: int = 100) -> None:
        self.keep_recent = keep_recent
        self.total = 0
        self.by_type: Counter[str] = Counter()
        self.by_severity: Counter[str] = Counter()
        self.by_plugin: Counter[str] = Counter()
        self.recent: deque[RecentError] = deque(maxlen=keep_recent)
        self.position = 0

    def apply(self, record: EventRecord) -> None:
        """Fold one event record into the statistics."""
        self.fold(record.kind, record.event, record.seq, record.ts, record.run, record.actor)

    def fold(self, kind: str, event: Any, seq: int, ts: float, run: str, actor: str) -> None:
        """Fold one event given with its row's columns (``apply`` without an `EventRecord`)."""
        if type(event) is not FailureAssessed or actor != ERRORS_ACTOR:
            return
        self.position = seq
        self.total += 1
        self.by_type[event.exc_type] += 1
        self.by_severity[event.severity] += 1
        self.by_plugin[event.plugin] += 1
        self.recent.append(
            RecentError(
                type=event.exc_type, message=event.message, severity=event.severity, plugin=event.plugin,
                time=event.failed_at, seq=event.failure_seq,
            )
        )

    def snapshot(self, recent: int = DEFAULT_RECENT) -> ErrorStatisticsSnapshot:
        """The statistics now; ``recent`` newest errors, newest last."""
        if recent < 0:
            raise ValueError(f"recent must be >= 0, got {recent}")
        newest = list(self.recent)[-recent:] if recent else []
        return ErrorStatisticsSnapshot(
            total_errors=self.total,
            error_types=dict(sorted(self.by_type.items())),
            severity_distribution=dict(sorted(self.by_severity.items())),
            errors_by_plugin=dict(sorted(self.by_plugin.items())),
            recent_errors=newest,
        )

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ErrorStatistics:
        """Rebuild a projection saved with `state`."""
        projection = cls(int(state["keep_recent"]))
        projection.total = int(state["total"])
        projection.by_type.update(state["by_type"])
        projection.by_severity.update(state["by_severity"])
        projection.by_plugin.update(state["by_plugin"])
        projection.recent.extend(msgspec.convert(state["recent"], list[RecentError]))
        projection.position = int(state["position"])
        return projection

    def state(self) -> dict[str, Any]:
        """The projection's whole state as builtins (for snapshots)."""
        return {
            "total": self.total, "by_type": dict(self.by_type), "by_severity": dict(self.by_severity),
            "by_plugin": dict(self.by_plugin), "recent": msgspec.to_builtins(list(self.recent)),
            "position": self.position, "keep_recent": self.keep_recent,
        }
