"""The recorded clock: what makes a handler's time and randomness reproducible."""

from __future__ import annotations

import random
import time


class RecordedClock:
    """A handler's clock and random numbers, fed from its ``message.received`` event.

    Inside a handler, `now` is the time the message was received and `random` a
    generator seeded from the seed recorded with it; live and in reproduction this is
    the same code over the same two values, which is what makes reproduction deterministic.
    """

    def __init__(self) -> None:
        self.correlation: str | None = None
        """The correlation id of the message being handled, None outside handlers."""
        self._received_at: float | None = None
        self._seed: int | None = None
        self._random: random.Random | None = None

    def begin(self, received_at: float | None, seed: int | None, correlation: str | None) -> None:
        """Enter the handling of one message (called by the plugin's actor).

        ``received_at`` and ``seed`` are None when the message is not logged: there is
        nothing to reproduce, so the clock and the generator are live.
        """
        self._received_at = received_at
        self._seed = seed
        self._random = None
        self.correlation = correlation

    def end(self) -> None:
        """Leave the handling of a message (called by the plugin's actor)."""
        self._received_at = None
        self._seed = None
        self._random = None
        self.correlation = None

    def now(self) -> float:
        """Inside a handler, the time its message was received (recorded); otherwise the wall clock."""
        return self._received_at if self._received_at is not None else time.time()

    def random(self) -> random.Random:
        """Inside a handler, a generator seeded from the recorded seed of its message."""
        if self._random is None:
            self._random = random.Random(self._seed) if self._seed is not None else random.Random()
        return self._random
