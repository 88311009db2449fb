"""Replay: statistics rebuilt from a large log, beside a bare decode loop in the same run.

    python benchmarks/replay.py [--events 1000000] [--rss-events 5000000]

The log holds a realistic mix: measurements (counters, gauges, histograms, monitored
operations) from the metrics collector, messages received by plugins, lifecycle
events and failures with their assessments and decisions. The reference reads the same
rows ordered by seq with plain sqlite3, decodes every payload with msgspec and counts
kinds. A rebuild from a snapshot taken near the end is compared with a full rebuild. The same log,
copied verbatim to PostgreSQL (``--postgres URL``, else a throwaway server), is rebuilt there
beside SQLite's rebuild in the same run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import sqlite3
import tempfile
import time
from statistics import median
from collections import Counter
from pathlib import Path

import msgspec
from _common import Figure, add_json_option, report
from _postgres import add_postgres_option, postgres_logs

from actorlog.events import (
    CounterIncremented,
    FailureAssessed,
    FailureRaised,
    GaugeSet,
    HistogramObserved,
    MessageReceived,
    OperationTimed,
    PluginHealthChecked,
    PluginRegistered,
    PluginStarted,
    RecoveryDecided,
)
from actorlog.replay import rebuild, take_snapshot
from actorlog.store import EventStore, copy_log

PLUGINS = ("llm", "sandbox", "agent")


def build_log(path: Path, total: int) -> None:
    """Write ``total`` events: 100 per batch, the same mix in every batch."""
    with EventStore(path, max_batch_rows=5000) as store:
        for name in PLUGINS:
            store.append(PluginRegistered(plugin=name, class_path=f"app:{name}", plugin_version="1.0"), actor="supervisor")
            store.append(PluginStarted(plugin=name), actor="supervisor")
        written, batch_number = 2 * len(PLUGINS), 0
        while written < total:
            n = batch_number
            plugin = PLUGINS[n % 3]
            measurements = [
                HistogramObserved(name="llm.latency", value=(n * 7 + i) % 1000 / 1000, tags={"model": "offline"})
                if i % 3 == 0 else
                CounterIncremented(name=f"tasks.{plugin}", value=1.0) if i % 3 == 1 else
                GaugeSet(name="queue.depth", value=float(i % 17))
                for i in range(60)
            ] + [OperationTimed(name="sandbox.run", value=0.01 * (i % 50), ok=i % 9 != 0) for i in range(12)]
            store.append_many(measurements, actor="metrics")
            store.append_many(
                [MessageReceived(recipient=plugin, sender="app", message={"kind": "app.task", "n": i}, seed=i)
                 for i in range(20)],
                actor=plugin,
            )
            store.append_many([PluginHealthChecked(plugin=plugin, healthy=True, detail="ok")] * 2, actor=plugin)
            store.append(FailureRaised(plugin=plugin, exc_type="builtins.ValueError", message=f"bad input {n}",
                                       traceback="Traceback ...", trigger_seq=written), actor=plugin)
            store.append_many([
                FailureAssessed(plugin=plugin, exc_type="builtins.ValueError", message=f"bad input {n}",
                                severity="medium", failed_at=time.time(), failure_seq=written + 95),
                RecoveryDecided(plugin=plugin, action="continue", severity="medium", failure_seq=written + 95),
            ], actor="errors")
            written += 60 + 12 + 20 + 2 + 3
            batch_number += 1
        store.flush()


def bare_loop(path: Path) -> tuple[int, float]:
    conn = sqlite3.connect(path)
    decode = msgspec.json.decode
    kinds: Counter[str] = Counter()
    start = time.perf_counter()
    for kind, payload in conn.execute("SELECT kind, payload FROM events ORDER BY seq"):
        decode(payload)
        kinds[kind] += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return sum(kinds.values()), elapsed


def full_rebuild(path: Path) -> tuple[float, dict]:  # type: ignore[type-arg]
    start = time.perf_counter()
    statistics = rebuild(path, use_snapshots=False)
    return time.perf_counter() - start, statistics.document()


def postgres_replay(path: Path, url: str) -> Figure:
    """A full rebuild of the same log on PostgreSQL (copied verbatim) beside SQLite's, medians of three runs each."""
    with EventStore.open_readonly(path) as source:
        copy_log(source, url)
    sqlite_seconds, pg_seconds = [], []
    for _ in range(3):
        elapsed, on_sqlite = full_rebuild(path)
        sqlite_seconds.append(elapsed)
        started = time.perf_counter()
        on_postgres = rebuild(url, use_snapshots=False).document()
        pg_seconds.append(time.perf_counter() - started)
    assert on_postgres == on_sqlite, "the same log must rebuild to the same statistics on both backends"
    with EventStore.open_readonly(url) as store:
        count = store.count()
    pg, sqlite = count / median(pg_seconds), count / median(sqlite_seconds)
    return Figure(f"PostgreSQL full rebuild of {count:,} events", pg, "events/s", sqlite, "SQLite",
                  ">= 0.8x SQLite", pg >= 0.8 * sqlite)


