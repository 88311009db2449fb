"""Declaring plugins: handlers by annotation or explicit type, overriding, refused declarations, emit."""

from __future__ import annotations

from pathlib import Path

import pytest

from actor_helpers import Count, Draw, Generate, Noted, Ping, Worker, read_log
from actorlog.actors import ActorSystem, Plugin, RegistrationError, handler
from actorlog.actors.plugin import handlers_of


class Explicit(Plugin):
    @handler(Ping)
    def on_ping(self, message):  # type: ignore[no-untyped-def] - no annotation: the type is given
        return "explicit"

    @handler
    def on_generate(self, message: Generate) -> str:
        return f"annotated {message.prompt}"


def test_handlers_by_annotation_and_by_explicit_type(tmp_path: Path) -> None:
    assert set(handlers_of(Explicit)) == {Ping, Generate}
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("p", Explicit)
        system.start()
        assert system.ask("p", Ping(), timeout=5) == "explicit"
        assert system.ask("p", Generate(prompt="x"), timeout=5) == "annotated x"


def test_a_subclass_overriding_a_handler_method_runs_the_override(tmp_path: Path) -> None:
    """Normal Python overriding: ``Sub.ping`` replaces ``Worker.ping`` for Sub's instances."""

    class Sub(Worker):
        def ping(self, message: Ping) -> str:
            return "overridden"

    with ActorSystem(tmp_path / "app.db") as system:
        system.register("sub", Sub)
        system.start()
        assert system.ask("sub", Count(), timeout=5)[0] == 1  # inherited handlers still work
        assert system.ask("sub", Ping(), timeout=5) == "overridden"


def test_a_subclass_handler_for_the_same_type_replaces_the_base_one(tmp_path: Path) -> None:
    class Sub(Worker):
        @handler
        def other_ping(self, message: Ping) -> str:
            return "sub handler"

    with ActorSystem(tmp_path / "app.db") as system:
        system.register("sub", Sub)
        system.start()
        assert system.ask("sub", Ping(), timeout=5) == "sub handler"


def test_bad_handler_declarations_are_refused(tmp_path: Path) -> None:
    class TwoParams(Plugin):
        @handler
        def h(self, a: Ping, b: Ping) -> None: ...

    class NoAnnotation(Plugin):
        @handler
        def h(self, message):  # type: ignore[no-untyped-def]
            ...

    class NotAMessage(Plugin):
        @handler
        def h(self, message: int) -> None: ...

    with ActorSystem(tmp_path / "app.db") as system:
        with pytest.raises(RegistrationError, match="exactly one message parameter"):
            system.register("a", TwoParams)
        with pytest.raises(RegistrationError, match="annotate the message parameter"):
            system.register("b", NoAnnotation)
        with pytest.raises(RegistrationError, match="not an actorlog Message"):
            system.register("c", NotAMessage)
        with pytest.raises(RegistrationError, match="not a subclass of actorlog.actors.Plugin"):
            system.register("d", dict)  # type: ignore[arg-type]
        assert system.plugins == {}


def test_emit_appends_the_plugins_own_events(tmp_path: Path) -> None:
    class Emitter(Worker):
        @handler
        def note(self, message: Generate) -> None:
            self.context.emit(Noted(text=message.prompt))

    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("emitter", Emitter)
        system.start()
        system.ask("emitter", Generate(prompt="remember this"), timeout=5, correlation="corr-e")
    noted = read_log(path, kinds=["t3.noted"])
    assert [(r.actor, r.correlation, r.event) for r in noted] == [("emitter", "corr-e", Noted(text="remember this"))]


def test_context_outside_a_handler(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    class Looker(Worker):
        def on_start(self) -> None:
            seen["name"] = self.context.name
            seen["run"] = self.context.run
            seen["correlation"] = self.context.correlation
            seen["deps"] = sorted(self.deps)

    with ActorSystem(tmp_path / "app.db") as system:
        system.register("base", Worker)
        system.register("looker", Looker, depends_on=["base"])
        system.start()
        assert system.ask("looker", Draw(), timeout=5)[2] is not None
        assert seen == {"name": "looker", "run": system.run, "correlation": None, "deps": ["base"]}
