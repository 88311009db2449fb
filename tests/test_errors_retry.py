"""Resilient execution: system.retry / context.retry, the retry policy, and the error
handler's say in every retry. Nothing sleeps: sleep, async_sleep, clock and random are injected."""

from __future__ import annotations

import asyncio
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actor_helpers import Recorder, kinds_of, read_log, share, wait_until
from actorlog.store.records import EventRecord
from actorlog.actors import (
    ActorSystem,
    Attempt,
    Decision,
    EscalationError,
    ErrorPolicy,
    Failure,
    RetryPolicy,
    Retrying,
)
from error_helpers import (
    FakeClock,
    Fatal,
    Faulty,
    Fetch,
    SeededFlaky,
    failures_before_success,
    full_jitter_delays,
    recovery_records,
    seed_failing_at_least,
    seed_with,
)

CONN = "builtins.ConnectionError"


def _fixed(value: float = 0.5) -> Any:
    return lambda: value


def expected_success_kinds(failures: int) -> list[str]:
    return ["failure.raised", "failure.assessed", "recovery.decided", "retry.scheduled"] * failures + [
        "task.succeeded"
    ]


def expected_gave_up_kinds(retries: int) -> list[str]:
    return ["failure.raised", "failure.assessed", "recovery.decided", "retry.scheduled"] * retries + [
        "failure.raised", "failure.assessed", "recovery.decided", "task.gave_up",
    ]


def single_correlation(records: list[EventRecord]) -> str:
    correlations = {r.correlation for r in records}
    assert len(correlations) == 1 and None not in correlations, correlations
    correlation = correlations.pop()
    assert correlation is not None
    return correlation


# -- the seed scenario ------------------------------------------------------------------------------------


def check_success(path: Path, task: SeededFlaky, result: str, delays: list[float], failures: int, name: str) -> None:
    assert result == f"prices after {failures + 1} call(s)"
    assert task.calls == failures + 1
    expected_delays = full_jitter_delays(failures)
    assert delays == expected_delays
    records = recovery_records(read_log(path))
    assert kinds_of(records) == expected_success_kinds(failures)
    correlation = single_correlation(records)
    correlated = [r for r in read_log(path, correlation=correlation)]
    assert correlated == records  # nothing else under that correlation, nothing of the task outside it
    for i in range(failures):
        raised, assessed, decided, scheduled = records[4 * i : 4 * i + 4]
        assert (raised.event.plugin, raised.event.exc_type) == (name, CONN)
        assert raised.event.message == str(task.raised[i])
        assert raised.actor == "app" and scheduled.actor == "app"
        assert assessed.event.failure_seq == raised.seq and decided.event.failure_seq == raised.seq
        assert assessed.event.failed_at == raised.ts
        assert assessed.event.severity == "high" and assessed.event.plugin == name
        assert (decided.event.action, decided.event.delay) == ("retry", expected_delays[i])
        assert (scheduled.event.task, scheduled.event.attempt, scheduled.event.delay, scheduled.event.exc_type) == (
            name, i + 1, expected_delays[i], CONN,
        )
    succeeded = records[-1]
    assert (succeeded.event.task, succeeded.event.attempts, succeeded.actor) == (name, failures + 1, "app")
    assert not read_log(path, kinds=["plugin.restarted", "escalated"])


def check_gave_up(path: Path, task: SeededFlaky, exc: BaseException, delays: list[float], retries: int, name: str) -> None:
    assert task.calls == retries + 1
    assert exc is task.raised[-1]  # the original exception instance
    assert type(exc) is ConnectionError
    expected_delays = full_jitter_delays(retries)
    assert delays == expected_delays
    assert exc.attempts == tuple(  # type: ignore[attr-defined]
        Attempt(i + 1, CONN, str(task.raised[i]), expected_delays[i] if i < retries else None)
        for i in range(retries + 1)
    )
    assert all(isinstance(a, Attempt) for a in exc.attempts)  # type: ignore[attr-defined]
    notes = getattr(exc, "__notes__", [])
    assert len(notes) == 1 and f"{retries + 1} attempt(s)" in notes[0] and name in notes[0]
    records = recovery_records(read_log(path))
    assert kinds_of(records) == expected_gave_up_kinds(retries)
    correlation = single_correlation(records)
    assert correlation in notes[0]
    assert read_log(path, correlation=correlation) == records
    decided = [r.event for r in records if r.kind == "recovery.decided"]
    assert [d.action for d in decided] == ["retry"] * retries + ["stop"]
    assert [d.delay for d in decided[:-1]] == expected_delays
    scheduled = [r.event for r in records if r.kind == "retry.scheduled"]
    assert [(s.attempt, s.delay) for s in scheduled] == list(zip(range(1, retries + 1), expected_delays))
    gave_up = records[-1].event
    assert (gave_up.task, gave_up.attempts, gave_up.exc_type, gave_up.message) == (
        name, retries + 1, CONN, str(exc),
    )


