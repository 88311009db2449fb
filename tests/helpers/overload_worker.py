"""Overload an actor system for a while and report, as JSON, what was produced and how much memory it took.

Usage: overload_worker.py PATH [--seconds S] [--overload block|sample] [--producers N]
       [--senders M] [--send ask|tell] [--max-pending P] [--abort-growth-mb X]
       [--fail-every K] [--failures F] [--no-script]

The system is built with ``MetricsOptions(overload=...)`` and, unless ``--max-pending``
is given, the default options of everything else (the store's ``max_pending_rows``, the
metrics' ``max_pending`` and ``buffer_size``). Then, for S seconds:

- N measurement producers record as fast as they can, in turn a counter, a gauge, a
  histogram point and a timed operation, on a fixed set of series (4 names, 2 tag
  values each: the collector's projection stays small, so memory growth is the
  backlog's), counting every measurement they record;
- M message senders send ``Work(n)`` (n >= 0) to the ``flaky`` plugin as fast as it lets
  them: with ``--send ask`` each waits for the answer (or the failure) of the previous
  one, with ``--send tell`` nothing waits (a sender is slowed only by back-pressure, if
  there is any). ``flaky`` raises ``ValueError`` when ``n % K == 0`` (``--fail-every``,
  default 7; severity medium: the plugin continues). With ``--failures F`` the overload
  ends as soon as the senders have had F failed answers (or the time is up);
- a script thread, whatever the throughput: at 20 % of the time it asks ``Work(-1)``
  (``ValueError``), at 40 % it registers and starts a ``late`` plugin, at 60 % it asks
  ``Work(-2)`` (``OSError``, severity high: ``flaky`` is restarted). Under overload these
  may take a while; they are part of the run all the same. ``--no-script`` leaves it out.

A sampler thread reads this process's RSS every 20 ms. When the time is up the producers
stop, and the system is stopped normally (every buffered measurement and queued message
reaches the log). With ``--abort-growth-mb X`` the run only measures memory: it ends as
soon as RSS grew more than X MB (``aborted``) or the time is up, prints a short report
and exits without stopping the system or draining what is queued (``os._exit``).

The report (one JSON document on stdout): ``run``, ``options``, ``measurements``
(produced, by kind), ``messages`` (sent, answered, failed answers, refused), ``rss``
(``start``, ``peak``, ``end`` of the overload, ``after_stop``, bytes; ``samples``: one
``[seconds, bytes]`` pair every half second), ``backlog_peak`` (the most measurements
seen on their way to the collector), ``dropped_live`` (drops in the collector's live
statistics), ``scripted`` (the script's steps done; ``scripted_within``: those done
before the producers stopped), ``escalation``, ``aborted`` and ``seconds``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import threading
import time
from typing import Any

from actorlog.actors import ActorSystem, MetricsOptions, Plugin, handler
from actorlog.actors.errors import PluginNotRunningError
from actorlog.events import Message, register
from actorlog.store import EventStore

_PAGE = os.sysconf("SC_PAGE_SIZE")

FAIL_EVERY = 7
"""``Work(n)`` with ``n >= 0`` and ``n % FAIL_EVERY == 0`` raises ValueError (continue); ``--fail-every`` sets it."""
BAD = -1
"""``Work(BAD)`` raises ValueError (continue)."""
BROKEN = -2
"""``Work(BROKEN)`` raises OSError (restart)."""


@register
class Work(Message, tag="t8.overload.work", frozen=True):
    n: int


class FlakyPlugin(Plugin):
    """Answers ``n``; fails on some messages (see the module docstring)."""

    version = "1.0.0"

    @handler
    def work(self, message: Work) -> int:
        if message.n == BROKEN:
            raise OSError(f"overload: simulated device error on message {message.n}")
        if message.n == BAD or message.n % FAIL_EVERY == 0:
            raise ValueError(f"overload: message {message.n} is bad")
        return message.n


class LatePlugin(Plugin):
    """Does nothing: registered and started in the middle of the overload."""

    version = "1.0.0"

    @handler
    def work(self, message: Work) -> int:
        return message.n


def rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * _PAGE


class Sampler(threading.Thread):
    def __init__(
        self, started: float, abort_bytes: int | None, abort: threading.Event, finished: threading.Event
    ) -> None:
        super().__init__(name="overload-rss", daemon=True)
        self.started = started
        self.start_rss = rss()
        self.peak = self.start_rss
        self.samples: list[list[float]] = [[0.0, self.start_rss]]
        self.abort_bytes = abort_bytes
        self.abort = abort
        self.finished = finished
        self.backlog_peak = 0
        self.backlog: Any = None
        self._halt = threading.Event()

    def run(self) -> None:
        next_kept = 0.5
        while not self._halt.wait(0.02):
            value = rss()
            self.peak = max(self.peak, value)
            if self.backlog is not None:
                self.backlog_peak = max(self.backlog_peak, self.backlog.pending)
            elapsed = time.monotonic() - self.started
            if elapsed >= next_kept:
                self.samples.append([round(elapsed, 2), value])
                next_kept += 0.5
            if self.abort_bytes is not None and value - self.start_rss > self.abort_bytes:
                self.abort.set()
                self.finished.set()

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.peak = max(self.peak, rss())


def produce(system: ActorSystem, index: int, stop: threading.Event, counts: dict[str, int]) -> None:
    metrics, monitor = system.metrics, system.monitor
    tags = [{"p": str(index % 2)}, {"p": str(1 - index % 2)}]
    produced = {"counter": 0, "gauge": 0, "histogram": 0, "operation": 0}
    i = 0
    while not stop.is_set():
        t = tags[i & 1]
        metrics.increment("overload.count", tags=t)
        metrics.gauge("overload.gauge", float(i % 100), tags=t)
        metrics.observe("overload.latency", float(i % 1000) / 1000.0, tags=t)
        monitor.end(monitor.start("overload.op", tags=t))
        i += 1
    for kind in produced:
        produced[kind] = i
    with LOCK:
        for kind, value in produced.items():
            counts[kind] = counts.get(kind, 0) + value


LOCK = threading.Lock()


def send(
    system: ActorSystem, index: int, senders: int, mode: str, stop: threading.Event, counts: dict[str, int],
    enough: int | None, finished: threading.Event,
) -> None:
    n = index
    sent = answered = failed = refused = 0
    while not stop.is_set():
        try:
            if mode == "ask":
                try:
                    system.ask("flaky", Work(n=n), timeout=120)
                    answered += 1
                except (ValueError, OSError):
                    failed += 1
                    if enough is not None and failed >= enough:
                        finished.set()
            else:
                system.tell("flaky", Work(n=n))
            sent += 1
        except PluginNotRunningError:  # not expected (a restarting plugin takes messages), but counted
            refused += 1
        n += senders
    with LOCK:
        for key, value in (("sent", sent), ("answered", answered), ("failed", failed), ("refused", refused)):
            counts[key] = counts.get(key, 0) + value


def script(system: ActorSystem, started: float, seconds: float, done: list[str]) -> None:
    """Failures and a start in the middle of the overload, however slow the system is."""

    def at(fraction: float) -> None:
        time.sleep(max(0.0, started + seconds * fraction - time.monotonic()))

    at(0.2)
    try:
        system.ask("flaky", Work(n=BAD), timeout=300)
    except ValueError:
        done.append("bad")
    at(0.4)
    system.register("late", LatePlugin)
    system.start()
    done.append("late")
    at(0.6)
    try:
        system.ask("flaky", Work(n=BROKEN), timeout=300)
    except OSError:
        done.append("broken")


def main() -> None:
    global FAIL_EVERY
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--overload", choices=("block", "sample"), default="block")
    parser.add_argument("--producers", type=int, default=2)
    parser.add_argument("--senders", type=int, default=1)
    parser.add_argument("--send", choices=("ask", "tell"), default="ask")
    parser.add_argument("--max-pending", type=int, default=None)
    parser.add_argument("--abort-growth-mb", type=float, default=None)
    parser.add_argument("--fail-every", type=int, default=FAIL_EVERY)
    parser.add_argument("--failures", type=int, default=None)
    parser.add_argument("--no-script", action="store_true")
    args = parser.parse_args()
    FAIL_EVERY = args.fail_every

    options = MetricsOptions(overload=args.overload, **({} if args.max_pending is None else {"max_pending": args.max_pending}))
    system = ActorSystem(args.path, metrics=options)
    system.register("flaky", FlakyPlugin)
    system.start()
    system.flush()
    stop, abort, finished = threading.Event(), threading.Event(), threading.Event()
    produced: dict[str, int] = {}
    messages: dict[str, int] = {}
    started = time.monotonic()
    sampler = Sampler(started, None if args.abort_growth_mb is None else int(args.abort_growth_mb * 2**20), abort, finished)
    sampler.backlog = system._recorder.backlog
    sampler.start()
    threads = [
        threading.Thread(target=produce, args=(system, i, stop, produced), name=f"overload-producer-{i}")
        for i in range(args.producers)
    ] + [
        threading.Thread(
            target=send, args=(system, i, args.senders, args.send, stop, messages, args.failures, finished),
            name=f"overload-sender-{i}",
        )
        for i in range(args.senders)
    ]
    scripted: list[str] = []
    scripter = threading.Thread(target=script, args=(system, started, args.seconds, scripted), name="overload-script")
    for thread in threads:
        thread.start()
    if not args.no_script:
        scripter.start()
    finished.wait(args.seconds)
    stop.set()
    aborted = abort.is_set()
    if args.abort_growth_mb is not None:  # memory only: report and leave without draining what is queued
        sampler.stop()
        report = {
            "run": system.run, "aborted": aborted, "memory_only": True, "seconds": round(time.monotonic() - started, 2),
            "rss": {"start": sampler.start_rss, "peak": sampler.peak, "samples": sampler.samples},
            "options": {"overload": args.overload, "send": args.send},
        }
        os.write(1, (json.dumps(report) + "\n").encode())
        os._exit(0)
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    scripted_within = list(scripted)  # the scripted steps done before the overload ended
    if not args.no_script:
        scripter.join()  # under heavy overload its steps may still be waiting: they finish now
    end_rss = rss()
    dropped_live = system.all_metrics(timeout=120).dropped  # delivers the buffers: every drop is counted by now
    system.stop()
    sampler.stop()
    report = {
        "run": system.run,
        "aborted": False,
        "seconds": round(elapsed, 2),
        "options": {
            "overload": options.overload, "max_pending": options.max_pending, "buffer_size": options.buffer_size,
            "max_pending_rows": inspect.signature(EventStore).parameters["max_pending_rows"].default,
            "producers": args.producers, "senders": args.senders, "send": args.send,
            "fail_every": FAIL_EVERY, "failures": args.failures, "script": not args.no_script,
        },
        "measurements": {"produced": sum(produced.values()), "by_kind": produced},
        "messages": messages,
        "scripted": scripted,
        "scripted_within": scripted_within,
        "rss": {"start": sampler.start_rss, "peak": sampler.peak, "end": end_rss, "after_stop": rss(),
                "samples": sampler.samples},
        "backlog_peak": sampler.backlog_peak,
        "dropped_live": dropped_live,
        "escalation": None if system.escalation is None else str(system.escalation),
    }
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
