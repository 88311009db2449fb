"""Record measurements from several threads while the main thread calls ``system.flush()``;
after the last flush, SIGKILL this process.

Usage: flush_worker.py PATH ROUNDS THREADS BUFFER_SIZE MAX_PENDING

Thread ``t`` records, as fast as it can, histogram points ``flush.value`` tagged
``{"thread": str(t)}`` whose values are ``0.0, 1.0, 2.0, ...``; after each ``observe``
returns it stores how many it has recorded. So when the main thread reads those counts
just before calling ``flush()``, every point below the count of thread ``t`` was
recorded before the flush began, and must be committed when ``flush()`` returns.

To keep the volume (and so the cost of each flush) small, the threads record in
rounds: in round ``r`` each records up to ``(r + 1) * QUOTA`` points in all, then waits
for the next round. For each of ROUNDS rounds the main thread waits until every thread
has recorded half of its round's quota (the other half is recorded while the flush
runs), reads the counts, calls ``system.flush()``, and then:

- in every round but the last, reads the committed points back at once, in one
  statement on a separate read-only connection (it sees committed rows only, as a
  process started after a crash would), and prints
  ``round {"round": r, "before": [...], "missing": [...]}``: ``missing[t]`` is how many
  of thread ``t``'s points recorded before the flush are not committed;
- in the last round, prints ``kill {"round": r, "before": [...]}`` and SIGKILLs itself
  right away. The test then reads the log and checks those counts.

The system is built with ``MetricsOptions(buffer_size=BUFFER_SIZE, max_pending=MAX_PENDING)``:
a small ``max_pending`` keeps senders waiting for room (back-pressure) with a batch in hand.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from actorlog.actors import ActorSystem, MetricsOptions
from actorlog.store import EventStore

NAME = "flush.value"
QUOTA = 512
"""Points each thread records per round."""


def main() -> None:
    path = sys.argv[1]
    rounds, thread_count, buffer_size, max_pending = (int(arg) for arg in sys.argv[2:6])
    system = ActorSystem(path, metrics=MetricsOptions(buffer_size=buffer_size, max_pending=max_pending))
    counts = [0] * thread_count
    failures: list[BaseException] = []
    gate = threading.Condition()
    quota = [QUOTA]

    def produce(index: int) -> None:
        observe = system.metrics.observe
        tags = {"thread": str(index)}
        i = 0
        try:
            while True:
                limit = quota[0]
                while i < limit:
                    observe(NAME, float(i), tags)
                    i += 1
                    counts[index] = i
                with gate:
                    gate.wait_for(lambda: quota[0] > i)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    for index in range(thread_count):
        threading.Thread(target=produce, args=(index,), name=f"flush-producer-{index}", daemon=True).start()

    reader = EventStore.open_readonly(path)
    seen: list[set[int]] = [set() for _ in range(thread_count)]
    prefix = [0] * thread_count  # per thread: every value below it is committed
    last_seq = 0
    out = sys.stdout
    for round_ in range(rounds):
        # wait (bounded) until every thread has recorded half of this round's quota
        half = round_ * QUOTA + QUOTA // 2
        spins = 0
        while any(count < half for count in counts) and not failures:
            spins += 1
            if spins > 50_000_000:
                raise SystemExit(f"the producers are stuck in round {round_}: {counts}")
            os.sched_yield()
        if failures:
            raise SystemExit(f"a producer failed: {failures[0]!r}")
        before = list(counts)
        system.flush()
        if round_ == rounds - 1:
            out.write("kill " + json.dumps({"round": round_, "before": before}) + "\n")
            out.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        rows = reader.db.execute(
            "SELECT seq, json_extract(payload, '$.tags.thread'), json_extract(payload, '$.value') FROM events "
            "WHERE seq > ? AND kind = 'histogram.observed'",
            (last_seq,),
        ).fetchall()
        for seq, thread, value in rows:
            last_seq = max(last_seq, seq)
            seen[int(thread)].add(int(value))
        missing = []
        for t in range(thread_count):
            while prefix[t] in seen[t]:
                prefix[t] += 1
            missing.append(sum(1 for v in range(prefix[t], before[t]) if v not in seen[t]))
        out.write("round " + json.dumps({"round": round_, "before": before, "missing": missing}) + "\n")
        out.flush()
        with gate:
            quota[0] += QUOTA
            gate.notify_all()
    raise SystemExit("unreachable: the last round kills the process")


if __name__ == "__main__":
    main()
