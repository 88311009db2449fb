"""``actorlog demo``: the agent, the offline model and the sandbox at work, as a user runs it.

The default command runs once in a fresh working directory (20 tasks, seed 0), next to a
second run of the same seed into another log: their outputs and logs are shared by the
tests of this module. Other runs use few tasks to stay quick.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from actor_helpers import read_log
from actorlog.actors.examples.agent import PROMPT
from actorlog.actors.examples.demo import DEMO_PLUGINS, demo_tasks
from log_helpers import ACTORLOG_CLI
from demo_helpers import (
    event_counts,
    finish,
    one_line_error,
    run_actorlog,
    start_actorlog,
)
from hypothesis import given
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

DEFAULT_LOG = "actorlog-demo.db"
SPECIAL = ["crash", "timeout", "cpu", "output", "memory"]
"""What the demo's special tasks show, in the order they are chosen when few tasks fit."""


@dataclass
class DemoRun:
    cwd: Path
    log: Path
    result: subprocess.CompletedProcess[str]


@dataclass
class DefaultRuns:
    default: DemoRun
    """``actorlog demo`` with no option, in a fresh working directory."""
    again: DemoRun
    """``actorlog demo --db OTHER --seed 0``: the same seed, another log."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> DefaultRuns:
    first, second = tmp_path_factory.mktemp("demo-default"), tmp_path_factory.mktemp("demo-again")
    default = start_actorlog("demo", cwd=first)
    again = start_actorlog("demo", "--db", second / "again.db", "--seed", "0", cwd=second)
    return DefaultRuns(
        DemoRun(first, first / DEFAULT_LOG, finish(default, timeout=300)),
        DemoRun(second, second / "again.db", finish(again, timeout=300)),
    )


def test_the_default_command_writes_its_log_in_the_working_directory(runs: DefaultRuns) -> None:
    run = runs.default
    assert run.result.returncode == 0, run.result.stderr
    assert "Traceback" not in run.result.stdout + run.result.stderr
    assert sorted(p.name for p in run.cwd.iterdir() if not p.name.startswith(f"{DEFAULT_LOG}-")) == [DEFAULT_LOG]
    assert len({r.run for r in read_log(run.log, kinds=["run.started", "run.stopped"])}) == 1
    stopped = read_log(run.log, kinds=["run.stopped"])
    assert [(r.event.reason, r.event.clean) for r in stopped] == [("normal", True)]


def test_progress_goes_to_stderr_one_line_per_task(runs: DefaultRuns) -> None:
    lines = runs.default.result.stderr.splitlines()
    assert lines[0] == f"actorlog demo: 20 task(s), seed 0, log {DEFAULT_LOG}"
    progress = lines[1:]
    assert len(progress) == 20
    pattern = re.compile(r"^\[\s*(\d+)/20\] (solved |gave up) (\d+) attempts? ")
    matches = [pattern.match(line) for line in progress]
    assert all(matches), progress
    assert [int(m.group(1)) for m in matches if m] == list(range(1, 21))
    finished = read_log(runs.default.log, kinds=["agent.task_finished"])
    outcomes = [(m.group(2) == "solved ", int(m.group(3))) for m in matches if m]
    assert outcomes == [(r.event.solved, r.event.attempts) for r in finished]
    for line, record in zip(progress, finished):
        if not record.event.solved:
            assert "(RunFailed: " in line, line  # why the agent gave up, in short


def test_the_summary_statistics_and_next_commands_are_printed(runs: DefaultRuns) -> None:
    out = runs.default.result.stdout
    finished = [r.event for r in read_log(runs.default.log, kinds=["agent.task_finished"])]
    solved = sum(e.solved for e in finished)
    attempts = sum(e.attempts for e in finished)
    run_id = read_log(runs.default.log, kinds=["run.started"])[0].run
    summary = re.search(r"^(\d+) solved, (\d+) given up, (\d+) attempts in [\d.]+ s; restarts: (.*); run (\S+)$", out,
                        re.MULTILINE)
    assert summary is not None, out
    assert summary.groups() == (str(solved), str(20 - solved), str(attempts), "llm 1x", run_id)

    # The statistics are exactly what `actorlog stats --run` rebuilds from the log afterwards.
    stats = run_actorlog("stats", DEFAULT_LOG, "--run", run_id, cwd=runs.default.cwd)
    assert stats.returncode == 0, stats.stderr
    assert out[out.index("as of "): out.index("\nNext, try:")] == stats.stdout
    for name in ("agent", "llm", "sandbox"):
        assert re.search(rf"^{name}\s+stopped\s+1\.0\.0\s+{1 if name == 'llm' else 0}\s", out, re.MULTILINE), name

    commands = [line.split("#")[0].strip() for line in out[out.index("\nNext, try:"):].splitlines()[2:]]
    actorlog = printed_actorlog()
    assert f"{actorlog} stats {DEFAULT_LOG} --run {run_id}" in commands
    assert f"{actorlog} query {DEFAULT_LOG} --kind failure.raised --fields plugin,exc_type,message" in commands
    assert f"{actorlog} query {DEFAULT_LOG} --kind plugin.restarted" in commands
    assert any(c.startswith(f"{actorlog} reproduce {DEFAULT_LOG} ") for c in commands), commands


def printed_actorlog() -> str:
    """How the demo names the actorlog that runs it: bare when PATH finds that very script, else by its path."""
    found = shutil.which("actorlog")
    return "actorlog" if found is not None and Path(found).resolve() == ACTORLOG_CLI.resolve() else str(ACTORLOG_CLI)


def test_the_suggested_reproduction_reproduces_a_failure_of_the_llm(runs: DefaultRuns) -> None:
    out = runs.default.result.stdout
    line = next(line for line in out.splitlines() if line.strip().startswith(f"{printed_actorlog()} reproduce "))
    argv = shlex.split(line.split("#")[0])
    assert argv[:3] == [printed_actorlog(), "reproduce", DEFAULT_LOG] and len(argv) == 4
    seq = int(argv[3])
    failure = next(r for r in read_log(runs.default.log, kinds=["failure.raised"]) if r.seq == seq)
    assert failure.actor == "llm" and failure.event.plugin == "llm"  # the plugin's own handler, not a task
    assert failure.event.exc_type.startswith("actorlog.actors.examples.llm.")

    result = run_actorlog(*argv[1:], cwd=runs.default.cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"REPRODUCED: failure {seq} of plugin 'llm'")
    assert f"--- reproduced: {failure.event.exc_type}" in result.stdout


def test_the_demo_shows_every_kind_of_trouble(runs: DefaultRuns) -> None:
    log = runs.default.log
    llm_failures = {r.event.exc_type for r in read_log(log, kinds=["failure.raised"]) if r.event.plugin == "llm"}
    assert "actorlog.actors.examples.llm.GenerationError" in llm_failures
    assert "actorlog.actors.examples.llm.ModelCrashed" in llm_failures
    retried = [r for r in read_log(log, kinds=["retry.scheduled"]) if r.event.task == "llm.connection"]
    assert retried and {r.event.exc_type for r in retried} == {"actorlog.actors.examples.llm.BackendUnavailable"}
    assert all(r.actor == "llm" for r in retried)
    assert [r.event.plugin for r in read_log(log, kinds=["plugin.restarted"])] == ["llm"]
    killed = {r.event.reason for r in read_log(log, kinds=["sandbox.killed"])}
    assert "output" in killed and killed & {"timeout", "cpu"}, killed
    assert killed <= {"output", "timeout", "cpu"}
    finished = [r.event for r in read_log(log, kinds=["sandbox.finished"])]
    memory = [e for e in finished if e.reason == "memory"]
    assert memory and all(e.exit_code != 0 and "MemoryError" in e.stderr for e in memory)
    gave_up = [r.event for r in read_log(log, kinds=["agent.task_finished"]) if not r.event.solved]
    assert gave_up and all(e.exc_type == "actorlog.actors.examples.agent.RunFailed" for e in gave_up)


def test_the_same_seed_gives_the_same_counts_of_every_event(runs: DefaultRuns) -> None:
    assert runs.again.result.returncode == 0, runs.again.result.stderr
    first, second = event_counts(runs.default.log), event_counts(runs.again.log)
    assert len(first) == len(second) == 1
    (counts,), (again,) = first.values(), second.values()
    assert counts == again
    assert counts[("supervisor", "plugin.restarted")] == 1 and counts[("agent", "agent.task_finished")] == 20
    outcomes = [line.split("]", 1)[1].split("(")[0] for line in runs.default.result.stderr.splitlines()[1:]]
    assert outcomes == [line.split("]", 1)[1].split("(")[0] for line in runs.again.result.stderr.splitlines()[1:]]


def test_the_demo_log_passes_verification(runs: DefaultRuns) -> None:
    result = run_actorlog("verify", DEFAULT_LOG, cwd=runs.default.cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok: ")


def test_json_output_is_exactly_what_stats_prints(tmp_path: Path) -> None:
    log = tmp_path / "small.db"
    demo = run_actorlog("demo", "--db", log, "--tasks", "1", "--seed", "7", "--json", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert demo.stderr.splitlines()[0] == f"actorlog demo: 1 task(s), seed 7, log {log}"
    assert len(demo.stderr.splitlines()) == 2  # the header and one task's progress
    stats = run_actorlog("stats", log, "--json")
    assert stats.returncode == 0, stats.stderr
    assert demo.stdout == stats.stdout
    document = json.loads(demo.stdout)
    assert document == json.loads(stats.stdout)
    (plugins,) = document["plugins"].values()  # one run
    assert set(plugins) == {"agent", "llm", "sandbox"}
    assert plugins["llm"]["restarts"] == 1  # the one task is the prompt too long for the model
    assert document["metrics"]["counters"]["agent.solve.calls"] == 1.0
    verify = run_actorlog("verify", log)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.parametrize("args", [
    ["--tasks", "0"], ["--tasks", "-3"], ["--tasks", "many"], ["--seed", "x"], ["--seed", "1.5"], ["--colour"],
])
def test_bad_arguments_are_one_line_errors(tmp_path: Path, args: list[str]) -> None:
    result = run_actorlog("demo", *args, cwd=tmp_path)
    line = one_line_error(result)
    assert args[0] in line and "actorlog demo --help" in line
    assert result.stdout == "" and list(tmp_path.iterdir()) == []  # nothing ran, no log was made


# -- the task list ----------------------------------------------------------------------------------


@given(count=st.integers(min_value=1, max_value=60), seed=st.integers(min_value=-(2**70), max_value=2**70))
def test_the_task_list_is_decided_by_the_seed(count: int, seed: int) -> None:
    tasks = demo_tasks(count, seed)
    assert tasks == demo_tasks(count, seed)
    assert len(tasks) == count
    shows = [t.shows for t in tasks]
    if count < len(SPECIAL):
        assert sorted(shows) == sorted(SPECIAL[:count])  # the first of the special tasks that fit
    else:
        assert set(SPECIAL) <= set(shows)
        assert sum(s != "normal" for s in shows) == max(len(SPECIAL), count // 5)  # one in five, at least one each
    assert shows.count("crash") == 1
    assert len({t.seed for t in tasks}) == count
    assert {t.seed for t in tasks}.isdisjoint({t.seed for t in demo_tasks(count, seed + 1)})
    crash = next(t for t in tasks if t.shows == "crash")
    context = DEMO_PLUGINS["llm"][1]["context_chars"]
    prompt = PROMPT.format(task=crash.text)
    assert len(prompt) // 2 <= context < len(prompt)  # crashes the model once; half of it fits


def test_too_few_tasks_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one task"):
        demo_tasks(0, 0)
