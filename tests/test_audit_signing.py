"""An audit trail that holds against someone who can write the file (issue 14).

Each attack is made the way an editor who knows the format would: triggers dropped,
rows changed, the chain recomputed with the documented formula, triggers put back.
A plain chain check cannot see that; signed checkpoints, a witness outside the log or
an expected ``SEQ:HASH`` do.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from actorlog.events import GaugeSet, PluginStarted
from actorlog.replay import rebuild, take_snapshot
from actorlog.store import EventStore
from actorlog.store.chain import GENESIS, row_hash
from actorlog.store.signing import SigningKeyError, generate_key

N = 120
EVERY = 25


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "keys").mkdir()
    private, public, _ = generate_key(tmp_path / "keys" / "log.key")
    return private, public


def write_signed(path: Path, key: Path, *, n: int = N, witness: Path | None = None, start: int = 0) -> None:
    with EventStore(path, signing_key=key, checkpoint_every=EVERY, witness=witness) as store:
        for i in range(start, start + n):
            store.append(GaugeSet(name="g", value=float(i)), actor="worker")
            if i % 10 == 9:
                store.flush()  # several commits, so checkpoints fall between them


def rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT seq, ts, run, actor, kind, version, correlation, payload, hash FROM events "
                            "ORDER BY seq").fetchall()
    finally:
        conn.close()


def rewrite(path: Path, edit: str, *params: object, renumber: bool = False) -> None:
    """What an editor who knows the format does: drop the triggers, edit, recompute every
    hash with the documented formula, and put the triggers back (``renumber``: after
    closing the seq gaps left by deleted rows)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        triggers = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'").fetchall()
        conn.execute("BEGIN")
        for (sql,) in triggers:
            conn.execute(f"DROP TRIGGER {sql.split()[2]}")
        conn.execute(edit, params)
        if renumber:
            kept = conn.execute("SELECT * FROM events ORDER BY seq").fetchall()
            conn.execute("DELETE FROM events")
            conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             [(number, *row[1:]) for number, row in enumerate(kept, start=1)])
        previous = GENESIS
        for seq, ts, run, actor, kind, version, correlation, payload, _ in conn.execute(
            "SELECT * FROM events ORDER BY seq"
        ).fetchall():
            digest = row_hash(previous, seq, ts, run, actor, kind, version, correlation, payload)
            conn.execute("UPDATE events SET hash = ? WHERE seq = ?", (digest, seq))
            previous = digest
        for (sql,) in triggers:
            conn.execute(sql)
        conn.execute("COMMIT")
    finally:
        conn.close()


def verify(path: Path, **options: object):  # type: ignore[no-untyped-def]
    with EventStore.open_readonly(path) as store:
        return store.verify(**options)  # type: ignore[arg-type]


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "actorlog"), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


# -- keys ---------------------------------------------------------------------------------------------


def test_keygen_writes_a_private_key_only_its_owner_reads_and_the_public_key_beside_it(tmp_path: Path) -> None:
    result = cli("keygen", tmp_path / "k")
    assert result.returncode == 0, result.stderr
    private, public = tmp_path / "k", tmp_path / "k.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    secret = private.read_text()
    assert "PRIVATE KEY" in secret and secret not in result.stdout + result.stderr
    again = cli("keygen", tmp_path / "k")
    assert again.returncode == 2 and "never overwrites" in again.stderr and len(again.stderr.splitlines()) == 1


