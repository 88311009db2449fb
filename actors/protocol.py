"""Messages between the actor system's own actors.

The public, registered ones (measurements, failure reports, decisions) are `Message`
types like any application message. `Delivery` and the control messages are envelopes
internal to a plugin's actor: they carry a reply future, so they never leave the process.
"""

from __future__ import annotations

import math
from concurrent.futures import Future
from typing import Any, Literal

import msgspec

from actorlog.events import Message, RecoveryAction, Severity, default_registry


Where = Literal["handler", "start", "stop", "health", "restart", "task"]
"""Which part of a plugin failed."""


class ReportFailure(Message, tag="actorlog.report_failure", frozen=True):
    """A plugin's handler, start, stop or health check failed; sent to the error handler."""

    plugin: str
    exception: Any
    where: Where = "handler"
    correlation: str | None = None
    failure: Any = None  # the Ticket of the failure.raised event, for the decision's failure_seq
    failed_at: float | None = None
    attempt: int | None = None
    retry_delay: float | None = None
    retries_left: bool = False


class GetErrorStatistics(Message, tag="actorlog.get_error_statistics", frozen=True):
    """Ask the error handler for its statistics, with the ``recent`` newest errors."""

    recent: int = 10


class CarryOut(Message, tag="actorlog.carry_out", frozen=True):
    """The error handler's decision about a failure, for the supervisor to carry out."""

    plugin: str
    action: RecoveryAction
    reason: str = ""
    delay: float = 0.0
    severity: Severity | None = None
    correlation: str | None = None
    exc_type: str | None = None


class Increment(Message, tag="actorlog.metrics.increment", frozen=True):
    """Add ``value`` to a counter."""

    name: str
    value: float = 1.0
    tags: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_finite(self)


class SetGauge(Message, tag="actorlog.metrics.set_gauge", frozen=True):
    """Set a gauge to ``value``."""

    name: str
    value: float
    tags: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_finite(self)


class Observe(Message, tag="actorlog.metrics.observe", frozen=True):
    """Record one observation in a histogram."""

    name: str
    value: float
    tags: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_finite(self)


def _require_finite(message: Increment | SetGauge | Observe) -> None:
    if isinstance(message.value, bool) or not isinstance(message.value, (int, float)) or not math.isfinite(message.value):
        raise ValueError(
            f"measurement {message.name!r}: value must be a finite number, got {message.value!r}"
        )


for _cls in (ReportFailure, GetErrorStatistics, CarryOut, Increment, SetGauge, Observe):
    default_registry.register(_cls)
del _cls

SYSTEM_MESSAGES: tuple[type[Message], ...] = (ReportFailure, GetErrorStatistics, CarryOut, Increment, SetGauge, Observe)


class Delivery(msgspec.Struct):
    """An application message on its way to a plugin, with who sent it and where to reply."""

    message: Any
    sender: str
    correlation: str
    reply: Future[Any] | None = None


class Control(msgspec.Struct):
    """A lifecycle operation on a plugin's actor, applied even while it is suspended."""

    op: Literal["start", "halt", "stop", "resume", "health"]
    reply: Future[Any] | None = None
    reason: str = ""
    correlation: str | None = None


class StartFailed(Exception):
    """A plugin's ``on_start`` raised: the original exception, and its ``failure.raised`` ticket and time."""

    def __init__(self, original: BaseException, failure: Any, failed_at: float) -> None:
        super().__init__(f"{type(original).__name__}: {original}")
        self.original = original
        self.failure = failure
        self.failed_at = failed_at
