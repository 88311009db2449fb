"""``actorlog tail --follow``: a real subprocess sees the events another process appends,
and Ctrl-C (SIGINT) ends it cleanly.

Each test appends only once the follower has printed its first screen, and interrupts it
only once it has printed events appended after that: by then the follower is in its
polling loop, whatever the machine's load. (Ctrl-C during the first screen is another
case, with its own expectation, not something these tests should stumble into.)
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from actorlog.events import FailureRaised, GaugeSet
from actorlog.store import EventStore
from replay_helpers import ACTORLOG_CLI, sha256_of

SAFETY = 60.0
"""Seconds to wait for output before giving up (never a timing assertion; generous, for a
loaded machine)."""


class Lines:
    """Lines of a stream, collected by a background thread."""

    def __init__(self, stream: IO[str]) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.queue.put(line)
        self.queue.put(None)

    def until(self, done: Callable[[list[str]], bool], what: str, safety: float = SAFETY) -> list[str]:
        deadline = time.monotonic() + safety
        while not done(self.seen):
            remaining = deadline - time.monotonic()
            try:
                line = self.queue.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                raise AssertionError(f"no {what} within {safety} s; got {self.seen!r}") from None
            if line is None:
                raise AssertionError(f"output ended before {what}; got {self.seen!r}")
            self.seen.append(line)
        return self.seen


def user_environment() -> dict[str, str]:
    """The environment of a user's shell: stdout to a pipe is block-buffered there."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


@contextmanager
def following(path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], Lines]]:
    proc = subprocess.Popen(
        [str(ACTORLOG_CLI), "tail", str(path), "--follow", "--interval", "0.05", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=user_environment(),
    )
    try:
        yield proc, Lines(proc.stdout)  # type: ignore[arg-type]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def interrupt(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=SAFETY)
    assert proc.stderr is not None
    return code, proc.stderr.read()


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "follow.db"
    with EventStore(path, run="t6-before") as store:
        for i in range(12):
            store.append(GaugeSet(name="t6.before", value=float(i)), actor="metrics")
    return path


def seqs_of(lines: list[str]) -> list[int]:
    return [json.loads(line)["seq"] for line in lines if line.strip()]


def test_follow_prints_events_appended_by_another_writer_and_exits_0_on_ctrl_c(log: Path) -> None:
    with following(log, "--format", "jsonl") as (proc, lines):
        lines.until(lambda seen: len(seen) >= 10, "initial events")
        assert seqs_of(lines.seen) == list(range(3, 13))  # the newest 10
        with EventStore(log, run="t6-writer") as writer:
            writer.append_many([GaugeSet(name="t6.after", value=float(i)) for i in range(3)], actor="metrics")
            writer.flush()
            lines.until(lambda seen: len(seen) >= 13, "the first appended events")
            writer.append(GaugeSet(name="t6.later", value=9.0), actor="metrics")
            writer.flush()
            lines.until(lambda seen: len(seen) >= 14, "the event appended later")
        code, stderr = interrupt(proc)
    rows = [json.loads(line) for line in lines.seen]
    assert [r["seq"] for r in rows] == list(range(3, 17))  # each once, in order
    assert [r["payload"]["name"] for r in rows[10:]] == ["t6.after"] * 3 + ["t6.later"]
    assert {r["run"] for r in rows[10:]} == {"t6-writer"}
    assert code == 0
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr


def failure(message: str) -> FailureRaised:
    return FailureRaised(plugin="p", exc_type="builtins.ValueError", message=message, traceback="")


def test_follow_with_a_filter_prints_only_matching_new_events(log: Path) -> None:
    with EventStore(log, run="t6-earlier") as earlier:  # so that the first screen shows one line
        earlier.append(failure("zero"), actor="p", correlation="c0")
    with following(log, "--format", "jsonl", "--kind", "failure.raised", "-n", "5") as (proc, lines):
        lines.until(lambda seen: len(seen) >= 1, "the first screen")
        with EventStore(log, run="t6-writer") as writer:
            writer.append(GaugeSet(name="t6.noise", value=1.0), actor="metrics")
            writer.append(failure("one"), actor="p", correlation="c1")
            writer.append(GaugeSet(name="t6.noise", value=2.0), actor="metrics")
            writer.append(failure("two"), actor="p", correlation="c2")
            writer.flush()
            lines.until(lambda seen: len(seen) >= 3, "the two new failures")
        code, stderr = interrupt(proc)
    rows = [json.loads(line) for line in lines.seen]
    assert [(r["seq"], r["kind"], r["payload"]["message"]) for r in rows] == [
        (13, "failure.raised", "zero"), (15, "failure.raised", "one"), (17, "failure.raised", "two"),
    ]
    assert code == 0 and "Traceback" not in stderr, stderr


def test_follow_in_table_format_prints_new_events_as_they_come(log: Path) -> None:
    """Piped into another program (``actorlog tail -f app.db | grep ...``), each new event
    must be written out when it is found, not held in a buffer until exit."""
    with following(log, "--format", "table") as (proc, lines):
        lines.until(lambda seen: any(line.split()[:1] == ["12"] for line in seen), "the first screen")
        with EventStore(log, run="t6-writer") as writer:
            writer.append(GaugeSet(name="t6.table", value=5.0), actor="metrics")
            writer.flush()
            lines.until(lambda seen: any("t6.table" in line for line in seen), "the appended event in the table")
        code, stderr = interrupt(proc)
    assert code == 0 and "Traceback" not in stderr, stderr
    row = next(line for line in lines.seen if "t6.table" in line)
    assert row.split()[0] == "13" and "gauge.set" in row


def test_tail_without_follow_leaves_the_log_unchanged_while_a_writer_is_idle(log: Path) -> None:
    before = sha256_of(log)
    result = subprocess.run([str(ACTORLOG_CLI), "tail", str(log), "-n", "3", "--format", "jsonl"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and seqs_of(result.stdout.splitlines()) == [10, 11, 12]
    assert sha256_of(log) == before
