"""Helpers for the Sandbox plugin tests (tests/test_example_sandbox.py).

The sandbox runs programs as ``nobody`` when the tests run as root, so whatever a
sandboxed program must reach (its interpreter, a gate file) has to be reachable by that
user; and the tests check that no process a test's sandboxes started is left behind.

"Started by this test" is decided by ancestry, never by user: other programs on the
machine (the demo, another checkout's tests) run sandboxes as ``nobody`` too. While a test
runs, `adopting_orphans` makes the test process a child subreaper, so a process that
loses its launcher is re-parented to the test process instead of to init, and
`descendants` of the test process is then every process the test's sandboxes started,
wherever they moved (new sessions, process groups or directories included).
"""

from __future__ import annotations

import functools
import inspect
import os
import pwd
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from actorlog.actors.examples import sandbox_launcher
from actorlog.actors.examples.sandbox import SandboxRunner, load_config
from actorlog.events import Event

IS_ROOT = os.geteuid() == 0
SANDBOX_UID = pwd.getpwnam("nobody").pw_uid if IS_ROOT else os.geteuid()


def _reachable_by_others(path: str) -> bool:
    """Whether a user other than the owner can traverse to ``path`` and read/execute it."""
    real = os.path.realpath(path)
    parts = Path(real).parents
    try:
        if any(not os.stat(p).st_mode & stat.S_IXOTH for p in parts):
            return False
        return bool(os.stat(real).st_mode & stat.S_IXOTH and os.stat(real).st_mode & stat.S_IROTH)
    except OSError:
        return False


def sandbox_python() -> str:
    """An interpreter the sandbox user can run (under root, the test's own may live in /root)."""
    if not IS_ROOT:
        return sys.executable
    for candidate in (sys.executable, "/usr/bin/python3", shutil.which("python3") or ""):
        if candidate and _reachable_by_others(candidate) and _reachable_by_others(
            os.path.join(os.path.dirname(os.path.realpath(candidate)), "..", "lib")
        ):
            return candidate
    raise RuntimeError("no Python interpreter that the user 'nobody' can run was found")


PYTHON = sandbox_python()


def config(**overrides: Any) -> dict[str, Any]:
    """A small, fast sandbox config (JSON, as a plugin config must be)."""
    base: dict[str, Any] = {
        "python": PYTHON,
        "cpu_seconds": 5,
        "memory_bytes": 256 * 1024 * 1024,
        "max_processes": 16,
        "max_output_bytes": 64 * 1024,
        "wall_timeout": 20.0,
        "container_limit": 2,
    }
    base.update(overrides)
    return base


def runner(events: list[Event] | None = None, **overrides: Any) -> SandboxRunner:
    """A runner outside any actor system; its events are appended to ``events``."""
    return SandboxRunner(load_config(config(**overrides)), emit=events.append if events is not None else None)


LAUNCHER_SOURCE = inspect.getsource(sandbox_launcher)
"""The launcher's program: a launcher's command line is ``PYTHON -I -S -c LAUNCHER_SOURCE SPEC``."""


@dataclass(frozen=True)
class Proc:
    """One process, as /proc showed it."""

    pid: int
    start: int
    """Start time in clock ticks after boot: with the pid, it names the process uniquely."""
    ppid: int
    uid: int
    state: str
    argv: tuple[str, ...]

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.start)

    @property
    def launcher(self) -> bool:
        """Whether it runs the sandbox launcher (or is its fork, before the ``exec``)."""
        return self.argv[3:5] == ("-c", LAUNCHER_SOURCE)

    def __str__(self) -> str:
        what = "sandbox launcher" if self.launcher else " ".join(self.argv)[:80] or "(exited, not reaped)"
        return f"pid {self.pid} (parent {self.ppid}, uid {self.uid}, state {self.state}): {what}"


