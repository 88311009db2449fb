"""Metrics: caller overhead, sustained throughput to the log, and memory under overload.

    python benchmarks/metrics.py [--calls 200000] [--measurements 500000] [--overload-seconds 60]

1. Caller-side cost of one monitored call (median ns, each call timed alone): a bare
   call, the same function under ``@system.monitor.timed``, and under a naive in-process
   collector that only appends to a locked dict (it writes nothing anywhere).
2. Measurements/s from 1 and 2 application threads until every one is committed to the
   log (``system.flush()`` returned).
3. Peak RSS while producers record as fast as they can for ``--overload-seconds``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from _common import Figure, RssSampler, add_json_option, report, run_in_threads

from actorlog.actors import ActorSystem


def work(x: int) -> int:
    return x + 1


class NaiveCollector:
    """The naive design: record into an in-process dict under a lock, write nothing."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.durations: defaultdict[str, list[float]] = defaultdict(list)
        self.counts: defaultdict[str, int] = defaultdict(int)

    def timed(self, name: str):  # type: ignore[no-untyped-def]
        def wrap(function):  # type: ignore[no-untyped-def]
            def call(*args, **kwargs):  # type: ignore[no-untyped-def]
                started = time.perf_counter()
                ok = True
                try:
                    return function(*args, **kwargs)
                except BaseException:
                    ok = False
                    raise
                finally:
                    duration = time.perf_counter() - started
                    with self.lock:
                        self.durations[name].append(duration)
                        self.counts[name + (".success" if ok else ".errors")] += 1
            return call
        return wrap


def per_call_ns(function, calls: int) -> float:  # type: ignore[no-untyped-def]
    samples = []
    clock = time.perf_counter_ns
    for i in range(calls):
        start = clock()
        function(i)
        samples.append(clock() - start)
    return statistics.median(samples)


def measurements_per_second(folder: Path, total: int, threads: int) -> float:
    with ActorSystem(folder / f"metrics-{threads}-{time.monotonic_ns()}.db") as system:
        observe = system.metrics.observe
        share = total // threads

        def produce(n: int) -> None:
            for i in range(n):
                observe("bench.latency", float(i % 1000))

        start = time.perf_counter()
        run_in_threads(produce, [(share,)] * threads)
        system.flush()
        elapsed = time.perf_counter() - start
        count = system.store.db.execute("SELECT count(*) FROM events WHERE kind = 'histogram.observed'").fetchone()[0]
        assert count == share * threads, (count, share * threads)
    return share * threads / elapsed


def overload(folder: Path, seconds: float) -> tuple[int, float, float]:
    with ActorSystem(folder / f"overload-{time.monotonic_ns()}.db") as system:
        stop = threading.Event()
        counts = [0, 0]

        def produce(index: int) -> None:
            observe, n = system.metrics.observe, 0
            while not stop.is_set():
                observe("overload", float(n % 1000))
                n += 1
            counts[index] = n

        with RssSampler() as rss:
            threads = [threading.Thread(target=produce, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
            time.sleep(seconds)
            stop.set()
            for thread in threads:
                thread.join()
            system.flush()
    return sum(counts), rss.start / 2**20, rss.peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--measurements", type=int, default=500_000)
    parser.add_argument("--overload-seconds", type=float, default=60.0)
    add_json_option(parser)
    args = parser.parse_args()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with ActorSystem(folder / "overhead.db") as system:
            monitored = system.monitor.timed("bench.work")(work)
            naive = NaiveCollector().timed("bench.work")(work)
            bare_ns = per_call_ns(work, args.calls)
            naive_ns = per_call_ns(naive, args.calls)
            ours_ns = per_call_ns(monitored, args.calls)
        overhead = ours_ns - bare_ns
        figures.append(Figure("monitored call, caller overhead (ns)", overhead, "ns", naive_ns - bare_ns,
                              "naive collector", "<= 5,000 ns median", overhead <= 5_000))
        print(f"median per call: bare {bare_ns:,.0f} ns, naive collector {naive_ns:,.0f} ns, monitored {ours_ns:,.0f} ns")
        for threads in (1, 2):
            rate = measurements_per_second(folder, args.measurements, threads)
            figures.append(Figure(f"measurements committed, {threads} thread(s) (/s)", rate, "measurements/s", None, "",
                                  ">= 100,000/s", rate >= 100_000))
        recorded, start_mb, peak_mb = overload(folder, args.overload_seconds)
        figures.append(Figure(f"overload {args.overload_seconds:g} s: peak RSS growth (MB)", peak_mb - start_mb, "MB",
                              None, "", "flat (<= 50 MB)", peak_mb - start_mb <= 50))
        print(f"overload: {recorded:,} measurements in {args.overload_seconds:g} s; RSS {start_mb:.1f} MB -> peak {peak_mb:.1f} MB")
    report("benchmarks/metrics.py", figures, args.json)


if __name__ == "__main__":
    main()
