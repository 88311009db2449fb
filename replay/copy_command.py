"""``actorlog copy SRC DST``: move a log between SQLite and PostgreSQL, verbatim and verified."""

from __future__ import annotations

import json

import click

from actorlog.replay.cli import friendly_errors
from actorlog.replay.output import output_options
from actorlog.replay.progress import progress
from actorlog.store import EventStore, copy_log


@click.command()
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="DST")
@output_options(tabular=False)
@friendly_errors
def copy(source: str, target: str, output: str) -> None:
    """Copy the log SRC into the new, empty log DST, row for row (seq, time, payload text and
    hash kept), then verify both: the copy has the same chain and checkpoints as the original.
    SRC and DST are file paths or postgresql:// URLs (?schema=NAME picks the schema).

    \b
    Examples:
      actorlog copy app.db 'postgresql://audit@db.example/audit?schema=shop'
      actorlog copy 'postgresql:///audit?schema=shop' shop-copy.db --json
    """
    with EventStore.open_readonly(source) as original:
        with progress(original.last_seq(), "verifying the source") as advance:
            before = original.verify(progress=advance)
        if not before.ok:
            raise ValueError(f"{original.location.display!r} does not verify ({before.problems[0]}); a copy would "
                             f"carry the damage: run `actorlog verify` on it first")
        with progress(original.count(), "copying") as advance:
            done = [0]

            def copied_so_far(copied: int) -> None:
                advance(copied - done[0])
                done[0] = copied

            report = copy_log(original, target, progress=copied_so_far)
    with EventStore.open_readonly(target) as copied:
        with progress(copied.last_seq(), "verifying the copy") as advance:
            after = copied.verify(progress=advance)
        display = copied.location.display
    if not after.ok or after.last_seq != before.last_seq:
        raise ValueError(f"the copy at {display!r} does not verify: {(after.problems or ('its last seq differs',))[0]}")
    answer = {"events": report.events, "snapshots": report.snapshots, "last_seq": report.last_seq,
              "last_hash": report.last_hash, "target": display}
    if output in ("json", "jsonl"):  # one answer: the same line either way
        click.echo(json.dumps(answer))
    else:
        click.echo(f"copied {report.events} events and {report.snapshots} snapshots to {display}; "
                   f"verified: chain intact up to seq {report.last_seq}")
