"""Overload: producers record measurements and send messages as fast as they can (issue 8).

Each case runs ``tests/helpers/overload_worker.py`` in its own process for 10 s (60 s
with ``ACTORLOG_SOAK=1``, or by hand with ``benchmarks/soak.py overload --seconds 60``):
two producer threads record measurements without pause, a sender asks a ``flaky``
plugin for work without pause (``ValueError`` on every 7th message), and a script
registers and starts a ``late`` plugin and makes ``flaky`` fail once more (``ValueError``,
continue) and once with ``OSError`` (restart) during the overload. The worker reports
what it produced and its RSS as JSON; the test compares that with the log. The cases
run at the same time, so the suite takes about as long as one of them.

The memory bound, measured as the growth of the worker's RSS from the moment the
overload starts, with the default options:

    RSS growth <= 100 MB (`RSS_BOUND_MB`), and <= 25 MB between the first and second half of the run.

Why 100 MB: under overload, memory is held by (1) the measurements on their way to the
collector, at most ``MetricsOptions.max_pending`` = 100,000, each about 0.35 KB (the
tuple, its float and timestamp, the batch list and its pykka envelope; measured: growth
is about 8 MB + 0.34 KB x max_pending for max_pending from 10,000 to 200,000), so about
35 MB; (2) the store's inbox, at most ``max_pending_rows`` = 5,000 encoded rows of well
under 1 KB, about 5 MB; (3) fixed costs: SQLite's page caches, the collector's
projection (8 series of at most ``max_history`` = 1,000 points), thread stacks, about
10 MB. That is about 50 MB (42 MB measured on the reference machine); the bound leaves a
factor of two for the allocator's fragmentation. Nothing else may grow with time: the
second-half bound catches a slow leak that the total would hide.

Accounting: with ``overload="block"`` nothing is dropped and every measurement produced
is committed; with ``overload="sample"`` the counts of the ``measurements.dropped``
events plus the measurements committed equal the measurements produced, exactly, and
the live statistics agree. Lifecycle and failure events are never dropped: every
message sent to ``flaky`` is logged once, every ``failure.raised`` has one
``failure.assessed`` and one ``recovery.decided`` (continue for ``ValueError``, restart
for ``OSError``), every ``plugin.started`` has its ``plugin.stopped``, and the run ends
with a clean ``run.stopped``.

Two more cases run alongside:

- ``tell``: messages sent with ``tell`` instead of ``ask``, as fast as they go. The same
  100 MB bound holds: a plugin's inbox (queued and stashed messages together) is
  bounded by ``max_inbox``, and a sender waits for room (the design: "when the store
  falls behind, senders are slowed").
- ``failures``: 10,000 messages that all fail (``ask``, no measurements). Every failure
  is logged, assessed and decided, and memory does not grow with the number of
  failures: <= 25 MB for 10,000 (the error handler folds each assessment into its
  statistics once committed, instead of keeping them all).
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from crash_helpers import (
    RSS_BOUND_MB,
    OverloadLog,
    accounting_problems,
    failure_problems,
    lifecycle_problems,
    memory_problems,
    overload_report,
    read_overload_log,
    rss_figures,
    start_overload,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc"),
]

SOAK = os.environ.get("ACTORLOG_SOAK", "") not in ("", "0")
SECONDS = 60.0 if SOAK else 10.0
PRODUCERS = 2
TELL_SECONDS = 30.0
"""The told-message flood stops when memory passes the bound, at the latest after this long."""
FAILURE_FLOOD = 10_000
FAILURE_GROWTH_MB = 25


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[dict[str, Any], OverloadLog | None]]]:
    """The overload runs, started at once: ``block`` and ``sample`` (ask), ``tell`` and ``failures``.

    The logs (hundreds of MB) are read once, then removed when the module is done."""
    folder = tmp_path_factory.mktemp("overload")
    seconds = f"{SECONDS:g}"
    common = ("--seconds", seconds, "--producers", str(PRODUCERS), "--senders", "1")
    processes = {
        "block": start_overload(folder / "block.db", *common, "--overload", "block", "--send", "ask"),
        "sample": start_overload(folder / "sample.db", *common, "--overload", "sample", "--send", "ask"),
        # ends as soon as RSS passes the bound (about 5-10 s today); runs TELL_SECONDS once the bug is fixed
        "tell": start_overload(
            folder / "tell.db", "--seconds", f"{TELL_SECONDS:g}", "--producers", "0", "--senders", "1", "--send", "tell",
            "--abort-growth-mb", str(RSS_BOUND_MB),
        ),
        "failures": start_overload(
            folder / "failures.db", "--seconds", "600", "--producers", "0", "--senders", "1", "--send", "ask",
            "--fail-every", "1", "--failures", str(FAILURE_FLOOD), "--no-script",
        ),
    }
    started = time.monotonic()
    results: dict[str, tuple[dict[str, Any], OverloadLog | None]] = {}
    try:
        for name, process in processes.items():
            report = overload_report(process, timeout=SECONDS * 10 + 120)
            report["wall"] = time.monotonic() - started  # when its report was read (they run at once)
            log = None if report.get("memory_only") else read_overload_log(folder / f"{name}.db", report["run"])
            results[name] = (report, log)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    for name, (report, _) in results.items():
        figures = rss_figures(report)
        print(
            f"\noverload {name}: {report['seconds']} s (report read after {report['wall']:.1f} s), RSS {figures['start_mb']:.1f} -> peak {figures['peak_mb']:.1f} MB "
            f"(growth {figures['growth_mb']:.1f} MB, second half {figures['late_growth_mb']:+.1f} MB); "
            f"measurements {report.get('measurements', {}).get('produced')}, messages {report.get('messages')}, "
            f"backlog peak {report.get('backlog_peak')}, dropped {report.get('dropped_live')}"
        )
    yield results
    for name in processes:
        for suffix in ("", "-wal", "-shm"):
            (folder / f"{name}.db{suffix}").unlink(missing_ok=True)


@pytest.mark.parametrize("overload", ["block", "sample"])
def test_memory_stays_bounded(runs: dict[str, tuple[dict[str, Any], OverloadLog | None]], overload: str) -> None:
    report, _ = runs[overload]
    assert not memory_problems(report), memory_problems(report)
    options = report["options"]
    assert options["max_pending"] == 100_000 and options["max_pending_rows"] == 5_000, "the bound is for the defaults"
    assert report["backlog_peak"] <= options["max_pending"]
    # the overload was real: the backlog filled up (producers waited, or dropped)
    assert report["backlog_peak"] >= options["max_pending"] - PRODUCERS * options["buffer_size"], report["backlog_peak"]


@pytest.mark.parametrize("overload", ["block", "sample"])
def test_every_measurement_is_committed_or_counted_as_dropped(
    runs: dict[str, tuple[dict[str, Any], OverloadLog | None]], overload: str
) -> None:
    report, log = runs[overload]
    assert log is not None
    assert not accounting_problems(report, log), accounting_problems(report, log)
    if overload == "sample":
        assert log.dropped > 0 and log.drop_events > 0, "producers at full speed must outrun the store"
    assert report["stderr"] == "", report["stderr"][-3000:]


@pytest.mark.parametrize("overload", ["block", "sample"])
def test_lifecycle_and_failure_events_are_all_logged(
    runs: dict[str, tuple[dict[str, Any], OverloadLog | None]], overload: str
) -> None:
    report, log = runs[overload]
    assert log is not None
    assert report["messages"]["failed"] >= 1, "the sender's first message (n=0) fails during the overload"
    assert not lifecycle_problems(report, log), lifecycle_problems(report, log)


def test_memory_stays_bounded_when_messages_are_told(runs: dict[str, tuple[dict[str, Any], OverloadLog | None]]) -> None:
    report, _ = runs["tell"]
    assert not memory_problems(report), memory_problems(report)


def test_a_flood_of_failures_is_logged_completely(runs: dict[str, tuple[dict[str, Any], OverloadLog | None]]) -> None:
    report, log = runs["failures"]
    assert log is not None
    sent, failed = report["messages"]["sent"], report["messages"]["failed"]
    assert failed == sent >= FAILURE_FLOOD
    assert log.received == Counter(range(sent)), "every message is logged once"
    assert [f[2] for f in log.failures] == ["builtins.ValueError"] * failed
    assert not failure_problems(log), failure_problems(log)
    assert log.run_stopped == [True]


def test_memory_does_not_grow_with_the_number_of_failures(
    runs: dict[str, tuple[dict[str, Any], OverloadLog | None]],
) -> None:
    report, _ = runs["failures"]
    growth = rss_figures(report)["growth_mb"]
    assert growth <= FAILURE_GROWTH_MB, f"{report['messages']['failed']:,} failures grew RSS by {growth:.1f} MB"
