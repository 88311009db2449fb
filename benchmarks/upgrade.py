"""Hot upgrade beside a plain restart of the same plugin, in the same run.

    python benchmarks/upgrade.py [--upgrades 100] [--messages 200000]

Latency: the time from calling ``system.upgrade`` to the first message handled by the
new instance (the old instance tells itself a probe in ``on_upgrade``; it waits in the
stash and is the first thing the new instance handles), over ``--upgrades`` upgrades
alternating two versions. The reference is a plain restart of the same plugin: from
telling it a message whose handler raises (the error handler decides a restart) to the
first message handled by the fresh instance (a probe the failing handler told itself).
Throughput: a producer tells ``--messages`` messages to a plugin while another thread
upgrades it again and again, beside the same producer with no upgrades; the clock stops
when the plugin has handled the last message.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import Figure, add_json_option, report

from actorlog.actors import ActorSystem, ErrorPolicy, Plugin, RestartPolicy, handler
from actorlog.events import Message


class Probe(Message, tag="bench.upgrade.probe", frozen=True):
    pass


class Crash(Message, tag="bench.upgrade.crash", frozen=True):
    pass


class Work(Message, tag="bench.upgrade.work", frozen=True):
    n: int


class Clock:
    """When the first probe was handled by a fresh instance (written by the plugin's thread)."""

    handled = threading.Event()
    at = 0.0


class CounterV1(Plugin):
    version = "1.0"
    target = 0
    done = threading.Event()

    def on_start(self) -> None:
        self.count = 0

    def on_upgrade(self) -> Any:
        self.context.tell(self.context.name, Probe())  # stashed: the new instance's first message
        return self.count

    def migrate(self, old_state: Any, old_version: str) -> None:
        self.count = old_state or 0

    @handler
    def probe(self, message: Probe) -> None:
        if not Clock.handled.is_set():
            Clock.at = time.perf_counter()
            Clock.handled.set()

    @handler
    def crash(self, message: Crash) -> None:
        self.context.tell(self.context.name, Probe())  # stashed while it is restarted
        raise RuntimeError("crash for a restart")

    @handler
    def work(self, message: Work) -> None:
        self.count += 1
        if self.count == CounterV1.target:
            CounterV1.done.set()


class CounterV2(CounterV1):
    version = "2.0"


RESTART = ErrorPolicy(actions={"low": "restart", "medium": "restart", "high": "restart"})


def _wait_probe(since: float) -> float:
    Clock.handled.wait()
    return Clock.at - since


def latencies(folder: Path, upgrades: int) -> tuple[list[float], list[float]]:
    """Seconds to the first message of the new instance: for each upgrade, and for each plain restart."""
    upgraded: list[float] = []
    restarted: list[float] = []
    # as many restarts as the run needs: the restart intensity is not what is measured
    policy = RestartPolicy(max_restarts=upgrades + 1, within_seconds=3600)
    with ActorSystem(folder / "latency.db", error_policy=RESTART, restart_policy=policy) as system:
        system.register("counter", CounterV1)
        system.start()
        for index in range(upgrades):
            Clock.handled = threading.Event()
            start = time.perf_counter()
            system.upgrade("counter", CounterV2 if index % 2 == 0 else CounterV1)
            upgraded.append(_wait_probe(start))
            Clock.handled = threading.Event()
            start = time.perf_counter()
            system.tell("counter", Crash())
            restarted.append(_wait_probe(start))
    return upgraded, restarted


def throughput(folder: Path, messages: int, upgrading: bool) -> tuple[float, int]:
    """Messages handled per second, and how many upgrades happened meanwhile."""
    done = threading.Event()
    count = 0
    with ActorSystem(folder / f"throughput-{upgrading}.db") as system:
        system.register("counter", CounterV1, log_messages=False)
        system.start()
        CounterV1.target, CounterV1.done = messages, threading.Event()

        def upgrade_again_and_again() -> None:
            nonlocal count
            while not done.is_set():
                system.upgrade("counter", CounterV2 if count % 2 == 0 else CounterV1, timeout=60)
                count += 1

        upgrader = threading.Thread(target=upgrade_again_and_again)
        start = time.perf_counter()
        if upgrading:
            upgrader.start()
        for n in range(messages):
            system.tell("counter", Work(n=n))
        CounterV1.done.wait()
        rate = messages / (time.perf_counter() - start)
        done.set()
        if upgrading:
            upgrader.join()
    return rate, count


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upgrades", type=int, default=100, help="upgrades (and restarts) timed")
    parser.add_argument("--messages", type=int, default=200_000, help="messages told in each throughput run")
    add_json_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        upgraded, restarted = latencies(folder, args.upgrades)
        plain, _ = throughput(folder, args.messages, upgrading=False)
        during, count = throughput(folder, args.messages, upgrading=True)
    figures = [
        Figure(f"upgrade to first message, p{q} (us)", percentile(upgraded, q) * 1e6, "us",
               percentile(restarted, q) * 1e6, "plain restart", "", None)
        for q in (50, 99)
    ]
    figures.append(Figure(f"tell throughput during upgrades ({count} upgrades)", during, "msg/s", plain,
                          "no upgrades", "", None))
    report("benchmarks/upgrade.py", figures, args.json)


if __name__ == "__main__":
    main()
