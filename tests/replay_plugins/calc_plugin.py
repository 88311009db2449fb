"""A plugin whose failures the reproduction tests record and replay (tests/test_replay_reproduce.py).

Imported as the top-level module ``calc_plugin`` (its folder is put on ``sys.path`` by
tests/replay_helpers.py, and given to ``actorlog reproduce --import-path`` in
subprocesses), so the class path recorded in the log is ``calc_plugin:Calc``.

Two switches simulate a changed installation of the plugin's code:

- ``VERSION`` (environment ``T6_CALC_VERSION``, default "1.0") is ``Calc.version``;
- ``MODE`` (environment ``T6_CALC_MODE``, default "strict"): in "lenient" mode the
  handlers never raise, so a recorded failure does not happen again.

Both are read from the environment when the module is imported (for subprocesses) and
may be changed on the module by a test (read at call time).
"""

from __future__ import annotations

import math
import os

from actorlog.actors import Plugin, handler
from actorlog.events import Message, register

VERSION = os.environ.get("T6_CALC_VERSION", "1.0")
MODE = os.environ.get("T6_CALC_MODE", "strict")


@register
class Add(Message, tag="t6.calc.add", frozen=True):
    """Add ``x`` to the running total; raises OverflowError past ``config["limit"]``."""

    x: float


@register
class Divide(Message, tag="t6.calc.divide", frozen=True):
    """Answer ``a / b``: ZeroDivisionError when ``b`` is 0 (deterministic)."""

    a: float
    b: float


@register
class Gamble(Message, tag="t6.calc.gamble", frozen=True):
    """Draw from ``context.random()``; raise `Unlucky` (naming the draw and ``context.now()``)
    when the draw is below ``threshold``."""

    n: int
    threshold: float = 0.3


@register
class Crash(Message, tag="t6.calc.crash", frozen=True):
    """Raise OSError (high severity: the plugin is restarted, its total reset)."""


class Unlucky(Exception):
    """Raised by `Gamble` on a low draw."""


class Calc(Plugin):
    version = VERSION

    def on_start(self) -> None:
        self.total = 0.0
        self.limit = float(self.config.get("limit", math.inf))

    @handler
    def add(self, message: Add) -> float:
        self.total += message.x
        if self.total > self.limit and MODE == "strict":
            raise OverflowError(f"total {self.total} is over the limit {self.limit}")
        return self.total

    @handler
    def divide(self, message: Divide) -> float:
        if message.b == 0 and MODE != "strict":
            return math.inf
        return message.a / message.b

    @handler
    def gamble(self, message: Gamble) -> float:
        draw = self.context.random().random()
        second = self.context.random().random()
        now = self.context.now()
        if draw < message.threshold and MODE == "strict":
            raise Unlucky(f"draw {draw!r} (then {second!r}) below {message.threshold} for #{message.n} at {now!r}")
        return draw

    @handler
    def crash(self, message: Crash) -> None:
        raise OSError(f"crashed with total {self.total}")
