"""The live projections: this run's statistics, folded from the records its log commits.

The store hands every commit's records (real seq, time and hash) to this actor, which
folds them into the same `Statistics` projection replay builds by reading the log. Every
statistic the live system answers is a read of it, on this actor's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
import pykka

from actorlog.replay.statistics import Statistics
from actorlog.store import Commit

logger = logging.getLogger(__name__)


class Read(msgspec.Struct, frozen=True):
    """Ask for ``read(statistics)``, computed on the projections' own thread."""

    read: Callable[[Statistics], Any]


class LiveProjections(pykka.ThreadingActor):
    """Owns one run's `Statistics`; told `Commit`s by the store's writer, asked `Read`s."""

    use_daemon_thread = True

    def __init__(self, statistics: Statistics) -> None:
        super().__init__()
        self.statistics = statistics

    def on_receive(self, message: Any) -> Any:
        if type(message) is Read:
            return message.read(self.statistics)  # asked: an error goes to the asker
        if type(message) is Commit:
            statistics = self.statistics
            for record in message.records:
                try:
                    statistics.apply(record)
                except Exception:  # noqa: BLE001 - one record must not stop the live statistics
                    logger.exception("the live statistics could not fold event seq %d", record.seq)
            statistics.advance(message.last_seq, message.newest_ts)
            return None
        logger.error("the live projections ignored a %s", type(message).__qualname__)
        return None
