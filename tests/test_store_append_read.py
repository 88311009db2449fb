"""Appending to and reading from a real SQLite event log."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from log_helpers import sha256_of
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import FINITE_FLOATS, JSON_SCALARS

from actorlog.events import (
    DecodeError,
    Event,
    FailureRaised,
    GaugeSet,
    MessageReceived,
    PluginStarted,
    TypeRegistry,
    UnknownEvent,
    UnknownKindError,
)
from actorlog.store import EventRecord, EventStore, ReadOnlyError, StoreClosedError

# -- the equivalence property ----------------------------------------------------------------

RUNS = ("run-a", "run-b")
ACTORS = ("llm", "supervisor", "metrics")
CORRELATIONS = (None, "c1", "c2")
KINDS = ("plugin.started", "gauge.set", "failure.raised", "message.received", "run.stopped")
TS_POOL = (0.0, 1.5, 2.0, 1_700_000_000.25, 1_700_000_001.0)

NAMES = st.sampled_from(["llm", "db", "queue"])
EVENTS = st.one_of(
    st.builds(PluginStarted, plugin=NAMES),
    st.builds(GaugeSet, name=NAMES, value=FINITE_FLOATS, tags=st.dictionaries(NAMES, NAMES, max_size=2)),
    st.builds(
        FailureRaised, plugin=NAMES, exc_type=st.just("builtins.ValueError"), message=st.text(max_size=8),
        traceback=st.just("Traceback ..."), severity=st.sampled_from([None, "low", "critical"]),
    ),
    st.builds(
        MessageReceived, recipient=NAMES, sender=NAMES,
        message=st.dictionaries(st.text(max_size=4), JSON_SCALARS, max_size=3),
    ),
)
TIMESTAMPS = st.one_of(st.sampled_from(TS_POOL), st.floats(min_value=0, max_value=2e9))

SEGMENTS = st.lists(
    st.fixed_dictionaries(
        {
            "run": st.sampled_from(RUNS),
            "actor": st.sampled_from(ACTORS),
            "correlation": st.sampled_from(CORRELATIONS),
            "ts": TIMESTAMPS,
            "events": st.lists(EVENTS, min_size=1, max_size=4),
            "many": st.booleans(),
        }
    ),
    max_size=8,
)
"""Groups of events appended with one envelope, by one `append_many` or several `append`s."""

FILTERS = st.fixed_dictionaries(
    {},
    optional={
        "run": st.sampled_from(RUNS),
        "actor": st.sampled_from(ACTORS),
        "kinds": st.one_of(st.sampled_from(KINDS), st.lists(st.sampled_from(KINDS), max_size=3)),
        "from_seq": st.integers(min_value=-1, max_value=35),
        "to_seq": st.integers(min_value=-1, max_value=35),
        "since": TIMESTAMPS,
        "until": TIMESTAMPS,
        "correlation": st.sampled_from(["c1", "c2", "c3"]),
    },
)


def matches(row: dict[str, Any], f: dict[str, Any]) -> bool:
    kinds = f.get("kinds")
    if isinstance(kinds, str):
        kinds = [kinds]
    return (
        ("run" not in f or row["run"] == f["run"])
        and ("actor" not in f or row["actor"] == f["actor"])
        and (kinds is None or row["kind"] in kinds)
        and ("from_seq" not in f or row["seq"] >= f["from_seq"])
        and ("to_seq" not in f or row["seq"] <= f["to_seq"])
        and ("since" not in f or row["ts"] >= f["since"])
        and ("until" not in f or row["ts"] <= f["until"])
        and ("correlation" not in f or row["correlation"] == f["correlation"])
    )


def as_row(record: EventRecord) -> dict[str, Any]:
    return {
        "seq": record.seq, "run": record.run, "actor": record.actor, "kind": record.kind,
        "correlation": record.correlation, "ts": record.ts, "event": record.event,
    }


@settings(max_examples=30, deadline=None)
@given(segments=SEGMENTS, filters=st.lists(FILTERS, min_size=1, max_size=6), chunk_size=st.integers(1, 4))
def test_reading_with_filters_equals_filtering_what_was_appended(
    segments: list[dict[str, Any]], filters: list[dict[str, Any]], chunk_size: int
) -> None:
    """Two runs (two writers) append to one file in turn; every filtered read equals the
    same filter applied in Python to the appended list, with seqs 1..n in append order."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "log.db"
        expected: list[dict[str, Any]] = []
        with EventStore(path, run=RUNS[0], chunk_size=3) as first, EventStore(path, run=RUNS[1], chunk_size=3) as second:
            stores = {RUNS[0]: first, RUNS[1]: second}
            current: EventStore | None = None
            for segment in segments:
                store = stores[segment["run"]]
                if current is not None and current is not store:
                    current.flush()  # hand over: what one run appended is committed before the other appends
                current = store
                envelope = {"actor": segment["actor"], "correlation": segment["correlation"], "ts": segment["ts"]}
                if segment["many"]:
                    store.append_many(segment["events"], **envelope)
                else:
                    for event in segment["events"]:
                        store.append(event, **envelope)
                for event in segment["events"]:
                    expected.append(
                        {"seq": len(expected) + 1, "run": segment["run"], "kind": type(event).__struct_config__.tag,
                         "event": event, **envelope}
                    )
            if current is not None:
                assert current.flush() == len(expected)
            for store in (first, second):
                assert store.count() == len(expected)
                assert store.last_seq() == len(expected)
                assert [as_row(r) for r in store.events()] == expected
                for f in filters:
                    assert [as_row(r) for r in store.events(**f)] == [row for row in expected if matches(row, f)], f

        with EventStore.open_readonly(path, chunk_size=chunk_size) as reader:
            for f in filters:
                assert [as_row(r) for r in reader.events(**f)] == [row for row in expected if matches(row, f)], f
            report = reader.verify()
        assert report.ok and report.events_checked == len(expected)


