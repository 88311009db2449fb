"""Run the demo's actor system forever, printing a checkpoint after every flush; made to be killed.

Usage: demo_worker.py PATH SEED SCRATCH_ROOT [TASKS]

The system is the demo's (the ``llm``, ``sandbox`` and ``agent`` plugins of
`DEMO_PLUGINS`, the error policy of `run_demo`), with the sandbox's scratch
directories under SCRATCH_ROOT (so the test can find sandbox processes that outlive
this worker). Two threads work at once until the process is killed:

- the main thread solves the demo's tasks, round after round (``demo_tasks(TASKS,
  seed)`` with a new seed each round, so every hazard comes up: model crashes and
  restarts, dropped connections, sandboxes killed by their limits), and checkpoints
  after each task;
- a ticker thread records ``crash.tick`` counters tagged ``n=1, 2, 3...`` (a few
  each time, through the metrics buffers and the collector like any measurement) and
  checkpoints after each group.

A checkpoint calls ``system.flush()`` and, once it has returned, reads the row at the
returned seq back on a separate read-only connection (and the ticker checks there that
every tick it recorded before the flush is committed: if not, it prints ``error ...``
and exits 3), then prints one line with a single ``write`` to stdout (unbuffered; the test sends stdout to a file, where a line that was
written survives the SIGKILL)::

    ready RUN                           the system has started (first line)
    ack SEQ HASH TICK                   flush() returned SEQ; the row at SEQ has HASH; ticks 1..TICK were recorded before it
    task ROUND INDEX SHOWS SOLVED       a task finished (for the reader of a failure message)

Every event committed up to SEQ (and every tick up to TICK) must be in the log
exactly once after the kill.
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import threading
from itertools import count
from typing import Any

from actorlog.actors.error_policy import ErrorPolicy
from actorlog.actors.examples.agent import Solve
from actorlog.actors.examples.demo import DEMO_PLUGINS, DEMO_SEVERITIES, demo_tasks
from actorlog.actors.system import ActorSystem

TICK = "crash.tick"


def say(line: str) -> None:
    """One line, one write: a line in the file is complete or absent."""
    os.write(1, (line + "\n").encode())


class Checkpoints:
    def __init__(self, system: ActorSystem, path: str) -> None:
        self.system = system
        self.path = path
        self.scanned = 0  # the ticker's scan of its own ticks: the seq of the last one found
        self.visible = 0  # and the highest tick seen
        self._local = threading.local()

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            self._local.conn = conn
        return conn

    def ack(self, ticks: int) -> None:
        """Flush, then report the returned seq, the hash stored at it and the ticks recorded before.

        Before reporting, check what flush() promises on a separate connection: the row at
        the returned seq is there and (ticker only) so is every tick recorded before the
        flush. A broken promise is printed as an ``error`` line and the worker exits 3.
        """
        seq = self.system.flush(timeout=120)
        row = self._reader().execute("SELECT hash FROM events WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            say(f"error flush returned {seq} but no row has that seq")
            os._exit(3)
        if ticks > 0:
            visible = self._visible_ticks()
            if visible < ticks:
                say(f"error flush returned {seq} but only ticks up to {visible} of {ticks} are committed")
                os._exit(3)
        say(f"ack {seq} {row[0]} {ticks}")

    def _visible_ticks(self) -> int:
        """The highest tick of this run a reader sees (scanning on from the last one found, along the key)."""
        rows = self._reader().execute(
            "SELECT seq, CAST(json_extract(payload, '$.tags.n') AS INTEGER) FROM events "
            "WHERE seq > ? AND +run = ? AND +kind = 'counter.incremented' AND json_extract(payload, '$.name') = ?",
            (self.scanned, self.system.run, TICK),
        ).fetchall()
        for seq, n in rows:
            self.scanned = max(self.scanned, seq)
            self.visible = max(self.visible, n)
        return self.visible


def tick_forever(checkpoints: Checkpoints, rng: random.Random, stop: threading.Event) -> None:
    increment = checkpoints.system.metrics.increment
    n = 0
    while not stop.is_set():
        for _ in range(rng.randint(1, 20)):
            n += 1
            increment(TICK, tags={"n": str(n)})
        checkpoints.ack(n)
        stop.wait(rng.uniform(0.0, 0.02))


def main() -> None:
    path, seed, scratch = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    tasks = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    plugins: dict[str, tuple[Any, dict[str, Any]]] = {name: (cls, dict(config)) for name, (cls, config) in DEMO_PLUGINS.items()}
    plugins["sandbox"][1]["scratch_root"] = scratch
    system = ActorSystem(path, error_policy=ErrorPolicy(severities=DEMO_SEVERITIES))
    for name, (cls, config) in plugins.items():
        system.register(name, cls, config=config)
    system.start()
    say(f"ready {system.run}")
    checkpoints = Checkpoints(system, path)
    checkpoints.ack(0)
    stop = threading.Event()
    ticker = threading.Thread(
        target=tick_forever, args=(checkpoints, random.Random(seed), stop), name="crash-ticker", daemon=True
    )
    ticker.start()
    try:
        for round_ in count():
            for index, task in enumerate(demo_tasks(tasks, seed * 1000 + round_)):
                solution = system.ask("agent", Solve(task=task.text, seed=task.seed), timeout=600)
                checkpoints.ack(-1)
                say(f"task {round_} {index} {task.shows} {solution.solved}")
    finally:  # only reached on an error: the test kills this process
        stop.set()
        system.stop()


if __name__ == "__main__":
    main()
