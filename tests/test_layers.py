"""Layers run one way: events <- store <- projections <- actors <- tools.

The import-linter contract in pyproject.toml (run by .ci/run as ``lint-imports``) holds
the static graph; these tests hold what a user sees at run time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest


def loaded_after(statement: str) -> set[str]:
    """The actorlog modules loaded by running ``statement`` in a fresh interpreter."""
    program = f"import sys\n{statement}\nprint('\\n'.join(m for m in sys.modules if m.startswith('actorlog')))"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True)
    return set(result.stdout.split())


@pytest.mark.parametrize("statement", [
    "import actorlog.replay.rebuild",
    "from actorlog.replay import rebuild, rebuild_metrics, story",
    "import actorlog.store",
    "import actorlog.replay.statistics",
])
def test_replay_and_the_store_load_nothing_of_the_actor_system(statement: str) -> None:
    loaded = loaded_after(statement)
    assert not {m for m in loaded if m.startswith("actorlog.actors")}, sorted(loaded)


def test_the_command_line_loads_the_example_plugins_only_for_the_demo() -> None:
    loaded = loaded_after("from actorlog.replay.main import cli")
    assert not {m for m in loaded if m.startswith("actorlog.actors.examples")}, sorted(loaded)


def test_the_event_types_load_only_themselves() -> None:
    loaded = loaded_after("import actorlog.events")
    assert {m.split(".")[1] for m in loaded if m.count(".")} == {"events"}, sorted(loaded)


def test_the_import_linter_contract_holds() -> None:
    program = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    lint = subprocess.run([sys.executable, "-c", program, "--no-cache"], capture_output=True, text=True, timeout=120)
    if "No module named" in lint.stderr:
        pytest.fail("import-linter is missing: install the project with its test extras")
    assert lint.returncode == 0 and "1 kept, 0 broken" in lint.stdout, lint.stdout + lint.stderr


def test_every_module_imports_first_on_its_own() -> None:
    """No module-level import cycle: each module can be the first one a program imports."""
    program = """
import importlib, pkgutil, subprocess, sys
import actorlog.actors, actorlog.events, actorlog.replay, actorlog.store
names = [m.name for package in (actorlog.actors, actorlog.events, actorlog.replay, actorlog.store)
         for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
failed = []
for name in names:
    result = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True)
    if result.returncode:
        failed.append((name, result.stderr.strip().splitlines()[-1]))
print(len(names), failed)
sys.exit(1 if failed else 0)
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


# Imports of actorlog modules inside functions, each with why it is not at the top: an optional
# backend or the demo's plugins, loaded only when asked for (never to dodge an import cycle).
DEFERRED_IMPORTS = {
    ("store/backend.py", "actorlog.store.sqlite_backend"),  # the backend a location names, only
    ("store/backend.py", "actorlog.store.postgres_backend"),  # psycopg, only for a postgresql:// log
    ("replay/app_commands.py", "actorlog.actors.examples.demo"),  # the demo's plugins, only for `demo`
}


def test_no_actorlog_import_is_hidden_in_a_function() -> None:
    root = Path(__file__).resolve().parent.parent
    found = set()
    for folder in ("actors", "events", "store", "replay"):
        for path in sorted((root / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for function in ast.walk(tree):
                if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast.walk(function):
                    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("actorlog"):
                        found.add((str(path.relative_to(root)), node.module))
                    elif isinstance(node, ast.Import):
                        found |= {(str(path.relative_to(root)), a.name) for a in node.names if a.name.startswith("actorlog")}
    assert found <= DEFERRED_IMPORTS, sorted(found - DEFERRED_IMPORTS)
