"""Dependency graphs: start after dependencies, stop before them, deterministic order, cycles refused."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actor_helpers import Recorder, Worker, read_log, share, worker_class
from actorlog.actors import ActorSystem, DependencyError
from actorlog.actors.graph import dependents_of, find_cycle, start_order

NAMES = [f"p{i}" for i in range(8)]
SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@st.composite
def dags(draw: st.DrawFn, min_size: int = 1, max_size: int = 8) -> dict[str, list[str]]:
    """A random DAG as name -> dependencies, in a random registration order.

    A hidden topological order decides which edges may exist; registration order is
    a separate permutation, so dependencies are often registered after their dependents.
    """
    size = draw(st.integers(min_size, max_size))
    topo = draw(st.permutations(NAMES[:size]))
    graph: dict[str, list[str]] = {}
    for index, name in enumerate(topo):
        graph[name] = draw(st.lists(st.sampled_from(topo[:index]), unique=True)) if index else []
    registration = draw(st.permutations(list(graph)))
    return {name: graph[name] for name in registration}


@st.composite
def cyclic_graphs(draw: st.DrawFn) -> tuple[dict[str, list[str]], list[str]]:
    """A graph with exactly one dependency cycle (the ring), returned with the ring.

    Nodes get a hidden index; acyclic edges go from higher to lower index. The ring
    nodes depend on the next ring node (the last on the first) and otherwise only on
    nodes below the lowest ring index, which cannot reach the ring: so the ring is the
    only cycle, while nodes above it may depend on ring nodes.
    """
    size = draw(st.integers(1, 8))
    topo = draw(st.permutations(NAMES[:size]))
    ring_indices = sorted(draw(st.sets(st.integers(0, size - 1), min_size=1, max_size=size)))
    ring = [topo[i] for i in ring_indices]
    low = ring_indices[0]
    graph: dict[str, list[str]] = {}
    for index, name in enumerate(topo):
        if name in ring:
            position = ring.index(name)
            extra = draw(st.lists(st.sampled_from(topo[:low]), unique=True)) if low else []
            graph[name] = [ring[(position + 1) % len(ring)], *extra]
        else:
            graph[name] = draw(st.lists(st.sampled_from(topo[:index]), unique=True)) if index else []
    registration = draw(st.permutations(list(graph)))
    return {name: graph[name] for name in registration}, ring


def reference_order(graph: dict[str, list[str]]) -> list[str]:
    """Repeatedly take the first plugin, in registration order, whose dependencies are placed."""
    placed: list[str] = []
    while len(placed) < len(graph):
        name = next(n for n in graph if n not in placed and all(d in placed for d in graph[n]))
        placed.append(name)
    return placed


def run_graph(path: Path, graph: dict[str, list[str]], *, class_attrs: bool) -> tuple[list, list, list[str]]:
    """Start and stop a system of Workers wired as ``graph``; (calls, log lifecycle, start() result)."""
    calls = Recorder()
    sink = share(calls)
    with ActorSystem(path) as system:
        for name, deps in graph.items():
            if class_attrs:
                system.register(name, worker_class(name, deps), config={"sink": sink})
            else:
                system.register(name, Worker, config={"sink": sink}, depends_on=deps)
        order = system.start()
        assert set(system.plugins.values()) == {"running"}
    records = read_log(path, kinds=["plugin.started", "plugin.stopped"])
    logged = [(r.kind.split(".")[1], r.event.plugin) for r in records]
    recorded = [(hook + ("ed" if hook == "start" else "ped"), name) for hook, name, _ in calls.items]
    return recorded, logged, order


def check_dependency_order(events: list[tuple[str, str]], graph: dict[str, list[str]]) -> None:
    started = [name for what, name in events if what == "started"]
    stopped = [name for what, name in events if what == "stopped"]
    assert sorted(started) == sorted(graph) and sorted(stopped) == sorted(graph)
    assert [what for what, _ in events] == ["started"] * len(graph) + ["stopped"] * len(graph)
    for name, deps in graph.items():
        for dep in deps:
            assert started.index(dep) < started.index(name), (dep, name, started)
            assert stopped.index(name) < stopped.index(dep), (name, dep, stopped)


@SETTINGS
@given(graph=dags())
def test_random_dags_start_and_stop_in_dependency_order(tmp_path: Path, graph: dict[str, list[str]]) -> None:
    first = run_graph(tmp_path / f"{uuid.uuid4().hex}.db", graph, class_attrs=True)
    second = run_graph(tmp_path / f"{uuid.uuid4().hex}.db", graph, class_attrs=False)
    recorded, logged, order = first
    check_dependency_order(recorded, graph)
    check_dependency_order(logged, graph)
    assert recorded == logged
    # deterministic: registration order breaks ties, the same graph gives the same order
    assert order == reference_order(graph) == start_order(graph)
    assert [name for what, name in logged if what == "started"] == order
    assert [name for what, name in logged if what == "stopped"] == order[::-1]
    assert second == first


@SETTINGS
@given(case=cyclic_graphs())
def test_cycles_are_refused_naming_the_whole_cycle(tmp_path: Path, case: tuple[dict[str, list[str]], list[str]]) -> None:
    graph, ring = case
    path = tmp_path / f"{uuid.uuid4().hex}.db"
    calls = Recorder()
    sink = share(calls)
    with ActorSystem(path) as system:
        for name, deps in graph.items():
            system.register(name, Worker, config={"sink": sink}, depends_on=deps)
        with pytest.raises(DependencyError) as info:
            system.start()
        assert set(system.plugins.values()) == {"registered"}
    message = str(info.value)
    match = re.search(r"'[^']+'(?: -> '[^']+')+", message)
    assert match, message
    path_names = re.findall(r"'([^']+)'", match.group(0))
    # a closed path along real dependency edges, visiting every plugin on the ring once
    assert path_names[0] == path_names[-1]
    assert len(path_names) == len(ring) + 1
    assert sorted(path_names[:-1]) == sorted(ring)
    for a, b in zip(path_names, path_names[1:]):
        assert b in graph[a], (a, b, graph)
    assert calls.items == []
    assert read_log(path, kinds=["plugin.starting", "plugin.started"]) == []


# -- pure graph functions ---------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(graph=dags())
def test_start_order_pure(graph: dict[str, list[str]]) -> None:
    order = start_order(graph)
    assert order == reference_order(graph)
    assert find_cycle(graph) is None
    position = {name: i for i, name in enumerate(order)}
    for name, deps in graph.items():
        assert all(position[d] < position[name] for d in deps)
        for dependent in dependents_of(name, graph):
            assert position[dependent] > position[name]


@settings(max_examples=200, deadline=None)
@given(case=cyclic_graphs())
def test_find_cycle_pure(case: tuple[dict[str, list[str]], list[str]]) -> None:
    graph, ring = case
    cycle = find_cycle(graph)
    assert cycle is not None
    assert cycle[0] == cycle[-1] and sorted(cycle[:-1]) == sorted(ring)
    for a, b in zip(cycle, cycle[1:]):
        assert b in graph[a]
    with pytest.raises(DependencyError, match=" -> ".join(f"'{n}'" for n in cycle)):
        start_order(graph)


def test_graph_examples() -> None:
    assert start_order({"agent": ["llm", "sandbox"], "llm": [], "sandbox": []}) == ["llm", "sandbox", "agent"]
    assert start_order({"b": [], "a": []}) == ["b", "a"]
    assert find_cycle({"a": ["a"]}) == ["a", "a"]
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    with pytest.raises(DependencyError, match="'a' -> 'b' -> 'a'"):
        start_order({"a": ["b"], "b": ["a"]})
    with pytest.raises(DependencyError, match="'x'.*'ghost'"):
        start_order({"x": ["ghost"]})
    assert dependents_of("a", {"a": [], "b": ["a"], "c": ["b"], "d": []}) == {"b", "c"}
