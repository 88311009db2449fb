"""Bad paths, foreign files, oversized and unregistered events: clear errors, files untouched."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest
from log_helpers import sha256_of

from actorlog.events import ActorlogError, Event, GaugeSet, NotRegisteredError, PluginStarted, default_codec
from actorlog.store import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    SCHEMA_VERSION,
    EventStore,
    NotAnEventLogError,
    PayloadTooLargeError,
    SchemaVersionError,
    StoreError,
)


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("readonly", [False, True], ids=["writable", "read-only"])
def test_a_text_file_is_refused_and_left_untouched(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a database\n" * 50)
    before = sha256_of(path)
    with pytest.raises(NotAnEventLogError, match="not an SQLite database") as caught:
        EventStore(path, readonly=readonly)
    assert str(path) in str(caught.value)
    assert sha256_of(path) == before
    assert listing(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize("readonly", [False, True], ids=["writable", "read-only"])
def test_a_sqlite_file_without_the_schema_is_refused_naming_its_tables(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE foo (x INTEGER)")
        conn.execute("CREATE TABLE bar (y TEXT)")
        conn.execute("INSERT INTO foo VALUES (1)")
    conn.close()
    before = sha256_of(path)
    with pytest.raises(NotAnEventLogError) as caught:
        EventStore(path, readonly=readonly)
    message = str(caught.value)
    assert "not an actorlog event log" in message and "foo" in message and "bar" in message
    assert sha256_of(path) == before
    assert listing(tmp_path) == ["other.db"]


def test_a_sqlite_file_with_a_foreign_meta_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("CREATE TABLE events (id INTEGER)")
        conn.execute("INSERT INTO meta VALUES ('format', 'something-else')")
    conn.close()
    before = sha256_of(path)
    with pytest.raises(NotAnEventLogError, match="meta"):
        EventStore(path)
    assert sha256_of(path) == before


def bump_schema_version(path: Path, value: str) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [value])
    conn.close()


@pytest.mark.parametrize("readonly", [False, True], ids=["writable", "read-only"])
def test_a_log_from_a_newer_schema_is_refused_with_advice_to_upgrade(log_path: Path, readonly: bool) -> None:
    with EventStore(log_path) as store:
        store.append(PluginStarted(plugin="x"))
    bump_schema_version(log_path, str(SCHEMA_VERSION + 1))
    before = sha256_of(log_path)
    with pytest.raises(SchemaVersionError, match="upgrade") as caught:
        EventStore(log_path, readonly=readonly)
    assert str(SCHEMA_VERSION + 1) in str(caught.value) and str(log_path) in str(caught.value)
    assert sha256_of(log_path) == before


def test_a_log_with_an_unreadable_schema_version_is_refused(log_path: Path) -> None:
    with EventStore(log_path):
        pass
    bump_schema_version(log_path, "banana")
    before = sha256_of(log_path)
    with pytest.raises(NotAnEventLogError, match="banana"):
        EventStore.open_readonly(log_path)
    assert sha256_of(log_path) == before


@pytest.mark.parametrize("readonly", [False, True], ids=["writable", "read-only"])
def test_a_directory_is_refused(tmp_path: Path, readonly: bool) -> None:
    directory = tmp_path / "logs"
    directory.mkdir()
    (directory / "keep.txt").write_text("x")
    with pytest.raises(NotAnEventLogError, match="directory"):
        EventStore(directory, readonly=readonly)
    assert listing(directory) == ["keep.txt"]
    assert listing(tmp_path) == ["logs"]


def test_a_missing_file_opened_read_only_is_refused_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(NotAnEventLogError, match="does not exist") as caught:
        EventStore.open_readonly(path)
    assert str(path) in str(caught.value)
    assert listing(tmp_path) == []


def test_a_missing_parent_directory_is_refused_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "log.db"
    with pytest.raises(NotAnEventLogError, match="does not exist"):
        EventStore(path)
    assert listing(tmp_path) == []


def test_an_empty_file_is_not_a_log_for_a_reader_but_becomes_one_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with pytest.raises(NotAnEventLogError, match="empty"):
        EventStore.open_readonly(path)
    assert path.stat().st_size == 0
    with EventStore(path) as store:
        store.append(PluginStarted(plugin="x"))
    with EventStore.open_readonly(path) as reader:
        assert reader.count() == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"synchronous": "SOMETIMES"}, "synchronous"),
        ({"max_payload_bytes": 0}, "max_payload_bytes"),
        ({"max_pending_rows": -5}, "max_pending_rows"),
        ({"max_batch_rows": 0}, "max_batch_rows"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_bad_options_are_refused_before_any_file_is_created(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EventStore(tmp_path / "log.db", **options)
    assert listing(tmp_path) == []


def test_a_log_held_by_another_process_while_it_is_created_is_opened_once_the_lock_is_released(tmp_path: Path) -> None:
    """Several processes may create the same new log at once: one of them holds the write
    lock on the new, still empty file for a moment. The others must wait for it (up to the
    busy timeout), not fail at once with a raw "database is locked"."""
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, other.rollback)
    release.start()
    try:
        with EventStore(path, busy_timeout=10.0) as store:
            store.append(PluginStarted(plugin="x"))
            assert store.flush() == 1
    finally:
        release.cancel()
        release.join()
        other.close()


def test_a_lock_held_past_the_busy_timeout_while_creating_a_log_is_an_actorlog_error(tmp_path: Path) -> None:
    """When another writer keeps a new log locked past the busy timeout, the error is one of
    actorlog's and names the file, like every other store error."""
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError) as caught:
            EventStore(path, busy_timeout=0.2)
        assert str(path) in str(caught.value)
    finally:
        other.rollback()
        other.close()


