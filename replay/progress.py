"""Progress bars for the commands that can take a while on a big log: one choice for the CLI.

click's progress bar (click is already the CLI's toolkit: no new dependency), with rate
and ETA, on stderr, and only when stderr is a terminal: a pipe, a file or a test sees
nothing. `progress` hands the command a callable taking how many items were just done.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

Advance = Callable[[int], None]
"""Called with the number of items done since the last call."""

MIN_ITEMS = 50_000
"""Below this, a command ends too soon for a bar to help."""


def _quiet(done: int) -> None:
    """No progress shown."""


@contextmanager
def progress(total: int, label: str) -> Iterator[Advance]:
    """A progress bar over ``total`` items labelled ``label`` on stderr if it is a terminal."""
    if total < MIN_ITEMS or not _stderr_is_terminal():
        yield _quiet
        return
    started, seen = time.monotonic(), [0]
    with click.progressbar(length=total, label=label, file=sys.stderr, show_eta=True, show_percent=True) as bar:
        def advance(done: int) -> None:
            seen[0] += done
            elapsed = time.monotonic() - started
            if elapsed > 0:  # the rate beside click's own ETA
                bar.label = f"{label} ({seen[0] / elapsed:,.0f}/s)"
            bar.update(done)

        yield advance


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
