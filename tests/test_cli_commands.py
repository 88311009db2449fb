"""The ``actorlog`` commands on a real recorded log, through click's CliRunner and through
the installed console script: help, stats, query (every filter and format), runs, tail,
verify."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorlog.events import GaugeSet
from actorlog.replay import format_time, statistics_document
from actorlog.store import EventStore
from replay_helpers import (
    COMMANDS,
    RUN_ONE,
    RUN_TWO,
    RecordedLog,
    invoke,
    jsonl,
    read,
    record_log,
    record_row,
    run_cli,
    strip_time,
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> RecordedLog:
    return record_log(tmp_path_factory.mktemp("cli") / "app.db")


# -- help ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout and f"actorlog {command}" in result.stdout


def test_help_through_the_console_script() -> None:
    top = run_cli("--help")
    assert top.returncode == 0
    for command in COMMANDS:
        assert command in top.stdout
        result = run_cli(command, "-h")
        assert result.returncode == 0, result.stderr
        assert "Example" in result.stdout and "Usage: actorlog " + command in result.stdout


# -- stats ---------------------------------------------------------------------------------------------


HISTOGRAM_KEYS = {"count", "min", "max", "avg", "latest", "p50", "p95", "p99"}


def test_stats_json_has_the_documented_shape_and_values(recorded: RecordedLog) -> None:
    result = invoke("stats", recorded.path, "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document == statistics_document(recorded.path)
    assert {"as_of", "position", "plugins", "errors", "metrics"} <= set(document)
    errors, metrics = document["errors"], document["metrics"]
    assert {"total_errors", "error_types", "severity_distribution", "recent_errors"} <= set(errors)
    assert {"counters", "gauges", "histograms"} <= set(metrics)
    assert errors["total_errors"] == 6
    assert errors["error_types"] == {
        "builtins.ValueError": 2, "builtins.OSError": 1, "builtins.ZeroDivisionError": 1,
        "builtins.ConnectionError": 1, "builtins.KeyError": 1,
    }
    assert sum(errors["severity_distribution"].values()) == 6
    assert {"type", "message", "severity", "plugin", "time", "seq"} <= set(errors["recent_errors"][0])
    assert metrics["counters"]["t6.requests"] == 3.0 and metrics["gauges"] == {"t6.queue": 4.0}
    latency = metrics["histograms"]["t6.latency{route=/a}"]
    assert HISTOGRAM_KEYS <= set(latency)
    assert (latency["count"], latency["min"], latency["max"], latency["avg"], latency["latest"]) == (4, 1.0, 4.0, 2.5, 4.0)
    assert latency["p50"] == 2.5
    assert all(HISTOGRAM_KEYS <= set(h) for h in metrics["histograms"].values())
    # plugins by run, then name: the two runs' plugins never merge
    assert list(document["plugins"]) == [RUN_ONE, RUN_TWO]
    assert {name for plugins in document["plugins"].values() for name in plugins} == {"alpha", "beta", "calc"}
    assert document["plugins"][RUN_TWO]["alpha"]["run"] == RUN_TWO
    beta = next(plugins["beta"] for plugins in document["plugins"].values() if "beta" in plugins)
    assert {"state", "version", "class_path", "restarts", "healthy"} <= set(beta)


def test_stats_table_through_the_console_script(recorded: RecordedLog) -> None:
    result = run_cli("stats", recorded.path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out == invoke("stats", recorded.path).stdout
    for text in ("plugin", "state", "restarts", "alpha", "beta", "calc", "2.5", "errors: 6", "builtins.ValueError",
                 "severity:", "t6.requests", "counter", "t6.queue", "gauge", "t6.latency{route=/a}", "p95"):
        assert text in out, text
    assert out.startswith("as of ")


def test_stats_options_match_the_api(recorded: RecordedLog) -> None:
    records = read(recorded.path)
    middle = records[len(records) // 2]
    cases: list[tuple[list[str], dict[str, Any]]] = [
        (["--until-seq", str(middle.seq)], {"until_seq": middle.seq}),
        (["--run", RUN_ONE], {"run": RUN_ONE}),
        (["--run", RUN_TWO, "--recent", "1"], {"run": RUN_TWO, "recent": 1}),
        (["--as-of", repr(middle.ts)], {"as_of": middle.ts}),
        (["--window", "0.5"], {"window_seconds": 0.5}),
        (["--no-snapshots", "--recent", "0"], {"use_snapshots": False, "recent": 0}),
    ]
    for args, options in cases:
        result = invoke("stats", recorded.path, "--json", *args)
        assert result.exit_code == 0, (args, result.output)
        assert json.loads(result.stdout) == statistics_document(recorded.path, **options), args
    assert len(json.loads(invoke("stats", recorded.path, "--json", "--recent", "2").stdout)["errors"]["recent_errors"]) == 2
    one = json.loads(invoke("stats", recorded.path, "--json", "--run", RUN_ONE).stdout)
    assert one["errors"]["total_errors"] == 5 and "builtins.KeyError" not in one["errors"]["error_types"]


# -- query ---------------------------------------------------------------------------------------------


def reference(records: list[Any], *, run: str | None = None, actor: str | None = None, kinds: Any = None,
              since: float | None = None, until: float | None = None, correlation: str | None = None,
              from_seq: int | None = None, to_seq: int | None = None, limit: int | None = None) -> list[int]:
    """The seqs every filter selects, computed in plain Python."""
    seqs = [
        r.seq for r in records
        if (run is None or r.run == run) and (actor is None or r.actor == actor)
        and (kinds is None or r.kind in kinds) and (since is None or r.ts >= since)
        and (until is None or r.ts <= until) and (correlation is None or r.correlation == correlation)
        and (from_seq is None or r.seq >= from_seq) and (to_seq is None or r.seq <= to_seq)
    ]
    return seqs[:limit] if limit is not None else seqs


def cli_args(filters: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for key, value in filters.items():
        if key == "kinds":
            for kind in value:
                args += ["--kind", kind]
        else:
            args += ["--" + key.replace("_", "-"), repr(value) if isinstance(value, float) else str(value)]
    return args


def parse(output: str, fmt: str) -> list[int]:
    """The seqs of a query's output in any format (checking each row's shape)."""
    if fmt == "json":
        rows = json.loads(output)
    elif fmt == "jsonl":
        rows = jsonl(output)
    elif fmt == "csv":
        table = list(csv.reader(io.StringIO(output)))
        assert table[0] == ["seq", "time", "ts", "run", "actor", "kind", "version", "correlation", "payload"]
        return [int(row[0]) for row in table[1:]]
    else:
        if output.strip() == "no events match":
            return []
        lines = output.splitlines()
        assert lines[0].split()[:4] == ["seq", "time", "actor", "kind"]
        return [int(line.split()[0]) for line in lines[2:]]
    for row in rows:
        assert row["time"] == format_time(row["ts"])
    return [row["seq"] for row in rows]


def test_query_every_filter_and_format_agrees_with_the_store(recorded: RecordedLog) -> None:
    records = read(recorded.path)
    middle = records[len(records) // 2]
    cases: list[dict[str, Any]] = [
        {},
        {"run": RUN_TWO},
        {"actor": "errors"},
        {"kinds": ["failure.raised"]},
        {"kinds": ["failure.raised", "recovery.decided", "plugin.restarted"]},
        {"since": middle.ts},
        {"until": middle.ts},
        {"since": records[3].ts, "until": middle.ts},
        {"correlation": recorded.failure_correlation},
        {"from_seq": 10},
        {"to_seq": 12},
        {"from_seq": 10, "to_seq": 20, "actor": "supervisor"},
        {"run": RUN_ONE, "kinds": ["message.received"], "actor": "beta"},
    ]
    for filters in cases:
        with EventStore.open_readonly(recorded.path) as store:
            expected = json.loads(json.dumps([strip_time(record_row(r)) for r in store.events(lenient=True, **filters)]))
        assert [row["seq"] for row in expected] == reference(records, **filters)
        for fmt in ("json", "jsonl", "csv", "table"):
            result = invoke("query", recorded.path, *cli_args(filters), "--format", fmt)
            assert result.exit_code == 0, (filters, fmt, result.output)
            assert parse(result.stdout, fmt) == [row["seq"] for row in expected], (filters, fmt)
            if fmt == "json":
                assert [strip_time(row) for row in json.loads(result.stdout)] == expected
            elif fmt == "jsonl":
                assert [strip_time(row) for row in jsonl(result.stdout)] == expected
            elif fmt == "csv":
                rows = list(csv.DictReader(io.StringIO(result.stdout)))
                assert [
                    {"seq": int(r["seq"]), "ts": float(r["ts"]), "run": r["run"], "actor": r["actor"], "kind": r["kind"],
                     "version": int(r["version"]), "correlation": r["correlation"] or None,
                     "payload": json.loads(r["payload"])}
                    for r in rows
                ] == expected
        limited = invoke("query", recorded.path, *cli_args(filters), "--limit", "3", "--format", "json")
        assert [row["seq"] for row in json.loads(limited.stdout)] == [row["seq"] for row in expected][:3]


def test_query_through_the_console_script(recorded: RecordedLog) -> None:
    result = run_cli("query", recorded.path, "--kind", "failure.raised", "--kind", "task.succeeded", "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    rows = jsonl(result.stdout)
    assert [r["kind"] for r in rows] == ["failure.raised"] * 5 + ["task.succeeded", "failure.raised"]
    assert rows[0]["payload"]["exc_type"] == "builtins.ValueError" and "Traceback" in rows[0]["payload"]["traceback"]
    table = run_cli("query", recorded.path, "--correlation", recorded.task_correlation)
    assert table.returncode == 0 and "retry.scheduled" in table.stdout and "task.succeeded" in table.stdout


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_query_filters_combined_at_random_agree_with_plain_python(recorded: RecordedLog, data: st.DataObject) -> None:
    records = read(recorded.path)
    values = {
        "run": [RUN_ONE, RUN_TWO, "nope"],
        "actor": sorted({r.actor for r in records}) + ["nope"],
        "correlation": sorted({r.correlation for r in records if r.correlation}) + ["nope"],
    }
    filters: dict[str, Any] = {}
    for key, choices in values.items():
        if data.draw(st.booleans()):
            filters[key] = data.draw(st.sampled_from(choices))
    if data.draw(st.booleans()):
        filters["kinds"] = data.draw(st.lists(st.sampled_from(sorted({r.kind for r in records}) + ["nope"]),
                                              min_size=1, max_size=3, unique=True))
    times = sorted(r.ts for r in records)
    for key in ("since", "until"):
        if data.draw(st.booleans()):
            filters[key] = data.draw(st.sampled_from(times))
    for key in ("from_seq", "to_seq"):
        if data.draw(st.booleans()):
            filters[key] = data.draw(st.integers(0, len(records) + 2))
    if data.draw(st.booleans()):
        filters["limit"] = data.draw(st.integers(1, 10))
    fmt = data.draw(st.sampled_from(["json", "jsonl", "csv", "table"]))
    result = invoke("query", recorded.path, *cli_args(filters), "--format", fmt)
    contradictory = (filters.get("since", 0) > filters.get("until", float("inf"))
                     or filters.get("from_seq", 0) > filters.get("to_seq", float("inf")))
    if contradictory:
        assert result.exit_code == 2 and result.stderr.startswith("actorlog: error:")
        return
    if "nope" in (filters.get("run"), filters.get("actor")) or "nope" in filters.get("kinds", ()):
        # a run, actor or kind the log holds nothing of: a typo, said so with exit status 1
        assert result.exit_code == 1 and result.stdout == "", result.output
        assert result.stderr.startswith("actorlog: no events ") and "'nope'" in result.stderr
        return
    assert result.exit_code == 0, result.output
    assert parse(result.stdout, fmt) == reference(records, **filters)


def test_a_correlation_or_seq_range_that_matches_nothing_is_an_empty_answer(recorded: RecordedLog) -> None:
    for args in (["--correlation", "x"], ["--from-seq", "100000"]):
        outputs = {fmt: invoke("query", recorded.path, *args, "--format", fmt) for fmt in ("table", "json", "jsonl", "csv")}
        assert all(r.exit_code == 0 for r in outputs.values())
        assert outputs["table"].stdout == "no events match\n"
        assert json.loads(outputs["json"].stdout) == []
        assert outputs["jsonl"].stdout == ""
        assert outputs["csv"].stdout.strip() == "seq,time,ts,run,actor,kind,version,correlation,payload"


@pytest.fixture
def timed_log(tmp_path: Path) -> Path:
    """Ten events one second apart, from 2027-01-15T08:00:00Z (Unix 1800000000)."""
    path = tmp_path / "timed.db"
    with EventStore(path) as store:
        for i in range(10):
            store.append(GaugeSet(name="t6.g", value=float(i)), actor="metrics", ts=1_800_000_000.0 + i)
    return path


@pytest.mark.parametrize(
    "since, until",
    [
        ("1800000003", "1800000006"),
        ("1800000003.0", "1800000006.5"),
        ("2027-01-15T08:00:03Z", "2027-01-15T08:00:06Z"),
        ("2027-01-15T08:00:03z", "2027-01-15T08:00:06.000Z"),
        ("2027-01-15T10:00:03+02:00", "2027-01-15T03:00:06-05:00"),
        ("2027-01-15T08:00:03", "2027-01-15T08:00:06"),
        ("2027-01-15 08:00:03", "2027-01-15T08:00:06.999"),
    ],
)
def test_times_are_accepted_as_iso_8601_and_unix_seconds(timed_log: Path, since: str, until: str) -> None:
    result = invoke("query", timed_log, "--since", since, "--until", until, "--format", "json")
    assert result.exit_code == 0, result.output
    assert [row["seq"] for row in json.loads(result.stdout)] == [4, 5, 6, 7]
    tail = invoke("tail", timed_log, "--since", since, "--until", until, "-n", "2", "--format", "json")
    assert [row["seq"] for row in json.loads(tail.stdout)] == [6, 7]
    stats = invoke("stats", timed_log, "--as-of", until, "--json")
    assert json.loads(stats.stdout)["metrics"]["gauges"] == {"t6.g": 6.0}


# -- runs ----------------------------------------------------------------------------------------------


def test_runs_lists_every_run_with_its_numbers(recorded: RecordedLog) -> None:
    records = read(recorded.path)
    expected = []
    for run in (RUN_ONE, RUN_TWO):
        mine = [r for r in records if r.run == run]
        expected.append({
            "run": run, "start": min(r.ts for r in mine), "end": max(r.ts for r in mine), "events": len(mine),
            "failures": sum(r.kind == "failure.raised" for r in mine), "escalations": 0, "stopped": "clean",
        })
    result = invoke("runs", recorded.path, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == expected
    assert [e["failures"] for e in expected] == [5, 1]
    console = run_cli("runs", recorded.path)
    assert console.returncode == 0, console.stderr
    lines = console.stdout.splitlines()
    assert lines[0].split() == ["run", "start", "end", "events", "failures", "stopped"]
    assert lines[2].split()[0] == RUN_ONE and lines[3].split()[0] == RUN_TWO
    assert lines[2].split()[1] == format_time(expected[0]["start"]) and lines[3].split()[3:] == ["15", "1", "clean"]
    assert json.loads(run_cli("runs", recorded.path, "--json").stdout) == expected


def test_runs_of_a_run_that_never_stopped(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    with EventStore(path, run="t6-killed") as store:
        store.append(GaugeSet(name="t6.g", value=1.0), ts=1000.0)
        store.append(GaugeSet(name="t6.g", value=2.0), ts=1002.0)
    result = invoke("runs", path, "--json")
    assert json.loads(result.stdout) == [{"run": "t6-killed", "start": 1000.0, "end": 1002.0, "events": 2,
                                          "failures": 0, "escalations": 0, "stopped": None}]
    assert "still running or killed" in invoke("runs", path).stdout


# -- tail ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lines", [1, 3, 10, 25, 1000])
def test_tail_prints_the_newest_events(recorded: RecordedLog, lines: int) -> None:
    seqs = [r.seq for r in read(recorded.path)]
    result = invoke("tail", recorded.path, "-n", lines, "--format", "json")
    assert result.exit_code == 0
    assert [row["seq"] for row in json.loads(result.stdout)] == seqs[-lines:]
    failures = [r.seq for r in read(recorded.path, kinds=["failure.raised"])]
    filtered = invoke("tail", recorded.path, "--kind", "failure.raised", "--lines", lines, "--format", "jsonl")
    assert [row["seq"] for row in jsonl(filtered.stdout)] == failures[-lines:]


def test_tail_through_the_console_script(recorded: RecordedLog) -> None:
    seqs = [r.seq for r in read(recorded.path)]
    result = run_cli("tail", recorded.path, "-n", "4")
    assert result.returncode == 0, result.stderr
    assert parse(result.stdout, "table") == seqs[-4:]
    default = run_cli("tail", recorded.path, "--format", "csv")
    assert parse(default.stdout, "csv") == seqs[-10:]
    alpha = run_cli("tail", recorded.path, "--actor", "alpha", "--run", RUN_ONE, "-n", "2", "--format", "json")
    assert [row["seq"] for row in json.loads(alpha.stdout)] == [
        r.seq for r in read(recorded.path, actor="alpha", run=RUN_ONE)
    ][-2:]


# -- verify --------------------------------------------------------------------------------------------


def test_verify_passes_an_intact_log_and_names_the_first_tampered_seq(recorded: RecordedLog, tmp_path: Path) -> None:
    ok = invoke("verify", recorded.path)
    assert ok.exit_code == 0 and ok.stdout.startswith("ok: ")
    console = run_cli("verify", recorded.path, "--json")
    assert console.returncode == 0 and json.loads(console.stdout)["ok"] is True
    bad_seq = read(recorded.path, kinds=["failure.raised"])[2].seq
    tampered = tmp_path / "tampered.db"
    shutil.copyfile(recorded.path, tampered)
    conn = sqlite3.connect(tampered, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER events_refuse_update")
        conn.execute("UPDATE events SET actor = 'mallory' WHERE seq = ?", (bad_seq,))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    bad = invoke("verify", tampered)
    assert bad.exit_code == 1
    assert "FAILED" in bad.stdout and f"seq {bad_seq}" in bad.stdout
    console = run_cli("verify", tampered, "--json")
    assert console.returncode == 1
    report = json.loads(console.stdout)
    assert report["ok"] is False and report["first_bad_seq"] == bad_seq
    assert any("events_refuse_update" in p for p in report["problems"])
