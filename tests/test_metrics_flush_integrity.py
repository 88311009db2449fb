"""``system.flush()`` covers every measurement any thread recorded before it (issue 13).

A worker (``tests/helpers/flush_worker.py``) records numbered histogram points from
several threads while its main thread calls ``system.flush()`` round after round. After
every flush but the last it reads the committed points back on a separate read-only
connection at once (what a process started after a crash would see) and reports any
point recorded before the flush that is not committed; after the last flush it SIGKILLs
itself, and the test reads the log with `EventStore.open_readonly`: every point recorded
before that flush began must be there.

Three configurations: two with back-pressure (a small ``max_pending`` keeps senders waiting
for room with a batch in hand, the widest window for a flush to overtake it) and the
default options. CI runs 10 worker processes of 10 flushes each per configuration (the last
flush of each ends in a SIGKILL); ``ACTORLOG_SOAK=1`` runs 40 processes of each::

    ACTORLOG_SOAK=1 .venv/bin/python -m pytest tests/test_metrics_flush_integrity.py -q
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from crash_helpers import HELPERS

from actorlog.store import EventStore

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(signal, "SIGKILL"), reason="needs Linux and SIGKILL"),
]

FLUSH_WORKER = HELPERS / "flush_worker.py"
SOAK = os.environ.get("ACTORLOG_SOAK", "") not in ("", "0")
PROCESSES = 40 if SOAK else 10
ROUNDS = 10
"""Flushes per worker process; the last one is followed by the SIGKILL."""
THREADS = 4

CONFIGS = {
    # (buffer_size, max_pending)
    "small-batches-back-pressure": (16, 64),
    "larger-batches-back-pressure": (64, 256),
    "defaults": (256, 100_000),
}


@dataclass
class WorkerRun:
    returncode: int
    rounds: list[dict[str, Any]] = field(default_factory=list)
    kill: dict[str, Any] | None = None
    stderr: str = ""
    other: list[str] = field(default_factory=list)


def run_worker(path: Path, buffer_size: int, max_pending: int) -> WorkerRun:
    process = subprocess.run(
        [sys.executable, str(FLUSH_WORKER), str(path), str(ROUNDS), str(THREADS), str(buffer_size), str(max_pending)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )
    run = WorkerRun(process.returncode, stderr=process.stderr)
    for line in process.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == "round":
            run.rounds.append(json.loads(rest))
        elif word == "kill":
            run.kill = json.loads(rest)
        else:
            run.other.append(line)
    return run


def missing_after_kill(path: Path, before: list[int]) -> list[int]:
    """Per thread, how many of the points below ``before[t]`` the log does not hold."""
    seen: list[set[int]] = [set() for _ in before]
    with EventStore.open_readonly(path) as store:
        for thread, value in store.db.execute(
            "SELECT json_extract(payload, '$.tags.thread'), json_extract(payload, '$.value') FROM events "
            "WHERE kind = 'histogram.observed'"
        ):
            seen[int(thread)].add(int(value))
    return [sum(1 for v in range(count) if v not in seen[t]) for t, count in enumerate(before)]


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_flush_commits_what_every_thread_recorded_before_it(tmp_path: Path, config: str) -> None:
    buffer_size, max_pending = CONFIGS[config]
    problems: list[str] = []
    recorded = 0
    for index in range(PROCESSES):
        path = tmp_path / f"flush-{index}.db"
        run = run_worker(path, buffer_size, max_pending)
        where = f"{config} worker {index}"
        if run.returncode != -signal.SIGKILL or run.kill is None or len(run.rounds) != ROUNDS - 1 or run.other:
            problems.append(
                f"{where}: exit {run.returncode}, {len(run.rounds)} rounds, kill line {run.kill}, "
                f"other output {run.other[:3]}, stderr {run.stderr[-2000:]!r}"
            )
            continue
        for report in run.rounds:
            if any(report["missing"]):
                problems.append(
                    f"{where} round {report['round']}: just after flush() returned, {sum(report['missing'])} "
                    f"points recorded before it were not committed (per thread {report['missing']}, "
                    f"recorded {report['before']})"
                )
        missing = missing_after_kill(path, run.kill["before"])
        if any(missing):
            problems.append(
                f"{where}: SIGKILLed right after flush() returned, the log lacks {sum(missing)} points "
                f"recorded before the flush (per thread {missing}, recorded {run.kill['before']})"
            )
        recorded += sum(run.kill["before"])
    assert not problems, f"{len(problems)} problems in {PROCESSES * ROUNDS} rounds:\n" + "\n".join(problems[:20])
    assert recorded >= PROCESSES * THREADS  # every thread recorded something in every process
