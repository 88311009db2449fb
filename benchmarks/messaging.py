"""Plugin-to-plugin messaging beside bare pykka actors doing the same, in the same run.

    python benchmarks/messaging.py [--messages 200000] [--asks 5000] [--repeat 3]

Throughput: a sender plugin tells a receiver plugin N messages; the clock stops when
the receiver has handled the last one. Latency: the sender asks the receiver N times
in a row; each round trip is timed. The reference is two plain pykka ThreadingActors
doing exactly that with plain Python objects. actorlog is measured with message logging
off and on (logging on commits every received message to the event log). Each case runs
``--repeat`` times, interleaved with the reference; medians are reported (latencies pooled).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pykka
from _common import Figure, add_json_option, report

from actorlog.actors import ActorSystem, Plugin, handler
from actorlog.events import Message


class Ping(Message, tag="bench.ping", frozen=True):
    i: int


class Blast(Message, tag="bench.blast", frozen=True):
    n: int


class Rounds(Message, tag="bench.rounds", frozen=True):
    n: int


class Receiver(Plugin):
    target = 0
    done = threading.Event()

    def on_start(self) -> None:
        self.count = 0

    @handler
    def ping(self, message: Ping) -> int:
        self.count += 1
        if self.count == Receiver.target:
            Receiver.done.set()
        return message.i


class Sender(Plugin):
    depends_on = ("receiver",)

    @handler
    def blast(self, message: Blast) -> None:
        tell = self.deps["receiver"].tell
        for i in range(message.n):
            tell(Ping(i=i))

    @handler
    def rounds(self, message: Rounds) -> list[int]:
        ask = self.deps["receiver"].ask
        latencies = []
        for i in range(message.n):
            start = time.perf_counter_ns()
            ask(Ping(i=i))
            latencies.append(time.perf_counter_ns() - start)
        return latencies


def actorlog_run(folder: Path, messages: int, asks: int, log_messages: bool) -> tuple[float, list[int]]:
    with ActorSystem(folder / f"messaging-{log_messages}-{time.monotonic_ns()}.db") as system:
        system.register("receiver", Receiver, log_messages=log_messages)
        system.register("sender", Sender, log_messages=log_messages)
        system.start()
        Receiver.target, Receiver.done = messages, threading.Event()
        start = time.perf_counter()
        system.tell("sender", Blast(n=messages))
        Receiver.done.wait()
        rate = messages / (time.perf_counter() - start)
        Receiver.target = -1
        latencies: list[int] = system.ask("sender", Rounds(n=asks))
    return rate, latencies


class BareReceiver(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self, target: int, done: threading.Event) -> None:
        super().__init__()
        self.target, self.done, self.count = target, done, 0

    def on_receive(self, message: Any) -> Any:
        self.count += 1
        if self.count == self.target:
            self.done.set()
        return message


class BareSender(pykka.ThreadingActor):
    use_daemon_thread = True

    def __init__(self, receiver: pykka.ActorRef[Any]) -> None:
        super().__init__()
        self.receiver = receiver

    def on_receive(self, message: Any) -> Any:
        kind, n = message
        if kind == "blast":
            tell = self.receiver.tell
            for i in range(n):
                tell(("ping", i))
            return None
        ask = self.receiver.ask
        latencies = []
        for i in range(n):
            start = time.perf_counter_ns()
            ask(("ping", i))
            latencies.append(time.perf_counter_ns() - start)
        return latencies


def bare_run(messages: int, asks: int) -> tuple[float, list[int]]:
    done = threading.Event()
    receiver = BareReceiver.start(messages, done)
    sender = BareSender.start(receiver)
    start = time.perf_counter()
    sender.tell(("blast", messages))
    done.wait()
    rate = messages / (time.perf_counter() - start)
    latencies: list[int] = sender.ask(("rounds", asks))
    sender.stop()
    receiver.stop()
    return rate, latencies


def percentile(values: list[int], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else float(values[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--asks", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; medians are reported")
    add_json_option(parser)
    args = parser.parse_args()
    figures: list[Figure] = []
    runs: dict[str, list[tuple[float, list[int]]]] = {"bare": [], "off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            runs["bare"].append(bare_run(args.messages, args.asks))
            runs["off"].append(actorlog_run(Path(tmp), args.messages, args.asks, log_messages=False))
            runs["on"].append(actorlog_run(Path(tmp), args.messages, args.asks, log_messages=True))
    (bare_rate, bare_lat), (off_rate, off_lat), (on_rate, on_lat) = (
        (statistics.median(r for r, _ in results), [x for _, lat in results for x in lat]) for results in runs.values()
    )
    bare_p50, bare_p99 = percentile(bare_lat, 50) / 1000, percentile(bare_lat, 99) / 1000
    figures += [
        Figure("tell throughput, logging off (msg/s)", off_rate, "msg/s", bare_rate, "bare pykka",
               ">= 0.8x bare pykka", off_rate >= 0.8 * bare_rate),
        Figure("tell throughput, logging on (msg/s)", on_rate, "msg/s", bare_rate, "bare pykka",
               ">= 0.5x bare pykka", on_rate >= 0.5 * bare_rate),
    ]
    for label, lat, p50_target, p99_target in (("logging off", off_lat, 1.3, 1.5), ("logging on", on_lat, None, None)):
        p50, p99 = percentile(lat, 50) / 1000, percentile(lat, 99) / 1000
        figures.append(Figure(f"ask p50 latency, {label} (us)", p50, "us", bare_p50, "bare pykka",
                              f"<= {p50_target}x bare pykka" if p50_target else "",
                              p50 <= p50_target * bare_p50 if p50_target else None))
        figures.append(Figure(f"ask p99 latency, {label} (us)", p99, "us", bare_p99, "bare pykka",
                              f"<= {p99_target}x bare pykka" if p99_target else "",
                              p99 <= p99_target * bare_p99 if p99_target else None))
    report("benchmarks/messaging.py", figures, args.json)


if __name__ == "__main__":
    main()
