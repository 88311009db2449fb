"""The ``actorlog`` commands that run a system: ``demo`` and ``run CONFIG.toml``.

They live apart from the read-only audit commands of `actorlog.replay.cli`, and are added
to its command group when that module loads.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

import click

from actorlog.actors.config import build_system, load_config
from actorlog.actors.errors import ConfigError, EscalationError, StartError
from actorlog.actors.examples.agent import Solution
from actorlog.actors.examples.demo import DemoReport, DemoTask, run_demo
from actorlog.replay.cli import _print_stats, cli, friendly_errors


@cli.command()
@click.option("--db", "path", default="actorlog-demo.db", show_default=True, type=click.Path(dir_okay=False),
              help="The event log to write (a new run is appended if it exists).")
@click.option("--tasks", type=click.IntRange(min=1), default=20, show_default=True, help="How many tasks to give the agent.")
@click.option("--seed", type=int, default=0, show_default=True, help="Decides the tasks and every model outcome.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the final statistics as JSON, exactly as `actorlog stats PATH --json` does.")
@friendly_errors
def demo(path: str, tasks: int, seed: int, as_json: bool) -> None:
    """Run the demo application: an agent that asks an offline model for code and runs it in a sandbox.

    Generations fail, connections drop and are retried with backoff, the model crashes on
    a long prompt and is restarted, sandboxed programs are stopped by their limits. Every
    fact goes to the event log; progress is shown on stderr. The same seed gives the same
    outcome.

    \b
    Examples:
      actorlog demo
      actorlog demo --db /tmp/demo.db --tasks 40 --seed 7
      actorlog demo --json > live.json && actorlog stats actorlog-demo.db --json | diff - live.json
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise click.BadParameter(f"the folder {folder!r} does not exist", param_hint="'--db'")
    click.echo(f"actorlog demo: {tasks} task(s), seed {seed}, log {path}", err=True)
    report = run_demo(path, tasks=tasks, seed=seed, progress=_progress(tasks))
    if as_json:
        click.echo(json.dumps(report.statistics, indent=2, sort_keys=True))
        return
    _summary(report)


def _progress(total: int) -> Callable[[int, DemoTask, Solution], None]:
    width = len(str(total))

    def show(index: int, task: DemoTask, solution: Solution) -> None:
        outcome = "solved " if solution.solved else "gave up"
        attempts = f"{solution.attempts} attempt{'s' if solution.attempts != 1 else ''}"
        text = task.text if len(task.text) <= 48 else task.text[:47] + "…"
        line = f"[{index + 1:>{width}}/{total}] {outcome} {attempts:<10} {text}"
        if solution.error:
            exc_type, _, message = solution.error.partition(": ")
            line += f"  ({exc_type.rpartition('.')[2]}: {message[:80]})"
        click.echo(line, err=True)

    return show


def _summary(report: DemoReport) -> None:
    restarted = ", ".join(f"{name} {count}x" for name, count in report.restarts.items() if count) or "none"
    click.echo(
        f"\n{report.solved} solved, {report.gave_up} given up, {report.attempts} attempts in {report.seconds:.1f} s; "
        f"restarts: {restarted}; run {report.run}\n"
    )
    _print_stats(report.statistics)
    log = report.path
    click.echo("\nNext, try:")
    click.echo(f"  actorlog stats {log}                           # the same statistics, rebuilt from the log")
    click.echo(f"  actorlog query {log} --kind failure.raised      # every failure, with its correlation")
    click.echo(f"  actorlog query {log} --kind plugin.restarted    # the crash and its restart")
    if report.reproducible_failure is not None:
        click.echo(f"  actorlog reproduce {log} {report.reproducible_failure}"
                   f"                     # replay the LLM failure at seq {report.reproducible_failure}")
    click.echo(f"  actorlog tail {log} -n 20")
    click.echo(f"  sqlite-utils {log} 'select plugin, exc_type, count(*) from failures group by 1, 2' --table")


@cli.command()
@click.argument("config_file", metavar="CONFIG.toml", type=click.Path(dir_okay=False))
@click.option("--db", "path", type=click.Path(dir_okay=False), help="The event log to write, instead of the file's `log`.")
@friendly_errors
def run(config_file: str, path: str | None) -> None:
    """Start the system a TOML file describes; run until SIGINT (Ctrl-C) or SIGTERM.

    On a signal the plugins stop in reverse dependency order, the log is flushed, and the
    exit status is 0. A bad config exits with status 2 and names the file and the key;
    an escalation that stops the system exits with status 1. See examples/agent.toml.

    \b
    Examples:
      actorlog run examples/agent.toml
      actorlog run examples/agent.toml --db /tmp/agent.db
    """
    loaded = load_config(config_file)
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        system = build_system(loaded, db=path)
        try:
            try:
                order = system.start()
            except StartError as exc:
                raise ConfigError(f"{config_file}: key `plugins.{exc.plugin}`: {exc}") from None
            click.echo(
                f"actorlog run: started {', '.join(order)} (log {system.store.path}, run {system.run}); "
                f"stop with Ctrl-C or SIGTERM", err=True,
            )
            for recipient, message in loaded.messages:
                system.tell(recipient, message)
            while not stop.wait(0.1) and not system.wait(0):
                pass
        finally:
            system.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    escalation: EscalationError | None = system.escalation
    if escalation is not None:
        click.echo(f"actorlog run: the system stopped on an escalation: {escalation}", err=True)
        sys.exit(1)
    click.echo(f"actorlog run: stopped on {received[0] if received else 'request'}; log flushed", err=True)
