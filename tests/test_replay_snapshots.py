"""Snapshots: ``actorlog snapshot`` and take_snapshot store the folded statistics without
touching events; rebuilds start from the newest usable snapshot and give exactly what a
full fold gives; snapshots of another version, other options, or garbage are skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actorlog.actors import ActorSystem
from actorlog.replay import Statistics, newest_snapshot, rebuild, statistics_document, take_snapshot
from actorlog.replay.rebuild import SNAPSHOT_PROJECTION
from actorlog.store import EventStore
from replay_helpers import (
    EVENTS,
    TIME_STEPS,
    Busy,
    RecordedLog,
    Work,
    append_timed,
    events_rows,
    fresh_log,
    invoke,
    read,
    record_log,
    run_cli,
    sha256_of,
    snapshot_rows,
    timed_events,
    wait_until,
)

MARK = 424242
"""An error total no real log here reaches: a doctored snapshot's fingerprint."""


@pytest.fixture
def recorded(tmp_path: Path) -> RecordedLog:
    return record_log(tmp_path / "app.db")


def full(path: Path, **options: Any) -> dict[str, Any]:
    return rebuild(path, use_snapshots=False, **options).document()


def doctored_state(path: Path, *, until_seq: int | None = None, max_history: int | None = None) -> tuple[int, str]:
    """A genuine state with the error total replaced by MARK: (position, JSON)."""
    statistics = rebuild(path, until_seq=until_seq, use_snapshots=False, max_history=max_history)
    state = statistics.state()
    state["errors"]["total"] = MARK
    return statistics.position, msgspec.json.encode(state).decode()


def save(path: Path, position: int, state: str, *, version: int = Statistics.version, run: str = "") -> None:
    with EventStore(path) as store:
        store.save_snapshot(SNAPSHOT_PROJECTION, version, position, state, run=run)


# -- rebuild from snapshot + tail equals a full rebuild ---------------------------------------------


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    events=st.lists(EVENTS, min_size=1, max_size=40),
    gaps=st.lists(TIME_STEPS, min_size=1, max_size=4),
    cuts=st.lists(st.integers(0, 40), min_size=1, max_size=4),
    max_history=st.sampled_from([1000, 3]),
    probe=st.integers(0, 45),
)
def test_snapshot_plus_tail_equals_a_full_rebuild(
    tmp_path: Path, events: list[Any], gaps: list[float], cuts: list[int], max_history: int, probe: int
) -> None:
    path = fresh_log(tmp_path)
    items = timed_events(events, gaps)
    cuts = sorted({min(c, len(items)) for c in cuts})
    positions = []
    with EventStore(path) as store:
        done = 0
        for cut in cuts:
            append_timed(store, items[done:cut])
            store.flush()
            done = cut
            positions.append(take_snapshot(store, max_history=max_history))
        append_timed(store, items[done:])
    # each snapshot's digest is a snapshot.taken row in the chain, right after what it covers
    records = read(path)
    taken = [r for r in records if r.kind == "snapshot.taken"]
    assert [r.actor for r in taken] == ["store"] * len(cuts)
    covered = [max((r.seq for r in records if r.seq < t.seq and r.actor != "store"), default=0) for t in taken]
    assert positions == covered == [t.event.position for t in taken]
    assert [row["position"] for row in snapshot_rows(path)] == covered
    assert [r.actor != "store" for r in records].count(True) == len(items)
    assert rebuild(path, max_history=max_history).document() == full(path, max_history=max_history)
    until = min(probe, len(items))
    assert rebuild(path, until_seq=until, max_history=max_history).document() == full(
        path, until_seq=until, max_history=max_history
    )
    with EventStore.open_readonly(path) as store:
        used = newest_snapshot(store, max_history=max_history)
    assert used is not None and used.position == covered[-1]


def test_a_usable_snapshot_is_really_read(recorded: RecordedLog) -> None:
    """Without this, every other snapshot test would pass on a rebuild that ignores snapshots."""
    position, state = doctored_state(recorded.path)
    save(recorded.path, position, state)
    assert rebuild(recorded.path).errors.total == MARK
    assert statistics_document(recorded.path)["errors"]["total_errors"] == MARK
    assert full(recorded.path)["errors"]["total_errors"] == 6
    assert rebuild(recorded.path, as_of=read(recorded.path)[-1].ts).errors.total == 6  # as_of folds the whole log


# -- snapshots that must not be used ------------------------------------------------------------------