@pytest.mark.parametrize("failures", [0, 1, 3, 5])
def test_seed_scenario_succeeds_after_k_failures(tmp_path: Path, failures: int) -> None:
    seed = seed_with(failures)
    path = tmp_path / "app.db"
    task = SeededFlaky(seed)
    delays: list[float] = []

    def fetch_prices() -> str:
        return task()

    with ActorSystem(path) as system:
        retrying = system.retry(max_retries=5, retry_on=(ConnectionError,), sleep=delays.append, random=_fixed())
        result = retrying.call(fetch_prices)
    name = "test_seed_scenario_succeeds_after_k_failures.<locals>.fetch_prices"  # the default task name
    check_success(path, task, result, delays, failures, name)


@pytest.mark.parametrize("max_retries", [0, 2, 4])
def test_seed_scenario_gives_up_after_max_retries(tmp_path: Path, max_retries: int) -> None:
    seed = seed_failing_at_least(max_retries + 1)
    path = tmp_path / "app.db"
    task = SeededFlaky(seed)
    delays: list[float] = []
    with ActorSystem(path) as system:
        with pytest.raises(ConnectionError) as info:
            system.retry("prices", max_retries=max_retries, retry_on=(ConnectionError,), sleep=delays.append,
                         random=_fixed()).call(task)
        assert system.escalation is None
    check_gave_up(path, task, info.value, delays, max_retries, "prices")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), max_retries=st.integers(min_value=0, max_value=6))
def test_seed_scenario_for_any_seed(seed: int, max_retries: int) -> None:
    failures = failures_before_success(seed)
    task = SeededFlaky(seed)
    delays: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "app.db"
        with ActorSystem(path) as system:
            retrying = system.retry("prices", max_retries=max_retries, retry_on=(ConnectionError,),
                                    sleep=delays.append, random=_fixed())
            try:
                result = retrying.call(task)
            except ConnectionError as exc:
                outcome: Any = exc
            else:
                outcome = result
        if failures <= max_retries:
            check_success(path, task, outcome, delays, failures, "prices")
        else:
            check_gave_up(path, task, outcome, delays, max_retries, "prices")


# -- the retry policy -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jitter", "draw", "expected"),
    [
        ("none", 0.25, [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]),
        ("full", 0.25, [0.25, 0.5, 1.0, 2.0, 2.5, 2.5]),
        ("equal", 0.25, [0.625, 1.25, 2.5, 5.0, 6.25, 6.25]),
        ("full", 0.0, [0.0] * 6),
        ("equal", 0.0, [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]),
    ],
)
def test_backoff_formulas(jitter: Any, draw: float, expected: list[float]) -> None:
    policy = RetryPolicy(base=1.0, factor=2.0, max_delay=10.0, jitter=jitter)
    assert [policy.backoff(n, lambda: draw) for n in range(1, 7)] == expected


def test_backoff_with_other_base_and_factor() -> None:
    policy = RetryPolicy(base=0.5, factor=3.0, max_delay=100.0, jitter="none")
    assert [policy.backoff(n, lambda: 0.9) for n in range(1, 5)] == [0.5, 1.5, 4.5, 13.5]
    assert RetryPolicy(factor=1.0, jitter="none").backoff(7, lambda: 0.0) == 1.0
    assert RetryPolicy().jitter == "full" and RetryPolicy().max_retries == 3 and RetryPolicy().max_delay == 30.0


