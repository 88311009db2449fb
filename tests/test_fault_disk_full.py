"""A log that cannot grow (a full disk): appends fail with a clear error, nothing hangs, and the
log keeps every event whose flush returned, exactly once, intact.

Two real mechanisms make the log full: ``max_log_bytes`` (SQLite's ``max_page_count`` on the
store's write connection) and, in a subprocess, a file-size rlimit that makes the
operating system refuse writes past it (EFBIG, the way ENOSPC refuses them on a full disk).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorlog.actors import SystemStoppedError
from actorlog.events import ActorlogError, CounterIncremented, PluginStarted
from actorlog.store import EventStore, StoreClosedError, StoreWriteError
from fault_helpers import (  # noqa: F401 - stop_leftover_actors is an autouse fixture
    Fill,
    Running,
    assert_confirmed_once,
    assert_fault_reported,
    assert_stops_cleanly,
    audit,
    drive,
    fill_values,
    finish_within,
    listing,
    start_filler,
    stop_leftover_actors,
)
from log_helpers import HELPERS

PAGE = 4096
EMPTY_LOG_BYTES = 11 * PAGE
"""A new log's size: its schema (table, indexes, four views, triggers, meta) fills eleven pages."""


def fresh(directory: Path) -> Path:
    return directory / f"full-{uuid.uuid4().hex[:10]}.db"


def fill(store: EventStore, batches: list[int]) -> tuple[int, StoreWriteError]:
    """Append counters 0, 1, 2, ... in the given batch sizes (cycling), flushing after each
    batch, until the store fails; return how many were confirmed by a flush, and the error."""
    confirmed = 0
    step = 0
    while True:
        size = batches[step % len(batches)]
        events = [CounterIncremented(name="fill", value=float(i)) for i in range(confirmed, confirmed + size)]
        try:
            if step % 2:
                for event in events:
                    store.append(event, actor="fill")
            else:
                store.append_many(events, actor="fill")
            store.flush(timeout=30)
        except StoreWriteError as error:
            return confirmed, error
        confirmed += size
        step += 1
        assert step < 2_000, "the log never became full"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    spare_pages=st.integers(min_value=1, max_value=24),
    batches=st.lists(st.integers(min_value=1, max_value=120), min_size=1, max_size=4),
)
def test_a_full_log_fails_appends_clearly_and_keeps_every_flushed_event_once(
    tmp_path: Path, spare_pages: int, batches: list[int]
) -> None:
    path = fresh(tmp_path)
    limit = EMPTY_LOG_BYTES + spare_pages * PAGE
    store = EventStore(path, max_log_bytes=limit)
    confirmed, failure = fill(store, batches)

    message = str(failure)
    assert str(path) in message and "full" in message and "max_log_bytes" in message, message
    assert isinstance(failure, OSError) and isinstance(failure, ActorlogError)
    assert store.failure is failure
    assert store.unwritten >= 1, "the events that could not be committed are counted"
    with pytest.raises(StoreWriteError) as again:
        store.append(CounterIncremented(name="fill", value=-1.0))
    assert again.value is failure
    with pytest.raises(StoreWriteError) as on_close:
        store.close()
    assert on_close.value is failure
    assert path.name + "-wal" not in listing(path.parent), "the store closed the file cleanly"
    assert path.stat().st_size <= limit, "max_log_bytes bounds the file"

    values = fill_values(audit(path))  # verifies, passes integrity_check
    # every confirmed event once, in order; after them only whole batches committed before the failure
    assert len(values) >= confirmed
    assert values == [float(i) for i in range(len(values))]


def test_a_full_log_takes_appends_again_when_reopened_with_room(log_path: Path) -> None:
    cap = EMPTY_LOG_BYTES + 4 * PAGE
    store = EventStore(log_path, max_log_bytes=cap)
    fill(store, [25])
    with pytest.raises(StoreWriteError):
        store.close()
    count = len(audit(log_path))

    with EventStore(log_path, max_log_bytes=cap) as capped:  # the same cap: what fits goes in, then it fails again
        confirmed, failure = fill(capped, [25])
        assert "full" in str(failure)
        with pytest.raises(StoreWriteError):
            capped.close()
    count = len(audit(log_path))
    assert count >= confirmed

    with EventStore(log_path) as reopened:  # without the cap the log grows again
        reopened.append_many([PluginStarted(plugin=f"after-{i}") for i in range(300)])
        assert reopened.flush() == count + 300
    records = audit(log_path)
    assert [r.event.plugin for r in records[count:]] == [f"after-{i}" for i in range(300)]
    assert log_path.stat().st_size > cap


def test_a_snapshot_that_does_not_fit_fails_clearly_and_events_go_on(log_path: Path) -> None:
    """A snapshot is a cache: failing to store one loses no event, so writing events goes on."""
    with EventStore(log_path, max_log_bytes=EMPTY_LOG_BYTES + 16 * PAGE) as store:
        store.append(PluginStarted(plugin="before"))
        store.flush()
        with pytest.raises(StoreWriteError) as caught:
            store.save_snapshot("statistics", 1, 1, "x" * (64 * PAGE))
        assert "full" in str(caught.value) and str(log_path) in str(caught.value)
        assert store.failure is None
        store.append(PluginStarted(plugin="after"))
        assert store.flush() == 2
        assert store.snapshots("statistics") == []
    assert [r.event.plugin for r in audit(log_path)] == ["before", "after"]


