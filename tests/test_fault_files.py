"""Files that cannot be written the way the store wants: locks held by another process, read-only
files and directories, a log removed or replaced while open. Each gives a clear error naming
the file, nothing hangs, and no committed event is lost or damaged."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from actorlog.events import ActorlogError, CounterIncremented
from actorlog.store import (
    EventStore,
    NotWritableError,
    StoreClosedError,
    StoreError,
    StoreLockedError,
    StoreWriteError,
)
from fault_helpers import (  # noqa: F401 - stop_leftover_actors is an autouse fixture
    LockHolder,
    Running,
    assert_confirmed_once,
    assert_fault_reported,
    assert_stops_cleanly,
    audit,
    drive,
    fill_values,
    finish_within,
    listing,
    lock_held,
    read_only,
    start_filler,
    stop_leftover_actors,
)
from log_helpers import sha256_of
from replay_helpers import assert_one_line_error, run_cli


def write_log(path: Path, n: int = 20) -> list[float]:
    values = [float(i) for i in range(n)]
    with EventStore(path, run="files") as store:
        store.append_many([CounterIncremented(name="c", value=v) for v in values], actor="files")
    return values


def append_and_flush(store: EventStore, start: int, count: int) -> None:
    store.append_many([CounterIncremented(name="c", value=float(i)) for i in range(start, start + count)])
    store.flush(timeout=30)


# -- locks held by another process -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["immediate", "exclusive"])
def test_a_lock_held_by_another_process_past_the_busy_timeout_fails_the_commit_clearly(
    log_path: Path, mode: str
) -> None:
    store = EventStore(log_path, busy_timeout=0.3)
    append_and_flush(store, 0, 10)
    with lock_held(log_path, mode):
        store.append(CounterIncremented(name="c", value=10.0))
        _, failure = finish_within(lambda: store.flush(timeout=30), what="flush under a held lock")
        assert isinstance(failure, StoreWriteError), repr(failure)
        message = str(failure)
        assert str(log_path) in message and "locked" in message and "open the log again" in message
        assert store.unwritten == 1
        assert store.count() == 10, "reading goes on while another process holds the write lock"
    _, on_close = finish_within(store.close)
    assert on_close is failure, "the lock released does not revive the failed store; close reports it"

    assert fill_values(audit(log_path)) == [float(i) for i in range(10)]
    with EventStore(log_path) as reopened:
        append_and_flush(reopened, 10, 5)
    assert fill_values(audit(log_path)) == [float(i) for i in range(15)]


def test_a_lock_released_within_the_busy_timeout_only_delays_the_commit(log_path: Path) -> None:
    write_log(log_path, 5)
    with EventStore(log_path, busy_timeout=60) as store:
        with lock_held(log_path, "exclusive") as holder:
            store.append_many([CounterIncremented(name="c", value=float(i)) for i in range(5, 10)])
            release = threading.Timer(0.2, holder.release)  # the writer is most likely waiting by then
            release.start()
            seq, error = finish_within(lambda: store.flush(timeout=60), 90, "flush waiting for the lock")
            release.join()
        assert error is None and seq == 10
        assert store.failure is None
    assert fill_values(audit(log_path)) == [float(i) for i in range(10)]


def test_readers_shut_out_by_an_exclusive_lock_get_a_clear_error_not_a_hang(log_path: Path) -> None:
    """A process in exclusive locking mode keeps even WAL readers out: opening the log for an
    audit waits for the busy timeout, then says the log is locked."""
    write_log(log_path)
    before = sha256_of(log_path)
    with lock_held(log_path, "exclusive-mode"):
        _, error = finish_within(lambda: EventStore.open_readonly(log_path, busy_timeout=0.2))
        assert isinstance(error, StoreLockedError), repr(error)
        assert str(log_path) in str(error) and "locked" in str(error)
        _, error = finish_within(lambda: EventStore(log_path, busy_timeout=0.2))
        assert isinstance(error, StoreError) and str(log_path) in str(error), repr(error)
    assert audit(log_path) and sha256_of(log_path) == before


@pytest.mark.parametrize("mode", ["immediate", "exclusive"])
def test_audits_are_not_blocked_by_another_process_holding_the_write_lock(log_path: Path, mode: str) -> None:
    values = write_log(log_path)
    with lock_held(log_path, mode):
        verify = run_cli("verify", log_path, "--json")
        query = run_cli("query", log_path, "--format", "jsonl")
        stats = run_cli("stats", log_path, "--json")
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"] is True, verify.stderr
    assert query.returncode == 0 and [json.loads(line)["payload"]["value"] for line in query.stdout.splitlines()] == values
    assert stats.returncode == 0 and json.loads(stats.stdout)["position"] == len(values), stats.stderr


def test_an_actor_system_whose_log_stays_locked_stops_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    before = Running.now()
    system = start_filler(path, store_options={"busy_timeout": 0.3})
    holders: list[LockHolder] = []
    try:
        outcome = drive(system, lambda n: holders.append(LockHolder(path, "immediate")) if n == 5 else None)
        assert outcome.confirmed == list(range(6))
        assert_fault_reported(outcome.error, path)
        assert "locked" in str(outcome.error)
    finally:
        for holder in holders:
            holder.release()
    assert_stops_cleanly(system, before)
    assert_confirmed_once(path, outcome.confirmed)


# -- read-only files and directories -------------------------------------------------------------------------


def test_a_read_only_log_is_refused_for_writing_and_left_untouched(log_path: Path) -> None:
    write_log(log_path)
    before, files = sha256_of(log_path), listing(log_path.parent)
    with read_only(log_path) as how:
        with pytest.raises(NotWritableError) as caught:
            EventStore(log_path)
        message = str(caught.value)
        assert str(log_path) in message and "read-only" in message and "open_readonly" in message, (how, message)
        assert isinstance(caught.value, PermissionError) and isinstance(caught.value, ActorlogError)
        assert listing(log_path.parent) == files, "refused before SQLite created anything"
        result = run_cli("snapshot", log_path)
        line = assert_one_line_error(result.returncode, result.stdout, result.stderr)
        assert log_path.name in line and "read-only" in line
        assert sha256_of(log_path) == before


def test_a_read_only_log_can_still_be_audited(log_path: Path) -> None:
    values = write_log(log_path)
    before = sha256_of(log_path)
    with read_only(log_path):
        assert fill_values(audit(log_path)) == values
        verify = run_cli("verify", log_path)
        assert verify.returncode == 0 and verify.stdout.startswith("ok"), verify.stderr
        query = run_cli("query", log_path, "--format", "json")
        assert query.returncode == 0 and [row["payload"]["value"] for row in json.loads(query.stdout)] == values
        assert run_cli("stats", log_path).returncode == 0
    assert sha256_of(log_path) == before


def test_a_log_in_a_read_only_directory_is_refused_for_writing_and_audited_in_place(tmp_path: Path) -> None:
    """A closed log archived in a read-only directory: SQLite cannot create the -wal and -shm
    files it writes through, so writing is refused up front, and reading still works."""
    folder = tmp_path / "archive"
    folder.mkdir()
    path = folder / "app.db"
    values = write_log(path)
    before, files = sha256_of(path), listing(folder)
    assert files == ["app.db"]
    with read_only(folder):
        with pytest.raises(NotWritableError) as caught:
            EventStore(path)
        assert str(folder) in str(caught.value) and "app.db-wal" in str(caught.value)
        with pytest.raises(NotWritableError) as new:
            EventStore(folder / "new.db")
        assert str(folder) in str(new.value)

        assert fill_values(audit(path)) == values
        verify = run_cli("verify", path, "--json")
        assert verify.returncode == 0 and json.loads(verify.stdout)["ok"] is True, verify.stderr
        query = run_cli("query", path, "--format", "jsonl")
        assert query.returncode == 0 and len(query.stdout.splitlines()) == len(values), query.stderr
        assert listing(folder) == files
    assert sha256_of(path) == before


def test_an_unclean_log_in_a_read_only_directory_is_read_with_its_wal_or_refused_clearly(tmp_path: Path) -> None:
    """A copy taken while a writer was running holds committed events in its -wal file. In a
    read-only directory they are read when the -shm file came along; without it SQLite cannot
    read the -wal, and the error says so instead of showing a log without those events."""
    source = tmp_path / "live.db"
    store = EventStore(source)
    append_and_flush(store, 0, 60)  # committed, and only in the -wal file until the store closes
    for name, parts in (("with-shm", ("", "-wal", "-shm")), ("without-shm", ("", "-wal"))):
        folder = tmp_path / name
        folder.mkdir()
        for part in parts:
            shutil.copyfile(f"{source}{part}", folder / f"app.db{part}")
    store.close()

    with read_only(tmp_path / "with-shm"):
        with EventStore.open_readonly(tmp_path / "with-shm" / "app.db") as reader:
            assert fill_values(reader.events()) == [float(i) for i in range(60)]
            assert reader.verify().ok
    with read_only(tmp_path / "without-shm"):
        path = tmp_path / "without-shm" / "app.db"
        with pytest.raises(StoreError) as caught:
            EventStore.open_readonly(path)
        assert str(path) in str(caught.value) and "app.db-shm" in str(caught.value)
        result = run_cli("verify", path)
        line = assert_one_line_error(result.returncode, result.stdout, result.stderr)
        assert "app.db-shm" in line


def test_a_directory_made_read_only_under_a_running_store_loses_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    path = folder / "app.db"
    store = EventStore(path)
    append_and_flush(store, 0, 10)
    with read_only(folder):
        append_and_flush(store, 10, 10)  # the -wal and -shm files exist: writing them goes on
        _, error = finish_within(store.close)
        assert error is None
        assert fill_values(audit(path)) == [float(i) for i in range(20)]
    assert fill_values(audit(path)) == [float(i) for i in range(20)]


# -- a log removed or replaced while open ----------------------------------------------------------------------


def test_a_log_removed_under_a_running_store_fails_the_next_flush_instead_of_losing_events(log_path: Path) -> None:
    """SQLite goes on writing to a removed file, whose events vanish when it is closed: the
    store notices, and flush no longer claims they are committed."""
    store = EventStore(log_path)
    append_and_flush(store, 0, 10)
    log_path.unlink()
    store.append(CounterIncremented(name="c", value=10.0))
    _, failure = finish_within(lambda: store.flush(timeout=30))
    assert isinstance(failure, StoreWriteError), repr(failure)
    assert str(log_path) in str(failure) and "removed" in str(failure)
    with pytest.raises(StoreWriteError):
        store.append(CounterIncremented(name="c", value=11.0))
    _, on_close = finish_within(store.close)
    assert on_close is failure
    assert not log_path.exists(), "nothing recreates a half log at the path"
    with pytest.raises(StoreClosedError):
        store.flush()


def test_a_log_removed_after_its_last_commit_is_reported_by_flush_and_close(log_path: Path) -> None:
    store = EventStore(log_path)
    append_and_flush(store, 0, 10)
    log_path.unlink()
    _, failure = finish_within(lambda: store.flush(timeout=30))
    assert isinstance(failure, StoreWriteError) and "removed" in str(failure), repr(failure)
    _, on_close = finish_within(store.close)
    assert on_close is failure


def test_a_log_renamed_under_a_running_store_keeps_what_was_committed(tmp_path: Path) -> None:
    """Log rotation by renaming the open file: the store stops writing (its events would land
    in a file no longer at its path), and once it is closed the renamed file holds every event
    committed before the rename, intact."""
    path = tmp_path / "app.db"
    store = EventStore(path)
    append_and_flush(store, 0, 10)
    rotated = tmp_path / "app.db.1"
    os.rename(path, rotated)
    store.append(CounterIncremented(name="c", value=10.0))
    _, failure = finish_within(lambda: store.flush(timeout=30))
    assert isinstance(failure, StoreWriteError) and "renamed" in str(failure), repr(failure)
    _, on_close = finish_within(store.close)
    assert on_close is failure
    assert not path.exists()
    assert fill_values(audit(rotated)) == [float(i) for i in range(10)]


def test_a_log_replaced_under_a_running_store_is_left_alone(tmp_path: Path) -> None:
    """Another log moved over the open one's path: the store stops writing, and the log now
    at the path is not touched."""
    path = tmp_path / "app.db"
    store = EventStore(path)
    append_and_flush(store, 0, 10)
    other = tmp_path / "other.db"
    write_log(other, 3)
    replacement = sha256_of(other)
    os.replace(other, path)
    store.append(CounterIncremented(name="c", value=10.0))
    _, failure = finish_within(lambda: store.flush(timeout=30))
    assert isinstance(failure, StoreWriteError) and "replaced" in str(failure), repr(failure)
    finish_within(store.close)
    assert sha256_of(path) == replacement
    assert fill_values(audit(path)) == [0.0, 1.0, 2.0]


def test_an_actor_system_whose_log_is_removed_stops_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    before = Running.now()
    system = start_filler(path)
    outcome = drive(system, lambda n: path.unlink() if n == 5 else None)
    assert outcome.confirmed == list(range(6))
    assert_fault_reported(outcome.error, path)
    assert_stops_cleanly(system, before)
    assert not path.exists()
