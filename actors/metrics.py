"""The metrics collector actor, and the buffers that feed it from application threads.

Application threads record measurements into a buffer of their own (a lock and a list
append: no message, no disk). A buffer is sent to the collector as one typed
`Measurements` batch when it is full, every ``flush_interval`` seconds, and on `flush`
and `stop`. The collector appends each measurement as an event and folds it into its
`Metrics` projection, so its summaries equal what replay rebuilds from the log.

Overload: the measurements on their way to the collector are bounded by
``max_pending``. With ``overload="block"`` (the default) senders wait for room; with
``overload="sample"`` batches that find no room are dropped, counted, and logged as
``measurements.dropped`` events. Lifecycle and failure events never pass through here.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal

import msgspec
import pykka

from actorlog.events import CounterIncremented, GaugeSet, HistogramObserved, MeasurementsDropped, Message, OperationTimed
from actorlog.events.registry import default_registry
from actorlog.replay.metrics import DEFAULT_MAX_HISTORY, DEFAULT_WINDOW, Metrics
from actorlog.replay.prometheus import to_prometheus
from actorlog.store import EventStore

ACTOR = "metrics"

logger = logging.getLogger(__name__)

MeasurementKind = Literal["counter", "gauge", "histogram", "operation"]
Measurement = tuple[str, str, float, dict[str, str], float, bool]
"""(kind, name, value, tags, ts, ok): one measurement in a batch."""


class MetricsOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How measurements are kept, buffered and bounded."""

    max_history: int = DEFAULT_MAX_HISTORY
    """Points kept per series for summaries."""
    max_pending: int = 100_000
    """Measurements allowed on their way to the collector; the memory bound under overload."""
    overload: Literal["block", "sample"] = "block"
    """When the bound is reached: wait for room, or drop (counted and logged)."""
    buffer_size: int = 256
    """Measurements a thread buffers before sending them as one batch."""
    flush_interval: float = 0.1
    """Seconds between background sends of partly filled buffers."""

    def __post_init__(self) -> None:
        for name in ("max_history", "max_pending", "buffer_size"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"metrics option {name} must be a positive int, got {value!r}")
        interval = self.flush_interval
        if type(interval) not in (int, float) or not 0 < interval <= 3600:  # NaN fails both comparisons
            raise ValueError(
                f"metrics option flush_interval must be a number of seconds above 0 and at most 3600 "
                f"(buffered measurements are sent at least that often), got {interval!r}"
            )
        if self.overload not in ("block", "sample"):
            raise ValueError(f"metrics option overload must be 'block' or 'sample', got {self.overload!r}")


class Measurements(Message, tag="actorlog.metrics.measurements", frozen=True):
    """A batch of measurements from one thread's buffer."""

    items: list[Measurement]


class GetSummary(Message, tag="actorlog.metrics.get_summary", frozen=True):
    """Ask for the summary of one series over a window ending at ``as_of``."""

    name: str
    as_of: float
    tags: dict[str, str] = msgspec.field(default_factory=dict)
    window_seconds: float = DEFAULT_WINDOW


class GetMetrics(Message, tag="actorlog.metrics.get_metrics", frozen=True):
    """Ask for every counter, gauge and series."""


class ExportPrometheus(Message, tag="actorlog.metrics.export_prometheus", frozen=True):
    """Ask for the Prometheus text exposition (summaries over the window ending at ``as_of``)."""

    as_of: float
    window_seconds: float = DEFAULT_WINDOW


class Sync(Message, tag="actorlog.metrics.sync", frozen=True):
    """Answered once everything sent before it is recorded (and drops are logged)."""


METRICS_MESSAGES: tuple[type[Message], ...] = (Measurements, GetSummary, GetMetrics, ExportPrometheus, Sync)
for _cls in METRICS_MESSAGES:
    default_registry.register(_cls)
del _cls


class Backlog:
    """Measurements sent to the collector and not yet recorded, bounded; and drops."""

    def __init__(self, limit: int, overload: str) -> None:
        self.limit = limit
        self.block = overload == "block"
        self.pending = 0
        self.dropped = 0
        self._room = threading.Condition()

    def reserve(self, count: int) -> bool:
        """Make room for ``count`` measurements: wait (block) or refuse and count a drop (sample)."""
        with self._room:
            if self.block:
                while self.pending > 0 and self.pending + count > self.limit:
                    self._room.wait()
            elif self.pending + count > self.limit:
                self.dropped += count
                return False
            self.pending += count
            return True

    def release(self, count: int) -> None:
        with self._room:
            self.pending -= count
            self._room.notify_all()

    def take_dropped(self) -> int:
        with self._room:
            dropped, self.dropped = self.dropped, 0
            return dropped


_EVENTS: dict[str, type[Any]] = {
    "counter": CounterIncremented, "gauge": GaugeSet, "histogram": HistogramObserved,
}


