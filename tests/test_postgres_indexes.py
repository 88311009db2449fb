"""Lookups by run, actor and kind on PostgreSQL, whose indexes on those columns are bloom BRIN
indexes (PostgreSQL 14 and later; `actorlog.store.postgres_schema.BLOOM_COLUMNS`): every
matching row is found, in block ranges not summarised yet and after the server summarised
them; and the COPY text of a group commit keeps times JSON has no text for."""

from __future__ import annotations

import math

import pytest

from actorlog.events import CounterIncremented, GaugeSet, HistogramObserved
from actorlog.store import EventStore
from actorlog.store.postgres_schema import BLOOM_COLUMNS, BLOOM_SINCE, SUMMARISED_EVERY
from pg_helpers import admin
from replay_helpers import run_cli

ROWS_PER_RUN = 6_000
"""Enough rows for several block ranges of the bloom indexes (16 pages each)."""


def _two_runs(url: str) -> list[str]:
    """A log of two runs, each mostly histogram points with a few gauges by another actor
    and counters in one stretch (a value clustered in a few ranges, another spread over all)."""
    runs = []
    for _ in range(2):
        with EventStore(url, max_batch_rows=2000) as store:
            runs.append(store.run)
            for i in range(ROWS_PER_RUN):
                if i % 997 == 0:
                    store.append(GaugeSet(name="depth", value=float(i)), actor="worker")
                elif 2_000 <= i < 2_050:
                    store.append(CounterIncremented(name="retries"), actor="retrier")
                else:
                    store.append(HistogramObserved(name="w", value=float(i)), actor="metrics")
            store.flush()
    return runs


def _counted(url: str, *args: str) -> int:
    result = run_cli("query", url, "--count", *args)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


def _expected(url: str) -> dict[tuple[str, str], int]:
    """Rows per (column, value), counted by reading every row, with no index in the way."""
    counts: dict[tuple[str, str], int] = {}
    with admin(url) as conn:
        for column in BLOOM_COLUMNS:
            for value, count in conn.execute(f"SELECT {column}::text, count(*) FROM events GROUP BY 1"):
                counts[(column, value)] = count
    return counts


def _through_the_indexes(url: str, column: str, value: str) -> int:
    """Rows with ``value`` counted the way the server reads them when it must use an index."""
    with admin(url) as conn:
        conn.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN SELECT count(*) FROM events WHERE {column} = %s",
                                                        (value,)))
        assert f"events_by_{column}" in plan, plan
        return int(conn.execute(f"SELECT count(*) FROM events WHERE {column} = %s", (value,)).fetchone()[0])


def test_a_new_log_indexes_run_actor_and_kind_with_bloom_summaries(pg_log: str) -> None:
    EventStore(pg_log).close()
    with admin(pg_log) as conn:
        version = conn.info.server_version
        definitions = dict(conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = "
                                        "current_schema() AND tablename = 'events'").fetchall())
        options = conn.execute("SELECT reloptions FROM pg_class WHERE oid = 'events'::regclass").fetchone()[0]
    if version >= BLOOM_SINCE:  # autovacuum summarises the new ranges every SUMMARISED_EVERY rows
        assert sorted(options) == ["autovacuum_vacuum_insert_scale_factor=0",
                                   f"autovacuum_vacuum_insert_threshold={SUMMARISED_EVERY}"], options
    assert not any("autosummarize" in d for d in definitions.values()), definitions  # floods a server-wide queue
    for column in BLOOM_COLUMNS:
        definition = definitions[f"events_by_{column}"]
        if version >= BLOOM_SINCE:
            assert "USING brin" in definition and "text_bloom_ops" in definition, definition
        else:
            assert "USING btree" in definition, definition


@pytest.mark.slow
def test_lookups_by_run_actor_and_kind_find_every_row_before_and_after_the_ranges_are_summarised(pg_log: str) -> None:
    runs = _two_runs(pg_log)
    expected = _expected(pg_log)
    assert expected[("kind", "counter.incremented")] == 100 and expected[("actor", "worker")] == 14
    for summarised in (False, True):
        if summarised:
            with admin(pg_log) as conn:
                conn.execute("VACUUM events")  # summarises the BRIN indexes' ranges (all but a last, partial one)
        for (column, value), count in expected.items():
            assert _through_the_indexes(pg_log, column, value) == count, (column, value, summarised)
        assert _counted(pg_log, "--kind", "counter.incremented") == 100
        assert _counted(pg_log, "--actor", "worker") == 14
        assert _counted(pg_log, "--run", runs[1], "--kind", "gauge.set") == 7
        assert _through_the_indexes(pg_log, "kind", "no.such.kind") == 0


def test_a_time_json_has_no_text_for_is_committed_and_read_back(pg_log: str) -> None:
    # a group commit's COPY line takes the time from the hashed content (JSON), which holds null
    # for a time that is not finite; such a row must still be written with its own time
    with EventStore(pg_log) as store:
        store.append(GaugeSet(name="q", value=1.0), actor="worker", ts=math.inf)
        store.append(GaugeSet(name="q", value=2.0), actor="worker", ts=1.25)
        assert store.flush() == 2
    with admin(pg_log) as conn:
        assert [row[0] for row in conn.execute("SELECT ts FROM events ORDER BY seq")] == [math.inf, 1.25]
    result = run_cli("verify", pg_log)
    assert result.returncode == 0, result.stdout + result.stderr
