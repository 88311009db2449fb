"""Messages between the actor system's own actors.

The public, registered ones (measurements, failure reports, decisions) are `Message`
types like any application message. `Delivery` and the control messages are envelopes
internal to a plugin's actor: they carry a reply future, so they never leave the process.
"""

from __future__ import annotations

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


class CarryOut(Message, tag="actorlog.carry_out", frozen=True):
    """The error handler's decision about a failure, for the supervisor to carry out."""

    plugin: str
    action: RecoveryAction
    reason: str = ""
    delay: float = 0.0
    severity: Severity | None = None
    correlation: str | None = None
    exc_type: str | None = None


for _cls in (ReportFailure, CarryOut):
    default_registry.register(_cls)
del _cls

SYSTEM_MESSAGES: tuple[type[Message], ...] = (ReportFailure, CarryOut)


class Delivery(msgspec.Struct):
    """An application message on its way to a plugin, with who sent it and where to reply."""

    message: Any
    sender: str
    correlation: str
    reply: Future[Any] | None = None
    bounded: bool = True
    """Whether it holds one of the recipient's inbox slots (released once handled or refused)."""


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
