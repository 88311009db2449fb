"""Append-only enforcement, tamper detection, the ``actorlog verify`` command, schema and views."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
import sqlite_utils
from log_helpers import ACTORLOG_CLI, sha256_of

from actorlog.events import (
    CounterIncremented,
    FailureAssessed,
    FailureRaised,
    GaugeSet,
    HistogramObserved,
    PluginHealthChecked,
    PluginRegistered,
    PluginStarted,
    RecoveryDecided,
    RetryScheduled,
)
from actorlog.store import SCHEMA_VERSION, EventStore

N = 50
K = 20


def write_log(path: Path, n: int = N) -> None:
    with EventStore(path) as store:
        store.append_many(
            [PluginStarted(plugin=f"p{i}") if i % 2 else GaugeSet(name="q", value=float(i)) for i in range(n)],
            actor="tests",
        )


def all_rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()


def tamper(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


DROP_TRIGGERS = ("DROP TRIGGER events_refuse_update", "DROP TRIGGER events_refuse_delete")


# -- append-only -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE events SET payload = '{{\"kind\":\"plugin.started\",\"plugin\":\"evil\"}}' WHERE seq = {K}",
        "UPDATE events SET actor = 'someone else'",
        f"DELETE FROM events WHERE seq = {K}",
        "DELETE FROM events",
    ],
)
def test_updates_and_deletes_are_refused_by_the_log_itself(log_path: Path, statement: str) -> None:
    write_log(log_path)
    before = all_rows(log_path)
    conn = sqlite3.connect(log_path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(statement)
        conn.rollback()
    finally:
        conn.close()
    assert all_rows(log_path) == before
    with EventStore.open_readonly(log_path) as reader:
        assert reader.verify().ok


# -- tamper detection -------------------------------------------------------------------------------


def test_an_intact_log_verifies(log_path: Path) -> None:
    write_log(log_path)
    with EventStore.open_readonly(log_path) as reader:
        report = reader.verify()
    assert report.ok
    assert report.events_checked == N and report.last_seq == N
    assert report.first_bad_seq is None and report.problems == ()


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(
            f"UPDATE events SET payload = json_set(payload, '$.plugin', 'evil') WHERE seq = {K}", id="payload"
        ),
        pytest.param(f"UPDATE events SET ts = ts + 1 WHERE seq = {K}", id="ts"),
        pytest.param(f"UPDATE events SET actor = 'intruder' WHERE seq = {K}", id="actor"),
        pytest.param(f"UPDATE events SET correlation = 'c' WHERE seq = {K}", id="correlation"),
        pytest.param(f"UPDATE events SET kind = 'plugin.stopped' WHERE seq = {K}", id="kind"),
    ],
)
def test_editing_a_row_is_detected_at_that_row(log_path: Path, edit: str) -> None:
    write_log(log_path)
    tamper(log_path, *DROP_TRIGGERS, edit)
    with EventStore.open_readonly(log_path) as reader:
        report = reader.verify()
    assert not report.ok
    assert report.first_bad_seq == K
    assert report.events_checked == N
    assert any("events_refuse_update" in p and "missing" in p for p in report.problems)
    assert any("events_refuse_delete" in p and "missing" in p for p in report.problems)
    assert any(f"seq {K}" in p for p in report.problems)


def test_deleting_a_row_is_detected_at_the_row_after_it(log_path: Path) -> None:
    write_log(log_path)
    tamper(log_path, *DROP_TRIGGERS, f"DELETE FROM events WHERE seq = {K}")
    with EventStore.open_readonly(log_path) as reader:
        report = reader.verify()
    assert not report.ok
    assert report.first_bad_seq == K + 1
    assert report.events_checked == N - 1


def test_a_forged_row_appended_outside_the_store_is_detected(log_path: Path) -> None:
    write_log(log_path)
    tamper(
        log_path,
        "INSERT INTO events (seq, ts, run, actor, kind, version, correlation, payload, hash) "
        "SELECT seq + 1, ts, run, actor, kind, version, correlation, payload, hash FROM events WHERE seq = "
        f"{N}",
    )
    with EventStore.open_readonly(log_path) as reader:
        report = reader.verify()
    assert not report.ok and report.first_bad_seq == N + 1
    assert not any("trigger" in p for p in report.problems), "the triggers are still in place"


def test_missing_triggers_alone_make_verification_fail(log_path: Path) -> None:
    write_log(log_path)
    tamper(log_path, "DROP TRIGGER events_refuse_delete")
    with EventStore.open_readonly(log_path) as reader:
        report = reader.verify()
    assert not report.ok and report.first_bad_seq is None
    assert report.problems == ("append-only trigger events_refuse_delete is missing",)


def test_the_store_keeps_the_chain_valid_across_reopenings_and_runs(log_path: Path) -> None:
    for run in range(3):
        with EventStore(log_path, run=f"run-{run}") as store:
            store.append_many([CounterIncremented(name="c", value=float(i)) for i in range(30)])
            store.append(PluginStarted(plugin="x"))
    with EventStore.open_readonly(log_path) as reader:
        report = reader.verify()
    assert report.ok and report.events_checked == 93


# -- the verify command -----------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ACTORLOG_CLI), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_verify_reports_an_intact_log_and_does_not_change_it(log_path: Path) -> None:
    write_log(log_path)
    before = sha256_of(log_path)
    result = run_cli("verify", str(log_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
    assert f"{N} events" in result.stdout
    assert "Traceback" not in result.stderr
    assert sha256_of(log_path) == before


def test_cli_verify_json_output(log_path: Path) -> None:
    write_log(log_path)
    result = run_cli("verify", str(log_path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "ok": True, "events_checked": N, "last_seq": N, "first_bad_seq": None, "problems": [],
        "file_checked": True, "file_problems": [], "findings": [], "checkpoints": 0, "signed_up_to": None,
        "notes": ["without a signing key's public key, an editor who recomputes the hash chain is not detected"],
    }


def test_cli_verify_reports_tampering_with_the_first_bad_seq(log_path: Path) -> None:
    write_log(log_path)
    tamper(log_path, *DROP_TRIGGERS, f"UPDATE events SET payload = json_set(payload, '$.value', 1e6) WHERE seq = {K}")
    before = sha256_of(log_path)
    result = run_cli("verify", str(log_path))
    assert result.returncode == 1
    assert f"seq {K}" in result.stdout
    assert "FAILED" in result.stdout
    assert "Traceback" not in result.stderr
    assert sha256_of(log_path) == before

    as_json = json.loads(run_cli("verify", "--json", str(log_path)).stdout)
    assert as_json["ok"] is False and as_json["first_bad_seq"] == K


@pytest.mark.parametrize("kind", ["text-file", "missing-file", "directory", "foreign-sqlite"])
def test_cli_verify_exits_2_for_anything_but_an_event_log(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target"
    if kind == "text-file":
        target.write_text("hello, this is not a database\n")
    elif kind == "directory":
        target.mkdir()
    elif kind == "foreign-sqlite":
        conn = sqlite3.connect(target)
        conn.execute("CREATE TABLE foo (x)")
        conn.close()
    result = run_cli("verify", str(target))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(target) in result.stderr
    if kind == "missing-file":
        assert not target.exists()


# -- schema, indexes and views -------------------------------------------------------------------


def test_schema_meta_indexes_and_wal_mode(log_path: Path) -> None:
    write_log(log_path, 3)
    db = sqlite_utils.Database(log_path)
    try:
        events = db.table("events")
        assert [c.name for c in events.columns] == [
            "seq", "ts", "run", "actor", "kind", "version", "correlation", "payload", "hash",
        ]
        assert events.pks == ["seq"]
        indexed = {tuple(index.columns) for index in events.indexes}
        for column in ("actor", "kind", "ts", "correlation", "run"):
            assert (column,) in indexed, f"no index on {column}"
        meta = {row["key"]: row["value"] for row in db["meta"].rows}
        assert meta["format"] == "actorlog"
        assert meta["schema_version"] == str(SCHEMA_VERSION)
        assert set(db.view_names()) >= {"lifecycle", "failures", "measurements"}
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        triggers = {t.name for t in db.triggers}
        assert {"events_refuse_update", "events_refuse_delete"} <= triggers
    finally:
        db.close()


def test_views_expose_payload_fields_as_columns(log_path: Path) -> None:
    with EventStore(log_path) as store:
        store.append(PluginRegistered(plugin="llm", class_path="app.LLM", plugin_version="1.2"), actor="supervisor")
        store.append(PluginStarted(plugin="llm"), actor="supervisor")
        store.append(PluginHealthChecked(plugin="llm", healthy=False, detail="slow"), actor="supervisor")
        store.append(
            FailureRaised(plugin="llm", exc_type="builtins.ValueError", message="boom", traceback="tb",
                          severity="high", trigger_seq=2),
            actor="llm", correlation="m-1",
        )
        store.append(FailureAssessed(plugin="llm", exc_type="builtins.ValueError", message="boom", severity="high",
                                     failed_at=1.0, failure_seq=4), actor="errors", correlation="m-1")
        store.append(RecoveryDecided(plugin="llm", action="retry", delay=0.5, severity="high", failure_seq=4),
                     actor="errors", correlation="m-1")
        store.append(RetryScheduled(task="fetch", attempt=2, delay=1.0, exc_type="builtins.OSError"), actor="llm")
        store.append(GaugeSet(name="q", value=3.0, tags={"a": "b"}), actor="metrics")
        store.append(CounterIncremented(name="calls", value=2.0), actor="metrics")
        store.append(HistogramObserved(name="latency", value=0.25), actor="metrics")

    db = sqlite_utils.Database(log_path)
    try:
        lifecycle = list(db.query("SELECT kind, plugin, class_path, plugin_version, healthy, detail FROM lifecycle ORDER BY seq"))
        assert lifecycle == [
            {"kind": "plugin.registered", "plugin": "llm", "class_path": "app.LLM", "plugin_version": "1.2",
             "healthy": None, "detail": None},
            {"kind": "plugin.started", "plugin": "llm", "class_path": None, "plugin_version": None,
             "healthy": None, "detail": None},
            {"kind": "plugin.health_checked", "plugin": "llm", "class_path": None, "plugin_version": None,
             "healthy": 0, "detail": "slow"},
        ]
        # one row per assessed failure, with its decision (issue 17); retries have their own view
        failures = list(db.query(
            "SELECT seq, correlation, plugin, exc_type, message, severity, action, delay, reason, raised_seq, "
            "decided_seq FROM failures"
        ))
        assert failures == [
            {"seq": 5, "correlation": "m-1", "plugin": "llm", "exc_type": "builtins.ValueError", "message": "boom",
             "severity": "high", "action": "retry", "delay": 0.5, "reason": "", "raised_seq": 4, "decided_seq": 6},
        ]
        retries = list(db.query("SELECT kind, task, attempt, delay, exc_type FROM retries"))
        assert retries == [
            {"kind": "retry.scheduled", "task": "fetch", "attempt": 2, "delay": 1.0, "exc_type": "builtins.OSError"},
        ]
        times = [row["time"] for row in db.query("SELECT ts, time FROM lifecycle")]
        assert all(len(t) == 24 and t.endswith("Z") for t in times)
        measurements = list(db.query("SELECT actor, metric_type, name, value, tags FROM measurements ORDER BY seq"))
        assert [(m["metric_type"], m["name"], m["value"]) for m in measurements] == [
            ("gauge", "q", 3.0), ("counter", "calls", 2.0), ("histogram", "latency", 0.25),
        ]
        assert json.loads(measurements[0]["tags"]) == {"a": "b"}
        assert {m["actor"] for m in measurements} == {"metrics"}
    finally:
        db.close()


def test_the_store_exposes_a_sqlite_utils_database_for_ad_hoc_queries(log_path: Path) -> None:
    with EventStore(log_path) as store:
        store.append(GaugeSet(name="q", value=1.0))
        store.append(GaugeSet(name="q", value=5.0))
        store.flush()
        rows = list(store.db.query("SELECT max(value) AS top FROM measurements WHERE name = ?", ["q"]))
    assert rows == [{"top": 5.0}]


def test_a_writer_brings_an_older_logs_views_up_to_date_without_touching_its_events(log_path: Path) -> None:
    with EventStore(log_path) as store:
        store.append(PluginStarted(plugin="llm"), actor="supervisor")
    before = sqlite3.connect(log_path).execute("SELECT seq, payload, hash FROM events ORDER BY seq").fetchall()
    old = sqlite3.connect(log_path)  # the view as an older actorlog wrote it: unordered, no `time`
    old.execute("DROP VIEW lifecycle")
    old.execute("CREATE VIEW lifecycle AS SELECT seq, ts, run, actor, kind FROM events WHERE kind LIKE 'plugin.%'")
    old.commit()
    old.close()
    with EventStore.open_readonly(log_path) as reader:  # a reader changes nothing
        assert "time" not in reader.db["lifecycle"].columns_dict
    with EventStore(log_path):
        pass
    conn = sqlite3.connect(log_path)
    try:
        assert "time" in [row[1] for row in conn.execute("PRAGMA table_info(lifecycle)")]
        assert conn.execute("SELECT seq, payload, hash FROM events ORDER BY seq").fetchall()[:len(before)] == before
    finally:
        conn.close()
