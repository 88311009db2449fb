"""Config files and plugin classes that cannot be used: refused with one line naming the file
and the key, before the log is opened (no log file appears); ``actorlog run --check``; a
start that fails after the log was opened is recorded as not clean, with the reason.

Plugin modules that fail at import are written into tmp_path and imported from there
(by the test process through ``sys.path``, by ``actorlog`` subprocesses through PYTHONPATH).
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from actor_helpers import read_log
from actorlog.actors import ActorSystem, RegistrationError
from actorlog.actors.config import load_config
from actorlog.actors.errors import ConfigError
from actorlog.actors.examples.agent import AgentPlugin
from actorlog.actors.examples.llm import LLMPlugin
from actorlog.actors.examples.sandbox import SandboxPlugin
from actorlog.actors.loading import load_plugin_class
from actorlog.actors.metrics import MetricsOptions
from demo_helpers import LLM_CLASS, SANDBOX_CLASS, agent_system, one_line_error, system_toml
from replay_helpers import run_cli

pytestmark = pytest.mark.slow

LLM_ONLY = f'[plugins.llm]\nclass = "{LLM_CLASS}"\n'

# -- plugin and exception modules that fail at import -------------------------------------------------

BROKEN_MODULES: dict[str, tuple[str, list[str]]] = {
    # kind -> (module source, what the error names besides the module)
    "raises at import": ("1 / 0\n", ["ZeroDivisionError"]),
    "syntax error": ("def broken(:\n    pass\n", ["SyntaxError", "line 1"]),
    "exits at import": ("import sys\nsys.exit(3)\n", ["sys.exit(3)"]),
    "multi-line message": ("raise RuntimeError('first line\\nsecond line')\n", ["RuntimeError", "second line"]),
    "getattr raises": ("def __getattr__(name):\n    raise LookupError('no ' + name)\n", ["LookupError"]),
}


def broken_module(directory: Path, kind: str) -> str:
    """Write a module that fails the way ``kind`` says; returns its (unique) module name."""
    name = f"t13_{kind.replace(' ', '_').replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    (directory / f"{name}.py").write_text(BROKEN_MODULES[kind][0])
    return name


def with_import_path(directory: Path) -> dict[str, str]:
    """The environment of a subprocess that can import modules from ``directory``."""
    inherited = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(directory), *([inherited] if inherited else [])])}


@pytest.mark.parametrize("kind", BROKEN_MODULES)
def test_a_plugin_module_that_fails_at_import_is_a_registration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    module = broken_module(tmp_path, kind)
    with pytest.raises(RegistrationError) as caught:
        load_plugin_class(f"{module}:Plugin")
    message = str(caught.value)
    assert module in message and "\n" not in message, message
    for fragment in BROKEN_MODULES[kind][1]:
        assert fragment in message, (fragment, message)


def test_a_relative_class_path_is_a_registration_error() -> None:
    for spec in (".rel_plugins:X", "..pkg.mod:X", ".rel_plugins.X"):
        with pytest.raises(RegistrationError, match="relative") as caught:
            load_plugin_class(spec)
        assert repr(spec.partition(":")[0] if ":" in spec else spec.rpartition(".")[0]) in str(caught.value)


def test_registering_a_plugin_whose_module_exits_is_a_registration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    module = broken_module(tmp_path, "exits at import")
    with ActorSystem(tmp_path / "app.db") as system:
        with pytest.raises(RegistrationError, match="sys.exit"):
            system.register("p", f"{module}:Plugin")


@pytest.mark.parametrize("where", ["plugin class", "exception type"])
@pytest.mark.parametrize("kind", [*BROKEN_MODULES, "relative"])
def test_actorlog_run_names_the_file_the_key_and_the_cause(tmp_path: Path, kind: str, where: str) -> None:
    module = ".rel_plugins" if kind == "relative" else broken_module(tmp_path, kind)
    if where == "plugin class":
        text, key = f'[plugins.p]\nclass = "{module}:Plugin"\n', "plugins.p.class"
    else:
        text, key = f'[errors.severities]\n"{module}.Oops" = "low"\n' + LLM_ONLY, f'errors.severities."{module}.Oops"'
    config = tmp_path / "app.toml"
    config.write_text(text)
    result = run_cli("run", config, "--db", tmp_path / "out.db", env=with_import_path(tmp_path))
    line = one_line_error(result)  # exit 2, one line, no traceback (not a silent exit 3)
    assert str(config) in line and key in line and repr(module) in line, line
    for fragment in BROKEN_MODULES[kind][1] if kind != "relative" else ["relative"]:
        assert fragment in line, (fragment, line)
    assert not (tmp_path / "out.db").exists()


# -- bad values and names in the file ---------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 1e308, 0.0, -1.0, 86_401.0])
def test_metrics_options_refuse_a_flush_interval_that_is_not_a_sane_number_of_seconds(value: float) -> None:
    with pytest.raises(ValueError, match="flush_interval") as caught:
        MetricsOptions(flush_interval=value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("field", "value"), [
    ("max_history", 0), ("max_pending", -1), ("buffer_size", 0), ("max_history", 1.5), ("buffer_size", True),
    ("overload", "drop"),
])
def test_metrics_options_name_the_field_at_fault(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        MetricsOptions(**{field: value})


def test_metrics_options_accept_sane_values() -> None:
    options = MetricsOptions(flush_interval=3600.0, max_history=1, buffer_size=1, max_pending=1)
    assert options.flush_interval == 3600.0


def with_agent_config(**config: Any) -> dict[str, dict[str, Any]]:
    plugins = agent_system()
    plugins["agent"]["config"].update(config)
    return plugins


BAD_FILES: list[tuple[str, str, list[str]]] = [
    # (id, file text, what the error line names besides the file)
    ("flush_interval = inf", "[metrics]\nflush_interval = inf\n" + LLM_ONLY, ["metrics.flush_interval"]),
    ("flush_interval = nan", "[metrics]\nflush_interval = nan\n" + LLM_ONLY, ["metrics.flush_interval"]),
    ("flush_interval = 1e308", "[metrics]\nflush_interval = 1e308\n" + LLM_ONLY, ["metrics.flush_interval"]),
    ("busy_timeout = inf", "[store]\nbusy_timeout = inf\n" + LLM_ONLY, ["store.busy_timeout"]),
    ("health_interval = inf", LLM_ONLY + "health_interval = inf\n", ["plugins.llm.health_interval"]),
    ("empty plugin name", f'[plugins.""]\nclass = "{LLM_CLASS}"\n', ['plugins.""', "name"]),
    ("newline in a plugin name", f'[plugins."a\\nb"]\nclass = "{LLM_CLASS}"\n', ['plugins."a\\nb"', "'a\\nb'"]),
    ("tab in a plugin name", f'[plugins."a\\tb"]\nclass = "{LLM_CLASS}"\n', ['plugins."a\\tb"']),
    ("newline in a dependency", LLM_ONLY + 'depends_on = ["x\\ny"]\n', ["plugins.llm.depends_on", "'x\\ny'"]),
    ("newline in an exception type", '[errors.severities]\n"a\\nb.E" = "low"\n' + LLM_ONLY,
     ['errors.severities."a\\nb.E"']),
    ("newline in an unknown key", LLM_ONLY + '"co\\nlour" = 1\n', ["plugins.llm", "unknown key"]),
    ("deeply nested config", LLM_ONLY + "config = { x = " + "[" * 3000 + "]" * 3000 + " }\n",
     ["nested too deeply", "config file"]),
    ("deeply nested plugin config", LLM_ONLY + "config = { x = " + "[" * 400 + "]" * 400 + " }\n",
     ["plugins.llm.config"]),
    ("unknown key in the LLM plugin's config", LLM_ONLY + "config = { colour = 1 }\n",
     ["plugins.llm.config", "colour"]),
    ("wrong type in the sandbox's config", f'[plugins.sandbox]\nclass = "{SANDBOX_CLASS}"\nconfig = {{ cpu_seconds = "x" }}\n',
     ["plugins.sandbox.config", "cpu_seconds"]),
    ("unknown key in the agent's config", system_toml(with_agent_config(colour=1)), ["plugins.agent.config", "colour"]),
]


@pytest.mark.parametrize(("text", "named"), [pytest.param(t, n, id=i) for i, t, n in BAD_FILES])
def test_a_bad_config_is_one_line_and_no_log_is_created(tmp_path: Path, text: str, named: list[str]) -> None:
    config = tmp_path / "app.toml"
    config.write_text(text)
    log = tmp_path / "out.db"
    line = one_line_error(run_cli("run", config, "--db", log, cwd=tmp_path, timeout=120))
    assert str(config) in line, line
    for fragment in named:
        assert fragment in line, (fragment, line)
    assert "event in the log" not in line  # a config is not a log
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.toml"]  # refused before the log was opened
    check = one_line_error(run_cli("run", "--check", config, cwd=tmp_path, timeout=120))
    assert check == line
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert f"actorlog: error: {caught.value}" == line


def test_every_example_plugin_validates_its_config_without_starting() -> None:
    for cls in (LLMPlugin, SandboxPlugin, AgentPlugin):
        cls.validate_config({})
        with pytest.raises(ValueError, match="colour"):
            cls.validate_config({"colour": 1})


# -- actorlog run --check -----------------------------------------------------------------------------------


def test_run_check_says_ok_for_a_good_config_and_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "app.toml"
    config.write_text(system_toml(agent_system(), log="app.db", sends=[
        {"to": "agent", "type": "agent.solve", "message": {"task": "Compute a factorial"}}]))
    result = run_cli("run", "--check", config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ok: ") and str(config) in lines[0], lines
    assert "llm, sandbox, agent" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.toml"]


def test_run_check_needs_no_log_path(tmp_path: Path) -> None:
    config = tmp_path / "app.toml"
    config.write_text(LLM_ONLY)
    result = run_cli("run", "--check", config, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.toml"]


def test_run_check_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    line = one_line_error(run_cli("run", "--check", tmp_path / "absent.toml", cwd=tmp_path))
    assert "no such config file" in line


# -- a start that fails once the log is open ------------------------------------------------------------------

FAILING_START = """
from actorlog.actors import Plugin


