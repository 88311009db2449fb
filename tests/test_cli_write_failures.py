"""``actorlog demo --db X`` and ``actorlog run CONFIG --db X`` where X is no log they may write
(issue 13): a damaged SQLite file, or another application's database with an ``events``
table of its own. Each is one ``actorlog: error:`` line naming the file, exit status 2
(bad input, the README's exit-code table), no traceback, and the file left byte for byte
as it was.

tests/test_cli_bad_input.py covers the reading commands on damaged files, and
tests/test_fault_paths.py the writing commands on databases without an ``events`` table.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from demo_helpers import LLM_CLASS
from log_helpers import sha256_of
from replay_helpers import assert_one_line_error, run_cli

from actorlog.events import GaugeSet
from actorlog.store import EventStore, NotAnEventLogError, SchemaVersionError

pytestmark = pytest.mark.slow

SAFETY = 60.0
"""Seconds a refused command may take (a safety net against a command that runs instead of refusing)."""

WRITERS = {
    "demo": ["demo", "--db", "{}", "--tasks", "1"],
    "run": ["run", "{config}", "--db", "{}"],
}


def sqlite_file(path: Path, rows: int = 60) -> Path:
    """A small, valid SQLite database of several pages."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO notes (body) VALUES (?)", [("x" * 400,)] * rows)
    conn.commit()
    conn.close()
    return path


def damaged(kind: str, path: Path) -> Path:
    """A file that is, or was, an SQLite database and can no longer be read as one."""
    if kind == "garbage bytes":
        path.write_bytes(random.Random(13).randbytes(16384))
        return path
    sqlite_file(path)
    data = bytearray(path.read_bytes())
    if kind == "header magic overwritten":
        data[:16] = b"SQLite format 4\x00"
    elif kind == "header page size garbled":
        data[16:24] = b"\xff" * 8
    elif kind == "schema page garbled":
        data[100:4096] = bytes((i * 37) % 256 for i in range(3996))
    elif kind == "truncated":
        data = data[:1000]
    else:
        raise ValueError(kind)
    path.write_bytes(bytes(data))
    return path


CRASHING_APP = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[2] == "wal":
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # its commits stay in the -wal
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, title TEXT, starts_at TEXT)")
    conn.execute("INSERT INTO events (title, starts_at) VALUES ('standup', '09:00')")
else:  # a transaction under way: the rollback journal is hot
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, title TEXT, starts_at TEXT)")
    conn.execute("INSERT INTO events (title, starts_at) VALUES ('standup', '09:00')")
    conn.execute("PRAGMA cache_size=1")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO events (title) VALUES (?)", [("x" * 300,)] * 300)
print("ready", flush=True)
sys.stdin.read()
"""


def crashed_app(path: Path, journal: str) -> None:
    """Another application's database, left as it is when that application is killed."""
    app = subprocess.Popen([sys.executable, "-c", CRASHING_APP, str(path), journal], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    try:
        assert app.stdout is not None and app.stdout.readline().strip() == "ready"
    finally:
        app.kill()
        app.wait(timeout=60)
        for stream in (app.stdin, app.stdout):
            if stream is not None:
                stream.close()


def foreign(kind: str, path: Path) -> Path:
    """An SQLite database of another application holding an ``events`` table of its own."""
    if kind == "its own events table":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, title TEXT, starts_at TEXT)")
        conn.execute("INSERT INTO events (title, starts_at) VALUES ('standup', '09:00')")
        conn.commit()
        conn.close()
    elif kind == "an events table shaped like actorlog's":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, ts REAL, run TEXT, actor TEXT, kind TEXT, "
                     "version INTEGER, correlation TEXT, payload TEXT, hash TEXT)")
        conn.execute("INSERT INTO events VALUES (1, 1.0, 'r', 'a', 'k', 1, NULL, '{}', 'h')")
        conn.commit()
        conn.close()
    elif kind == "its events in a -wal it did not checkpoint":
        crashed_app(path, "wal")
        assert Path(f"{path}-wal").stat().st_size > 0
    elif kind == "a hot rollback journal":
        crashed_app(path, "journal")
        assert Path(f"{path}-journal").stat().st_size > 0
    else:
        raise ValueError(kind)
    return path


def files_of(path: Path) -> dict[str, str]:
    """The hashes of the database and of the journal files its application left beside it
    (SQLite's -shm index, which any reader may create, is not the application's data)."""
    found = {}
    for suffix in ("", "-wal", "-journal"):
        file = Path(f"{path}{suffix}")
        if file.exists():
            found[file.name] = sha256_of(file)
    return found


