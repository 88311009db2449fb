"""Append ``count`` events to a log as worker ``wid``, once every worker is ready.

Usage: append_worker.py PATH WID COUNT READY_DIR WORKERS

Events are ``CounterIncremented(name=f"w{wid}", value=float(i))`` for i in 0..COUNT-1,
appended in order, alternating batches (append_many) and single appends. The worker
opens the store, marks itself ready in READY_DIR and waits for WORKERS ready marks, so
the appends of all workers overlap.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from actorlog.events import CounterIncremented
from actorlog.store import EventStore


def main() -> None:
    path, wid, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ready_dir, workers = Path(sys.argv[4]), int(sys.argv[5])
    name = f"w{wid}"
    with EventStore(path, run=f"worker-{wid}") as store:
        (ready_dir / name).touch()
        deadline = time.monotonic() + 60
        while len(list(ready_dir.iterdir())) < workers:
            if time.monotonic() > deadline:
                sys.exit("the other workers never became ready")
            time.sleep(0.005)
        i = 0
        step = 0
        while i < count:
            size = min(count - i, 1 + (step * 37) % 200)
            if step % 2 == 0:
                store.append_many(
                    [CounterIncremented(name=name, value=float(j)) for j in range(i, i + size)], actor=name
                )
            else:
                for j in range(i, i + size):
                    store.append(CounterIncremented(name=name, value=float(j)), actor=name)
            if step % 3 == 2:
                store.flush()
            i += size
            step += 1
        store.flush()


if __name__ == "__main__":
    main()
