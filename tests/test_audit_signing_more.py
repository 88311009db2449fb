"""More of issue 14's audit trail: what tests/test_audit_signing.py leaves out.

A rollback and a rewrite from the start caught by a hash kept outside the log; signing keys
that exist but are no key, refused in one line and never echoed; an edited snapshot that
`rebuild` and `actorlog stats` step over, folding from the previous good one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from actorlog.events import ActorlogError, CounterIncremented, GaugeSet
from actorlog.replay import rebuild, take_snapshot
from actorlog.store import EventStore
from actorlog.store.signing import SigningKeyError, generate_key
from replay_helpers import record_log
from secrets_helpers import log_files
from test_audit_signing import cli, rewrite, rows, verify, write_signed


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "keys").mkdir()
    private, public, _ = generate_key(tmp_path / "keys" / "log.key")
    return private, public


def checkpoint_line(path: Path) -> dict[str, object]:
    """What an auditor keeps outside the log: the line `actorlog checkpoint` prints."""
    result = cli("checkpoint", path)
    assert result.returncode == 0, result.stderr
    line: dict[str, object] = json.loads(result.stdout)
    return line


# -- rollback and rewrite, against a hash kept elsewhere -------------------------------------------------


def test_a_rollback_to_an_older_shorter_copy_is_found_by_an_expected_hash_taken_before_it(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    """The older copy is a genuine, signed log: only the hash kept from the newer one shows
    the rows it lacks."""
    private, public = keys
    path = tmp_path / "s.db"
    write_signed(path, private, n=60)
    older = tmp_path / "older.db"
    shutil.copyfile(path, older)
    older_last = int(rows(older)[-1][0])  # type: ignore[call-overload]
    write_signed(path, private, n=60, start=60)
    kept = checkpoint_line(path)
    later = rows(path)[-20]  # any later row an auditor noted, not only a checkpoint
    assert int(kept["seq"]) > older_last and int(later[0]) > older_last  # type: ignore[call-overload]
    shutil.copyfile(older, path)  # the rollback
    assert cli("verify", path, "--public-key", public).returncode == 0  # alone, the older copy looks fine
    for seq, digest in ((kept["seq"], kept["hash"]), (later[0], later[8])):
        result = cli("verify", path, "--expect", f"{seq}:{digest}")
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"log ends at seq {older_last} but --expect {seq}:{digest} holds seq {seq}" in result.stdout, result.stdout
        assert "rolled back" in result.stdout and "Traceback" not in result.stdout + result.stderr
        report = json.loads(cli("verify", path, "--expect", f"{seq}:{digest}", "--json").stdout)
        assert any(f["seq"] == seq and "rolled back" in f["problem"] for f in report["findings"]), report


@pytest.mark.parametrize("how", ["rows edited in place", "file replaced by a log written afresh"])
def test_a_log_rewritten_from_the_start_is_found_by_the_witness_and_an_expected_hash(
    tmp_path: Path, keys: tuple[Path, Path], how: str
) -> None:
    """Same length, every row different, the chain recomputed: the plain chain and the
    length are fooled, the hashes kept outside the log are not."""
    private, _ = keys
    path, witness = tmp_path / "s.db", tmp_path / "witness"
    write_signed(path, private, witness=witness)
    original = rows(path)
    kept = checkpoint_line(path)
    if how == "rows edited in place":
        rewrite(path, "UPDATE events SET payload = replace(payload, '\"value\":', '\"value\":-1') WHERE actor = 'worker'")
    else:
        fake = tmp_path / "fake.db"
        with EventStore(fake) as store:
            store.append_many([GaugeSet(name="g", value=-float(i)) for i in range(len(original))], actor="worker")
        shutil.copyfile(fake, path)
    forged = rows(path)
    assert len(forged) == len(original) and forged[-1][0] == original[-1][0]
    assert all(new[8] != old[8] for new, old in zip(forged, original, strict=True))  # every row re-hashed
    assert verify(path).ok  # the recomputed chain is intact
    result = cli("verify", path, "--witness", witness)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the log was rewritten or replaced by another copy" in result.stdout
    first = json.loads((witness / "s.db.witness.jsonl").read_text().splitlines()[0])["seq"]
    assert f"row seq {first} hashes to" in result.stdout, result.stdout
    result = cli("verify", path, "--expect", f"{kept['seq']}:{kept['hash']}")
    assert result.returncode == 1 and f"row seq {kept['seq']} hashes to" in result.stdout, result.stdout
    assert "Traceback" not in result.stdout + result.stderr


# -- keys that exist but are no key ------------------------------------------------------------------------


def subprocess_cli(cwd: Path, env: dict[str, str], *args: object) -> subprocess.CompletedProcess[str]:
    """``actorlog ARGS`` run in ``cwd`` with ``env`` (the real console script)."""
    return subprocess.run([str(Path(sys.executable).parent / "actorlog"), *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env)


def store_config(directory: Path, key: str) -> Path:
    config = directory / "app.toml"
    config.write_text(f'log = "cfg.db"\n[store]\nsigning_key = "{key}"\n'
                      '[plugins.llm]\nclass = "actorlog.actors.examples.llm:LLMPlugin"\n')
    return config


def assert_refused(result: subprocess.CompletedProcess[str], *, header: bool = False) -> str:
    """Exit 2, one ``actorlog: error:`` line last on stderr (after the demo's header, if any), no traceback."""
    returncode, stdout, stderr = result.returncode, result.stdout, result.stderr
    assert returncode == 2, (returncode, stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == (2 if header else 1), stderr
    assert lines[-1].startswith("actorlog: error:"), stderr
    assert sum(line.startswith("actorlog: error:") for line in lines) == 1, stderr
    assert "Traceback" not in stdout + stderr
    return lines[-1]


def test_a_signing_key_path_that_is_a_directory_is_refused_in_one_line(tmp_path: Path) -> None:
    """As root, chmod 000 stops nothing: a directory is the key path that exists and cannot be read as a key."""
    keydir = tmp_path / "keydir"
    keydir.mkdir(mode=0o700)
    with pytest.raises(SigningKeyError) as caught:
        EventStore(tmp_path / "a.db", signing_key=keydir)
    assert isinstance(caught.value, ActorlogError)
    assert str(keydir) in str(caught.value) and "not a regular file" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "a.db").exists() or rows(tmp_path / "a.db") == []
    config = store_config(tmp_path, "keydir")
    for args in (("run", config, "--check"), ("run", config)):
        line = assert_refused(cli(*args))
        assert "store.signing_key" in line and "not a regular file" in line, line
    env = {**os.environ, "ACTORLOG_SIGNING_KEY": str(keydir)}
    demo = subprocess_cli(tmp_path, env, "demo", "--tasks", "1", "--db", tmp_path / "demo.db")
    line = assert_refused(demo, header=True)
    assert "keydir" in line and "not a regular file" in line, line
    assert not (tmp_path / "cfg.db").exists() and not (tmp_path / "demo.db").exists()


def pem(key: Ed25519PrivateKey | rsa.RSAPrivateKey, encryption: serialization.KeySerializationEncryption) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode()


def refused_key(kind: str) -> tuple[str, int, str]:
    """(file text, mode, what the refusal says) of a private key file that must be refused."""
    key = Ed25519PrivateKey.generate()
    plain = pem(key, serialization.NoEncryption())
    if kind == "readable by others":
        return plain, 0o644, "readable by others"
    if kind == "label garbled":
        return plain.replace("PRIVATE KEY", "PRIVAT KEY"), 0o600, "not an unencrypted PEM private key"
    if kind == "body garbled":
        lines = plain.splitlines()
        lines[1] = lines[1][:-4] + "!!!!"
        return "\n".join(lines) + "\n", 0o600, "not an unencrypted PEM private key"
    if kind == "encrypted":
        return pem(key, serialization.BestAvailableEncryption(b"pass phrase")), 0o600, "not an unencrypted PEM"
    if kind == "not Ed25519":
        return pem(rsa.generate_private_key(public_exponent=65537, key_size=2048), serialization.NoEncryption()), \
            0o600, "not an Ed25519 key"
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["readable by others", "label garbled", "body garbled", "encrypted", "not Ed25519"])
def test_a_refused_key_file_never_shows_its_bytes(tmp_path: Path, kind: str) -> None:
    """Not in the exception (str, repr, traceback), not on the CLI's stdout or stderr (with -v
    too, which shows the library's log in full), not in any file of the log."""
    text, mode, reason = refused_key(kind)
    key = tmp_path / "bad.key"
    key.write_text(text)
    key.chmod(mode)
    body = [line for line in text.splitlines() if line.strip() and "-----" not in line]
    assert body
    seen: dict[str, bytes] = {}
    with pytest.raises(SigningKeyError, match=reason) as caught:
        EventStore(tmp_path / "store.db", signing_key=key)
    seen["exception"] = (str(caught.value) + repr(caught.value)
                         + "".join(traceback.format_exception(caught.value))).encode()
    config = store_config(tmp_path, "bad.key")
    env = {**os.environ, "ACTORLOG_SIGNING_KEY": str(key)}
    for name, args in {
        "run --check": ("run", config, "--check"), "run": ("run", config), "-v run": ("-v", "run", config),
        "demo": ("demo", "--tasks", "1", "--db", tmp_path / "demo.db"),
        "-v demo": ("-v", "demo", "--tasks", "1", "--db", tmp_path / "demo.db"),
    }.items():
        result = subprocess_cli(tmp_path, env, *args)
        assert reason in assert_refused(result, header="demo" in name), name
        seen[name] = (result.stdout + result.stderr).encode()
    for log in ("store.db", "cfg.db", "demo.db"):
        seen.update(log_files(tmp_path / log))
    leaks = [(place, line) for place, data in seen.items() for line in body if line.encode() in data]
    assert not leaks, leaks


