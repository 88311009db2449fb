"""A group commit's COPY on PostgreSQL (`OpenCopy`): what goes wrong in it is psycopg's own
error, commits nothing and leaves the connection usable; the ordering lock is still required."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from actorlog.events import GaugeSet
from actorlog.store import EventStore
from actorlog.store.location import parse_location
from actorlog.store.postgres_backend import connect
from actorlog.store.postgres_copy import OpenCopy
from actorlog.store.postgres_schema import ORDER_LOCK_SQL, notify_channel

COLUMNS = "seq, ts, run, actor, kind, version, correlation, payload, hash"


def _log_with_one_row(url: str) -> None:
    with EventStore(url) as store:
        store.append(GaugeSet(name="q", value=1.0), actor="worker")
        store.flush()


def _open(url: str) -> tuple[Any, OpenCopy]:
    location = parse_location(url)
    conn = connect(location, purpose="test")
    lock = "BEGIN ISOLATION LEVEL READ COMMITTED; " + ORDER_LOCK_SQL.replace("%s", f"'{location.schema}'") + "; "
    return conn, OpenCopy(conn, COLUMNS, notify_channel(location.schema), before=lock)


def _rows(url: str) -> int:
    with EventStore.open_readonly(url) as store:
        return store.count()


def _line(seq: int, payload: str = '{"name":"q","value":2.0,"tags":{}}') -> bytes:
    return f"{seq}\t1.0\trun\tworker\tgauge.set\t1\t\\N\t{payload}\t{'0' * 64}\n".encode()


def _nothing_committed(conn: Any, url: str) -> None:
    """After a refused COPY: the transaction rolls back, the connection still works, the log
    still holds its one row."""
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    conn.close()
    assert _rows(url) == 1


@pytest.mark.parametrize("data, error, match", [
    (_line(2) + _line(1), psycopg.errors.UniqueViolation, "duplicate key value"),
    (b"2\tnot a time\trun\tworker\tgauge.set\t1\t\\N\t{}\t" + b"0" * 64 + b"\n",
     psycopg.errors.InvalidTextRepresentation, "not a time"),
], ids=["a duplicate seq", "bad copy data"])
def test_refused_copy_data_is_psycopgs_own_error_and_commits_nothing(
    pg_log: str, data: bytes, error: type[Exception], match: str
) -> None:
    _log_with_one_row(pg_log)
    conn, copy = _open(pg_log)
    copy.write(data)
    with pytest.raises(error, match=match):
        copy.finish()
    _nothing_committed(conn, pg_log)


def test_an_abandoned_copy_commits_nothing(pg_log: str) -> None:
    _log_with_one_row(pg_log)
    conn, copy = _open(pg_log)
    copy.write(_line(2))
    copy.abort()
    _nothing_committed(conn, pg_log)


def test_a_copy_without_the_ordering_lock_is_refused(pg_log: str) -> None:
    _log_with_one_row(pg_log)
    location = parse_location(pg_log)
    conn = connect(location, purpose="test")
    copy = OpenCopy(conn, COLUMNS, notify_channel(location.schema), before="BEGIN; ")
    copy.write(_line(2))
    # the guard is a statement trigger: the server runs it once the COPY has started taking data
    with pytest.raises(psycopg.errors.RaiseException, match="without the log's ordering lock is refused"):
        copy.finish()
    _nothing_committed(conn, pg_log)


def test_a_committed_copy_is_announced_with_its_last_seq(pg_log: str) -> None:
    _log_with_one_row(pg_log)
    location = parse_location(pg_log)
    listener = connect(location, purpose="listener")
    listener.execute(f"LISTEN {notify_channel(location.schema)}")
    conn, copy = _open(pg_log)
    assert [r.get_value(0, 0) for r in copy.results_before if r.ntuples] == [b""]  # the lock's one row
    copy.write(_line(2))
    copy.finish()
    notice = next(listener.notifies(timeout=10))
    assert notice.payload == "2"
    conn.close()
    listener.close()
    with EventStore.open_readonly(pg_log) as store:
        assert store.count() == 2
        assert not store.verify().ok  # a hash no chain gave: verify names it, the writer never writes it


def test_text_reaches_the_server_as_hashed_whatever_the_default_client_encoding(
    pg_log: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer encodes COPY text itself (UTF-8): a LATIN1 default (PGCLIENTENCODING, a role's
    or a database's setting) must not make the server read those bytes as LATIN1."""
    monkeypatch.setenv("PGCLIENTENCODING", "LATIN1")
    with EventStore(pg_log) as store:
        store.append(GaugeSet(name="ü ✓ 😀", value=1.0, tags={"é": "ß"}), actor="café", correlation="naïve ✓")
        store.flush()
        (record,) = store.events()
        assert (record.actor, record.correlation, record.event.name, record.event.tags) == (
            "café", "naïve ✓", "ü ✓ 😀", {"é": "ß"})
        assert store.verify().ok
