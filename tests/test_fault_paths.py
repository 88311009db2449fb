"""Paths that are not regular files or are too long, and SQLite files of other applications:
every command refuses them with one line (exit 2) before opening anything, never blocks,
and never writes actorlog's schema into a database that is not empty.

Commands run as real subprocesses with a timeout: a command blocked on a named pipe
fails the test instead of hanging the suite.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from actorlog.events import CounterIncremented
from actorlog.store import EventStore, NotAnEventLogError
from demo_helpers import LLM_CLASS
from fault_helpers import finish_within
from log_helpers import sha256_of
from replay_helpers import assert_one_line_error, run_cli

pytestmark = pytest.mark.slow

SAFETY = 30.0
"""Seconds a refused command may take (a safety net against blocking, not a timing check)."""

READERS = {
    "stats": ["stats", "{}"],
    "query": ["query", "{}"],
    "runs": ["runs", "{}"],
    "tail": ["tail", "{}"],
    "verify": ["verify", "{}"],
    "reproduce": ["reproduce", "{}", "1"],
    "snapshot": ["snapshot", "{}"],
}
WRITERS = {
    "demo": ["demo", "--db", "{}", "--tasks", "1"],
    "run": ["run", "{config}", "--db", "{}"],
}


def command(args: list[str], path: Path, config: Path) -> list[str]:
    return [a.format(path, config=config) for a in args]


def refused(args: list[str], cwd: Path) -> str:
    """The one error line of a command that must be refused at once."""
    try:
        result = run_cli(*args, cwd=cwd, timeout=SAFETY)
    except subprocess.TimeoutExpired:
        pytest.fail(f"actorlog {' '.join(args)!r} did not end within {SAFETY} s: it blocked, or ran instead of refusing")
    return assert_one_line_error(result.returncode, result.stdout, result.stderr)


def small_config(directory: Path) -> Path:
    config = directory / "app.toml"
    config.write_text(f'[plugins.llm]\nclass = "{LLM_CLASS}"\n')
    return config


# -- named pipes and other files that are not regular ---------------------------------------------------


@pytest.mark.parametrize("name", [*READERS, *WRITERS])
def test_a_named_pipe_as_the_log_is_refused_at_once(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    config = small_config(tmp_path)
    line = refused(command({**READERS, **WRITERS}[name], fifo, config), tmp_path)
    assert "pipe.db" in line and "named pipe" in line and "regular file" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.toml", "pipe.db"]  # no -wal, no -shm


def test_a_named_pipe_as_the_config_file_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "app.toml"
    os.mkfifo(fifo)
    line = refused(["run", str(fifo), "--db", str(tmp_path / "out.db")], tmp_path)
    assert str(fifo) in line and "named pipe" in line and "regular file" in line, line
    line = refused(["run", "--check", str(fifo)], tmp_path)
    assert str(fifo) in line and "named pipe" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.toml"]


def test_a_character_device_is_not_an_event_log(tmp_path: Path) -> None:
    line = refused(["verify", os.devnull], tmp_path)
    assert repr(os.devnull) in line and "character device" in line, line
    with pytest.raises(NotAnEventLogError, match="character device"):
        EventStore.open_readonly(os.devnull)


def release(fifo: Path) -> None:
    """Give a reader blocked on opening ``fifo`` its end of file (it failed the test already)."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass  # nobody is blocked on it


@pytest.mark.parametrize("readonly", [True, False], ids=["read-only", "writable"])
def test_the_store_refuses_a_named_pipe_at_once(tmp_path: Path, readonly: bool) -> None:
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    try:
        _, error = finish_within(lambda: EventStore(fifo, readonly=readonly), SAFETY, "EventStore on a named pipe")
    finally:
        release(fifo)
    assert isinstance(error, NotAnEventLogError) and "named pipe" in str(error), repr(error)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.db"]


def test_a_named_pipe_beside_the_log_as_its_wal_file_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "app.db"
    with EventStore(log) as store:
        store.append(CounterIncremented(name="c", value=1.0))
    os.mkfifo(tmp_path / "app.db-wal")
    line = refused(["verify", str(log)], tmp_path)
    assert "app.db-wal" in line and "named pipe" in line, line


