"""The ``actorlog`` command line."""

from __future__ import annotations

import json
import sys
from importlib.metadata import PackageNotFoundError, version

import click

from actorlog.events import ActorlogError
from actorlog.store import EventStore


def _version() -> str:
    try:
        return version("actorlog")
    except PackageNotFoundError:  # pragma: no cover - only when run from an uninstalled tree
        return "unknown"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="actorlog")
def cli() -> None:
    """actorlog: an event-sourced actor system with a flight recorder.

    Every command that reads a log opens it read-only and never changes it.
    """


@cli.command()
@click.argument("log", type=click.Path(dir_okay=True, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(log: str, as_json: bool) -> None:
    """Check a log's append-only triggers and recompute its hash chain.

    Exit 0 when intact, 1 when tampering is found (naming the first bad seq),
    2 when LOG is not an actorlog event log.

    \b
    Examples:
      actorlog verify app.db
      actorlog verify app.db --json
    """
    try:
        with EventStore.open_readonly(log) as store:
            report = store.verify()
    except ActorlogError as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        click.echo(json.dumps({
            "ok": report.ok, "events_checked": report.events_checked, "last_seq": report.last_seq,
            "first_bad_seq": report.first_bad_seq, "problems": list(report.problems),
        }))
    elif report.ok:
        click.echo(f"ok: {report.events_checked} events, chain intact up to seq {report.last_seq}, triggers in place")
    else:
        for problem in report.problems:
            click.echo(f"FAILED: {problem}")
    sys.exit(0 if report.ok else 1)


def main() -> None:
    """Entry point of the ``actorlog`` console script."""
    cli(prog_name="actorlog")
