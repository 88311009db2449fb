"""story(correlation): one failure's or one retried task's whole story, in log order."""

from __future__ import annotations

import pytest

from actorlog.replay import story
from actorlog.store import EventStore
from replay_helpers import RecordedLog, invoke, jsonl, read, record_log


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> RecordedLog:
    return record_log(tmp_path_factory.mktemp("story") / "app.db")


def test_the_story_of_a_failure_that_restarted_its_plugin(recorded: RecordedLog) -> None:
    records = story(recorded.path, recorded.failure_correlation)
    assert [r.kind for r in records] == [
        "message.received", "failure.raised", "failure.assessed", "recovery.decided",
        "plugin.stopping", "plugin.stopped", "plugin.starting", "plugin.started", "plugin.restarted",
    ]
    assert all(r.correlation == recorded.failure_correlation for r in records)
    seqs = [r.seq for r in records]
    assert seqs == sorted(seqs)
    received, raised, assessed, decided = (r.event for r in records[:4])
    assert received.recipient == "alpha" and received.message["fail"] == "OSError"
    assert raised.exc_type == "builtins.OSError" and raised.trigger_seq == records[0].seq
    assert assessed.failure_seq == records[1].seq and assessed.severity == "high"
    assert decided.action == "restart" and decided.failure_seq == records[1].seq
    assert records[-1].event.plugin == "alpha" and records[-1].event.restart_count == 1
    # exactly the events carrying that correlation: nothing missing, nothing extra
    everything = read(recorded.path)
    assert seqs == [r.seq for r in everything if r.correlation == recorded.failure_correlation]


def test_the_story_of_a_retried_task(recorded: RecordedLog) -> None:
    records = story(recorded.path, recorded.task_correlation)
    assert [r.kind for r in records] == [
        "failure.raised", "failure.assessed", "recovery.decided", "retry.scheduled", "task.succeeded",
    ]
    raised, assessed, decided, scheduled, succeeded = (r.event for r in records)
    assert raised.plugin == assessed.plugin == decided.plugin == "t6.fetch"
    assert decided.action == "retry" and scheduled.attempt == 1 and scheduled.delay == decided.delay
    assert succeeded.attempts == 2


def test_story_reads_an_open_store_and_an_unknown_correlation_is_empty(recorded: RecordedLog) -> None:
    with EventStore.open_readonly(recorded.path, chunk_size=2) as store:
        assert [r.seq for r in story(store, recorded.failure_correlation)] == [
            r.seq for r in story(recorded.path, recorded.failure_correlation)
        ]
        assert story(store, "no-such-correlation") == []
        assert story(store, "%") == []


def test_query_by_correlation_prints_the_same_story(recorded: RecordedLog) -> None:
    result = invoke("query", recorded.path, "--correlation", recorded.failure_correlation, "--format", "jsonl")
    assert result.exit_code == 0
    assert [row["seq"] for row in jsonl(result.stdout)] == [
        r.seq for r in story(recorded.path, recorded.failure_correlation)
    ]
