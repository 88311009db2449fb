"""Reading pages ahead (PostgreSQL's paged reads): every page once and in order, never more
ahead than allowed, errors raised to the caller, and no thread left when reading stops early."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from actor_helpers import wait_until
from actorlog.events import GaugeSet
from actorlog.store import EventStore, StoreClosedError
from actorlog.store.read_ahead import read_ahead


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "actorlog-read-ahead"]


class Pages:
    """Pages 0..count-1, counting how many have been fetched."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at
        self.fetched = 0
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[int]:
        try:
            for page in range(self.count):
                if page == self.fail_at:
                    raise ConnectionError(f"lost at page {page}")
                self.fetched += 1
                yield page
        finally:
            self.closed.set()


def test_every_page_once_in_order() -> None:
    assert list(read_ahead(iter(Pages(50)))) == list(range(50))
    assert list(read_ahead(iter(Pages(0)))) == []
    wait_until(lambda: not _workers(), what="the worker gone")


@pytest.mark.parametrize("ahead", [1, 3])
def test_never_more_pages_ahead_than_allowed(ahead: int) -> None:
    pages = Pages(10)
    reading = read_ahead(iter(pages), ahead=ahead)
    for page in range(10 - ahead):
        assert next(reading) == page
        wait_until(lambda: pages.fetched == page + 1 + ahead, what="the next pages fetched while this one is used")
        assert pages.fetched == page + 1 + ahead  # and not a page more
    assert list(reading) == list(range(10 - ahead, 10))


def test_an_error_while_fetching_reaches_the_caller_after_the_pages_before_it() -> None:
    got = []
    with pytest.raises(ConnectionError, match="lost at page 3"):
        for page in read_ahead(iter(Pages(10, fail_at=3))):
            got.append(page)
    assert got == [0, 1, 2]
    assert not _workers()


def test_stopping_early_stops_and_waits_for_the_worker() -> None:
    pages = Pages(1000)
    reading = read_ahead(iter(pages))
    assert next(reading) == 0
    reading.close()
    assert pages.closed.is_set() and not _workers()
    assert pages.fetched <= 1 + 4  # the default: four ahead at most


def test_a_postgres_read_left_early_leaves_no_thread(pg_log: str) -> None:
    with EventStore(pg_log, chunk_size=10) as store:
        store.append_many([GaugeSet(name="q", value=float(i)) for i in range(95)], actor="worker")
        store.flush()
        assert [r.event.value for r in store.events()] == [float(i) for i in range(95)]
        for record in store.events():
            if record.seq == 15:
                assert _workers()  # a read of more than one chunk reads ahead
                break
        assert not _workers()
        for record in store.events(from_seq=90):
            assert not _workers()  # one chunk: read by the caller, no thread
        assert sum(len(chunk) for chunk in store.fold_chunks()) == 95
    assert not _workers()


def test_a_postgres_read_of_a_store_closed_meanwhile_ends_with_closed_not_a_new_connection(pg_log: str) -> None:
    store = EventStore(pg_log, chunk_size=10)
    store.append_many([GaugeSet(name="q", value=float(i)) for i in range(95)], actor="worker")
    store.flush()
    reading = store.events()
    assert next(reading).seq == 1
    store.close()
    with pytest.raises(StoreClosedError, match="was closed"):
        for _ in reading:
            pass
    assert not _workers()
