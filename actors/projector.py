"""The live projections: this run's statistics, folded from the rows its log commits.

The store hands every commit's rows (real seq and time, undecoded) to this actor, which
folds them into the same `Statistics` projection replay builds by reading the log, through
the same `Statistics.fold_chunks` replay uses, decoding them on this actor's thread (not the
store writer's, which every producer waits on). Every statistic the live system answers is a
read of it, on this actor's thread.

It starts from a `Seed`: the run's rows already in the log (a store the application
appended to before handing it over, or a run id given again), folded by the system.
Commits that reach it before the seed wait, and only those past the seed's position
are folded, so no record is folded twice or missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
import pykka

from actorlog.events import ActorlogError, Codec
from actorlog.replay.statistics import Statistics
from actorlog.store import Commit

logger = logging.getLogger(__name__)


class Read(msgspec.Struct, frozen=True):
    """Ask for ``read(statistics)``, computed on the projections' own thread."""

    read: Callable[[Statistics], Any]


class Seed(msgspec.Struct, frozen=True):
    """The run's statistics folded from the log up to ``position``, to start from."""

    statistics: Statistics
    position: int


class LiveProjections(pykka.ThreadingActor):
    """Owns one run's `Statistics`; told a `Seed` and `Commit`s (of rows, ``decoded=False``),
    asked `Read`s. ``codec`` decodes the rows: the store's."""

    use_daemon_thread = True

    def __init__(self, codec: Codec) -> None:
        super().__init__()
        self.codec = codec
        self.statistics = Statistics()
        self.seeded = False
        self.waiting: list[Commit] = []

    def on_receive(self, message: Any) -> Any:
        if type(message) is Read:
            return message.read(self.statistics)  # asked: an error goes to the asker
        if type(message) is Commit:
            if self.seeded:
                self._fold(message, 0)
            else:
                self.waiting.append(message)
            return None
        if type(message) is Seed:
            self.statistics, self.seeded = message.statistics, True
            waiting, self.waiting = self.waiting, []
            for commit in waiting:
                self._fold(commit, message.position)
            return None
        logger.error("the live projections ignored a %s", type(message).__qualname__)
        return None

    def _fold(self, commit: Commit, after: int) -> None:
        """Fold the commit's rows past seq ``after`` (the seed holds the rest)."""
        if commit.last_seq <= after:
            return
        statistics = self.statistics
        rows = commit.rows if not after else [row for row in commit.rows if row[0] > after]
        while rows:
            try:
                statistics.fold_chunks((rows,), self.codec)
                break
            except ActorlogError as exc:  # one row must not stop the live statistics: fold on past it
                bad = getattr(exc, "seq", None)
                logger.exception("the live statistics could not fold an event of commit up to seq %d", commit.last_seq)
                if not isinstance(bad, int):
                    break
                rows = [row for row in rows if row[0] > bad]
        statistics.advance(commit.last_seq, commit.newest_ts)
