"""Error policy: severity mapping, handler and strategy lookup along the MRO, async handlers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from actor_helpers import Recorder, read_log, wait_until
from actorlog.actors import DEFAULT_ACTIONS, DEFAULT_SEVERITIES, ActorSystem, Decision, ErrorPolicy, Failure
from error_helpers import (
    AppError,
    DeepFatal,
    Fail,
    Fatal,
    Faulty,
    PaymentDeclined,
    decide_one,
    make_exception,
    qualname_of,
    wait_settled,
)

# -- severity mapping: unit ------------------------------------------------------------------------

DEFAULT_EXPECTED = {
    "SystemExit": "critical",
    "KeyboardInterrupt": "critical",
    "MemoryError": "high",
    "OSError": "high",
    "ConnectionError": "high",
    "ConnectionResetError": "high",
    "FileNotFoundError": "high",
    "TimeoutError": "high",
    "ValueError": "medium",
    "TypeError": "medium",
    "UnicodeDecodeError": "medium",
    "RuntimeError": "low",
    "ZeroDivisionError": "low",
    "KeyError": "low",
    "AppError": "low",
    "PaymentDeclined": "low",
}


@pytest.mark.parametrize(("kind", "severity"), sorted(DEFAULT_EXPECTED.items()))
def test_default_severity_of(kind: str, severity: str) -> None:
    assert ErrorPolicy().severity_of(make_exception(kind, "x")) == severity


def test_default_tables() -> None:
    assert DEFAULT_ACTIONS == {"critical": "escalate", "high": "restart", "medium": "continue", "low": "continue"}
    assert DEFAULT_SEVERITIES[SystemExit] == "critical" and DEFAULT_SEVERITIES[OSError] == "high"
    assert DEFAULT_SEVERITIES[ValueError] == "medium"


def test_application_severities_win_and_apply_to_subclasses() -> None:
    policy = ErrorPolicy(severities={AppError: "critical", ValueError: "high", ConnectionError: "low"})
    assert policy.severity_of(AppError("x")) == "critical"
    assert policy.severity_of(PaymentDeclined("x")) == "critical"  # along the MRO
    assert policy.severity_of(ValueError("x")) == "high"  # overrides the default
    assert policy.severity_of(make_exception("UnicodeDecodeError")) == "high"  # subclass of ValueError
    assert policy.severity_of(ConnectionResetError("x")) == "low"  # nearest registered base wins
    assert policy.severity_of(FileNotFoundError("x")) == "high"  # still the OSError default
    assert policy.severity_of(TypeError("x")) == "medium"  # untouched defaults stay
    assert policy.severity_of(RuntimeError("x")) == "low"
    # the default tables are not modified by a policy
    assert DEFAULT_SEVERITIES[ValueError] == "medium" and AppError not in DEFAULT_SEVERITIES
    assert ErrorPolicy().severity_of(AppError("x")) == "low"


def test_unknown_default_action_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        ErrorPolicy(actions={"low": "explode"})  # type: ignore[dict-item]


# -- severity mapping: in a running system ----------------------------------------------------------


def test_failure_assessed_carries_the_severity(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    # every severity continues, so one plugin survives all the failures
    policy = ErrorPolicy(
        severities={AppError: "critical", Fatal: "high", KeyError: "medium"},
        actions={"critical": "continue", "high": "continue"},
    )
    kinds = [*DEFAULT_EXPECTED, "Fatal", "DeepFatal"]
    expected = {
        **DEFAULT_EXPECTED, "AppError": "critical", "PaymentDeclined": "critical", "KeyError": "medium",
        "Fatal": "high", "DeepFatal": "high",
    }
    with ActorSystem(path, error_policy=policy) as system:
        system.register("faulty", Faulty)
        system.start()
        for kind in kinds:
            decide_one(system, "faulty", Fail(error=kind, text=kind))
            wait_settled(system, "faulty")
    records = read_log(path, kinds=["failure.assessed"])
    assert [r.event.severity for r in records] == [expected[kind] for kind in kinds]
    assert [r.event.exc_type for r in records] == [qualname_of(type(make_exception(k))) for k in kinds]
    decided = read_log(path, kinds=["recovery.decided"])
    assert [r.event.severity for r in decided] == [expected[kind] for kind in kinds]


# -- handler lookup along the MRO ----------------------------------------------------------------------


def test_lookup_of_handlers_and_strategies_follows_the_mro(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    calls = Recorder()

    def on_os(failure: Failure) -> Decision:
        calls.append(("os", type(failure.exception).__name__))
        return Decision("continue", reason="by the OSError handler")

    def on_connection(failure: Failure) -> Decision:
        calls.append(("connection", type(failure.exception).__name__))
        return Decision("continue", reason="by the ConnectionError handler")

    policy = ErrorPolicy(handlers={OSError: on_os})

    @policy.handler(ConnectionError)
    def on_connection_decorated(failure: Failure) -> Decision:
        return on_connection(failure)

    assert policy.handlers[ConnectionError] is on_connection_decorated  # the decorator returns the function
    with ActorSystem(path, error_policy=policy) as system:
        system.register("faulty", Faulty)
        system.start()
        for kind in ("ConnectionResetError", "ConnectionError", "FileNotFoundError", "OSError", "TimeoutError"):
            decide_one(system, "faulty", Fail(error=kind))
            wait_settled(system, "faulty")
        assert system.restarts("faulty") == 0  # the handlers' continue beat the default restart of OSErrors
    assert calls.items == [
        ("connection", "ConnectionResetError"),
        ("connection", "ConnectionError"),
        ("os", "FileNotFoundError"),
        ("os", "OSError"),
        ("os", "TimeoutError"),
    ]
    reasons = [r.event.reason for r in read_log(path, kinds=["recovery.decided"])]
    assert reasons == ["by the ConnectionError handler"] * 2 + ["by the OSError handler"] * 3
    assert {r.event.action for r in read_log(path, kinds=["recovery.decided"])} == {"continue"}


def test_strategies_are_consulted_when_no_handler_decides(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    calls = Recorder()

    def passing(failure: Failure) -> None:
        calls.append(("handler", type(failure.exception).__name__))
        return None

    policy = ErrorPolicy(
        handlers={OSError: passing},
        strategies={OSError: lambda failure: Decision("continue", reason="OSError strategy")},
    )

    @policy.strategy(ConnectionError)
    def connection_strategy(failure: Failure) -> str:
        calls.append(("strategy", type(failure.exception).__name__))
        return "stop"

    assert policy.strategies[ConnectionError] is connection_strategy
    with ActorSystem(path, error_policy=policy) as system:
        system.register("faulty", Faulty)
        system.register("other", Faulty)
        system.start()
        # FileNotFoundError: the handler passes, the OSError strategy decides (not the default restart)
        first = decide_one(system, "faulty", Fail(error="FileNotFoundError"))
        wait_settled(system, "faulty")
        # ConnectionResetError: the handler passes, the most specific strategy decides
        second = decide_one(system, "other", Fail(error="ConnectionResetError"))
        wait_settled(system, "other", ["stopped"])
        assert system.state("faulty") == "running" and system.restarts("faulty") == 0
    assert (first.event.action, first.event.reason) == ("continue", "OSError strategy")
    assert second.event.action == "stop" and "connection_strategy" in second.event.reason
    assert calls.items == [
        ("handler", "FileNotFoundError"),
        ("handler", "ConnectionResetError"),
        ("strategy", "ConnectionResetError"),
    ]


def test_handler_sees_the_failure(tmp_path: Path) -> None:
    seen = Recorder()

    def look(failure: Failure) -> None:
        seen.append(failure)

    with ActorSystem(tmp_path / "app.db", error_policy=ErrorPolicy(handlers={Exception: look})) as system:
        system.register("faulty", Faulty)
        system.start()
        decide_one(system, "faulty", Fail(error="PaymentDeclined", text="card"), correlation="corr-look")
        wait_settled(system, "faulty")
    (failure,) = seen.items
    assert failure.plugin == "faulty" and failure.where == "handler" and failure.correlation == "corr-look"
    assert isinstance(failure.exception, PaymentDeclined) and str(failure.exception) == "card"
    assert failure.severity == "low" and failure.attempt == 1  # its first delivery


# -- async handlers and strategies ------------------------------------------------------------------------


def test_async_handlers_and_strategies_decide(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    awaited = Recorder()
    policy = ErrorPolicy(severities={Fatal: "medium"})

    @policy.handler(ValueError)
    async def reconnect(failure: Failure) -> Decision:
        await asyncio.sleep(0)
        awaited.append("handler")
        return Decision("restart", reason="async handler")

    @policy.handler(Fatal)
    async def passing(failure: Failure) -> None:
        await asyncio.sleep(0)
        awaited.append("passing")
        return None

    @policy.strategy(DeepFatal)
    async def stop_it(failure: Failure) -> str:
        await asyncio.sleep(0)
        awaited.append("strategy")
        return "stop"

    with ActorSystem(path, error_policy=policy) as system:
        system.register("faulty", Faulty)
        system.start()
        # a medium failure (default: continue) that the async handler restarts
        decide_one(system, "faulty", Fail(error="UnicodeDecodeError"))
        wait_until(lambda: system.restarts("faulty") == 1, what="the async handler's restart")
        wait_settled(system, "faulty")
        # a medium failure that the async handler passes on: the async strategy stops the plugin
        decide_one(system, "faulty", Fail(error="DeepFatal"))
        wait_settled(system, "faulty", ["stopped"])
    decided = read_log(path, kinds=["recovery.decided"])
    assert [(r.event.action, r.event.reason) for r in decided] == [
        ("restart", "async handler"),
        ("stop", decided[1].event.reason),
    ]
    assert "stop_it" in decided[1].event.reason
    assert awaited.items == ["handler", "passing", "strategy"]


def test_async_handler_decision_overrides_the_default(tmp_path: Path) -> None:
    """An async handler's continue beats the default restart of a high failure."""
    path = tmp_path / "app.db"
    policy = ErrorPolicy()

    @policy.handler(OSError)
    async def keep_going(failure: Failure) -> Decision:
        await asyncio.sleep(0)
        return Decision("continue", reason="async keeps going")

    with ActorSystem(path, error_policy=policy) as system:
        system.register("faulty", Faulty)
        system.start()
        decided = decide_one(system, "faulty", Fail(error="OSError"))
        wait_settled(system, "faulty")
        decide_one(system, "faulty", Fail(error="FileNotFoundError"))
        wait_settled(system, "faulty")
        assert system.restarts("faulty") == 0
    assert (decided.event.action, decided.event.reason) == ("continue", "async keeps going")
    assert [r.event.action for r in read_log(path, kinds=["recovery.decided"])] == ["continue", "continue"]
    assert not read_log(path, kinds=["plugin.restarted"])
