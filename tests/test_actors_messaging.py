"""Messages: typed only, logged with sender/correlation/seed, permissions, async ask, metrics."""

from __future__ import annotations

import asyncio
import random
import threading
from pathlib import Path

import pytest

from actorlog.events import MEASUREMENT_KINDS

from actor_helpers import (
    Block,
    Count,
    Draw,
    Generate,
    GuardedSolver,
    LLMPlugin,
    Measure,
    Ping,
    PlainStruct,
    Recorder,
    Send,
    Solve,
    Status,
    Unhandled,
    Worker,
    live_events,
    read_log,
    share,
    wait_until,
)
from actorlog.actors import (
    ActorSystem,
    PluginNotRunningError,
    RegistrationError,
    SystemStoppedError,
    UnknownPluginError,
)

# -- typed messages only -------------------------------------------------------------------------

BAD_MESSAGES = {
    "dict": ({"kind": "t3.ping"}, "builtins.dict"),
    "str": ("t3.ping", "builtins.str"),
    "plain": (PlainStruct(), "actor_helpers.PlainStruct"),
    "unhandled": (Unhandled(), "t3.unhandled"),
}


@pytest.mark.parametrize("what", sorted(BAD_MESSAGES))
@pytest.mark.parametrize("how", ["tell", "ask"])
def test_app_sending_a_non_handled_type_gets_type_error(tmp_path: Path, what: str, how: str) -> None:
    message, type_name = BAD_MESSAGES[what]
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("worker", Worker)
        system.start()
        with pytest.raises(TypeError) as info:
            if how == "tell":
                system.tell("worker", message)
            else:
                system.ask("worker", message, timeout=5)
        # the plugin is unaffected and still answers
        assert system.ask("worker", Count(), timeout=5)[0] == 1
    text = str(info.value)
    assert type_name in text and "'worker'" in text, text
    refused = [r.event for r in read_log(path, kinds=["message.refused"])]
    assert len(refused) == 1
    assert (refused[0].recipient, refused[0].sender, refused[0].message_kind) == ("worker", "app", type_name)
    received = [r.event.message["kind"] for r in read_log(path, kinds=["message.received"])]
    assert received == ["t3.count"]


@pytest.mark.parametrize("what", sorted(BAD_MESSAGES))
@pytest.mark.parametrize("mode", ["tell", "ask"])
def test_plugin_sending_a_non_handled_type_gets_type_error_at_the_sender(tmp_path: Path, what: str, mode: str) -> None:
    _, type_name = BAD_MESSAGES[what]
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("target", Worker)
        system.register("sender", Worker, depends_on=["target"])
        system.start()
        status, error_type, text = system.ask("sender", Send(target="target", what=what, mode=mode), timeout=5)
        assert system.restarts("sender") == 0 and system.state("sender") == "running"
    assert (status, error_type) == ("error", "TypeError")
    assert type_name in text and "'target'" in text, text
    refused = [r.event for r in read_log(path, kinds=["message.refused"])]
    assert [(e.recipient, e.sender, e.message_kind) for e in refused] == [("target", "sender", type_name)]
    # nothing reached the target
    assert [r.event.recipient for r in read_log(path, kinds=["message.received"])] == ["sender"]


