"""Automatic snapshots: every N committed events, the statistics are folded and stored."""

from __future__ import annotations

import logging
import threading

from actorlog.replay.rebuild import take_snapshot
from actorlog.store import EventStore

logger = logging.getLogger(__name__)


class AutoSnapshots:
    """A background thread storing a statistics snapshot each time ``every`` more events are committed.

    Each snapshot folds only the events since the previous one, so the cost per event is
    constant; the write goes through the store actor like every other write.
    """

    def __init__(self, store: EventStore, every: int, *, poll: float = 0.5) -> None:
        if every < 1:
            raise ValueError(f"snapshot_every must be >= 1, got {every}")
        self.store = store
        self.every = every
        self.poll = poll
        self.taken = 0
        self._last = store.last_seq()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="actorlog-snapshots", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self.check()

    def check(self) -> None:
        """Store a snapshot now if ``every`` events were committed since the last one."""
        try:
            if self.store.last_seq() - self._last >= self.every:
                self._last = take_snapshot(self.store)
                self.taken += 1
        except Exception:  # noqa: BLE001 - a failed snapshot only costs a longer rebuild later
            logger.exception("storing an automatic snapshot failed")

    def close(self) -> None:
        """Stop the thread (a snapshot in progress completes)."""
        self._stop.set()
        self._thread.join()
