"""The error handler actor: broken handlers, default actions, handler-chosen actions, and
the assessment and decision events of each failure."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from actor_helpers import Recorder, kinds_of, read_log, share, shared, wait_until
from actorlog.actors import (
    ActorSystem,
    Decision,
    EscalationError,
    ErrorPolicy,
    Failure,
    PluginNotRunningError,
)
from error_helpers import (
    Fail,
    Fatal,
    Faulty,
    Gate,
    Tally,
    decide_one,
    decisions,
    wait_decisions,
    wait_settled,
)

# -- a raising or broken handler -----------------------------------------------------------------------


class HandlerBroke(Exception):
    pass


def _raising(failure: Failure) -> Decision:
    raise HandlerBroke(f"cannot handle {type(failure.exception).__name__}")


async def _raising_async(failure: Failure) -> Decision:
    await asyncio.sleep(0)
    raise HandlerBroke(f"cannot handle {type(failure.exception).__name__}")


@pytest.mark.parametrize(
    ("function", "exc_type", "text"),
    [
        (_raising, "test_errors_handler.HandlerBroke", "cannot handle"),
        (_raising_async, "test_errors_handler.HandlerBroke", "cannot handle"),
        (lambda failure: 42, "builtins.TypeError", "42"),
        (lambda failure: "explode", "builtins.TypeError", "explode"),
    ],
    ids=["raises", "async-raises", "returns-42", "returns-unknown-action"],
)
def test_a_broken_handler_is_recorded_and_the_default_applies(
    tmp_path: Path, function: Any, exc_type: str, text: str
) -> None:
    path = tmp_path / "app.db"
    # the broken handler covers OSError (default: restart) so the default is observable
    policy = ErrorPolicy(handlers={OSError: function})
    with ActorSystem(path, error_policy=policy) as system:
        system.register("faulty", Faulty)
        system.start()
        first = decide_one(system, "faulty", Fail(error="ConnectionResetError", text="reset"), correlation="c-broken")
        wait_until(lambda: system.restarts("faulty") == 1, what="default restart")
        wait_settled(system, "faulty")
        # the error handler keeps working: the same broken handler again, then an unrelated failure
        second = decide_one(system, "faulty", Fail(error="FileNotFoundError"), correlation="c-again")
        wait_until(lambda: system.restarts("faulty") == 2, what="second default restart")
        wait_settled(system, "faulty")
        third = decide_one(system, "faulty", Fail(error="ValueError"), correlation="c-later")
        wait_settled(system, "faulty")
        assert system.restarts("faulty") == 2
    assert (first.event.action, first.event.severity) == ("restart", "high")
    assert "default for high severity" in first.event.reason
    assert second.event.action == "restart"
    assert (third.event.action, third.correlation) == ("continue", "c-later")

    records = read_log(path, kinds=["failure.raised"])
    handler_failures = [r for r in records if r.event.plugin == "errors"]
    assert [(r.actor, r.event.exc_type, r.correlation) for r in handler_failures] == [
        ("errors", exc_type, "c-broken"),
        ("errors", exc_type, "c-again"),
    ]
    assert all(text in r.event.message for r in handler_failures)
    assert all("Traceback" in r.event.traceback for r in handler_failures)
    plugin_failures = [r for r in records if r.event.plugin == "faulty"]
    assert [r.event.exc_type for r in plugin_failures] == [
        "builtins.ConnectionResetError", "builtins.FileNotFoundError", "builtins.ValueError",
    ]
    # the handler's failure is recorded between the plugin's failure and the decision on it
    correlated = [r for r in read_log(path, correlation="c-broken") if r.kind in ("failure.raised", "recovery.decided")]
    assert [(r.kind, r.event.plugin) for r in correlated] == [
        ("failure.raised", "faulty"), ("failure.raised", "errors"), ("recovery.decided", "faulty"),
    ]


# -- the default action of each severity, for plugin failures -------------------------------------------


@pytest.mark.parametrize("kind", ["SystemExit", "KeyboardInterrupt", "Fatal"])
def test_critical_escalates(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "app.db"
    policy = ErrorPolicy(severities={Fatal: "critical"})
    with pytest.raises(EscalationError) as info:
        with ActorSystem(path, error_policy=policy) as system:
            system.register("faulty", Faulty)
            system.register("bystander", Faulty)
            system.start()
            decided = decide_one(system, "faulty", Fail(error=kind, text="the end"))
            wait_until(lambda: system.escalation is not None, what="escalation")
            assert system.escalation is not None and system.escalation.plugin == "faulty"
            wait_until(lambda: set(system.plugins.values()) == {"stopped"}, what="every plugin stopped")
            escalation = system.escalation
    assert info.value is escalation
    assert (decided.event.action, decided.event.severity) == ("escalate", "critical")
    records = read_log(path)
    escalated = [r for r in records if r.kind == "escalated"]
    assert len(escalated) == 1 and escalated[0].event.plugin == "faulty"
    assert escalated[0].seq > decided.seq
    assert records[-1].kind == "run.stopped" and records[-1].event.clean is False


@pytest.mark.parametrize("kind", ["OSError", "ConnectionError", "FileNotFoundError", "MemoryError"])
def test_high_restarts(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("faulty", Faulty)
        system.start()
        assert system.ask("faulty", Tally(), timeout=5)[0] == 1
        old_instance = system.ask("faulty", Tally(), timeout=5)[1]
        decided = decide_one(system, "faulty", Fail(error=kind), correlation="c-high")
        wait_until(lambda: system.restarts("faulty") == 1, what="restart")
        count, instance = system.ask("faulty", Tally(), timeout=5)
        assert (count, instance != old_instance) == (1, True)  # a fresh instance
        assert system.restarts("faulty") == 1
    assert (decided.event.action, decided.event.severity) == ("restart", "high")
    restarted = read_log(path, kinds=["plugin.restarted"])
    assert [(r.event.plugin, r.event.restart_count, r.correlation) for r in restarted] == [("faulty", 1, "c-high")]


@pytest.mark.parametrize(
    ("kind", "severity"),
    [("ValueError", "medium"), ("UnicodeDecodeError", "medium"), ("TypeError", "medium"),
     ("RuntimeError", "low"), ("ZeroDivisionError", "low")],
)
def test_medium_and_low_continue_with_state_kept_and_stashed_messages_handled(
    tmp_path: Path, kind: str, severity: str
) -> None:
    path = tmp_path / "app.db"
    gate = Gate()

    def hold_then_pass(failure: Failure) -> None:
        gate.hold()
        return None  # the default decides

    # a pass-through strategy for everything: it only holds the decision back
    policy = ErrorPolicy(strategies={BaseException: hold_then_pass})
    with ActorSystem(path, error_policy=policy) as system:
        system.register("faulty", Faulty)
        system.start()
        system.ask("faulty", Tally(), timeout=5)
        count, instance = system.ask("faulty", Tally(), timeout=5)
        assert count == 2
        system.tell("faulty", Fail(error=kind))
        assert gate.entered.wait(10), "the error handler never consulted the strategy"
        assert system.state("faulty") == "running"  # the log has no suspension: the decision is still to come
        # sent while the plugin awaits its decision: stashed, handled after it continues
        system.tell("faulty", Tally())
        system.tell("faulty", Tally())
        gate.release.set()
        (decided,) = wait_decisions(system, 1)
        assert system.ask("faulty", Tally(), timeout=5) == (5, instance)  # same instance, state kept
        assert system.restarts("faulty") == 0
        assert system.state("faulty") == "running"
    assert (decided.event.action, decided.event.severity) == ("continue", severity)
    assert f"default for {severity} severity" in decided.event.reason
    records = read_log(path)
    assert not [r for r in records if r.kind in ("plugin.restarted", "plugin.failed")]
    tallies = [r for r in records if r.kind == "message.received" and r.event.message["kind"] == "t4.tally"]
    assert len(tallies) == 5
    assert all(r.seq > decided.seq for r in tallies[2:])  # the stashed two (and the last ask) came after


# -- actions chosen by a handler, carried out for a plugin -------------------------------------------------


def _choose(outcome: Any) -> ErrorPolicy:
    return ErrorPolicy(handlers={Exception: lambda failure: outcome})


@pytest.mark.parametrize(
    "outcome", [Decision("continue"), "continue", Decision("retry", delay=0.01), "retry"], ids=repr
)
def test_handler_continue_or_retry(tmp_path: Path, outcome: Any) -> None:
    """continue, and retry (for a plugin: continue after the delay); on a high failure whose default restarts."""
    path = tmp_path / "app.db"
    with ActorSystem(path, error_policy=_choose(outcome)) as system:
        system.register("faulty", Faulty)
        system.start()
        count, instance = system.ask("faulty", Tally(), timeout=5)
        decided = decide_one(system, "faulty", Fail(error="OSError"))
        system.tell("faulty", Tally())
        assert system.ask("faulty", Tally(), timeout=5) == (3, instance)
        assert system.restarts("faulty") == 0
    expected = outcome if isinstance(outcome, Decision) else Decision(outcome)
    assert (decided.event.action, decided.event.delay) == (expected.action, expected.delay)
    assert not read_log(path, kinds=["plugin.restarted"])


@pytest.mark.parametrize("outcome", [Decision("restart", reason="fresh start"), "restart"], ids=repr)
def test_handler_restart(tmp_path: Path, outcome: Any) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path, error_policy=_choose(outcome)) as system:
        system.register("faulty", Faulty)
        system.register("dependent", Faulty, depends_on=["faulty"])
        system.start()
        system.ask("faulty", Tally(), timeout=5)
        decided = decide_one(system, "faulty", Fail(error="ValueError"))  # default would continue
        wait_until(lambda: system.restarts("faulty") == 1, what="restart")
        assert system.ask("faulty", Tally(), timeout=5)[0] == 1
        assert system.restarts("dependent") == 0
    assert decided.event.action == "restart"
    assert [r.event.plugin for r in read_log(path, kinds=["plugin.restarted"])] == ["faulty"]


@pytest.mark.parametrize("outcome", [Decision("restart_with_dependents"), "restart_with_dependents"], ids=repr)
def test_handler_restart_with_dependents(tmp_path: Path, outcome: Any) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path, error_policy=_choose(outcome)) as system:
        system.register("faulty", Faulty)
        system.register("dependent", Faulty, depends_on=["faulty"])
        system.register("unrelated", Faulty)
        system.start()
        decided = decide_one(system, "faulty", Fail(error="RuntimeError"))
        wait_until(lambda: system.restarts("dependent") == 1, what="dependent restarted")
        assert {name: system.restarts(name) for name in system.plugins} == {
            "faulty": 1, "dependent": 1, "unrelated": 0,
        }
        assert system.ask("dependent", Tally(), timeout=5)[0] == 1
    assert decided.event.action == "restart_with_dependents"
    assert [r.event.plugin for r in read_log(path, kinds=["plugin.restarted"])] == ["faulty", "dependent"]


@pytest.mark.parametrize("outcome", [Decision("stop"), "stop"], ids=repr)
def test_handler_stop(tmp_path: Path, outcome: Any) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path, error_policy=_choose(outcome)) as system:
        system.register("faulty", Faulty)
        system.register("other", Faulty)
        system.start()
        decided = decide_one(system, "faulty", Fail(error="ValueError"))
        wait_settled(system, "faulty", ["stopped"])
        with pytest.raises(PluginNotRunningError):
            system.ask("faulty", Tally(), timeout=5)
        assert system.ask("other", Tally(), timeout=5)[0] == 1
        assert system.escalation is None
    assert decided.event.action == "stop"
    assert not read_log(path, kinds=["plugin.restarted"])


@pytest.mark.parametrize("outcome", [Decision("escalate", reason="enough"), "escalate"], ids=repr)
def test_handler_escalate(tmp_path: Path, outcome: Any) -> None:
    path = tmp_path / "app.db"
    with pytest.raises(EscalationError):
        with ActorSystem(path, error_policy=_choose(outcome)) as system:
            system.register("faulty", Faulty)
            system.start()
            decided = decide_one(system, "faulty", Fail(error="RuntimeError"))  # low: default continues
            wait_until(lambda: system.escalation is not None, what="escalation")
    assert decided.event.action == "escalate"
    assert [r.event.plugin for r in read_log(path, kinds=["escalated"])] == ["faulty"]


# -- every assessment and decision is an event with the failure's correlation --------------------------------


@pytest.mark.parametrize("kind", ["ValueError", "OSError", "RuntimeError"])
def test_assessment_and_decision_events_share_the_failures_correlation(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("faulty", Faulty)
        system.start()
        system.tell("faulty", Fail(error=kind, text="broken"), correlation="c-1")
        wait_decisions(system, 1)
        wait_settled(system, "faulty")
        system.tell("faulty", Fail(error="RuntimeError", text="other"), correlation="c-2")
        wait_decisions(system, 2)
        wait_settled(system, "faulty")
    severity = {"ValueError": "medium", "OSError": "high", "RuntimeError": "low"}[kind]
    action = {"medium": "continue", "high": "restart", "low": "continue"}[severity]
    records = read_log(path, correlation="c-1")
    failure_kinds = [r for r in records if r.kind in ("failure.raised", "failure.assessed", "recovery.decided")]
    assert kinds_of(failure_kinds) == ["failure.raised", "failure.assessed", "recovery.decided"]
    assert kinds_of(records)[:4] == ["message.received", "failure.raised", "failure.assessed", "recovery.decided"]
    raised, assessed, decided = failure_kinds
    assert raised.actor == "faulty" and assessed.actor == "errors" and decided.actor == "errors"
    assert raised.seq < assessed.seq < decided.seq
    assert (raised.event.exc_type, raised.event.message) == (f"builtins.{kind}", "broken")
    assert (assessed.event.plugin, assessed.event.exc_type, assessed.event.message) == (
        "faulty", f"builtins.{kind}", "broken",
    )
    assert assessed.event.severity == severity
    assert assessed.event.failure_seq == raised.seq
    assert assessed.event.failed_at == raised.ts
    assert decided.event.failure_seq == raised.seq
    assert (decided.event.plugin, decided.event.severity, decided.event.action) == ("faulty", severity, action)
    assert decided.event.reason
    # the other failure's events carry the other correlation and point at their own failure
    other = [r for r in read_log(path, correlation="c-2") if r.kind in ("failure.raised", "failure.assessed", "recovery.decided")]
    assert kinds_of(other) == ["failure.raised", "failure.assessed", "recovery.decided"]
    assert other[1].event.failure_seq == other[0].seq == other[2].event.failure_seq
    assert len(read_log(path, kinds=["recovery.decided"])) == 2


def test_messages_sent_by_ask_get_the_exception_and_the_failure_is_decided(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("faulty", Faulty)
        system.start()
        with pytest.raises(ValueError, match="asked"):
            system.ask("faulty", Fail(error="ValueError", text="asked"), timeout=5, correlation="c-ask")
        (decided,) = wait_decisions(system, 1)
        assert decided.correlation == "c-ask" and decided.event.action == "continue"
        assert len(decisions(system)) == 1


def test_decisions_for_failures_in_several_plugins_are_made_one_by_one(tmp_path: Path) -> None:
    """Failures of two plugins arriving together: each gets exactly one assessment and decision."""
    path = tmp_path / "app.db"
    start = threading.Barrier(3)

    def hammer(name: str) -> None:
        start.wait(5)
        for i in range(5):
            system.tell(name, Fail(error="RuntimeError", text=f"{name}-{i}"), correlation=f"{name}-{i}")

    with ActorSystem(path) as system:
        system.register("a", Faulty)
        system.register("b", Faulty)
        system.start()
        threads = [threading.Thread(target=hammer, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        start.wait(5)
        for thread in threads:
            thread.join(10)
        wait_decisions(system, 10)
        wait_settled(system, "a")
        wait_settled(system, "b")
    records = read_log(path)
    for name in ("a", "b"):
        for i in range(5):
            correlated = [r.kind for r in records if r.correlation == f"{name}-{i}" and r.kind != "message.received"]
            assert correlated == ["failure.raised", "failure.assessed", "recovery.decided"]


# -- a handler raising a BaseException ----------------------------------------------------------------------


def _exits(failure: Failure) -> Decision:
    raise SystemExit("the handler called sys.exit")


def _interrupted(failure: Failure) -> Decision:
    raise KeyboardInterrupt


def _decided_or_dead(system: ActorSystem, count: int) -> str | None:
    try:
        return "decided" if len(decisions(system)) >= count else None
    except Exception:  # noqa: BLE001 - the store actor is gone
        return "dead"


@pytest.mark.parametrize("function", [_exits, _interrupted], ids=["SystemExit", "KeyboardInterrupt"])
def test_a_handler_raising_a_base_exception_does_not_take_the_system_down(tmp_path: Path, function: Any) -> None:
    """Like any broken handler: recorded as a failure of "errors", the default applies, and the
    error handler (and every other actor: pykka stops all actors when one lets a
    BaseException escape) keeps working."""
    path = tmp_path / "app.db"
    system = ActorSystem(path, error_policy=ErrorPolicy(handlers={ValueError: function}))
    try:
        system.register("faulty", Faulty)
        system.start()
        system.tell("faulty", Fail(error="ValueError"), correlation="c-base")
        outcome = wait_until(lambda: _decided_or_dead(system, 1), what="a decision, or a dead store")
        assert outcome == "decided", "a handler raising a BaseException stopped every actor, the event store's too"
        wait_settled(system, "faulty")
        decide_one(system, "faulty", Fail(error="RuntimeError"))
        wait_settled(system, "faulty")
        assert system.ask("faulty", Tally(), timeout=5)[0] == 1
    finally:
        try:
            system.stop()
        except Exception:  # noqa: BLE001 - already failed above; do not mask it
            pass
    decided = read_log(path, kinds=["recovery.decided"])
    assert [(r.event.action, r.correlation) for r in decided][0] == ("continue", "c-base")
    broken = [r for r in read_log(path, kinds=["failure.raised"]) if r.event.plugin == "errors"]
    expected = "builtins.SystemExit" if function is _exits else "builtins.KeyboardInterrupt"
    assert [(r.event.exc_type, r.correlation) for r in broken] == [(expected, "c-base")]


# -- a failure while restarting ---------------------------------------------------------------------------------


class StartsOnce(Faulty):
    """Starts once; every later on_start (a restart) raises RuntimeError."""

    def on_start(self) -> None:
        starts = shared(self.config["starts"])
        starts.append(1)
        if len(starts) > 1:
            raise RuntimeError("cannot start again")


def test_a_failed_restart_is_assessed_like_any_failure(tmp_path: Path) -> None:
    """The on_start failure during a restart gets its assessment and decision tied to its
    failure.raised event (failure_seq, failed_at) under the failure's correlation. (Its start
    keeps failing, so the restart limit finally escalates.)"""
    path = tmp_path / "app.db"
    with pytest.raises(EscalationError):
        with ActorSystem(path) as system:
            system.register("fragile", StartsOnce, config={"starts": share(Recorder())})
            system.start()
            system.tell("fragile", Fail(error="OSError"), correlation="c-restart")
            wait_decisions(system, 2)
            # leaving the block before the restart limit is reached would stop the system cleanly
            wait_until(lambda: system.escalation is not None, what="escalation at the restart limit")
    records = read_log(path)
    raised = [r for r in records if r.kind == "failure.raised"]
    assessed = [r for r in records if r.kind == "failure.assessed"]
    decided = [r for r in records if r.kind == "recovery.decided"]
    assert [r.event.exc_type for r in raised][:2] == ["builtins.OSError", "builtins.RuntimeError"]
    assert [r.event.action for r in decided][:1] == ["restart"]
    restart_failure = raised[1]
    assert restart_failure.correlation == "c-restart"
    assert assessed[1].event.failure_seq == restart_failure.seq
    assert assessed[1].event.failed_at == restart_failure.ts
    assert decided[1].event.failure_seq == restart_failure.seq


def test_a_failed_restart_is_restarted_again_until_the_limit_then_escalates(tmp_path: Path) -> None:
    """A plugin whose start failed has no instance to go on with: even a low-severity start
    failure (default "continue") is decided "restart", never "continue", and a plugin that
    never starts again escalates at the restart limit instead of claiming to run."""
    path = tmp_path / "app.db"
    with pytest.raises(EscalationError):
        with ActorSystem(path) as system:
            system.register("fragile", StartsOnce, config={"starts": share(Recorder())})
            system.start()
            system.tell("fragile", Fail(error="OSError"))
            wait_until(lambda: system.escalation is not None, what="escalation at the restart limit")
            assert system.state("fragile") != "running"
    records = read_log(path)
    decided = [r.event for r in records if r.kind == "recovery.decided"]
    assert len(decided) >= 2
    assert all(d.action == "restart" for d in decided)
    assert "its start failed" in decided[1].reason
    assert any(r.kind == "escalated" for r in records)
