"""Failures reported and decided per second, end to end, beside raising in a bare loop.

    python benchmarks/failures.py [--failures 20000] [--repeat 3]

A plugin's handler raises ValueError on every message it is told (medium severity: the
default decision is to continue). With one plugin, each failure waits for the decision
on the one before it (the plugin is suspended until then), so the figure is a round-trip
latency; with several plugins failing at once, decisions overlap. The clock runs from the first tell until every
failure's ``recovery.decided`` event is committed: each failure is logged as the
message received, ``failure.raised``, ``failure.assessed`` and ``recovery.decided``,
and the supervisor resumes the plugin. The reference raises and catches the same
exception in a bare loop in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from _common import Figure, add_json_option, report

from actorlog.actors import ActorSystem, Plugin, handler
from actorlog.events import Message


class Fail(Message, tag="bench.fail", frozen=True):
    n: int


class Failing(Plugin):
    @handler
    def fail(self, message: Fail) -> None:
        raise ValueError(f"failure {message.n}")


def decided_per_second(folder: Path, failures: int, plugins: int) -> float:
    with ActorSystem(folder / f"failures-{time.monotonic_ns()}.db") as system:
        names = [f"failing-{i}" for i in range(plugins)]
        for name in names:
            system.register(name, Failing)
        system.start()
        start = time.perf_counter()
        for n in range(failures):
            system.tell(names[n % plugins], Fail(n=n))
        while system.error_statistics(recent=0).total_errors < failures:  # also flushes the log
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
        decided = system.store.db.execute("SELECT count(*) FROM events WHERE kind = 'recovery.decided'").fetchone()[0]
        assert decided == failures, (decided, failures)
    return failures / elapsed


def bare_raise_per_second(failures: int) -> float:
    start = time.perf_counter()
    for n in range(failures):
        try:
            raise ValueError(f"failure {n}")
        except ValueError:
            pass
    return failures / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--failures", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; medians are reported")
    parser.add_argument("--plugins", type=int, default=4, help="failing plugins in the concurrent case")
    add_json_option(parser)
    args = parser.parse_args()
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for plugins in (1, args.plugins):
            ours, bare = [], []
            for _ in range(args.repeat):
                bare.append(bare_raise_per_second(args.failures))
                ours.append(decided_per_second(Path(tmp), args.failures, plugins))
            rate = statistics.median(ours)
            target = 10_000 if plugins == 1 else 20_000  # issue 20: one plugin's round trip <= 100 us
            figures.append(
                Figure(f"failures decided and logged, {plugins} plugin(s)", rate, "failures/s",
                       statistics.median(bare), "bare raise", f">= {target:,} failures/s", rate >= target)
            )
    report("benchmarks/failures.py", figures, args.json)


if __name__ == "__main__":
    main()