# -- names longer than the file system allows --------------------------------------------------------------


LONG = "x" * 300


@pytest.mark.parametrize("name", [*READERS, *WRITERS])
def test_a_name_over_255_bytes_is_one_line_on_every_command(tmp_path: Path, name: str) -> None:
    config = small_config(tmp_path)
    for path in (tmp_path / f"{LONG}.db", tmp_path / LONG / "app.db"):
        line = refused(command({**READERS, **WRITERS}[name], path, config), tmp_path)
        assert "too long" in line and "255" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.toml"]


def test_a_config_file_name_over_255_bytes_is_one_line(tmp_path: Path) -> None:
    line = refused(["run", str(tmp_path / f"{LONG}.toml"), "--db", str(tmp_path / "out.db")], tmp_path)
    assert "too long" in line, line
    config = tmp_path / "app.toml"
    config.write_text(f'log = "{LONG}.db"\n[plugins.llm]\nclass = "{LLM_CLASS}"\n')
    line = refused(["run", str(config)], tmp_path)
    assert "too long" in line and "255" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.toml"]


def test_the_store_says_a_long_name_is_too_long(tmp_path: Path) -> None:
    for readonly in (True, False):
        with pytest.raises(NotAnEventLogError, match="too long"):
            EventStore(tmp_path / f"{LONG}.db", readonly=readonly)


# -- databases of other applications ---------------------------------------------------------------------


def foreign_database(path: Path, kind: str) -> Path:
    """An SQLite file another application made, with no table of actorlog's."""
    conn = sqlite3.connect(path, isolation_level=None)
    if kind == "a view only":
        conn.execute("CREATE VIEW greeting AS SELECT 'hello' AS word")
    elif kind == "a user_version":
        conn.execute("PRAGMA user_version = 7")
    elif kind == "an application_id":
        conn.execute("PRAGMA application_id = 1234")
    elif kind == "a table":
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('ada')")
    elif kind == "meta without events":
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('format', 'actorlog'), ('schema_version', '1')")
    else:
        raise ValueError(kind)
    conn.close()
    return path


FOREIGN = ["a view only", "a user_version", "an application_id", "a table", "meta without events"]


@pytest.mark.parametrize("kind", FOREIGN)
def test_the_store_never_writes_its_schema_into_a_foreign_database(tmp_path: Path, kind: str) -> None:
    path = foreign_database(tmp_path / "other.db", kind)
    before = sha256_of(path)
    for readonly in (False, True):
        with pytest.raises(NotAnEventLogError, match="not an actorlog event log") as caught:
            EventStore(path, readonly=readonly)
        assert str(path) in str(caught.value)
    assert sha256_of(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


@pytest.mark.parametrize("kind", FOREIGN)
@pytest.mark.parametrize("name", ["demo", "run", "snapshot"])
def test_writing_commands_refuse_a_foreign_database(tmp_path: Path, kind: str, name: str) -> None:
    path = foreign_database(tmp_path / "other.db", kind)
    before = sha256_of(path)
    config = small_config(tmp_path)
    args = {**WRITERS, "snapshot": READERS["snapshot"]}[name]
    line = refused(command(args, path, config), tmp_path)
    assert "other.db" in line and "not an actorlog event log" in line, line
    assert sha256_of(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.toml", "other.db"]


def test_a_new_or_empty_sqlite_file_still_becomes_a_log(tmp_path: Path) -> None:
    empty_file = tmp_path / "zero.db"
    empty_file.write_bytes(b"")
    empty_db = tmp_path / "vacuumed.db"
    conn = sqlite3.connect(empty_db, isolation_level=None)
    conn.execute("VACUUM")  # a valid SQLite header and no schema at all
    conn.close()
    for path in (tmp_path / "new.db", empty_file, empty_db):
        with EventStore(path) as store:
            store.append(CounterIncremented(name="c", value=1.0))
        with EventStore.open_readonly(path) as reader:
            assert reader.count() == 1 and reader.verify().ok