def test_a_key_others_can_read_a_missing_key_and_a_foreign_file_are_refused_clearly(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, _ = keys
    private.chmod(0o644)
    with pytest.raises(SigningKeyError, match="readable by others.*chmod 600"):
        EventStore(tmp_path / "a.db", signing_key=private)
    with pytest.raises(SigningKeyError, match="cannot be read.*actorlog keygen"):
        EventStore(tmp_path / "a.db", signing_key=tmp_path / "nope.key")
    junk = tmp_path / "junk.key"
    junk.write_text("not a key")
    junk.chmod(0o600)
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM private key"):
        EventStore(tmp_path / "a.db", signing_key=junk)
    assert not (tmp_path / "a.db").exists() or rows(tmp_path / "a.db") == []


def test_the_private_key_never_enters_the_log_or_a_repr(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, _ = keys
    path = tmp_path / "s.db"
    with EventStore(path, signing_key=private, checkpoint_every=5) as store:
        store.append_many([GaugeSet(name="g", value=1.0)] * 12)
        shown = repr(store) + repr(store._writer)
    secret_lines = [line for line in private.read_text().splitlines() if "-----" not in line]
    data = path.read_bytes() + shown.encode()
    assert not any(line.encode() in data for line in secret_lines)


def test_the_environment_variable_names_the_key(tmp_path: Path, keys: tuple[Path, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    private, public = keys
    monkeypatch.setenv("ACTORLOG_SIGNING_KEY", str(private))
    path = tmp_path / "env.db"
    with EventStore(path) as store:
        store.append(GaugeSet(name="g", value=1.0))
    report = verify(path, public_key=public)
    assert report.ok and report.checkpoints == 1 and report.signed_up_to == 2


# -- intact logs ----------------------------------------------------------------------------------------


def test_a_signed_log_verifies_and_the_rows_after_the_last_checkpoint_are_reported_uncovered(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    path = tmp_path / "s.db"
    write_signed(path, private)
    report = verify(path, public_key=public)
    assert report.ok, report.problems
    assert report.checkpoints >= N // EVERY and report.signed_up_to == report.last_seq  # closed cleanly: all signed
    with EventStore(path) as store:  # a later writer without the key
        store.append(PluginStarted(plugin="x"), actor="supervisor")
    report = verify(path, public_key=public)
    assert report.ok
    assert any("1 row(s)" in note and "not yet covered" in note for note in report.notes)


def test_without_a_public_key_the_report_says_what_it_cannot_see(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, _ = keys
    path = tmp_path / "s.db"
    write_signed(path, private)
    report = verify(path)
    assert report.ok
    assert any("recomputes the hash chain is not detected" in note for note in report.notes)


# -- attacks ----------------------------------------------------------------------------------------------


def test_a_payload_edited_with_the_chain_recomputed_is_found_by_the_signature(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    path = tmp_path / "s.db"
    write_signed(path, private)
    victim = 40
    rewrite(path, "UPDATE events SET payload = replace(payload, '\"value\":', '\"value\":1000') WHERE seq = ?", victim)
    assert verify(path).ok  # the plain chain is fooled, as the issue says
    report = verify(path, public_key=public)
    assert not report.ok
    (finding, *_) = report.findings
    assert "were rewritten" in finding.problem and finding.seq is not None and finding.seq <= victim
    result = cli("verify", path, "--public-key", public, "--json")
    assert result.returncode == 1
    assert any("were rewritten" in f["problem"] for f in json.loads(result.stdout)["findings"])


def test_tail_truncation_and_rollback_are_found_with_a_witness_or_an_expected_hash(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    path, witness = tmp_path / "s.db", tmp_path / "witness"
    write_signed(path, private, witness=witness, n=60)
    older = tmp_path / "older.db"
    shutil.copyfile(path, older)
    write_signed(path, private, witness=witness, n=60, start=60)
    assert verify(path, public_key=public, witness=witness).ok
    last = rows(path)[-1]
    # truncation: the newest rows deleted (the remaining chain is intact)
    truncated = tmp_path / "truncated.db"
    shutil.copyfile(path, truncated)
    rewrite(truncated, "DELETE FROM events WHERE seq > ?", int(last[0]) - 5)  # type: ignore[call-overload]
    assert verify(truncated, public_key=public).ok  # signatures alone: the end looks fine
    report = verify(truncated, public_key=public, witness=witness / "s.db.witness.jsonl")
    assert not report.ok and any("log ends at seq" in f.problem and "truncated" in f.problem for f in report.findings)
    report = verify(truncated, expect=[f"{last[0]}:{last[8]}"])
    assert not report.ok and any(f"holds seq {last[0]}" in f.problem for f in report.findings)
    # rollback: the whole file replaced by an older copy
    shutil.copyfile(older, path)
    report = verify(path, public_key=public, witness=witness)
    assert not report.ok and any("log ends at seq" in f.problem for f in report.findings)
    result = cli("verify", path, "--witness", witness)
    assert result.returncode == 1 and "log ends at seq" in result.stdout


def test_a_forged_checkpoint_signed_with_another_key_and_a_removed_checkpoint_are_found(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    other, _, _ = generate_key(tmp_path / "other.key")
    path = tmp_path / "s.db"
    write_signed(path, private)
    forged = tmp_path / "forged.db"
    shutil.copyfile(path, forged)
    with EventStore(forged, signing_key=other) as store:  # the editor signs with a key of their own
        store.append(GaugeSet(name="g", value=-1.0))
    report = verify(forged, public_key=public)
    assert not report.ok and any("not the trusted key" in f.problem for f in report.findings)
    removed = tmp_path / "removed.db"
    shutil.copyfile(path, removed)
    first_checkpoint = next(r[0] for r in rows(removed) if r[4] == "checkpoint")
    rewrite(removed, "DELETE FROM events WHERE seq = ?", first_checkpoint)
    report = verify(removed, public_key=public)
    assert not report.ok  # the next checkpoint signs a hash the log no longer has


def test_an_edited_snapshot_is_named_by_verify_and_skipped_by_rebuild(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, public = keys
    path = tmp_path / "s.db"
    write_signed(path, private)
    with EventStore(path) as store:
        take_snapshot(store)
    expected = rebuild(path, use_snapshots=False).document()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER snapshots_no_update")
        state = json.loads(conn.execute("SELECT state FROM snapshots").fetchone()[0])
        state["metrics"]["gauges"] = [["g", [], 1_000_013.0]]
        conn.execute("UPDATE snapshots SET state = ?", (json.dumps(state),))
    finally:
        conn.close()
    assert rebuild(path).document() == expected  # the edited snapshot is not used
    report = verify(path, public_key=public)
    assert not report.ok and any("snapshot id 1" in f.problem for f in report.findings)
    assert any("snapshots_no_update" in problem for problem in report.problems)


def test_a_flipped_wal_frame_after_commit_is_reported_with_a_witness(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """Flushed events that vanish because their WAL frames were damaged: SQLite ignores the
    frames after a bad checksum, so the log silently ends earlier. The witness knows better."""
    private, public = keys
    path, witness = tmp_path / "s.db", tmp_path / "w.jsonl"
    with EventStore(path, signing_key=private, checkpoint_every=5, witness=witness) as store:
        store.append_many([GaugeSet(name="g", value=float(i)) for i in range(10)])
        store.flush()
        store.append_many([GaugeSet(name="h", value=float(i)) for i in range(5)])
        store.flush()
        wal = Path(str(path) + "-wal")
        data = bytearray(wal.read_bytes())
        assert len(data) > 32 + 24 + 4096
        # flip a byte in the last frame: that commit's frames fail their checksum
        data[-100] ^= 0xFF
        copy = tmp_path / "copy.db"
        shutil.copyfile(path, copy)
        Path(str(copy) + "-wal").write_bytes(bytes(data))
    report = verify(copy, public_key=public, witness=witness)
    assert not report.ok and any("log ends at seq" in f.problem for f in report.findings)


def test_the_checkpoint_command_prints_the_newest_checkpoint_and_feeds_a_witness(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    path, witness = tmp_path / "s.db", tmp_path / "w"
    write_signed(path, private)
    result = cli("checkpoint", path, "--witness", witness)
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout)
    newest = [r for r in rows(path) if r[4] == "checkpoint"][-1]
    assert (line["seq"], line["hash"]) == (newest[0], newest[8])
    assert json.loads((witness / "s.db.witness.jsonl").read_text().splitlines()[-1]) == line
    assert cli("verify", path, "--public-key", public, "--witness", witness).returncode == 0
    assert cli("verify", path, "--expect", f"{line['seq']}:{line['hash']}").returncode == 0
    bad = cli("verify", path, "--expect", "12:nothex")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1


# -- through the actor system, a config file, and crashes ---------------------------------------------------


def test_an_actor_system_and_a_config_file_sign_their_log(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    from actorlog.actors import ActorSystem

    private, public = keys
    path, witness = tmp_path / "app.db", tmp_path / "w"
    with ActorSystem(path, signing_key=private, witness=witness) as system:
        system.metrics.increment("x")
    report = verify(path, public_key=public, witness=witness)
    assert report.ok and report.checkpoints >= 1 and report.signed_up_to == report.last_seq
    config = tmp_path / "app.toml"
    config.write_text(f'log = "cfg.db"\n[store]\nsigning_key = "{private.relative_to(tmp_path)}"\nwitness = "w"\n'
                      '[plugins.llm]\nclass = "actorlog.actors.examples.llm:LLMPlugin"\n')
    result = cli("run", config, "--check")
    assert result.returncode == 0, result.stderr
    from actorlog.actors.config import build_system, load_config

    system = build_system(load_config(config))
    system.stop()
    report = verify(tmp_path / "cfg.db", public_key=public, witness=tmp_path / "w")
    assert report.ok and report.checkpoints >= 1


CRASH_WORKER = """
import sys
from actorlog.events import GaugeSet
from actorlog.store import EventStore
path, key, witness, batches = sys.argv[1], sys.argv[2], sys.argv[3], [int(n) for n in sys.argv[4].split(",")]
store = EventStore(path, signing_key=key, checkpoint_every=7, witness=witness)
for i, size in enumerate(batches):
    store.append_many([GaugeSet(name="g", value=float(j)) for j in range(size)])
    store.flush()
    print(i, flush=True)
"""


def test_appends_checkpoints_and_crashes_never_make_a_valid_log_fail_verify(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """Random batches, each flushed; the writer SIGKILLed after a random one (or closed
    cleanly). Whatever was committed verifies, with and without the witness, and rows
    after the last checkpoint are reported as not yet covered, never as tampering."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    private, public = keys

    @settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(batches=st.lists(st.integers(1, 12), min_size=1, max_size=6), kill_after=st.integers(-1, 5),
           number=st.integers(0, 10**9))
    def check(batches: list[int], kill_after: int, number: int) -> None:
        path, witness = tmp_path / f"c{number}.db", tmp_path / f"c{number}.jsonl"
        for _ in range(2):  # a second process appends after the first crashed or stopped
            worker = subprocess.Popen([sys.executable, "-c", CRASH_WORKER, str(path), str(private), str(witness),
                                       ",".join(map(str, batches))], stdout=subprocess.PIPE, text=True)
            assert worker.stdout is not None
            for line in worker.stdout:
                if kill_after >= 0 and int(line) >= min(kill_after, len(batches) - 1):
                    worker.kill()
                    break
            worker.wait(timeout=60)
            worker.stdout.close()
        report = verify(path, public_key=public, witness=witness if witness.exists() else None)
        assert report.ok, report.problems
        assert report.signed_up_to is not None
        if report.signed_up_to < report.last_seq:
            assert any("not yet covered" in note for note in report.notes)

    check()


# -- gaps found by the audit (notes/audit-14.md) ----------------------------------------------------

IDLE_WORKER = """
import sys
from actorlog.events import GaugeSet
from actorlog.store import EventStore
store = EventStore(sys.argv[1], signing_key=sys.argv[2], checkpoint_interval=0.3)
store.append_many([GaugeSet(name="g", value=float(i)) for i in range(5)])
store.flush()
print("flushed", flush=True)
sys.stdin.read()  # idle until killed
"""


def last_row_kind(path: Path) -> str | None:
    """The kind of the log's newest row (read while a writer holds the file)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT kind FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])


def test_an_idle_writer_signs_its_newest_rows_once_the_checkpoint_interval_passes(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    import time

    private, public = keys
    path = tmp_path / "idle.db"
    worker = subprocess.Popen([sys.executable, "-c", IDLE_WORKER, str(path), str(private)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "flushed"
        deadline = time.monotonic() + 60  # a deadline for a condition, not a timing assertion
        while last_row_kind(path) != "checkpoint":
            assert time.monotonic() < deadline, "no checkpoint covered the idle writer's newest events"
            time.sleep(0.05)
    finally:
        worker.kill()  # SIGKILL: no clean close signs anything now
        worker.wait(timeout=60)
        for stream in (worker.stdin, worker.stdout):
            if stream is not None:
                stream.close()
    report = verify(path, public_key=public)
    assert report.ok, report.problems
    assert report.events_checked >= 6 and report.signed_up_to == report.last_seq


def test_the_config_files_checkpoint_settings_reach_the_store(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    from actorlog.actors.config import build_system, load_config

    private, _ = keys
    config = tmp_path / "app.toml"
    config.write_text(f'log = "cfg.db"\n[store]\nsigning_key = "{private.relative_to(tmp_path)}"\n'
                      'checkpoint_every = 1234\ncheckpoint_interval = 0.25\n'
                      '[plugins.llm]\nclass = "actorlog.actors.examples.llm:LLMPlugin"\n')
    system = build_system(load_config(config))
    try:
        writer = system.store._writer
        assert writer is not None
        checkpointer = writer._checkpointer
        assert checkpointer is not None and (checkpointer.every, checkpointer.interval) == (1234, 0.25)
    finally:
        system.stop()


def legacy_snapshot(path: Path, gauge: float) -> None:
    """What actorlog before signed checkpoints stored: a snapshots table without triggers, and no
    ``snapshot.taken`` row in the chain."""
    with EventStore(path) as store:
        take_snapshot(store)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER snapshots_no_update")
        conn.execute("DROP TRIGGER snapshots_no_delete")
        state = json.loads(conn.execute("SELECT state FROM snapshots").fetchone()[0])
        state["metrics"]["gauges"] = [["g", [], gauge]]
        conn.execute("UPDATE snapshots SET state = ?", (json.dumps(state),))
    finally:
        conn.close()
    rewrite(path, "DELETE FROM events WHERE kind = 'snapshot.taken'")


def test_a_log_with_snapshots_from_before_they_were_chained_verifies_with_a_note(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    path = tmp_path / "old.db"
    write_signed(path, private)
    legacy_snapshot(path, 1_000_013.0)
    expected = rebuild(path, use_snapshots=False).document()
    report = verify(path)  # read-only: nothing upgraded yet
    assert report.ok, report.problems
    assert any("before snapshots were chained" in note for note in report.notes)
    result = cli("verify", path)
    assert result.returncode == 0 and "before snapshots were chained" in result.stdout, result.stdout
    assert rebuild(path).document() == expected  # the old snapshot is not used (its gauge was edited)
    with EventStore(path, signing_key=private) as store:  # a writer brings the triggers up to date
        store.append(GaugeSet(name="g", value=-5.0))
    conn = sqlite3.connect(path)
    try:
        triggers = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                                     "AND tbl_name = 'snapshots'")}
    finally:
        conn.close()
    assert triggers == {"snapshots_no_update", "snapshots_no_delete"}
    report = verify(path, public_key=public)
    assert report.ok, report.problems
    assert any("1 snapshot(s) taken before snapshots were chained" in note for note in report.notes)
    assert rebuild(path).document() == rebuild(path, use_snapshots=False).document()
    # a snapshot taken now is chained; editing it is still caught
    with EventStore(path, signing_key=private) as store:
        take_snapshot(store)
    assert verify(path, public_key=public).ok
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER snapshots_no_update")
        state = json.loads(conn.execute("SELECT state FROM snapshots WHERE id = 2").fetchone()[0])
        state["metrics"]["gauges"] = [["g", [], 7.0]]
        conn.execute("UPDATE snapshots SET state = ? WHERE id = 2", (json.dumps(state),))
        conn.execute("CREATE TRIGGER snapshots_no_update BEFORE UPDATE ON snapshots BEGIN "
                     "SELECT RAISE(ABORT, 'snapshots are append-only'); END")
    finally:
        conn.close()
    report = verify(path, public_key=public)
    assert not report.ok and any("snapshot id 2" in f.problem for f in report.findings), report.problems


def test_an_edited_chained_snapshot_cannot_pass_for_one_taken_before_chaining(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    path = tmp_path / "s.db"
    write_signed(path, private)
    with EventStore(path, signing_key=private) as store:
        take_snapshot(store)
        store.append(GaugeSet(name="g", value=1.0))
    # the editor changes the snapshot and removes its snapshot.taken row, recomputing the chain
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("DROP TRIGGER snapshots_no_update")
        conn.execute("UPDATE snapshots SET state = replace(state, '\"g\"', '\"h\"')")
    finally:
        conn.close()
    rewrite(path, "DELETE FROM events WHERE kind = 'snapshot.taken'", renumber=True)
    report = verify(path, public_key=public)
    assert not report.ok  # the snapshot triggers are gone, and the signature no longer matches the chain
    assert any("were rewritten" in f.problem for f in report.findings)


def test_run_check_refuses_a_signing_key_the_real_run_would_refuse(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private, _ = keys
    config = tmp_path / "app.toml"
    body = '[plugins.llm]\nclass = "actorlog.actors.examples.llm:LLMPlugin"\n'
    config.write_text(f'log = "cfg.db"\n[store]\nsigning_key = "{private.relative_to(tmp_path)}"\n' + body)
    private.chmod(0o644)
    result = cli("run", config, "--check")
    assert result.returncode == 2, result.stdout
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "store.signing_key" in result.stderr and "chmod 600" in result.stderr
    config.write_text('log = "cfg.db"\n[store]\nsigning_key = "missing.key"\n' + body)
    result = cli("run", config, "--check")
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "store.signing_key" in result.stderr and "actorlog keygen" in result.stderr
    assert not (tmp_path / "cfg.db").exists()


def test_a_log_whose_checkpoints_were_all_stripped_says_nothing_is_vouched_for(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    path = tmp_path / "s.db"
    write_signed(path, private)
    rewrite(path, "DELETE FROM events WHERE kind = 'checkpoint'", renumber=True)
    report = verify(path, public_key=public)
    assert report.ok, report.problems  # by design: uncovered rows are not failures; a witness or --expect catches this
    assert any("no valid signed checkpoint" in note and "nothing is vouched for" in note and "witness" in note
               for note in report.notes), report.notes
    result = cli("verify", path, "--public-key", public)
    assert result.returncode == 0 and "nothing is vouched for" in result.stdout


def test_the_rewritten_range_finding_carries_the_first_row_not_vouched_for(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    private, public = keys
    path = tmp_path / "s.db"
    write_signed(path, private)
    victim = 40
    kept_checkpoint = max(int(r[0]) for r in rows(path) if r[4] == "checkpoint" and int(r[0]) < victim)  # type: ignore[call-overload]
    rewrite(path, "UPDATE events SET payload = replace(payload, '\"value\":', '\"value\":1000') WHERE seq = ?", victim)
    report = verify(path, public_key=public)
    (finding, *_) = report.findings
    assert "were rewritten" in finding.problem and finding.seq == kept_checkpoint + 1


def test_a_middle_row_deleted_with_the_chain_recomputed_is_a_seq_gap(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    with EventStore(path) as store:
        store.append_many([GaugeSet(name="g", value=float(i)) for i in range(20)])
    rewrite(path, "DELETE FROM events WHERE seq = ?", 7)
    report = verify(path)
    assert not report.ok
    assert any(f.seq == 7 and "seq 7 is missing" in f.problem for f in report.findings), report.problems
    result = cli("verify", path)
    assert result.returncode == 1 and "seq 7 is missing" in result.stdout
