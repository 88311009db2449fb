"""Failure reproduction: a fresh instance of the recorded plugin, fed the recorded messages
with their recorded clock and seeds, raises the same exception at the same message; the
log is never written; changed code and unlogged messages are reported plainly."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from actorlog.actors import ActorSystem
from actorlog.replay.reproduce import NotAFailureError, reproduce
from replay_helpers import (
    GENEROUS_RESTARTS,
    PLUGINS_DIR,
    assert_one_line_error,
    calc_plugin,
    count,
    invoke,
    read,
    run_cli,
    sha256_of,
    wait_until,
)
from actorlog.store import EventStore

Add, Divide, Gamble, Crash = calc_plugin.Add, calc_plugin.Divide, calc_plugin.Gamble, calc_plugin.Crash


@dataclass
class CalcLog:
    path: Path
    divide: int
    """seq of the ZeroDivisionError (deterministic)."""
    unlucky: list[int]
    """seqs of the Unlucky failures (they depend on context.random() and context.now())."""
    overflow: int
    """seq of the OverflowError after a restart (depends on the messages since the restart)."""
    crash: int
    """seq of the OSError that restarted the plugin."""


def failure_seqs(path: Path, exc_type: str) -> list[int]:
    return [r.seq for r in read(path, kinds=["failure.raised"]) if r.event.exc_type == exc_type]


def record_calc(path: Path, *, log_messages: bool | None = None) -> CalcLog:
    with ActorSystem(path, restart_policy=GENEROUS_RESTARTS) as system:
        system.register("calc", calc_plugin.Calc, config={"limit": 10}, log_messages=log_messages)
        system.start()
        failures = 0
        assert system.ask("calc", Add(x=2.0), timeout=10) == 2.0
        with pytest.raises(ZeroDivisionError):
            system.ask("calc", Divide(a=1.0, b=0.0), timeout=10)
        failures += 1
        unlucky = 0
        for n in range(300):
            try:
                system.ask("calc", Gamble(n=n), timeout=10)
            except calc_plugin.Unlucky:
                unlucky += 1
                if unlucky == 3:
                    break
        assert unlucky == 3
        failures += 3
        assert system.ask("calc", Add(x=3.0), timeout=10) == 5.0
        with pytest.raises(OSError):
            system.ask("calc", Crash(), timeout=10)
        failures += 1
        wait_until(lambda: count(system, "plugin.restarted") == 1, what="calc restarted")
        assert system.ask("calc", Add(x=6.0), timeout=10) == 6.0  # a fresh instance: the total restarted
        with pytest.raises(OverflowError):
            system.ask("calc", Add(x=6.0), timeout=10)
        failures += 1
        wait_until(lambda: count(system, "recovery.decided") == failures, what="every failure decided")
    return CalcLog(
        path=path,
        divide=failure_seqs(path, "builtins.ZeroDivisionError")[0],
        unlucky=failure_seqs(path, "calc_plugin.Unlucky"),
        overflow=failure_seqs(path, "builtins.OverflowError")[0],
        crash=failure_seqs(path, "builtins.OSError")[0],
    )


@pytest.fixture
def calc_log(tmp_path: Path) -> CalcLog:
    return record_calc(tmp_path / "calc.db")


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("T6_")}
    env.update(extra)
    return env


# -- the API ---------------------------------------------------------------------------------------


def test_every_recorded_failure_is_reproduced_at_the_same_message(calc_log: CalcLog) -> None:
    before = sha256_of(calc_log.path)
    failures = {r.seq: r for r in read(calc_log.path, kinds=["failure.raised"])}
    for seq in [calc_log.divide, *calc_log.unlucky, calc_log.overflow, calc_log.crash]:
        recorded = failures[seq].event
        outcome = reproduce(calc_log.path, seq)
        assert outcome.reproduced, outcome
        assert (outcome.exc_type, outcome.message) == (recorded.exc_type, recorded.message)
        assert outcome.failed_at_seq == outcome.trigger_seq == recorded.trigger_seq
        trigger = read(calc_log.path, from_seq=recorded.trigger_seq, to_seq=recorded.trigger_seq)[0]
        assert trigger.kind == "message.received" and trigger.correlation == failures[seq].correlation
        assert (outcome.recorded_exc_type, outcome.recorded_message) == (recorded.exc_type, recorded.message)
        assert outcome.recorded_traceback == recorded.traceback
        short = recorded.exc_type.rsplit(".", 1)[-1]
        for traceback in (outcome.recorded_traceback, outcome.traceback):
            assert traceback and "Traceback" in traceback and short in traceback
        assert (outcome.plugin, outcome.class_path, outcome.failure_seq) == ("calc", "calc_plugin:Calc", seq)
        assert outcome.recorded_version == outcome.current_version == "1.0"
        assert not any("version" in note for note in outcome.notes)
    assert sha256_of(calc_log.path) == before


def test_draws_from_the_context_clock_and_random_are_replayed(calc_log: CalcLog) -> None:
    """Unlucky's message names both draws and context.now(): only the recorded seed and
    receive time give the same text."""
    for seq in calc_log.unlucky:
        outcome = reproduce(calc_log.path, seq)
        assert outcome.reproduced and "draw 0." in (outcome.message or "")
        trigger = read(calc_log.path, from_seq=outcome.trigger_seq, to_seq=outcome.trigger_seq)[0]
        assert repr(trigger.ts) in (outcome.message or "")
        assert reproduce(calc_log.path, seq) == outcome  # and again: deterministic


def test_only_the_messages_since_the_last_restart_are_replayed(calc_log: CalcLog) -> None:
    outcome = reproduce(calc_log.path, calc_log.overflow)
    assert outcome.reproduced, outcome
    assert outcome.messages_replayed == 2  # Add(6), Add(6): the fresh instance's whole life
    before_restart = reproduce(calc_log.path, calc_log.crash)
    assert before_restart.reproduced and before_restart.messages_replayed > 5


def test_a_changed_version_with_the_same_behaviour_is_noted(calc_log: CalcLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calc_plugin.Calc, "version", "2.0")
    outcome = reproduce(calc_log.path, calc_log.divide, isolate=False)  # patched in this process only
    assert outcome.reproduced
    assert (outcome.recorded_version, outcome.current_version) == ("1.0", "2.0")
    notes = " ".join(outcome.notes)
    assert "changed" in notes and "1.0" in notes and "2.0" in notes


def test_changed_code_that_no_longer_fails_is_not_reproduced(calc_log: CalcLog, monkeypatch: pytest.MonkeyPatch) -> None:
    before = sha256_of(calc_log.path)
    monkeypatch.setattr(calc_plugin.Calc, "version", "2.0")
    monkeypatch.setattr(calc_plugin, "MODE", "lenient")
    for seq in (calc_log.divide, calc_log.unlucky[0], calc_log.overflow):
        outcome = reproduce(calc_log.path, seq, isolate=False)  # patched in this process only
        assert not outcome.reproduced
        assert outcome.exc_type is None and outcome.failed_at_seq is None
        notes = " ".join(outcome.notes)
        assert "version 1.0" in notes and "2.0" in notes and "changed" in notes
        assert "no exception" in notes
    assert sha256_of(calc_log.path) == before


def test_unlogged_messages_cannot_be_reproduced(tmp_path: Path) -> None:
    path = tmp_path / "quiet.db"
    with ActorSystem(path) as system:
        system.register("calc", calc_plugin.Calc, log_messages=False)
        system.start()
        with pytest.raises(ZeroDivisionError):
            system.ask("calc", Divide(a=1.0, b=0.0), timeout=10)
        wait_until(lambda: count(system, "recovery.decided") == 1)
    assert read(path, kinds=["message.received"]) == []
    seq = failure_seqs(path, "builtins.ZeroDivisionError")[0]
    outcome = reproduce(path, seq)
    assert not outcome.reproduced and outcome.messages_replayed == 0
    assert any("log_messages=False" in note and "not in the log" in note for note in outcome.notes)
    result = run_cli("reproduce", path, seq, "--import-path", PLUGINS_DIR, cwd=tmp_path, env=subprocess_env())
    assert result.returncode == 1 and "log_messages=False" in result.stdout


def test_a_seq_that_is_not_a_plugin_failure_is_refused(calc_log: CalcLog, tmp_path: Path) -> None:
    records = read(calc_log.path)
    for seq in (1, calc_log.divide - 1, calc_log.divide + 1, records[-1].seq + 1, 10**9):
        with pytest.raises(NotAFailureError, match=f"seq {seq}"):
            reproduce(calc_log.path, seq)
    path = tmp_path / "task.db"
    with ActorSystem(path) as system:
        with pytest.raises(ConnectionError):
            system.retry("t6.fetch", max_retries=0).call(_refuse)
    task_failure = failure_seqs(path, "builtins.ConnectionError")[0]
    with pytest.raises(NotAFailureError, match="never registered as a plugin"):
        reproduce(path, task_failure)


def _refuse() -> None:
    raise ConnectionError("refused")


def test_reproduce_reads_an_open_store_without_writing(calc_log: CalcLog) -> None:
    with EventStore.open_readonly(calc_log.path) as store:
        last = store.last_seq()
        outcome = reproduce(store, calc_log.divide)
        assert outcome.reproduced and store.last_seq() == last


# -- the command -------------------------------------------------------------------------------------


def test_cli_reproduce_exits_0_when_reproduced(calc_log: CalcLog, tmp_path: Path) -> None:
    before = sha256_of(calc_log.path)
    seq = calc_log.unlucky[-1]
    result = run_cli("reproduce", calc_log.path, seq, "--import-path", PLUGINS_DIR, cwd=tmp_path, env=subprocess_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"REPRODUCED: failure {seq} of plugin 'calc'")
    assert "--- recorded: calc_plugin.Unlucky" in result.stdout and "--- reproduced: calc_plugin.Unlucky" in result.stdout
    assert result.stdout.count("Traceback") == 2 and result.stderr == ""
    as_json = run_cli("reproduce", calc_log.path, seq, "--import-path", PLUGINS_DIR, "--json", cwd=tmp_path,
                      env=subprocess_env())
    assert as_json.returncode == 0
    document = json.loads(as_json.stdout)
    assert document["reproduced"] is True and document["failure_seq"] == seq
    assert document["failed_at_seq"] == document["trigger_seq"] is not None
    assert document["exc_type"] == document["recorded_exc_type"] == "calc_plugin.Unlucky"
    assert document["message"] == document["recorded_message"]
    assert sha256_of(calc_log.path) == before


def test_cli_reproduce_in_process(calc_log: CalcLog) -> None:
    result = invoke("reproduce", calc_log.path, calc_log.overflow, "--import-path", PLUGINS_DIR, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["reproduced"] is True


def test_cli_reproduce_exits_1_and_says_the_code_changed(calc_log: CalcLog, tmp_path: Path) -> None:
    before = sha256_of(calc_log.path)
    env = subprocess_env(T6_CALC_VERSION="2.0", T6_CALC_MODE="lenient")
    # the plugin module reads these when imported: they reach a reproduction only when allowed
    allowed = ("--allow-env", "T6_CALC_VERSION", "--allow-env", "T6_CALC_MODE")
    result = run_cli("reproduce", calc_log.path, calc_log.divide, "--import-path", PLUGINS_DIR, *allowed, cwd=tmp_path,
                     env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("NOT REPRODUCED")
    assert "note: the plugin's code has changed: the log recorded version 1.0, this installation has 2.0" in result.stdout
    assert "Traceback" in result.stdout  # the recorded one is still shown
    same_behaviour = run_cli("reproduce", calc_log.path, calc_log.divide, "--import-path", PLUGINS_DIR, "--json",
                             *allowed, cwd=tmp_path, env=subprocess_env(T6_CALC_VERSION="2.0"))
    assert same_behaviour.returncode == 0
    document = json.loads(same_behaviour.stdout)
    assert document["reproduced"] is True and document["current_version"] == "2.0"
    assert any("changed" in note for note in document["notes"])
    assert sha256_of(calc_log.path) == before


def test_cli_reproduce_exits_1_when_the_plugin_cannot_be_imported(calc_log: CalcLog, tmp_path: Path) -> None:
    result = run_cli("reproduce", calc_log.path, calc_log.divide, cwd=tmp_path, env=subprocess_env())
    assert result.returncode == 1
    assert "cannot be loaded" in result.stdout and "calc_plugin" in result.stdout
    assert "Traceback (most recent call last)" not in result.stderr


def test_cli_reproduce_exits_2_for_a_seq_that_is_not_a_failure(calc_log: CalcLog, tmp_path: Path) -> None:
    before = sha256_of(calc_log.path)
    for seq in (calc_log.divide - 1, 10**6):
        result = run_cli("reproduce", calc_log.path, seq, "--import-path", PLUGINS_DIR, cwd=tmp_path,
                         env=subprocess_env())
        line = assert_one_line_error(result.returncode, result.stdout, result.stderr)
        assert f"seq {seq}" in line and "not a failure.raised event" in line
    runner = invoke("reproduce", calc_log.path, 1)
    assert_one_line_error(runner.exit_code, runner.stdout, runner.stderr)
    assert sha256_of(calc_log.path) == before