def test_a_snapshot_of_another_version_is_ignored(recorded: RecordedLog) -> None:
    expected = full(recorded.path)
    position, state = doctored_state(recorded.path)
    save(recorded.path, position, state, version=999)
    assert rebuild(recorded.path).document() == expected
    assert json.loads(invoke("stats", recorded.path, "--json").stdout) == expected


def test_a_snapshot_with_other_options_is_ignored(recorded: RecordedLog) -> None:
    expected = full(recorded.path)
    position, state = doctored_state(recorded.path, max_history=3)
    save(recorded.path, position, state)
    assert rebuild(recorded.path).document() == expected
    assert rebuild(recorded.path, max_history=3).errors.total == MARK


def genuine_state(path: Path) -> str:
    return msgspec.json.encode(rebuild(path, use_snapshots=False).state()).decode()


GARBAGE = {
    "not-json": lambda path: "this is not a snapshot",
    "empty": lambda path: "",
    "truncated": lambda path: genuine_state(path)[: len(genuine_state(path)) // 2],
    "null": lambda path: "null",
    "list": lambda path: "[1, 2, 3]",
    "number": lambda path: "42",
    "empty-object": lambda path: "{}",
    "metrics-only": lambda path: '{"metrics": {"max_history": 1000}}',
    "wrong-types": lambda path: json.dumps({**json.loads(genuine_state(path)), "plugins": "nope"}),
    "bad-position": lambda path: json.dumps({**json.loads(genuine_state(path)), "position": "abc"}),
    "bad-recent": lambda path: json.dumps(
        {**json.loads(genuine_state(path)), "errors": {**json.loads(genuine_state(path))["errors"], "recent": [{"x": 1}]}}
    ),
    "bad-points": lambda path: json.dumps(
        {**json.loads(genuine_state(path)),
         "metrics": {**json.loads(genuine_state(path))["metrics"], "points": [["h", [], [[1.0, 2.0, 3.0]]]]}}
    ),
}


@pytest.mark.parametrize("garbage", sorted(GARBAGE))
def test_a_garbage_snapshot_is_ignored_and_an_older_one_used(recorded: RecordedLog, garbage: str) -> None:
    records = read(recorded.path)
    middle = records[len(records) // 2].seq
    expected = full(recorded.path)
    older, older_state = doctored_state(recorded.path, until_seq=middle)
    save(recorded.path, older, older_state)
    save(recorded.path, records[-1].seq, GARBAGE[garbage](recorded.path))
    statistics = rebuild(recorded.path)  # skips the garbage, starts from the older (doctored) one
    assert statistics.errors.total == MARK + (expected["errors"]["total_errors"] - full(recorded.path, until_seq=middle)["errors"]["total_errors"])
    assert statistics.position == records[-1].seq
    with EventStore.open_readonly(recorded.path) as store:
        used = newest_snapshot(store)
    assert used is not None and used.position == older


@pytest.mark.parametrize("garbage", ["not-json", "truncated", "list", "wrong-types"])
def test_a_garbage_snapshot_alone_gives_a_full_rebuild(recorded: RecordedLog, garbage: str) -> None:
    expected = full(recorded.path)
    save(recorded.path, read(recorded.path)[-1].seq, GARBAGE[garbage](recorded.path))
    assert rebuild(recorded.path).document() == expected
    result = invoke("stats", recorded.path, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == expected


def test_until_seq_before_the_newest_snapshot_uses_an_older_one_or_none(recorded: RecordedLog) -> None:
    records = read(recorded.path)
    first, second = records[len(records) // 3].seq, records[2 * len(records) // 3].seq
    _, state = doctored_state(recorded.path, until_seq=first)
    save(recorded.path, first, state)
    save(recorded.path, second, genuine_state_until(recorded.path, second))
    with EventStore.open_readonly(recorded.path) as store:
        assert newest_snapshot(store).position == second  # type: ignore[union-attr]
        assert newest_snapshot(store, until_seq=second - 1).position == first  # type: ignore[union-attr]
        assert newest_snapshot(store, until_seq=first).position == first  # type: ignore[union-attr]
        assert newest_snapshot(store, until_seq=first - 1) is None
    between = (first + second) // 2
    # between the two: the older (doctored) snapshot is the start, never the newer one
    assert rebuild(recorded.path, until_seq=between).errors.total >= MARK
    assert rebuild(recorded.path, until_seq=between).position == between
    # before both: no snapshot at all, so exactly the full fold
    assert rebuild(recorded.path, until_seq=first - 1).document() == full(recorded.path, until_seq=first - 1)
    # at or after the newer (genuine) one: equal to the full fold
    for until in (second, records[-1].seq, None):
        assert rebuild(recorded.path, until_seq=until).document() == full(recorded.path, until_seq=until)


def genuine_state_until(path: Path, seq: int) -> str:
    return msgspec.json.encode(rebuild(path, until_seq=seq, use_snapshots=False).state()).decode()


def test_a_runs_snapshot_serves_only_that_run(recorded: RecordedLog) -> None:
    run = read(recorded.path)[0].run
    with EventStore(recorded.path) as store:
        position = take_snapshot(store, run=run)
    assert position == max(r.seq for r in read(recorded.path, run=run))
    with EventStore.open_readonly(recorded.path) as store:
        assert newest_snapshot(store, run=run) is not None
        assert newest_snapshot(store) is None
    assert rebuild(recorded.path, run=run).document() == full(recorded.path, run=run)
    assert rebuild(recorded.path).document() == full(recorded.path)


# -- the snapshot command -------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["runner", "subprocess"])
def test_the_snapshot_command_adds_a_row_and_leaves_events_alone(recorded: RecordedLog, how: str) -> None:
    path = recorded.path
    rows_before, count_before = events_rows(path), len(read(path))
    expected = full(path)
    if how == "runner":
        result = invoke("snapshot", path, "--json")
        code, out = result.exit_code, result.stdout
    else:
        completed = run_cli("snapshot", path, "--json")
        code, out = completed.returncode, completed.stdout
    assert code == 0, out
    assert json.loads(out) == {"position": rows_before[-1][0], "run": None}
    snapshots = snapshot_rows(path)
    assert len(snapshots) == 1
    after = events_rows(path)
    assert after[: len(rows_before)] == rows_before  # every column, the hash chain included
    (taken,) = read(path, from_seq=rows_before[-1][0] + 1)  # and one row more: the snapshot's digest
    assert (taken.kind, taken.actor, taken.event.position) == ("snapshot.taken", "store", rows_before[-1][0])
    assert len(read(path)) == count_before + 1
    with EventStore.open_readonly(path) as store:
        assert store.verify().ok
        used = newest_snapshot(store)
    assert used is not None and used.position == rows_before[-1][0]
    assert rebuild(path).document() == expected
    verify = run_cli("verify", path) if how == "subprocess" else None
    assert verify is None or verify.returncode == 0


def test_the_snapshot_command_in_text_and_for_one_run(recorded: RecordedLog) -> None:
    run = read(recorded.path)[0].run
    result = invoke("snapshot", recorded.path)
    assert result.exit_code == 0 and result.stdout.startswith("snapshot stored at seq ")
    result = invoke("snapshot", recorded.path, "--run", run)
    assert result.exit_code == 0 and f"for run {run}" in result.stdout
    assert len(snapshot_rows(recorded.path)) == 2
    stats = invoke("stats", recorded.path, "--json", "--run", run)
    no_snapshots = invoke("stats", recorded.path, "--json", "--run", run, "--no-snapshots")
    assert json.loads(stats.stdout) == json.loads(no_snapshots.stdout) == full(recorded.path, run=run)


# -- automatic snapshots --------------------------------------------------------------------------------


def test_snapshot_every_stores_snapshots_automatically(tmp_path: Path) -> None:
    path = tmp_path / "auto.db"
    with ActorSystem(path, snapshot_every=20) as system:
        system.register("w0", Busy)
        system.start()
        for i in range(30):
            if i % 5 == 0:
                with pytest.raises(ValueError):
                    system.ask("w0", Work(fail="ValueError", text=f"#{i}"), timeout=10)
            else:
                system.ask("w0", Work(value=float(i)), timeout=10)
        system.flush()
        wait_until(lambda: snapshot_rows(path), timeout=15, what="an automatic snapshot")
        live = system.statistics()
        run = system.run
    rows = snapshot_rows(path)
    # snapshots of the run's live statistics, stored for that run
    assert rows and all(row["position"] >= 20 and row["projection"] == "statistics" and row["run"] == run
                        for row in rows)
    with EventStore.open_readonly(path) as store:
        used = newest_snapshot(store, run=run)
    assert used is not None and used.position >= 20
    assert rebuild(path, run=run).document() == full(path, run=run)
    assert rebuild(path).document() == full(path)
    assert statistics_document(path, run=run, until_seq=live["position"]) == live
    assert live["errors"]["total_errors"] == 6
    hash_before = sha256_of(path)
    assert invoke("stats", path).exit_code == 0
    assert sha256_of(path) == hash_before
