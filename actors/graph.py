"""Dependency ordering of plugins: validation, topological order, dependents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from actorlog.actors.errors import DependencyError


def start_order(depends_on: Mapping[str, Sequence[str]]) -> list[str]:
    """Names in an order where every plugin comes after all its dependencies.

    Deterministic: among plugins whose dependencies are all placed, the one registered
    first goes first (mapping order). Raises `DependencyError` naming a missing
    dependency, or the whole cycle.
    """
    for name, deps in depends_on.items():
        missing = [dep for dep in deps if dep not in depends_on]
        if missing:
            raise DependencyError(
                f"plugin {name!r} depends on {', '.join(map(repr, missing))}, which "
                f"{'is' if len(missing) == 1 else 'are'} not registered; register "
                f"{'it' if len(missing) == 1 else 'them'} or remove the dependency"
            )
    cycle = find_cycle(depends_on)
    if cycle:
        raise DependencyError(
            f"dependency cycle: {' -> '.join(map(repr, cycle))}; a plugin cannot depend on itself, directly or through others"
        )
    placed: list[str] = []
    done: set[str] = set()
    remaining = list(depends_on)
    while remaining:
        for name in remaining:
            if all(dep in done for dep in depends_on[name]):
                placed.append(name)
                done.add(name)
                remaining.remove(name)
                break
    return placed


def find_cycle(depends_on: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as a closed path (first name repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for root in depends_on:
        if state.get(root):
            continue
        path: list[str] = [root]
        iterators = [iter(depends_on[root])]
        state[root] = 1
        while iterators:
            dep = next(iterators[-1], None)
            if dep is None:
                state[path.pop()] = 2
                iterators.pop()
                continue
            if dep not in depends_on:
                continue
            if state.get(dep) == 1:
                return path[path.index(dep) :] + [dep]
            if not state.get(dep):
                state[dep] = 1
                path.append(dep)
                iterators.append(iter(depends_on[dep]))
    return None


def dependents_of(name: str, depends_on: Mapping[str, Sequence[str]]) -> set[str]:
    """Every plugin that depends on ``name``, directly or through others."""
    found: set[str] = set()
    frontier = [name]
    while frontier:
        current = frontier.pop()
        for other, deps in depends_on.items():
            if current in deps and other not in found:
                found.add(other)
                frontier.append(other)
    return found
