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
    """For a task: the attempt that failed; for a handler: how many times the message was delivered."""
    retry_delay: float | None = None
    retries_left: bool = False
    asked: bool = False
    """For a handler: the message was asked, so its sender already has the exception."""


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
    attempt: int = 1
    """How many times it has been delivered, this one included (a retry decision redelivers it)."""


class Control(msgspec.Struct):
    """A lifecycle operation on a plugin's actor, applied even while it is suspended."""

    op: Literal["start", "halt", "stop", "resume", "retry", "redeliver", "health", "upgrade_halt", "upgrade_start"]
    reply: Future[Any] | None = None
    reason: str = ""
    correlation: str | None = None
    delay: float = 0.0
    """For ``retry``: seconds before the failed message is delivered again."""
    generation: int = 0
    """For ``redeliver``: the suspension it belongs to (a later start or stop makes it stale)."""
    upgrade: Any = None
    """For ``upgrade_halt`` and ``upgrade_start``: the `actorlog.actors.upgrade.Version` to hand over to or start."""
    state: Any = None
    """For ``upgrade_start``: what the old instance's ``on_upgrade`` handed over."""


class StartFailed(Exception):
    """A plugin's ``on_start`` raised: the original exception, and its ``failure.raised`` ticket and time."""

    def __init__(self, original: BaseException, failure: Any, failed_at: float) -> None:
        super().__init__(f"{type(original).__name__}: {original}")
        self.original = original
        self.failure = failure
        self.failed_at = failed_at
