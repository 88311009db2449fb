"""Resilient execution: run a callable or coroutine with retries, backoff and a deadline.

::

    @system.retry(max_retries=5, retry_on=(ConnectionError,))
    def fetch_prices() -> dict: ...

    prices = fetch_prices()                              # or: system.retry().call(fetch_prices)

Each failed attempt is a ``failure.raised`` event and a question to the error handler,
whose handlers may change the decision; a retry is a ``retry.scheduled`` event, and
the end is ``task.succeeded`` or ``task.gave_up``, all under one correlation id. After
the last attempt the original exception is raised, with the attempt history attached
as ``exc.attempts`` and as a note.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import random as random_module
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

import msgspec

from actorlog.actors.correlation import new_correlation
from actorlog.actors.error_policy import Decision
from actorlog.actors.error_policy import qualified_name
from actorlog.actors.failures import record_failure
from actorlog.actors.protocol import ReportFailure
from actorlog.actors.tracebacks import fit_texts, safe_str
from actorlog.events import RetryScheduled, TaskGaveUp, TaskSucceeded

if TYPE_CHECKING:
    from actorlog.actors.router import Router

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    The delay before attempt ``n + 1`` is ``min(max_delay, base * factor ** (n - 1))``,
    jittered: ``"full"`` draws uniformly from zero to that, ``"equal"`` from half of it
    to all of it, ``"none"`` uses it as is. Exceptions in ``give_up_on`` are never
    retried; others are retried when they are instances of ``retry_on``. ``deadline``
    bounds the whole run (seconds from the first attempt), waits included.
    """

    max_retries: int = 3
    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: Literal["full", "equal", "none"] = "full"
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    give_up_on: tuple[type[BaseException], ...] = field(default=())
    deadline: float | None = None

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.base < 0 or self.factor < 1 or self.max_delay < 0:
            raise ValueError(
                f"invalid retry policy {self!r}: max_retries, base and max_delay must be >= 0 and factor >= 1"
            )
        if self.jitter not in ("full", "equal", "none"):
            raise ValueError(f"jitter must be 'full', 'equal' or 'none', got {self.jitter!r}")

    def backoff(self, attempt: int, draw: Callable[[], float]) -> float:
        """The delay after failed attempt ``attempt`` (1-based), with jitter drawn from ``draw()`` in [0, 1)."""
        ceiling = min(self.max_delay, self.base * self.factor ** (attempt - 1))
        if self.jitter == "full":
            return draw() * ceiling
        if self.jitter == "equal":
            return ceiling / 2 + draw() * ceiling / 2
        return ceiling

    def retryable(self, exc: BaseException) -> bool:
        """Whether this policy would retry ``exc`` at all."""
        return isinstance(exc, self.retry_on) and not isinstance(exc, self.give_up_on)


class Attempt(msgspec.Struct, frozen=True):
    """One failed attempt, as attached to the exception finally raised."""

    number: int
    exc_type: str
    message: str
    delay: float | None
    """The wait before the next attempt; None for the last one."""


