"""Integrity verification: the file (SQLite's own check), the append-only triggers, the hash
chain, and with `ChainAudit` the signed checkpoints, pinned hashes and snapshots."""

from __future__ import annotations

import threading
from collections.abc import Callable

import msgspec

from actorlog.store.audit import ChainAudit, Finding, check_snapshots
from actorlog.store.chain import GENESIS, row_hash
from actorlog.store.errors import StoreReadError, is_damage
from actorlog.store.backend import ReadConnection
from actorlog.store.query import EventFilter, iter_rows

MAX_FILE_PROBLEMS = 10
"""At most this many of SQLite's findings are kept in a report."""


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of `EventStore.verify`.

    ``first_bad_seq`` is the first row whose stored hash does not match its content and
    its predecessor's hash: the first row changed, inserted or following a deleted one.
    ``file_checked`` says whether SQLite's ``PRAGMA quick_check`` ran over the whole file;
    ``file_problems`` holds what it found (at most `MAX_FILE_PROBLEMS`), or the error that
    stopped reading a damaged file. A damaged file also has its own line in ``problems``.
    """

    ok: bool
    events_checked: int
    last_seq: int
    first_bad_seq: int | None = None
    problems: tuple[str, ...] = ()
    file_checked: bool = False
    file_problems: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    """Every problem found, with the seq it concerns (None: the log as a whole)."""
    notes: tuple[str, ...] = ()
    """What the report cannot vouch for, and rows not yet covered by a signature (not failures)."""
    checkpoints: int = 0
    """Signed checkpoints in the log."""
    signed_up_to: int | None = None
    """With a public key: the seq of the newest checkpoint whose signature verifies over an intact chain."""


def verify_log(
    reader: ReadConnection,
    lock: threading.Lock,
    chunk_size: int = 5000,
    *,
    check_file: bool = True,
    audit: ChainAudit | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check the storage (SQLite's ``PRAGMA quick_check``, unless ``check_file`` is false), the
    append-only guards (present, on ``events``, with actorlog's own SQL, enabled) and column
    types, then recompute the whole chain in seq order, in constant memory.

    Any value in any column is hashed as it is read (a row a foreign writer stored with a
    BLOB or a number where text belongs simply fails to match). A damaged file is a finding,
    not an error: the report says what SQLite found and how far the chain could be read. A
    lock held past the busy timeout, or a file that cannot be read at all, raises the store
    error naming it. ``progress``, if given, is called with the number of rows hashed since
    its last call (every ``chunk_size`` rows).
    """
    path = reader.location.display
    check_file = check_file and reader.checks_storage
    problems: list[str] = []
    file_problems: list[str] = []
    if check_file:
        file_problems = _quick_check(reader, lock)
        if file_problems:
            problems.append(
                f"the file is damaged: SQLite's quick_check found {len(file_problems)}"
                f"{'+' if len(file_problems) >= MAX_FILE_PROBLEMS else ''} problem(s), the first: {file_problems[0]}; "
                f"restore it from a backup, or recover what SQLite can with: sqlite3 {str(path)!r} .recover"
            )
    with lock:
        problems += reader.structure_problems("events")
    audit = audit if audit is not None else ChainAudit()
    findings: list[Finding] = [Finding(None, problem) for problem in problems]
    previous = GENESIS
    checked = 0
    last_seq = 0
    first_bad: int | None = None
    gaps: list[tuple[int, int]] = []
    """Seqs missing between rows: a row removed with the chain recomputed after it (seq is hashed,
    so only an editor who also renumbers every later row hides a gap)."""
    see = audit.see
    try:
        for seq, ts, run, actor, kind, version, correlation, payload, stored in iter_rows(
            reader, lock, EventFilter(), chunk_size
        ):
            expected = row_hash(previous, seq, ts, run, actor, kind, version, correlation, payload)
            checked += 1
            if seq != last_seq + 1:
                gaps.append((last_seq + 1, seq - 1))
            last_seq = seq
            if progress is not None and checked % chunk_size == 0:
                progress(chunk_size)
            if stored != expected and first_bad is None:
                first_bad = seq
                problem = f"hash chain broken at seq {seq}: the row or the one before it was changed, added or removed"
                problems.append(problem)
                findings.append(Finding(seq, problem))
            see(seq, actor, kind, payload, stored, first_bad is None)
            previous = stored if type(stored) is str else repr(stored)  # a tampered hash may be a BLOB
    except StoreReadError as exc:
        if not is_damage(exc):
            raise
        if not file_problems:
            file_problems = [str(exc.__cause__ or exc)]
            problems.append(f"the file is damaged: {exc}")
        problem = f"the hash chain could not be read past seq {last_seq} ({checked} events checked): the file is damaged there"
        problems.append(problem)
        findings.append(Finding(last_seq, problem))
    if gaps:
        first, last = gaps[0]
        missing = f"seq {first} is missing" if first == last else f"seqs {first} to {last} are missing"
        more = f" ({len(gaps)} gaps in all)" if len(gaps) > 1 else ""
        problem = (f"{missing}: the log goes from seq {first - 1} to {last + 1}{more}; a row was removed "
                   f"and the chain recomputed")
        problems.append(problem)
        findings.append(Finding(first, problem))
    snapshot_findings, snapshot_notes = _snapshots(reader, lock, audit)
    notes = audit.finish() + snapshot_notes
    for finding in audit.findings + snapshot_findings:
        problems.append(finding.problem)
        findings.append(finding)
    return VerifyReport(
        ok=not problems, events_checked=checked, last_seq=last_seq, first_bad_seq=first_bad, problems=tuple(problems),
        file_checked=check_file, file_problems=tuple(file_problems), findings=tuple(findings), notes=tuple(notes),
        checkpoints=audit.checkpoints, signed_up_to=audit.signed_up_to if audit.public_key is not None else None,
    )


