"""Run every benchmark script and write a Markdown report of their figures.

    python benchmarks/run_all.py [--quick] [--only NAME ...] [--repeat N] [--output PATH]

Each script (append, messaging, failures, metrics, replay, upgrade, ui, cli) runs in its own process, so
each has a clean interpreter and its own RSS, and writes its figures as JSON
(``--json PATH``). The report, ``benchmarks/RESULTS.md`` by default, holds a header with
the machine, a table of every figure beside its reference measured in the same run,
the ratio, the target and whether it was met, the missed targets, the exact command
lines and how to rerun. Without ``--quick`` the scripts run at their full default
sizes; ``--quick`` uses small sizes for a smoke check, and the report says so.

A script that fails (non-zero exit, no JSON, or timeout) is named on stderr and in the
report, the report is still written with what the other scripts produced, and the
exit status is 1. Missed targets are results, not failures: they do not change it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from _common import Figure

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUTPUT = HERE / "RESULTS.md"
OUTPUT_TAIL_LINES = 30


@dataclass(frozen=True)
class Benchmark:
    """One benchmark script and the size options of the quick and tiny runs."""

    name: str
    takes_repeat: bool
    quick: tuple[str, ...]
    tiny: tuple[str, ...]

    @property
    def script(self) -> Path:
        return HERE / f"{self.name}.py"


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "append",
        takes_repeat=True,
        quick=("--events", "50000", "--rss-events", "500000", "--verify-events", "200000", "--tail-samples", "100"),
        tiny=("--events", "2000", "--rss-events", "0", "--verify-events", "2000", "--tail-samples", "10"),
    ),
    Benchmark(
        "messaging",
        takes_repeat=True,
        quick=("--messages", "50000", "--asks", "2000"),
        tiny=("--messages", "2000", "--asks", "200"),
    ),
    Benchmark(
        "failures",
        takes_repeat=True,
        quick=("--failures", "5000"),
        tiny=("--failures", "200", "--plugins", "2"),
    ),
    Benchmark(
        "metrics",
        takes_repeat=False,
        quick=("--calls", "50000", "--measurements", "100000", "--overload-seconds", "5"),
        tiny=("--calls", "2000", "--measurements", "5000", "--overload-seconds", "0.5"),
    ),
    Benchmark(
        "replay",
        takes_repeat=False,
        quick=("--events", "200000", "--rss-events", "500000"),
        tiny=("--events", "5000", "--rss-events", "0"),
    ),
    Benchmark(
        "upgrade",
        takes_repeat=False,
        quick=("--upgrades", "30", "--messages", "50000"),
        tiny=("--upgrades", "3", "--messages", "2000"),
    ),
    Benchmark(
        "ui",
        takes_repeat=True,
        quick=("--events", "200000"),
        tiny=("--events", "5000"),
    ),
    Benchmark(
        "cli",
        takes_repeat=False,
        quick=("--events", "300000"),
        tiny=("--events", "3000"),
    ),
)
NAMES = tuple(benchmark.name for benchmark in BENCHMARKS)


@dataclass
class Outcome:
    """What one script run produced: its figures, or why it has none."""

    benchmark: Benchmark
    command: list[str]
    title: str = ""
    figures: list[Figure] = field(default_factory=list)
    returncode: int | None = None
    seconds: float = 0.0
    output: str = ""
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


# --- running -------------------------------------------------------------------------


def build_command(benchmark: Benchmark, mode: str, repeat: int | None, extra: Sequence[str]) -> list[str]:
    """The command line for ``benchmark`` (without ``--json``): sizes, repeat, then extra args."""
    command = [sys.executable, str(benchmark.script)]
    if mode == "quick":
        command += benchmark.quick
    elif mode == "tiny":
        command += benchmark.tiny
    if benchmark.takes_repeat:
        if repeat is not None:
            command += ["--repeat", str(repeat)]
        elif mode != "full":
            command += ["--repeat", "1"]
    return command + list(extra)


def run_benchmark(benchmark: Benchmark, command: list[str], json_path: Path, timeout: float | None) -> Outcome:
    """Run one script in its own process, echoing its output, and read back its JSON figures."""
    outcome = Outcome(benchmark, command)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--json", str(json_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        process.kill()

    timer = threading.Timer(timeout, kill) if timeout else None
    if timer is not None:
        timer.start()
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    outcome.returncode = process.wait()
    if timer is not None:
        timer.cancel()
    outcome.seconds = time.perf_counter() - started
    outcome.output = "".join(lines)
    if timed_out.is_set():
        outcome.error = f"killed after the {timeout:g} s timeout"
    elif outcome.returncode != 0:
        outcome.error = f"exited with status {outcome.returncode}"
    elif not json_path.exists():
        outcome.error = "exited with status 0 but wrote no JSON figures"
    else:
        try:
            document = json.loads(json_path.read_text())
            outcome.title = document["title"]
            outcome.figures = [
                Figure(**{key: value for key, value in item.items() if key != "ratio"}) for item in document["figures"]
            ]
        except (ValueError, KeyError, TypeError) as exc:
            outcome.error = f"wrote unreadable JSON figures ({exc!r})"
    return outcome


# --- the machine -----------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_revision() -> str:
    """The repository's commit, marked ``(modified)`` when the work tree differs from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} (modified)" if dirty else commit


