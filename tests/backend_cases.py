"""The event-log guarantees, written once and run on every backend (the eventsourcing
library's habit): `StoreCases` for the store, `CliCases` for the commands. Each backend's
test module subclasses them with a ``target`` fixture (a new, empty log: a file path or a
PostgreSQL URL) and the raw SQL access a tamperer or an auditor would have.

Live = replay on both backends is the contract suite's job (``test_contract_live_replay``
runs every scenario on PostgreSQL too).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actor_helpers import wait_until
from strategies import FINITE_FLOATS, JSON_SCALARS
from actorlog.events import CounterIncremented, FailureRaised, GaugeSet, MessageReceived, PluginStarted
from actorlog.replay import rebuild
from actorlog.store import EventStore, NotAnEventLogError, ReadOnlyError, SchemaVersionError, StoreError
from actorlog.store.signing import generate_key
from log_helpers import ACTORLOG_CLI, HELPERS

VIEW_COLUMNS = {
    "lifecycle": ["seq", "ts", "time", "run", "actor", "kind", "correlation", "plugin", "class_path",
                  "plugin_version", "healthy", "detail", "reason", "restart_count"],
    "failures": ["seq", "ts", "time", "run", "correlation", "plugin", "exc_type", "message", "severity", "action",
                 "delay", "reason", "raised_seq", "decided_seq"],
    "retries": ["seq", "ts", "time", "run", "actor", "kind", "correlation", "task", "attempt", "delay", "exc_type",
                "message"],
    "measurements": ["seq", "ts", "time", "run", "actor", "kind", "correlation", "metric_type", "name", "value", "ok",
                     "tags", "reason"],
}


class Backend:
    """What a backend's test module provides besides ``target``."""

    def raw(self, target: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run SQL on the log as its owner could, outside actorlog (``?`` placeholders)."""
        raise NotImplementedError

    def tamper(self, target: str, seq: int, payload: str) -> None:
        """Change the payload of row ``seq`` behind actorlog's back, guards put back after."""
        raise NotImplementedError

    def view_columns(self, target: str, view: str) -> list[str]:
        raise NotImplementedError

    def absent(self, target: str) -> str:
        """A target like ``target`` where no log is."""
        raise NotImplementedError


AWKWARD_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10) | \
    st.sampled_from(["a\tb", "line\nbreak", "back\\slash", "\\N", "quote\"d", "ü ✓ 😀", "\r"])
"""Text with what COPY's text format and JSON must escape (actor and correlation cannot hold NUL)."""

PAYLOAD_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10) | AWKWARD_TEXT
"""Text inside a payload: NUL too (JSON escapes it)."""

ANY_EVENTS = st.lists(st.tuples(
    st.one_of(
        st.builds(GaugeSet, name=PAYLOAD_TEXT, value=FINITE_FLOATS, tags=st.dictionaries(PAYLOAD_TEXT, PAYLOAD_TEXT,
                                                                                        max_size=2)),
        st.builds(MessageReceived, recipient=PAYLOAD_TEXT, sender=PAYLOAD_TEXT,
                  message=st.dictionaries(PAYLOAD_TEXT, JSON_SCALARS, max_size=3)),
    ),
    AWKWARD_TEXT, st.none() | AWKWARD_TEXT,
), min_size=1, max_size=12)
"""(event, actor, correlation) triples."""