class Retrying:
    """Runs callables with a `RetryPolicy`, consulting the error handler on every failure."""

    def __init__(
        self,
        router: Router,
        policy: RetryPolicy,
        *,
        task: str | None = None,
        caller: str = "app",
        correlation: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = random_module.random,
    ) -> None:
        self.router = router
        self.policy = policy
        self.task = task
        self.caller = caller
        self.correlation = correlation
        self.clock = clock
        self.sleep = sleep
        self.async_sleep = async_sleep
        self.random = random

    @overload
    def __call__(self, function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]: ...
    @overload
    def __call__(self, function: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, function: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a function or coroutine function so every call runs with retries."""
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.call_async(function, *args, **kwargs)

            return run_async

        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> Any:
            return self.call(function, *args, **kwargs)

        return run

    def call(self, function: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call ``function`` until it succeeds or the error handler gives up; return its result."""
        run = _Run(self, self.task or _task_name(function))
        while True:
            try:
                result = function(*args, **kwargs)
            except Exception as exc:
                delay = run.failed(exc)
                if delay is None:
                    raise
                self.sleep(delay)
                continue
            run.succeeded()
            return result

    async def call_async(self, function: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """`call` for coroutine functions; waits with ``async_sleep`` and never blocks the event loop."""
        run = _Run(self, self.task or _task_name(function))
        loop = asyncio.get_running_loop()
        while True:
            try:
                result = await function(*args, **kwargs)
            except Exception as exc:
                delay = await loop.run_in_executor(None, run.failed, exc)
                if delay is None:
                    raise
                await self.async_sleep(delay)
                continue
            run.succeeded()
            return result


class _Run:
    """The state of one call with retries: attempts so far, their history, the correlation."""

    def __init__(self, retrying: Retrying, task: str) -> None:
        self.retrying = retrying
        self.task = task
        self.correlation = retrying.correlation or new_correlation()
        self.started = retrying.clock()
        self.attempt = 1
        self.history: list[Attempt] = []

    def failed(self, exc: BaseException) -> float | None:
        """Record the failure and ask the error handler; the delay before retrying, or None to give up."""
        retrying, policy = self.retrying, self.retrying.policy
        store = retrying.router.store
        failure = record_failure(store, self.task, exc, actor=retrying.caller, correlation=self.correlation)
        failed_at = failure.ts
        elapsed = retrying.clock() - self.started
        proposed = policy.backoff(self.attempt, retrying.random)
        retries_left = not retrying.router.stopping and self.attempt <= policy.max_retries and (
            policy.deadline is None or elapsed + proposed <= policy.deadline
        )
        decision: Decision = retrying.router.consult(
            ReportFailure(
                plugin=self.task, exception=exc, where="task", correlation=self.correlation, failure=failure,
                failed_at=failed_at, attempt=self.attempt,
                retry_delay=proposed if retries_left and policy.retryable(exc) else None,
                retries_left=retries_left,
            )
        )
        if decision.action == "retry":
            self.history.append(Attempt(self.attempt, qualified_name(exc), str(exc), decision.delay))
            store.append(
                RetryScheduled(task=self.task, attempt=self.attempt, delay=decision.delay, exc_type=qualified_name(exc)),
                actor=retrying.caller, correlation=self.correlation,
            )
            self.attempt += 1
            return decision.delay
        self.history.append(Attempt(self.attempt, qualified_name(exc), str(exc), None))
        store.append(
            fit_texts(
                TaskGaveUp(task=self.task, attempts=self.attempt, exc_type=qualified_name(exc), message=safe_str(exc)),
                ("message",), store.max_payload_bytes,
            )[0],
            actor=retrying.caller, correlation=self.correlation,
        )
        exc.attempts = tuple(self.history)  # type: ignore[attr-defined]
        exc.add_note(
            f"actorlog: task {self.task!r} gave up after {self.attempt} attempt(s) ({decision.reason}); "
            f"correlation {self.correlation}"
        )
        return None

    def succeeded(self) -> None:
        self.retrying.router.store.append(
            TaskSucceeded(task=self.task, attempts=self.attempt),
            actor=self.retrying.caller, correlation=self.correlation,
        )


def _task_name(function: Callable[..., Any]) -> str:
    """A readable task name: the function's qualified name, or a callable object's class name."""
    name = getattr(function, "__qualname__", None)
    return name if isinstance(name, str) else type(function).__qualname__


def make_retrying(
    router: Router,
    policy: RetryPolicy | None,
    options: Mapping[str, Any],
    *,
    task: str | None,
    caller: str,
    correlation: str | None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    async_sleep: Callable[[float], Awaitable[None]] | None = None,
    random: Callable[[], float] | None = None,
) -> Retrying:
    """A `Retrying` from a policy or policy fields, with the injectables that were given."""
    if policy is not None and options:
        raise TypeError("give either a RetryPolicy or its fields as keyword arguments, not both")
    injected: dict[str, Any] = {
        name: value
        for name, value in (("clock", clock), ("sleep", sleep), ("async_sleep", async_sleep), ("random", random))
        if value is not None
    }
    return Retrying(
        router, policy or RetryPolicy(**options), task=task, caller=caller, correlation=correlation, **injected
    )
