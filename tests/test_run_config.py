"""``actorlog run CONFIG.toml``: a system described by a file, run as a real subprocess until
SIGTERM or SIGINT; broken files refused with one line naming the file and the key; and
examples/agent.toml kept in step with the demo's own system."""

from __future__ import annotations

import select
import signal
import subprocess
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from actor_helpers import read_log
from actorlog.actors import ActorSystem
from actorlog.actors.config import load_config
from actorlog.actors.examples.agent import Solve
from actorlog.actors.examples.demo import DEMO_PLUGINS, DEMO_SEVERITIES
from actorlog.actors.examples.llm import ModelCrashed
from actorlog.actors.loading import class_path
from demo_helpers import (
    running,
    AGENT_CLASS,
    EXAMPLE_CONFIG,
    LLM_CLASS,
    SANDBOX_CLASS,
    agent_system,
    count_in_log,
    finish,
    one_line_error,
    run_actorlog,
    start_actorlog,
    stop,
    system_toml,
    toml_string,
    toml_value,
    wait_for,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

LLM_ONLY = f'[plugins.llm]\nclass = "{LLM_CLASS}"\n'
THREE = f"""
[plugins.llm]
class = "{LLM_CLASS}"

[plugins.sandbox]
class = "{SANDBOX_CLASS}"
"""


def started(process: subprocess.Popen[str], timeout: float = 60) -> str:
    """The line ``actorlog run`` prints once every plugin has started (signal handlers are set)."""
    assert process.stderr is not None
    if not select.select([process.stderr], [], [], timeout)[0]:  # a safety net against a hang, not a timing check
        raise AssertionError(f"actorlog run printed nothing within {timeout} s")
    line = process.stderr.readline()
    assert line.startswith("actorlog run: started "), line + process.stderr.read()
    return line


def check_clean_stop(log: Path, result: subprocess.CompletedProcess[str], signame: str) -> None:
    """Exit 0 after the signal; plugins stopped in reverse start order; the run stopped cleanly."""
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"actorlog run: stopped on {signame}; log flushed"
    assert "Traceback" not in result.stdout + result.stderr
    started_order = [r.event.plugin for r in read_log(log, kinds=["plugin.started"])]
    stopped_order = [r.event.plugin for r in read_log(log, kinds=["plugin.stopped"])]
    assert started_order == ["llm", "sandbox", "agent"]
    assert stopped_order == ["agent", "sandbox", "llm"]  # reverse dependency order: the agent first
    stopped = read_log(log, kinds=["run.stopped"])
    assert [(r.event.reason, r.event.clean) for r in stopped] == [("normal", True)]
    assert len({r.run for r in read_log(log)}) == 1


# -- the example config ----------------------------------------------------------------------------


def test_the_example_config_describes_the_demo_system() -> None:
    loaded = load_config(EXAMPLE_CONFIG)
    plugins = loaded.config.plugins
    assert list(plugins) == list(DEMO_PLUGINS)  # same names, same registration order
    for name, (cls, config) in DEMO_PLUGINS.items():
        assert plugins[name].class_ == class_path(cls), name
        assert plugins[name].config == config, name
        assert plugins[name].depends_on in (None, list(cls.depends_on)), name
    assert loaded.severities == DEMO_SEVERITIES
    assert loaded.config.log == "agent.db"
    assert loaded.config.send and all((s.to, s.type) == ("agent", "agent.solve") for s in loaded.config.send)


def test_the_example_config_runs_until_sigterm_into_the_db_given(tmp_path: Path) -> None:
    own_log = EXAMPLE_CONFIG.parent / "agent.db"
    existed = own_log.exists()
    log = tmp_path / "agent.db"
    with running(start_actorlog("run", EXAMPLE_CONFIG, "--db", log, cwd=tmp_path)) as process:
        line = started(process)
        assert "started llm, sandbox, agent" in line and str(log) in line
        sends = len(load_config(EXAMPLE_CONFIG).config.send)
        wait_for(lambda: count_in_log(log, "agent.task_finished") == sends, what="every [[send]] task handled")
        result = stop(process, signal.SIGTERM)
    check_clean_stop(log, result, "SIGTERM")
    finished = [r.event for r in read_log(log, kinds=["agent.task_finished"])]
    expected = [s.message["task"] for s in load_config(EXAMPLE_CONFIG).config.send]
    assert [e.task for e in finished] == expected
    by_task = {e.task: e for e in finished}
    assert by_task["Write a function that sorts a list of numbers"].solved
    forever = by_task["Write a loop that runs forever"]
    assert not forever.solved and forever.exc_type == "actorlog.actors.examples.agent.RunFailed"
    registered = {r.event.plugin: r.event.config for r in read_log(log, kinds=["plugin.registered"])}
    assert registered == {name: config for name, (_, config) in DEMO_PLUGINS.items()}
    assert own_log.exists() == existed  # --db replaced the file's own `log`


def test_a_config_runs_until_sigint_with_its_relative_log_beside_it(tmp_path: Path) -> None:
    folder, elsewhere = tmp_path / "conf", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    config = folder / "app.toml"
    tasks = ["Reverse a list of values", "Compute a factorial"]
    config.write_text(system_toml(
        agent_system(), log="app.db",
        sends=[{"to": "agent", "type": "agent.solve", "message": {"task": t, "seed": i}} for i, t in enumerate(tasks)],
        extra='[errors.severities]\n"builtins.TimeoutError" = "medium"\n',
    ))
    log = folder / "app.db"
    with running(start_actorlog("run", "../conf/app.toml", cwd=elsewhere)) as process:
        started(process)
        wait_for(lambda: count_in_log(log, "agent.task_finished") == len(tasks), what="both tasks handled")
        result = stop(process, signal.SIGINT)
    check_clean_stop(log, result, "SIGINT")
    assert list(elsewhere.iterdir()) == []  # relative to the config file, not to the working directory
    finished = [r.event for r in read_log(log, kinds=["agent.task_finished"])]
    assert [(e.task, e.solved) for e in finished] == [(t, True) for t in tasks]


def test_a_stop_signal_cuts_a_running_task_short(tmp_path: Path) -> None:
    """SIGTERM while the agent waits on a sandbox that would run for minutes: the sandbox is
    killed (reason `stopped`), the agent makes no further attempt, and the run stops cleanly."""
    config = tmp_path / "slow.toml"
    plugins = agent_system()
    plugins["sandbox"]["config"]["wall_timeout"] = 600.0
    config.write_text(system_toml(
        plugins, log="slow.db",
        sends=[{"to": "agent", "type": "agent.solve",
                "message": {"task": "Write a function that waits for an answer from a slow service", "seed": 1}}],
    ))
    log = tmp_path / "slow.db"
    with running(start_actorlog("run", config, cwd=tmp_path)) as process:
        started(process)
        wait_for(lambda: count_in_log(log, "sandbox.created") == 1, what="the waiting program runs")
        result = stop(process, signal.SIGTERM)
    check_clean_stop(log, result, "SIGTERM")
    killed = [r.event for r in read_log(log, kinds=["sandbox.killed"])]
    assert [k.reason for k in killed] == ["stopped"]
    assert count_in_log(log, "sandbox.created") == 1  # no retry once the system is stopping


# -- broken configs ----------------------------------------------------------------------------------

BROKEN: list[tuple[str, str, list[str], bool]] = [
    # (id, file text, what the error line names, refused before the log is created)
    ("unknown top-level key", "colour = 1\n" + LLM_ONLY, ["`colour`"], True),
    ("unknown plugin key", LLM_ONLY + "colour = 1\n", ["`colour`", "plugins.llm"], True),
    ("wrong type of a plugin key", LLM_ONLY + 'health_interval = "soon"\n', ["plugins.llm.health_interval"], True),
    ("wrong type of a section key", '[supervision]\nmax_restarts = "x"\n' + LLM_ONLY,
     ["supervision.max_restarts"], True),
    ("unknown plugin class", '[plugins.llm]\nclass = "actorlog.actors.examples.llm:NoSuchPlugin"\n',
     ["plugins.llm.class", "NoSuchPlugin"], True),
    ("unimportable plugin module", '[plugins.llm]\nclass = "no_such_module_here:Plugin"\n',
     ["plugins.llm.class", "no_such_module_here"], True),
    ("dependency not in the file", LLM_ONLY + 'depends_on = ["ghost"]\n', ["plugins.llm.depends_on", "'ghost'"], True),
    ("class dependency not in the file", LLM_ONLY + f'\n[plugins.agent]\nclass = "{AGENT_CLASS}"\n',
     ["depends_on", "'agent'", "'sandbox'"], True),
    ("dependency cycle", (f'[plugins.a]\nclass = "{LLM_CLASS}"\ndepends_on = ["b"]\n'
                          f'[plugins.b]\nclass = "{LLM_CLASS}"\ndepends_on = ["a"]\n'),
     ["depends_on", "cycle", "'a'", "'b'"], True),
    ("unknown exception type", '[errors.severities]\n"builtins.NoSuchError" = "low"\n' + LLM_ONLY,
     ['errors.severities."builtins.NoSuchError"'], True),
    ("exception module not found", '[errors.severities]\n"no_such_pkg.Error" = "low"\n' + LLM_ONLY,
     ['errors.severities."no_such_pkg.Error"'], True),
    ("not an exception type", '[errors.severities]\n"builtins.int" = "low"\n' + LLM_ONLY,
     ['errors.severities."builtins.int"', "not an exception type"], True),
    ("bad severity", '[errors.severities]\n"builtins.ValueError" = "severe"\n' + LLM_ONLY,
     ["errors.severities", "'severe'"], True),
    ("bad action", '[errors.actions]\nhigh = "explode"\n' + LLM_ONLY, ["errors.actions", "'explode'"], True),
    ("send to an unknown plugin", LLM_ONLY + '[[send]]\nto = "ghost"\ntype = "llm.generate"\nmessage = { prompt = "x" }\n',
     ["send[0].to", "'ghost'"], True),
    ("send of an unknown message type", LLM_ONLY + '[[send]]\nto = "llm"\ntype = "llm.nope"\nmessage = { prompt = "x" }\n',
     ["send[0].type", "'llm.nope'"], False),
    ("send of a message type the plugin does not handle",
     LLM_ONLY + '[[send]]\nto = "llm"\ntype = "agent.solve"\nmessage = { task = "x" }\n',
     ["send[0].type", "'agent.solve'"], False),
    ("send with a wrongly typed field", LLM_ONLY + '[[send]]\nto = "llm"\ntype = "llm.generate"\nmessage = { prompt = 3 }\n',
     ["send[0].message.prompt"], False),
    ("send without a required field", LLM_ONLY + '[[send]]\nto = "llm"\ntype = "llm.generate"\nmessage = {}\n',
     ["send[0].message", "prompt"], False),
    ("invalid TOML", "[plugins.llm\nclass = 1\n", ["not valid TOML", "line 1"], True),
    ("no plugins", 'log = "x.db"\n', ["no plugins"], True),
    ("plugin config rejected at start", LLM_ONLY + 'config = { backend = "nope" }\n',
     ["plugins.llm", "backend", "'nope'"], False),
    ("agent config rejected at start", THREE + f'[plugins.agent]\nclass = "{AGENT_CLASS}"\nconfig = {{ colour = 1 }}\n',
     ["plugins.agent", "colour"], False),
]


@dataclass
class Refused:
    config: Path
    log: Path
    result: subprocess.CompletedProcess[str] | AssertionError


@pytest.fixture(scope="module")
def refused(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Refused]:
    """``actorlog run BROKEN --db LOG`` for every broken config, run side by side: case id -> outcome
    (an AssertionError for one that did not end: it was not refused)."""
    running = {}
    for case_id, text, _, _ in BROKEN:
        folder = tmp_path_factory.mktemp("broken")
        config = folder / "broken.toml"
        config.write_text(text)
        log = folder / "out.db"
        running[case_id] = (config, log, start_actorlog("run", config, "--db", log, cwd=folder))
    deadline = time.monotonic() + 120
    outcomes = {}
    for case_id, (config, log, process) in running.items():
        try:
            result: subprocess.CompletedProcess[str] | AssertionError = finish(
                process, timeout=max(1.0, deadline - time.monotonic()))
        except AssertionError as exc:
            result = exc
        outcomes[case_id] = Refused(config, log, result)
    return outcomes


@pytest.mark.parametrize(("case_id", "named", "before_log"),
                         [pytest.param(case[0], *case[2:], id=case[0]) for case in BROKEN])
def test_a_broken_config_is_one_line_naming_the_file_and_the_key(
    refused: dict[str, Refused], case_id: str, named: list[str], before_log: bool
) -> None:
    outcome = refused[case_id]
    if isinstance(outcome.result, AssertionError):
        raise outcome.result
    line = one_line_error(outcome.result)
    assert str(outcome.config) in line, line
    for fragment in named:
        assert fragment in line, (fragment, line)
    if before_log:
        assert not outcome.log.exists()  # refused before anything started


def test_a_missing_config_file_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    line = one_line_error(run_actorlog("run", missing, "--db", tmp_path / "out.db", cwd=tmp_path))
    assert str(missing) in line and "no such config file" in line
    assert list(tmp_path.iterdir()) == []


def test_a_config_without_log_needs_db(tmp_path: Path) -> None:
    config = tmp_path / "nolog.toml"
    config.write_text(LLM_ONLY)
    line = one_line_error(run_actorlog("run", config, cwd=tmp_path))
    assert str(config) in line and "`log`" in line and "--db" in line
    assert list(tmp_path.iterdir()) == [config]


def test_the_usage_errors_of_run_are_one_line(tmp_path: Path) -> None:
    line = one_line_error(run_actorlog("run", cwd=tmp_path))
    assert "CONFIG.toml" in line
    config = tmp_path / "ok.toml"
    config.write_text(LLM_ONLY)
    line = one_line_error(run_actorlog("run", config, "--colour", cwd=tmp_path))
    assert "--colour" in line
    assert list(tmp_path.iterdir()) == [config]


# -- round trips ---------------------------------------------------------------------------------------

NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: n not in {"app", "errors", "metrics", "supervisor", "system"})
TEXT = st.text(max_size=12)
TOML_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)
ANY_CONFIG_CLASS = "actorlog.actors:Plugin"
"""A plugin class whose validate_config accepts any config (the examples check theirs)."""
CLASSES = st.sampled_from([LLM_CLASS, SANDBOX_CLASS, AGENT_CLASS, ANY_CONFIG_CLASS])
SEVERITIES = st.dictionaries(
    st.sampled_from(["builtins.ValueError", "builtins.ConnectionError", "builtins.TimeoutError",
                     "actorlog.actors.examples.llm.ModelCrashed"]),
    st.sampled_from(["low", "medium", "high", "critical"]), max_size=4,
)
EXCEPTIONS = {"builtins.ValueError": ValueError, "builtins.ConnectionError": ConnectionError,
              "builtins.TimeoutError": TimeoutError, "actorlog.actors.examples.llm.ModelCrashed": ModelCrashed}


