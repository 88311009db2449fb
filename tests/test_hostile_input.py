"""Hostile input: garbage stored in a real log by a foreign writer, damaged files, random command
lines, SQL injection through every filter, huge and deeply nested payloads, tampered rows.

Whatever the input, a strict read names the seq of the event it cannot read, a lenient read
yields placeholders of the declared types, replay and every command fail (if they must) with
one clear line naming the event or the file, never a traceback, and nothing changes the log.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from actorlog.events import (
    ActorlogError,
    CounterIncremented,
    DecodeError,
    EncodeError,
    Event,
    FailureAssessed,
    FailureRaised,
    GaugeSet,
    HistogramObserved,
    MeasurementsDropped,
    MessageReceived,
    OperationTimed,
    PluginRegistered,
    PluginStarted,
    PluginStarting,
    PluginStopped,
    RecoveryDecided,
    RunStarted,
    RunStopped,
    UnknownEvent,
    default_codec,
    default_registry,
)
from actorlog.replay import Statistics
from actorlog.replay.rebuild import rebuild, take_snapshot
from actorlog.store import EventFilter, EventStore, StoreReadError, row_hash
from actorlog.store.records import EventRecord
from fault_helpers import insert_raw
from log_helpers import ACTORLOG_CLI, sha256_of
from replay_helpers import assert_one_line_error, events_rows, invoke
from strategies import JSON_VALUES

T0 = 1_790_000_000.0


def base_events() -> list[tuple[Event, str, str | None]]:
    """(event, actor, correlation): every family the statistics fold, as a running system logs them."""
    return [
        (RunStarted(pid=1, host="h", python="3.11", actorlog_version="0"), "system", None),
        (PluginRegistered(plugin="w", class_path="t8_missing_module:Worker", plugin_version="1.0"), "supervisor", None),
        (PluginStarting(plugin="w"), "supervisor", None),
        (PluginStarted(plugin="w"), "supervisor", None),
        (MessageReceived(recipient="w", sender="app", message={"kind": "t8.fill", "n": 1}, seed=7), "w", "c-1"),
        (FailureRaised(plugin="w", exc_type="builtins.ValueError", message="boom", traceback="tb", trigger_seq=5),
         "w", "c-1"),
        (FailureAssessed(plugin="w", exc_type="builtins.ValueError", message="boom", severity="medium",
                         failed_at=T0 + 5, failure_seq=6), "errors", "c-1"),
        (RecoveryDecided(plugin="w", action="continue", severity="medium", failure_seq=6), "errors", "c-1"),
        (CounterIncremented(name="calls", value=2.0), "metrics", None),
        (GaugeSet(name="queue", value=3.0, tags={"q": "a"}), "metrics", None),
        (HistogramObserved(name="latency", value=0.25), "metrics", None),
        (OperationTimed(name="op", value=0.1, ok=False), "metrics", None),
        (MeasurementsDropped(count=2, reason="overload"), "metrics", None),
        (PluginStopped(plugin="w"), "supervisor", None),
        (RunStopped(), "system", None),
    ]


BASE = len(base_events())


def write_base(path: Path) -> None:
    with EventStore(path, run="t8-base") as store:
        for i, (event, actor, correlation) in enumerate(base_events()):
            store.append(event, actor=actor, correlation=correlation, ts=T0 + i)


@pytest.fixture(scope="module")
def base_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile-base") / "base.db"
    write_base(path)
    return path


def copy_of(base: Path, directory: Path) -> Path:
    path = directory / f"copy-{uuid.uuid4().hex[:10]}.db"
    shutil.copyfile(base, path)
    return path


# -- raw rows ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AsText:
    """Bytes to store as TEXT exactly as they are (not necessarily UTF-8)."""

    data: bytes


def insert_row(path: Path, row: Sequence[Any]) -> None:
    """Insert one row whose values may be `AsText` (stored with CAST(? AS TEXT))."""
    marks = ", ".join("CAST(? AS TEXT)" if isinstance(value, AsText) else "?" for value in row)
    values = [value.data if isinstance(value, AsText) else value for value in row]
    insert_raw(path, [values], f"INSERT INTO events (seq, ts, run, actor, kind, version, correlation, payload, hash) "
                               f"VALUES ({marks})")


def assert_declared_types(record: EventRecord) -> None:
    """Every record a read yields holds the types EventRecord declares, whatever the row held."""
    assert type(record.seq) is int and type(record.ts) is float and type(record.version) is int
    for value in (record.run, record.actor, record.kind, record.hash):
        assert type(value) is str
    assert record.correlation is None or type(record.correlation) is str
    registered = default_registry.is_registered(type(record.event))
    assert registered or type(record.event) is UnknownEvent, type(record.event)
    if type(record.event) is UnknownEvent:
        assert record.event.reason and type(record.event.kind) is str and type(record.event.version) is int


def assert_names_seq(error: BaseException, seq: int) -> None:
    assert isinstance(error, ActorlogError), f"{type(error).__name__}: {error}"
    assert f"seq {seq}" in str(error), str(error)


# -- strategies for what a foreign writer can store -----------------------------------------------------------

REGISTERED_EVENTS = [cls for cls in default_registry.types() if issubclass(cls, Event)]
KINDS = sorted(default_registry.kind_and_version_of(cls)[0] for cls in REGISTERED_EVENTS)
FIELDS = {
    default_registry.kind_and_version_of(cls)[0]: [f.name for f in msgspec.structs.fields(cls)]
    for cls in REGISTERED_EVENTS
}
STATISTICS_KINDS = sorted(Statistics().kinds)

NON_UTF8 = st.binary(min_size=1, max_size=12).map(lambda b: b + b"\xff\xfe")

TEXT_VALUES = st.one_of(
    st.text(max_size=16),
    NON_UTF8.map(AsText),
    st.binary(max_size=12),  # a BLOB
)


def nested(depth: int, leaf: str = "0") -> str:
    return "[" * depth + leaf + "]" * depth


@st.composite
def payloads(draw: st.DrawFn, kind: Any) -> Any:
    tag = kind if isinstance(kind, str) else "x"
    fields = FIELDS.get(tag, ["a", "b"])
    shape = draw(st.sampled_from(["object", "object", "object", "json", "text", "blob", "non-utf8", "deep", "number"]))
    if shape == "object":  # the right tag, its fields holding anything JSON can
        body = {name: draw(JSON_VALUES | st.integers()) for name in draw(st.lists(st.sampled_from(fields), max_size=4))}
        return json.dumps({"kind": tag, **body})
    if shape == "json":
        return json.dumps(draw(JSON_VALUES))
    if shape == "text":
        return draw(st.text(max_size=40))
    if shape == "blob":
        return draw(st.binary(max_size=40))
    if shape == "non-utf8":
        return AsText(b'{"kind":"' + tag.encode() + b'","' + draw(NON_UTF8) + b'":1}')
    if shape == "deep":
        depth = draw(st.integers(min_value=1, max_value=20_000))
        field = draw(st.sampled_from(fields))
        return '{"kind":"%s","%s":%s}' % (tag, field, nested(depth))
    big = draw(st.sampled_from(["1e400", "-1e400", "1" * 400, "-0", "1e-400", "9223372036854775808"]))
    return '{"kind":"%s","%s":%s}' % (tag, draw(st.sampled_from(fields)), big)


@st.composite
def garbage_rows(draw: st.DrawFn, seq: int) -> list[Any]:
    kind = draw(st.one_of(st.sampled_from(KINDS), st.sampled_from(STATISTICS_KINDS), TEXT_VALUES))
    version = draw(st.one_of(
        st.sampled_from([1, 1, 0, 2, -1]), st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False), st.text(max_size=8), st.binary(max_size=8),
    ))
    ts = draw(st.one_of(
        st.floats(min_value=0, max_value=4e9), st.floats(allow_nan=False), st.text(max_size=8), st.binary(max_size=8),
    ))
    actor = draw(st.one_of(st.sampled_from(["metrics", "errors", "supervisor", "w"]), TEXT_VALUES))
    correlation = draw(st.one_of(st.none(), TEXT_VALUES))
    digest = draw(st.one_of(st.text(max_size=64), st.binary(max_size=8)))
    return [seq, ts, draw(TEXT_VALUES), actor, kind, version, correlation, draw(payloads(kind)), digest]


def follower(seq: int) -> list[Any]:
    """A well-formed row after the garbage one (its hash cannot be right: the chain is broken before it)."""
    _, _, payload = default_codec.encode(PluginStarted(plugin="after"))
    return [seq, T0 + 100, "t8-base", "supervisor", "plugin.started", 1, None, payload.decode(), "0" * 64]


# -- garbage rows in a real log --------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_garbage_rows_are_named_by_seq_or_read_as_placeholders_and_replay_says_which_event(
    base_log: Path, tmp_path: Path, data: st.DataObject
) -> None:
    path = copy_of(base_log, tmp_path)
    bad = BASE + 1
    row = data.draw(garbage_rows(bad), label="row")
    try:
        insert_row(path, row)
    except sqlite3.IntegrityError:
        assume(False)  # NOT NULL refuses NULL (and NaN, which SQLite stores as NULL): nothing stored
    insert_row(path, follower(bad + 1))
    before = sha256_of(path)

    with EventStore.open_readonly(path) as reader:
        strict: list[EventRecord] = []
        try:
            for record in reader.events():
                strict.append(record)
        except Exception as error:  # noqa: BLE001 - judged below
            assert_names_seq(error, bad)
            assert [r.seq for r in strict] == list(range(1, BASE + 1)), "the events before it were read"
        for record in strict:
            assert_declared_types(record)

        lenient = list(reader.events(lenient=True))
        assert [r.seq for r in lenient] == list(range(1, bad + 2))
        for record in lenient:
            assert_declared_types(record)
        assert [r.event for r in lenient[:BASE]] == [event for event, _, _ in base_events()]
        assert lenient[-1].event == PluginStarted(plugin="after")

        report = reader.verify()
        assert not report.ok and report.first_bad_seq == bad and report.events_checked == bad + 1

        try:
            statistics = rebuild(reader)
        except Exception as error:  # noqa: BLE001 - judged below
            assert_names_seq(error, bad)
        else:
            assert statistics.position == bad + 1

    for args in (["stats", path, "--json"], ["query", path, "--format", "json"], ["tail", path, "-n", "3"],
                 ["verify", path], ["query", path, "--kind", "plugin.started", "--format", "csv"]):
        result = invoke(*args)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args[0], result.exception)
        assert result.exit_code in (0, 1, 2), (args, result.output)
        assert "Traceback" not in result.output
        if result.exit_code == 2:
            line = assert_one_line_error(result.exit_code, result.stdout, result.stderr)
            assert f"seq {bad}" in line, line
        if args[1:4] == [path, "--format", "json"]:
            assert result.exit_code == 0 and [r["seq"] for r in json.loads(result.stdout)] == list(range(1, bad + 2))
    assert invoke("verify", path).exit_code == 1
    assert sha256_of(path) == before


@pytest.mark.parametrize("column", ["payload", "kind", "run", "actor"])
def test_text_that_is_not_utf8_is_read_with_replacement_characters_and_named_by_verify(
    base_log: Path, tmp_path: Path, column: str
) -> None:
    path = copy_of(base_log, tmp_path)
    bad = BASE + 1
    values = {"payload": AsText(b'{"kind":"plugin.started","plugin":"caf\xe9"}'), "kind": AsText(b"plugin.\xffstarted"),
              "run": AsText(b"run-\xff"), "actor": AsText(b"\xfe\xffactor")}
    row: list[Any] = [bad, T0 + 50, "t8-base", "supervisor", "plugin.started", 1, None,
                      '{"kind":"plugin.started","plugin":"x"}', "h"]
    row[["seq", "ts", "run", "actor", "kind", "version", "correlation", "payload", "hash"].index(column)] = values[column]
    insert_row(path, row)
    before = sha256_of(path)
    with EventStore.open_readonly(path) as reader:
        records = list(reader.events(lenient=True))
        assert len(records) == bad
        odd = records[-1]
        assert_declared_types(odd)
        assert "\ufffd" in (odd.kind + odd.run + odd.actor + json.dumps(msgspec.to_builtins(odd.event), ensure_ascii=False))
        if column == "kind":
            assert isinstance(odd.event, UnknownEvent)
            with pytest.raises(ActorlogError, match=f"seq {bad}"):
                list(reader.events())
        else:
            assert [r.event for r in reader.events()][-1] == (
                PluginStarted(plugin="caf\ufffd") if column == "payload" else PluginStarted(plugin="x")
            )
        report = reader.verify()
        assert report.first_bad_seq == bad
        assert rebuild(reader).position == bad
    query = invoke("query", path, "--format", "jsonl")
    assert query.exit_code == 0 and len(query.stdout.splitlines()) == bad
    assert invoke("verify", path).exit_code == 1
    assert sha256_of(path) == before


@pytest.mark.parametrize("where", ["unknown-kind", "any-field", "typed-field", "upcast"])
def test_a_payload_nested_ten_thousand_levels_deep_is_a_clear_error_not_a_recursion_crash(
    base_log: Path, tmp_path: Path, where: str
) -> None:
    path = copy_of(base_log, tmp_path)
    bad = BASE + 1
    deep = nested(10_000)
    kind, version, payload = {
        "unknown-kind": ("t8.nobody", 1, deep),
        "any-field": ("message.received", 1,
                      '{"kind":"message.received","recipient":"w","sender":"app","message":{"n":%s}}' % deep),
        "typed-field": ("plugin.started", 1, '{"kind":"plugin.started","plugin":%s}' % deep),
        "upcast": ("failure.assessed", 0, '{"kind":"failure.assessed","plugin":%s}' % deep),
    }[where]
    insert_row(path, [bad, T0 + 50, "t8-base", "w", kind, version, None, payload, "h"])
    before = sha256_of(path)
    with EventStore.open_readonly(path) as reader:
        with pytest.raises(ActorlogError) as caught:
            list(reader.events())
        assert_names_seq(caught.value, bad)
        if where in ("any-field", "upcast"):
            assert "nested too deeply" in str(caught.value)
        placeholder = list(reader.events(lenient=True))[-1].event
        assert isinstance(placeholder, UnknownEvent) and placeholder.payload in (deep, payload)
        assert reader.verify().first_bad_seq == bad
        try:
            rebuild(reader)
        except ActorlogError as error:
            assert_names_seq(error, bad)
    for args in (["query", path, "--format", "json"], ["query", path], ["tail", path, "--format", "jsonl"],
                 ["stats", path], ["verify", path]):
        result = invoke(*args)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args[0], result.exception)
        assert result.exit_code in (0, 1, 2) and "Traceback" not in result.output
    assert sha256_of(path) == before


def test_an_event_nested_too_deeply_is_refused_when_appended(log_path: Path) -> None:
    value: Any = 0
    for _ in range(10_000):
        value = [value]
    with EventStore(log_path) as store:
        with pytest.raises(EncodeError, match="nested"):
            store.append(MessageReceived(recipient="w", sender="app", message={"n": value}))
        store.append(PluginStarted(plugin="after"))
        assert store.flush() == 1


def test_nesting_around_the_recursion_limit_never_crashes_a_command(base_log: Path, tmp_path: Path) -> None:
    """Shallow payloads decode and deep ones are refused; in the few levels between, where decoding
    succeeds but printing goes deeper into the stack, no command may crash either. Every depth
    around the limit is tried (hypothesis raises the recursion limit while it runs a test, which
    moves that window, so this is a plain sweep)."""
    path = copy_of(base_log, tmp_path)
    depths = range(800, 1100)
    rows = []
    for i, depth in enumerate(depths):
        payload = '{"kind":"message.received","recipient":"w","sender":"app","message":{"n":%s}}' % nested(depth)
        rows.append([BASE + 1 + i, T0 + 50, "t8-base", "w", "message.received", 1, None, payload, "h"])
    insert_raw(path, rows)
    # --format json is left out: indenting a deep payload costs time quadratic in its depth
    for args in (["query", path, "--format", "jsonl"], ["query", path, "--format", "csv"],
                 ["tail", path, "-n", str(len(depths))]):
        result = invoke(*args)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args[2:], result.exception)
        if result.exit_code != 0:
            assert_one_line_error(result.exit_code, "", result.stderr)


# -- huge payloads -----------------------------------------------------------------------------------------------


def test_multi_megabyte_payloads_round_trip_through_the_store_and_every_command(log_path: Path) -> None:
    big = "x" * (5 * 1024 * 1024)
    wide = {"items": list(range(200_000))}
    with EventStore(log_path, max_payload_bytes=8 * 1024 * 1024) as store:
        store.append(PluginStarted(plugin=big))
        store.append(MessageReceived(recipient="w", sender="app", message=wide))
        store.append(CounterIncremented(name="after", value=1.0), actor="metrics")
    with EventStore.open_readonly(log_path) as reader:
        records = list(reader.events())
        assert reader.verify().ok
    assert records[0].event == PluginStarted(plugin=big)
    assert records[1].event.message == wide
    query = invoke("query", log_path, "--format", "json")
    assert query.exit_code == 0 and json.loads(query.stdout)[0]["payload"]["plugin"] == big
    table = invoke("query", log_path)
    assert table.exit_code == 0 and max(len(line) for line in table.stdout.splitlines()) < 1200, "the table clips payloads"
    stats = invoke("stats", log_path, "--json")
    assert stats.exit_code == 0 and json.loads(stats.stdout)["position"] == 3


def test_a_huge_foreign_row_with_a_valid_hash_is_read_and_verified(base_log: Path, tmp_path: Path) -> None:
    """A 6 MB row added by a foreign writer that knows the chain: nothing breaks on its size."""
    path = copy_of(base_log, tmp_path)
    with EventStore.open_readonly(path) as reader:
        previous = list(reader.events())[-1].hash
    rows = []
    for seq, payload in ((BASE + 1, json.dumps({"kind": "plugin.started", "plugin": "y" * 6_000_000})),
                         (BASE + 2, "z" * 6_000_000)):
        digest = row_hash(previous, seq, T0 + 60, "foreign", "w", "plugin.started", 1, None, payload)
        rows.append([seq, T0 + 60, "foreign", "w", "plugin.started", 1, None, payload, digest])
        previous = digest
    insert_raw(path, rows)
    with EventStore.open_readonly(path) as reader:
        assert reader.verify().ok
        with pytest.raises(DecodeError, match=f"seq {BASE + 2}"):
            list(reader.events())
        records = list(reader.events(lenient=True))
    assert records[-2].event == PluginStarted(plugin="y" * 6_000_000)
    assert isinstance(records[-1].event, UnknownEvent) and records[-1].event.payload == "z" * 6_000_000
    stats = invoke("stats", path)
    assert_one_line_error(stats.exit_code, stats.stdout, stats.stderr)
    assert f"seq {BASE + 2}" in stats.stderr and len(stats.stderr) < 2000, "the error does not repeat the payload"


@pytest.mark.parametrize("column", ["kind", "version", "ts", "run"])
def test_errors_quote_huge_stored_values_briefly(base_log: Path, tmp_path: Path, column: str) -> None:
    """An error names the event and shows what is wrong with it, not 100 kB of a foreign value."""
    path = copy_of(base_log, tmp_path)
    bad = BASE + 1
    huge = "k" * 100_000
    row: list[Any] = [bad, T0 + 50, "t8-base", "metrics", "counter.incremented", 1, None,
                      '{"kind":"counter.incremented","name":"c","value":1.0}', "h"]
    row[{"kind": 4, "version": 5, "ts": 1, "run": 2}[column]] = huge if column != "run" else huge.encode()
    insert_row(path, row)
    with EventStore.open_readonly(path) as reader:
        with pytest.raises(ActorlogError) as caught:
            list(reader.events())
        assert_names_seq(caught.value, bad)
        assert len(str(caught.value)) < 1000
    for args in (["stats", path], ["query", path, "--kind", huge[:10], "--format", "json"]):
        result = invoke(*args)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert len(result.stderr) < 1000 and "Traceback" not in result.output


# -- damaged files -------------------------------------------------------------------------------------------------


def damaged_log(directory: Path) -> Path:
    """A log with one page of garbage in the middle of its events (a bad sector, a botched copy)."""
    path = directory / "damaged.db"
    with EventStore(path, run="damaged") as store:
        store.append_many([CounterIncremented(name="c", value=float(i)) for i in range(6000)], actor="metrics")
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(size // 2 // 4096 * 4096)
        handle.write(bytes(range(256)) * 16)
    return path


def test_a_log_damaged_in_the_middle_is_a_clear_error_naming_the_file(tmp_path: Path) -> None:
    path = damaged_log(tmp_path)
    before = sha256_of(path)
    with EventStore.open_readonly(path) as reader:
        for read in (lambda: list(reader.events()), lambda: rebuild(reader)):
            with pytest.raises(StoreReadError) as caught:
                read()
            assert str(path) in str(caught.value) and "damaged" in str(caught.value) and ".recover" in str(caught.value)
        report = reader.verify()  # for verify, a damaged file is a finding: the answer is no
        assert not report.ok and report.file_problems
        assert str(path) in report.problems[0] and "damaged" in report.problems[0] and ".recover" in report.problems[0]
    for args in (["stats", path], ["query", path, "--format", "jsonl"]):
        result = invoke(*args)
        line = assert_one_line_error(result.exit_code, result.stdout if args[0] != "query" else "", result.stderr)
        assert path.name in line and "damaged" in line
    result = invoke("verify", path)
    assert result.exit_code == 1 and "damaged" in result.stdout and path.name in result.stdout, result.output
    assert sha256_of(path) == before


@pytest.mark.parametrize("damage", ["damaged-page", "text-ts"])
def test_runs_reports_a_damaged_or_tampered_log_in_one_line(base_log: Path, tmp_path: Path, damage: str) -> None:
    if damage == "text-ts":
        path = copy_of(base_log, tmp_path)
        insert_row(path, [BASE + 1, "yesterday", "t8-base", "w", "plugin.started", 1, None, "{}", "h"])
    else:
        path = damaged_log(tmp_path)
    result = invoke("runs", path)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 2)


# -- snapshots are a cache: garbage in them is skipped --------------------------------------------------------------


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(
    st.one_of(st.just(Statistics.version), st.integers(-(2**63), 2**63 - 1), st.text(max_size=5), st.binary(max_size=5)),
    st.one_of(st.integers(min_value=0, max_value=BASE), st.text(max_size=5), st.binary(max_size=5)),
    st.one_of(st.just(""), st.text(max_size=5)),
    st.one_of(JSON_VALUES.map(json.dumps), st.text(max_size=20), st.binary(max_size=10),
              st.just('{"metrics": {"max_history": 1000}}'), st.integers(1, 5000).map(lambda d: nested(d, "{}")),
              st.builds(lambda d: '{"metrics":{"max_history":1000},"x":%s}' % nested(d), st.integers(1, 5000))),
), min_size=1, max_size=4))
def test_garbage_snapshots_are_skipped_never_misread(base_log: Path, tmp_path: Path, rows: list[tuple[Any, ...]]) -> None:
    path = copy_of(base_log, tmp_path)
    expected = invoke("stats", path, "--json", "--no-snapshots")
    assert expected.exit_code == 0
    with EventStore(path) as store:
        take_snapshot(store)  # creates the table
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER snapshots_no_delete")  # the snapshots table is append-only too
        conn.execute("DELETE FROM snapshots")
        conn.executemany(
            "INSERT INTO snapshots (projection, version, position, run, created_at, state) VALUES ('statistics', ?, ?, ?, 0, ?)",
            rows,
        )
    finally:
        conn.close()
    result = invoke("stats", path, "--json")
    assert result.exit_code == 0, result.output
    assert result.stdout == expected.stdout


# -- filters: injection, wrong types ------------------------------------------------------------------------------

INJECTIONS = [
    "x' OR '1'='1", "'; DROP TABLE events; --", "%", "_", "*", '" OR ""="', "1; DELETE FROM events",
    "' UNION SELECT key, value, 1, 1, 1, 1, 1, 1, 1 FROM meta --", "\\", "plugin.started' --", "NULL", "",
]
FILTER_TEXT = st.one_of(st.sampled_from(INJECTIONS), st.text(max_size=12))


@pytest.fixture(scope="module")
def injection_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs, actors and correlations that are the injection strings themselves, beside plain ones."""
    path = tmp_path_factory.mktemp("injection") / "injection.db"
    for i, text in enumerate(["plain", *INJECTIONS]):
        with EventStore(path, run=text) as store:
            store.append(PluginStarted(plugin=text), actor=text, correlation=text, ts=T0 + i)
            store.append(CounterIncremented(name=text, value=float(i)), actor="metrics", ts=T0 + i + 0.5)
    return path


