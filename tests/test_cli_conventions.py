"""The ``actorlog`` command line on big logs and by its ecosystem's conventions (issue 18):
streaming in every format, progress on a terminal only, one output convention, tables that
fit and never reinterpret values, hints for typos, shell exit codes, the demo's next
commands, reproduction of a ``__main__`` plugin, config hints.

Real subprocesses on real SQLite files; synchronised on output, never on sleeps; the only
bounds are a memory bound (peak RSS from the child's ``ru_maxrss``) and generous watchdogs.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorlog.events import GaugeSet, PluginRegistered
from actorlog.replay.main import cli
from actorlog.store import EventStore
from cli_helpers import big_log_path, build_log, first_lines, run_on_pty, wait4
from log_helpers import ACTORLOG_CLI, sha256_of

FORMATS = ("table", "json", "jsonl", "csv")
MB = 1024 * 1024
PEAK_RSS = 150 * MB


@pytest.fixture(scope="session")
def big_log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return big_log_path(request, tmp_path_factory)


@pytest.fixture(scope="module")
def medium_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60,000 events: past the size from which commands show progress."""
    path = tmp_path_factory.mktemp("medium") / "medium.db"
    build_log(path, 60_000, run="medium-run")
    return path


@pytest.fixture(scope="module")
def odd_values(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log whose values look like numbers: a version "1.10", a correlation "1234567890123e45"."""
    path = tmp_path_factory.mktemp("odd") / "odd.db"
    with EventStore(path, run="odd-run") as store:
        store.append(PluginRegistered(plugin="calc", class_path="calc:Calc", plugin_version="1.10"), actor="supervisor")
        store.append(PluginRegistered(plugin="fmt", class_path="fmt:Fmt", plugin_version="2.0"), actor="supervisor")
        store.append(GaugeSet(name="depth", value=1.0), actor="worker", correlation="1234567890123e45")
        store.append(GaugeSet(name="a-rather-long-gauge-name-" + "x" * 150, value=2.0), actor="worker")
    return path


# -- streaming on a 1,500,000-event log --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_query_of_a_huge_log_through_head_streams_in_constant_memory(big_log: Path, fmt: str) -> None:
    lines, done = first_lines(["query", big_log, "--format", fmt], 3)
    assert all(line.endswith("\n") for line in lines), lines  # the watchdog did not have to kill it
    assert done.returncode == 141, (done.returncode, done.stderr)  # quietly, as a tool killed by SIGPIPE
    assert done.stderr == ""  # no traceback, no "Broken pipe" complaint
    assert done.max_rss_bytes < PEAK_RSS, f"peak RSS {done.max_rss_bytes / MB:.0f} MB"
    if fmt == "json":
        assert lines[0] == "[\n" and json.loads(lines[1].rstrip(",\n"))["seq"] == 1
    elif fmt == "jsonl":
        assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3]
    elif fmt == "csv":
        assert lines[0].startswith("seq,time,ts,run,actor,kind") and lines[1].startswith("1,")
    else:
        assert lines[0].split()[:4] == ["seq", "time", "actor", "kind"] and lines[2].split()[0] == "1"


@pytest.mark.slow
def test_json_of_a_big_answer_is_one_valid_array_written_as_it_is_read(medium_log: Path) -> None:
    process = subprocess.Popen([str(ACTORLOG_CLI), "query", medium_log, "--json", "--kind", "failure.raised"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    rows = json.loads(stdout)
    assert len(rows) == 60 and all(row["kind"] == "failure.raised" for row in rows)
    assert rows[0]["payload"]["exc_type"] == "builtins.ValueError"


@pytest.mark.slow
def test_ctrl_c_exits_130_and_tail_follow_ends_with_0(big_log: Path, tmp_path: Path) -> None:
    process = subprocess.Popen([str(ACTORLOG_CLI), "query", big_log, "--nl"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().startswith("{")  # it is streaming: far from done
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "actorlog: interrupted" in stderr
    small = tmp_path / "small.db"
    build_log(small, 10)
    follow = subprocess.Popen([str(ACTORLOG_CLI), "tail", small, "--follow", "--interval", "0.05", "--nl"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert follow.stdout is not None
    for _ in range(10):
        follow.stdout.readline()  # the first screen: it is in its polling loop now
    follow.send_signal(signal.SIGINT)
    _, stderr = follow.communicate(timeout=120)
    assert follow.returncode == 0, stderr


# -- progress --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("command", [["stats"], ["verify", "--quick"], ["runs"], ["query", "--count"], ["snapshot"]])
def test_progress_bar_on_a_terminal_and_nothing_on_a_pipe(medium_log: Path, tmp_path: Path, command: list[str]) -> None:
    log = tmp_path / "copy.db"
    shutil.copy(medium_log, log)  # snapshot writes
    status, terminal, piped_out = run_on_pty([command[0], log, *command[1:]], stream="stderr")
    assert status in (0, 1), terminal
    assert "%" in terminal and "/s" in terminal, terminal  # a bar with its rate
    piped = subprocess.run([str(ACTORLOG_CLI), command[0], log, *command[1:]], capture_output=True, text=True,
                           timeout=300)
    assert piped.stderr == "", piped.stderr


# -- one output convention -------------------------------------------------------------------------


ROWS_COMMANDS = (["query"], ["tail"], ["runs"])
DOCUMENT_COMMANDS = (["stats"], ["verify"], ["snapshot"])


@pytest.mark.parametrize("command", ROWS_COMMANDS + DOCUMENT_COMMANDS)
def test_every_command_takes_format_and_json(odd_values: Path, tmp_path: Path, command: list[str]) -> None:
    log = tmp_path / "copy.db"
    shutil.copy(odd_values, log)
    by_flag = invoke(command[0], log, "--json")
    by_format = invoke(command[0], log, "--format", "json")
    assert by_flag.exit_code == 0 and by_format.exit_code == 0, by_flag.output + by_format.output
    json.loads(by_flag.stdout), json.loads(by_format.stdout)
    one_line = invoke(command[0], log, "--format", "jsonl")
    assert one_line.exit_code == 0
    for line in one_line.stdout.splitlines():
        json.loads(line)
    assert invoke(command[0], log, "--json", "--format", "table").exit_code == 2  # two formats: say which


@pytest.mark.parametrize("command", ROWS_COMMANDS)
def test_rows_take_sqlite_utils_flags_and_no_headers(odd_values: Path, command: list[str]) -> None:
    csv_out = invoke(command[0], odd_values, "--csv")
    assert csv_out.exit_code == 0 and csv_out.stdout == invoke(command[0], odd_values, "--format", "csv").stdout
    nl = invoke(command[0], odd_values, "--nl")
    assert nl.exit_code == 0 and nl.stdout == invoke(command[0], odd_values, "--format", "jsonl").stdout
    table = invoke(command[0], odd_values, "-t")
    assert table.exit_code == 0 and table.stdout == invoke(command[0], odd_values, "--table").stdout
    bare = invoke(command[0], odd_values, "--csv", "--no-headers")
    assert bare.stdout.splitlines() == csv_out.stdout.splitlines()[1:]
    bare_table = invoke(command[0], odd_values, "--no-headers")
    assert bare_table.stdout.splitlines() == table.stdout.splitlines()[2:]


def test_query_fields_pull_payload_fields_into_columns(medium_log: Path) -> None:
    args = ["query", medium_log, "--kind", "failure.raised", "--limit", "2", "--fields", "plugin,exc_type,message"]
    rows = list(csv.DictReader(io.StringIO(invoke(*args, "--csv").stdout)))
    assert [(r["plugin"], r["exc_type"], r["message"]) for r in rows] == [
        ("worker", "builtins.ValueError", "bad input 999"), ("worker", "builtins.ValueError", "bad input 1999")]
    table = invoke(*args).stdout.splitlines()
    assert table[0].split() == ["seq", "time", "actor", "kind", "correlation", "plugin", "exc_type", "message",
                                "payload"]
    assert "bad input 999" in table[2]
    assert invoke("query", medium_log, "--fields", "seq").exit_code == 2  # a column already


# -- tables ---------------------------------------------------------------------------------------


def test_tables_print_values_as_stored(odd_values: Path) -> None:
    stats = invoke("stats", odd_values)
    assert stats.exit_code == 0
    assert re.search(r"\bcalc\s+\S+\s+1\.10\b", stats.stdout) and re.search(r"\bfmt\s+\S+\s+2\.0\b", stats.stdout)
    query = invoke("query", odd_values)
    assert "1234567890123e45" in query.stdout and "e+57" not in query.stdout


def test_tables_fit_the_terminal_and_pipes_get_whole_values(odd_values: Path) -> None:
    status, terminal, _ = run_on_pty(["query", odd_values], stream="stdout", env={**os.environ, "COLUMNS": "80"})
    assert status == 0
    lines = terminal.replace("\r\n", "\n").splitlines()
    assert len(lines) == 6 and all(len(line) <= 80 for line in lines), lines
    assert "1234567890123e45" in terminal  # the payload is shortened, not the correlation
    piped = invoke("query", odd_values).stdout
    assert "x" * 150 in piped  # a pipe gets the whole payload


def test_tail_follow_prints_its_header_once_with_fixed_widths(tmp_path: Path) -> None:
    log = tmp_path / "follow.db"
    build_log(log, 5)
    follow = subprocess.Popen([str(ACTORLOG_CLI), "tail", log, "--follow", "--interval", "0.05"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert follow.stdout is not None
    screen = [follow.stdout.readline() for _ in range(7)]  # header, rule, 5 events
    header = screen[0]
    with EventStore(log, run="big-run") as store:
        for index in range(3):
            store.append(GaugeSet(name=f"g{index}", value=1.0), actor="an-actor-name-much-wider-than-before")
    later = [follow.stdout.readline() for _ in range(3)]
    follow.send_signal(signal.SIGINT)
    rest, stderr = follow.communicate(timeout=120)
    assert follow.returncode == 0, stderr
    lines = screen + later + rest.splitlines(keepends=True)
    assert sum(line.split()[:2] == ["seq", "time"] for line in lines) == 1
    kind_at = header.index("kind")
    for line in screen[2:] + later:
        assert line[kind_at:].startswith("gauge.set"), (header, line)


# -- typos ------------------------------------------------------------------------------------


def test_a_kind_actor_or_run_that_matches_nothing_says_so_with_a_hint(medium_log: Path) -> None:
    cases = {
        ("query", "--kind", "failure.rasied"): "no events of kind 'failure.rasied'; did you mean 'failure.raised'?",
        ("query", "--actor", "wroker"): "no events from actor 'wroker'; did you mean 'worker'?",
        ("tail", "--run", "medium-rnu"): "no events of run 'medium-rnu'; did you mean 'medium-run'?",
        ("stats", "--run", "nosuchrun"): "no events of run 'nosuchrun'; the log holds: 'medium-run'",
    }
    for (command, *args), line in cases.items():
        result = subprocess.run([str(ACTORLOG_CLI), command, medium_log, *args], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 1 and result.stdout == "", (args, result.stdout, result.stderr)
        assert result.stderr == f"actorlog: {line}\n"


def test_a_seq_past_the_end_names_the_last_seq(medium_log: Path) -> None:
    result = invoke("reproduce", medium_log, "999999")
    assert result.exit_code == 2
    assert "seq 999999 is past the end of the log (the log's last seq is 60000)" in result.stderr


CONFIG = """
[store]
{store}

[errors.severities]
"builtins.ConnectionError" = {severity}

[plugins.llm]
class = "actorlog.actors.examples.llm:LLMPlugin"
"""


@pytest.mark.parametrize(("store", "severity", "status", "expected"), [
    ('synchronus = "FULL"', '"low"', 2, "unknown key `synchronus`; did you mean `synchronous`? (at key `store`)"),
    ('synchronous = "fulll"', '"low"', 2, "expected one of 'OFF', 'NORMAL', 'FULL', 'EXTRA'"),
    ('synchronous = "full"', '"High"', 0, "ok:"),
    ('synchronous = "FULL"', '"hgh"', 2, "expected one of 'low', 'medium', 'high', 'critical'"),
])
def test_config_errors_suggest_the_key_and_list_enum_values(
    tmp_path: Path, store: str, severity: str, status: int, expected: str
) -> None:
    config = tmp_path / "app.toml"
    config.write_text(CONFIG.format(store=store, severity=severity))
    result = subprocess.run([str(ACTORLOG_CLI), "run", "--check", config], capture_output=True, text=True, timeout=120)
    assert result.returncode == status, result.stderr
    assert expected in (result.stdout if status == 0 else result.stderr), result.stdout + result.stderr
    if status:
        assert len(result.stderr.strip().splitlines()) == 1


# -- the first five minutes ------------------------------------------------------------------------


@pytest.mark.slow
def test_the_demos_next_commands_run_as_printed_without_an_activated_venv(tmp_path: Path) -> None:
    bare = {**os.environ, "PATH": "/usr/bin:/bin"}  # no venv on PATH, as after the README's first command
    demo = subprocess.run([str(ACTORLOG_CLI), "demo", "--db", "demo log.db", "--tasks", "6", "--seed", "3"],
                          cwd=tmp_path, env=bare, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    commands = demo.stdout.split("Next, try:\n", 1)[1].strip().splitlines()
    assert len(commands) >= 5
    for command in commands:
        if " serve " in command:  # runs until stopped: it must answer, on any free port (8001 may be taken here)
            assert_serves(command.split("#")[0].strip() + " --port 0", tmp_path, bare)
            continue
        result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=bare, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])


def assert_serves(command: str, folder: Path, env: dict[str, str]) -> None:
    """Start a serving command, fetch the address it prints, stop it."""
    import re
    import signal
    import urllib.request

    server = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=folder, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        seen = []
        for line in server.stdout:
            seen.append(line)
            found = re.search(r"http://[^\s]+", line)
            if found:
                with urllib.request.urlopen(found.group(0).rstrip("/") + "/", timeout=60) as answer:
                    assert answer.status == 200
                break
        else:
            raise AssertionError(f"{command!r} printed no address: {''.join(seen)[-2000:]}")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


MAIN_SCRIPT = """
import sys

from actorlog.actors import ActorSystem, Plugin, handler
from actorlog.events import Message


class Boom(Message, tag="t18.boom", frozen=True):
    text: str


class Calc(Plugin):
    @handler
    def boom(self, message: Boom) -> None:
        raise ValueError(message.text)


if __name__ == "__main__":
    with ActorSystem(sys.argv[1]) as system:
        system.register("calc", Calc)
        system.start()
        try:
            system.ask("calc", Boom(text="no"), timeout=30)
        except ValueError:
            pass
"""


@pytest.mark.slow
def test_reproducing_a_plugin_of_a_scripts_main_says_how_to_make_it_importable(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(MAIN_SCRIPT))
    ran = subprocess.run([sys.executable, "app.py", "app.db"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stderr
    failures = subprocess.run([str(ACTORLOG_CLI), "query", "app.db", "--kind", "failure.raised", "--nl"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
    seq = json.loads(failures.stdout.splitlines()[0])["seq"]
    result = subprocess.run([str(ACTORLOG_CLI), "reproduce", "app.db", str(seq)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "'__main__:Calc' was defined in the script that ran the system" in result.stdout
    assert "calc.py" in result.stdout and "python -m" in result.stdout and "--import-path" in result.stdout


# -- any argv ---------------------------------------------------------------------------------


def invoke(*args: object) -> Result:
    saved = list(sys.path)
    try:
        return CliRunner().invoke(cli, [str(a) for a in args], prog_name="actorlog")
    finally:
        sys.path[:] = saved


TOKENS = [
    "stats", "query", "tail", "runs", "verify", "reproduce", "snapshot", "checkpoint",
    "--format", "--json", "--csv", "--nl", "-t", "--table", "--no-headers", "--fields", "--count", "--kind", "--actor",
    "--run", "--since", "--until", "--from-seq", "--to-seq", "--limit", "-n", "--until-seq", "--as-of", "--recent",
    "--window", "--quick", "--expect", "--no-snapshots", "-v", "--help",
    "table", "json", "jsonl", "csv", "xml", "worker", "gauge.set", "failure.rasied", "odd-run", "0", "1", "3", "-1",
    "99999999999999999999", "1.10", "nan", "2026-13-01", "plugin,exc_type", ",", "", "'; DROP TABLE events; --",
    "\u00e9", "1:abc",
]
DOCUMENTED = {0, 1, 2}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_argv_gives_a_documented_exit_code_and_never_a_traceback(
    odd_values: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    log = tmp_path_factory.mktemp("argv") / "copy.db"
    shutil.copy(odd_values, log)
    command = data.draw(st.sampled_from(["stats", "query", "tail", "runs", "verify", "reproduce", "snapshot"]))
    rest = data.draw(st.lists(st.sampled_from(TOKENS), max_size=6))
    position = data.draw(st.integers(0, len(rest)))
    argv = [command, *rest[:position], str(log), *rest[position:]]
    result = invoke(*argv)
    assert result.exit_code in DOCUMENTED, (argv, result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (argv, result.exception)
    assert "Traceback" not in result.output, (argv, result.output)
    if result.exit_code == 2:
        assert result.stderr.strip().count("\n") == 0, (argv, result.stderr)


def test_reading_commands_never_change_the_log(odd_values: Path) -> None:
    before = sha256_of(odd_values)
    for args in (["stats"], ["query", "--json"], ["runs", "--csv"], ["verify"], ["tail", "--nl"]):
        invoke(args[0], odd_values, *args[1:])
    assert sha256_of(odd_values) == before
