"""Soak runs of the fault suites, longer than CI runs them (issue 8).

    python benchmarks/soak.py crash --kills 200 [--seed 8] [--keep DIR] [--cli-every 4]
    python benchmarks/soak.py overload --seconds 60 [--modes block sample tell failures] [--failures 100000] [--sequential]

``crash``: the demo's actor system (tests/helpers/demo_worker.py) killed with SIGKILL
``--kills`` times at moments drawn from ``--seed``, all on one log; after each kill the
log must verify, pass ``PRAGMA integrity_check``, rebuild its statistics, and hold every
checkpoint a worker acknowledged after ``flush()`` exactly once (``actorlog verify`` and
``actorlog stats --json`` run every ``--cli-every`` kills and after the last). Stops at
the first kill that breaks something, printing the seed and the kill's schedule: rerun
with the same seed to replay the same schedule. Sandbox processes that outlive their
killed host are reported and ended.

``overload``: tests/helpers/overload_worker.py for ``--seconds`` per mode (``block`` and
``sample``: measurements and asked messages as fast as they go; ``tell``: a flood of told
messages, a known unbounded case that stops as soon as it passes the bound; ``failures``:
``--failures`` asked messages that all fail, a known leak of about 4.5 KB per failure);
reports the RSS growth against the bound (100 MB; 25 MB for the failures) and checks
the log's accounting, lifecycle and failure events. The modes run at the same time
unless ``--sequential``.

Exit status 0 when everything held, 1 otherwise. The checks are those of
tests/test_fault_crash.py and tests/test_fault_overload.py (tests/crash_helpers.py).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from crash_helpers import (
    RSS_BOUND_MB,
    CrashHistory,
    LeftoverWatch,
    accounting_problems,
    crash_problems,
    failure_problems,
    kill_plan,
    lifecycle_problems,
    make_scratch_root,
    memory_problems,
    overload_report,
    read_overload_log,
    rss_figures,
    run_and_kill,
    start_overload,
    worker_problems,
)


def crash(args: argparse.Namespace) -> int:
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="actorlog-soak-crash-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "crash.db"
    scratch = make_scratch_root()
    watch = LeftoverWatch(scratch)
    history = CrashHistory()
    started = time.monotonic()
    failed = False
    index = -1
    try:
        for index in range(args.kills):
            plan = kill_plan(args.seed, index)
            killed = run_and_kill(path, plan, scratch, folder)
            history.add(killed)
            cli = index % args.cli_every == args.cli_every - 1 or index == args.kills - 1
            problems = worker_problems(killed) + crash_problems(path, history, cli=cli)
            print(
                f"[{time.monotonic() - started:7.1f} s] {plan.describe()}: {len(killed.output.acks)} acks, "
                f"log up to acked seq {history.last_acked}{' (+ CLI)' if cli else ''}: "
                + ("ok" if not problems else "FAILED"),
                flush=True,
            )
            if problems:
                print("  " + "\n  ".join(problems))
                print(f"  log: {path}; worker output: {folder}/kill-{index:04d}.out/.err")
                failed = True
                break
            watch.scan(index, killed.killed_at)
    finally:
        watch.finish(max(index, 0))
        leaked = watch.scratch_dirs()
        watch.remove_scratch()
    print(
        f"\n{index + 1} kills in {time.monotonic() - started:.0f} s (seed {args.seed}): {len(history.acked)} checkpoints "
        f"acknowledged up to seq {history.last_acked} over {len(history.ticks)} runs; "
        + ("FAILED" if failed else "every check held")
    )
    print(f"sandbox: {watch.summary()}; {len(leaked)} scratch directories left behind (removed)")
    if not failed and not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if failed else 0


FAILURE_GROWTH_MB = 25
KNOWN = {
    "tell": " (known: plugin inboxes are unbounded)",
    "failures": " (known: ErrorHandler._unapplied keeps every failure until error_statistics())",
}


def overload(args: argparse.Namespace) -> int:
    folder = Path(tempfile.mkdtemp(prefix="actorlog-soak-overload-"))
    seconds = f"{args.seconds:g}"
    common = ("--seconds", seconds, "--producers", str(args.producers), "--senders", "1")
    arguments = {
        "block": (*common, "--overload", "block", "--send", "ask"),
        "sample": (*common, "--overload", "sample", "--send", "ask"),
        "tell": ("--seconds", seconds, "--producers", "0", "--senders", "1", "--send", "tell",
                 "--abort-growth-mb", str(RSS_BOUND_MB)),
        "failures": ("--seconds", str(max(args.seconds, 3600)), "--producers", "0", "--senders", "1", "--send", "ask",
                     "--fail-every", "1", "--failures", str(args.failures), "--no-script"),
    }
    failed = False
    try:
        pending = {}
        reports = {}
        for mode in args.modes:
            pending[mode] = start_overload(folder / f"{mode}.db", *arguments[mode])
            if args.sequential:
                reports[mode] = overload_report(pending.pop(mode), timeout=args.seconds * 10 + 300)
        for mode, process in pending.items():
            reports[mode] = overload_report(process, timeout=args.seconds * 10 + 300)
        for mode in args.modes:
            report = reports[mode]
            figures = rss_figures(report)
            bound = FAILURE_GROWTH_MB if mode == "failures" else RSS_BOUND_MB
            problems = memory_problems(report, bound)
            if mode == "failures":
                log = read_overload_log(folder / f"{mode}.db", report["run"])
                problems += failure_problems(log)
                if len(log.failures) != report["messages"]["failed"]:
                    problems.append(f"{len(log.failures)} failure.raised for {report['messages']['failed']} failed answers")
                detail = f"{report['messages']['failed']:,} failures, all logged, assessed and decided"
            elif not report.get("memory_only"):
                log = read_overload_log(folder / f"{mode}.db", report["run"])
                problems += accounting_problems(report, log) + lifecycle_problems(report, log)
                detail = (
                    f"{report['measurements']['produced']:,} measurements produced, {log.dropped:,} dropped "
                    f"({log.drop_events} measurements.dropped events), messages {report['messages']}"
                )
            else:
                detail = "memory only: " + ("stopped early, memory grew past the bound" if report["aborted"] else "ran its time")
            print(
                f"{mode:>6}: {report['seconds']} s, RSS {figures['start_mb']:.1f} MB -> peak {figures['peak_mb']:.1f} MB, "
                f"growth {figures['growth_mb']:.1f} MB (bound {bound} MB; second half {figures['late_growth_mb']:+.1f} MB); "
                f"{detail}: " + ("ok" if not problems else "FAILED" + KNOWN.get(mode, ""))
            )
            samples = ", ".join(f"{t:g}s {value / 2**20:.0f}" for t, value in report["rss"]["samples"][:: max(1, len(report["rss"]["samples"]) // 12)])
            print(f"        RSS MB over time: {samples}")
            for problem in problems:
                print(f"        {problem}")
            failed |= bool(problems)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    crash_parser = commands.add_parser("crash", help="kill the demo with SIGKILL, check the log after each kill")
    crash_parser.add_argument("--kills", type=int, default=200)
    crash_parser.add_argument("--seed", type=int, default=8)
    crash_parser.add_argument("--cli-every", type=int, default=4, help="run the actorlog CLI checks every N kills")
    crash_parser.add_argument("--keep", metavar="DIR", help="keep the log and the workers' output in DIR")
    overload_parser = commands.add_parser("overload", help="overload the system, check memory and the log")
    overload_parser.add_argument("--seconds", type=float, default=60.0)
    overload_parser.add_argument("--producers", type=int, default=2)
    overload_parser.add_argument(
        "--modes", nargs="+", choices=("block", "sample", "tell", "failures"), default=["block", "sample"]
    )
    overload_parser.add_argument("--failures", type=int, default=100_000, help="failed messages in the failures mode")
    overload_parser.add_argument("--sequential", action="store_true", help="one mode after the other")
    args = parser.parse_args()
    sys.exit(crash(args) if args.command == "crash" else overload(args))


if __name__ == "__main__":
    main()
