"""Shared message types, plugins and helpers for the metrics tests (tests/test_metrics_*.py).

Message tags start with "t5." and are unique across the test session (the default type
registry is process-global).

The reference computations here are deliberately plain: a summary of a list of
``(ts, value)`` points written from the documented rules (window ``as_of - window < ts <=
as_of``, numpy's linear percentile), so the library's code is checked against an
independent implementation rather than against itself.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from actor_helpers import read_log, wait_until
from actorlog.actors import Plugin, handler
from actorlog.events import Message, register
from actorlog.store.records import EventRecord

MEASUREMENT_KINDS = ("counter.incremented", "gauge.set", "histogram.observed", "operation.timed")
LIFECYCLE_KINDS = ("plugin.registered", "plugin.starting", "plugin.started", "plugin.stopping", "plugin.stopped")

__all__ = [
    "LIFECYCLE_KINDS",
    "MEASUREMENT_KINDS",
    "BAD_NAMES",
    "BAD_VALUES",
    "BadRecord",
    "Fail",
    "MetricsPlugin",
    "PendingSampler",
    "PluginBoom",
    "RecordVia",
    "TimeVia",
    "hold_write_lock",
    "measurement_records",
    "read_log",
    "ref_percentile",
    "ref_summary",
    "spin_past",
    "summary_fields",
    "wait_until",
]

# -- message types ----------------------------------------------------------------------------


@register
class RecordVia(Message, tag="t5.record_via", frozen=True):
    """Make the plugin record a counter, a gauge and a histogram through its context."""

    name: str
    value: float
    tags: dict[str, str] = {}


@register
class TimeVia(Message, tag="t5.time_via", frozen=True):
    """Make the plugin time a block (and, with ``fail``, raise inside it) through its context."""

    name: str
    fail: bool = False


@register
class BadRecord(Message, tag="t5.bad_record", frozen=True):
    """Make the plugin try invalid measurements; answers the exception type names it got."""


@register
class Fail(Message, tag="t5.fail", frozen=True):
    """The plugin raises ValueError(text)."""

    text: str = "t5 failure"


class PluginBoom(ValueError):
    """Raised by `MetricsPlugin` for `TimeVia(fail=True)`."""


BAD_VALUES: tuple[Any, ...] = (math.nan, math.inf, -math.inf, "1.0", None, True, [1.0], complex(1, 0))
BAD_NAMES: tuple[Any, ...] = ("", None, 5, b"name", ("a",))


class MetricsPlugin(Plugin):
    """Records measurements through ``self.context.metrics`` and ``self.context.monitor``."""

    @handler
    def record(self, message: RecordVia) -> None:
        metrics = self.context.metrics
        metrics.increment(message.name + ".count", message.value, tags=message.tags)
        metrics.gauge(message.name + ".gauge", message.value, tags=message.tags)
        metrics.observe(message.name + ".hist", message.value, tags=message.tags)

    @handler
    def time_block(self, message: TimeVia) -> str:
        with self.context.monitor.time(message.name, tags={"plugin": self.context.name}):
            if message.fail:
                raise PluginBoom("failed inside the timed block")
        return "timed"

    @handler
    def bad(self, message: BadRecord) -> list[str]:
        outcomes: list[str] = []
        metrics = self.context.metrics
        for value in BAD_VALUES:
            for record in (metrics.increment, metrics.gauge, metrics.observe):
                try:
                    record("t5.plugin.bad", value)
                except Exception as exc:  # noqa: BLE001 - the test inspects the type
                    outcomes.append(type(exc).__name__)
                else:
                    outcomes.append("accepted")
        for name in BAD_NAMES:
            try:
                metrics.increment(name)
            except Exception as exc:  # noqa: BLE001
                outcomes.append(type(exc).__name__)
            else:
                outcomes.append("accepted")
        return outcomes

    @handler
    def fail(self, message: Fail) -> None:
        raise ValueError(message.text)


# -- reference computations -------------------------------------------------------------------------


def ref_percentile(ordered: Sequence[float], q: float) -> float:
    """numpy's default ("linear") percentile of sorted values, written out independently."""
    n = len(ordered)
    rank = (n - 1) * q / 100
    below = math.floor(rank)
    above = math.ceil(rank)
    fraction = rank - below
    return ordered[below] + (ordered[above] - ordered[below]) * fraction


def ref_summary(points: Iterable[tuple[float, float]], *, as_of: float, window: float) -> dict[str, Any]:
    """The summary fields of ``points`` (in the order they were recorded) over ``(as_of - window, as_of]``.

    ``latest`` is the value of the point with the greatest timestamp; among points with
    the same greatest timestamp, the one recorded last.
    """
    inside = [(ts, v) for ts, v in points if as_of - window < ts <= as_of]
    if not inside:
        return {
            "count": 0, "min": None, "max": None, "avg": None, "latest": None,
            "p50": None, "p95": None, "p99": None, "window_seconds": window, "as_of": as_of,
        }
    values = sorted(v for _, v in inside)
    newest = max(ts for ts, _ in inside)
    latest = [v for ts, v in inside if ts == newest][-1]
    return {
        "count": len(values),
        "min": values[0],
        "max": values[-1],
        "avg": math.fsum(values) / len(values),
        "latest": latest,
        "p50": ref_percentile(values, 50),
        "p95": ref_percentile(values, 95),
        "p99": ref_percentile(values, 99),
        "window_seconds": window,
        "as_of": as_of,
    }


def summary_fields(summary: Any) -> dict[str, Any]:
    """The fields of a `Summary` that `ref_summary` computes."""
    return {field: getattr(summary, field) for field in (
        "count", "min", "max", "avg", "latest", "p50", "p95", "p99", "window_seconds", "as_of",
    )}


# -- time ----------------------------------------------------------------------------------------------


def spin_past(t: float) -> float:
    """Wait until the wall clock reads more than ``t`` (a few microseconds); return the new reading.

    Used so that points recorded after a time bound carry a strictly greater timestamp.
    """
    now = time.time()
    while now <= t:
        now = time.time()
    return now


# -- the log -----------------------------------------------------------------------------------------------


def measurement_records(path: Path, **filters: Any) -> list[EventRecord]:
    """The measurement events (counter, gauge, histogram, operation; or ``kinds``) of the log at ``path``."""
    filters.setdefault("kinds", list(MEASUREMENT_KINDS))
    return read_log(path, **filters)


@contextmanager
def hold_write_lock(path: Path) -> Iterator[None]:
    """Hold the log's write lock from a second connection (``BEGIN IMMEDIATE``) for the block.

    The store's writer waits on SQLite's busy handler meanwhile, so its backlog grows:
    a slowed-down disk, without mocking anything.
    """
    conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
    finally:
        conn.close()


class PendingSampler:
    """Samples ``backlog.pending`` from a thread of its own until stopped; keeps the maximum."""

    def __init__(self, backlog: Any) -> None:
        self.backlog = backlog
        self.maximum = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="t5-pending-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pending = self.backlog.pending
            self.maximum = max(self.maximum, pending)
            self.samples += 1
            time.sleep(0.0005)

    def __enter__(self) -> PendingSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
