"""Helpers for the fault and hostile-input suites (tests/test_fault_*.py, tests/test_hostile_input.py).

Faults are made with real mechanisms: a size limit on the log (``max_log_bytes``, SQLite's
``max_page_count``), a file-size rlimit in a subprocess, locks held by another process,
files made read-only (chmod, or ``chattr +i`` when running as root, whom chmod does not
stop), files removed while open, and rows inserted with plain sqlite3 (the append-only
triggers refuse UPDATE and DELETE, not INSERT). Message tags start with "t8.".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pykka
import pytest

from actorlog.actors import ActorSystem, Plugin, SystemStoppedError, handler
from actorlog.events import Message, register
from actorlog.store import EventStore, StoreWriteError
from actorlog.store.records import EventRecord
from log_helpers import HELPERS

T = TypeVar("T")

INSERT_SQL = (
    "INSERT INTO events (seq, ts, run, actor, kind, version, correlation, payload, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_AS_TEXT_SQL = (
    "INSERT INTO events (seq, ts, run, actor, kind, version, correlation, payload, hash) "
    "VALUES (?, ?, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), ?, ?, CAST(? AS TEXT), ?)"
)
"""Bytes given for run, actor, kind or payload are stored as TEXT as they are (even when not UTF-8)."""


# -- the log on disk ---------------------------------------------------------------------------------


def insert_raw(path: Path, rows: Iterable[Sequence[Any]], sql: str = INSERT_SQL) -> None:
    """Insert rows with plain sqlite3, as a foreign writer can."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, list(rows))
        conn.execute("COMMIT")
    finally:
        conn.close()


def audit(path: Path) -> list[EventRecord]:
    """Every event of a log that must be intact: it verifies, passes SQLite's integrity_check,
    and reads strictly."""
    with EventStore.open_readonly(path) as reader:
        assert reader.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        report = reader.verify()
        assert report.ok, report.problems
        records = list(reader.events())
    assert [r.seq for r in records] == list(range(1, len(records) + 1))
    return records


def fill_values(records: Iterable[EventRecord], kind: str = "counter.incremented") -> list[float]:
    return [r.event.value for r in records if r.kind == kind]


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- no hangs, nothing left behind ---------------------------------------------------------------------


