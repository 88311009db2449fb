"""Supervision without sleeps or unbounded waits (issue 12).

- A retry decision delivers the failed (told) message again after its delay, on the
  plugin's own timer: another plugin's restart decided meanwhile is not held up by it.
- An asked message is not delivered again (its sender has the exception); a told one at
  most ``max_redeliveries`` times.
- A halt that cannot happen (the plugin is stuck in an ask to a plugin whose decision
  waits behind the current one) escalates after ``control_timeout`` instead of hanging.
- An ask cycle, or a plugin asking itself, is refused at the sender.
- ``ask_async`` that times out leaves no error behind when the handler finishes later.
- After an escalation, work is refused with the reason, and statistics stay readable.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from actor_helpers import read_log, share, shared, wait_until
from actorlog.actors import (
    ActorSystem,
    AskCycleError,
    Decision,
    ErrorPolicy,
    EscalationError,
    Failure,
    Plugin,
    RestartPolicy,
    SystemStoppedError,
    handler,
)
from actorlog.events import Message, register
from actorlog.replay import statistics_document
from error_helpers import Fail, Faulty, Gate, Tally


class Flaky(Exception):
    """Transient: the policy below retries it."""


@register
class Job(Message, tag="t12.job", frozen=True):
    """Fail while the shared countdown ``key`` is above zero, then succeed."""

    key: str
    number: int = 0


@register
class AskOther(Message, tag="t12.ask_other", frozen=True):
    """Ask plugin ``other`` for ``what`` (a Job key, or "cycle"/"self")."""

    other: str
    what: str = "cycle"


@register
class Raise(Message, tag="t12.raise", frozen=True):
    """Raise the shared exception ``key``."""

    key: str


@register
class Wait(Message, tag="t12.wait", frozen=True):
    """Block until the shared event ``key`` is set; answer "done"."""

    key: str


class Jobs(Plugin):
    """Fails a Job while its countdown lasts; asks others on request."""

    @handler
    def job(self, message: Job) -> str:
        countdown: list[int] = shared(message.key)
        countdown.append(message.number)
        if countdown[0] > 0:
            countdown[0] -= 1
            raise Flaky(f"job {message.number} not yet")
        return "ok"

    @handler
    def ask_other(self, message: AskOther) -> Any:
        if message.what == "self":
            return self.context.ask(self.context.name, AskOther(other=self.context.name), timeout=10)
        if message.what == "cycle":
            return self.context.ask(message.other, AskOther(other=self.context.name, what="back"), timeout=10)
        if message.what == "back":
            return self.context.ask(message.other, AskOther(other=self.context.name, what="cycle"), timeout=10)
        return self.context.ask(message.other, Job(key=message.what), timeout=None)

    @handler
    def wait(self, message: Wait) -> str:
        event: threading.Event = shared(message.key)
        event.wait(30)
        return "done"

    @handler
    def raise_(self, message: Raise) -> None:
        raise shared(message.key)


def retry_policy(delay: float, **options: Any) -> ErrorPolicy:
    def retry(failure: Failure) -> Decision:
        return Decision("retry", delay=delay, reason="transient")

    return ErrorPolicy(handlers={Flaky: retry}, **options)


def received(path: Path, plugin: str, kind: str = "t12.job") -> list[Any]:
    return [r for r in read_log(path, kinds=["message.received"])
            if r.event.recipient == plugin and r.event.message["kind"] == kind]


def test_a_retry_redelivers_the_told_message_after_its_delay_without_holding_up_another_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.db"
    countdown = [1]  # fails once, then succeeds
    key = share(countdown)
    with ActorSystem(path, error_policy=retry_policy(1.5)) as system:
        system.register("slow", Jobs)
        system.register("other", Faulty)
        system.start()
        system.tell("slow", Job(key=key, number=7))
        wait_until(lambda: system.error_statistics().total_errors == 1, what="the first failure decided")
        system.tell("other", Fail(error="MemoryError"))  # high: restarted at once
        wait_until(lambda: system.restarts("other") == 1, what="the other plugin restarted")
        wait_until(lambda: len(countdown) == 3, what="the job delivered again")
        assert system.ask("slow", Job(key=key, number=8), timeout=10) == "ok"
    records = read_log(path)
    restarted = next(r.seq for r in records if r.kind == "plugin.restarted" and r.event.plugin == "other")
    deliveries = received(path, "slow")
    assert [r.event.message["number"] for r in deliveries] == [7, 7, 8]
    # the other plugin's restart did not wait behind the 1.5 s retry delay
    assert restarted < deliveries[1].seq
    decided = [r.event for r in records if r.kind == "recovery.decided" and r.event.plugin == "slow"]
    assert [(d.action, d.delay) for d in decided] == [("retry", 1.5)]
    assert countdown == [0, 7, 7, 8]


def test_an_asked_message_is_not_delivered_again_and_a_told_one_at_most_max_redeliveries(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    asked, told = [100], [100]  # never succeed
    asked_key, told_key = share(asked), share(told)
    with ActorSystem(path, error_policy=retry_policy(0.0, max_redeliveries=2)) as system:
        system.register("jobs", Jobs)
        system.start()
        with pytest.raises(Flaky):
            system.ask("jobs", Job(key=asked_key, number=1), timeout=10)
        system.tell("jobs", Job(key=told_key, number=2))
        wait_until(lambda: system.error_statistics().total_errors == 4, what="1 asked + 3 told failures")
    decided = [r.event for r in read_log(path, kinds=["recovery.decided"])]
    assert decided[0].action == "continue" and "was asked" in decided[0].reason
    assert [d.action for d in decided[1:4]] == ["retry", "retry", "continue"]
    assert "delivered 3 times" in decided[3].reason
    assert [r.event.message["number"] for r in received(path, "jobs")] == [1, 2, 2, 2]


def _read_while_nothing_moves(system: ActorSystem) -> tuple[Any, Any]:
    """``statistics()`` and ``error_statistics()`` read while no event is committed in between."""
    for _ in range(1000):
        document = system.statistics()
        errors = system.error_statistics()
        if system.statistics() == document:
            return document, errors
    raise AssertionError("the system's statistics never stayed still for two reads")


def test_a_halt_that_would_wait_for_ever_escalates_after_the_control_timeout(tmp_path: Path) -> None:
    """b fails and is restarted with its dependents; dependent d is inside a handler asking a,
    and a is suspended, its decision queued behind b's. Halting d can never happen."""
    path = tmp_path / "app.db"
    gate = Gate()

    def hold_b(failure: Failure) -> Decision:
        gate.hold()
        return Decision("restart_with_dependents", reason="b broke")

    def continue_a(failure: Failure) -> Decision:
        return Decision("continue")

    class BFailure(Exception):
        pass

    class AFailure(Exception):
        pass

    policy = ErrorPolicy(handlers={BFailure: hold_b, AFailure: continue_a})
    raising_b, raising_a = share(BFailure("b")), share(AFailure("a"))
    system = ActorSystem(path, error_policy=policy, restart_policy=RestartPolicy(control_timeout=1.0))
    try:
        system.register("a", Jobs)
        system.register("b", Jobs)
        system.register("d", Jobs, depends_on=["a", "b"])
        system.start()
        system.tell("b", Raise(key=raising_b))
        assert gate.entered.wait(10), "b's decision was never asked for"
        system.tell("a", Raise(key=raising_a))  # reported behind b: its decision waits
        wait_until(lambda: any(r.event.plugin == "a" for r in read_log(path, kinds=["failure.raised"])),
                   what="a failed")
        system.tell("d", AskOther(other="a", what=share([0])))  # d's handler now waits on suspended a
        wait_until(lambda: received(path, "d", "t12.ask_other"), what="d in its handler")
        gate.release.set()
        assert system.wait(timeout=30), "the system hung instead of escalating"
        escalation = system.escalation
        assert escalation is not None and "'d' did not halt within 1 s" in str(escalation)
        assert "AskOther" in str(escalation)
        # still readable after the escalation, and what replay says; read between two equal
        # documents, since d fails once more when its ask finds a stopped (PluginNotRunningError)
        document, errors = _read_while_nothing_moves(system)
        assert document["errors"]["total_errors"] >= 2
        assert document == statistics_document(path, run=system.run, until_seq=document["position"])
        assert errors.total_errors == document["errors"]["total_errors"]
        assert system.metric_summary("none").count == 0 and system.state("b") == "stopped"
        with pytest.raises(SystemStoppedError, match="did not halt"):
            system.retry(max_retries=0).call(lambda: 1 / 0)
    finally:
        system.stop()
    assert isinstance(system.escalation, EscalationError)
    runs = read_log(path, kinds=["run.stopped"])
    assert runs[-1].event.clean is False




