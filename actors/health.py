"""The health scheduler: a thread that asks each running plugin for its health check when due."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import pykka

from actorlog.actors.protocol import Control
from actorlog.actors.router import PluginEntry

HEALTH_TICK = 0.05
"""Seconds between looks at which checks are due."""


class HealthScheduler:
    """Tells each plugin with a ``health_interval`` to check its health every that many seconds.

    Only the plugin's own actor runs the check (and logs its result); this thread only
    keeps time. ``running`` says whether a plugin is running now.
    """

    def __init__(
        self, entries: Callable[[], Iterable[PluginEntry]], running: Callable[[PluginEntry], bool],
        *, tick: float = HEALTH_TICK,
    ) -> None:
        self._entries = entries
        self._running = running
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="actorlog-health", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        due: dict[str, float] = {}
        while not self._stop.wait(self._tick):
            now = time.monotonic()
            for entry in list(self._entries()):
                interval = entry.health_interval
                if not interval or entry.ref is None or not self._running(entry):
                    continue
                if now >= due.setdefault(entry.name, now + interval):
                    due[entry.name] = now + interval
                    try:
                        entry.ref.tell(Control(op="health"))
                    except pykka.ActorDeadError:
                        pass

    def close(self) -> None:
        """Stop the thread (a check already told still runs)."""
        self._stop.set()
        self._thread.join()
