"""``verify`` checks what it claims: the append-only triggers are actorlog's own (not no-ops
under the same names), and the file passes SQLite's own check (a damaged index page is
found, as its own finding, exit status 1); ``--quick`` skips that check on huge logs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from actorlog.events import CounterIncremented, PluginStarted
from actorlog.store import EventStore, VerifyReport
from actorlog.store.schema import TRIGGERS
from log_helpers import sha256_of
from replay_helpers import assert_one_line_error, run_cli

N = 3000


def write_log(path: Path, n: int = N) -> Path:
    with EventStore(path, run="t13-verify") as store:
        store.append_many(
            [PluginStarted(plugin=f"p{i}") if i % 3 else CounterIncremented(name="c", value=float(i)) for i in range(n)],
            actor="tests",
        )
    return path


def execute(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


def no_op_triggers(path: Path) -> None:
    """Replace the append-only triggers by triggers of the same names that refuse nothing."""
    for name in TRIGGERS:
        operation = name.rpartition("_")[2].upper()
        execute(path, f"DROP TRIGGER {name}", f"CREATE TRIGGER {name} BEFORE {operation} ON events BEGIN SELECT 1; END")


# -- the triggers ---------------------------------------------------------------------------------------


def test_triggers_replaced_by_no_ops_under_their_names_fail_verification(tmp_path: Path) -> None:
    log = write_log(tmp_path / "app.db")
    no_op_triggers(log)
    execute(log, "DELETE FROM events WHERE seq > 10")  # what the no-ops let through
    with EventStore.open_readonly(log) as reader:
        report = reader.verify()
    assert not report.ok
    for name in TRIGGERS:
        assert any(name in p and "replaced" in p for p in report.problems), report.problems
    result = run_cli("verify", log)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "triggers in place" not in result.stdout
    assert "events_refuse_delete" in result.stdout and "events_refuse_update" in result.stdout


def test_one_trigger_replaced_is_named_alone(tmp_path: Path) -> None:
    log = write_log(tmp_path / "app.db", 20)
    execute(log, "DROP TRIGGER events_refuse_update",
            "CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events BEGIN SELECT RAISE(IGNORE); END")
    with EventStore.open_readonly(log) as reader:
        report = reader.verify()
    assert not report.ok and report.first_bad_seq is None
    assert len(report.problems) == 1 and "events_refuse_update" in report.problems[0]


def test_a_trigger_moved_to_another_table_fails_verification(tmp_path: Path) -> None:
    log = write_log(tmp_path / "app.db", 20)
    execute(log, "CREATE TABLE decoy (x)", "DROP TRIGGER events_refuse_delete",
            f"CREATE TRIGGER events_refuse_delete {TRIGGERS['events_refuse_delete'].replace('ON events', 'ON decoy')}")
    with EventStore.open_readonly(log) as reader:
        report = reader.verify()
    assert not report.ok and any("events_refuse_delete" in p for p in report.problems)


def test_triggers_written_with_other_spacing_and_case_still_verify(tmp_path: Path) -> None:
    log = write_log(tmp_path / "app.db", 20)
    for name, body in TRIGGERS.items():
        spaced = body.replace(" ", "\n    ").replace("BEGIN", "begin")
        execute(log, f"DROP TRIGGER {name}", f"create trigger {name}\n  {spaced}")
    with EventStore.open_readonly(log) as reader:
        report = reader.verify()
    assert report.ok, report.problems


# -- SQLite's own check of the file -------------------------------------------------------------------


def damage_index(path: Path, index: str = "events_by_kind") -> None:
    """Write garbage over the root page of one index: the rows (read along the primary key) are
    untouched, so the hash chain still verifies, but SQLite's check of the file fails."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", [index]).fetchone()[0]
    finally:
        conn.close()
    with path.open("r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(bytes(range(256)) * (page_size // 256))


def test_a_damaged_index_page_is_found_as_its_own_finding(tmp_path: Path) -> None:
    log = write_log(tmp_path / "app.db")
    damage_index(log)
    before = sha256_of(log)
    with EventStore.open_readonly(log) as reader:
        report = reader.verify()
        assert not report.ok, "a damaged index page passed verify"
        assert report.events_checked == N and report.first_bad_seq is None  # the chain itself is intact
        quick = reader.verify(check_file=False)
    assert report.file_checked and report.file_problems
    assert len(report.problems) == 1 and "damaged" in report.problems[0] and ".recover" in report.problems[0]
    assert quick.ok and not quick.file_checked and quick.file_problems == ()
    result = run_cli("verify", log)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("FAILED: the file is damaged") and "Traceback" not in result.stderr
    as_json = json.loads(run_cli("verify", log, "--json").stdout)
    assert as_json["ok"] is False and as_json["file_checked"] is True and as_json["file_problems"]
    skipped = run_cli("verify", log, "--quick")
    assert skipped.returncode == 0 and "file check skipped" in skipped.stdout, skipped.stdout + skipped.stderr
    query = run_cli("query", log, "--kind", "plugin.started")  # what the damage does to a user
    assert_one_line_error(query.returncode, "", query.stderr)
    assert sha256_of(log) == before


def test_an_intact_log_says_its_file_was_checked(tmp_path: Path) -> None:
    log = write_log(tmp_path / "app.db", 20)
    with EventStore.open_readonly(log) as reader:
        report = reader.verify()
    assert report.ok and report.file_checked and report.file_problems == ()
    result = run_cli("verify", log)
    assert result.returncode == 0 and "file intact" in result.stdout, result.stdout + result.stderr


def test_a_data_page_damaged_is_a_finding_naming_how_far_the_chain_was_read(tmp_path: Path) -> None:
    log = write_log(tmp_path / "app.db", 6000)
    data = log.read_bytes()
    page_size = int.from_bytes(data[16:18], "big")
    table_leaves = [n for n in range(1, len(data) // page_size) if data[n * page_size] == 0x0D]  # b-tree table leaf
    with log.open("r+b") as handle:  # garbage over a page of rows in the middle of the log
        handle.seek(table_leaves[len(table_leaves) // 2] * page_size)
        handle.write(bytes(range(256)) * (page_size // 256))
    for check_file in (True, False):
        with EventStore.open_readonly(log) as reader:
            report = reader.verify(check_file=check_file)
        assert not report.ok and report.file_problems, report
        assert any("could not be read past seq" in p for p in report.problems), report.problems
    result = run_cli("verify", log)
    assert result.returncode == 1 and "damaged" in result.stdout, result.stdout + result.stderr


def test_the_report_keeps_its_old_fields_and_defaults() -> None:
    report = VerifyReport(ok=True, events_checked=0, last_seq=0)
    assert (report.first_bad_seq, report.problems, report.file_checked, report.file_problems) == (None, (), False, ())


@pytest.mark.parametrize("quick", [False, True])
def test_verify_of_a_tampered_row_still_names_its_seq(tmp_path: Path, quick: bool) -> None:
    log = write_log(tmp_path / "app.db", 50)
    execute(log, *(f"DROP TRIGGER {name}" for name in TRIGGERS),
            "UPDATE events SET payload = json_set(payload, '$.value', 1e6) WHERE seq = 10")
    result = run_cli("verify", log, *(["--quick"] if quick else []))
    assert result.returncode == 1 and "seq 10" in result.stdout