def expected_seqs(records: list[EventRecord], selection: EventFilter) -> list[int]:
    return [r.seq for r in records if selection.matches(r.seq, r.ts, r.run, r.actor, r.kind, r.correlation)]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    column=st.sampled_from(["run", "actor", "correlation", "kinds"]),
    text=FILTER_TEXT,
    other=st.none() | st.tuples(st.sampled_from(["run", "actor", "correlation"]), FILTER_TEXT),
)
def test_every_text_filter_is_a_bound_parameter_matching_exactly_and_changing_nothing(
    injection_log: Path, column: str, text: str, other: tuple[str, str] | None
) -> None:
    """Each filter takes the text literally, as ``=`` does: ``%`` and ``_`` are not wildcards,
    quotes and comments are text, and the injection strings stored in the log match themselves."""
    before = sha256_of(injection_log)
    filters: dict[str, Any] = {column: (text,) if column == "kinds" else text}
    if other is not None and other[0] != column:
        filters[other[0]] = other[1]
    selection = EventFilter(**filters)
    with EventStore.open_readonly(injection_log, chunk_size=3) as reader:
        everything = list(reader.events())
        expected = expected_seqs(everything, selection)
        assert [r.seq for r in reader.select(selection)] == expected
        assert [r.seq for r in reader.events(**filters)] == expected
    if column != "kinds" and text in INJECTIONS[:-1] and other is None:
        assert expected, f"{text!r} is stored as a {column} and matches itself"
    args: list[Any] = ["query", injection_log, "--format", "json"]
    for name, value in filters.items():
        args += ["--kind", value[0]] if name == "kinds" else [f"--{name}", value]
    result = invoke(*args)
    field = {"kinds": "kind", "run": "run", "actor": "actor"}
    absent = [name for name, value in filters.items() if name in field
              and not any(getattr(r, field[name]) == (value[0] if name == "kinds" else value) for r in everything)]
    if absent:  # a run, actor or kind no event of the log has: said so, exit 1
        assert result.exit_code == 1 and result.stdout == "", result.output
        assert result.stderr.startswith("actorlog: no events "), result.stderr
    else:
        assert result.exit_code == 0, result.output
        assert [row["seq"] for row in json.loads(result.stdout)] == expected
    assert sha256_of(injection_log) == before


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    from_seq=st.none() | st.integers(-5, 40) | st.integers(), to_seq=st.none() | st.integers(-5, 40) | st.integers(),
    since=st.none() | st.floats(T0 - 5, T0 + 30) | st.floats(allow_nan=False),
    until=st.none() | st.floats(T0 - 5, T0 + 30) | st.floats(allow_nan=False),
    kinds=st.none() | st.lists(st.sampled_from(["plugin.started", "counter.incremented", "%"]), max_size=2),
)
def test_seq_and_time_bounds_select_exactly_the_events_between_them(
    injection_log: Path, from_seq: int | None, to_seq: int | None, since: float | None, until: float | None,
    kinds: list[str] | None,
) -> None:
    selection = EventFilter(from_seq=from_seq, to_seq=to_seq, since=since, until=until,
                            kinds=tuple(kinds) if kinds is not None else None)
    with EventStore.open_readonly(injection_log, chunk_size=4) as reader:
        expected = expected_seqs(list(reader.events()), selection)
        assert [r.seq for r in reader.select(selection)] == expected
        assert [r.seq for r in reader.events(from_seq=from_seq, to_seq=to_seq, since=since, until=until,
                                             kinds=kinds)] == expected


