"""One host of a shared log: an ActorSystem on TARGET doing real work, flushing as it goes.

Usage: host_worker.py TARGET WID ROUNDS

Round i asks plugin ``busy`` to work (every fifth ask fails with a ValueError, which the
error handler continues), and appends ``CounterIncremented(name=f"host.{WID}", value=i)``
as application code. After every tenth round it flushes and prints ``flushed N``: the
first N rounds' events are committed. At the end it stops the system and prints
``stats JSON``, the live statistics of its run after stop.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from replay_helpers import GENEROUS_RESTARTS, Busy, Work  # noqa: E402
from actorlog.actors import ActorSystem  # noqa: E402
from actorlog.events import CounterIncremented  # noqa: E402


def main() -> None:
    target, wid, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    system = ActorSystem(target, restart_policy=GENEROUS_RESTARTS)
    system.register("busy", Busy)
    system.start()
    print("run", system.run, flush=True)
    for i in range(rounds):
        try:
            system.ask("busy", Work(value=float(i), fail="ValueError" if i % 5 == 4 else "", text=f"r{i}"),
                       timeout=60)
        except ValueError:
            pass
        system.store.append(CounterIncremented(name=f"host.{wid}", value=float(i)), actor="worker")
        if i % 10 == 9:
            system.flush()
            print("flushed", i + 1, flush=True)
    system.stop()
    print("stats", json.dumps(system.statistics()), flush=True)


if __name__ == "__main__":
    main()
