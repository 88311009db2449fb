"""Automatic snapshots: every N committed events, this run's live statistics are stored."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from actorlog.replay.statistics import SNAPSHOT_PROJECTION, Statistics
from actorlog.store import EventStore

logger = logging.getLogger(__name__)


class AutoSnapshots:
    """A background thread storing a snapshot of the run's statistics each time ``every``
    more events are committed.

    The state is the live projections' own (``state()`` returns its position and JSON), so
    nothing is folded twice; the snapshot is stored for the store's run, and a rebuild of
    that run starts from it. The write goes through the store's writer like every other.
    """

    def __init__(self, store: EventStore, state: Callable[[], tuple[int, str]], every: int, *, poll: float = 0.5) -> None:
        if every < 1:
            raise ValueError(f"snapshot_every must be >= 1, got {every}")
        self.store = store
        self.every = every
        self.poll = poll
        self.taken = 0
        self._state = state
        self._last = store.statistics()["committed"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="actorlog-snapshots", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self.check()

    def check(self) -> None:
        """Store a snapshot now if ``every`` events were committed since the last one."""
        try:
            committed = self.store.statistics()["committed"]
            if committed - self._last >= self.every:
                position, state = self._state()
                self.store.save_snapshot(SNAPSHOT_PROJECTION, Statistics.version, position, state, run=self.store.run)
                self._last = committed
                self.taken += 1
        except Exception:  # noqa: BLE001 - a failed snapshot only costs a longer rebuild later
            logger.exception("storing an automatic snapshot failed")

    def close(self) -> None:
        """Stop the thread (a snapshot in progress completes)."""
        self._stop.set()
        self._thread.join()
