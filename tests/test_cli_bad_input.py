"""Bad input to ``actorlog``: one line on stderr, exit status 2, no traceback, and the file
untouched; SQL injection through every filter; read-only commands never change a log."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from actorlog.events import CounterIncremented
from actorlog.store import EventStore
from replay_helpers import (
    PLUGINS_DIR,
    RecordedLog,
    assert_one_line_error,
    events_rows,
    invoke,
    read,
    record_log,
    run_cli,
    sha256_of,
    snapshot_rows,
)

# -- files that are not (readable) event logs ---------------------------------------------------------


def write_small_log(path: Path) -> Path:
    with EventStore(path, run="t6-small") as store:
        store.append_many([CounterIncremented(name="t6.c", value=float(i)) for i in range(5)], actor="metrics")
    return path


def make_bad(kind: str, directory: Path) -> Path:
    """A path that cannot be read as an event log, of the given kind."""
    path = directory / f"{kind}.db"
    if kind == "missing":
        return path
    if kind == "directory":
        path.mkdir()
    elif kind == "text":
        path.write_text("this is a shopping list, not a database\n" * 20)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "corrupt-sqlite":
        path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    elif kind in ("foreign-sqlite", "foreign-meta"):
        conn = sqlite3.connect(path)
        if kind == "foreign-sqlite":
            conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
            conn.execute("INSERT INTO customers (name) VALUES ('ada')")
        else:
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY)")
            conn.execute("INSERT INTO meta VALUES ('format', 'somebody-else')")
        conn.commit()
        conn.close()
    elif kind in ("newer-schema", "bad-schema-version"):
        write_small_log(directory / "source.db")
        shutil.copyfile(directory / "source.db", path)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                     ("99" if kind == "newer-schema" else "one",))
        conn.close()
    else:
        raise ValueError(kind)
    return path


REASONS = {
    "missing": "does not exist", "directory": "is a directory", "text": "not an SQLite database",
    "empty": "empty SQLite database", "corrupt-sqlite": "cannot be read as an SQLite database",
    "foreign-sqlite": "not an actorlog event log (tables: customers)", "foreign-meta": "does not mark an actorlog",
    "newer-schema": "upgrade actorlog", "bad-schema-version": "unreadable schema_version",
}
"""What each refusal says (a part of it)."""

BAD_FILES = ["missing", "directory", "text", "empty", "corrupt-sqlite", "foreign-sqlite", "foreign-meta",
             "newer-schema", "bad-schema-version"]

COMMAND_ARGS: dict[str, list[str]] = {
    "stats": ["stats", "{}"],
    "stats --json": ["stats", "{}", "--json"],
    "query": ["query", "{}", "--format", "json"],
    "runs": ["runs", "{}"],
    "tail": ["tail", "{}", "-n", "3"],
    "verify": ["verify", "{}"],
    "reproduce": ["reproduce", "{}", "1"],
    "snapshot": ["snapshot", "{}"],
}


def args_for(command: str, path: Path) -> list[str]:
    return [a.format(path) for a in COMMAND_ARGS[command]]


def state_of(path: Path) -> object:
    """What must not change: a file's hash, a folder's listing, or a path's absence."""
    if path.is_dir():
        return ("dir", sorted(p.name for p in path.iterdir()))
    if path.is_file():
        return ("file", sha256_of(path))
    return ("absent",)


@pytest.mark.parametrize("kind", BAD_FILES)
def test_every_command_refuses_what_is_not_an_event_log(tmp_path: Path, kind: str) -> None:
    path = make_bad(kind, tmp_path)
    before = state_of(path)
    for command in COMMAND_ARGS:
        result = invoke(*args_for(command, path))
        assert result.exception is None or isinstance(result.exception, SystemExit), (command, result.exception)
        line = assert_one_line_error(result.exit_code, result.stdout, result.stderr)
        assert path.name in line and REASONS[kind] in line, (command, line)
        assert result.stdout == ""
        assert state_of(path) == before, command
    if kind == "missing":
        assert not path.exists() and not Path(str(path) + "-wal").exists()


@pytest.mark.parametrize("kind", BAD_FILES)
def test_the_console_script_refuses_what_is_not_an_event_log(tmp_path: Path, kind: str) -> None:
    path = make_bad(kind, tmp_path)
    before = state_of(path)
    commands = list(COMMAND_ARGS)
    index = BAD_FILES.index(kind)
    for command in (commands[index % len(commands)], commands[(index + 3) % len(commands)]):
        result = run_cli(*args_for(command, path))
        line = assert_one_line_error(result.returncode, result.stdout, result.stderr)
        assert path.name in line
        assert state_of(path) == before, command


