"""Many producers against one store actor, on each backend: nothing lost, order kept, memory bounded."""

from __future__ import annotations

import threading

from actorlog.events import CounterIncremented, PluginStarted
from actorlog.store import EventStore

PRODUCERS = 3
PER_PRODUCER = 3000
MAX_PENDING = 50
BATCH_MESSAGE_ROWS = 1000
"""`append_many` sends at most this many rows per message to the store actor."""


def test_producers_outrunning_the_writer_are_held_back_and_lose_nothing(any_log: str) -> None:
    """The writer's inbox, counted in rows, never grows past its bound by more than the one
    message that was let in below it, however fast the producers append."""
    with EventStore(any_log, max_pending_rows=MAX_PENDING) as store:
        largest = 0
        done = threading.Event()

        def monitor() -> None:
            nonlocal largest
            while not done.is_set():
                largest = max(largest, store.statistics()["rows_waiting"])

        def produce(producer: int) -> None:
            name = f"p{producer}"
            for i in range(PER_PRODUCER):
                if i % 500 < 400:
                    store.append(CounterIncremented(name=name, value=float(i)), actor=name)
                elif i % 500 == 400:
                    store.append_many(
                        [CounterIncremented(name=name, value=float(j)) for j in range(i, i + 100)], actor=name
                    )

        watcher = threading.Thread(target=monitor, name="inbox-monitor")
        producers = [threading.Thread(target=produce, args=(p,), name=f"producer-{p}") for p in range(PRODUCERS)]
        watcher.start()
        for thread in producers:
            thread.start()
        for thread in producers:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in producers)
        last = store.flush()
        done.set()
        watcher.join()

        assert last == PRODUCERS * PER_PRODUCER
        assert store.count() == PRODUCERS * PER_PRODUCER
        by_producer: dict[str, list[float]] = {}
        for record in store.events():
            by_producer.setdefault(record.event.name, []).append(record.event.value)
        assert store.verify().ok
    assert largest > 0, "the monitor never saw a pending row"
    assert largest <= MAX_PENDING + BATCH_MESSAGE_ROWS
    # every event exactly once, and each producer's events in the order it appended them
    assert by_producer == {f"p{p}": [float(i) for i in range(PER_PRODUCER)] for p in range(PRODUCERS)}


def test_a_bound_smaller_than_a_batch_still_accepts_the_batch(any_log: str) -> None:
    with EventStore(any_log, max_pending_rows=1, max_batch_rows=7) as store:
        store.append_many([PluginStarted(plugin=str(i)) for i in range(2_500)])
        for i in range(100):
            store.append(PluginStarted(plugin=f"single-{i}"))
        assert store.flush() == 2_600
        assert [r.event.plugin for r in store.events(from_seq=2_500, to_seq=2_502)] == ["2499", "single-0", "single-1"]


def test_a_single_producer_events_keep_append_order_across_many_commits(any_log: str) -> None:
    with EventStore(any_log, max_pending_rows=10, max_batch_rows=13) as store:
        expected = []
        for i in range(1_000):
            if i % 7 == 0:
                batch = [PluginStarted(plugin=f"{i}.{j}") for j in range(5)]
                store.append_many(batch)
                expected.extend(batch)
            else:
                event = PluginStarted(plugin=str(i))
                store.append(event)
                expected.append(event)
            if i % 250 == 0:
                store.flush()
        store.flush()
        assert [r.event for r in store.events()] == expected
        assert store.verify().ok