# -- an edited snapshot: rebuild and stats fold from the previous good one ------------------------------------


def edit_snapshot(path: Path, snapshot_id: int) -> None:
    """What an editor does to a snapshot: drop its guard, change the numbers, put the guard back."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        (guard,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'snapshots_no_update'").fetchone()
        conn.execute("DROP TRIGGER snapshots_no_update")
        state = json.loads(conn.execute("SELECT state FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone()[0])
        state["errors"]["total"] = 424242
        state["metrics"]["counters"] = [[name, tags, value * 1000] for name, tags, value in state["metrics"]["counters"]]
        conn.execute("UPDATE snapshots SET state = ? WHERE id = ?", (json.dumps(state), snapshot_id))
        conn.execute(guard)
    finally:
        conn.close()


def two_snapshots(path: Path) -> tuple[int, int]:
    """A log of two real runs with a snapshot, more events, a second snapshot and more events;
    returns the two snapshots' positions."""
    record_log(path)
    with EventStore(path) as store:
        first = take_snapshot(store)
        store.append_many([CounterIncremented(name="t6.requests", value=1.0)] * 7, actor="metrics")
        store.flush()
        second = take_snapshot(store)
        store.append_many([CounterIncremented(name="t6.requests", value=2.0)] * 3, actor="metrics")
    return first, second