def finish_within(function: Callable[[], T], timeout: float = 30.0, what: str = "") -> tuple[T | None, BaseException | None]:
    """Call ``function`` in a thread; (its result, None) or (None, what it raised). Fails if it hangs.

    The timeout is a safety net turning a hang into a failure, not a timing assertion.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="t8-deadline", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"{what or function!r} did not return within {timeout} s: it hangs")
    return outcome.get("result"), outcome.get("error")


@dataclass(frozen=True)
class Running:
    """The threads and pykka actors alive at one moment."""

    threads: frozenset[threading.Thread]
    actors: frozenset[Any]

    @classmethod
    def now(cls) -> Running:
        return cls(frozenset(threading.enumerate()), frozenset(pykka.ActorRegistry.get_all()))


def assert_nothing_left_since(before: Running, timeout: float = 5.0) -> None:
    """Every thread and actor started since ``before`` is gone (waiting a little for threads to exit).

    Call it once whatever stops them has returned: an actor still registered then is never
    going to stop (pykka unregisters an actor before its stop returns), so that fails at once.
    """
    actors = Running.now().actors - before.actors
    assert not actors, f"actors left running: {sorted(repr(a) for a in actors)}"
    deadline = time.monotonic() + timeout
    while True:
        now = Running.now()
        threads = {t for t in now.threads - before.threads if t.is_alive()}
        actors = now.actors - before.actors
        if not threads and not actors:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"left running: threads {sorted(t.name for t in threads)}, actors {sorted(repr(a) for a in actors)}"
            )
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def stop_leftover_actors() -> Iterator[None]:
    """Stop actors a failing test left running (a passing test has checked there are none), so
    one failure does not spill into the next tests. Import it into a test module to use it."""
    before = Running.now()
    yield
    for ref in Running.now().actors - before.actors:
        try:
            ref.stop(block=True, timeout=10)
        except (pykka.ActorDeadError, pykka.Timeout):
            pass


# -- an actor system under a fault ---------------------------------------------------------------------


@register
class Fill(Message, tag="t8.fill", frozen=True):
    """Answer ``n``; ``text`` only makes the logged message bigger."""

    n: int
    text: str = ""


class Filler(Plugin):
    version = "1.0"

    @handler
    def fill(self, message: Fill) -> int:
        return message.n


@dataclass
class Drive:
    """What `drive` confirmed before the fault showed, and how it showed."""

    confirmed: list[int] = field(default_factory=list)
    """n of every ask answered and covered by a flush that returned."""
    error: BaseException | None = None


def drive(
    system: ActorSystem, inject: Callable[[int], None] | None = None, *, text: str = "", steps: int = 3_000
) -> Drive:
    """Ask the ``filler`` plugin ``Fill(n)`` and flush, for n = 0, 1, ..., until a call raises.

    ``inject(n)`` runs after step n is confirmed: it is where a test breaks something.
    """
    outcome = Drive()
    for n in range(steps):
        try:
            assert system.ask("filler", Fill(n=n, text=text), timeout=30) == n
            system.flush(timeout=30)
        except Exception as exc:  # noqa: BLE001 - the fault, returned for the test to judge
            outcome.error = exc
            return outcome
        outcome.confirmed.append(n)
        if inject is not None:
            inject(n)
    raise AssertionError(f"no fault showed in {steps} steps")


def start_filler(log: Path | EventStore, **options: Any) -> ActorSystem:
    system = ActorSystem(log, **options)
    system.register("filler", Filler)
    system.start()
    return system


def assert_fault_reported(error: BaseException | None, path: Path) -> None:
    """The failing call raised an actorlog error saying what went wrong with which file."""
    assert isinstance(error, (StoreWriteError, SystemStoppedError)), repr(error)
    assert str(path.name) in str(error) or str(path.name) in str(error.__cause__), str(error)


def assert_stops_cleanly(system: ActorSystem, before: Running) -> BaseException | None:
    """``stop()`` returns (or raises the log's failure), and leaves no thread or actor behind."""
    _, error = finish_within(system.stop, what="ActorSystem.stop()")
    assert error is None or isinstance(error, StoreWriteError), repr(error)
    assert_nothing_left_since(before)
    return error


def assert_confirmed_once(path: Path, confirmed: Sequence[int]) -> list[EventRecord]:
    """The log is intact and holds exactly one ``message.received`` for every confirmed ask,
    in order (later asks may follow: they were committed but not confirmed)."""
    records = audit(path)
    received = [r.event.message["n"] for r in records if r.kind == "message.received"]
    assert received[: len(confirmed)] == list(confirmed)
    assert received == sorted(set(received)), "a message was logged twice or out of order"
    return records


# -- files and processes ---------------------------------------------------------------------------------


class LockHolder:
    """Another process holding an SQLite lock on a log (tests/helpers/lock_holder.py)."""

    def __init__(self, path: Path, mode: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HELPERS / "lock_holder.py"), str(path), mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        line, error = finish_within(self.process.stdout.readline, 60, "the lock holder")
        if line != "locked\n":
            self.process.kill()
            _, err = self.process.communicate(timeout=60)
            raise AssertionError(f"the lock holder did not take the lock ({line!r}, {error!r}): {err}")

    def release(self) -> None:
        if self.process.poll() is None:
            _, err = self.process.communicate("go\n", timeout=60)
            assert self.process.returncode == 0, err


@contextlib.contextmanager
def lock_held(path: Path, mode: str = "immediate") -> Iterator[LockHolder]:
    holder = LockHolder(path, mode)
    try:
        yield holder
    finally:
        if holder.process.poll() is None:
            try:
                holder.release()
            finally:
                if holder.process.poll() is None:
                    holder.process.kill()
                    holder.process.wait()


def can_write(path: Path) -> bool:
    """Whether this process can really write the file, or create a file in the directory."""
    try:
        if path.is_dir():
            probe = path / ".t8-write-probe"
            probe.touch()
            probe.unlink()
        else:
            with path.open("r+b"):
                pass
    except OSError:
        return False
    return True


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[str]:
    """Make a file or directory read-only for this process; yields how ("chmod" or "chattr +i").

    Permission bits do not stop root, so as root the file is made immutable instead
    (``chattr +i``, which needs CAP_LINUX_IMMUTABLE and a file system that supports it);
    the test is skipped, with the reason, when neither works.
    """
    mode = path.stat().st_mode
    path.chmod(mode & ~0o222)
    immutable = False
    try:
        how = "chmod"
        if can_write(path):
            chattr = shutil.which("chattr")
            if chattr is None:
                pytest.skip(f"chmod does not stop this process (uid {os.geteuid()}) and chattr is not installed")
            result = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True, check=False)
            if result.returncode != 0:
                pytest.skip(f"chmod does not stop this process (uid {os.geteuid()}) and chattr +i failed: "
                            f"{result.stderr.strip()}")
            immutable, how = True, "chattr +i"
            if can_write(path):
                pytest.skip(f"neither chmod nor chattr +i stops this process from writing {path}")
        yield how
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(mode)
