"""Fresh correlation ids: 16 hex digits, as unique as random 64-bit numbers are.

Drawn from a generator seeded once from the OS (and again in a forked child), not from
``os.urandom`` per id: that syscall gives the interpreter lock up, and taking it back
while another thread runs costs up to the switch interval (5 ms), on every message an
application tells. A correlation only ties a story's events together; it is no secret.
"""

from __future__ import annotations

import os
import random

_ids = random.Random(os.urandom(32))
_draw = _ids.getrandbits  # one C call: atomic under the GIL, so safe from any thread


def _reseed() -> None:
    _ids.seed(os.urandom(32))  # a child must not repeat its parent's ids


os.register_at_fork(after_in_child=_reseed)


def new_correlation() -> str:
    """A fresh correlation id for a message that starts a new story."""
    return "%016x" % _draw(64)
