"""The metrics collector actor, and the buffers that feed it from application threads.

Application threads record measurements into a buffer of their own (a lock and a list
append: no message, no disk). A buffer is sent to the collector as one typed
`Measurements` batch when it is full, every ``flush_interval`` seconds, and on `flush`
and `stop`. The collector appends each measurement as an event; the live statistics
fold those events once they are committed, as replay does.

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
import weakref
from collections.abc import Mapping
from typing import Any, Literal

import msgspec
import pykka

from actorlog.events import CounterIncremented, GaugeSet, HistogramObserved, MeasurementsDropped, Message, OperationTimed
from actorlog.events.registry import default_registry
from actorlog.replay.metrics import DEFAULT_BUCKETS, DEFAULT_MAX_HISTORY, bucket_problem
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
    buckets: tuple[float, ...] = DEFAULT_BUCKETS
    """Upper bounds of the Prometheus histogram buckets of observations and timed operations
    (default: suited to seconds; +Inf is added). Recorded in the log, so replay exports the same."""
    histogram_buckets: dict[str, tuple[float, ...]] = {}
    """Metric name -> its own bucket bounds, instead of ``buckets``."""

    def __post_init__(self) -> None:
        problem = bucket_problem(self.buckets)
        if problem is not None:
            raise ValueError(f"metrics option buckets: {problem}")
        if not isinstance(self.histogram_buckets, dict):
            raise ValueError(f"metrics option histogram_buckets must map metric names to buckets, "
                             f"got {self.histogram_buckets!r}")
        for name, bounds in self.histogram_buckets.items():
            problem = name_problem(name, "a histogram_buckets key") or bucket_problem(bounds)
            if problem is not None:
                raise ValueError(f"metrics option histogram_buckets[{name!r}]: {problem}")
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


class Sync(Message, tag="actorlog.metrics.sync", frozen=True):
    """Answered once everything sent before it is recorded (and drops are logged)."""


METRICS_MESSAGES: tuple[type[Message], ...] = (Measurements, Sync)
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
    """Records measurements as events (the live statistics fold them once committed)."""

    use_daemon_thread = True

    def __init__(self, store: EventStore, options: MetricsOptions, backlog: Backlog) -> None:
        super().__init__()
        self.store = store
        self.options = options
        self.backlog = backlog

    def on_receive(self, message: Any) -> Any:
        kind = type(message)
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
        # in order: a measurement taken before events logged meanwhile is logged just after them
        self.store.append_many(events, actor=ACTOR, ts=stamps, in_order=True)

    def _report_drops(self) -> None:
        dropped = self.backlog.take_dropped()
        if dropped:
            event = MeasurementsDropped(
                count=dropped,
                reason=f"the collector's backlog was over {self.options.max_pending} measurements (overload='sample')",
            )
            self.store.append(event, actor=ACTOR)


def _encodes(text: str) -> bool:
    """Whether ``text`` can be encoded as UTF-8 (a Python str may hold lone surrogates, which cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def name_problem(name: object, what: str = "a metric name") -> str | None:
    """Why ``name`` cannot name a metric in the log, or None when it can."""
    if type(name) is not str or not name:
        return f"{what} must be a non-empty str, got {name!r}"
    if not name.isascii() and not _encodes(name):
        return f"{what} must be encodable as UTF-8, got {name!r} (it holds a lone surrogate)"
    return None


def check_name(name: object, what: str = "a metric name") -> None:
    """Refuse a name the log cannot hold (not a non-empty str, or not encodable as UTF-8), naming it."""
    problem = name_problem(name, what)
    if problem is not None:
        raise ValueError(problem)


def check_tags(name: str, tags: Mapping[str, str] | None) -> None:
    """Refuse tags the log cannot hold (they are ``dict[str, str]``, encodable as UTF-8), naming the metric."""
    if not tags:
        return
    for key, value in tags.items():
        if type(key) is not str or type(value) is not str:
            raise ValueError(f"measurement {name!r}: tags must map str to str, got {dict(tags)!r}")
        if not (key.isascii() and value.isascii()) and not (_encodes(key) and _encodes(value)):
            raise ValueError(
                f"measurement {name!r}: tag {key!r}: {value!r} cannot be encoded as UTF-8 (it holds a lone surrogate)"
            )


class _Buffer:
    __slots__ = ("items", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[Measurement] = []


class _Owner:
    """Kept only in its thread's thread-local storage: it dies when the thread ends, and a
    weak reference to it tells the recorder that nobody can add to that thread's buffer."""

    __slots__ = ("__weakref__",)


class RecorderStatistics(msgspec.Struct, frozen=True, kw_only=True):
    """What `Recorder.statistics` reports: the measurements on their way to the log."""

    buffers: int
    """Per-thread buffers held (one for each thread that recorded and has not ended)."""
    buffered: int
    """Measurements waiting in those buffers."""
    in_transit: int
    """Batches taken from a buffer and not yet handed to the collector (a sender may be
    waiting for room under back-pressure)."""
    pending: int
    """Measurements handed to the collector and not yet recorded by it."""


class Recorder:
    """Buffers measurements per thread and sends them to the collector in batches.

    `flush` covers what every thread recorded before it: each batch taken from a buffer
    gets a number (under that buffer's lock) and stays *in transit* until it is handed to
    the collector (or dropped, counted); a flush sends what is buffered, waits for every
    batch numbered before it to leave transit, and only then asks the collector to sync,
    so its question queues behind them. Nobody holds a buffer's lock while waiting for
    room in the backlog, so a sender held up by back-pressure delays no other thread.

    A buffer whose thread has ended is sent once more and then forgotten.
    """

    def __init__(self, collector: pykka.ActorRef[MetricsCollector], backlog: Backlog, options: MetricsOptions) -> None:
        self.collector = collector
        self.backlog = backlog
        self.options = options
        self._local = threading.local()
        self._buffers: dict[_Buffer, weakref.ref[_Owner]] = {}
        """Every thread's buffer, with a weak reference to its thread's `_Owner`."""
        self._buffers_lock = threading.Lock()
        self._transit = threading.Condition()
        self._batches = 0
        """Batches numbered so far; the next batch taken from a buffer gets this number."""
        self._in_transit: set[int] = set()
        """Numbers of the batches taken from a buffer and not yet handed to the collector."""
        self._closed = False
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_periodically, name="actorlog-metrics-flush", daemon=True)
        self._flusher.start()

    def record(self, kind: MeasurementKind, name: str, value: float, tags: dict[str, str] | None, ok: bool = True) -> None:
        """Buffer one measurement taken now; raises `ValueError` for a name or value the log cannot hold."""
        if type(name) is not str or not name or not name.isascii() and not _encodes(name):
            raise ValueError(name_problem(name))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"measurement {name!r}: value must be a finite number, got {value!r}")
        if kind == "counter" and value < 0:
            raise ValueError(
                f"counter {name!r}: an increment must be >= 0, got {value!r} (a counter only goes up; "
                f"use a gauge for a value that goes down)"
            )
        check_tags(name, tags)
        buffer: _Buffer | None = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._new_buffer()
        with buffer.lock:
            buffer.items.append((kind, name, float(value), tags if tags is not None else {}, time.time(), ok))
            full = len(buffer.items) >= self.options.buffer_size
        if full:
            self._send(buffer)

    def record_checked(self, kind: MeasurementKind, name: str, value: float, tags: dict[str, str], ok: bool) -> None:
        """`record` for callers that have checked ``name`` and ``tags`` already (`check_name`,
        `check_tags`) and pass a finite float: the monitor's timed functions, on every call."""
        buffer: _Buffer | None = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._new_buffer()
        with buffer.lock:
            buffer.items.append((kind, name, value, tags, time.time(), ok))
            full = len(buffer.items) >= self.options.buffer_size
        if full:
            self._send(buffer)

    def _new_buffer(self) -> _Buffer:
        buffer, owner = _Buffer(), _Owner()
        self._local.buffer = buffer
        self._local.owner = owner
        with self._buffers_lock:
            self._buffers[buffer] = weakref.ref(owner)
        return buffer

    def _send(self, buffer: _Buffer) -> None:
        with buffer.lock:
            items = buffer.items
            if not items:
                return
            buffer.items = []
            with self._transit:  # numbered before the buffer is unlocked: a flush that finds it empty waits for it
                number = self._batches
                self._batches = number + 1
                self._in_transit.add(number)
        try:
            if self.backlog.reserve(len(items)):
                try:
                    self.collector.tell(Measurements(items=items))
                except pykka.ActorDeadError:
                    self.backlog.release(len(items))
        finally:
            with self._transit:
                self._in_transit.discard(number)
                self._transit.notify_all()

    def send_all(self) -> None:
        """Send every thread's buffered measurements to the collector now, and forget the
        buffers of threads that have ended."""
        with self._buffers_lock:
            buffers = list(self._buffers.items())
        ended: list[_Buffer] = []
        for buffer, owner in buffers:
            gone = owner() is None  # looked at before sending: its thread can no longer add to it
            self._send(buffer)
            if gone:
                ended.append(buffer)
        if ended:
            with self._buffers_lock:
                for buffer in ended:
                    self._buffers.pop(buffer, None)  # a concurrent send_all may have forgotten it too

    def flush(self, timeout: float | None = None) -> None:
        """Deliver every measurement any thread recorded before this call to the collector,
        and wait until it has recorded them (appended them to the store)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.send_all()
        with self._transit:
            horizon = self._batches
            if not self._transit.wait_for(lambda: all(n >= horizon for n in self._in_transit), timeout):
                raise TimeoutError(
                    f"measurements were still waiting for room in the metrics backlog after {timeout} s"
                )
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            self.collector.ask(Sync(), block=True, timeout=remaining)
        except pykka.Timeout:  # never pykka's own exception for the user: a TimeoutError
            raise TimeoutError(f"the metrics collector had not recorded every measurement after {timeout} s") from None

    def statistics(self) -> RecorderStatistics:
        """How many buffers are held, and how many measurements wait in them, in transit and at the collector."""
        with self._buffers_lock:
            buffers = list(self._buffers)
        buffered = 0
        for buffer in buffers:
            with buffer.lock:
                buffered += len(buffer.items)
        with self._transit:
            in_transit = len(self._in_transit)
        return RecorderStatistics(
            buffers=len(buffers), buffered=buffered, in_transit=in_transit, pending=self.backlog.pending
        )

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
