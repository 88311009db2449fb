"""Crash safety: the demo's actor system killed with SIGKILL at random moments (issue 8).

A worker (``tests/helpers/demo_worker.py``) runs the demo's system -- the ``llm``,
``sandbox`` and ``agent`` plugins of `DEMO_PLUGINS`, solving the demo's tasks round after
round, with a ticker thread recording counters -- and after every ``system.flush()``
prints the seq it returned and the hash of the row at that seq read back from the log.
The test kills it with SIGKILL at a moment drawn from a seeded schedule (`kill_plan`:
15 % of the kills up to 1 s after the spawn, so some land while the log is opened or
created and the plugins start; the others up to 1.5 s after the system is running),
then starts the next worker on the *same* log, and so on: each worker also appends to a
log left behind by a killed one. After every kill:

- the log passes verification (`EventStore.verify`, the code behind ``actorlog verify``;
  the ``actorlog verify`` and ``actorlog stats --json`` commands themselves run after
  every 4th kill and the last one, to keep the suite quick) and
  ``PRAGMA integrity_check``;
- the statistics rebuild (`rebuild`) up to the log's last seq;
- every checkpoint any worker acknowledged is there: seqs 1..N without a gap, the row at
  each acknowledged seq with the acknowledged hash (with the verified hash chain, this
  pins every row before it too), and every acknowledged tick counter of every run
  logged exactly once.

And while each worker runs, it checks after every flush, on a separate connection, that
the row at the returned seq and every tick recorded before the flush are committed (it
prints an error and exits, which fails the test): a ``flush()`` that answers before its
commit shows at once, not only when a kill happens to land in the gap.

No sandboxed process outlives its killed host: one still running 3 s after the kill
fails the test (and is ended by pid so they do not pile up). Scratch directories left
behind by a kill in the host's own window (before the launcher starts, or after it
ends) are counted, not failed.

A failure message starts with the seed, the kill's number and its delay: the schedule
is a function of those alone. To reproduce with another seed or more kills::

    ACTORLOG_CRASH_SEED=123 .venv/bin/python -m pytest tests/test_fault_crash.py -q -p no:randomly
    ACTORLOG_SOAK=1 .venv/bin/python -m pytest tests/test_fault_crash.py -q -p no:randomly   # 200 kills
    .venv/bin/python benchmarks/soak.py crash --kills 200 --seed 123                           # the same, by hand

``ACTORLOG_SOAK=1`` scales both fault suites to their by-hand sizes (200 kills here,
60 s of overload in tests/test_fault_overload.py).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
from crash_helpers import (
    CrashHistory,
    LeftoverWatch,
    crash_problems,
    kill_plan,
    make_scratch_root,
    run_and_kill,
    worker_problems,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux") or not hasattr(signal, "SIGKILL"), reason="needs Linux and SIGKILL"),
]

SOAK = os.environ.get("ACTORLOG_SOAK", "") not in ("", "0")
KILLS = 200 if SOAK else 20
SEED = int(os.environ.get("ACTORLOG_CRASH_SEED", "8"))
CLI_EVERY = 4


def test_the_demo_killed_at_random_moments_keeps_every_acknowledged_event(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    scratch = make_scratch_root()
    watch = LeftoverWatch(scratch)
    history = CrashHistory()
    anchors = {"spawn": 0, "ready": 0}
    leaked_scratch: list[str] = []
    try:
        for index in range(KILLS):
            plan = kill_plan(SEED, index)
            anchors[plan.anchor] += 1
            killed = run_and_kill(path, plan, scratch, tmp_path)
            history.add(killed)
            cli = index % CLI_EVERY == CLI_EVERY - 1 or index == KILLS - 1
            problems = worker_problems(killed) + crash_problems(path, history, cli=cli)
            assert not problems, (
                f"{plan.describe()}: {len(killed.output.acks)} acks, last task {killed.output.tasks[-1:]}\n  "
                + "\n  ".join(problems)
                + f"\n(log {path}; the worker's output in {tmp_path}/kill-{index:04d}.out/.err)"
            )
            watch.scan(index, killed.killed_at)
    finally:
        watch.finish(KILLS - 1)
        leaked_scratch = watch.scratch_dirs()
        watch.remove_scratch()

    # the schedule exercised what it is meant to: kills while running, after real work
    assert anchors["ready"] >= KILLS // 2, anchors
    assert history.last_acked > 100 * anchors["ready"] // 2, f"few checkpoints were acknowledged: {history.last_acked}"
    assert len(history.ticks) >= anchors["ready"], "some workers never reported a run"
    print(
        f"\n{KILLS} kills (seed {SEED}; {anchors}): {len(history.acked)} checkpoints acknowledged, up to seq "
        f"{history.last_acked}, over {len(history.ticks)} runs; at most {watch.peak} sandbox processes seen after a kill; "
        f"{len(leaked_scratch)} scratch directories left behind\n{watch.summary()}"
    )
    # A launcher sees its host die (its status pipe's reader vanishes) and kills its program:
    # no sandboxed process outlives its host. A scratch directory may still be left when the
    # kill lands between its creation and the launcher's start, or after the launcher's end
    # and before the host removes it (counted in the summary above, not a failure).
    assert not watch.lingering, watch.summary()