def machine_lines() -> list[str]:
    """Markdown list items describing this machine and the software measured."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    python = f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})"
    packages = ", ".join(
        f"{name} {package_version(name)}" for name in ("actorlog", "pykka", "msgspec", "sqlite-utils")
    )
    return [
        f"- **CPU:** {os.cpu_count()} logical cores ({available} available to this process), {cpu_model()}",
        f"- **Load average at start (1/5/15 min):** {load}",
        f"- **Platform:** {platform.platform()}",
        f"- **Python:** {python}",
        f"- **SQLite:** {sqlite3.sqlite_version}",
        f"- **Packages:** {packages}",
        f"- **Commit:** {git_revision()}",
    ]


# --- the report --------------------------------------------------------------------------


def number(value: float) -> str:
    """A figure with as many decimals as its size needs."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:.2f}"


def ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:,.0f}x" if abs(ratio) >= 1000 else f"{ratio:#.3g}x"


def result_text(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "**MISSED**")


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.strip().replace("|", "\\|") or "-"


def display_command(command: Sequence[str]) -> str:
    """A command line as a shell would take it, with paths inside the repository made relative."""
    parts = []
    for part in command:
        path = Path(part)
        if path.is_absolute() and path.is_relative_to(ROOT):
            part = str(path.relative_to(ROOT))
        parts.append(part)
    return shlex.join(parts)


def render(
    outcomes: list[Outcome],
    *,
    mode: str,
    machine: list[str],
    started: datetime,
    finished: datetime,
    argv: Sequence[str],
) -> str:
    """The Markdown report."""
    run_all = display_command([sys.executable, str(Path(__file__).resolve()), *argv])
    elapsed = (finished - started).total_seconds()
    out: list[str] = ["# actorlog benchmark results", ""]
    if mode != "full":
        out += [
            f"> **{mode.capitalize()} run (`--{mode}`): small sizes for a smoke check. These are NOT the",
            "> reference figures**; ratios and met/missed at these sizes say little. Rerun without",
            f"> `--{mode}` on an idle machine for the real figures.",
            "",
        ]
    out += [
        f"- **Date (UTC):** {started:%Y-%m-%d %H:%M:%S} to {finished:%H:%M:%S} ({elapsed:.0f} s)",
        f"- **Run:** `{run_all}`",
        *machine,
        "",
        "Every reference is measured in the same run and process as its figure. The ratio is",
        "figure / reference: above 1x is better for rates (events/s, msg/s), below 1x is better",
        "for costs (ns, us, MB).",
        "",
        "## Figures",
        "",
        "| Benchmark | Figure | actorlog | Unit | Reference | Reference value | Ratio | Target | Result |",
        "|---|---|--:|---|---|--:|--:|---|---|",
    ]
    for outcome in outcomes:
        name = outcome.benchmark.name
        if outcome.failed:
            out.append(f"| {name} | **script failed: {cell(outcome.error or '')}** | - | - | - | - | - | - | - |")
        for fig in outcome.figures:
            reference = number(fig.reference) if fig.reference is not None else "-"
            out.append(
                f"| {name} | {cell(fig.name)} | {number(fig.value)} | {cell(fig.unit)} | {cell(fig.reference_name)} "
                f"| {reference} | {ratio_text(fig.ratio)} | {cell(fig.target)} | {result_text(fig.met)} |"
            )
    out += ["", "## Missed targets", ""]
    missed = [(outcome, fig) for outcome in outcomes for fig in outcome.figures if fig.met is False]
    failed = [outcome for outcome in outcomes if outcome.failed]
    for outcome, fig in missed:
        ratio = f", {ratio_text(fig.ratio)} {fig.reference_name}" if fig.ratio is not None else ""
        out.append(f"- {outcome.benchmark.name}: {fig.name.strip()}: {number(fig.value)} {fig.unit}{ratio}; "
                   f"target {fig.target}")
    for outcome in failed:
        out.append(f"- {outcome.benchmark.name}: no figures, `benchmarks/{outcome.benchmark.name}.py` {outcome.error}")
    if not missed and not failed:
        out.append("None: every figure with a target met it.")
    targets = sum(fig.met is not None for outcome in outcomes for fig in outcome.figures)
    out += ["", f"{len(missed)} of {targets} targets missed; {len(failed)} of {len(outcomes)} scripts failed.", ""]
    out += [
        "## Command lines",
        "",
        "Run from the repository root; each script also got `--json <temporary file>` for its figures.",
        "",
        "| Benchmark | Command | Exit status | Seconds |",
        "|---|---|--:|--:|",
    ]
    for outcome in outcomes:
        status = "-" if outcome.returncode is None else str(outcome.returncode)
        out.append(f"| {outcome.benchmark.name} | `{display_command(outcome.command)}` | {status} "
                   f"| {outcome.seconds:.1f} |")
    out += [
        "",
        "## How to rerun",
        "",
        "On an otherwise idle machine, from the repository root:",
        "",
        "```sh",
        "python benchmarks/run_all.py                  # every script at full size -> benchmarks/RESULTS.md",
        "python benchmarks/run_all.py --quick --output /tmp/RESULTS-quick.md   # smoke check, about a minute",
        "python benchmarks/run_all.py --only append messaging --repeat 5       # a subset, more repeats",
        "python benchmarks/append.py --help            # one script alone, with its size options",
        "```",
        "",
        "## Script output",
        "",
    ]
    for outcome in outcomes:
        lines = outcome.output.rstrip().splitlines()
        if outcome.failed and len(lines) > OUTPUT_TAIL_LINES:
            lines = [f"... ({len(lines) - OUTPUT_TAIL_LINES} lines left out)", *lines[-OUTPUT_TAIL_LINES:]]
        out += [
            f"<details><summary>{outcome.benchmark.name}{' (failed)' if outcome.failed else ''}</summary>",
            "",
            "```text",
            *lines,
            "```",
            "",
            "</details>",
            "",
        ]
    return "\n".join(out)


# --- main ----------------------------------------------------------------------------------


def parse_script_args(values: Sequence[str]) -> dict[str, list[str]]:
    """``NAME=ARGS`` pairs (``--script-args``) as extra arguments per benchmark."""
    extra: dict[str, list[str]] = {}
    for value in values:
        name, sep, args = value.partition("=")
        if not sep or name not in NAMES:
            raise SystemExit(f"run_all: --script-args wants NAME=ARGS with NAME one of {', '.join(NAMES)}: {value!r}")
        extra.setdefault(name, []).extend(shlex.split(args))
    return extra


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="small sizes for a smoke check (about a minute)")
    sizes.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # a few seconds, for the tests
    parser.add_argument("--only", nargs="+", choices=NAMES, metavar="NAME", help=f"run only these: {', '.join(NAMES)}")
    parser.add_argument("--repeat", type=int, help="passed to the scripts that take it (append, messaging, failures)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="the Markdown report (default: %(default)s)")
    parser.add_argument("--script-args", action="append", default=[], metavar="NAME=ARGS",
                        help="extra arguments for one script, e.g. append='--synchronous FULL'; repeatable")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="kill a script that runs longer than this")
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    extra = parse_script_args(args.script_args)
    selected = [benchmark for benchmark in BENCHMARKS if not args.only or benchmark.name in args.only]
    started = datetime.now(UTC)
    machine = machine_lines()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="actorlog-bench-") as tmp:
        for benchmark in selected:
            command = build_command(benchmark, mode, args.repeat, extra.get(benchmark.name, ()))
            print(f"\n=== {benchmark.name}: {display_command(command)}", flush=True)
            outcome = run_benchmark(benchmark, command, Path(tmp) / f"{benchmark.name}.json", args.timeout)
            if outcome.failed:
                print(f"run_all: benchmarks/{benchmark.name}.py {outcome.error}", file=sys.stderr, flush=True)
            outcomes.append(outcome)
    report = render(outcomes, mode=mode, machine=machine, started=started, finished=datetime.now(UTC), argv=argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report + "\n")
    missed = sum(fig.met is False for outcome in outcomes for fig in outcome.figures)
    failed = [f"benchmarks/{outcome.benchmark.name}.py" for outcome in outcomes if outcome.failed]
    figures = sum(len(outcome.figures) for outcome in outcomes)
    print(f"\nwrote {args.output} ({mode} run): {figures} figures, {missed} missed targets")
    if failed:
        print(f"run_all: FAILED: {', '.join(failed)} (the report holds what the others produced)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