# -- bad options ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> RecordedLog:
    return record_log(tmp_path_factory.mktemp("bad-input") / "app.db")


def bad_options(log: RecordedLog) -> dict[str, list[str]]:
    path = str(log.path)
    records = read(log.path)
    t1, t2 = repr(records[3].ts), repr(records[20].ts)
    not_a_failure = str(next(r.seq for r in records if r.kind == "message.received"))
    return {
        "stats --as-of yesterday": ["stats", path, "--as-of", "yesterday"],
        "query --since yesterday": ["query", path, "--since", "yesterday"],
        "query --until bad date": ["query", path, "--until", "2027-13-45T99:00:00Z"],
        "tail --since yesterday": ["tail", path, "--since", "yesterday"],
        "query --since injection": ["query", path, "--since", "1' OR '1'='1"],
        "tail --until injection": ["tail", path, "--until", "'; DROP TABLE events; --"],
        "query since after until": ["query", path, "--since", t2, "--until", t1],
        "query since after until (ISO)": ["query", path, "--since", "2027-01-02T00:00:00Z", "--until", "2027-01-01"],
        "tail since after until": ["tail", path, "--since", t2, "--until", t1],
        "query from-seq after to-seq": ["query", path, "--from-seq", "10", "--to-seq", "5"],
        "tail --follow --format csv": ["tail", path, "--follow", "--format", "csv"],
        "tail --follow --format json": ["tail", path, "--follow", "--format", "json"],
        "query --format xml": ["query", path, "--format", "xml"],
        "query --limit 0": ["query", path, "--limit", "0"],
        "stats --until-seq -1": ["stats", path, "--until-seq", "-1"],
        "stats --window 0": ["stats", path, "--window", "0"],
        "tail -n 0": ["tail", path, "-n", "0"],
        "reproduce a seq that is not a failure": ["reproduce", path, not_a_failure],
        "reproduce a seq past the end": ["reproduce", path, "999999"],
        "reproduce seq 0": ["reproduce", path, "0"],
        "reproduce seq not a number": ["reproduce", path, "twelve"],
        "unknown command": ["frobnicate", path],
        "unknown option": ["stats", path, "--colour"],
        "missing argument": ["stats"],
        "missing seq": ["reproduce", path],
    }


def test_bad_options_are_one_line_errors_and_change_nothing(recorded: RecordedLog) -> None:
    before = sha256_of(recorded.path)
    for name, args in bad_options(recorded).items():
        result = invoke(*args)
        assert result.exception is None or isinstance(result.exception, SystemExit), (name, result.exception)
        line = assert_one_line_error(result.exit_code, result.stdout, result.stderr)
        assert result.stdout == "", name
        if "yesterday" in name:
            assert "'yesterday' is not a time" in line
        if "after" in name:
            assert "nothing can match" in line
        if "--follow" in name:
            assert "--follow" in line
        if "not a failure" in name:
            assert "not a failure.raised event" in line
    assert sha256_of(recorded.path) == before


@pytest.mark.parametrize("name", [
    "query --since yesterday", "query since after until", "query from-seq after to-seq", "tail --follow --format csv",
    "reproduce a seq that is not a failure", "unknown option",
])
def test_bad_options_through_the_console_script(recorded: RecordedLog, name: str) -> None:
    before = sha256_of(recorded.path)
    result = run_cli(*bad_options(recorded)[name])
    assert_one_line_error(result.returncode, result.stdout, result.stderr)
    assert sha256_of(recorded.path) == before


# -- SQL injection -------------------------------------------------------------------------------------------


INJECTIONS = [
    "x' OR '1'='1",
    "'; DROP TABLE events; --",
    "%",
    "_",
    "*",
    "\" OR \"\"=\"",
    "1; DELETE FROM events",
    "alpha' --",
    "' UNION SELECT key, value, 1, 1, 1, 1, 1, 1, 1 FROM meta --",
    "\\",
    "é ü 🎉",
]


