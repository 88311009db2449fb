"""The audit UI on a large log: how long each page takes, beside Datasette's own floor.

    python benchmarks/ui.py [--events 1000000] [--repeat 3]

The log is the replay benchmark's realistic mix (measurements, messages, health checks,
failures with their assessments and decisions), plus correlated failure stories and
plugin restarts. ``actorlog serve`` serves it (a real subprocess, real HTTP on an
ephemeral port); each page is fetched ``--repeat`` times after one warm-up fetch and its
median time is reported beside the median time of Datasette's own ``/-/versions.json``
(no data read: the cost of HTTP and the framework), measured in the same run. The target
is the issue's: every page answers in under 2 s on a 1,000,000-event log.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import Figure, add_json_option, report
from replay import build_log

from actorlog.events import FailureAssessed, FailureRaised, MessageReceived, PluginRestarted, RecoveryDecided
from actorlog.store import EventStore

ACTORLOG = Path(sys.executable).parent / "actorlog"
TARGET_SECONDS = 2.0
STORIES = 200


def add_stories(path: Path, stories: int) -> str:
    """Append ``stories`` correlated failures (message, failure, assessment, decision) and a
    restart after every tenth; return the correlation of the last story."""
    correlation = ""
    with EventStore(path) as store:
        for n in range(stories):
            correlation = f"story-{n:04d}"
            received = store.append(MessageReceived(recipient="llm", sender="agent", message={"kind": "llm.generate"}),
                                    actor="llm", correlation=correlation)
            raised = store.append(FailureRaised(plugin="llm", exc_type="builtins.TimeoutError", message="slow",
                                                traceback="Traceback (most recent call last):\n  ...\nTimeoutError: slow"),
                                  actor="llm", correlation=correlation, refs={"trigger_seq": received})
            for decided in (FailureAssessed(plugin="llm", exc_type="builtins.TimeoutError", message="slow",
                                            severity="high", failed_at=time.time()),
                            RecoveryDecided(plugin="llm", action="restart", severity="high")):
                store.append(decided, actor="errors", correlation=correlation, refs={"failure_seq": raised})
            if n % 10 == 0:
                store.append(PluginRestarted(plugin="llm", restart_count=n // 10 + 1), actor="supervisor",
                             correlation=correlation)
        store.flush()
    return correlation


def fetch(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
        assert response.status == 200, (url, response.status)
    return time.perf_counter() - started


def median_time(url: str, repeat: int) -> float:
    fetch(url)  # warm-up: the first fetch also opens Datasette's connections
    return statistics.median(fetch(url) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    add_json_option(parser)
    args = parser.parse_args()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ui.db"
        started = time.perf_counter()
        build_log(path, max(0, args.events - STORIES * 5))
        correlation = add_stories(path, STORIES)
        conn = sqlite3.connect(path)
        (events,) = conn.execute("SELECT count(*) FROM events").fetchone()
        (run,) = conn.execute("SELECT run FROM events ORDER BY seq LIMIT 1").fetchone()
        conn.close()
        print(f"built a {events:,}-event log in {time.perf_counter() - started:.1f} s")
        server = subprocess.Popen([str(ACTORLOG), "serve", str(path), "--port", "0"], stderr=subprocess.PIPE, text=True)
        try:
            assert server.stderr is not None
            line = server.stderr.readline()
            if " at " not in line:
                raise SystemExit(f"actorlog serve did not start: {line}{server.stderr.read()}")
            base = line.split(" at ", 1)[1].split(" ", 1)[0]
            floor = median_time(base + "-/versions.json", args.repeat)
            pages = {
                "index": "", "database page": "ui", "events table": "ui/events", "lifecycle view": "ui/lifecycle",
                "failures view": "ui/failures", "retries view": "ui/retries", "measurements view": "ui/measurements",
                "failures by type (canned)": "ui/failures_by_type", "restarts over time (canned)": "ui/restarts_over_time",
                "runs (canned)": "ui/runs", "slowest operations (canned)": "ui/slowest_operations",
                "a metric's series (canned)": "ui/metric_series?name=llm.latency",
                "a story (canned)": f"ui/story?correlation={correlation}",
                "story timeline": f"-/actorlog/story/{correlation}", "run timeline": f"-/actorlog/run/{run}",
                "charts": "-/actorlog/charts", "metric chart": "-/actorlog/metric/llm.latency",
                "timed operation chart": "-/actorlog/metric/sandbox.run",
            }
            for name, page in pages.items():
                seconds = median_time(base + page, args.repeat)
                figures.append(Figure(
                    f"{name} on {events:,} events (ms)", seconds * 1000, "ms", floor * 1000, "/-/versions.json",
                    f"< {TARGET_SECONDS * 1000:,.0f} ms", seconds < TARGET_SECONDS,
                ))
        finally:
            server.terminate()
            server.wait(timeout=60)
    report("benchmarks/ui.py", figures, args.json)


if __name__ == "__main__":
    main()
