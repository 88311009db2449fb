"""Closing what is still open when the interpreter exits."""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def close_at_exit(close: Callable[[T], None]) -> weakref.WeakSet[T]:
    """A set of open objects that ``close`` is called on at interpreter exit.

    Actor threads are daemons (an unclosed object must not hang exit), so this is what
    flushes pending events. Handlers run last-registered first: an actor system, created
    on top of a store, is stopped before the store closes.
    """
    still_open: weakref.WeakSet[T] = weakref.WeakSet()

    def close_remaining() -> None:
        for item in list(still_open):
            try:
                close(item)
            except Exception:  # noqa: BLE001, S110 - interpreter exit: nothing left to report to
                pass

    atexit.register(close_remaining)
    return still_open
