"""A commit that fails (here: another connection holds the write lock) is surfaced, never silent."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from actorlog.events import ActorlogError, PluginStarted
from actorlog.store import EventStore, StoreClosedError, StoreWriteError


def test_a_failed_commit_is_raised_by_flush_append_and_close_and_earlier_events_survive(log_path: Path) -> None:
    with EventStore(log_path) as store:
        store.append_many([PluginStarted(plugin=f"p{i}") for i in range(10)])

    blocker = sqlite3.connect(log_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock longer than the busy timeout
    try:
        store = EventStore(log_path, busy_timeout=0.2)
        store.append(PluginStarted(plugin="lost"))
        with pytest.raises(StoreWriteError) as caught:
            store.flush()
        failure = caught.value
        message = str(failure)
        assert str(log_path) in message
        assert "locked" in message
        assert "open the log again" in message, "the error says what to do"
        assert isinstance(failure, OSError) and isinstance(failure, ActorlogError)
        assert isinstance(failure.__cause__, sqlite3.OperationalError)
        assert store.failure is failure
        assert store.unwritten == 1, "the event that could not be committed is counted"

        with pytest.raises(StoreWriteError) as again:
            store.append(PluginStarted(plugin="also lost"))
        assert again.value is failure
        with pytest.raises(StoreWriteError):
            store.append_many([PluginStarted(plugin="also lost")])
        with pytest.raises(StoreWriteError):
            store.flush()
        assert store.count() == 10, "reading still works"
    finally:
        blocker.rollback()
        blocker.close()

    # releasing the lock does not revive the failed store: what it lost is reported, not retried
    with pytest.raises(StoreWriteError):
        store.append(PluginStarted(plugin="after release"))
    with pytest.raises(StoreWriteError) as on_close:
        store.close()
    assert on_close.value is failure
    store.close()  # already closed: nothing more to report
    with pytest.raises(StoreClosedError):
        store.append(PluginStarted(plugin="x"))

    with EventStore(log_path) as reopened:
        assert [r.event.plugin for r in reopened.events()] == [f"p{i}" for i in range(10)]
        assert reopened.verify().ok
        reopened.append(PluginStarted(plugin="p10"))
        assert reopened.flush() == 11
