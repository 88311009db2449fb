"""``actorlog`` as a process: a log that fails under ``demo`` and ``run`` is a few lines and
exit status 1 (an escalated run), not hundreds of lines of tracebacks and status 2;
``snapshot --run`` of a run the log does not hold is refused; Ctrl-C ends ``tail --follow``
with status 0 even while it prints its first screen.

The full disk is real: the command runs with a small RLIMIT_FSIZE (Python ignores SIGXFSZ,
so writes past it fail with EFBIG the way they fail with ENOSPC on a full disk).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from actorlog.events import CounterIncremented
from actorlog.store import EventStore
from demo_helpers import EXAMPLE_CONFIG, finish, start_actorlog
from fault_helpers import audit
from log_helpers import ACTORLOG_CLI, sha256_of
from replay_helpers import assert_one_line_error, run_cli, snapshot_rows

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE and SIGXFSZ as on Linux"),
]

FILE_SIZE_LIMIT = 200 * 1024
"""Bytes any file of the command may grow to: the log fills up a few tasks into the demo."""


def limited(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return apply


def on_a_full_disk(*args: object, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ACTORLOG_CLI), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300, check=False,
        preexec_fn=limited(FILE_SIZE_LIMIT), env=env,
    )


def assert_a_short_escalation_report(result: subprocess.CompletedProcess[str], command: str, log: Path) -> None:
    """Exit 1, a handful of one-line warnings, a last line saying why, no traceback; the log
    keeps everything committed before the disk filled up, intact."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]
    assert len([line for line in lines if not line.startswith(f"[")]) <= 12, result.stderr
    assert lines[-1].startswith(f"actorlog {command}: the system stopped because its event log failed: "), lines[-1]
    assert log.name in lines[-1] and ("disk" in lines[-1] or "full" in lines[-1]), lines[-1]
    assert all(line.startswith(("actorlog", "[")) for line in lines), result.stderr  # progress lines start with [
    records = audit(log)
    assert records and records[0].kind == "run.started"


def test_demo_on_a_full_disk_is_a_few_lines_and_exit_status_1(tmp_path: Path) -> None:
    log = tmp_path / "demo.db"
    result = on_a_full_disk("demo", "--db", log, "--tasks", "6", cwd=tmp_path)
    assert_a_short_escalation_report(result, "demo", log)


def test_run_on_a_full_disk_is_a_few_lines_and_exit_status_1(tmp_path: Path) -> None:
    log = tmp_path / "agent.db"
    result = on_a_full_disk("run", EXAMPLE_CONFIG, "--db", log, cwd=tmp_path)
    assert_a_short_escalation_report(result, "run", log)


def test_verbose_shows_the_library_log_in_full(tmp_path: Path) -> None:
    log = tmp_path / "demo.db"
    result = on_a_full_disk("demo", "--db", log, "--tasks", "6", cwd=tmp_path,
                            env={**os.environ, "ACTORLOG_VERBOSE": "1"})
    assert result.returncode == 1, result.stderr[-3000:]
    # The writer's own report of the failed commit, with its traceback, is always there; a
    # StoreWriteError traceback shows only when some caller was waiting on the failed batch.
    assert "Traceback" in result.stderr and " events failed: " in result.stderr
    assert "actorlog/store/writer.py" in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1].startswith("actorlog demo: the system stopped")
    short = on_a_full_disk("-v", "demo", "--db", tmp_path / "again.db", "--tasks", "6", cwd=tmp_path)
    assert short.returncode == 1 and "Traceback" in short.stderr


def test_a_demo_that_runs_well_prints_no_warning(tmp_path: Path) -> None:
    result = run_cli("demo", "--db", tmp_path / "ok.db", "--tasks", "1", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "actorlog: warning" not in result.stderr and "actorlog: error" not in result.stderr


# -- snapshot --run ------------------------------------------------------------------------------------


def two_runs(path: Path) -> Path:
    for run in ("20261124T101800-3fa2c1", "20261125T090000-77be01"):
        with EventStore(path, run=run) as store:
            store.append_many([CounterIncremented(name="c", value=float(i)) for i in range(3)], actor="metrics")
    return path


def test_a_snapshot_of_a_run_the_log_does_not_hold_is_refused(tmp_path: Path) -> None:
    log = two_runs(tmp_path / "app.db")
    before = sha256_of(log)
    result = run_cli("snapshot", log, "--run", "nope")
    line = assert_one_line_error(result.returncode, result.stdout, result.stderr)
    assert "'nope'" in line and "20261124T101800-3fa2c1" in line and "20261125T090000-77be01" in line, line
    assert snapshot_rows(log) == [] and sha256_of(log) == before
    near = run_cli("snapshot", log, "--run", "20261125T090000-77be0")
    line = assert_one_line_error(near.returncode, near.stdout, near.stderr)
    assert "did you mean '20261125T090000-77be01'" in line, line
    assert snapshot_rows(log) == []


def test_a_snapshot_of_a_run_the_log_holds_is_stored(tmp_path: Path) -> None:
    log = two_runs(tmp_path / "app.db")
    result = run_cli("snapshot", log, "--run", "20261124T101800-3fa2c1")
    assert result.returncode == 0, result.stderr
    assert [row["run"] for row in snapshot_rows(log)] == ["20261124T101800-3fa2c1"]


# -- tail --follow and Ctrl-C -----------------------------------------------------------------------------


def test_ctrl_c_while_tail_follow_prints_its_first_screen_exits_0(tmp_path: Path) -> None:
    log = tmp_path / "big.db"
    with EventStore(log, run="t13-big") as store:
        store.append_many([CounterIncremented(name="c" * 40, value=float(i)) for i in range(3000)], actor="metrics")
    process = start_actorlog("tail", log, "--follow", "-n", "3000", "--interval", "0.05")
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # printing has begun; the rest (far over a pipe's 64 KiB) waits for us
        assert first.split()[:2] == ["seq", "time"], first
        process.send_signal(signal.SIGINT)
        result = finish(process, timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert "aborted" not in result.stderr and "Traceback" not in result.stderr, result.stderr
