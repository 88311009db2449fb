"""Shared message types, exceptions, plugins and helpers for the error-handling tests
(tests/test_errors_*.py).

Message tags start with "t4." and are unique across the test session (the default type
registry is process-global). Plugins reach test-owned objects through `share`/`shared`
from actor_helpers.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable, Iterable
from typing import Any

from actor_helpers import live_events, shared, wait_until
from actorlog.actors import ActorSystem, Plugin, handler
from actorlog.events import Message, register
from actorlog.store.records import EventRecord

# -- application-defined exceptions --------------------------------------------------------------


class AppError(Exception):
    """An application error (low by default: not in the default severities)."""


class PaymentDeclined(AppError):
    """A subclass of AppError: mappings for AppError apply to it along the MRO."""


class Fatal(Exception):
    """Mapped to "critical" by the tests that need a critical application error."""


class DeepFatal(Fatal):
    """A subclass of Fatal."""


def _unicode_error(text: str) -> UnicodeDecodeError:
    return UnicodeDecodeError("utf-8", b"\xff", 0, 1, text)


EXCEPTIONS: dict[str, Callable[[str], BaseException]] = {
    "SystemExit": SystemExit,
    "KeyboardInterrupt": lambda text: KeyboardInterrupt(text),
    "MemoryError": MemoryError,
    "OSError": OSError,
    "ConnectionError": ConnectionError,
    "ConnectionResetError": ConnectionResetError,
    "FileNotFoundError": FileNotFoundError,
    "TimeoutError": TimeoutError,
    "ValueError": ValueError,
    "TypeError": TypeError,
    "UnicodeDecodeError": _unicode_error,
    "KeyError": KeyError,
    "RuntimeError": RuntimeError,
    "ZeroDivisionError": ZeroDivisionError,
    "AppError": AppError,
    "PaymentDeclined": PaymentDeclined,
    "Fatal": Fatal,
    "DeepFatal": DeepFatal,
}
"""Exceptions a `Faulty` plugin can be made to raise, by name."""


def make_exception(kind: str, text: str = "failed") -> BaseException:
    return EXCEPTIONS[kind](text)


def qualname_of(exc_type: type[BaseException]) -> str:
    return f"{exc_type.__module__}.{exc_type.__qualname__}"


def severity_by_mro(table: dict[type[BaseException], str], exc_type: type[BaseException]) -> str:
    """A plain reference computation of a severity: the nearest registered base, else low."""
    for klass in exc_type.__mro__:
        if klass in table:
            return table[klass]
    return "low"


# -- message types ---------------------------------------------------------------------------------


@register
class Fail(Message, tag="t4.fail", frozen=True):
    """Raise the exception named ``error`` (a key of EXCEPTIONS) with ``text``."""

    error: str
    text: str = "failed"


@register
class Tally(Message, tag="t4.tally", frozen=True):
    """Count up; answer (count, instance number)."""


@register
class Fetch(Message, tag="t4.fetch", frozen=True):
    """Run a task with ``self.context.retry`` that fails ``fails`` times with ConnectionError.

    ``delays`` is the key of a shared list the injected sleep appends to.
    """

    fails: int
    delays: str
    max_retries: int = 2


# -- plugins ---------------------------------------------------------------------------------------

_instances = itertools.count(1)


class Faulty(Plugin):
    """Raises on demand, counts, and runs retried tasks from inside a handler.

    Config (optional): ``raised``: key of a shared Recorder that gets
    (plugin, exception) for every exception it raises from `Fail`.
    """

    def __init__(self, context: Any, config: Any) -> None:
        super().__init__(context, config)
        self.instance = next(_instances)
        self.count = 0

    @handler
    def fail(self, message: Fail) -> None:
        exc = make_exception(message.error, message.text)
        key = self.config.get("raised")
        if key:
            shared(key).append((self.context.name, exc))
        raise exc

    @handler
    def tally(self, message: Tally) -> tuple[int, int]:
        self.count += 1
        return (self.count, self.instance)

    @handler
    def fetch(self, message: Fetch) -> tuple[str, str | None, int]:
        attempts = 0

        def flaky() -> str:
            nonlocal attempts
            attempts += 1
            if attempts <= message.fails:
                raise ConnectionError(f"refused {attempts}")
            return "fetched"

        retrying = self.context.retry(
            "fetch-in-plugin", max_retries=message.max_retries, sleep=shared(message.delays).append,
            random=lambda: 0.5,
        )
        return (retrying.call(flaky), self.context.correlation, attempts)


# -- the seed scenario -------------------------------------------------------------------------------

FAIL_RATE = 0.7


class SeededFlaky:
    """A task that fails with ConnectionError FAIL_RATE of the time, driven by random.Random(seed).

    Keeps every exception it raised (``raised``) and the number of calls.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.calls = 0
        self.raised: list[BaseException] = []

    def __call__(self) -> str:
        self.calls += 1
        if self.rng.random() < FAIL_RATE:
            exc = ConnectionError(f"connection refused (call {self.calls})")
            self.raised.append(exc)
            raise exc
        return f"prices after {self.calls} call(s)"


