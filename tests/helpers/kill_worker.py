"""Append batches forever, printing the last committed index after each flush.

Usage: kill_worker.py PATH BATCH

Iteration n appends ``CounterIncremented(name="kill", value=float(i))`` for the next
BATCH indexes (as one append_many on even iterations, single appends on odd ones),
calls ``flush()``, then prints the last index and flushes stdout. The test kills it
with SIGKILL at an arbitrary moment.
"""

from __future__ import annotations

import sys

from actorlog.events import CounterIncremented
from actorlog.store import EventStore


def main() -> None:
    path, batch = sys.argv[1], int(sys.argv[2])
    with EventStore(path, run="killed") as store:
        i = 0
        iteration = 0
        while True:
            events = [CounterIncremented(name="kill", value=float(j)) for j in range(i, i + batch)]
            if iteration % 2 == 0:
                store.append_many(events, actor="killed")
            else:
                for event in events:
                    store.append(event, actor="killed")
            i += batch
            iteration += 1
            store.flush()
            sys.stdout.write(f"{i - 1}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
