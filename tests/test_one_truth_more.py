"""One truth for every built-in fact (issue 12), the parts the other suites leave open.

- ``context.emit`` refuses every built-in fact (every kind of the catalogue but the four
  measurements), not only the few the live/replay contract forges: the error names the
  kind and why, nothing is appended, no statistic moves. Measurements may be emitted, or
  appended under any actor name, and count.
- A built-in fact appended through the store by an actor not entitled to it is in the log
  (``actorlog query`` shows it) but changes no statistic, live or rebuilt; the contract
  suite covers the kinds in its ``FORGERIES``, this file every other one.
- ``actorlog.store`` loads no pykka; there is one `RegistrationError`; the timeouts a user
  can still hit (a health check, a flush the metrics collector cannot finish) are
  `TimeoutError`, never ``pykka.Timeout``.
- The package declares every third-party module it imports.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import json
import pkgutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pykka
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import actorlog.actors
import actorlog.events
import actorlog.replay
import actorlog.store
from actor_helpers import live_events, share, shared, wait_until
from contract_helpers import FORGERIES
from fault_helpers import lock_held
from replay_helpers import invoke
from actorlog.actors import ActorSystem, Health, Plugin, handler
from actorlog.events import (
    BUILTIN_EVENTS,
    MEASUREMENT_KINDS,
    RESERVED_KINDS,
    Event,
    Message,
    RegistrationError,
    default_registry,
    register,
    tag_of,
)
from actorlog.replay import rebuild, rebuild_error_statistics

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (actorlog.actors, actorlog.events, actorlog.store, actorlog.replay)


def kind_of(cls: type) -> str:
    """The kind (tag) of a registered type."""
    tag = tag_of(cls)
    assert tag is not None, cls
    return tag


# -- the built-in kinds, from the code's own tables ------------------------------------------------------

BUILTINS: tuple[type[Event], ...] = tuple(
    cls for cls in default_registry.types() if cls.__module__ == "actorlog.events.catalogue"  # type: ignore[misc]
)
"""Every built-in event type the default registry holds (the catalogue's, whatever tests registered)."""

FACTS: tuple[type[Event], ...] = tuple(cls for cls in BUILTINS if kind_of(cls) not in MEASUREMENT_KINDS)
"""Built-in facts: every built-in kind but the measurements."""

MEASURED: tuple[type[Event], ...] = tuple(cls for cls in BUILTINS if kind_of(cls) in MEASUREMENT_KINDS)
"""The built-in measurements (counter, gauge, histogram, timed operation)."""

FAMILIES = {"run", "plugin", "message", "failure", "recovery", "retry", "task", "snapshot", "checkpoint"}
"""The families of built-in facts issue 12 names; every one must be among `FACTS`."""

NOT_YET_APPENDED = sorted(kind_of(cls) for cls in FACTS if kind_of(cls) not in FORGERIES)
"""Built-in facts the live/replay contract never appends as another actor (it covers `FORGERIES`)."""


def family(kind: str) -> str:
    return kind.split(".")[0]


def sample(t: mi.Type, name: str, context: dict[str, Any]) -> Any:
    """A value of type ``t`` for field ``name``, chosen to change a statistic if it were folded."""
    if isinstance(t, mi.StrType):
        return context.get(name, "forged")
    if isinstance(t, mi.BoolType):
        return False
    if isinstance(t, mi.IntType):
        return 7
    if isinstance(t, mi.FloatType):
        return 1.0
    if isinstance(t, mi.LiteralType):
        return t.values[-1]  # "critical", "escalate": the most telling
    if isinstance(t, mi.DictType):
        return {"forged": sample(t.value_type, "", context)}
    if isinstance(t, (mi.ListType, mi.VarTupleType)):
        return [sample(t.item_type, "", context)]
    if isinstance(t, mi.AnyType):
        return "forged"
    if isinstance(t, mi.UnionType):
        return sample(next(x for x in t.types if not isinstance(x, mi.NoneType)), name, context)
    raise TypeError(f"no sample value for {t!r} (field {name!r})")


def forged(cls: type[Event], about: str, run: str) -> Event:
    """An instance of ``cls`` with every field set (booleans the opposite of their default), about
    plugin ``about`` of ``run``: were it folded, the statistics would say so."""
    context = {"plugin": about, "recipient": about, "run": run, "class_path": "forged:Ghost",
               "plugin_version": "6.6.6"}
    data: dict[str, Any] = {}
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    for f in info.fields:
        if isinstance(f.type, mi.BoolType) and not f.required:
            data[f.name] = not f.default
        else:
            data[f.name] = sample(f.type, f.name, context)
    return msgspec.convert(data, cls)


def timeless(document: Any) -> dict[str, Any]:
    """A statistics document without its position and times, which any appended row moves."""
    out = {k: v for k, v in msgspec.to_builtins(document).items() if k not in ("as_of", "position")}
    out["metrics"] = dict(out["metrics"])
    out["metrics"]["histograms"] = {
        name: {k: v for k, v in h.items() if k != "as_of"} for name, h in out["metrics"]["histograms"].items()
    }
    return out


# -- plugins --------------------------------------------------------------------------------------------


@register
class Forge(Message, tag="onetruth.forge", frozen=True):
    """``context.emit`` the built-in fact ``fact`` about plugin ``about`` of ``run``."""

    fact: str
    about: str
    run: str


@register
class Measure(Message, tag="onetruth.measure", frozen=True):
    """``context.emit`` the measurement ``measurement`` (a built-in measurement kind)."""

    measurement: str
    name: str
    value: float


@register
class Crash(Message, tag="onetruth.crash", frozen=True):
    """Raise a ValueError (medium: the plugin goes on)."""


class Forger(Plugin):
    """Emits what it is told to; answers the exception ``emit`` raised, or None."""

    version = "1.0"

    @handler
    def forge(self, message: Forge) -> BaseException | None:
        event = forged(default_registry.type_for(message.fact), message.about, message.run)  # type: ignore[arg-type]
        try:
            self.context.emit(event)
        except Exception as exc:  # noqa: BLE001 - the answer is how it was refused
            return exc
        return None

    @handler
    def measure(self, message: Measure) -> None:
        cls = default_registry.type_for(message.measurement)
        self.context.emit(msgspec.convert({"name": message.name, "value": message.value}, cls))

    @handler
    def crash(self, message: Crash) -> None:
        raise ValueError("one recorded failure")


class Idle(Plugin):
    version = "2.0"


class SlowHealth(Plugin):
    """Its health check waits for the shared event named in its config."""

    def health_check(self) -> bool | Health:
        shared(self.config["release"]).wait(60)
        return True


@pytest.fixture
def system(tmp_path: Path) -> Iterator[ActorSystem]:
    """A running system: ``forger`` (its messages not logged, so asking it appends nothing),
    ``q`` running, ``later`` registered but never started."""
    with ActorSystem(tmp_path / "app.db") as running:
        running.register("forger", Forger, log_messages=False)
        running.register("q", Idle)
        running.start()
        running.register("later", Idle)
        yield running


# -- 1. context.emit refuses every built-in fact ----------------------------------------------------------


def test_the_facts_come_from_the_catalogue_and_cover_every_family() -> None:
    """What the parametrized tests below iterate over is the registry's own list, and whole."""
    assert set(BUILTINS) == set(BUILTIN_EVENTS), "the default registry holds exactly the catalogue's types"
    assert FACTS, "no built-in fact found"
    assert FAMILIES <= {family(kind_of(cls)) for cls in FACTS}
    assert {kind_of(cls) for cls in FACTS} == RESERVED_KINDS, "every built-in fact is reserved, and only those"
    assert {family(kind_of(cls)) for cls in MEASURED} == {"counter", "gauge", "histogram", "operation"}


@pytest.mark.parametrize("fact", FACTS, ids=kind_of)
def test_a_plugin_cannot_emit_any_built_in_fact(system: ActorSystem, fact: type[Event]) -> None:
    """Whoever the fact is about, ``emit`` raises PermissionError naming the kind and why; the log
    and the statistics stay as they were."""
    kind = kind_of(fact)
    last = system.flush()
    before = system.statistics()
    for about in ("later", "q", "forger"):
        refused = system.ask("forger", Forge(fact=kind, about=about, run=system.run), timeout=10)
        assert isinstance(refused, PermissionError), f"emitting {kind} answered {refused!r}"
        text = str(refused)
        assert kind in text and fact.__qualname__ in text and "'forger'" in text, text
        assert "built-in fact" in text and "only the actor system's own actors" in text, text
    assert system.flush() == last, "nothing was appended"
    assert [r for r in live_events(system) if r.seq > last] == []
    assert system.statistics() == before
    assert system.plugins == {"forger": "running", "q": "running", "later": "registered"}


def test_measurements_may_be_emitted_or_appended_under_any_actor_name_and_count(
    system: ActorSystem, tmp_path: Path,
) -> None:
    """Two plugins emit each measurement and application code appends it as "intruder": all count."""
    assert MEASURED
    system.register("meter", Forger, log_messages=False)
    system.start()
    for cls in MEASURED:
        kind = kind_of(cls)
        for plugin in ("forger", "meter"):
            system.ask(plugin, Measure(measurement=kind, name=f"ot.{family(kind)}", value=2.0), timeout=10)
        system.store.append(msgspec.convert({"name": f"ot.{family(kind)}", "value": 2.0}, cls), actor="intruder")
    document = system.statistics()
    metrics = document["metrics"]
    assert metrics["counters"]["ot.counter"] == 6.0
    assert metrics["gauges"]["ot.gauge"] == 2.0
    assert metrics["histograms"]["ot.histogram"]["count"] == 3
    assert metrics["histograms"]["ot.operation"]["count"] == 3
    assert metrics["counters"]["ot.operation.calls"] == 3.0
    actors = {(r.actor, r.kind) for r in live_events(system) if r.kind in MEASUREMENT_KINDS}
    assert actors == {(a, kind_of(cls)) for a in ("forger", "meter", "intruder") for cls in MEASURED}
    assert document == rebuild(tmp_path / "app.db", run=system.run).document()


# -- 2. built-in facts appended by another actor ------------------------------------------------------------


def test_the_contract_suite_appends_the_forgeries_this_file_leaves_out() -> None:
    """`FORGERIES` are the kinds tests/test_contract_live_replay.py appends as another actor."""
    assert set(FORGERIES) <= RESERVED_KINDS
    assert NOT_YET_APPENDED and set(NOT_YET_APPENDED) | set(FORGERIES) == RESERVED_KINDS


@pytest.mark.parametrize("kind", NOT_YET_APPENDED)
def test_a_built_in_fact_appended_by_an_intruder_is_shown_but_changes_no_statistic(
    system: ActorSystem, tmp_path: Path, kind: str,
) -> None:
    """Rows of ``kind`` about a running and a never-started plugin, appended through the store as
    "intruder": in the log and in ``actorlog query``, but no statistic moves, live or rebuilt."""
    path = tmp_path / "app.db"
    with pytest.raises(ValueError):
        system.ask("forger", Crash(), timeout=10)
    system.metrics.increment("ot.orders", 3.0)
    wait_until(lambda: system.error_statistics().total_errors == 1, what="the failure assessed")
    before = system.statistics()
    assert before["errors"]["total_errors"] == 1 and before["metrics"]["counters"]["ot.orders"] == 3.0
    errors, states = system.error_statistics(), system.plugins
    rebuilt, whole = rebuild(path, run=system.run).document(), rebuild(path).document()
    cls = default_registry.type_for(kind)
    assert cls is not None
    for about in ("later", "q"):
        ticket = system.store.append(forged(cls, about, system.run), actor="intruder")  # type: ignore[arg-type]
    after = system.statistics()
    assert ticket.seq is not None and after["position"] >= ticket.seq, "the live statistics read past the rows"
    assert timeless(after) == timeless(before)
    assert (system.error_statistics(), system.plugins) == (errors, states)
    assert system.restarts("later") == 0 and system.state("later") == "registered"
    assert timeless(rebuild(path, run=system.run).document()) == timeless(rebuilt)
    assert timeless(rebuild(path).document()) == timeless(whole)
    assert rebuild_error_statistics(path, run=system.run) == errors

    shown = invoke("query", path, "--actor", "intruder", "--format", "json")
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)
    assert [(row["kind"], row["run"]) for row in rows] == [(kind, system.run)] * 2