def _read_proc(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            data = file.read()
        uid = os.stat(f"/proc/{pid}").st_uid
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            argv = tuple(arg.decode(errors="replace") for arg in file.read().split(b"\0")[:-1])
    except OSError:  # gone meanwhile
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return Proc(pid, int(fields[19]), int(fields[1]), uid, fields[0].decode(), argv)


def descendants(root: int | None = None) -> list[Proc]:
    """Every process under ``root`` (default: this process), zombies included."""
    root = os.getpid() if root is None else root
    children: dict[int, list[Proc]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (proc := _read_proc(int(entry))) is not None:
            children.setdefault(proc.ppid, []).append(proc)
    found, todo = [], [root]
    while todo:
        for proc in children.get(todo.pop(), []):
            found.append(proc)
            todo.append(proc.pid)
    return found


def sandboxed_programs() -> list[Proc]:
    """The processes under this one that run a sandboxed program (launchers left out)."""
    return [proc for proc in descendants() if not proc.launcher]


_PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 36, 37


@functools.cache
def _c_library() -> Any:
    """The C library (``ctypes``), loaded when first needed, not on import: a confined
    reproduction that imports a test module refuses native code."""
    import ctypes  # noqa: PLC0415

    return ctypes.CDLL(None, use_errno=True)


@contextmanager
def adopting_orphans() -> Iterator[None]:
    """Within the block, this process is a child subreaper: an orphan among its descendants
    (a sandboxed process whose launcher died) is re-parented here, not to init, so it stays
    among `descendants`. The previous setting is restored afterwards."""
    import ctypes  # noqa: PLC0415 - see _c_library

    previous = ctypes.c_int(0)
    _libc = _c_library()
    if _libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_GET_CHILD_SUBREAPER) failed")
    if _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    try:
        yield
    finally:
        _libc.prctl(_PR_SET_CHILD_SUBREAPER, previous.value, 0, 0, 0)


def _kill(proc: Proc) -> None:
    """SIGKILL ``proc`` if it is still that process (through a pidfd, so a reused pid is never hit)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:
        return  # gone
    try:
        again = _read_proc(proc.pid)
        if again is not None and again.key == proc.key:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(pidfd)


def end_new_processes(before: set[tuple[int, int]], timeout: float = 30.0) -> list[Proc]:
    """SIGKILL every process under this one whose key is not in ``before``, and reap those
    that are children of this one, until none is left (a killed launcher's orphans are
    re-parented here under `adopting_orphans`, and ended in turn). Returns what is still
    there after ``timeout`` seconds."""
    me = os.getpid()
    deadline = time.monotonic() + timeout
    while True:
        left = [proc for proc in descendants() if proc.key not in before]
        if not left or time.monotonic() >= deadline:
            return left
        for proc in left:
            _kill(proc)
            if proc.ppid == me:
                try:
                    os.waitpid(proc.pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        time.sleep(0.01)


@contextmanager
def outside_dir(prefix: str = "actorlog-test-", mode: int = 0o755) -> Iterator[Path]:
    """A fresh folder that sandboxed programs can see and the sandbox user can reach: outside
    the sandbox's private temporary directories (/tmp, /var/tmp, /dev/shm are its own), under
    /run when this process is root, else beside the tests. ``mode`` 0o1777 lets the sandbox
    user write there. Removed afterwards."""
    parent = "/run" if IS_ROOT and os.access("/run", os.W_OK) else str(Path(__file__).resolve().parent)
    folder = tempfile.mkdtemp(prefix=prefix, dir=parent)
    os.chmod(folder, mode)
    try:
        yield Path(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def gate() -> Iterator[tuple[str, Callable[[], None]]]:
    """A file path a sandboxed program can wait for, and the function that creates it (in a
    folder the program sees: not under its private /tmp)."""
    parent = "/run" if IS_ROOT and os.access("/run", os.W_OK) else str(Path(__file__).resolve().parent)
    folder = tempfile.mkdtemp(prefix="sandbox-gate-", dir=parent)
    os.chmod(folder, 0o755)
    path = os.path.join(folder, "open")

    def release() -> None:
        Path(path).touch()

    try:
        yield path, release
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def wait_for_gate(path: str, then: str = "print('through')") -> str:
    """A snippet that waits (at most 20 s) until ``path`` exists, then runs ``then``."""
    return (
        "import os, time\n"
        "deadline = time.time() + 20\n"
        f"while not os.path.exists({path!r}) and time.time() < deadline:\n"
        "    time.sleep(0.01)\n"
        f"{then}\n"
    )


class Background:
    """Run ``function`` in a thread; `result` re-raises what it raised."""

    def __init__(self, function: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(function,), daemon=True)
        self._thread.start()

    def _run(self, function: Callable[[], Any]) -> None:
        try:
            self._value = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self._error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self, timeout: float = 30.0) -> Any:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"background call still running after {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value


SIX_CHILDREN = """
import os, time
children = []
for n in range(6):
    pid = os.fork()
    if pid == 0:
        block = b"x" * (150 * 1024 * 1024)  # resident: every page written
        print("held", n, flush=True)
        time.sleep(30)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print("all done", flush=True)
"""
"""Six children, each holding 150 MiB resident for 30 s: over a whole-sandbox memory limit, under a per-process one."""


REQUIRE_ISOLATION_ENV = "ACTORLOG_REQUIRE_ISOLATION"
"""Set to 1 (as `.ci/run` does) to make the isolation tests mandatory: where the kernel
refuses a namespace, or the tests are not run as root, they fail instead of skipping."""


def isolation_required() -> bool:
    """Whether a missing namespace or root is a failure here rather than a skip."""
    return os.environ.get(REQUIRE_ISOLATION_ENV) == "1"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test for ``reason``; where the isolation tests are mandatory, fail it instead."""
    if isolation_required():
        pytest.fail(f"{reason} ({REQUIRE_ISOLATION_ENV}=1: the isolation tests are mandatory here)")
    pytest.skip(reason)


def need_root(reason: str) -> None:
    """`skip_or_fail` unless the tests run as root."""
    if not IS_ROOT:
        skip_or_fail(reason)