def rss_child(path: Path) -> float:
    """Peak RSS (MB) of a fresh process that rebuilds the statistics of ``path``."""
    code = (
        "import resource, sys; from actorlog.replay import rebuild; rebuild(sys.argv[1], use_snapshots=False); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return float(result.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rss-events", type=int, default=5_000_000)
    add_postgres_option(parser)
    add_json_option(parser)
    args = parser.parse_args()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "replay.db"
        started = time.perf_counter()
        build_log(path, args.events)
        print(f"built a {args.events:,}-event log in {time.perf_counter() - started:.1f} s")
        bare_runs, rebuild_runs = [], []
        for _ in range(3):  # interleaved, so a busy moment of the machine weighs on both
            count, bare_elapsed = bare_loop(path)
            elapsed, document = full_rebuild(path)
            bare_runs.append(bare_elapsed)
            rebuild_runs.append(elapsed)
        rate, bare_rate = count / median(rebuild_runs), count / median(bare_runs)
        figures.append(Figure(f"full rebuild of {count:,} events (events/s)", rate, "events/s", bare_rate,
                              "bare fetch + decode", ">= 650,000/s and >= 0.6x bare",
                              rate >= 650_000 and rate >= 0.6 * bare_rate))
        with EventStore(path) as store:  # a snapshot near the end, then a short tail
            take_snapshot(store)
            store.append_many([GaugeSet(name="queue.depth", value=1.0)] * 1000, actor="metrics")
        start = time.perf_counter()
        from_snapshot = rebuild(path)
        snapshot_elapsed = time.perf_counter() - start
        full_again = rebuild(path, use_snapshots=False)
        assert from_snapshot.document() == full_again.document(), "snapshot + tail must equal a full rebuild"
        speedup = elapsed / snapshot_elapsed
        figures.append(Figure("rebuild from a snapshot near the end (x faster)", speedup, "x", None, "",
                              ">= 20x faster than full", speedup >= 20))
        print(f"full rebuild {elapsed:.2f} s; from the snapshot {snapshot_elapsed * 1000:.0f} ms; "
              f"errors {document['errors']['total_errors']:,}")
        with postgres_logs(args.postgres) as new_log:
            if new_log is not None:
                figures.append(postgres_replay(path, new_log()))
    if args.rss_events:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "big.db"
            started = time.perf_counter()
            build_log(path, args.rss_events)
            print(f"built a {args.rss_events:,}-event log in {time.perf_counter() - started:.1f} s")
            peak = rss_child(path)
            figures.append(Figure(f"peak RSS rebuilding {args.rss_events:,} events (MB)", peak, "MB", None, "",
                                  "< 100 MB", peak < 100))
    report("benchmarks/replay.py", figures, args.json)


if __name__ == "__main__":
    main()