class MetricsCollector(pykka.ThreadingActor):
    """Records measurements as events and answers summaries from its projection."""

    use_daemon_thread = True

    def __init__(self, store: EventStore, options: MetricsOptions, backlog: Backlog) -> None:
        super().__init__()
        self.store = store
        self.options = options
        self.backlog = backlog
        self.metrics = Metrics(options.max_history)

    def on_receive(self, message: Any) -> Any:
        kind = type(message)
        if kind is GetSummary:  # queries are asked: an error goes to the asker
            return self.metrics.summary(message.name, message.tags, as_of=message.as_of, window_seconds=message.window_seconds)
        if kind is GetMetrics:
            return self.metrics.snapshot()
        if kind is ExportPrometheus:
            return to_prometheus(self.metrics, as_of=message.as_of, window_seconds=message.window_seconds)
        # Measurements are told: raising here would make pykka stop the collector.
        try:
            if kind is Measurements:
                try:
                    self._record(message.items)
                finally:
                    self.backlog.release(len(message.items))
                self._report_drops()
            elif kind is Sync:
                self._report_drops()
            else:
                logger.error("the metrics collector ignored a %s: it only records measurements", kind.__qualname__)
        except Exception:  # noqa: BLE001 - one bad batch (or a failed log) must not stop the collector
            logger.exception("the metrics collector could not record %r", kind.__qualname__)
        return None

    def _record(self, items: list[Measurement]) -> None:
        events: list[Any] = []
        stamps: list[float] = []
        for kind, name, value, tags, ts, ok in items:
            try:
                if kind == "operation":
                    event: Any = OperationTimed(name=name, value=value, ok=ok, tags=tags)
                else:
                    event = _EVENTS[kind](name=name, value=value, tags=tags)
            except (KeyError, ValueError, TypeError):
                logger.exception("the metrics collector skipped an invalid measurement %r", (kind, name, value))
                continue
            events.append(event)
            stamps.append(ts)
        if not events:
            return
        self.store.append_many(events, actor=ACTOR, ts=stamps)
        apply = self.metrics.apply_event
        for event, ts in zip(events, stamps):
            apply(event, ts)

    def _report_drops(self) -> None:
        dropped = self.backlog.take_dropped()
        if dropped:
            event = MeasurementsDropped(
                count=dropped,
                reason=f"the collector's backlog was over {self.options.max_pending} measurements (overload='sample')",
            )
            self.store.append(event, actor=ACTOR)
            self.metrics.apply_event(event, time.time())


def check_tags(name: str, tags: Mapping[str, str] | None) -> None:
    """Refuse tags the log cannot hold (they are ``dict[str, str]``), naming the metric."""
    if tags and not all(type(k) is str and type(v) is str for k, v in tags.items()):
        raise ValueError(f"measurement {name!r}: tags must map str to str, got {dict(tags)!r}")


class _Buffer:
    __slots__ = ("items", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[Measurement] = []


class Recorder:
    """Buffers measurements per thread and sends them to the collector in batches."""

    def __init__(self, collector: pykka.ActorRef[MetricsCollector], backlog: Backlog, options: MetricsOptions) -> None:
        self.collector = collector
        self.backlog = backlog
        self.options = options
        self._local = threading.local()
        self._buffers: list[_Buffer] = []
        self._buffers_lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_periodically, name="actorlog-metrics-flush", daemon=True)
        self._flusher.start()

    def record(self, kind: MeasurementKind, name: str, value: float, tags: dict[str, str] | None, ok: bool = True) -> None:
        """Buffer one measurement taken now; raises `ValueError` for a name or value the log cannot hold."""
        if type(name) is not str or not name:
            raise ValueError(f"a metric name must be a non-empty str, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"measurement {name!r}: value must be a finite number, got {value!r}")
        check_tags(name, tags)
        buffer: _Buffer | None = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._new_buffer()
        with buffer.lock:
            buffer.items.append((kind, name, float(value), tags if tags is not None else {}, time.time(), ok))
            full = len(buffer.items) >= self.options.buffer_size
        if full:
            self._send(buffer)

    def _new_buffer(self) -> _Buffer:
        buffer = _Buffer()
        self._local.buffer = buffer
        with self._buffers_lock:
            self._buffers.append(buffer)
        return buffer

    def _send(self, buffer: _Buffer) -> None:
        with buffer.lock:
            items, buffer.items = buffer.items, []
        if items and self.backlog.reserve(len(items)):
            try:
                self.collector.tell(Measurements(items=items))
            except pykka.ActorDeadError:
                self.backlog.release(len(items))

    def send_all(self) -> None:
        """Send every thread's buffered measurements to the collector now."""
        with self._buffers_lock:
            buffers = list(self._buffers)
        for buffer in buffers:
            self._send(buffer)

    def flush(self, timeout: float | None = None) -> None:
        """Deliver every buffered measurement to the collector and wait until it has recorded them."""
        self.send_all()
        self.collector.ask(Sync(), block=True, timeout=timeout)

    def _flush_periodically(self) -> None:
        while not self._stop.wait(self.options.flush_interval):
            try:
                self.send_all()
            except Exception:  # noqa: BLE001 - the flusher must keep going
                logger.exception("sending buffered measurements failed")

    def close(self) -> None:
        """Stop the background sender and deliver what is buffered."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._flusher.join()
        self.flush()
