"""The ``actorlog`` commands that run a system: ``demo`` and ``run CONFIG.toml``.

They live apart from the read-only audit commands of `actorlog.replay.cli`;
`actorlog.replay.main` adds them to its command group. The demo's example plugins are
imported only when ``demo`` runs, so no other command loads them.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

import click

from actorlog.actors.config import build_system, load_config, toml_key
from actorlog.actors.reload import Reloader
from actorlog.actors.errors import ConfigError, EscalationError, MetricsAddressError, StartError
from actorlog.actors.metrics_server import parse_address
from actorlog.events import ActorlogError
from actorlog.replay.cli import _print_stats, friendly_errors
from actorlog.store import StoreWriteError
from actorlog.store.location import is_url, parse_location
from actorlog.store.schema import check_log_file

if TYPE_CHECKING:
    from actorlog.actors import ActorSystem
    from actorlog.actors.examples.agent import Solution
    from actorlog.actors.examples.demo import DemoReport, DemoTask


@click.command()
@click.option("--db", "path", default="actorlog-demo.db", show_default=True, type=click.Path(dir_okay=False),
              help="The event log to write (a new run is appended if it exists).")
@click.option("--tasks", type=click.IntRange(min=1), default=20, show_default=True, help="How many tasks to give the agent.")
@click.option("--seed", type=int, default=0, show_default=True, help="Decides the tasks and every model outcome.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the run's final statistics as JSON, exactly as `actorlog stats PATH --run RUN --json` does.")
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
      rm -f d.db && actorlog demo --db d.db --json > live.json && actorlog stats d.db --json | diff - live.json
    """
    if not is_url(path):
        check_log_file(Path(path))  # a bad path or file is one line, before the header
    click.echo(f"actorlog demo: {tasks} task(s), seed {seed}, log {parse_location(path).display}", err=True)
    try:
        # the example plugins load only for this command (not for `actorlog --help` or `run`)
        from actorlog.actors.examples.demo import run_demo  # noqa: PLC0415

        report = run_demo(path, tasks=tasks, seed=seed, progress=_progress(tasks))
    except ActorlogError as exc:
        stopped_early("demo", exc)
        raise
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
    log = shlex.quote(parse_location(report.path).display)  # a URL's password is never printed
    actorlog, sqlite_utils = runnable("actorlog"), runnable("sqlite-utils")
    click.echo("\nNext, try:")
    click.echo(f"  {actorlog} stats {log} --run {report.run}   # the same statistics, rebuilt from the log")
    click.echo(f"  {actorlog} query {log} --kind failure.raised --fields plugin,exc_type,message   # every failure")
    click.echo(f"  {actorlog} query {log} --kind plugin.restarted    # the crash and its restart")
    if report.reproducible_failure is not None:
        click.echo(f"  {actorlog} reproduce {log} {report.reproducible_failure}"
                   f"                     # replay the LLM failure at seq {report.reproducible_failure}")
    click.echo(f"  {actorlog} tail {log} -n 20")
    if not is_url(report.path):  # sqlite-utils reads files; a PostgreSQL log has psql
        click.echo(f"  {sqlite_utils} {log} 'select plugin, exc_type, count(*) from failures group by 1, 2' --table")
    click.echo(f"  {actorlog} serve {log}                  # timelines and charts in the browser (pip install 'actorlog[ui]')")


def runnable(name: str) -> str:
    """How to run the console script ``name`` installed beside this one, as a user can paste it:
    the bare name when the shell finds that very script on PATH, else its full path (a venv
    that was never activated)."""
    here = Path(sys.argv[0]).resolve().parent if sys.argv and sys.argv[0] else Path(sys.executable).parent
    for folder in (here, Path(sys.executable).parent):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            found = shutil.which(name)
            if found is not None and Path(found).resolve() == candidate.resolve():
                return name
            return shlex.quote(str(candidate.absolute()))
    return name


class _Interrupted(BaseException):
    """A signal that cuts a start or a stop short (a BaseException, so no handler swallows it)."""


def _reload(reloader: Reloader, config_file: str) -> None:
    """Apply the changed config file (on SIGHUP), saying on stderr what was done or why not."""
    try:
        plan, problems = reloader.reload()
    except ConfigError as exc:
        click.echo(f"actorlog run: reload refused, nothing changed: {exc}", err=True)
        return
    except ActorlogError as exc:  # a step failed partway: the run goes on, as far as it got
        click.echo(f"actorlog run: reload of {config_file} failed partway: {exc}", err=True)
        return
    steps = (("removed", plan.remove), ("upgraded", plan.upgrade), ("added", plan.add))
    done = "; ".join(f"{what} {', '.join(names)}" for what, names in steps if names) or "no plugin changed"
    click.echo(f"actorlog run: reloaded {config_file}: {done}", err=True)
    for problem in problems:
        click.echo(f"actorlog run: {problem}", err=True)


def _stop_at_once(system: ActorSystem, signame: str) -> NoReturn:
    """After a second signal: commit what was appended, and exit without waiting for the plugins."""
    try:
        system.store.flush(timeout=5.0)
    except Exception:  # noqa: BLE001 - leaving at once: what was committed is in the log either way
        pass
    click.echo(f"actorlog run: stopped at once on a second {signame}; the plugins were not waited for, "
               f"what was committed is in the log", err=True)
    sys.exit(1)  # the plugins' (daemon) threads are left behind on purpose


