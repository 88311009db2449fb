"""Dependency ordering of plugins: validation, topological order, dependents, version requirements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from actorlog.actors.errors import DependencyError
from actorlog.actors.loading import class_path

if TYPE_CHECKING:
    from actorlog.actors.plugin import Plugin


def unmet_requirement(
    name: str, dep: str, spec: str, depends_on: Sequence[str], dep_class: type[Plugin] | None,
    dep_version: str | None = None,
) -> str | None:
    """Why plugin ``name``'s requirement ``spec`` on plugin ``dep`` (of class ``dep_class``,
    at ``dep_version``, by default the class's own) is not met, or None when it is."""
    if dep not in depends_on or dep_class is None:
        return f"plugin {name!r} has a version requirement on {dep!r} but does not depend on it"
    try:
        specifier = SpecifierSet(spec)
    except InvalidSpecifier:
        return f"plugin {name!r}: {spec!r} is not a valid version requirement for {dep!r}"
    found = str(dep_class.version) if dep_version is None else dep_version
    try:
        met = Version(found) in specifier
    except InvalidVersion:
        return f"plugin {dep!r} has an invalid version {found!r}"
    if met:
        return None
    return f"plugin {name!r} requires {dep!r} {spec}, but {dep!r} ({class_path(dep_class)}) is version {found}"


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