@pytest.mark.parametrize(
    "fields",
    [
        {"max_retries": -1}, {"base": -0.1}, {"factor": 0.5}, {"max_delay": -1.0}, {"jitter": "some"},
    ],
    ids=str,
)
def test_invalid_policies_are_refused(fields: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**fields)
    with ActorSystem(tmp_path / "app.db") as system:
        with pytest.raises(ValueError):
            system.retry(**fields)


def test_policy_and_fields_together_are_refused(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        with pytest.raises(TypeError):
            system.retry(policy=RetryPolicy(max_retries=1), max_retries=2)
        assert isinstance(system.retry(policy=RetryPolicy(max_retries=1)), Retrying)


def test_policy_object_is_used(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    delays: list[float] = []
    calls = []

    def always() -> None:
        calls.append(1)
        raise TimeoutError("slow")

    with ActorSystem(path) as system:
        policy = RetryPolicy(max_retries=2, base=3.0, jitter="none", retry_on=(TimeoutError,))
        with pytest.raises(TimeoutError):
            system.retry("p", policy=policy, sleep=delays.append).call(always)
    assert delays == [3.0, 6.0] and len(calls) == 3


def test_max_delay_caps_the_delay(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    delays: list[float] = []
    outcomes = iter([ConnectionError("1"), ConnectionError("2"), ConnectionError("3"), ConnectionError("4"), None])

    def task() -> str:
        exc = next(outcomes)
        if exc is not None:
            raise exc
        return "ok"

    with ActorSystem(path) as system:
        assert system.retry(max_retries=5, max_delay=3.0, jitter="none", sleep=delays.append).call(task) == "ok"
    assert delays == [1.0, 2.0, 3.0, 3.0]
    assert [r.event.delay for r in read_log(path, kinds=["retry.scheduled"])] == [1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(
    ("options", "exc"),
    [
        ({"retry_on": (ConnectionError,)}, ValueError("not retryable")),
        ({"retry_on": (OSError,), "give_up_on": (FileNotFoundError,)}, FileNotFoundError("gone")),
        ({"give_up_on": (KeyError,)}, KeyError("missing")),
    ],
    ids=["not-in-retry-on", "give-up-on-subclass", "give-up-on-default-retry-on"],
)
def test_exceptions_that_are_not_retried(tmp_path: Path, options: dict[str, Any], exc: Exception) -> None:
    path = tmp_path / "app.db"
    delays: list[float] = []
    calls = []

    def task() -> None:
        calls.append(1)
        raise exc

    with ActorSystem(path) as system:
        with pytest.raises(type(exc)) as info:
            system.retry("once", max_retries=5, sleep=delays.append, random=_fixed(), **options).call(task)
    assert info.value is exc and len(calls) == 1 and delays == []
    assert info.value.attempts == (Attempt(1, f"builtins.{type(exc).__name__}", str(exc), None),)  # type: ignore[attr-defined]
    records = recovery_records(read_log(path))
    assert kinds_of(records) == ["failure.raised", "failure.assessed", "recovery.decided", "task.gave_up"]
    assert records[2].event.action == "stop" and records[-1].event.attempts == 1


def test_retryable() -> None:
    policy = RetryPolicy(retry_on=(OSError,), give_up_on=(FileNotFoundError,))
    assert policy.retryable(ConnectionResetError())
    assert not policy.retryable(FileNotFoundError())
    assert not policy.retryable(ValueError())


def test_deadline_with_an_injected_clock(tmp_path: Path) -> None:
    """Waits of 1, 2 fit the deadline of 5 s; the next (4, at t=3) would pass it: give up."""
    path = tmp_path / "app.db"
    clock = FakeClock()
    calls: list[float] = []

    def task() -> None:
        calls.append(clock())
        raise ConnectionError("down")

    with ActorSystem(path) as system:
        retrying = system.retry("deadline", max_retries=10, jitter="none", deadline=5.0, clock=clock, sleep=clock.sleep)
        with pytest.raises(ConnectionError) as info:
            retrying.call(task)
    assert clock.slept == [1.0, 2.0]
    assert calls == [0.0, 1.0, 3.0]
    assert [a.delay for a in info.value.attempts] == [1.0, 2.0, None]  # type: ignore[attr-defined]
    records = recovery_records(read_log(path))
    assert kinds_of(records) == expected_gave_up_kinds(2)
    assert records[-1].event.attempts == 3


def test_deadline_counts_the_time_spent_in_attempts(tmp_path: Path) -> None:
    """The task itself takes 2 s per attempt: after attempt 2 (t=2+1+2=5) a wait of 2 would pass 6."""
    clock = FakeClock()
    calls = []

    def task() -> None:
        clock.advance(2.0)
        calls.append(clock())
        raise ConnectionError("slow and down")

    with ActorSystem(tmp_path / "app.db") as system:
        with pytest.raises(ConnectionError):
            system.retry(max_retries=10, jitter="none", deadline=6.0, clock=clock, sleep=clock.sleep).call(task)
    assert clock.slept == [1.0]
    assert calls == [2.0, 5.0]


def test_retry_handler_sees_the_attempt(tmp_path: Path) -> None:
    seen = Recorder()

    def look(failure: Failure) -> None:
        seen.append((failure.plugin, failure.where, failure.attempt, failure.retry_delay, failure.retries_left))

    failures = iter([ConnectionError("a"), ConnectionError("b"), ConnectionError("c")])

    def task() -> None:
        raise next(failures)

    with ActorSystem(tmp_path / "app.db", error_policy=ErrorPolicy(handlers={ConnectionError: look})) as system:
        with pytest.raises(ConnectionError):
            system.retry("seen", max_retries=2, jitter="none", sleep=lambda s: None).call(task)
    assert seen.items == [
        ("seen", "task", 1, 1.0, True),
        ("seen", "task", 2, 2.0, True),
        ("seen", "task", 3, None, False),
    ]


# -- decorator and call forms, sync and async -----------------------------------------------------------------


def test_decorator_on_a_function(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    delays: list[float] = []
    calls = []
    with ActorSystem(path) as system:

        @system.retry(max_retries=3, sleep=delays.append, random=_fixed())
        def add(a: int, b: int, *, scale: int = 1) -> int:
            """Adds."""
            calls.append((a, b, scale))
            if len(calls) < 3:
                raise ConnectionResetError(f"reset {len(calls)}")
            return (a + b) * scale

        assert add.__name__ == "add" and add.__doc__ == "Adds."
        assert add(2, 3, scale=10) == 50
    assert calls == [(2, 3, 10)] * 3
    assert delays == [0.5, 1.0]
    name = "test_decorator_on_a_function.<locals>.add"
    records = recovery_records(read_log(path))
    assert kinds_of(records) == expected_success_kinds(2)
    assert {r.event.task for r in records if r.kind in ("retry.scheduled", "task.succeeded")} == {name}
    assert {r.event.plugin for r in records if r.kind.startswith(("failure", "recovery"))} == {name}


def test_each_call_of_a_decorated_function_is_its_own_task(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        flips = iter([True, False, True, False])

        @system.retry("flip", max_retries=1, sleep=lambda s: None)
        def flip() -> str:
            if next(flips):
                raise ConnectionError("flip")
            return "ok"

        assert flip() == "ok" and flip() == "ok"
    records = recovery_records(read_log(path))
    assert kinds_of(records) == expected_success_kinds(1) * 2
    first, second = records[:5], records[5:]
    assert single_correlation(first) != single_correlation(second)
    assert [r.event.attempts for r in records if r.kind == "task.succeeded"] == [2, 2]


def test_call_passes_arguments_and_names_the_task(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    seen: list[str] = []

    def fetch(url: str, *, retries_seen: list[str]) -> str:
        retries_seen.append(url)
        if len(retries_seen) == 1:
            raise ConnectionError("refused")
        return f"got {url}"

    with ActorSystem(path) as system:
        retrying = system.retry("fetch", max_retries=2, sleep=lambda s: None, random=_fixed())
        assert retrying.call(fetch, "http://x", retries_seen=seen) == "got http://x"
        assert system.retry(sleep=lambda s: None).call(lambda: "first time") == "first time"
        assert system.retry(correlation="c-fixed", sleep=lambda s: None).call(fetch, "u", retries_seen=[]) == "got u"
    assert seen == ["http://x", "http://x"]
    succeeded = read_log(path, kinds=["task.succeeded"])
    assert [(r.event.task, r.event.attempts) for r in succeeded] == [
        ("fetch", 2), ("test_call_passes_arguments_and_names_the_task.<locals>.<lambda>", 1),
        ("test_call_passes_arguments_and_names_the_task.<locals>.fetch", 2),
    ]
    assert succeeded[-1].correlation == "c-fixed"
    assert [r.event.task for r in read_log(path, kinds=["retry.scheduled"])] == [
        "fetch", "test_call_passes_arguments_and_names_the_task.<locals>.fetch",
    ]
    assert [r.correlation for r in read_log(path, kinds=["retry.scheduled"])][-1] == "c-fixed"


def test_async_decorator_and_call_async(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    waited: list[float] = []

    async def record_wait(seconds: float) -> None:
        waited.append(seconds)
        await asyncio.sleep(0)

    def forbidden_sleep(seconds: float) -> None:
        raise AssertionError("the blocking sleep must not be used by async calls")

    with ActorSystem(path) as system:

        @system.retry(max_retries=3, async_sleep=record_wait, sleep=forbidden_sleep, random=_fixed())
        async def download(name: str, *, size: int) -> str:
            download.calls += 1  # type: ignore[attr-defined]
            await asyncio.sleep(0)
            if download.calls < 3:  # type: ignore[attr-defined]
                raise ConnectionError(f"down {download.calls}")  # type: ignore[attr-defined]
            return f"{name}:{size}"

        download.calls = 0  # type: ignore[attr-defined]
        assert asyncio.iscoroutinefunction(download)
        assert asyncio.run(download("file", size=3)) == "file:3"

        attempts = []

        async def upload(data: bytes, mode: str = "w") -> tuple[bytes, str]:
            attempts.append(1)
            if len(attempts) == 1:
                raise TimeoutError("slow")
            return data, mode

        retrying = system.retry("upload", max_retries=1, async_sleep=record_wait, sleep=forbidden_sleep,
                                random=_fixed(1.0), jitter="none")
        assert asyncio.run(retrying.call_async(upload, b"x", mode="a")) == (b"x", "a")
    assert waited == [0.5, 1.0, 1.0]
    succeeded = read_log(path, kinds=["task.succeeded"])
    assert [(r.event.task, r.event.attempts) for r in succeeded] == [
        ("test_async_decorator_and_call_async.<locals>.download", 3), ("upload", 2),
    ]
    records = recovery_records(read_log(path))
    assert kinds_of(records) == expected_success_kinds(2) + expected_success_kinds(1)


def test_async_retries_do_not_block_the_event_loop(tmp_path: Path) -> None:
    """The error handler's decision is awaited off the loop: here the handler itself waits for
    another coroutine on the loop to run; a blocked loop would leave it waiting (then "stop")."""
    requests = threading.Semaphore(0)
    grants = threading.Semaphore(0)

    def wait_for_the_loop(failure: Failure) -> Decision | str:
        requests.release()
        if not grants.acquire(timeout=10):
            return "stop"
        return Decision("retry", delay=0.25, reason="the loop is alive")

    policy = ErrorPolicy(handlers={ConnectionError: wait_for_the_loop})
    ticks: list[int] = []

    async def other_task(rounds: int) -> None:
        for i in range(rounds):
            while not requests.acquire(blocking=False):
                await asyncio.sleep(0.001)
            ticks.append(i)
            grants.release()

    waited: list[float] = []

    async def no_wait(seconds: float) -> None:
        waited.append(seconds)

    with ActorSystem(tmp_path / "app.db", error_policy=policy) as system:
        failures = iter([ConnectionError("1"), ConnectionError("2")])

        async def flaky() -> str:
            exc = next(failures, None)
            if exc is not None:
                raise exc
            return "done"

        async def main() -> tuple[str, None]:
            retrying = system.retry("alive", max_retries=3, async_sleep=no_wait)
            return await asyncio.gather(retrying.call_async(flaky), other_task(2))

        result, _ = asyncio.run(main())
    assert result == "done"
    assert ticks == [0, 1]
    assert waited == [0.25, 0.25]


def test_async_call_gives_up_with_the_original_exception(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    raised: list[BaseException] = []

    async def always() -> None:
        exc = ConnectionError(f"no {len(raised)}")
        raised.append(exc)
        raise exc

    async def no_wait(seconds: float) -> None:
        return None

    with ActorSystem(path) as system:
        with pytest.raises(ConnectionError) as info:
            asyncio.run(system.retry("async-gives-up", max_retries=2, async_sleep=no_wait, random=_fixed()).call_async(always))
    assert info.value is raised[-1] and len(raised) == 3
    assert len(info.value.attempts) == 3  # type: ignore[attr-defined]
    assert info.value.__notes__
    assert kinds_of(recovery_records(read_log(path))) == expected_gave_up_kinds(2)


# -- handlers override the retry decision for a task -------------------------------------------------------------


def test_handler_chooses_the_delay(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    delays: list[float] = []
    policy = ErrorPolicy(handlers={ConnectionError: lambda f: Decision("retry", delay=7.0, reason="my delay")})
    outcomes = iter([ConnectionResetError("reset"), None])

    def task() -> str:
        exc = next(outcomes)
        if exc:
            raise exc
        return "ok"

    with ActorSystem(path, error_policy=policy) as system:
        assert system.retry("seven", max_retries=3, sleep=delays.append, random=_fixed()).call(task) == "ok"
    assert delays == [7.0]
    records = recovery_records(read_log(path))
    assert kinds_of(records) == expected_success_kinds(1)
    assert (records[2].event.action, records[2].event.delay, records[2].event.reason) == ("retry", 7.0, "my delay")
    assert records[3].event.delay == 7.0


def test_handler_can_retry_what_the_policy_would_not(tmp_path: Path) -> None:
    delays: list[float] = []
    policy = ErrorPolicy(handlers={KeyError: lambda f: Decision("retry", delay=0.5)})
    outcomes = iter([KeyError("k"), None])

    def task() -> str:
        exc = next(outcomes)
        if exc:
            raise exc
        return "ok"

    with ActorSystem(tmp_path / "app.db", error_policy=policy) as system:
        assert system.retry(max_retries=2, retry_on=(ConnectionError,), sleep=delays.append).call(task) == "ok"
    assert delays == [0.5]


def test_handler_stop_gives_up_at_once(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    delays: list[float] = []
    calls = []
    policy = ErrorPolicy(handlers={ConnectionError: lambda f: "stop"})

    def task() -> None:
        calls.append(1)
        raise ConnectionError("refused")

    with ActorSystem(path, error_policy=policy) as system:
        with pytest.raises(ConnectionError) as info:
            system.retry("stopped", max_retries=5, sleep=delays.append).call(task)
    assert len(calls) == 1 and delays == []
    assert len(info.value.attempts) == 1  # type: ignore[attr-defined]
    records = recovery_records(read_log(path))
    assert kinds_of(records) == expected_gave_up_kinds(0)
    assert records[2].event.action == "stop"


def test_handler_retry_without_retries_left_becomes_stop(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    delays: list[float] = []
    calls = []
    policy = ErrorPolicy(handlers={ConnectionError: lambda f: Decision("retry", delay=2.0, reason="always retry")})

    def task() -> None:
        calls.append(1)
        raise ConnectionError(f"refused {len(calls)}")

    with ActorSystem(path, error_policy=policy) as system:
        with pytest.raises(ConnectionError) as info:
            system.retry("bounded", max_retries=1, sleep=delays.append).call(task)
    assert len(calls) == 2 and delays == [2.0]
    assert [a.delay for a in info.value.attempts] == [2.0, None]  # type: ignore[attr-defined]
    records = recovery_records(read_log(path))
    assert kinds_of(records) == expected_gave_up_kinds(1)
    decided = [r.event for r in records if r.kind == "recovery.decided"]
    assert [d.action for d in decided] == ["retry", "stop"]
    assert "always retry" in decided[1].reason and "no retry is left" in decided[1].reason
    assert records[-1].event.attempts == 2


def test_async_handler_overrides_a_task_decision(tmp_path: Path) -> None:
    delays: list[float] = []
    policy = ErrorPolicy()

    @policy.handler(OSError)
    async def slow_down(failure: Failure) -> Decision:
        await asyncio.sleep(0)
        assert failure.attempt is not None
        return Decision("retry", delay=failure.attempt * 10.0)

    outcomes = iter([OSError("1"), OSError("2"), None])

    def task() -> str:
        exc = next(outcomes)
        if exc:
            raise exc
        return "ok"

    with ActorSystem(tmp_path / "app.db", error_policy=policy) as system:
        assert system.retry(max_retries=5, sleep=delays.append).call(task) == "ok"
    assert delays == [10.0, 20.0]


# -- a critical failure in a task escalates --------------------------------------------------------------------------


def test_critical_failure_in_a_task_escalates(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    delays: list[float] = []
    exc = Fatal("the disk is on fire")
    policy = ErrorPolicy(severities={Fatal: "critical"})

    def task() -> None:
        raise exc

    with pytest.raises(EscalationError) as escalation:
        with ActorSystem(path, error_policy=policy) as system:
            system.register("faulty", Faulty)
            system.start()
            with pytest.raises(Fatal) as info:
                system.retry("doomed", max_retries=5, sleep=delays.append).call(task)
            assert info.value is exc
            assert len(info.value.attempts) == 1  # type: ignore[attr-defined]
            wait_until(lambda: system.escalation is not None, what="escalation")
            wait_until(lambda: system.state("faulty") == "stopped", what="plugins stopped")
    assert escalation.value.plugin == "doomed"
    assert delays == []
    records = read_log(path)
    task_records = recovery_records(records)
    assert kinds_of(task_records) == expected_gave_up_kinds(0)
    assert (task_records[1].event.severity, task_records[2].event.action) == ("critical", "escalate")
    escalated = [r for r in records if r.kind == "escalated"]
    assert [r.event.plugin for r in escalated] == ["doomed"]
    assert records[-1].kind == "run.stopped" and records[-1].event.clean is False


# -- retries inside a plugin -------------------------------------------------------------------------------------------


def test_retries_inside_a_plugin_carry_its_name_and_the_message_correlation(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    delays = Recorder()
    with ActorSystem(path) as system:
        system.register("fetcher", Faulty)
        system.start()
        reply = system.ask("fetcher", Fetch(fails=2, delays=share(delays)), timeout=10, correlation="c-fetch")
        assert reply == ("fetched", "c-fetch", 3)
        assert system.state("fetcher") == "running" and system.restarts("fetcher") == 0
    assert delays.items == [0.5, 1.0]
    records = recovery_records(read_log(path))
    assert kinds_of(records) == expected_success_kinds(2)
    assert {r.correlation for r in records} == {"c-fetch"}
    task_events = [r for r in records if r.kind in ("failure.raised", "retry.scheduled", "task.succeeded")]
    assert {r.actor for r in task_events} == {"fetcher"}
    assert {r.actor for r in records if r.kind in ("failure.assessed", "recovery.decided")} == {"errors"}
    assert {r.event.plugin for r in records if r.kind.startswith(("failure", "recovery"))} == {"fetch-in-plugin"}
    assert records[-1].event.task == "fetch-in-plugin" and records[-1].event.attempts == 3
    received = read_log(path, kinds=["message.received"])
    assert [r.correlation for r in received] == ["c-fetch"]


def test_a_task_giving_up_inside_a_plugin_is_a_failure_of_the_plugin(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    delays = Recorder()
    with ActorSystem(path) as system:
        system.register("fetcher", Faulty)
        system.start()
        with pytest.raises(ConnectionError) as info:
            system.ask("fetcher", Fetch(fails=5, delays=share(delays), max_retries=1), timeout=10, correlation="c-gu")
        assert len(info.value.attempts) == 2  # type: ignore[attr-defined]
        wait_until(lambda: system.restarts("fetcher") == 1, what="the plugin restarted (ConnectionError is high)")
    records = [r for r in read_log(path, correlation="c-gu") if r.kind in ("failure.raised", "task.gave_up")]
    assert [(r.kind, r.event.plugin if r.kind == "failure.raised" else r.event.task, r.actor) for r in records] == [
        ("failure.raised", "fetch-in-plugin", "fetcher"),
        ("failure.raised", "fetch-in-plugin", "fetcher"),
        ("task.gave_up", "fetch-in-plugin", "fetcher"),
        ("failure.raised", "fetcher", "fetcher"),
    ]