def stopped_early(command: str, exc: BaseException) -> None:
    """Exit with status 1 and one line if ``exc`` comes from a run that escalated or whose log
    failed (the system stopped itself: the answer is no, the input was fine); else return."""
    cause = _stopped_by(exc)
    if cause is not None:
        report_stop(command, cause)


def report_stop(command: str, cause: BaseException) -> NoReturn:
    """One line saying why the system stopped by itself, and exit status 1."""
    if isinstance(cause, EscalationError):
        click.echo(f"actorlog {command}: the system stopped on an escalation: {cause}", err=True)
    else:
        click.echo(f"actorlog {command}: the system stopped because its event log failed: {cause}", err=True)
    sys.exit(1)


def _stopped_by(exc: BaseException | None) -> BaseException | None:
    """The escalation or log failure along ``exc``'s causes, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, (EscalationError, StoreWriteError)):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


@click.command()
@click.argument("config_file", metavar="CONFIG.toml", type=click.Path(dir_okay=False))
@click.option("--db", "path", type=click.Path(dir_okay=False), help="The event log to write, instead of the file's `log`.")
@click.option("--check", is_flag=True,
              help="Only check the file (plugins, their own configs, dependencies, messages), without opening "
                   "the log or starting anything: exit 0 with one 'ok' line, 2 with the error.")
@click.option("--metrics-address", metavar="HOST:PORT",
              help="Serve /metrics for Prometheus there (port 0: any free port), instead of the file's "
                   "[metrics] address.")
@friendly_errors
def run(config_file: str, path: str | None, check: bool, metrics_address: str | None) -> None:
    """Start the system a TOML file describes; run until SIGINT (Ctrl-C) or SIGTERM.

    On SIGHUP the file is read again and checked as a whole: plugins whose class, version
    or config changed are upgraded in place without losing a message, added ones are
    started, removed ones stopped; a file that fails the check changes nothing (stderr
    and the log say why). On SIGINT or SIGTERM the plugins stop in reverse dependency order, the log is flushed, and the
    exit status is 0. A bad config exits with status 2 and names the file and the key;
    an escalation that stops the system (a failed log included) exits with status 1.
    See examples/agent.toml. With --check, the file is checked as a whole and nothing
    runs: for CI pipelines.

    \b
    Examples:
      actorlog run examples/agent.toml
      actorlog run examples/agent.toml --db /tmp/agent.db
      actorlog run --check examples/agent.toml
      actorlog run examples/agent.toml --metrics-address 127.0.0.1:9464
    """
    if metrics_address is not None:
        try:
            parse_address(metrics_address)
        except MetricsAddressError as exc:
            raise click.BadParameter(str(exc), param_hint="--metrics-address") from None
    loaded = load_config(config_file)
    if check:
        plugins = loaded.config.plugins
        click.echo(
            f"ok: {config_file}: {len(plugins)} plugin(s) ({', '.join(plugins)}), "
            f"{len(loaded.messages)} message(s) to send; the log was not opened"
        )
        return
    stop = threading.Event()
    received: list[str] = []
    phase = ["building"]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()
        # a start that does not return (a blocking on_start) is cut short: the stop follows;
        # a second signal while stopping (a blocking on_stop) stops at once
        if (phase[0] == "starting" and len(received) == 1) or (phase[0] == "stopping" and len(received) > 1):
            raise _Interrupted(received[-1])

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    reload_asked = threading.Event()  # the main loop reloads: a signal handler only asks
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda signum, frame: reload_asked.set())
    failure: StoreWriteError | None = None
    try:
        system = build_system(loaded, db=path, metrics_address=metrics_address)
        try:
            try:
                order: list[str] = []
                try:
                    if not stop.is_set():
                        phase[0] = "starting"
                        order = system.start()
                except _Interrupted:
                    pass
            except StartError as exc:
                if system.store.failure is None:
                    raise ConfigError(f"{config_file}: key `plugins.{toml_key(exc.plugin)}`: {exc}") from None
                raise
            phase[0] = "running"
            if not stop.is_set():
                served = f"; metrics at {system.metrics_server.url}" if system.metrics_server else ""
                click.echo(
                    f"actorlog run: started {', '.join(order)} (log {system.store.location.display}, run {system.run}{served}); "
                    f"stop with Ctrl-C or SIGTERM, reload the file with SIGHUP", err=True,
                )
                for recipient, message in loaded.messages:
                    system.tell(recipient, message)
            reloader = Reloader(system, loaded)
            while not stop.wait(0.1) and not system.wait(0):
                if reload_asked.is_set():
                    reload_asked.clear()
                    _reload(reloader, config_file)
        except ActorlogError as exc:
            if _stopped_by(exc) is None and system.escalation is None and system.store.failure is None:
                raise  # not the system stopping itself: reported as an error
        finally:
            phase[0] = "stopping"
            try:
                system.stop()
            except StoreWriteError as exc:
                failure = exc
            except _Interrupted as second:
                _stop_at_once(system, str(second))
    except ActorlogError as exc:
        stopped_early("run", exc)
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    cause = failure or system.store.failure or system.escalation  # a failed log is the root cause
    if cause is not None:
        report_stop("run", cause)
    click.echo(f"actorlog run: stopped on {received[0] if received else 'request'}; log flushed", err=True)
