"""PostgreSQL faults and guards: writes that bypass the ordering lock, tampering a superuser
could do, a server default of REPEATABLE READ, connections killed mid-commit, a writer
frozen while it holds the lock, a server stopped mid-run, passwords, a missing psycopg."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from actor_helpers import wait_until
from actorlog.events import CounterIncremented, GaugeSet
from actorlog.store import EventStore, StoreError, StoreWriteError
from backend_cases import cli
from log_helpers import ACTORLOG_CLI, HELPERS
from pg_helpers import PostgresServer, admin, new_schema

pytestmark = pytest.mark.slow

ROW = ("INSERT INTO events (seq, ts, run, actor, kind, version, correlation, payload, hash) "
       "VALUES (2, 1.0, 'r', 'a', 'gauge.set', 1, NULL, '{}', 'x')")


def a_log(url: str, events: int = 1) -> None:
    with EventStore(url) as store:
        store.append_many([GaugeSet(name="q", value=float(i)) for i in range(events)], actor="worker")


def test_an_insert_without_the_ordering_lock_is_refused(pg_log: str) -> None:
    a_log(pg_log)
    with admin(pg_log) as conn:
        with pytest.raises(Exception, match="without the log's ordering lock"):
            conn.execute(ROW)
        with pytest.raises(Exception, match="without the log's ordering lock"):
            with conn.cursor() as cursor, cursor.copy("COPY events FROM STDIN") as copy:
                copy.write_row((2, 1.0, "r", "a", "gauge.set", 1, None, "{}", "x"))
        with pytest.raises(Exception, match="append-only"):
            conn.execute("TRUNCATE events")
    with EventStore.open_readonly(pg_log) as store:
        assert store.count() == 1 and store.verify().ok


def test_verify_notices_a_disabled_guard(pg_log: str) -> None:
    a_log(pg_log, 3)
    with admin(pg_log) as conn:
        conn.execute("ALTER TABLE events DISABLE TRIGGER events_refuse_delete")
    with EventStore.open_readonly(pg_log) as store:
        report = store.verify()
    assert not report.ok and any("events_refuse_delete is disabled" in p for p in report.problems), report.problems


def test_verify_notices_a_guard_replaced_by_one_that_fires_after(pg_log: str) -> None:
    a_log(pg_log, 2)
    with admin(pg_log) as conn:
        conn.execute("DROP TRIGGER events_refuse_update ON events")
        conn.execute("CREATE TRIGGER events_refuse_update AFTER INSERT ON events FOR EACH STATEMENT "
                     "EXECUTE FUNCTION actorlog_refuse_change()")
    with EventStore.open_readonly(pg_log) as store:
        report = store.verify()
    assert not report.ok and any("events_refuse_update was replaced" in p for p in report.problems), report.problems


def test_verify_notices_a_payload_column_made_jsonb(pg_log: str) -> None:
    with EventStore(pg_log) as store:
        store.append(GaugeSet(name="q", value=1.0, tags={"b": "1", "a": "2"}), actor="worker")
    with admin(pg_log) as conn:
        for view in ("lifecycle", "failures", "retries", "measurements"):
            conn.execute(f"DROP VIEW {view}")
        conn.execute("ALTER TABLE events ALTER COLUMN payload TYPE jsonb USING payload::jsonb")
    with EventStore.open_readonly(pg_log) as store:
        report = store.verify()
    assert not report.ok
    assert any("events.payload is jsonb" in p for p in report.problems), report.problems
    assert report.first_bad_seq == 1


def test_a_repeatable_read_server_default_keeps_seq_gap_free(postgres_server: Any, tmp_path: Path) -> None:
    database = "rr_" + new_schema()
    with admin(postgres_server.url()) as conn:
        conn.execute(f"CREATE DATABASE {database}")
        conn.execute(f"ALTER DATABASE {database} SET default_transaction_isolation = 'repeatable read'")
    url = postgres_server.url(new_schema()).replace("/postgres?", f"/{database}?")
    with EventStore(url):
        pass
    ready = tmp_path / "ready"
    ready.mkdir()
    workers = [subprocess.Popen([sys.executable, str(HELPERS / "append_worker.py"), url, str(w), "800", str(ready),
                                 "3"], stderr=subprocess.PIPE, text=True) for w in range(3)]
    assert [w.wait(timeout=300) for w in workers] == [0, 0, 0], [w.stderr.read() for w in workers]  # type: ignore[union-attr]
    with EventStore.open_readonly(url) as store:
        assert [r.seq for r in store.events()] == list(range(1, 2401)) and store.verify().ok


def writer_pids(url: str, run: str) -> list[int]:
    with admin(url) as conn:
        return [int(row[0]) for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (f"actorlog writer {run}",))]


def test_connections_killed_mid_commit_lose_and_repeat_nothing(pg_log: str) -> None:
    total, kills = 20_000, [0]
    with EventStore(pg_log, run="killed-conn") as store:
        done = threading.Event()

        def terminate() -> None:
            # one kill per group commit at most: each lands in a transaction (lock, COPY or COMMIT) or between
            with admin(pg_log) as conn:
                while not done.is_set() and kills[0] < 8:
                    seen = store.statistics()["transactions"]
                    for pid in writer_pids(pg_log, "killed-conn"):
                        if conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]:
                            kills[0] += 1
                    while not done.is_set() and store.statistics()["transactions"] == seen:
                        done.wait(0.001)

        killer = threading.Thread(target=terminate)
        killer.start()
        try:
            for start in range(0, total, 100):
                store.append_many([CounterIncremented(name="n", value=float(i)) for i in range(start, start + 100)],
                                  actor="worker")
            store.flush()
        finally:
            done.set()
            killer.join()
    assert kills[0] >= 1
    with EventStore.open_readonly(pg_log) as store:
        values = [r.event.value for r in store.events(kinds="counter.incremented")]
        assert values == [float(i) for i in range(total)]  # each exactly once, in order
        assert store.last_seq() == total and store.verify().ok


@pytest.mark.parametrize("frozen", ["idle", "copy"], ids=["between-statements", "mid-copy"])
def test_a_writer_frozen_holding_the_lock_stalls_no_one_past_the_hold_timeout(
    postgres_server: Any, frozen: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Between two statements the server's idle-in-transaction timeout ends the frozen session;
    with its COPY open the server waits for data, where no timeout of its own fires, so the
    next writer to wait past the hold timeout ends it."""
    url = postgres_server.url(new_schema(), hold_timeout="1")
    a_log(url)
    holder = subprocess.Popen([sys.executable, str(HELPERS / "pg_lock_holder.py"), url, frozen],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        os.kill(holder.pid, signal.SIGSTOP)
        with EventStore(url) as store:  # waits for the lock until the server ends the frozen session
            store.append(GaugeSet(name="after", value=1.0), actor="worker")
            assert store.flush(timeout=60) == 2
        with admin(url) as conn:
            assert not conn.execute("SELECT 1 FROM pg_stat_activity WHERE application_name = 'actorlog writer frozen'"
                                    ).fetchall()
        if frozen == "copy":
            assert "which held the ordering lock for over 1 s while the server waited for its COPY data" in caplog.text
    finally:
        os.kill(holder.pid, signal.SIGCONT)
        holder.kill()
        holder.wait(timeout=30)
    with EventStore.open_readonly(url) as store:
        assert store.count() == 2 and store.verify().ok


def test_a_server_stopped_mid_run_escalates_cleanly_naming_it() -> None:
    server = PostgresServer()
    try:
        url = server.url(new_schema()).replace("user=postgres", "user=postgres&password=pw-Secret-123")
        demo = subprocess.Popen([str(ACTORLOG_CLI), "demo", "--db", url, "--tasks", "200"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

        def some_rows() -> bool:
            try:
                with EventStore.open_readonly(url) as store:
                    return store.count() >= 40
            except StoreError:
                return False

        wait_until(some_rows, timeout=120, what="the demo wrote some events")
        server.stop("immediate")
        _, stderr = demo.communicate(timeout=300)
    finally:
        server.destroy()
    lines = stderr.strip().splitlines()
    assert demo.returncode == 1, stderr[-3000:]
    assert "Traceback" not in stderr and "pw-Secret-123" not in stderr
    assert lines[-1].startswith("actorlog demo: the system stopped because its event log failed: "), lines[-1]
    assert f"port={server.port}" in lines[-1] and "Check that the PostgreSQL server is running" in lines[-1]


def test_passwords_never_reach_errors_reprs_or_the_log(postgres_server: Any) -> None:
    secret = "pw-Secret-123"
    url = postgres_server.url(new_schema()).replace("user=postgres", f"user=postgres&password={secret}")
    from actorlog.actors import ActorSystem

    with ActorSystem(url) as system:
        assert secret not in repr(system.store) and secret not in system.store.location.display
        system.metrics.increment("x")
        system.flush()
    with EventStore.open_readonly(url) as store:
        assert all(secret not in record.event.__repr__() for record in store.events(lenient=True))
        assert not store.query("SELECT seq FROM events WHERE payload::text LIKE ?", (f"%{secret}%",))
    wrong = f"postgresql://postgres:{secret}@127.0.0.1:1/postgres?schema=x"
    with pytest.raises(StoreError) as refused:
        EventStore.open_readonly(wrong)
    assert secret not in str(refused.value) and "127.0.0.1" in str(refused.value)
    result = cli("stats", wrong)
    assert result.returncode == 2 and secret not in result.stderr and len(result.stderr.splitlines()) == 1


def test_without_psycopg_a_url_is_one_line_saying_what_to_install(pg_log: str) -> None:
    program = ("import sys; sys.modules['psycopg'] = None; sys.argv = ['actorlog', 'stats', sys.argv[1]]; "
               "from actorlog.replay.main import main; main()")
    result = subprocess.run([sys.executable, "-c", program, pg_log], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("actorlog: error: a postgresql:// event log needs psycopg, which is not "
                                     "installed: pip install 'actorlog[postgres]'")


def test_hosts_creating_one_log_at_once_all_get_it(postgres_server: Any, tmp_path: Path) -> None:
    url = postgres_server.url(new_schema())
    ready = tmp_path / "ready"
    ready.mkdir()
    workers = [subprocess.Popen([sys.executable, str(HELPERS / "append_worker.py"), url, str(w), "50", str(ready),
                                 "5"], stderr=subprocess.PIPE, text=True) for w in range(5)]
    assert [w.wait(timeout=300) for w in workers] == [0] * 5, [w.stderr.read() for w in workers]  # type: ignore[union-attr]
    with EventStore.open_readonly(url) as store:
        assert store.count() == 250 and store.verify().ok
        assert store.query("SELECT count(*) FROM meta WHERE key = 'format'") == [(1,)]


def test_one_database_holds_several_logs_by_schema(postgres_server: Any) -> None:
    first, second = postgres_server.url(new_schema()), postgres_server.url(new_schema())
    a_log(first, 3)
    a_log(second, 5)
    with EventStore.open_readonly(first) as one, EventStore.open_readonly(second) as two:
        assert (one.count(), two.count()) == (3, 5) and one.verify().ok and two.verify().ok


def test_a_follower_whose_connection_is_killed_skips_and_repeats_nothing(pg_log: str) -> None:
    a_log(pg_log)
    follower = subprocess.Popen([str(ACTORLOG_CLI), "tail", pg_log, "--follow", "-n", "1", "--format", "jsonl"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        seqs = [int(follower.stdout.readline().split('"seq":')[1].split(",")[0])]
        with EventStore(pg_log) as store, admin(pg_log) as conn:
            for round_ in range(4):
                wait_until(lambda: conn.execute("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE "
                                                "'actorlog follower%'").fetchall(), what="the follower listens")
                store.append_many([GaugeSet(name="g", value=float(i)) for i in range(25)], actor="worker")
                store.flush()
                seqs += [int(follower.stdout.readline().split('"seq":')[1].split(",")[0]) for _ in range(25)]
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE "
                             "'actorlog %' AND pid <> pg_backend_pid() AND application_name NOT LIKE 'actorlog writer%'")
        assert seqs == list(range(1, 102))
    finally:
        follower.terminate()
        follower.wait(timeout=30)


@pytest.mark.parametrize("url, problem", [
    ("postgresql://u@localhost:99999/db", "not a valid PostgreSQL URL"),
    ("postgresql://u@localhost/db?schema=bad-name", "schema must be a plain identifier"),
    ("postgresql://u@localhost/db?hold_timeout=soon", "hold_timeout must be a number of seconds"),
])
def test_a_malformed_url_is_one_line_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        EventStore.open_readonly(url)
    result = cli("stats", url)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and problem in result.stderr, result.stderr


def test_sqlite_only_options_are_refused_for_a_url(pg_log: str) -> None:
    with pytest.raises(ValueError, match="max_log_bytes caps an SQLite file"):
        EventStore(pg_log, max_log_bytes=1 << 20)
    with pytest.raises(ValueError, match="made into a Path"):
        EventStore(Path(pg_log))


def test_a_writer_role_with_insert_and_select_only_appends_but_cannot_disable_a_guard(pg_log: str) -> None:
    a_log(pg_log)
    role = "writer_" + new_schema()
    with admin(pg_log) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
        conn.execute(f'GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA "{schema}" TO {role}')
        conn.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{schema}" TO {role}')
    as_writer = pg_log.replace("user=postgres", f"user={role}")
    with EventStore(as_writer) as store:
        store.append(GaugeSet(name="by the writer role", value=1.0), actor="worker")
        store.save_snapshot("p", 1, store.flush(), "{}")
    with admin(as_writer) as conn:
        for sql in ("ALTER TABLE events DISABLE TRIGGER events_refuse_update", "DROP TRIGGER events_refuse_delete "
                    "ON events", "UPDATE events SET actor = 'x'"):
            with pytest.raises(Exception, match="owner|append-only|permission"):
                conn.execute(sql)
    with EventStore.open_readonly(pg_log) as store:
        assert store.count() == 3 and store.verify().ok


def test_a_writer_brings_an_older_logs_views_up_to_date_and_leaves_events_alone(pg_log: str) -> None:
    a_log(pg_log, 4)
    with admin(pg_log) as conn:
        conn.execute("DROP VIEW failures")
        conn.execute("UPDATE meta SET value = 'an older version' WHERE key = 'views'")
    with EventStore.open_readonly(pg_log) as store:  # a reader changes nothing
        assert not store.has_table("failures")
    with EventStore(pg_log) as store:
        assert store.query("SELECT count(*) FROM failures") == [(0,)] and store.count() == 4
    with EventStore.open_readonly(pg_log) as store:
        assert store.verify().ok


COPY_DONE = b"c\x00\x00\x00\x04"
"""The protocol's CopyDone message: after ``COPY ...; SELECT pg_notify(...); COMMIT``, it commits
(text COPY data cannot hold a NUL byte, so it is never taken for data)."""


def _commits(data: bytes) -> bool:
    """Whether ``data`` from the writer is what commits: the end of a group commit's COPY,
    or a COMMIT sent as a query of its own (a snapshot's transaction)."""
    return COPY_DONE in data or (b"pg_notify" in data and b"COMMIT" in data and b"COPY events" not in data)


class CutAfterCommit:
    """A TCP proxy to the server that, when armed, lets one COMMIT through and cuts the
    connection before its answer comes back: the commit landed, but the writer cannot know."""

    def __init__(self, port: int) -> None:
        import socket

        self.port_to = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed = threading.Event()
        self.cut = threading.Event()
        self.checks_to_cut = 0  # also cut this many of the writer's checks of whether a commit landed
        self.check_cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.port_to))
            committing = threading.Event()
            threading.Thread(target=self._pump, args=(client, server, committing, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, committing, False), daemon=True).start()

    def _pump(self, source: Any, sink: Any, committing: threading.Event, upstream: bool) -> None:
        try:
            while data := source.recv(65536):
                if upstream and self.checks_to_cut and b"SELECT hash FROM events WHERE seq" in data:
                    self.checks_to_cut -= 1
                    self.check_cut.set()
                    break  # the check never reaches the server: the writer loses this connection too
                if upstream and self.armed.is_set() and _commits(data):
                    self.armed.clear()
                    committing.set()
                elif not upstream and committing.is_set():
                    self.cut.set()  # the server answered the COMMIT: it is done; the writer never hears so
                    break
                sink.sendall(data)
        except OSError:
            pass
        import socket

        for end in (source, sink):  # shutdown first: it wakes the other pump's recv and sends the FIN
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def close(self) -> None:
        self.listener.close()


def through_a_cutting_proxy(postgres_server: Any) -> tuple[str, CutAfterCommit, str]:
    """A new log's URL over TCP, a `CutAfterCommit` proxy to its server, and the URL through the proxy."""
    url = postgres_server.url(new_schema(), tcp=True)
    port = int(url.split("127.0.0.1:")[1].split("/")[0])
    proxy = CutAfterCommit(port)
    return url, proxy, url.replace(f"127.0.0.1:{port}", f"127.0.0.1:{proxy.port}") + "&sslmode=disable"


def test_a_commit_that_landed_while_its_answer_was_lost_is_not_written_twice(
    postgres_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url, proxy, through = through_a_cutting_proxy(postgres_server)
    try:
        with EventStore(through, run="cut") as store:
            store.append_many([CounterIncremented(name="n", value=float(i)) for i in range(100)], actor="worker")
            store.flush()
            proxy.armed.set()
            store.append_many([CounterIncremented(name="n", value=float(i)) for i in range(100, 200)],
                              actor="worker")
            assert store.flush() == 200
            assert proxy.cut.is_set()
            store.append_many([CounterIncremented(name="n", value=float(i)) for i in range(200, 300)],
                              actor="worker")
    finally:
        proxy.close()
    assert "checking whether the commit landed" in caplog.text
    with EventStore.open_readonly(url) as store:
        assert [r.event.value for r in store.events()] == [float(i) for i in range(300)]
        assert store.verify().ok


def test_a_connection_lost_again_while_checking_whether_a_commit_landed_is_checked_again(
    postgres_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by the kill test under load: a second kill, during the check after the first, failed the log."""
    url, proxy, through = through_a_cutting_proxy(postgres_server)
    try:
        with EventStore(through, run="cut-twice") as store:
            store.append_many([CounterIncremented(name="n", value=float(i)) for i in range(100)], actor="worker")
            store.flush()
            proxy.checks_to_cut = 2
            proxy.armed.set()
            store.append_many([CounterIncremented(name="n", value=float(i)) for i in range(100, 200)],
                              actor="worker")
            assert store.flush() == 200
            assert proxy.cut.is_set() and proxy.check_cut.is_set() and proxy.checks_to_cut == 0
    finally:
        proxy.close()
    assert "checking again" in caplog.text
    with EventStore.open_readonly(url) as store:
        assert [r.event.value for r in store.events()] == [float(i) for i in range(200)]
        assert store.verify().ok


def test_the_views_time_column_matches_sqlites_to_the_digit(pg_log: str) -> None:
    """The PostgreSQL views' ``time`` is the SQLite views' ``time`` for any ts, half-milliseconds included."""
    import random
    import sqlite3

    from actorlog.store.postgres_schema import _time
    from actorlog.store.schema import iso_time

    chooser = random.Random(7)
    values = [chooser.uniform(0, 4e9) for _ in range(3000)]
    values += [round(v, 3) + 0.0005 for v in values[:1000]] + [round(v, 3) + 0.00049 for v in values[:500]]
    values += [0.0, 1.0, 1796147728.8614926, 1796147729.482493, 1e9 + 0.9995]
    sqlite = sqlite3.connect(":memory:")
    expected = [sqlite.execute(f"SELECT {iso_time('?')}", (v,)).fetchone()[0] for v in values]
    with admin(pg_log) as conn:
        got = [row[0] for row in conn.execute(
            f"SELECT {_time('v')} FROM unnest(%s::float8[]) WITH ORDINALITY AS t(v, n) ORDER BY n", (values,))]
    assert [(v, e, g) for v, e, g in zip(values, expected, got) if e != g] == []
