"""Failures and recovery: reports, restarts, stashed messages, rest-for-one, stop, escalation."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pykka
import pytest

from actorlog.events import MEASUREMENT_KINDS

from actor_helpers import (
    RESTART_ON_FAILURE,
    Append,
    Block,
    Boom,
    Count,
    Interrupt,
    Ping,
    Recorder,
    Send,
    Worker,
    lifecycle,
    live_events,
    read_log,
    rest_for_one,
    share,
    stop_on_failure,
    wait_until,
)
from actorlog.actors import (
    ActorSystem,
    EscalationError,
    PluginNotRunningError,
    RestartPolicy,
    SystemStoppedError,
)

RESTART_SEQUENCE = ["plugin.stopping", "plugin.stopped", "plugin.starting", "plugin.started", "plugin.restarted"]


def _after(records: list, seq: int) -> list:
    return [r for r in records if r.seq > seq]


def test_failure_under_ask_is_raised_reported_and_the_plugin_restarted(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path, error_policy=RESTART_ON_FAILURE) as system:
        system.register("worker", Worker)
        system.start()
        first = [system.ask("worker", Count(), timeout=5) for _ in range(3)]
        assert [n for n, _ in first] == [1, 2, 3]
        with pytest.raises(ValueError, match="^bad input$"):
            system.ask("worker", Boom(text="bad input"), timeout=5, correlation="corr-boom")
        wait_until(lambda: system.restarts("worker") == 1, what="one restart")
        count, instance = system.ask("worker", Count(), timeout=5)
        assert count == 1  # fresh instance: state reset
        assert instance != first[0][1]
        assert system.state("worker") == "running"

    records = read_log(path)
    boom = next(r for r in records if r.kind == "message.received" and r.event.message["kind"] == "t3.boom")
    assert boom.correlation == "corr-boom"
    failures = [r for r in records if r.kind == "failure.raised"]
    assert len(failures) == 1
    failure = failures[0]
    assert failure.actor == "worker" and failure.correlation == "corr-boom"
    assert failure.event.plugin == "worker"
    assert failure.event.exc_type == "builtins.ValueError"
    assert failure.event.message == "bad input"
    assert "Traceback" in failure.event.traceback and "ValueError: bad input" in failure.event.traceback
    assert "in boom" in failure.event.traceback
    assert failure.event.trigger_seq == boom.seq
    decisions = [r for r in records if r.kind == "recovery.decided"]
    assert len(decisions) == 1
    decision = decisions[0]
    assert decision.actor == "errors" and decision.correlation == "corr-boom"
    assert decision.event.failure_seq == failure.seq
    assert decision.event.plugin == "worker" and decision.event.action == "restart"
    assert failure.seq < decision.seq
    after = _after(records, decision.seq)
    assert lifecycle(after)[:5] == [(kind, "worker") for kind in RESTART_SEQUENCE]
    restart_events = [r for r in after if r.kind in RESTART_SEQUENCE][:5]
    assert {r.correlation for r in restart_events} == {"corr-boom"}
    restarted = next(r.event for r in after if r.kind == "plugin.restarted")
    assert restarted.restart_count == 1
    # the message after the restart reached the new instance after plugin.restarted
    later = [r for r in after if r.kind == "message.received"]
    assert [r.event.message["kind"] for r in later] == ["t3.count"]
    assert later[0].seq > restart_events[-1].seq


def test_failure_under_tell_is_reported_and_the_plugin_lives_on(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    calls = Recorder()
    with ActorSystem(path, error_policy=RESTART_ON_FAILURE) as system:
        system.register("worker", Worker, config={"sink": share(calls)})
        system.start()
        assert system.ask("worker", Count(), timeout=5)[0] == 1
        system.tell("worker", Boom(text="told"), correlation="corr-tell")
        wait_until(lambda: system.restarts("worker") == 1, what="one restart")
        assert system.ask("worker", Count(), timeout=5)[0] == 1
        assert system.state("worker") == "running"
    records = read_log(path)
    failure = next(r for r in records if r.kind == "failure.raised")
    decision = next(r for r in records if r.kind == "recovery.decided")
    boom = next(r for r in records if r.kind == "message.received" and r.event.message["kind"] == "t3.boom")
    assert (failure.event.exc_type, failure.event.message, failure.correlation) == (
        "builtins.ValueError", "told", "corr-tell",
    )
    assert failure.event.trigger_seq == boom.seq
    assert decision.event.failure_seq == failure.seq and decision.correlation == "corr-tell"
    assert lifecycle(_after(records, decision.seq))[:5] == [(kind, "worker") for kind in RESTART_SEQUENCE]
    # on_stop of the failed instance, on_start of the new one
    hooks = [(hook, instance) for hook, _, instance in calls.items]
    assert [h for h, _ in hooks] == ["start", "stop", "start", "stop"]
    assert hooks[0][1] == hooks[1][1] != hooks[2][1] == hooks[3][1]


def test_messages_sent_during_a_restart_are_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    got = Recorder()
    sink = share(got)
    n = 50
    with ActorSystem(path, error_policy=RESTART_ON_FAILURE) as system:
        system.register("worker", Worker)
        system.start()
        system.ask("worker", Append(sink=sink, value=-1), timeout=5)
        system.tell("worker", Boom())
        for i in range(n):
            system.tell("worker", Append(sink=sink, value=i))
        wait_until(lambda: len(got) == n + 1, what="every message handled")
        assert system.restarts("worker") == 1
    items = got.items
    assert [value for _, value, _ in items] == [-1, *range(n)]
    old_instance = items[0][2]
    assert {instance for _, _, instance in items[1:]} == {items[1][2]} and items[1][2] != old_instance
    records = read_log(path)
    restarted = next(r for r in records if r.kind == "plugin.restarted")
    appended = [r for r in records if r.kind == "message.received" and r.event.message["kind"] == "t3.append"]
    assert [r.event.message["value"] for r in appended] == [-1, *range(n)]
    assert all(r.seq > restarted.seq for r in appended[1:])
    assert not read_log(path, kinds=["message.refused"])


def test_asks_queued_during_a_restart_are_answered_by_the_new_instance(tmp_path: Path) -> None:
    release = threading.Event()
    key = share(release)
    with ActorSystem(tmp_path / "app.db", error_policy=RESTART_ON_FAILURE) as system:
        system.register("worker", Worker)
        system.start()
        system.tell("worker", Block(key=key))
        system.tell("worker", Boom())
        replies: list = []
        asker = threading.Thread(target=lambda: replies.append(system.ask("worker", Count(), timeout=10)))
        asker.start()
        release.set()
        asker.join(15)
        assert replies and replies[0][0] == 1
        assert system.restarts("worker") == 1


# -- rest-for-one and stop -------------------------------------------------------------------------


def test_rest_for_one_restarts_the_failed_plugin_and_its_dependents_only(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    calls = Recorder()
    sink = share(calls)
    with ActorSystem(path, error_policy=rest_for_one) as system:
        system.register("d", Worker, config={"sink": sink})
        system.register("c", Worker, config={"sink": sink}, depends_on=["b"])
        system.register("a", Worker, config={"sink": sink})
        system.register("b", Worker, config={"sink": sink}, depends_on=["a"])
        assert system.start() == ["d", "a", "b", "c"]
        before = len(calls)
        system.tell("a", Boom(), correlation="corr-a")
        wait_until(lambda: system.restarts("c") == 1, what="c restarted")
        assert {name: system.restarts(name) for name in "abcd"} == {"a": 1, "b": 1, "c": 1, "d": 0}
        assert system.plugins == {"d": "running", "c": "running", "a": "running", "b": "running"}
        for name in "abcd":
            assert system.ask(name, Ping(), timeout=5)[1] == name
        restart_calls = [(hook, name) for hook, name, _ in calls.items[before:]]
    # the failed plugin first (it may hold answers its dependents wait for), then its dependents
    assert restart_calls == [("stop", "a"), ("start", "a"), ("stop", "c"), ("stop", "b"), ("start", "b"), ("start", "c")]
    records = read_log(path)
    decision = next(r for r in records if r.kind == "recovery.decided")
    assert decision.event.action == "restart_with_dependents" and decision.correlation == "corr-a"
    between = [r for r in records if r.seq > decision.seq and r.kind != "message.received"]
    assert lifecycle(between)[:15] == [
        ("plugin.stopping", "a"), ("plugin.stopped", "a"),
        ("plugin.starting", "a"), ("plugin.started", "a"), ("plugin.restarted", "a"),
        ("plugin.stopping", "c"), ("plugin.stopped", "c"),
        ("plugin.stopping", "b"), ("plugin.stopped", "b"),
        ("plugin.starting", "b"), ("plugin.started", "b"), ("plugin.restarted", "b"),
        ("plugin.starting", "c"), ("plugin.started", "c"), ("plugin.restarted", "c"),
    ]
    assert all(name != "d" for _, name in lifecycle(between)[:15])


def test_rest_for_one_does_not_stall_on_a_dependent_waiting_for_the_failed_plugin(tmp_path: Path) -> None:
    """b (depends on a) is inside a handler asking a, whose failure left that ask stashed.

    Restarting a with its dependents halts b first, but b's halt waits behind b's running
    handler, which waits for a, which waits for the supervisor: b's ask must be answered
    or refused, not left to run into its timeout (with timeout=None the system would hang).
    """
    release = threading.Event()
    key = share(release)
    with ActorSystem(tmp_path / "app.db", error_policy=rest_for_one) as system:
        system.register("a", Worker)
        system.register("b", Worker, depends_on=["a"])
        system.start()
        system.tell("a", Block(key=key))  # a is busy ...
        system.tell("a", Boom())  # ... then fails
        outcome: list = []
        sender = threading.Thread(
            target=lambda: outcome.append(system.ask("b", Send(target="a", what="ping"), timeout=30))
        )
        sender.start()  # b asks a (5 s timeout); the ask lands behind Boom and gets stashed
        wait_until(lambda: any(r.event.recipient == "b" for r in live_events(system, kinds=["message.received"])))
        release.set()
        sender.join(30)
        wait_until(lambda: system.restarts("b") == 1, what="a and b restarted")
        assert system.restarts("a") == 1
    assert outcome, "b never answered"
    status, detail, text = outcome[0]
    assert detail != "TimeoutError", f"b's ask to a timed out while a was being restarted: {text}"


@pytest.mark.parametrize("outcome_kind", ["stop", "escalate"])
def test_stopping_does_not_stall_on_a_dependent_waiting_for_the_failed_plugin(
    tmp_path: Path, outcome_kind: str
) -> None:
    """Like the restart case: a stop decision (or an escalation) stops b, which is inside a
    handler asking the failed a, whose stash holds that ask. b's ask must be refused (a
    is being stopped), not left to run into its timeout (with timeout=None: a hang)."""
    release = threading.Event()
    key = share(release)
    policy = stop_on_failure if outcome_kind == "stop" else None
    failure = Boom() if outcome_kind == "stop" else Interrupt()
    outcome: list = []
    with pytest.raises(EscalationError) if outcome_kind == "escalate" else contextlib.nullcontext():
        with ActorSystem(tmp_path / "app.db", error_policy=policy) as system:
            system.register("a", Worker)
            system.register("b", Worker, depends_on=["a"])
            system.start()
            system.tell("a", Block(key=key))
            system.tell("a", failure)
            sender = threading.Thread(
                target=lambda: outcome.append(system.ask("b", Send(target="a", what="ping"), timeout=30))
            )
            sender.start()
            wait_until(lambda: any(r.event.recipient == "b" for r in live_events(system, kinds=["message.received"])))
            release.set()
            sender.join(30)
            wait_until(lambda: system.state("a") == "stopped" and system.state("b") == "stopped")
    assert outcome, "b never answered"
    status, detail, text = outcome[0]
    assert detail != "TimeoutError", f"b's ask to a timed out while a was being stopped: {text}"


def test_stop_decision_stops_the_plugin_and_its_dependents(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    calls = Recorder()
    sink = share(calls)
    with ActorSystem(path, error_policy=stop_on_failure) as system:
        system.register("a", Worker, config={"sink": sink})
        system.register("b", Worker, config={"sink": sink}, depends_on=["a"])
        system.register("c", Worker, config={"sink": sink}, depends_on=["b"])
        system.register("d", Worker, config={"sink": sink})
        system.start()
        system.tell("b", Boom())
        wait_until(lambda: system.state("b") == "stopped" and system.state("c") == "stopped", what="b, c stopped")
        assert system.plugins == {"a": "running", "b": "stopped", "c": "stopped", "d": "running"}
        for name in ("b", "c"):
            with pytest.raises(PluginNotRunningError, match=f"'{name}'.*stopped"):
                system.ask(name, Ping(), timeout=5)
            with pytest.raises(PluginNotRunningError):
                system.tell(name, Ping())
        assert system.ask("a", Ping(), timeout=5)[1] == "a"
        assert system.ask("d", Ping(), timeout=5)[1] == "d"
        assert system.escalation is None
    records = read_log(path)
    decision = next(r for r in records if r.kind == "recovery.decided")
    assert decision.event.action == "stop"
    # the failed plugin first (refusing what it holds frees dependents waiting on it), then its dependents
    assert lifecycle(_after(records, decision.seq))[:4] == [
        ("plugin.stopping", "b"), ("plugin.stopped", "b"), ("plugin.stopping", "c"), ("plugin.stopped", "c"),
    ]
    # at system stop only the still-running ones are stopped, each once
    stopped = [r.event.plugin for r in records if r.kind == "plugin.stopped"]
    assert sorted(stopped) == ["a", "b", "c", "d"]
    assert [(hook, name) for hook, name, _ in calls.items].count(("stop", "b")) == 1


# -- restart intensity and escalation ---------------------------------------------------------------


def test_too_many_restarts_escalate_and_stop_the_system(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with pytest.raises(EscalationError) as info:
        with ActorSystem(path, restart_policy=RestartPolicy(max_restarts=2, within_seconds=60), error_policy=RESTART_ON_FAILURE) as system:
            system.register("other", Worker)
            system.register("flaky", Worker, depends_on=["other"])
            system.start()
            for i in range(3):
                system.tell("flaky", Boom(text=f"fail {i}"))
            wait_until(lambda: system.escalation is not None, what="escalation")
            assert system.restarts("flaky") == 2
            wait_until(lambda: set(system.plugins.values()) == {"stopped"}, what="all stopped")
            escalation = system.escalation
            with pytest.raises(SystemStoppedError):
                system.tell("other", Ping())
            with pytest.raises(SystemStoppedError):
                system.ask("flaky", Ping(), timeout=5)
    assert info.value is escalation
    assert isinstance(info.value, EscalationError)
    assert info.value.plugin == "flaky" and "'flaky'" in str(info.value)
    records = read_log(path)
    failures = [r.event.message for r in records if r.kind == "failure.raised"]
    assert failures == ["fail 0", "fail 1", "fail 2"]
    escalated = [r for r in records if r.kind == "escalated"]
    assert len(escalated) == 1 and escalated[0].event.plugin == "flaky"
    after = _after(records, escalated[0].seq)
    assert [name for kind, name in lifecycle(after) if kind == "plugin.stopped"] == ["flaky", "other"]
    assert records[-1].kind == "run.stopped" and records[-1].event.clean is False
    assert "flaky" in records[-1].event.reason


def test_restarts_outside_the_window_do_not_escalate(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db", restart_policy=RestartPolicy(max_restarts=1, within_seconds=0.05), error_policy=RESTART_ON_FAILURE) as system:
        system.register("flaky", Worker)
        system.start()
        for i in range(3):
            system.tell("flaky", Boom())
            wait_until(lambda i=i: system.restarts("flaky") == i + 1, what=f"restart {i + 1}")
            # let the 0.05 s window pass before the next failure (condition polled, no timing assertion)
            wait_until(lambda: _window_passed(system, "flaky", 0.05))
        assert system.escalation is None
        assert system.ask("flaky", Count(), timeout=5)[0] == 1


def _window_passed(system: ActorSystem, name: str, window: float) -> bool:
    import time

    records = live_events(system, kinds=["plugin.restarted"])
    return bool(records) and time.time() - records[-1].ts > window * 2


@pytest.mark.parametrize("which", ["keyboard", "exit"])
def test_base_exceptions_escalate(tmp_path: Path, which: str) -> None:
    path = tmp_path / "app.db"
    with pytest.raises(EscalationError) as info:
        with ActorSystem(path) as system:
            system.register("worker", Worker)
            system.start()
            system.tell("worker", Interrupt(which=which))
            wait_until(lambda: system.escalation is not None, what="escalation")
            wait_until(lambda: system.state("worker") == "stopped")
    assert info.value.plugin == "worker"
    expected = "builtins.KeyboardInterrupt" if which == "keyboard" else "builtins.SystemExit"
    assert expected in str(info.value)
    records = read_log(path)
    decision = next(r.event for r in records if r.kind == "recovery.decided")
    assert decision.action == "escalate"
    assert [r.event.exc_type for r in records if r.kind == "failure.raised"] == [expected]
    assert any(r.kind == "escalated" for r in records)


def test_escalation_does_not_stop_another_system_in_the_process(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "other.db", error_policy=RESTART_ON_FAILURE) as bystander:
        bystander.register("llm", Worker)
        bystander.start()
        actors_before = {ref.actor_urn for ref in pykka.ActorRegistry.get_all()}
        with pytest.raises(EscalationError):
            with ActorSystem(tmp_path / "app.db", error_policy=RESTART_ON_FAILURE) as system:
                system.register("llm", Worker)
                system.start()
                system.tell("llm", Interrupt(which="keyboard"))
                wait_until(lambda: system.escalation is not None, what="escalation")
        # the other system's actors are all still alive and working
        assert actors_before <= {ref.actor_urn for ref in pykka.ActorRegistry.get_all()}
        assert bystander.escalation is None
        assert bystander.state("llm") == "running"
        assert bystander.ask("llm", Count(), timeout=5)[0] == 1
        bystander.tell("llm", Boom())
        wait_until(lambda: bystander.restarts("llm") == 1, what="bystander still supervised")
        bystander.metrics.increment("still.here")
    names = [r.event.name for r in read_log(tmp_path / "other.db", actor="metrics", kinds=sorted(MEASUREMENT_KINDS))]
    assert names == ["still.here"]
    other_kinds = [r.kind for r in read_log(tmp_path / "other.db")]
    assert "escalated" not in other_kinds


def test_no_thread_is_left_after_an_escalation(tmp_path: Path) -> None:
    from actor_helpers import thread_names

    before = thread_names()
    with pytest.raises(EscalationError):
        with ActorSystem(tmp_path / "app.db") as system:
            system.register("worker", Worker, health_interval=0.05)
            system.register("other", Worker, depends_on=["worker"])
            system.start()
            system.tell("worker", Interrupt())
            wait_until(lambda: system.escalation is not None, what="escalation")
    wait_until(lambda: thread_names() == before, what="threads back to the ones before")


def test_ask_that_raises_a_base_exception_escalates(tmp_path: Path) -> None:
    with pytest.raises(EscalationError):
        with ActorSystem(tmp_path / "app.db") as system:
            system.register("worker", Worker)
            system.start()
            with pytest.raises(SystemExit):
                system.ask("worker", Interrupt(which="exit"), timeout=5)
            wait_until(lambda: system.escalation is not None, what="escalation")