# -- 3. the store loads no pykka ---------------------------------------------------------------------------


def loaded_by(program: str) -> dict[str, list[str]]:
    """Run ``program`` in a fresh interpreter; what it left in sys.modules (pykka, actorlog)."""
    tail = ("\nimport json, sys\nprint(json.dumps({'pykka': sorted(m for m in sys.modules if m.split('.')[0] == 'pykka'),"
            " 'actorlog': sorted(m for m in sys.modules if m.startswith('actorlog.'))}))")
    result = subprocess.run([sys.executable, "-c", program + tail], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, list[str]] = json.loads(result.stdout.splitlines()[-1])
    return loaded


def test_importing_the_store_loads_no_pykka() -> None:
    assert loaded_by("import actorlog.store")["pykka"] == []


def test_importing_every_module_of_the_store_loads_no_pykka_and_nothing_of_the_actors() -> None:
    program = ("import importlib, pkgutil, actorlog.store\n"
               "for m in pkgutil.walk_packages(actorlog.store.__path__, 'actorlog.store.'):\n"
               "    importlib.import_module(m.name)")
    loaded = loaded_by(program)
    store = [m for m in loaded["actorlog"] if m.startswith("actorlog.store.")]
    expected = {m.name for m in pkgutil.walk_packages(actorlog.store.__path__, "actorlog.store.")}
    assert expected and expected <= set(store)
    assert loaded["pykka"] == []
    assert [m for m in loaded["actorlog"] if m.startswith("actorlog.actors")] == []