@pytest.mark.parametrize(("filters", "name"), [
    ({"from_seq": "1 OR 1=1"}, "from_seq"),
    ({"to_seq": 2.5}, "to_seq"),
    ({"from_seq": True}, "from_seq"),
    ({"since": "yesterday"}, "since"),
    ({"until": b"2026"}, "until"),
    ({"since": float("nan")}, "since"),
    ({"until": 10**400}, "until"),
    ({"run": 1}, "run"),
    ({"actor": b"metrics"}, "actor"),
    ({"correlation": ["c-1"]}, "correlation"),
    ({"kinds": [1, 2]}, "kinds"),
    ({"kinds": b"plugin.started"}, "kinds"),
    ({"actor": "\udcff"}, "actor"),
])
def test_a_filter_of_the_wrong_type_is_refused_naming_it(injection_log: Path, filters: dict[str, Any], name: str) -> None:
    before = sha256_of(injection_log)
    with EventStore.open_readonly(injection_log) as reader:
        with pytest.raises((TypeError, ValueError)) as caught:
            list(reader.events(**filters))
        assert f"the {name} filter" in str(caught.value)
    assert sha256_of(injection_log) == before


def test_seq_bounds_beyond_64_bits_select_what_they_say(injection_log: Path) -> None:
    with EventStore.open_readonly(injection_log) as reader:
        total = reader.count()
        assert list(reader.events(from_seq=10**30)) == []
        assert len(list(reader.events(to_seq=10**30))) == total
        assert len(list(reader.events(from_seq=-(10**30)))) == total
        assert list(reader.events(to_seq=-(10**30))) == []
    for args, rows in ((["--from-seq", str(10**30)], 0), (["--to-seq", str(10**30)], total)):
        result = invoke("query", injection_log, "--format", "json", *args)
        assert result.exit_code == 0 and len(json.loads(result.stdout)) == rows, result.output
    stats = invoke("stats", injection_log, "--json", "--until-seq", str(10**30))
    assert stats.exit_code == 0 and json.loads(stats.stdout)["position"] == total, stats.output


