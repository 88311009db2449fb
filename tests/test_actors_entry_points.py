"""Plugins found by entry point (``actorlog.plugins``) or by import path."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from actor_helpers import Echo, read_log
from actorlog.actors import ENTRY_POINT_GROUP, ActorSystem, RegistrationError

MODULE = "fakeplug_mod"


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed-looking distribution ``fakeplug`` with two entry points, on sys.path."""
    site = tmp_path / "site"
    info = site / "fakeplug-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nechoer = {MODULE}:Echoer\nbroken = fakeplug_broken:Nothing\n"
    )
    (site / f"{MODULE}.py").write_text(
        textwrap.dedent(
            """
            from actor_helpers import Echo
            from actorlog.actors import Plugin, handler


            class Echoer(Plugin):
                version = "0.1"

                @handler
                def echo(self, message: Echo) -> str:
                    return self.config.get("prefix", "") + message.text


            class NotAPlugin:
                pass
            """
        )
    )
    (site / "fakeplug_broken.py").write_text("raise ImportError('fakeplug_broken is broken on purpose')\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    for name in (MODULE, "fakeplug_broken"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield site
    for name in (MODULE, "fakeplug_broken"):
        sys.modules.pop(name, None)


def test_available_plugins_lists_the_entry_point(fake_distribution: Path) -> None:
    available = ActorSystem.available_plugins()
    assert available["echoer"] == f"{MODULE}:Echoer"


def test_register_by_entry_point_name(fake_distribution: Path, tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("e", "echoer", config={"prefix": "> "})
        system.start()
        assert system.ask("e", Echo(text="hello"), timeout=5) == "> hello"
    registered = read_log(path, kinds=["plugin.registered"])
    assert [(r.event.plugin, r.event.class_path, r.event.plugin_version) for r in registered] == [
        ("e", f"{MODULE}:Echoer", "0.1")
    ]


@pytest.mark.parametrize("spec", [f"{MODULE}:Echoer", f"{MODULE}.Echoer"])
def test_register_by_import_path(fake_distribution: Path, tmp_path: Path, spec: str) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("e", spec)
        system.start()
        assert system.ask("e", Echo(text="hi"), timeout=5) == "hi"


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("no_such_entry_point", r"'no_such_entry_point' is neither an installed actorlog\.plugins entry point"),
        ("no_such_module_xyz:Thing", r"cannot import module 'no_such_module_xyz'"),
        (f"{MODULE}:Missing", rf"module '{MODULE}' has no attribute 'Missing'"),
        (f"{MODULE}:NotAPlugin", r"not a subclass of actorlog\.actors\.Plugin"),
        ("broken", r"entry point 'broken' \(fakeplug_broken:Nothing\) cannot be loaded.*broken on purpose"),
    ],
)
def test_bad_plugin_specs_are_refused_clearly(fake_distribution: Path, tmp_path: Path, spec: str, pattern: str) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        with pytest.raises(RegistrationError, match=pattern):
            system.register("e", spec)
        assert system.plugins == {}
    assert read_log(path, kinds=["plugin.registered"]) == []


def test_a_non_class_non_string_plugin_is_refused(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        with pytest.raises(RegistrationError, match="class, an import path or an entry-point name"):
            system.register("e", 42)  # type: ignore[arg-type]