def test_unknown_plugin(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("worker", Worker)
        system.start()
        for send in (
            lambda: system.tell("nobody", Ping()),
            lambda: system.ask("nobody", Ping(), timeout=5),
            lambda: system.ref("nobody"),
            lambda: system.state("nobody"),
        ):
            with pytest.raises(UnknownPluginError, match="'nobody'") as info:
                send()
            assert isinstance(info.value, LookupError)
            assert info.value.name == "nobody"
        status, error_type, text = system.ask("worker", Send(target="nobody"), timeout=5)
        assert (status, error_type) == ("error", "UnknownPluginError") and "'nobody'" in text


def test_plugin_not_started_yet_is_not_running(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("worker", Worker)
        with pytest.raises(PluginNotRunningError, match="'worker'.*registered") as info:
            system.tell("worker", Ping())
        assert isinstance(info.value, RuntimeError) and info.value.state == "registered"


def test_after_system_stop_everything_is_refused(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("worker", Worker)
        system.start()
        ref = system.ref("worker")
    with pytest.raises(SystemStoppedError):
        system.tell("worker", Ping())
    with pytest.raises(SystemStoppedError):
        system.ask("worker", Ping(), timeout=5)
    with pytest.raises(SystemStoppedError):
        ref.ask(Ping(), timeout=5)
    with pytest.raises(SystemStoppedError):
        system.register("other", Worker)
    with pytest.raises(SystemStoppedError):
        system.start()
    system.stop()  # idempotent


# -- message logging, correlation, deterministic context ------------------------------------------


def test_received_messages_are_logged_with_sender_payload_seed_and_correlation(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("target", Worker)
        system.register("relay", Worker, depends_on=["target"])
        system.start()
        system.ask("target", Ping(note="direct"), timeout=5, correlation="corr-direct")
        status, reply, _ = system.ask("relay", Send(target="target", what="ping"), timeout=5, correlation="corr-1")
        assert status == "ok"
        assert tuple(reply) == ("pong", "target", "corr-1")  # the target saw the same correlation
        # without an explicit correlation, a fresh one is made and still propagates
        system.ask("relay", Send(target="target", what="ping"), timeout=5)
        system.tell("relay", Send(target="target", what="ping", mode="tell"))
        wait_until(lambda: len(live_events(system, kinds=["message.received"])) == 7)

    received = read_log(path, kinds=["message.received"])
    summary = [(r.actor, r.event.recipient, r.event.sender, r.event.message, r.correlation) for r in received[:3]]
    assert summary == [
        ("target", "target", "app", {"kind": "t3.ping", "note": "direct"}, "corr-direct"),
        ("relay", "relay", "app", {"kind": "t3.send", "target": "target", "what": "ping", "mode": "ask"}, "corr-1"),
        ("target", "target", "relay", {"kind": "t3.ping", "note": "from plugin"}, "corr-1"),
    ]
    rest = received[3:]
    assert [(r.event.recipient, r.event.sender) for r in rest] == [
        ("relay", "app"), ("target", "relay"), ("relay", "app"), ("target", "relay"),
    ]
    assert rest[0].correlation and rest[0].correlation == rest[1].correlation
    assert rest[2].correlation and rest[2].correlation == rest[3].correlation
    assert len({rest[0].correlation, rest[2].correlation, "corr-1", "corr-direct"}) == 4
    assert all(isinstance(r.event.seed, int) for r in received)
    assert len({r.event.seed for r in received}) == len(received)


def test_log_messages_false_has_no_received_events(tmp_path: Path) -> None:
    class Quiet(Worker):
        log_messages = False

    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("quiet_arg", Worker, log_messages=False)
        system.register("quiet_cls", Quiet)
        system.register("loud", Worker)
        system.register("loud_override", Quiet, log_messages=True)
        system.start()
        for name in system.plugins:
            assert system.ask(name, Count(), timeout=5)[0] == 1
            assert system.ask(name, Draw(), timeout=5)[2] is not None
    received = read_log(path, kinds=["message.received"])
    assert sorted({r.event.recipient for r in received}) == ["loud", "loud_override"]
    registered = {r.event.plugin: r.event.log_messages for r in read_log(path, kinds=["plugin.registered"])}
    assert registered == {"quiet_arg": False, "quiet_cls": False, "loud": True, "loud_override": True}


def test_context_clock_and_random_come_from_the_received_event(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("worker", Worker)
        system.start()
        draws = [system.ask("worker", Draw(), timeout=5, correlation=f"c{i}") for i in range(5)]
    received = {r.correlation: r for r in read_log(path, kinds=["message.received"])}
    for i, (now, value, correlation) in enumerate(draws):
        record = received[f"c{i}"]
        assert correlation == f"c{i}"
        assert now == record.ts
        assert value == random.Random(record.event.seed).random()


# -- permissions --------------------------------------------------------------------------------


def test_permissions(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    solved = Recorder()
    with ActorSystem(path) as system:
        system.register("solver", GuardedSolver, config={"sink": share(solved)})
        system.register("agent", Worker, depends_on=["solver"])
        system.start()
        assert system.ask("solver", Solve(task="from app"), timeout=5) == "solved from app"
        status, error_type, text = system.ask("agent", Send(target="solver", what="solve"), timeout=5)
        assert (status, error_type) == ("error", "PermissionError")
        told = system.ask("agent", Send(target="solver", what="solve", mode="tell"), timeout=5)
        assert told[:2] == ("error", "PermissionError")
        # Status is open to anyone
        assert system.ask("agent", Send(target="solver", what="status"), timeout=5) == ("ok", 1, "")
        assert system.ask("solver", Status(), timeout=5) == 1
    for part in ("'agent'", "'solver'", "t3.solve", "Solve"):
        assert part in text, (part, text)
    assert solved.items == [("solve", "from app")]
    refused = read_log(path, kinds=["message.refused"])
    assert [(r.actor, r.event.sender, r.event.recipient, r.event.message_kind) for r in refused] == [
        ("agent", "agent", "solver", "t3.solve")
    ] * 2
    assert all("permission" in r.event.reason for r in refused)
    solves = [r for r in read_log(path, kinds=["message.received"]) if r.event.message["kind"] == "t3.solve"]
    assert [r.event.sender for r in solves] == ["app"]


def test_app_refused_by_permissions(tmp_path: Path) -> None:
    class PluginsOnly(GuardedSolver):
        permissions = {Solve: {"agent"}, Status: ["*"]}

    with ActorSystem(tmp_path / "app.db") as system:
        system.register("solver", PluginsOnly)
        system.register("agent", Worker, depends_on=["solver"])
        system.start()
        with pytest.raises(PermissionError, match="application.*t3.solve.*'solver'"):
            system.ask("solver", Solve(task="x"), timeout=5)
        assert system.ask("agent", Send(target="solver", what="solve"), timeout=5) == ("ok", "solved from plugin", "")


def test_permissions_for_an_unhandled_type_are_refused_at_register(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        with pytest.raises(RegistrationError, match="'solver'.*Generate"):
            system.register("solver", GuardedSolver, permissions={Generate: {"app"}})


# -- async ----------------------------------------------------------------------------------------


def test_ask_async_does_not_block_the_event_loop(tmp_path: Path) -> None:
    release = threading.Event()
    key = share(release)

    async def main(system: ActorSystem) -> tuple[str, int, str]:
        counter = 0

        async def tick() -> None:
            nonlocal counter
            for _ in range(5):
                counter += 1
                await asyncio.sleep(0.001)
            release.set()  # only reachable if the loop runs while ask_async awaits

        task = asyncio.create_task(tick())
        reply = await system.ask_async("worker", Block(key=key), timeout=10)
        await task
        generated = await system.ask_async("llm", Generate(prompt="hi"), timeout=5)
        return reply, counter, generated

    with ActorSystem(tmp_path / "app.db") as system:
        system.register("worker", Worker)
        system.register("llm", LLMPlugin, config={"model": "m"})
        system.start()
        reply, counter, generated = asyncio.run(main(system))
    assert reply == "released"
    assert counter == 5
    assert generated == "m: hi"


def test_ask_async_with_a_sleeping_handler_lets_other_tasks_run(tmp_path: Path) -> None:
    from actor_helpers import Sleep

    async def main(system: ActorSystem) -> tuple[str, int]:
        counter = 0
        done = False

        async def tick() -> None:
            nonlocal counter
            while not done:
                counter += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(tick())
        reply = await system.ask_async("worker", Sleep(seconds=0.3), timeout=10)
        done = True
        await task
        return reply, counter

    with ActorSystem(tmp_path / "app.db") as system:
        system.register("worker", Worker)
        system.start()
        reply, counter = asyncio.run(main(system))
    assert reply == "slept"
    assert counter >= 2


def test_ask_async_raises_handler_exceptions(tmp_path: Path) -> None:
    from actor_helpers import Boom

    with ActorSystem(tmp_path / "app.db") as system:
        system.register("worker", Worker)
        system.start()
        with pytest.raises(ValueError, match="async boom"):
            asyncio.run(system.ask_async("worker", Boom(text="async boom"), timeout=5))


@pytest.mark.parametrize("flavour", ["async", "sync", "plugin"])
def test_ask_timeout_names_the_plugin(tmp_path: Path, flavour: str) -> None:
    release = threading.Event()
    key = share(release)
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("slow", Worker)
        system.start()
        try:
            with pytest.raises(TimeoutError, match="'slow'.*t3.block"):
                if flavour == "async":
                    asyncio.run(system.ask_async("slow", Block(key=key), timeout=0.05))
                elif flavour == "sync":
                    system.ask("slow", Block(key=key), timeout=0.05)
                else:
                    system.ref("slow").ask(Block(key=key), timeout=0.05)
        finally:
            release.set()
        assert system.ask("slow", Count(), timeout=5)[0] == 1


# -- metrics ----------------------------------------------------------------------------------------


def test_metrics_from_a_plugin_and_the_application(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("worker", Worker)
        system.start()
        system.tell("worker", Measure(name="jobs", value=1.5))
        system.metrics.increment("app.calls")
    records = read_log(path, actor="metrics", kinds=sorted(MEASUREMENT_KINDS))
    assert sorted(r.event.name for r in records) == ["app.calls", "jobs.count", "jobs.gauge", "jobs.hist"]
    by_name = {r.event.name: r for r in records}
    assert by_name["jobs.count"].kind == "counter.incremented" and by_name["jobs.count"].event.value == 2.0
    assert by_name["jobs.count"].event.tags == {"plugin": "worker"}
    assert by_name["jobs.gauge"].kind == "gauge.set" and by_name["jobs.gauge"].event.value == 1.5
    assert by_name["jobs.hist"].kind == "histogram.observed" and by_name["jobs.hist"].event.value == 3.0
    assert by_name["app.calls"].kind == "counter.incremented" and by_name["app.calls"].event.value == 1.0
    assert read_log(path)[-1].kind == "run.stopped"


def test_a_bad_measurement_does_not_stop_the_metrics_collector(tmp_path: Path) -> None:
    """A non-finite value is refused (at the sender or by the collector), but later measurements
    are still recorded: one bad value must not silently end metrics for the rest of the run."""
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("worker", Worker)
        system.start()
        try:
            system.metrics.gauge("bad", float("nan"))
        except ValueError:
            pass  # refusing at the sender is fine too
        system.metrics.increment("after")
        system.tell("worker", Measure(name="later", value=1.0))
    names = [r.event.name for r in read_log(path, actor="metrics", kinds=sorted(MEASUREMENT_KINDS))]
    assert "bad" not in names
    assert sorted(names) == ["after", "later.count", "later.gauge", "later.hist"]