def test_records_carry_their_envelope_and_hash(log_path: Path) -> None:
    with EventStore(log_path, run="r-1") as store:
        store.append(PluginStarted(plugin="llm"), actor="supervisor", correlation="m-1", ts=123.5)
        store.append(GaugeSet(name="q", value=1.0))
        assert store.flush() == 2
        first, second = list(store.events())
    assert first.seq == 1 and first.ts == 123.5 and first.run == "r-1" and first.actor == "supervisor"
    assert first.kind == "plugin.started" and first.version == 1 and first.correlation == "m-1"
    assert first.event == PluginStarted(plugin="llm")
    assert len(first.hash) == 64 and first.hash != second.hash
    assert second.actor == "app" and second.correlation is None and second.ts > 1_600_000_000


def test_an_empty_log_has_no_events(log_path: Path) -> None:
    with EventStore(log_path) as store:
        assert store.flush() == 0
        assert store.count() == 0 and store.last_seq() == 0
        assert list(store.events()) == []
        report = store.verify()
    assert report.ok and report.events_checked == 0 and report.last_seq == 0


def test_reading_pages_through_a_long_log_in_chunks(log_path: Path) -> None:
    with EventStore(log_path, chunk_size=7) as store:
        store.append_many(GaugeSet(name="q", value=float(i)) for i in range(2_500))
        assert store.flush() == 2_500
        values = [r.event.value for r in store.events()]
        assert values == [float(i) for i in range(2_500)]
        assert [r.seq for r in store.events(from_seq=2_490)] == list(range(2_490, 2_501))


def test_appending_to_an_existing_log_continues_its_seqs(log_path: Path) -> None:
    with EventStore(log_path, run="first") as store:
        store.append_many([PluginStarted(plugin="a"), PluginStarted(plugin="b")])
    with EventStore(log_path, run="second") as store:
        store.append(PluginStarted(plugin="c"))
        assert store.flush() == 3
        records = list(store.events())
        assert [(r.seq, r.run) for r in records] == [(1, "first"), (2, "first"), (3, "second")]
        assert store.verify().ok


# -- flush, close and the context manager ---------------------------------------------------------


def test_after_flush_a_separate_read_only_store_sees_every_appended_event(log_path: Path) -> None:
    with EventStore(log_path) as writer:
        writer.append(PluginStarted(plugin="first"))
        writer.flush()
        with EventStore.open_readonly(log_path) as early_reader:
            for batch in range(5):
                writer.append_many([GaugeSet(name="q", value=float(batch * 100 + i)) for i in range(100)])
                writer.append(PluginStarted(plugin=f"p{batch}"))
                last = writer.flush()
                assert last == 1 + (batch + 1) * 101
                assert early_reader.count() == last
                assert early_reader.last_seq() == last
                with EventStore.open_readonly(log_path) as late_reader:
                    assert [r.seq for r in late_reader.events()] == list(range(1, last + 1))


def test_close_commits_everything_appended_before_it(log_path: Path) -> None:
    store = EventStore(log_path)
    for i in range(300):
        store.append(GaugeSet(name="q", value=float(i)))
    store.append_many(GaugeSet(name="r", value=float(i)) for i in range(2_500))
    store.close()
    with EventStore.open_readonly(log_path) as reader:
        assert reader.count() == 2_800
        assert reader.verify().ok


def test_context_manager_closes_the_store_and_close_is_idempotent(log_path: Path) -> None:
    with EventStore(log_path) as store:
        store.append(PluginStarted(plugin="x"))
    store.close()
    store.close()
    with EventStore.open_readonly(log_path) as reader:
        assert reader.count() == 1


def test_context_manager_closes_the_store_when_the_body_raises(log_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), EventStore(log_path) as store:
        store.append(PluginStarted(plugin="x"))
        raise RuntimeError("boom")
    with pytest.raises(StoreClosedError):
        store.count()
    with EventStore.open_readonly(log_path) as reader:
        assert reader.count() == 1