class StoreCases(Backend):
    """The store's guarantees on one backend."""

    def test_any_events_read_back_exactly_and_verify(self, target: str) -> None:
        @settings(max_examples=25, deadline=None)
        @given(batch=ANY_EVENTS)
        def reads_back(batch: list[Any]) -> None:
            with EventStore(target) as store:
                first = store.last_seq() + 1
                for event, actor, correlation in batch:
                    store.append(event, actor=actor, correlation=correlation)
                store.flush()
                read = list(store.events(from_seq=first))
                assert [(r.event, r.actor, r.correlation) for r in read] == batch
                assert store.verify().ok

        reads_back()

    def test_the_distinct_runs_actors_and_kinds_are_listed_in_code_point_order(self, target: str) -> None:
        # what a typo's "did you mean" hint chooses from; one scan on PostgreSQL, an index walk on SQLite
        actors = ["worker", "Zed", "émile", "a b", "llm"]
        runs = []
        for run in ("r2", "R1", "r10"):
            with EventStore(target, run=run) as store:
                runs.append(run)
                for actor in actors:
                    store.append(GaugeSet(name="q", value=1.0), actor=actor)
                store.append(PluginStarted(plugin="llm"), actor="supervisor")
        with EventStore.open_readonly(target) as store:
            assert store.distinct_values("actor") == sorted({*actors, "supervisor"})
            assert store.distinct_values("run") == sorted(runs)
            assert store.distinct_values("kind") == ["gauge.set", "plugin.started"]
            assert store.distinct_values("actor", limit=2) == sorted({*actors, "supervisor"})[:2]

    def test_events_read_back_as_appended_with_filters(self, target: str) -> None:
        with EventStore(target, run="r1") as store:
            store.append(PluginStarted(plugin="llm"), actor="supervisor", correlation="c1")
            store.append_many([GaugeSet(name="q", value=float(i)) for i in range(5)], actor="worker")
            store.append(FailureRaised(plugin="llm", exc_type="builtins.ValueError", message="bad ü ✓",
                                       traceback="Traceback ..."), actor="llm", correlation="c1")
            assert store.flush() == 7
            records = list(store.events())
            assert [r.seq for r in records] == list(range(1, 8))
            assert [r.kind for r in records] == ["plugin.started"] + ["gauge.set"] * 5 + ["failure.raised"]
            assert records[-1].event.message == "bad ü ✓"
            assert [r.seq for r in store.events(correlation="c1")] == [1, 7]
            assert [r.event.value for r in store.events(kinds="gauge.set", from_seq=3, to_seq=5)] == [1.0, 2.0, 3.0]
            assert [r.seq for r in store.events(actor="worker", run="r1")][:2] == [2, 3]
            assert store.count() == 7 and store.last_seq() == 7
            times = [r.ts for r in records]
            assert times == sorted(times) and len(set(times)) == 7

    def test_nul_in_actor_or_correlation_is_refused_at_the_caller(self, target: str) -> None:
        with EventStore(target) as store:
            for actor, correlation in (("a\x00b", None), ("a", "c\x00")):
                with pytest.raises(ValueError, match="NUL"):
                    store.append(GaugeSet(name="q", value=1.0), actor=actor, correlation=correlation)
            store.append(GaugeSet(name="nul\x00inside", value=1.0), actor="worker")  # JSON escapes it
            store.flush()
            assert [r.event.name for r in store.events()] == ["nul\x00inside"] and store.verify().ok

    def test_a_flush_returns_only_after_commit(self, target: str) -> None:
        with EventStore(target) as writer:
            writer.append_many([CounterIncremented(name="n", value=1.0)] * 250, actor="worker")
            last = writer.flush()
            with EventStore.open_readonly(target) as reader:  # another connection sees it all
                assert reader.count() == 250 and reader.last_seq() == last

    def test_writer_processes_share_one_gap_free_order(self, target: str, tmp_path: Path) -> None:
        ready = tmp_path / "ready"
        ready.mkdir()
        with EventStore(target):  # created once, before the workers race
            pass
        workers = [subprocess.Popen([sys.executable, str(HELPERS / "append_worker.py"), target, str(w), "600",
                                     str(ready), "3"]) for w in range(3)]
        assert [worker.wait(timeout=300) for worker in workers] == [0, 0, 0]
        with EventStore.open_readonly(target) as store:
            records = list(store.events())
            assert [r.seq for r in records] == list(range(1, 1801))
            for w in range(3):
                assert [r.event.value for r in records if r.actor == f"w{w}"] == [float(i) for i in range(600)]
            assert store.verify().ok

    @pytest.mark.parametrize("kill_delay", [0.0, 0.013, 0.041])
    def test_a_writer_killed_mid_append_leaves_a_consistent_log(self, target: str, kill_delay: float) -> None:
        """Whatever the writer was doing when SIGKILLed, the log verifies and holds every event
        flushed before the kill exactly once, followed by nothing but whole batches."""
        import os
        import signal

        worker = subprocess.Popen([sys.executable, str(HELPERS / "kill_worker.py"), target, "50"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert worker.stdout is not None
        try:
            flushed = [worker.stdout.readline() for _ in range(5)]
            assert all(flushed), worker.stderr.read() if worker.stderr else ""
            time.sleep(kill_delay)  # where in its loop the kill lands, not a wait for anything
            os.kill(worker.pid, signal.SIGKILL)
            rest = worker.stdout.read()
            worker.wait(timeout=60)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        last_flushed = int((flushed + rest.splitlines())[-1])
        with EventStore.open_readonly(target) as audit:
            assert audit.verify().ok
            values = [r.event.value for r in audit.events()]
        assert len(values) >= last_flushed + 1 and values == [float(i) for i in range(len(values))]
        with EventStore(target) as store:
            store.append(CounterIncremented(name="after", value=1.0))
            assert store.flush() == len(values) + 1 and store.verify().ok

    def test_update_and_delete_are_refused(self, target: str) -> None:
        with EventStore(target) as store:
            store.append(GaugeSet(name="q", value=1.0), actor="worker")
        for sql in ("UPDATE events SET actor = 'x'", "DELETE FROM events"):
            with pytest.raises(Exception, match="append-only"):
                self.raw(target, sql)
        with EventStore.open_readonly(target) as store:
            assert store.count() == 1 and store.verify().ok

    def test_an_edited_row_breaks_the_chain_there(self, target: str) -> None:
        with EventStore(target) as store:
            store.append_many([GaugeSet(name="q", value=float(i)) for i in range(10)], actor="worker")
        self.tamper(target, 4, '{"name":"q","value":99.0,"tags":{}}')
        with EventStore.open_readonly(target) as store:
            report = store.verify()
        assert not report.ok and report.first_bad_seq == 4, report.problems

    def test_a_newer_schema_is_refused(self, target: str) -> None:
        with EventStore(target):
            pass
        self.raw(target, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        with pytest.raises(SchemaVersionError, match="schema version 99"):
            EventStore.open_readonly(target)

    def test_the_views_have_the_same_columns(self, target: str) -> None:
        with EventStore(target) as store:
            store.append(PluginStarted(plugin="llm"), actor="supervisor")
            store.append(GaugeSet(name="q", value=2.0), actor="worker")
        for view, columns in VIEW_COLUMNS.items():
            assert self.view_columns(target, view) == columns
        assert self.raw(target, "SELECT plugin FROM lifecycle") == [("llm",)]
        assert self.raw(target, "SELECT name, value FROM measurements") == [("q", 2.0)]

    def test_snapshots_are_stored_vouched_for_and_verified(self, target: str) -> None:
        with EventStore(target) as store:
            store.append(GaugeSet(name="q", value=1.0), actor="worker")
            store.save_snapshot("p", 1, store.flush(), '{"n": 1}')
            assert store.snapshots("p") == [(1, 1, '{"n": 1}')]
        with EventStore.open_readonly(target) as store:
            assert store.verify().ok

    def test_subscribers_get_each_commit_with_real_seqs(self, target: str) -> None:
        seen: list[int] = []
        with EventStore(target) as store:
            store.subscribe(lambda commit: seen.extend(r.seq for r in commit.records))
            store.append_many([GaugeSet(name="q", value=float(i)) for i in range(30)], actor="worker")
            store.flush()
        assert seen == list(range(1, 31))

    def test_signed_checkpoints_verify_on_this_backend(self, target: str, tmp_path: Path) -> None:
        key = tmp_path / "log.key"
        generate_key(key)
        with EventStore(target, signing_key=key, checkpoint_every=50) as store:
            for start in range(0, 120, 60):  # two group commits past the threshold, then the close
                store.append_many([GaugeSet(name="q", value=float(i)) for i in range(start, start + 60)],
                                  actor="worker")
                store.flush()
        with EventStore.open_readonly(target) as store:
            report = store.verify(public_key=tmp_path / "log.key.pub")
        assert report.ok and report.checkpoints >= 2 and report.signed_up_to == report.last_seq, report

    def test_a_missing_log_is_one_clear_error(self, target: str) -> None:
        with pytest.raises(NotAnEventLogError, match="no event log"):
            EventStore.open_readonly(self.absent(target))

    def test_a_read_only_store_refuses_appends(self, target: str) -> None:
        with EventStore(target):
            pass
        with EventStore.open_readonly(target) as store, pytest.raises(ReadOnlyError):
            store.append(GaugeSet(name="q", value=1.0))

    def test_runs_lists_each_run(self, target: str) -> None:
        for run in ("run-a", "run-b"):
            with EventStore(target, run=run) as store:
                store.append(GaugeSet(name="q", value=1.0), actor="worker")
        with EventStore.open_readonly(target) as store:
            assert [row[0] for row in store.runs()] == ["run-a", "run-b"]
            assert [row[3] for row in store.runs()] == [1, 1]


def cli(*args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ACTORLOG_CLI), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          check=False)


class CliCases(Backend):
    """The commands on one backend: a demo written to it, then read back by every command."""

    @pytest.fixture
    def demo_log(self, target: str) -> tuple[str, dict[str, Any]]:
        result = cli("demo", "--db", target, "--tasks", "6", "--seed", "3", "--json")
        assert result.returncode == 0, result.stderr[-2000:]
        return target, json.loads(result.stdout)

    def test_stats_of_the_log_are_the_live_statistics(self, demo_log: tuple[str, dict[str, Any]]) -> None:
        target, live = demo_log
        result = cli("stats", target, "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == live
        assert rebuild(target).document() == live

    def test_query_runs_verify_and_snapshot(self, demo_log: tuple[str, dict[str, Any]]) -> None:
        target, live = demo_log
        failures = cli("query", target, "--kind", "failure.raised", "--format", "jsonl")
        assert failures.returncode == 0 and len(failures.stdout.splitlines()) == live["errors"]["total_errors"]
        runs = cli("runs", target, "--json")
        assert runs.returncode == 0 and [r["stopped"] for r in json.loads(runs.stdout)] == ["clean"]
        verify = cli("verify", target)
        assert verify.returncode == 0 and verify.stdout.startswith("ok: "), verify.stdout + verify.stderr
        snapshot = cli("snapshot", target, "--json")
        assert snapshot.returncode == 0, snapshot.stderr
        assert cli("stats", target, "--json").stdout.strip() and cli("verify", target).returncode == 0

    def test_reproduce_a_recorded_failure(self, demo_log: tuple[str, dict[str, Any]]) -> None:
        target, _ = demo_log
        with EventStore.open_readonly(target) as store:
            seq = next(r.seq for r in store.events(kinds="failure.raised", actor="llm") if r.event.plugin == "llm")
        result = cli("reproduce", target, seq)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "reproduced" in result.stdout.lower()

    def test_tail_follow_prints_every_new_event_once_in_order(self, target: str) -> None:
        with EventStore(target) as store:
            store.append(GaugeSet(name="before", value=0.0), actor="worker")
        follower = subprocess.Popen([str(ACTORLOG_CLI), "tail", target, "--follow", "-n", "1", "--format", "jsonl",
                                     "--interval", "0.05"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert follower.stdout is not None
            assert json.loads(follower.stdout.readline())["seq"] == 1
            with EventStore(target) as store:
                for i in range(40):
                    store.append(GaugeSet(name="live", value=float(i)), actor="worker")
                    if i % 7 == 0:
                        store.flush()
            seqs = [json.loads(follower.stdout.readline())["seq"] for _ in range(40)]
            assert seqs == list(range(2, 42))
        finally:
            follower.terminate()
            follower.wait(timeout=30)

    def test_tail_follow_started_while_events_pour_in_skips_none(self, target: str) -> None:
        """Events committed while the follower reads its first screen are printed after it, none skipped."""
        import threading

        with EventStore(target) as store:
            stop = threading.Event()

            def pour() -> None:
                while not stop.is_set():
                    store.append(GaugeSet(name="pour", value=1.0), actor="worker")
                    store.flush()

            writer = threading.Thread(target=pour)
            writer.start()
            try:
                for _ in range(5):
                    follower = subprocess.Popen([str(ACTORLOG_CLI), "tail", target, "--follow", "-n", "1", "--format",
                                                 "jsonl", "--interval", "0.05"], stdout=subprocess.PIPE, text=True)
                    assert follower.stdout is not None
                    seqs = [json.loads(follower.stdout.readline())["seq"] for _ in range(30)]
                    follower.terminate()
                    follower.wait(timeout=30)
                    assert seqs == list(range(seqs[0], seqs[0] + 30)), seqs
            finally:
                stop.set()
                writer.join()

    def test_copy_to_a_file_keeps_every_row(self, demo_log: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
        target, live = demo_log
        copy = tmp_path / "copy.db"
        result = cli("copy", target, copy)
        assert result.returncode == 0, result.stderr
        assert cli("query", copy, "--format", "jsonl").stdout == cli("query", target, "--format", "jsonl").stdout
        assert json.loads(cli("stats", copy, "--json").stdout) == live
        assert cli("verify", copy).returncode == 0

    def test_run_a_config_whose_log_is_this_backend(self, target: str, tmp_path: Path) -> None:
        from demo_helpers import agent_system, system_toml

        config = tmp_path / "app.toml"
        tasks = ["Count the words in a sentence", "Reverse a string"]
        config.write_text(system_toml(agent_system(), log=target, sends=[
            {"to": "agent", "type": "agent.solve", "message": {"task": task, "seed": i}} for i, task in enumerate(tasks)
        ]))
        process = subprocess.Popen([str(ACTORLOG_CLI), "run", str(config)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        try:
            def finished() -> bool:
                try:
                    with EventStore.open_readonly(target) as store:
                        return len(list(store.events(kinds="agent.task_finished"))) == len(tasks)
                except StoreError:  # not created yet
                    return False

            wait_until(lambda: process.poll() is not None or finished(), timeout=120, what="both tasks finished")
            process.send_signal(2)  # SIGINT: a clean stop
            _, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, stderr
        with EventStore.open_readonly(target) as store:
            assert [r[6] for r in store.runs()] == [True] and store.verify().ok

    def test_a_wrong_target_is_one_line(self, target: str) -> None:
        result = cli("stats", self.absent(target))
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "no event log" in result.stderr, result.stderr


def wait_for_rows(target: str, count: int) -> None:
    def enough() -> bool:
        try:
            with EventStore.open_readonly(target) as store:
                return store.count() >= count
        except StoreError:
            return False

    wait_until(enough, timeout=120, what=f"{count} rows in {target}")
    time.sleep(0)  # a scheduling point only, never a wait


class ReplayCases(Backend):
    """Replay on one backend: the same log, copied verbatim to an SQLite file, replays to the
    same statistics as of every point, the same stories and the same reproductions."""

    @pytest.fixture
    def recorded(self, target: str, tmp_path: Path) -> tuple[str, Path, Any]:
        from actorlog.store import copy_log
        from replay_helpers import record_log

        recording = record_log(target)  # type: ignore[arg-type]  # a path or a URL
        twin = tmp_path / "twin.db"
        with EventStore.open_readonly(target) as source:
            copy_log(source, str(twin))
        return target, twin, recording

    def test_statistics_as_of_every_tenth_seq_match_the_twin(self, recorded: tuple[str, Path, Any]) -> None:
        target, twin, _ = recorded
        with EventStore.open_readonly(target) as store:
            last, runs = store.last_seq(), [row[0] for row in store.runs()]
        for run in (None, *runs):
            for seq in range(1, last + 1, 10):
                assert rebuild(target, run=run, until_seq=seq).document() == \
                    rebuild(twin, run=run, until_seq=seq).document(), (run, seq)

    def test_stories_and_reproduction_match_the_twin(self, recorded: tuple[str, Path, Any]) -> None:
        from actorlog.replay import story
        from actorlog.replay.reproduce import reproduce

        target, twin, recording = recorded
        assert [r.seq for r in story(target, recording.failure_correlation)] == \
            [r.seq for r in story(twin, recording.failure_correlation)]
        assert len(story(target, recording.task_correlation)) >= 3
        here, there = (reproduce(str(log), recording.divide_failure_seq) for log in (target, twin))
        assert here.reproduced and there.reproduced and here.exc_type == there.exc_type

    def test_every_view_holds_the_same_rows_as_the_twins(self, recorded: tuple[str, Path, Any]) -> None:
        target, twin, _ = recorded
        with EventStore.open_readonly(target) as here, EventStore.open_readonly(twin) as there:
            for view in VIEW_COLUMNS:
                mine, theirs = (store.query(f"SELECT * FROM {view} ORDER BY seq") for store in (here, there))
                assert mine == theirs and mine, view
            counted = "SELECT plugin, exc_type, count(*) FROM failures GROUP BY 1, 2 ORDER BY 1, 2"
            assert here.query(counted) == there.query(counted)

    def test_a_snapshot_gives_the_same_statistics_as_a_full_fold(self, recorded: tuple[str, Path, Any]) -> None:
        from actorlog.replay import take_snapshot

        target, _, _ = recorded
        with EventStore(target) as store:
            take_snapshot(store)
            store.append(GaugeSet(name="after", value=1.0), actor="worker")
        assert rebuild(target).document() == rebuild(target, use_snapshots=False).document()
