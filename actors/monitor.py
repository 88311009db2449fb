"""Timing operations and recording measurements from application code.

::

    monitor = system.monitor

    @monitor.timed("llm.generate")            # sync or async functions
    def generate(prompt: str) -> str: ...

    with monitor.time("sandbox.run", tags={"lang": "python"}):
        ...

    operation = monitor.start("agent.solve")  # an opaque handle, not a parsed id
    ...
    monitor.end(operation, ok=False)

Each monitored call is one buffered measurement (duration, outcome and counts travel
together); it becomes one ``operation.timed`` event. Recording never waits for the disk.
An exception is counted as an error and re-raised.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from actorlog.actors.metrics import Recorder, RecorderStatistics, check_name, check_tags

P = ParamSpec("P")
R = TypeVar("R")


class MetricsClient:
    """Counters, gauges and histograms, recorded without waiting."""

    __slots__ = ("_recorder",)

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def increment(self, name: str, value: float = 1.0, tags: Mapping[str, str] | None = None) -> None:
        """Add ``value`` to counter ``name``."""
        self._recorder.record("counter", name, value, dict(tags) if tags else None)

    def gauge(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        """Set gauge ``name`` to ``value``."""
        self._recorder.record("gauge", name, value, dict(tags) if tags else None)

    def observe(self, name: str, value: float, tags: Mapping[str, str] | None = None) -> None:
        """Record ``value`` in histogram ``name``."""
        self._recorder.record("histogram", name, value, dict(tags) if tags else None)

    def statistics(self) -> RecorderStatistics:
        """The measurements on their way to the log: per-thread buffers held, measurements
        buffered in them, batches in transit and measurements pending at the collector."""
        return self._recorder.statistics()


class Operation:
    """An operation being timed: returned by `PerformanceMonitor.start`, given back to `end`."""

    __slots__ = ("ended", "name", "started", "tags")

    def __init__(self, name: str, tags: dict[str, str] | None) -> None:
        self.name = name
        self.tags = tags
        self.started = time.perf_counter()
        self.ended = False

    def __repr__(self) -> str:
        return f"<Operation {self.name!r}{' ended' if self.ended else ''}>"


class _Timing:
    __slots__ = ("_monitor", "_operation")

    def __init__(self, monitor: PerformanceMonitor, operation: Operation) -> None:
        self._monitor = monitor
        self._operation = operation

    def __enter__(self) -> Operation:
        self._operation.started = time.perf_counter()
        return self._operation

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._monitor.end(self._operation, ok=exc is None)


class PerformanceMonitor:
    """Times named operations: a decorator, a context manager, and start/end calls."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def start(self, name: str, *, tags: Mapping[str, str] | None = None) -> Operation:
        """Start timing an operation; pass what this returns to `end`."""
        check_name(name, "an operation name")
        check_tags(name, tags)
        return Operation(name, dict(tags) if tags else None)

    def end(self, operation: Operation, *, ok: bool = True) -> float:
        """Stop timing ``operation``; record its duration and outcome; return the duration (s)."""
        if not isinstance(operation, Operation):
            raise TypeError(f"end() takes what start() returned, not {operation!r}")
        if operation.ended:
            raise ValueError(f"{operation!r} was already ended")
        duration = time.perf_counter() - operation.started
        operation.ended = True
        self._recorder.record("operation", operation.name, duration, operation.tags, ok)
        return duration

    def time(self, name: str, *, tags: Mapping[str, str] | None = None) -> _Timing:
        """A context manager timing its block; an exception in it counts as an error."""
        return _Timing(self, self.start(name, tags=tags))

    @overload
    def timed(self, name: Callable[P, R], *, tags: Mapping[str, str] | None = None) -> Callable[P, R]: ...
    @overload
    def timed(
        self, name: str | None = None, *, tags: Mapping[str, str] | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
    def timed(self, name: Any = None, *, tags: Mapping[str, str] | None = None) -> Any:
        """Decorate a function or coroutine function so every call is timed.

        ``@monitor.timed`` names the operation after the function's qualified name;
        ``@monitor.timed("llm.generate")`` names it explicitly.
        """
        if callable(name):
            return self._wrap(name, _qualname(name), tags)
        return lambda function: self._wrap(function, name or _qualname(function), tags)

    def _wrap(self, function: Callable[..., Any], name: str, tags: Mapping[str, str] | None) -> Callable[..., Any]:
        check_name(name, "an operation name")
        check_tags(name, tags)
        tag_dict: dict[str, str] = dict(tags) if tags else {}
        record = self._recorder.record_checked  # name and tags are checked once, here; durations are finite
        clock = time.perf_counter
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                started = clock()
                try:
                    result = await function(*args, **kwargs)
                except BaseException:
                    record("operation", name, clock() - started, tag_dict, False)
                    raise
                record("operation", name, clock() - started, tag_dict, True)
                return result

            return timed_async

        @functools.wraps(function)
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            try:
                result = function(*args, **kwargs)
            except BaseException:
                record("operation", name, clock() - started, tag_dict, False)
                raise
            record("operation", name, clock() - started, tag_dict, True)
            return result

        return timed_call


def _qualname(function: Callable[..., Any]) -> str:
    return getattr(function, "__qualname__", None) or repr(function)


