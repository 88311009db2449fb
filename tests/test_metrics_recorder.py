"""The recorder's own bookkeeping (issue 12): a per-thread buffer is freed once its
thread has ended and its measurements are sent, so short-lived threads leave nothing
behind for the background sender to walk. ``ACTORLOG_SOAK=1`` runs the issue's 20,000
threads instead of 2,000.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from actorlog.actors import ActorSystem, MetricsOptions
from metrics_helpers import measurement_records, wait_until

SOAK = os.environ.get("ACTORLOG_SOAK", "") not in ("", "0")

# -- buffers of ended threads ---------------------------------------------------------------------------------------

SHORT_THREADS = 20_000 if SOAK else 2_000
"""Short-lived threads that each record one measurement (20,000 is the issue's figure)."""


def run_short_threads(system: ActorSystem, count: int, at_once: int = 100) -> None:
    """``count`` threads, ``at_once`` alive at a time, each recording one counter and ending."""

    def record(index: int) -> None:
        system.metrics.increment("short.thread", tags={"parity": str(index % 2)})

    for start in range(0, count, at_once):
        threads = [threading.Thread(target=record, args=(i,)) for i in range(start, min(count, start + at_once))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


@pytest.mark.parametrize("flush_interval", [3600.0, 0.01], ids=["flush", "background-sender"])
def test_buffers_of_ended_threads_are_freed_once_their_measurements_are_sent(tmp_path: Path, flush_interval: float) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path, metrics=MetricsOptions(flush_interval=flush_interval)) as system:
        run_short_threads(system, SHORT_THREADS)

        def freed() -> bool:
            if flush_interval > 60:
                system.flush()  # without a background sender, a flush sends (and frees) them
            statistics = system.metrics.statistics()
            return statistics.buffers == 0 and statistics.buffered == 0

        wait_until(freed, timeout=10, what=f"the buffers of {SHORT_THREADS} ended threads are freed")
        system.flush()
        live = system.all_metrics().counters
        statistics = system.metrics.statistics()
        assert (statistics.buffers, statistics.buffered, statistics.in_transit) == (0, 0, 0)
        # a thread recording again after its buffer is gone gets a new one; nothing is lost
        system.metrics.increment("short.thread", tags={"parity": "0"})
        assert system.metrics.statistics().buffers == 1
    half = SHORT_THREADS // 2
    assert live == {"short.thread{parity=0}": float(half), "short.thread{parity=1}": float(SHORT_THREADS - half)}
    assert len(measurement_records(path)) == SHORT_THREADS + 1  # every measurement of every ended thread


def test_a_live_thread_keeps_its_buffer(tmp_path: Path) -> None:
    recorded = threading.Event()
    release = threading.Event()
    with ActorSystem(tmp_path / "app.db", metrics=MetricsOptions(flush_interval=0.01)) as system:

        def record_and_wait() -> None:
            system.metrics.increment("waiting")
            recorded.set()
            release.wait()
            system.metrics.increment("waiting")

        thread = threading.Thread(target=record_and_wait)
        thread.start()
        recorded.wait()
        system.flush()
        assert system.metrics.statistics().buffers == 1  # sent, but its thread may still record
        release.set()
        thread.join()
        system.flush()
        assert system.all_metrics().counters == {"waiting": 2.0}