# -- 4. one RegistrationError; timeouts are TimeoutError ---------------------------------------------------------


def every_module() -> list[Any]:
    return [importlib.import_module(m.name) for package in PACKAGES
            for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")] + list(PACKAGES)


def test_there_is_one_registration_error_class() -> None:
    found = {(module.__name__, name): value for module in every_module() for name, value in vars(module).items()
             if name == "RegistrationError" or (inspect.isclass(value) and value.__name__ == "RegistrationError")}
    assert ("actorlog.actors", "RegistrationError") in found and ("actorlog.events", "RegistrationError") in found
    assert {id(value) for value in found.values()} == {id(RegistrationError)}, found
    assert actorlog.actors.RegistrationError is actorlog.events.RegistrationError
    defined = [(str(path.relative_to(ROOT)), node.lineno) for folder in ("actors", "events", "store", "replay")
               for path in sorted((ROOT / folder).rglob("*.py"))
               for node in ast.walk(ast.parse(path.read_text(), str(path)))
               if isinstance(node, ast.ClassDef) and node.name == "RegistrationError"]
    assert len(defined) == 1, defined


def test_a_bad_type_and_a_bad_plugin_raise_the_same_registration_error(tmp_path: Path) -> None:
    """One ``except RegistrationError`` catches a message type that cannot be registered and a
    plugin whose class cannot be imported."""

    class Clash(Message, tag="onetruth.forge", frozen=True):  # the tag of Forge, another type
        other: int

    with pytest.raises(actorlog.actors.RegistrationError) as by_type:
        register(Clash)
    with ActorSystem(tmp_path / "app.db") as running:
        with pytest.raises(actorlog.events.RegistrationError) as by_plugin:
            running.register("ghost", "no_such_module_anywhere:Ghost")
    assert type(by_type.value) is type(by_plugin.value) is RegistrationError
    assert "onetruth.forge" in str(by_type.value) and "no_such_module_anywhere" in str(by_plugin.value)


def test_a_health_check_that_does_not_answer_in_time_is_a_timeout_error(tmp_path: Path) -> None:
    release = threading.Event()
    with ActorSystem(tmp_path / "app.db") as running:
        running.register("slow", SlowHealth, config={"release": share(release)})
        running.start()
        try:
            with pytest.raises(TimeoutError) as timed_out:
                running.check_health("slow", timeout=0.2)
            assert not isinstance(timed_out.value, pykka.Timeout)
            assert "'slow'" in str(timed_out.value) and "0.2 s" in str(timed_out.value), str(timed_out.value)
        finally:
            release.set()
        assert running.check_health("slow", timeout=10)["slow"].healthy


def test_a_flush_the_metrics_collector_cannot_finish_is_a_timeout_error(tmp_path: Path) -> None:
    """Another process holds the log's write lock: measurements back up from the store's
    writer to the metrics collector, and ``flush(timeout=...)`` says so with a TimeoutError."""
    path = tmp_path / "app.db"
    with ActorSystem(path, store_options={"busy_timeout": 60.0, "max_pending_rows": 1, "max_batch_rows": 1}) as running:
        running.start()
        running.flush(timeout=30)
        failures: list[BaseException] = []
        with lock_held(path, "immediate"):
            for n in range(20):
                running.metrics.increment("ot.blocked", 1.0)
                try:
                    running.flush(timeout=0.2)
                except Exception as exc:  # noqa: BLE001 - judged below
                    failures.append(exc)
                    if "metrics collector" in str(exc):
                        break
        assert failures, "no flush timed out under the held lock"
        assert all(isinstance(f, TimeoutError) and not isinstance(f, pykka.Timeout) for f in failures), failures
        assert "the metrics collector had not recorded every measurement after 0.2 s" in str(failures[-1]), failures
        running.flush(timeout=60)
        assert running.statistics()["metrics"]["counters"]["ot.blocked"] == float(n + 1)


# -- 5. the dependencies are declared ----------------------------------------------------------------------------


def project() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["project"]  # type: ignore[no-any-return]


def names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_the_runtime_dependencies_are_declared() -> None:
    declared = names(project()["dependencies"])
    assert {"pykka", "msgspec", "sqlite-utils", "click", "tabulate"} <= declared, declared


def third_party_imports() -> Iterator[tuple[str, str, bool]]:
    """(module file, top-level module, whether imported eagerly) of every import of a third-party
    module in the installed actorlog sources. Eager: at module level, not guarded by ``try``
    (an ``except ImportError`` fallback) nor by ``TYPE_CHECKING``."""

    def walk(statements: list[ast.stmt], eager: bool) -> Iterator[tuple[str, bool]]:
        for node in statements:
            if isinstance(node, ast.Import):
                yield from ((alias.name, eager) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield node.module, eager
            elif isinstance(node, ast.If):
                typing_only = "TYPE_CHECKING" in ast.unparse(node.test)
                yield from walk(node.body, eager and not typing_only)
                yield from walk(node.orelse, eager)
            elif isinstance(node, ast.Try):
                for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                    yield from walk(block, False)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield from walk(node.body, False)
            elif isinstance(node, (ast.ClassDef, ast.With)):
                yield from walk(node.body, eager)

    for package in PACKAGES:
        for folder in package.__path__:
            for path in sorted(Path(folder).rglob("*.py")):
                for module, eager in walk(ast.parse(path.read_text(), str(path)).body, True):
                    top = module.split(".")[0]
                    if top not in sys.stdlib_module_names and top != "actorlog":
                        yield str(path), top, eager


def module_name(path: str) -> str:
    for package in PACKAGES:
        for folder in package.__path__:
            if Path(path).is_relative_to(folder):
                parts = Path(path).relative_to(folder).with_suffix("").parts
                return ".".join((package.__name__, *parts)).removesuffix(".__init__")
    raise AssertionError(path)


def test_every_third_party_import_is_a_declared_dependency_or_an_extra_imported_lazily() -> None:
    """A module imported when actorlog is is a runtime dependency; a module of an extra (psycopg,
    cryptography, datasette) is imported lazily, and only by modules nothing imports eagerly."""
    declared = names(project()["dependencies"])
    extras = {extra: names(reqs) for extra, reqs in project()["optional-dependencies"].items() if extra != "test"}
    optional = set().union(*extras.values())
    distributions = importlib.metadata.packages_distributions()
    found = list(third_party_imports())
    assert {top for _, top, _ in found} >= {"pykka", "msgspec", "sqlite_utils", "click", "tabulate"}, found

    def distribution(top: str) -> set[str]:
        return {canonicalize_name(d) for d in distributions.get(top, [top])}

    # modules that import an extra eagerly are optional: no other module may import them eagerly
    optional_modules = {module_name(path) for path, top, eager in found if eager and distribution(top) <= optional
                        and not distribution(top) & declared}
    eager_actorlog = {(module_name(str(path)), alias)
                      for package in PACKAGES for folder in package.__path__ for path in Path(folder).rglob("*.py")
                      for alias in _eager_actorlog_imports(path)}
    problems = []
    for path, top, eager in found:
        where = module_name(path)
        if distribution(top) & declared:
            continue
        if not distribution(top) & optional:
            problems.append(f"{where} imports {top} (distribution {', '.join(sorted(distribution(top)))}), which is "
                            f"neither a dependency nor in an extra ({', '.join(sorted(extras))}) of pyproject.toml")
        elif eager and where not in optional_modules:
            problems.append(f"{where} imports {top}, of an extra, at module level")
    for importer, imported in sorted(eager_actorlog):
        if any(imported == m or imported.startswith(m + ".") for m in optional_modules) and (
                importer not in optional_modules and not any(importer.startswith(m + ".") for m in optional_modules)):
            problems.append(f"{importer} imports the optional {imported} at module level")
    assert problems == [], "\n".join(sorted(set(problems)))


def _eager_actorlog_imports(path: Path) -> Iterator[str]:
    """actorlog modules ``path`` imports at module level."""
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("actorlog"):
            yield node.module  # type: ignore[misc]
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("actorlog"))

