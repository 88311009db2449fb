"""How many messages wait for one plugin, bounded: back-pressure on its senders.

The common case (room left) takes no lock on either side: each sender draws a ticket from
a counter (``next`` on `itertools.count` is one C call, atomic under the GIL), and the
plugin's own actor counts what it has handled or refused (written by that thread only).
What waits is ``ticket - handled - refunded``. Only a sender that finds the inbox full
takes the lock, registers as a waiter, and sleeps until the actor, seeing a waiter, wakes it.

Why no wake-up is lost: a waiter registers (under the lock) before it looks at
``handled``, and the actor adds to ``handled`` before it looks for waiters; the
interpreter runs those steps in one order, so one of the two sees the other's write.
"""

from __future__ import annotations

import itertools
import threading


class InboxBound:
    """`take` a slot to send (waiting while the inbox is full); `give_back` (the plugin's
    actor only) once the message is handled or refused."""

    __slots__ = ("_room", "_tickets", "handled", "limit", "refunded", "waiters")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._tickets = itertools.count(1)
        self.handled = 0
        """Slots given back (written by the plugin's actor only)."""
        self.refunded = 0
        """Tickets drawn but not sent (a sender that gave up waiting; written under the lock)."""
        self.waiters = 0
        """Senders waiting for room (written under the lock)."""
        self._room = threading.Condition(threading.Lock())

    def take(self, timeout: float | None) -> bool:
        """Take a slot, waiting up to ``timeout`` s for one (0: do not wait); False if none came."""
        ticket = next(self._tickets)
        if ticket - self.handled - self.refunded <= self.limit:
            return True
        return self._wait(ticket, timeout)

    def _wait(self, ticket: int, timeout: float | None) -> bool:
        room = self._room
        with room:
            self.waiters += 1
            try:
                if timeout != 0 and room.wait_for(lambda: ticket - self.handled - self.refunded <= self.limit, timeout):
                    return True
                self.refunded += 1  # this ticket holds no slot after all
                room.notify_all()  # a later ticket may fit now
                return False
            finally:
                self.waiters -= 1

    def give_back(self) -> None:
        """Return a slot (called by the plugin's actor only); wakes the senders waiting, if any."""
        self.handled += 1
        if self.waiters:
            with self._room:
                self._room.notify_all()