class FailsToStart(Plugin):
    version = "1.0"

    def on_start(self) -> None:
        raise RuntimeError("the database of this plugin is unreachable")
"""


def test_a_start_that_fails_after_the_log_was_opened_is_recorded_as_not_clean(tmp_path: Path) -> None:
    module = f"t13_fails_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(FAILING_START)
    config = tmp_path / "app.toml"
    config.write_text(f'[plugins.p]\nclass = "{module}:FailsToStart"\n')
    log = tmp_path / "out.db"
    assert run_cli("run", "--check", config, env=with_import_path(tmp_path)).returncode == 0  # the file is fine
    line = one_line_error(run_cli("run", config, "--db", log, env=with_import_path(tmp_path)))
    assert "plugins.p" in line and "unreachable" in line, line
    stopped = read_log(log, kinds=["run.stopped"])
    assert len(stopped) == 1 and stopped[0].event.clean is False
    assert "unreachable" in stopped[0].event.reason
    runs = run_cli("runs", log, "--json")
    assert runs.returncode == 0, runs.stderr
    [run] = json.loads(runs.stdout)
    assert run["stopped"] != "clean" and "unreachable" in run["reason"], run
    table = run_cli("runs", log)
    assert "clean" not in table.stdout.replace("not clean", ""), table.stdout


def test_a_system_whose_start_failed_records_its_run_as_not_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    module = f"t13_fails_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(FAILING_START)
    log = tmp_path / "app.db"
    with ActorSystem(log) as system:
        system.register("p", f"{module}:FailsToStart")
        with pytest.raises(Exception, match="unreachable"):
            system.start()
    [stopped] = read_log(log, kinds=["run.stopped"])
    assert stopped.event.clean is False and "unreachable" in stopped.event.reason

