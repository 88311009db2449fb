"""Real processes: two writers on one file, and a writer killed with SIGKILL mid-append."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from log_helpers import HELPERS

from actorlog.events import CounterIncremented
from actorlog.store import EventStore

pytestmark = pytest.mark.slow

WORKERS = 2
PER_WORKER = 3000


def test_two_processes_appending_concurrently_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with EventStore(path):
        pass  # the log exists before the workers start: this test is about concurrent appends
    ready = tmp_path / "ready"
    ready.mkdir()
    workers = [
        subprocess.Popen(
            [sys.executable, str(HELPERS / "append_worker.py"), str(path), str(wid), str(PER_WORKER), str(ready),
             str(WORKERS)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for wid in range(WORKERS)
    ]
    for worker in workers:
        try:
            _, err = worker.communicate(timeout=120)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        assert worker.returncode == 0, err

    with EventStore.open_readonly(path) as reader:
        records = list(reader.events())
        report = reader.verify()
        integrity = reader.db.execute("PRAGMA integrity_check").fetchone()[0]
    assert [r.seq for r in records] == list(range(1, WORKERS * PER_WORKER + 1))
    by_worker: dict[str, list[float]] = defaultdict(list)
    for record in records:
        assert isinstance(record.event, CounterIncremented)
        assert record.actor == record.event.name and record.run == f"worker-{record.event.name[1:]}"
        by_worker[record.event.name].append(record.event.value)
    assert set(by_worker) == {f"w{wid}" for wid in range(WORKERS)}
    for values in by_worker.values():
        # every (worker, i) exactly once, and each worker's events in the order it appended them
        assert values == [float(i) for i in range(PER_WORKER)]
    assert report.ok and report.events_checked == WORKERS * PER_WORKER
    assert integrity == "ok"


class LineReader(threading.Thread):
    """Collects the complete lines a process prints, so waiting for them can time out."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.lines: list[str] = []
        self.changed = threading.Condition()

    def run(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.endswith("\n"):
                with self.changed:
                    self.lines.append(line.strip())
                    self.changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.lines) >= count, timeout=timeout)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("kill_delay", [0.0, 0.013, 0.041])
def test_a_writer_killed_mid_append_leaves_a_consistent_log(tmp_path: Path, kill_delay: float) -> None:
    """Whatever the writer was doing when killed, the log opens, verifies, and holds every
    event flushed before the kill exactly once, followed by nothing but whole batches."""
    path = tmp_path / "killed.db"
    worker = subprocess.Popen(
        [sys.executable, str(HELPERS / "kill_worker.py"), str(path), "50"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    reader = LineReader(worker)
    reader.start()
    try:
        progressed = reader.wait_for(5, timeout=60)
        if not progressed:
            worker.kill()
            _, err = worker.communicate(timeout=60)
            pytest.fail(f"the worker made no progress: exit {worker.returncode}, stderr: {err}")
        time.sleep(kill_delay)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    reader.join(timeout=60)
    assert worker.returncode == -signal.SIGKILL
    last_flushed = int(reader.lines[-1])

    with EventStore.open_readonly(path) as audit:
        report = audit.verify()
        assert audit.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        values = [r.event.value for r in audit.events()]
    assert report.ok
    # flushed events are all there, once, in order; what came after the last flush is a whole
    # number of committed rows continuing the same sequence (a prefix of what was appended)
    assert len(values) >= last_flushed + 1
    assert values == [float(i) for i in range(len(values))]

    with EventStore(path) as store:
        assert store.verify().ok
        store.append(CounterIncremented(name="after", value=1.0))
        assert store.flush() == len(values) + 1
        assert store.verify().ok