def _snapshots(reader: ReadConnection, lock: threading.Lock, audit: ChainAudit) -> tuple[list[Finding], list[str]]:
    """The snapshots table, if there is one: append-only, and every snapshot vouched for by the
    chain; returns the findings and the notes (snapshots from before snapshots were chained)."""
    with lock:
        if not reader.table_exists("snapshots"):
            return [], []
        rows = reader.fetch("SELECT id, projection, version, position, run, state FROM snapshots ORDER BY id", (),
                            "reading the snapshots")
        guards = reader.structure_problems("snapshots")
    findings, unchained = check_snapshots(rows, audit.snapshot_digests, audit.snapshot_records)
    notes = []
    if guards and not audit.snapshot_records:
        # a log from before snapshots were chained had no snapshot triggers (a writer opening it adds
        # them); with no chained snapshot, none in the table is used, so nothing they guard is vouched for
        notes.append(f"the snapshots table has no append-only triggers as actorlog makes them ({len(guards)} "
                     f"missing or replaced): it predates them, and no snapshot in it is used; a writer opening the "
                     f"log adds missing ones")
    else:
        findings = [Finding(None, problem) for problem in guards] + findings
    if unchained:
        ids = f"id {unchained[0]}" if len(unchained) == 1 else f"ids {unchained[0]} to {unchained[-1]}"
        notes.append(f"{len(unchained)} snapshot(s) taken before snapshots were chained ({ids}): not verifiable, "
                     f"so rebuild skips them; `actorlog snapshot` takes a verified one")
    return findings, notes


def _quick_check(reader: ReadConnection, lock: threading.Lock) -> list[str]:
    """What the storage engine's own check finds wrong with the log; [] when it is intact."""
    try:
        with lock:
            return reader.damage(MAX_FILE_PROBLEMS)
    except StoreReadError as exc:
        if not is_damage(exc):
            raise
        return [str(exc.__cause__ or exc)]
