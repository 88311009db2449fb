"""Embedding the actor system: registration, refusals before start, lifecycle order, threads."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from actor_helpers import (
    AgentPlugin,
    Count,
    Generate,
    LLMPlugin,
    Ping,
    Recorder,
    SandboxPlugin,
    SandboxV2,
    Solution,
    Solve,
    Worker,
    kinds_of,
    lifecycle,
    read_log,
    share,
    thread_names,
    wait_until,
)
from actorlog.actors import (
    ActorSystem,
    DependencyError,
    PluginNotRunningError,
    RegistrationError,
    StartError,
)
from actorlog.store import EventStore


def test_embedding_example_from_the_issue(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("llm", LLMPlugin, config={"model": "gpt-4"})
        system.register("agent", AgentPlugin, depends_on=["llm", "sandbox"])
        system.register("sandbox", SandboxPlugin)
        order = system.start()
        reply = system.ask("agent", Solve(task="add two numbers"), timeout=5)
        assert system.plugins == {"llm": "running", "agent": "running", "sandbox": "running"}

    assert order == ["llm", "sandbox", "agent"]
    assert isinstance(reply, Solution)
    assert reply == Solution(
        task="add two numbers", code="gpt-4: add two numbers", output="ran <gpt-4: add two numbers>"
    )
    received = read_log(path, kinds=["message.received"])
    assert [(r.event.recipient, r.event.sender) for r in received] == [
        ("agent", "app"), ("llm", "agent"), ("sandbox", "agent"),
    ]


def test_plugin_config_is_available_as_self_config(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    class ConfigReader(Worker):
        def on_start(self) -> None:
            seen.update(self.config)

    with ActorSystem(tmp_path / "app.db") as system:
        system.register("reader", ConfigReader, config={"model": "gpt-4", "n": 3, "nested": {"a": [1, 2]}})
        system.start()
    assert seen == {"model": "gpt-4", "n": 3, "nested": {"a": [1, 2]}}


def test_lifecycle_order_in_the_log(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("agent", AgentPlugin, depends_on=["llm", "sandbox"])
        system.register("llm", LLMPlugin, config={"model": "m"})
        system.register("sandbox", SandboxPlugin)
        system.start()
        run = system.run

    records = read_log(path)
    assert {r.run for r in records} == {run}
    kinds = kinds_of(records)
    assert kinds[0] == "run.started"
    assert kinds[-1] == "run.stopped"
    assert records[-1].event.clean is True
    registered = [r.event for r in records if r.kind == "plugin.registered"]
    assert [(e.plugin, e.class_path, e.plugin_version, e.config, e.depends_on) for e in registered] == [
        ("agent", "actor_helpers:AgentPlugin", "0.0.0", {}, ("llm", "sandbox")),
        ("llm", "actor_helpers:LLMPlugin", "1.2.0", {"model": "m"}, ()),
        ("sandbox", "actor_helpers:SandboxPlugin", "1.4.0", {}, ()),
    ]
    assert all(e.log_messages for e in registered)
    assert kinds[1] == "metrics.configured"  # the options that shape the statistics are recorded first
    assert kinds[2:5] == ["plugin.registered"] * 3
    assert lifecycle(records) == [
        ("plugin.starting", "llm"), ("plugin.started", "llm"),
        ("plugin.starting", "sandbox"), ("plugin.started", "sandbox"),
        ("plugin.starting", "agent"), ("plugin.started", "agent"),
        ("plugin.stopping", "agent"), ("plugin.stopped", "agent"),
        ("plugin.stopping", "sandbox"), ("plugin.stopped", "sandbox"),
        ("plugin.stopping", "llm"), ("plugin.stopped", "llm"),
    ]
    # every lifecycle event sits between run.started and run.stopped, in that order
    assert kinds[5:-1] == [kind for kind, _ in lifecycle(records)]


# -- refused before anything starts -------------------------------------------------------------


def _no_plugin_started(path: Path) -> None:
    assert read_log(path, kinds=["plugin.starting", "plugin.started"]) == []


def test_missing_dependency_is_refused_naming_both_plugins(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("llm", LLMPlugin)
        system.register("agent", AgentPlugin, depends_on=["llm", "sandbox"])
        with pytest.raises(DependencyError) as info:
            system.start()
        assert system.plugins == {"llm": "registered", "agent": "registered"}
        with pytest.raises(PluginNotRunningError):
            system.ask("llm", Generate(prompt="x"), timeout=5)
    message = str(info.value)
    assert "'agent'" in message and "'sandbox'" in message
    _no_plugin_started(path)


def test_duplicate_name_is_refused_at_register(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("llm", LLMPlugin)
        with pytest.raises(RegistrationError, match="'llm'.*already registered"):
            system.register("llm", SandboxPlugin)
        assert list(system.plugins) == ["llm"]
    registered = read_log(path, kinds=["plugin.registered"])
    assert [(r.event.plugin, r.event.class_path) for r in registered] == [("llm", "actor_helpers:LLMPlugin")]
    _no_plugin_started(path)


def test_unmet_version_requirement_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("llm", LLMPlugin)
        system.register("sandbox", SandboxV2)
        system.register("agent", AgentPlugin, depends_on=["llm", "sandbox"], requires={"sandbox": ">=1.0,<2"})
        with pytest.raises(DependencyError) as info:
            system.start()
    message = str(info.value)
    for part in ("'agent'", "'sandbox'", ">=1.0,<2", "2.1"):
        assert part in message, (part, message)
    _no_plugin_started(path)


def test_met_version_requirement_passes(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("llm", LLMPlugin, config={"model": "m"})
        system.register("sandbox", SandboxPlugin)  # version 1.4.0
        system.register(
            "agent", AgentPlugin, depends_on=["llm", "sandbox"], requires={"sandbox": ">=1.0,<2", "llm": "~=1.2"}
        )
        system.start()
        assert system.ask("agent", Solve(task="t"), timeout=5).output == "ran <m: t>"


def test_requirement_via_class_attributes(tmp_path: Path) -> None:
    class PickyAgent(AgentPlugin):
        depends_on = ("llm", "sandbox")
        requires = {"sandbox": ">=2"}

    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("llm", LLMPlugin)
        system.register("sandbox", SandboxPlugin)
        system.register("agent", PickyAgent)
        with pytest.raises(DependencyError, match="1.4.0"):
            system.start()
    _no_plugin_started(path)


def test_non_json_config_is_refused_naming_the_plugin(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        with pytest.raises(RegistrationError, match="'llm'"):
            system.register("llm", LLMPlugin, config={"model": object()})
        with pytest.raises(RegistrationError, match="'sandbox'"):
            system.register("sandbox", SandboxPlugin, config={"callback": print})
        assert system.plugins == {}
        # the refused names are free: registering them properly works
        system.register("llm", LLMPlugin, config={"model": "ok"})
        system.start()
    registered = read_log(path, kinds=["plugin.registered"])
    assert [(r.event.plugin, r.event.config) for r in registered] == [("llm", {"model": "ok"})]


@pytest.mark.parametrize("name", ["", "app", "*", "supervisor", "errors", "metrics", "system"])
def test_reserved_or_empty_names_are_refused(tmp_path: Path, name: str) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        with pytest.raises(RegistrationError, match="invalid plugin name"):
            system.register(name, LLMPlugin)


# -- start failure cleanup ------------------------------------------------------------------


def test_start_failure_stops_what_started_and_leaves_dependents_unstarted(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    calls = Recorder()
    sink = share(calls)
    with ActorSystem(path) as system:
        system.register("a", Worker, config={"sink": sink})
        system.register("d", Worker, config={"sink": sink})
        system.register("b", Worker, config={"sink": sink, "fail_start": True}, depends_on=["a"])
        system.register("c", Worker, config={"sink": sink}, depends_on=["b"])
        with pytest.raises(StartError) as info:
            system.start()
        states = system.plugins
        with pytest.raises(PluginNotRunningError):
            system.ask("a", Ping(), timeout=5)

    error = info.value
    message = str(error)
    assert "'b'" in message
    assert "RuntimeError" in message and "cannot start b" in message
    assert "left unstarted: c" in message
    assert error.plugin == "b" and error.unstarted == ("c",)
    assert isinstance(error.__cause__, RuntimeError)
    assert states == {"a": "stopped", "d": "stopped", "b": "failed", "c": "registered"}

    assert [(hook, name) for hook, name, _ in calls.items] == [
        ("start", "a"), ("start", "d"), ("start", "b"), ("stop", "d"), ("stop", "a"),
    ]
    records = read_log(path)
    assert lifecycle(records) == [
        ("plugin.starting", "a"), ("plugin.started", "a"),
        ("plugin.starting", "d"), ("plugin.started", "d"),
        ("plugin.starting", "b"),
        ("plugin.stopping", "d"), ("plugin.stopped", "d"),
        ("plugin.stopping", "a"), ("plugin.stopped", "a"),
    ]
    failed = [r.event for r in records if r.kind == "plugin.failed"]
    assert [(e.plugin, e.exc_type) for e in failed] == [("b", "builtins.RuntimeError")]
    assert "cannot start b" in failed[0].reason
    raised = [r.event for r in records if r.kind == "failure.raised"]
    assert [(e.plugin, e.exc_type, e.message) for e in raised] == [("b", "builtins.RuntimeError", "cannot start b")]
    assert not any(r.kind in ("plugin.starting", "plugin.started") and r.event.plugin == "c" for r in records)


# -- threads and concurrent systems ------------------------------------------------------------


def test_no_thread_is_left_after_the_with_block(tmp_path: Path) -> None:
    before = thread_names()
    count_before = threading.active_count()
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("llm", LLMPlugin, health_interval=0.05)
        system.register("sandbox", SandboxPlugin)
        system.register("agent", AgentPlugin, depends_on=["llm", "sandbox"])
        system.start()
        system.ask("agent", Solve(task="x"), timeout=5)
        during = thread_names() - before
        system.metrics.increment("x")
    prefixes = {name.split("-")[0] for name in during}
    assert {"PluginActor", "Supervisor", "ErrorHandler", "MetricsCollector", "StoreWriter"} <= prefixes, during
    wait_until(lambda: thread_names() == before, timeout=10, what="threads back to the ones before")
    wait_until(lambda: threading.active_count() == count_before, timeout=10)


def test_no_thread_is_left_after_a_start_failure(tmp_path: Path) -> None:
    before = thread_names()
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("a", Worker)
        system.register("b", Worker, config={"fail_start": True}, depends_on=["a"])
        with pytest.raises(StartError):
            system.start()
    wait_until(lambda: thread_names() == before, timeout=10, what="threads back to the ones before")


def test_two_systems_in_one_process_do_not_interfere(tmp_path: Path) -> None:
    paths = [tmp_path / "one.db", tmp_path / "two.db"]
    barrier = threading.Barrier(2, timeout=10)
    results: dict[int, object] = {}
    runs: dict[int, str] = {}

    def run(index: int) -> None:
        try:
            with ActorSystem(paths[index]) as system:
                runs[index] = system.run
                system.register("llm", LLMPlugin, config={"model": f"model-{index}"})
                system.register("worker", Worker)
                system.start()
                barrier.wait()  # both systems are running at once
                replies = [system.ask("llm", Generate(prompt=f"p{index}-{i}"), timeout=5) for i in range(20)]
                counts = [system.ask("worker", Count(), timeout=5)[0] for _ in range(5)]
                barrier.wait()
            results[index] = (replies, counts)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for index in range(2):
        result = results.get(index)
        if isinstance(result, BaseException):
            raise result
        assert result is not None, f"system {index} did not finish"
        replies, counts = result  # type: ignore[misc]
        assert replies == [f"model-{index}: p{index}-{i}" for i in range(20)]
        assert counts == [1, 2, 3, 4, 5]
    assert runs[0] != runs[1]
    for index, path in enumerate(paths):
        records = read_log(path)
        assert {r.run for r in records} == {runs[index]}
        prompts = [r.event.message.get("prompt") for r in records if r.kind == "message.received" and r.event.recipient == "llm"]
        assert prompts == [f"p{index}-{i}" for i in range(20)]
        registered = [r.event.config for r in records if r.kind == "plugin.registered" and r.event.plugin == "llm"]
        assert registered == [{"model": f"model-{index}"}]
        assert kinds_of(records).count("run.started") == 1
        assert kinds_of(records).count("run.stopped") == 1


def test_system_with_an_open_store_leaves_it_open_and_flushed(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with EventStore(path) as store:
        with ActorSystem(store) as system:
            system.register("llm", LLMPlugin)
            system.start()
            assert system.run == store.run
        # the system flushed the shared store but did not close it
        kinds = [r.kind for r in store.events()]
        assert kinds[0] == "run.started" and kinds[-1] == "run.stopped"
