"""The writer's inbox: a FIFO bounded in rows, so a batch weighs as much as its rows."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from actorlog.store.rows import Batch


def _weight(item: Any) -> int:
    kind = type(item)
    if kind is Batch:
        return len(item)
    return 1 if kind is list else 0  # requests (flush, snapshot, stop) take no room


class RowInbox:
    """Rows (and requests) waiting for the writer.

    `put` blocks while the rows waiting reach ``max_rows`` (back-pressure); requests never
    wait for room, so a flush or a stop always gets in. The writer takes one item with
    `get` and then everything already waiting with `take_rows`, under one lock acquisition.
    """

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self._items: deque[Any] = deque()
        self._rows = 0
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)

    def put(self, item: Any) -> None:
        """Queue a row, a `Batch` or a request; waits while the inbox is full of rows."""
        weight = _weight(item)
        with self._lock:
            if weight:
                while self._rows >= self.max_rows:
                    self._not_full.wait()
            self._items.append(item)
            self._rows += weight
            self._not_empty.notify()

    def get(self, timeout: float | None = None) -> Any:
        """The oldest item, waiting for one; None if ``timeout`` seconds pass first (items are never None)."""
        with self._lock:
            if timeout is not None and not self._items:
                self._not_empty.wait_for(lambda: bool(self._items), timeout)
                if not self._items:
                    return None
            while not self._items:
                self._not_empty.wait()
            item = self._items.popleft()
            weight = _weight(item)
            if weight:
                self._rows -= weight
                self._not_full.notify_all()
            return item

    def take_rows(self, rows: list[Any], limit: int) -> Any:
        """Move waiting rows into ``rows``, up to ``limit`` rows in all.

        Stops at the first item that is not a row or batch (a request), removes it and
        returns it for the caller to handle after committing; None if there was none.

        The lock is held only to swap the queue out and to put back what is left: producers
        never wait behind the sorting of a thousand rows (with the interpreter lock to take
        back after such a wait, that cost them far more than the sorting itself).
        """
        with self._lock:
            waiting = self._items
            if not waiting:
                return None
            self._items = deque()
        taken = 0
        other: Any = None
        while waiting and len(rows) < limit:  # only this thread holds `waiting` now
            item = waiting.popleft()
            kind = type(item)
            if kind is list:
                rows.append(item)
                taken += 1
            elif kind is Batch:
                rows.extend(item)
                taken += len(item)
            else:
                other = item
                break
        with self._lock:
            if waiting:  # what was left goes back first, in order, before what came meanwhile
                waiting.extend(self._items)
                self._items = waiting
            if taken:
                self._rows -= taken
                self._not_full.notify_all()
        return other

    def statistics(self) -> dict[str, int]:
        """Rows and items waiting now, and the bound (trio's ``statistics()`` habit)."""
        with self._lock:
            return {"rows_waiting": self._rows, "items_waiting": len(self._items), "max_rows": self.max_rows}