# -- events the store must refuse -----------------------------------------------------------------


def test_every_store_error_is_an_actorlog_error() -> None:
    import actorlog.store as store_module

    for name in store_module.__all__:
        obj = getattr(store_module, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, StoreError) and issubclass(obj, ActorlogError), name


def big_plugin_name(limit: int, over_by: int) -> str:
    """A plugin name making PluginStarted's payload exactly ``limit + over_by`` bytes."""
    overhead = len(default_codec.encode(PluginStarted(plugin=""))[2])
    return "x" * (limit + over_by - overhead)


def test_a_payload_over_the_limit_is_refused_and_nothing_is_appended(log_path: Path) -> None:
    with EventStore(log_path, max_payload_bytes=1000) as store:
        store.append_many([PluginStarted(plugin=f"p{i}") for i in range(3)])
        store.flush()
        with pytest.raises(PayloadTooLargeError) as caught:
            store.append(PluginStarted(plugin=big_plugin_name(1000, 1)), actor="llm")
        message = str(caught.value)
        assert "plugin.started" in message and "1,001" in message and "1,000" in message
        assert isinstance(caught.value, ValueError) and isinstance(caught.value, ActorlogError)

        with pytest.raises(PayloadTooLargeError):
            store.append_many([PluginStarted(plugin="fine"), PluginStarted(plugin="y" * 5000), PluginStarted(plugin="z")])

        store.append(PluginStarted(plugin=big_plugin_name(1000, 0)))  # exactly at the limit is fine
        assert store.flush() == 4
        assert store.count() == 4
        assert [r.event.plugin for r in store.events()][:3] == ["p0", "p1", "p2"]
        assert store.verify().ok


def test_the_default_limit_is_one_mebibyte(log_path: Path) -> None:
    assert DEFAULT_MAX_PAYLOAD_BYTES == 1 << 20
    with EventStore(log_path) as store:
        store.append(GaugeSet(name="before", value=1.0))
        with pytest.raises(PayloadTooLargeError):
            store.append(PluginStarted(plugin="x" * 1_100_000))
        store.append(PluginStarted(plugin=big_plugin_name(DEFAULT_MAX_PAYLOAD_BYTES, 0)))
        assert store.flush() == 2
        assert [r.kind for r in store.events()] == ["gauge.set", "plugin.started"]


class UnregisteredThing(Event, tag="tests.bad_input.unregistered", frozen=True):
    a: int = 1


class PlainStruct(msgspec.Struct, frozen=True):
    a: int = 1


@pytest.mark.parametrize(
    ("thing", "type_name"),
    [
        pytest.param({"kind": "plugin.started", "plugin": "x"}, "dict", id="dict"),
        pytest.param(PlainStruct(), "PlainStruct", id="plain-struct"),
        pytest.param(UnregisteredThing(), "UnregisteredThing", id="unregistered-event"),
        pytest.param("plugin.started", "str", id="str"),
    ],
)
def test_appending_anything_but_a_registered_event_is_refused_and_nothing_is_appended(
    log_path: Path, thing: object, type_name: str
) -> None:
    with EventStore(log_path) as store:
        store.append(PluginStarted(plugin="before"))
        with pytest.raises(NotRegisteredError) as caught:
            store.append(thing)
        assert type_name in str(caught.value)
        assert isinstance(caught.value, TypeError) and isinstance(caught.value, ActorlogError)
        with pytest.raises(NotRegisteredError, match=type_name):
            store.append_many([PluginStarted(plugin="ok"), thing])
        assert store.flush() == 1
        assert [r.event for r in store.events()] == [PluginStarted(plugin="before")]
        store.append(PluginStarted(plugin="after"))
        assert store.flush() == 2


def test_actor_and_correlation_must_be_strings(log_path: Path) -> None:
    with EventStore(log_path) as store:
        with pytest.raises(TypeError, match="actor"):
            store.append(PluginStarted(plugin="x"), actor=3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="correlation"):
            store.append(PluginStarted(plugin="x"), correlation=7)  # type: ignore[arg-type]
        assert store.flush() == 0
