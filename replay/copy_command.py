"""``actorlog copy SRC DST``: move a log between SQLite and PostgreSQL, verbatim and verified."""

from __future__ import annotations

import json
import sys

import click

from actorlog.replay.cli import friendly_errors
from actorlog.store import EventStore
from actorlog.store import copy_log


@click.command()
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="DST")
@click.option("--json", "as_json", is_flag=True, help="Print what was copied as JSON.")
@friendly_errors
def copy(source: str, target: str, as_json: bool) -> None:
    """Copy the log SRC into the new, empty log DST, row for row (seq, time, payload text and
    hash kept), then verify both: the copy has the same chain and checkpoints as the original.
    SRC and DST are file paths or postgresql:// URLs (?schema=NAME picks the schema).

    \b
    Examples:
      actorlog copy app.db 'postgresql://audit@db.example/audit?schema=shop'
      actorlog copy 'postgresql:///audit?schema=shop' shop-copy.db
    """
    with EventStore.open_readonly(source) as original:
        before = original.verify()
        if not before.ok:
            raise ValueError(f"{original.location.display!r} does not verify ({before.problems[0]}); a copy would "
                             f"carry the damage: run `actorlog verify` on it first")
        total = original.count()
        with click.progressbar(length=total, label="copying", file=sys.stderr,
                               hidden=not sys.stderr.isatty()) as bar:
            done = [0]

            def advance(copied: int) -> None:
                bar.update(copied - done[0])
                done[0] = copied

            report = copy_log(original, target, progress=advance)
    with EventStore.open_readonly(target) as copied:
        after = copied.verify()
        display = copied.location.display
    if not after.ok or after.last_seq != before.last_seq:
        raise ValueError(f"the copy at {display!r} does not verify: {(after.problems or ('its last seq differs',))[0]}")
    if as_json:
        click.echo(json.dumps({"events": report.events, "snapshots": report.snapshots, "last_seq": report.last_seq,
                               "last_hash": report.last_hash, "target": display}))
    else:
        click.echo(f"copied {report.events} events and {report.snapshots} snapshots to {display}; "
                   f"verified: chain intact up to seq {report.last_seq}")