def test_failure_listeners_hear_of_the_failure_once(log_path: Path) -> None:
    heard: list[BaseException] = []
    store = EventStore(log_path, max_log_bytes=EMPTY_LOG_BYTES + 2 * PAGE)
    store.on_failure(heard.append)
    _, failure = fill(store, [40])
    assert heard == [failure], "told once, with the error flush raises"
    late: list[BaseException] = []
    store.on_failure(late.append)
    assert late == [failure], "a listener added after the failure hears of it at once"
    with pytest.raises(StoreWriteError):
        store.close()
    assert heard == [failure]


@pytest.mark.parametrize("value", [0, -4096, 1.5, "1MB", True])
def test_max_log_bytes_must_be_a_positive_int(tmp_path: Path, value: Any) -> None:
    with pytest.raises(ValueError, match="max_log_bytes"):
        EventStore(tmp_path / "log.db", max_log_bytes=value)
    assert listing(tmp_path) == []


# -- the operating system refusing to grow the file ---------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE and SIGXFSZ as on Linux")
@pytest.mark.parametrize(("limit_kib", "batch"), [(160, 37), (400, 250)])
def test_a_file_size_limit_from_the_operating_system_is_a_clear_error_and_the_log_stays_valid(
    tmp_path: Path, limit_kib: int, batch: int
) -> None:
    path = tmp_path / "fsize.db"
    with EventStore(path):
        pass  # created with room to spare: the limit applies to what the worker writes
    worker = subprocess.Popen(
        [sys.executable, str(HELPERS / "fsize_worker.py"), str(path), str(limit_kib * 1024), str(batch)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    (out, err), _ = finish_within(lambda: worker.communicate(timeout=120), 150, "the fsize worker")
    assert worker.returncode == 0, (worker.returncode, err)
    lines = out.splitlines()
    flushed = [int(line.split()[1]) for line in lines if line.startswith("flushed ")]
    failed = [line for line in lines if line.startswith("failed ")]
    assert flushed, "the worker confirmed some batches before the limit"
    assert len(failed) == 1 and str(path) in failed[0], lines[-3:]
    assert "full" in failed[0] or "I/O error" in failed[0], failed[0]
    assert lines[-1] == "close same", "close raises the same failure"

    values = fill_values(audit(path))
    assert len(values) >= flushed[-1] + 1
    assert values == [float(i) for i in range(len(values))]
    with EventStore(path) as reopened:  # the log is usable again where there is room
        reopened.append(PluginStarted(plugin="after"))
        assert reopened.flush() == len(values) + 1


# -- an actor system whose log fills up ----------------------------------------------------------------------


def test_an_actor_system_whose_log_fills_up_stops_cleanly_and_keeps_what_it_confirmed(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    before = Running.now()
    system = start_filler(path, store_options={"max_log_bytes": EMPTY_LOG_BYTES + 12 * PAGE})
    outcome = drive(system, text="x" * 300)
    assert outcome.confirmed, "asks were answered and flushed before the log filled up"
    assert_fault_reported(outcome.error, path)
    assert_stops_cleanly(system, before)
    assert_confirmed_once(path, outcome.confirmed)


def test_an_actor_system_whose_log_fills_up_stops_taking_messages(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    before = Running.now()
    system = start_filler(path, store_options={"max_log_bytes": EMPTY_LOG_BYTES + 12 * PAGE})
    outcome = drive(system, text="x" * 300)
    assert_fault_reported(outcome.error, path)
    assert system.wait(timeout=5), "the system goes on running though nothing it does can be logged"
    assert system.escalation is not None and path.name in str(system.escalation)
    _, refused = finish_within(lambda: system.ask("filler", Fill(n=-1), timeout=10))
    assert isinstance(refused, SystemStoppedError), repr(refused)
    assert_stops_cleanly(system, before)
    assert_confirmed_once(path, outcome.confirmed)


def test_a_store_given_to_an_actor_system_reports_the_failure_and_stays_closable(tmp_path: Path) -> None:
    """The application owns the store: whatever the system does, the store's own calls
    report the failure and it can still be closed, leaving a valid log."""
    path = tmp_path / "app.db"
    store = EventStore(path, max_log_bytes=EMPTY_LOG_BYTES + 12 * PAGE)
    system = start_filler(store)
    outcome = drive(system, text="x" * 300)
    assert_fault_reported(outcome.error, path)
    finish_within(system.stop, what="ActorSystem.stop()")
    with pytest.raises(StoreWriteError):
        store.flush()
    _, error = finish_within(store.close, what="EventStore.close()")
    assert isinstance(error, StoreWriteError)
    with pytest.raises(StoreClosedError):
        store.append(PluginStarted(plugin="x"))
    assert_confirmed_once(path, outcome.confirmed)