def refused(name: str, path: Path, tmp_path: Path) -> str:
    config = tmp_path / "app.toml"
    config.write_text(f'[plugins.llm]\nclass = "{LLM_CLASS}"\n')
    args = [a.format(path, config=config) for a in WRITERS[name]]
    try:
        result = run_cli(*args, cwd=tmp_path, timeout=SAFETY)
    except subprocess.TimeoutExpired:
        pytest.fail(f"actorlog {' '.join(args)!r} did not end within {SAFETY} s: it ran instead of refusing")
    return assert_one_line_error(result.returncode, result.stdout, result.stderr)


DAMAGED = ["garbage bytes", "header magic overwritten", "header page size garbled", "schema page garbled", "truncated"]
FOREIGN = ["its own events table", "an events table shaped like actorlog's", "its events in a -wal it did not checkpoint",
           "a hot rollback journal"]


@pytest.mark.parametrize("kind", DAMAGED)
@pytest.mark.parametrize("name", list(WRITERS))
def test_a_damaged_sqlite_file_is_refused_in_one_line_and_left_as_it_was(tmp_path: Path, name: str, kind: str) -> None:
    path = damaged(kind, tmp_path / "broken.db")
    before = files_of(path)
    line = refused(name, path, tmp_path)
    assert "broken.db" in line, line
    assert "not an SQLite database" in line or "cannot be read as an SQLite database" in line, line
    assert files_of(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.toml", "broken.db"]


@pytest.mark.parametrize("kind", FOREIGN)
@pytest.mark.parametrize("name", list(WRITERS))
def test_a_database_with_its_own_events_table_is_refused_in_one_line_and_left_as_it_was(
    tmp_path: Path, name: str, kind: str
) -> None:
    path = foreign(kind, tmp_path / "calendar.db")
    before = files_of(path)
    line = refused(name, path, tmp_path)
    assert "calendar.db" in line, line
    if kind == "a hot rollback journal":  # unreadable until rolled back, which would change it
        assert "another program's database" in line and "rollback journal" in line, line
    else:
        assert "not an actorlog event log (tables: events)" in line, line
    assert files_of(path) == before, "the other application's database was changed"
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith("-shm"))
    assert left == sorted(["app.toml", *before]), left


def _cut_off_creation(path: Path) -> None:
    """What a log whose creation was killed leaves (reproduced by killing one with strace):
    switching the new file to WAL wrote its first page through a rollback journal, which is
    left hot and says the database was empty (0 pages) before."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL").fetchall()
    conn.close()
    magic = bytes.fromhex("d9d505f920a163d7")  # a rollback journal's header: magic, records, nonce,
    header = magic + (0).to_bytes(4, "big") + (7).to_bytes(4, "big") + (0).to_bytes(4, "big")  # size before,
    header += (512).to_bytes(4, "big") + (4096).to_bytes(4, "big")  # sector and page sizes
    Path(f"{path}-journal").write_bytes(header.ljust(512, b"\0"))


def test_a_log_whose_creation_was_cut_off_is_created_on_the_next_open(tmp_path: Path) -> None:
    # rolling back a journal of a database that was empty loses nothing committed
    path = tmp_path / "new.db"
    _cut_off_creation(path)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):  # the journal is hot
        sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True).execute("SELECT count(*) FROM sqlite_master")
    with EventStore(path) as store:
        store.append(GaugeSet(name="q", value=1.0), actor="worker")
        assert store.flush() == 1
    assert run_cli("verify", path).returncode == 0


def _newer_schema_log(path: Path) -> None:
    EventStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()


def _closed_wal_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, title TEXT)")
    conn.commit()
    conn.close()  # the last connection: SQLite removes its -wal and -shm


@pytest.mark.parametrize("make, refusal", [(_newer_schema_log, SchemaVersionError),
                                           (_closed_wal_database, NotAnEventLogError)],
                         ids=["a log of a newer schema", "another program's WAL database, closed"])
def test_a_refused_file_is_left_with_nothing_beside_it(tmp_path: Path, make: Any, refusal: type[Exception]) -> None:
    path = tmp_path / "other.db"
    make(path)
    before = files_of(path)
    with pytest.raises(refusal):
        EventStore(path)
    assert files_of(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]