def folded(path: Path) -> tuple[dict[str, object], int]:
    """The rebuilt statistics document and how many rows the rebuild read (its progress)."""
    count = [0]

    def advance(rows_read: int) -> None:
        count[0] += rows_read

    document: dict[str, object] = rebuild(path, progress=advance).document()  # type: ignore[assignment]
    return document, count[0]


def test_rebuild_skips_an_edited_snapshot_with_a_warning_and_folds_from_the_previous_good_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "app.db"
    first, second = two_snapshots(path)
    last = int(rows(path)[-1][0])  # type: ignore[call-overload]
    full = rebuild(path, use_snapshots=False).document()
    document, read = folded(path)
    assert document == full and read == last - second  # intact: from the newer snapshot
    edit_snapshot(path, 2)
    with caplog.at_level(logging.WARNING, logger="actorlog"):
        document, read = folded(path)
    assert document == full
    assert read == last - first, (read, last, first, second)  # from the older snapshot, not from the start
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("snapshot id 2" in message and "skipped" in message for message in warnings), warnings
    assert not any("snapshot id 1" in message for message in warnings), warnings


def test_stats_json_on_a_log_whose_snapshot_was_edited_equals_the_unedited_log(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    two_snapshots(path)
    unedited = tmp_path / "unedited.db"
    shutil.copyfile(path, unedited)
    edit_snapshot(path, 2)
    before = cli("stats", unedited, "--json")
    after = cli("stats", path, "--json")
    assert before.returncode == 0 and after.returncode == 0, before.stderr + after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout)
    assert json.loads(after.stdout) == json.loads(cli("stats", path, "--json", "--no-snapshots").stdout)
    assert json.loads(after.stdout)["errors"]["total_errors"] != 424242
    assert "snapshot id 2" in after.stderr and "Traceback" not in after.stderr, after.stderr
