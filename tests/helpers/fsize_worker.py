"""Append events until the operating system refuses to let the log's files grow: a full disk.

Usage: fsize_worker.py PATH LIMIT_BYTES BATCH

Sets this process's RLIMIT_FSIZE to LIMIT_BYTES with SIGXFSZ ignored, so a write past the
limit fails with EFBIG the way one fails with ENOSPC on a full disk (SQLite reports
"database or disk is full" or "disk I/O error"). Then appends batches of
``CounterIncremented(name="fill", value=float(i))``, alternating `append_many` and single
appends, and flushes after each batch, printing ``flushed <last index>``. When the store
raises `StoreWriteError` it prints ``failed <message>``, closes the store (printing
``close same`` when closing raises that same error) and exits 0. Exits 3 if the limit
never stopped it.
"""

from __future__ import annotations

import resource
import signal
import sys

from actorlog.events import CounterIncremented
from actorlog.store import EventStore, StoreWriteError


def say(line: str) -> None:
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


def main() -> None:
    path, limit, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    store = EventStore(path, run="fsize")
    i = 0
    try:
        for iteration in range(2_000):
            events = [CounterIncremented(name="fill", value=float(j)) for j in range(i, i + batch)]
            if iteration % 2 == 0:
                store.append_many(events, actor="fill")
            else:
                for event in events:
                    store.append(event, actor="fill")
            i += batch
            store.flush()
            say(f"flushed {i - 1}")
    except StoreWriteError as failure:
        say(f"failed {failure}")
        try:
            store.close()
        except StoreWriteError as again:
            say("close same" if again is failure else f"close other {again}")
        else:
            say("close ok")
        return
    store.close()
    sys.exit(3)


if __name__ == "__main__":
    main()