@pytest.mark.parametrize(
    "use",
    [
        pytest.param(lambda s: s.append(PluginStarted(plugin="x")), id="append"),
        pytest.param(lambda s: s.append_many([PluginStarted(plugin="x")]), id="append_many"),
        pytest.param(lambda s: s.flush(), id="flush"),
        pytest.param(lambda s: list(s.events()), id="events"),
        pytest.param(lambda s: s.count(), id="count"),
        pytest.param(lambda s: s.last_seq(), id="last_seq"),
        pytest.param(lambda s: s.verify(), id="verify"),
    ],
)
@pytest.mark.parametrize("readonly", [False, True], ids=["writable", "read-only"])
def test_using_a_closed_store_raises_store_closed(log_path: Path, use: Any, readonly: bool) -> None:
    EventStore(log_path).close()
    store = EventStore(log_path, readonly=readonly)
    store.close()
    with pytest.raises(StoreClosedError, match="closed"):
        use(store)


# -- read-only ------------------------------------------------------------------------------


def test_a_read_only_store_refuses_writes_and_leaves_the_file_unchanged(log_path: Path) -> None:
    with EventStore(log_path) as writer:
        writer.append_many([PluginStarted(plugin=f"p{i}") for i in range(20)], actor="supervisor")
    before = sha256_of(log_path)

    with EventStore.open_readonly(log_path) as reader:
        assert reader.readonly
        with pytest.raises(ReadOnlyError, match="read-only") as caught:
            reader.append(PluginStarted(plugin="x"))
        assert isinstance(caught.value, PermissionError)
        with pytest.raises(ReadOnlyError):
            reader.append_many([PluginStarted(plugin="x")])
        with pytest.raises(ReadOnlyError):
            reader.flush()
        assert [r.event.plugin for r in reader.events(actor="supervisor")] == [f"p{i}" for i in range(20)]
        assert reader.count() == 20 and reader.last_seq() == 20
        assert reader.verify().ok
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.db.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")

    assert sha256_of(log_path) == before
    with EventStore.open_readonly(log_path) as reader:
        assert reader.count() == 20


# -- unknown kinds and undecodable rows in a real log ---------------------------------------------


class Shipped(Event, tag="tests.store.shipped", frozen=True):
    order: str


def test_unknown_kinds_strict_raise_naming_kind_and_seq_lenient_yield_placeholders(log_path: Path) -> None:
    with_type = TypeRegistry()
    with_type.register(PluginStarted)
    with_type.register(Shipped)
    with EventStore(log_path, registry=with_type) as store:
        store.append(PluginStarted(plugin="shop"))
        store.append(Shipped(order="o-1"), correlation="c")
        store.append(PluginStarted(plugin="after"))

    without_type = TypeRegistry()
    without_type.register(PluginStarted)
    with EventStore.open_readonly(log_path, registry=without_type) as reader:
        seen: list[EventRecord] = []
        with pytest.raises(UnknownKindError) as caught:
            for record in reader.events():
                seen.append(record)
        assert [r.event for r in seen] == [PluginStarted(plugin="shop")], "events before the unknown one are read"
        assert "tests.store.shipped" in str(caught.value) and "seq 2" in str(caught.value)
        assert caught.value.seq == 2

        records = list(reader.events(lenient=True))
    assert [r.seq for r in records] == [1, 2, 3]
    placeholder = records[1].event
    assert isinstance(placeholder, UnknownEvent)
    assert placeholder.kind == "tests.store.shipped" and placeholder.version == 1
    assert placeholder.payload == {"kind": "tests.store.shipped", "order": "o-1"}
    assert placeholder.reason == "unknown kind"
    assert records[1].correlation == "c"
    assert records[2].event == PluginStarted(plugin="after")


def test_a_garbage_payload_strict_raises_decode_error_naming_seq_lenient_yields_placeholder(log_path: Path) -> None:
    with EventStore(log_path) as store:
        store.append(PluginStarted(plugin="ok"))
    # Inserting is what the append-only triggers allow; a foreign writer can add any row.
    conn = sqlite3.connect(log_path)
    with conn:
        conn.execute(
            "INSERT INTO events (seq, ts, run, actor, kind, version, correlation, payload, hash) "
            "VALUES (2, 1.0, 'x', 'intruder', 'plugin.started', 1, NULL, '{not json', 'bogus')"
        )
    conn.close()

    with EventStore.open_readonly(log_path) as reader:
        with pytest.raises(DecodeError, match="seq 2"):
            list(reader.events())
        records = list(reader.events(lenient=True))
        report = reader.verify()
    assert records[0].event == PluginStarted(plugin="ok")
    assert isinstance(records[1].event, UnknownEvent)
    assert records[1].event.payload == "{not json" and records[1].event.reason
    assert not report.ok and report.first_bad_seq == 2