@st.composite
def plugin_tables(draw: st.DrawFn) -> dict[str, dict[str, Any]]:
    """Plugin tables with every optional key now and then; each depends on earlier ones only."""
    names = draw(st.lists(NAMES, min_size=1, max_size=4, unique=True))
    tables: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(names):
        table: dict[str, Any] = {"class": draw(CLASSES), "depends_on": draw(st.lists(st.sampled_from(names[:index]),
                                                                                     unique=True) if index else st.just([]))}
        table["config"] = draw(st.dictionaries(TEXT, TOML_VALUES, max_size=4)) if table["class"] == ANY_CONFIG_CLASS else {}
        table["requires"] = {}  # the agent class requires llm and sandbox, which a drawn table may not depend on
        if draw(st.booleans()):
            table["health_interval"] = draw(st.floats(min_value=0.001, max_value=1e6))
        if draw(st.booleans()):
            table["log_messages"] = draw(st.booleans())
        tables[name] = table
    return tables


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plugins=plugin_tables(), severities=SEVERITIES, log=st.none() | st.from_regex(r"[a-z]{1,8}\.db", fullmatch=True),
       max_restarts=st.integers(0, 100))
def test_a_config_file_loads_to_what_it_says(
    plugins: dict[str, dict[str, Any]], severities: dict[str, str], log: str | None, max_restarts: int
) -> None:
    extra = f"[supervision]\nmax_restarts = {max_restarts}\n\n[errors.severities]\n" + "".join(
        f"{toml_string(name)} = {toml_string(severity)}\n" for name, severity in severities.items())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "system.toml"
        path.write_text(system_toml(plugins, log=log, extra=extra), encoding="utf-8")
        loaded = load_config(path)
    config = loaded.config
    assert config.log == log and config.supervision.max_restarts == max_restarts
    assert list(config.plugins) == list(plugins)
    for name, table in plugins.items():
        got = config.plugins[name]
        assert got.class_ == table["class"] and got.depends_on == table["depends_on"]
        assert got.config == table["config"]
        assert got.health_interval == table.get("health_interval")
        assert got.log_messages == table.get("log_messages")
    assert loaded.severities == {EXCEPTIONS[name]: severity for name, severity in severities.items()}