# -- tampering -------------------------------------------------------------------------------------------------------

EDITABLE = {
    "ts": st.floats(min_value=0, max_value=4e9),
    "run": st.text(max_size=8),
    "actor": st.text(max_size=8),
    "kind": st.sampled_from(KINDS),
    "version": st.integers(min_value=-5, max_value=5),
    "correlation": st.none() | st.text(max_size=8),
    "payload": st.sampled_from(['{"kind":"plugin.started","plugin":"evil"}', "{}", "x"]),
    "hash": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_verify_names_the_first_row_edited_or_following_a_deleted_one(
    base_log: Path, tmp_path: Path, data: st.DataObject
) -> None:
    path = copy_of(base_log, tmp_path)
    original = events_rows(path)
    edits = data.draw(st.lists(st.tuples(st.integers(1, BASE), st.sampled_from(sorted(EDITABLE))), max_size=4))
    deletions = data.draw(st.sets(st.integers(1, BASE - 1), max_size=2))
    statements: list[tuple[str, list[Any]]] = [("DROP TRIGGER events_refuse_update", []),
                                               ("DROP TRIGGER events_refuse_delete", [])]
    for seq, column in edits:
        statements.append((f"UPDATE events SET {column} = ? WHERE seq = ?", [data.draw(EDITABLE[column]), seq]))
    for seq in deletions:
        statements.append(("DELETE FROM events WHERE seq = ?", [seq]))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for sql, params in statements:
            conn.execute(sql, params)
    finally:
        conn.close()

    after = {row[0]: row for row in events_rows(path)}
    by_seq = {row[0]: row for row in original}
    remaining = sorted(after)
    expected = None
    for index, seq in enumerate(remaining):
        predecessor_lost = (remaining[index - 1] if index else 0) != seq - 1
        if after[seq] != by_seq[seq] or predecessor_lost:
            expected = seq
            break

    with EventStore.open_readonly(path) as reader:
        report = reader.verify()
    assert not report.ok, "the triggers are gone"
    assert report.first_bad_seq == expected
    assert report.events_checked == len(remaining)
    result = invoke("verify", path)
    assert result.exit_code == 1 and "FAILED" in result.stdout
    if expected is not None:
        assert f"seq {expected}" in result.stdout


# -- random command lines ---------------------------------------------------------------------------------------------

OPTIONS = [
    "--run", "--actor", "--kind", "--since", "--until", "--correlation", "--from-seq", "--to-seq", "--limit",
    "--format", "--json", "--until-seq", "--as-of", "--recent", "--window", "--no-snapshots", "-n", "--lines",
    "--interval", "--import-path", "--help", "-h", "--version", "--", "-", "--colour",
]
VALUES = [
    "json", "jsonl", "csv", "table", "xml", "0", "1", "-1", "5", "99999999999999999999999", "1e999", "nan", "inf",
    "-inf", "1.5", "2026-11-24T10:00:00Z", "2027-13-45T99:00:00Z", "yesterday", "plugin.started", "metrics",
    "t8-base", "c-1", "' OR 1=1 --", "'; DROP TABLE events; --", "%", "", " ", "\t", "é🎉",
]
COMMANDS = ["stats", "query", "tail", "runs", "verify", "reproduce", "snapshot"]


def follows(argv: list[str]) -> bool:
    """Whether ``argv`` would make ``tail`` follow the log forever (--follow, or -f among short flags)."""
    return any(a == "--follow" or (a.startswith("-") and not a.startswith("--") and "f" in a) for a in argv)


@st.composite
def command_lines(draw: st.DrawFn, paths: list[str]) -> list[str]:
    argv = [draw(st.sampled_from(COMMANDS) | st.text(max_size=8))]
    tokens = draw(st.lists(st.one_of(st.sampled_from(OPTIONS), st.sampled_from(VALUES), st.text(max_size=10)),
                           max_size=7))
    position = draw(st.integers(0, len(tokens)))
    if draw(st.booleans()):
        tokens.insert(position, draw(st.sampled_from(paths)))
    argv += tokens
    assume(not follows(argv) and all("\x00" not in a for a in argv))
    return argv


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@pytest.fixture(scope="module")
def argv_dir(tmp_path_factory: pytest.TempPathFactory, base_log: Path) -> Path:
    directory = tmp_path_factory.mktemp("argv")
    shutil.copyfile(base_log, directory / "app.db")
    (directory / "notes.txt").write_text("not a database\n")
    (directory / "folder").mkdir()
    return directory


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_command_lines_exit_0_1_or_2_without_a_traceback(argv_dir: Path, data: st.DataObject) -> None:
    paths = ["app.db", "missing.db", "notes.txt", "folder", str(argv_dir / "app.db")]
    argv = data.draw(command_lines(paths), label="argv")
    rows = events_rows(argv_dir / "app.db")
    with working_directory(argv_dir):
        result = invoke(*argv)
    assert result.exception is None or isinstance(result.exception, SystemExit), (argv, repr(result.exception))
    assert result.exit_code in (0, 1, 2), (argv, result.exit_code, result.output)
    assert "Traceback" not in result.output, (argv, result.output)
    if result.exit_code == 2:
        assert result.stderr.startswith("actorlog: error:"), (argv, result.stderr)
        if not any("\n" in a or "\r" in a for a in argv):  # click quotes an argument as it is, line breaks too
            assert result.stderr.count("\n") == 1, (argv, result.stderr)
    after = events_rows(argv_dir / "app.db")
    assert after[: len(rows)] == rows, "no command changes an event"
    # only `snapshot` adds anything: the store's record of the snapshot's digest
    assert all(row[3] == "store" and row[4] == "snapshot.taken" for row in after[len(rows):]), after[len(rows):]
    assert sorted(p.name for p in argv_dir.iterdir() if not p.name.startswith("app.db")) == ["folder", "notes.txt"]


HOSTILE_ARGVS: list[list[str | bytes]] = [
    ["query", "{log}", "--actor", b"\xff\xfe"],
    ["query", "{log}", "--run", b"caf\xe9", "--format", "json"],
    [b"\xff", "{log}"],
    ["verify", b"/tmp/\xff\xfe-no-such.db"],
    ["stats", "{log}", "--as-of", b"\xff"],
    ["query", "{log}", "--kind", "x" * 100_000],
    ["tail", "{log}", "-n", "99999999999999999999"],
    ["query", "{log}", "--since", "nan"],
    ["verify", ""],
    ["stats", "-"],
    ["query", "--", "{log}"],
    ["reproduce", "{log}", "6"],
]


@pytest.mark.parametrize("argv", HOSTILE_ARGVS, ids=range(len(HOSTILE_ARGVS)))
def test_hostile_arguments_through_the_console_script(base_log: Path, tmp_path: Path, argv: list[str | bytes]) -> None:
    path = copy_of(base_log, tmp_path)
    args = [os.fsencode(str(path)) if a == "{log}" else (a if isinstance(a, bytes) else a.encode()) for a in argv]
    result = subprocess.run([os.fsencode(ACTORLOG_CLI), *args], capture_output=True, timeout=60, check=False, cwd=tmp_path)
    stdout, stderr = result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")
    assert result.returncode in (0, 1, 2), (argv, result.returncode, stderr)
    assert "Traceback" not in stdout + stderr, stderr
    if result.returncode == 2:
        assert_one_line_error(2, "", stderr)
    if argv[2:3] == ["--actor"]:
        assert result.returncode == 2 and "actor filter" in stderr, stderr
    assert events_rows(path) == events_rows(base_log)