def test_an_ask_cycle_and_a_self_ask_are_refused_at_the_sender(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("x", Jobs)
        system.register("y", Jobs)
        system.start()
        with pytest.raises(AskCycleError, match="'x' -> 'x'|asking itself"):
            system.ask("x", AskOther(other="x", what="self"), timeout=10)
        with pytest.raises(AskCycleError, match="ask cycle 'y' -> 'x' -> 'y'"):
            system.ask("x", AskOther(other="y", what="cycle"), timeout=10)
        event = threading.Event()
        event.set()
        assert system.ask("y", Wait(key=share(event)), timeout=10) == "done"


def test_an_ask_async_that_timed_out_leaves_nothing_behind(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("w", Jobs)
        system.start()

        async def ask() -> Any:
            return await system.ask_async("w", Wait(key=share(release)), timeout=0.05)

        with caplog.at_level(logging.ERROR), pytest.raises(TimeoutError):
            asyncio.run(ask())
        release.set()
        event = threading.Event()
        event.set()
        assert system.ask("w", Wait(key=share(event)), timeout=10) == "done"  # after the late reply
        assert system.error_statistics().total_errors == 0
    assert not [r for r in caplog.records if "InvalidStateError" in r.getMessage() or r.exc_info]


class SlowStop(Plugin):
    """``on_stop`` waits for the shared event named in its config."""

    @handler
    def tally(self, message: Tally) -> int:
        return 1

    def on_stop(self) -> None:
        shared(self.config["event"]).wait(60)


def test_stop_returns_when_a_handler_or_an_on_stop_never_finishes(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    never, also_never = threading.Event(), threading.Event()
    system = ActorSystem(path)
    try:
        system.register("busy", Jobs)
        system.register("slow", SlowStop, config={"event": share(also_never)})
        system.start()
        system.tell("busy", Wait(key=share(never)))
        wait_until(lambda: received(path, "busy", "t12.wait"), what="busy inside its handler")
    finally:
        system.stop(timeout=0.5)  # returns: neither plugin can stop
    # the two abandoned actor threads are daemons: they cannot keep the interpreter from exiting
    abandoned = [t for t in threading.enumerate() if t.name.startswith("PluginActor") and t.is_alive()]
    assert len(abandoned) >= 2 and all(t.daemon for t in abandoned), [(t.name, t.daemon) for t in abandoned]
    never.set()
    also_never.set()
    timed_out = {r.event.plugin: r.event for r in read_log(path, kinds=["plugin.stop_timed_out"])}
    assert set(timed_out) == {"busy", "slow"}
    assert timed_out["busy"].handling == "Wait" and timed_out["busy"].timeout == 0.5
    assert timed_out["slow"].handling is None
    (stopped,) = read_log(path, kinds=["run.stopped"])
    assert stopped.event.clean is False and "'busy'" in stopped.event.reason
    final = system.statistics()
    assert {name: p["state"] for name, p in final["plugins"][system.run].items()} == {
        "busy": "stop_timed_out", "slow": "stop_timed_out",
    }
    assert final == statistics_document(path, run=system.run)


def test_stop_returns_after_an_ask_that_had_already_timed_out(tmp_path: Path) -> None:
    """The issue's last hang: a synchronous ask times out, its handler is still running, then stop()."""
    path = tmp_path / "app.db"
    never = threading.Event()
    system = ActorSystem(path)
    try:
        system.register("busy", Jobs)
        system.start()
        with pytest.raises(TimeoutError):
            system.ask("busy", Wait(key=share(never)), timeout=0.2)
    finally:
        system.stop(timeout=0.5)  # returns: the asked handler is still waiting
    never.set()
    (timed_out,) = read_log(path, kinds=["plugin.stop_timed_out"])
    assert timed_out.event.plugin == "busy" and timed_out.event.handling == "Wait"
    (stopped,) = read_log(path, kinds=["run.stopped"])
    assert stopped.event.clean is False


def test_a_read_that_times_out_is_a_timeout_error_not_pykkas_own(tmp_path: Path) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(statistics: Any) -> None:
        started.set()
        release.wait(30)

    with ActorSystem(tmp_path / "app.db") as system:
        holder = threading.Thread(target=lambda: system._read(slow, measurements=False))  # keeps the projections busy
        holder.start()
        assert started.wait(10)
        with pytest.raises(TimeoutError, match="did not answer within 0.2 s"):
            system.error_statistics(timeout=0.2)
        with pytest.raises(TimeoutError):
            system.all_metrics(timeout=0.2)
        release.set()
        holder.join()
        assert system.error_statistics().total_errors == 0