@pytest.fixture(scope="module")
def hostile_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log whose runs, actors and correlations are the injection strings themselves,
    beside ordinary events: filters must match them exactly, and nothing else."""
    path = tmp_path_factory.mktemp("hostile") / "hostile.db"
    with EventStore(path, run="t6-plain") as store:
        store.append_many([CounterIncremented(name="t6.plain", value=1.0)] * 3, actor="alpha", correlation="c-plain")
    for i, text in enumerate(INJECTIONS):
        with EventStore(path, run=text) as store:
            store.append(CounterIncremented(name=f"t6.hostile{i}", value=float(i)), actor=text, correlation=text)
    return path


@pytest.mark.parametrize("option", ["--run", "--actor", "--correlation", "--kind"])
def test_every_filter_takes_hostile_text_literally(hostile_log: Path, option: str) -> None:
    before, rows_before = sha256_of(hostile_log), events_rows(hostile_log)
    records = read(hostile_log)
    field = {"--run": "run", "--actor": "actor", "--correlation": "correlation", "--kind": "kind"}[option]
    for text in INJECTIONS:
        expected = [r.seq for r in records if getattr(r, field) == text]
        assert len(expected) == (0 if option == "--kind" else 1)
        for command in (["query", hostile_log], ["tail", hostile_log, "-n", "100"]):
            result = invoke(*command, option, text, "--format", "json")
            if not expected:  # a kind no event has: said so (exit 1), the text quoted as given
                assert result.exit_code == 1 and result.stdout == "", (text, result.output)
                assert result.stderr.startswith("actorlog: no events of kind ") and repr(text) in result.stderr
                continue
            assert result.exit_code == 0, (text, result.output)
            assert [row["seq"] for row in json.loads(result.stdout)] == expected, (option, text)
        if option == "--run":
            stats = invoke("stats", hostile_log, "--run", text, "--json")
            assert stats.exit_code == 0
            assert json.loads(stats.stdout)["position"] == expected[0]
    assert sha256_of(hostile_log) == before and events_rows(hostile_log) == rows_before
    assert run_cli("verify", hostile_log).returncode == 0


def test_hostile_text_through_the_console_script(hostile_log: Path) -> None:
    before = sha256_of(hostile_log)
    for text in ("x' OR '1'='1", "'; DROP TABLE events; --", "%"):
        result = run_cli("query", hostile_log, "--actor", text, "--run", text, "--correlation", text, "--format", "jsonl")
        assert result.returncode == 0, result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        assert [(r["actor"], r["run"], r["correlation"]) for r in rows] == [(text, text, text)]
        nothing = run_cli("query", hostile_log, "--kind", text, "--format", "csv")
        assert nothing.returncode == 1 and nothing.stdout == "" and "no events of kind" in nothing.stderr
    assert sha256_of(hostile_log) == before
    verify = run_cli("verify", hostile_log, "--json")
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"] is True


def test_a_snapshot_for_a_hostile_run_leaves_events_alone(hostile_log: Path, tmp_path: Path) -> None:
    path = tmp_path / "copy.db"
    shutil.copyfile(hostile_log, path)
    rows_before = events_rows(path)
    for text in ("'; DROP TABLE events; --", "x' OR '1'='1"):
        result = invoke("snapshot", path, "--run", text, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["run"] == text
    assert events_rows(path)[: len(rows_before)] == rows_before  # only the snapshots' digests are added
    assert [row["run"] for row in snapshot_rows(path)] == ["'; DROP TABLE events; --", "x' OR '1'='1"]
    assert run_cli("verify", path).returncode == 0


# -- read-only commands never change the file ------------------------------------------------------------


def test_read_only_commands_never_change_the_log(recorded: RecordedLog, tmp_path: Path) -> None:
    path = recorded.path
    assert not Path(str(path) + "-wal").exists() or os.path.getsize(str(path) + "-wal") == 0
    before, rows = sha256_of(path), events_rows(path)
    failure = str(recorded.divide_failure_seq)
    commands = [
        ["stats", path],
        ["stats", path, "--json", "--until-seq", "5"],
        ["query", path, "--format", "csv"],
        ["query", path, "--kind", "failure.raised", "--format", "table"],
        ["runs", path, "--json"],
        ["tail", path, "-n", "5"],
        ["verify", path],
        ["reproduce", path, failure, "--import-path", PLUGINS_DIR],
    ]
    for args in commands:
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        assert sha256_of(path) == before, args
    for args in commands:
        assert invoke(*args).exit_code == 0, args
        assert sha256_of(path) == before, args
    assert events_rows(path) == rows
    assert snapshot_rows(path) == []
