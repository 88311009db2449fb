"""The ``actorlog`` command line on a big log, beside sqlite-utils and bare loops in the same run.

    python benchmarks/cli.py [--events 1500000]

For ``actorlog query LOG --format F`` (every format): the time to its first line and
the total time to read all its output through a pipe, beside
``sqlite-utils query LOG "select * from events order by seq" --nl`` on the same file (the
target: jsonl within 1.5x of sqlite-utils). Then ``actorlog verify --quick`` and
``actorlog stats --no-snapshots`` in events per second, beside a bare loop that reads the
same rows with sqlite3 and hashes them (verify) or decodes their payloads with msgspec
(stats). Every figure runs the real console scripts in subprocesses.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from _common import Figure, add_json_option, report
from actorlog.events import FailureRaised, GaugeSet
from actorlog.store import EventStore

BIN = Path(sys.executable).parent
ACTORLOG = BIN / "actorlog"
FORMATS = ("jsonl", "csv", "json", "table")
BATCH = 10_000


def build_log(path: Path, events: int) -> None:
    """Gauges from 8 workers and a failure every 1,000 events, through the store's batch path."""
    base = 1_790_000_000.0
    with EventStore(path, run="bench-run", max_pending_rows=4 * BATCH, max_batch_rows=BATCH) as store:
        for start in range(0, events, BATCH):
            stop = min(start + BATCH, events)
            batch = [
                FailureRaised(plugin="worker", exc_type="builtins.ValueError", message=f"bad input {i}",
                              traceback="Traceback (most recent call last):\n  ...\nValueError: bad input")
                if i % 1000 == 999 else GaugeSet(name="queue_depth", value=float(i % 97), tags={"worker": str(i % 8)})
                for i in range(start, stop)
            ]
            store.append_many(batch, actor="worker", ts=[base + i * 0.001 for i in range(start, stop)])
        store.flush()


def timed_output(command: list[str]) -> tuple[float, float, int]:
    """Seconds to the first line and to the end of ``command``'s stdout, and its line count."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    first_line = process.stdout.readline()
    first = time.perf_counter() - start
    lines = 1 if first_line else 0
    for chunk in iter(lambda: process.stdout.read(1 << 20), b""):  # type: ignore[union-attr]
        lines += chunk.count(b"\n")
    process.wait()
    total = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{command} exited {process.returncode}: {process.stderr.read().decode()[-500:]}")  # type: ignore[union-attr]
    return first, total, lines


def run_seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def bare_hash(path: Path) -> tuple[int, float]:
    """Rows read in seq order with sqlite3, each hashed with sha256 (the chain's own work)."""
    conn = sqlite3.connect(path)
    start = time.perf_counter()
    previous, count = "", 0
    for row in conn.execute("SELECT seq, ts, run, actor, kind, version, correlation, payload FROM events ORDER BY seq"):
        previous = hashlib.sha256((previous + repr(row)).encode()).hexdigest()
        count += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return count, elapsed


def bare_decode(path: Path) -> tuple[int, float]:
    """Rows read in seq order with sqlite3, each payload decoded with msgspec."""
    conn = sqlite3.connect(path)
    decode = msgspec.json.decode
    start = time.perf_counter()
    count = 0
    for (payload,) in conn.execute("SELECT payload FROM events ORDER BY seq"):
        decode(payload)
        count += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return count, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_500_000)
    add_json_option(parser)
    args = parser.parse_args()
    sqlite_utils = shutil.which("sqlite-utils", path=str(BIN)) or "sqlite-utils"
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cli.db"
        started = time.perf_counter()
        build_log(path, args.events)
        print(f"built a {args.events:,}-event log in {time.perf_counter() - started:.1f} s")
        ref_first, ref_total, ref_lines = timed_output(
            [sqlite_utils, "query", str(path), "select * from events order by seq", "--nl"])
        for fmt in FORMATS:
            first, total, _ = timed_output([str(ACTORLOG), "query", str(path), "--format", fmt])
            figures.append(Figure(f"query --format {fmt}: first line (ms)", first * 1000, "ms", ref_first * 1000,
                                  "sqlite-utils --nl", "< 1,000 ms", first < 1.0))
            target = "<= 1.5x sqlite-utils" if fmt == "jsonl" else "-"
            figures.append(Figure(f"query --format {fmt}: all {ref_lines:,} events (s)", total, "s", ref_total,
                                  "sqlite-utils --nl", target, total <= 1.5 * ref_total if fmt == "jsonl" else None))
        count, hash_elapsed = bare_hash(path)
        verify_elapsed = run_seconds([str(ACTORLOG), "verify", str(path), "--quick"])
        figures.append(Figure("verify --quick (events/s)", count / verify_elapsed, "events/s", count / hash_elapsed,
                              "bare sha256 loop", "-", None))
        count, decode_elapsed = bare_decode(path)
        stats_elapsed = run_seconds([str(ACTORLOG), "stats", str(path), "--no-snapshots", "--json"])
        figures.append(Figure("stats --no-snapshots (events/s)", count / stats_elapsed, "events/s",
                              count / decode_elapsed, "bare decode", "-", None))
    report(f"actorlog CLI on a {args.events:,}-event log", figures, args.json)


if __name__ == "__main__":
    main()