def test_send_messages_decode_to_the_message_types_they_name(tmp_path: Path) -> None:
    @settings(max_examples=60, deadline=None)
    @given(tasks=st.lists(st.tuples(st.text(max_size=40), st.none() | st.integers(-(2**63), 2**63 - 1)),
                          min_size=1, max_size=3))
    def check(tasks: list[tuple[str, int | None]]) -> None:
        sends = [{"to": "agent", "type": "agent.solve",
                  "message": {"task": task} | ({} if seed is None else {"seed": seed})} for task, seed in tasks]
        path = tmp_path / "sends.toml"
        agent = {"class": AGENT_CLASS, "depends_on": [], "requires": {}}
        path.write_text(system_toml({"agent": agent}, sends=sends), encoding="utf-8")
        loaded = load_config(path)
        assert loaded.messages == [("agent", Solve(task=t, seed=s)) for t, s in tasks]

    check()


def test_toml_helpers_write_what_tomllib_reads() -> None:
    value = {"a b": [1, -2.5, True, "x\"y\\z\u00e9\U0001f600\x00\x7f"], "": {"nested": []}}
    assert tomllib.loads(f"v = {toml_value(value)}\n") == {"v": value}


def test_the_store_section_chooses_the_mode_new_logs_are_created_with(tmp_path: Path) -> None:
    """Today: ``[store] file_mode`` is refused as an unknown key (audit G7), though `EventStore` has the option."""
    import os  # noqa: PLC0415
    import stat  # noqa: PLC0415

    from actorlog.actors.config import build_system  # noqa: PLC0415

    path = tmp_path / "system.toml"
    plugin = '[plugins.worker]\nclass = "actor_helpers:Worker"\n'
    path.write_text(f'log = "group.db"\n[store]\nfile_mode = 0o640\n{plugin}', encoding="utf-8")
    loaded = load_config(path)
    assert loaded.config.store.file_mode == 0o640
    with build_system(loaded, db=tmp_path / "group.db") as system:
        system.start()
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "group.db").st_mode) == 0o640 & ~umask
    assert load_config(_written(tmp_path / "default.toml", 'log = "x.db"\n' + plugin)).config.store.file_mode == 0o600
    bad = run_actorlog("run", _written(tmp_path / "bad.toml", 'log = "x.db"\n[store]\nfile_mode = 0o7777\n' + plugin))
    assert "file_mode" in one_line_error(bad) and not (tmp_path / "x.db").exists()


def _written(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