def failures_before_success(seed: int, limit: int = 50) -> int:
    """How many draws of random.Random(seed) fail before the first success (plain simulation)."""
    rng = random.Random(seed)
    for n in range(limit):
        if not rng.random() < FAIL_RATE:
            return n
    return limit


def seed_with(failures: int) -> int:
    """The first seed whose draws fail exactly ``failures`` times before succeeding."""
    return next(s for s in itertools.count() if failures_before_success(s) == failures)


def seed_failing_at_least(failures: int) -> int:
    """The first seed whose first ``failures`` draws all fail."""
    return next(s for s in itertools.count() if failures_before_success(s) >= failures)


def full_jitter_delays(count: int, draw: float = 0.5, base: float = 1.0, factor: float = 2.0, cap: float = 30.0) -> list[float]:
    """The default backoff (full jitter) with a fixed draw, computed plainly."""
    return [draw * min(cap, base * factor**i) for i in range(count)]


class FakeClock:
    """A clock advanced only by the injected sleep (and by ``advance``)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- reading outcomes ----------------------------------------------------------------------------------

RECOVERY_KINDS = (
    "failure.raised", "failure.assessed", "recovery.decided", "retry.scheduled", "task.succeeded", "task.gave_up",
)


def recovery_records(records: Iterable[EventRecord]) -> list[EventRecord]:
    return [r for r in records if r.kind in RECOVERY_KINDS]


def decisions(system: ActorSystem) -> list[EventRecord]:
    return live_events(system, kinds=["recovery.decided"])


def wait_decisions(system: ActorSystem, count: int) -> list[EventRecord]:
    """Wait until ``count`` recovery decisions are in the log; return them."""
    return wait_until(
        lambda: (found := decisions(system)) and len(found) >= count and found, what=f"{count} decision(s)"
    )


def wait_settled(system: ActorSystem, name: str, states: Iterable[str] = ("running", "stopped")) -> str:
    """Wait until plugin ``name`` is in one of ``states`` (not starting or stopping); return it.

    A decision is logged before the supervisor carries it out: to wait for a stop, pass
    ``["stopped"]``, since the plugin may still read ``running`` just after the decision.
    """
    wanted = set(states)

    def settled() -> str | None:
        state = system.state(name)  # read once: a second read may see a later state
        return state if state in wanted else None

    found: str = wait_until(settled, what=f"{name} settled")
    return found


def decide_one(system: ActorSystem, name: str, failure: Fail, *, correlation: str | None = None) -> EventRecord:
    """Tell ``failure`` to plugin ``name``, wait for one more decision, and return it."""
    before = len(decisions(system))
    system.tell(name, failure, correlation=correlation)
    return wait_decisions(system, before + 1)[before]


class Gate:
    """Lets a test hold an error-policy handler until it has done something meanwhile."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def hold(self, timeout: float = 10.0) -> bool:
        self.entered.set()
        return self.release.wait(timeout)
