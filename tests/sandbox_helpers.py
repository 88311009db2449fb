"""Helpers for the Sandbox plugin tests (tests/test_example_sandbox.py).

The sandbox runs programs as ``nobody`` when the tests run as root, so whatever a
sandboxed program must reach (its interpreter, a gate file) has to be reachable by that
user; and the tests check that no process of the sandbox user is left behind.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def sandbox_processes() -> list[tuple[int, str]]:
    """(pid, state) of every process of the sandbox user (root runs) or child of this
    process (other runs), zombies included."""
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as file:
                data = file.read()
            uid = os.stat(f"/proc/{entry}").st_uid
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2 :].split()
        state, ppid = fields[0].decode(), int(fields[1])
        if (IS_ROOT and uid == SANDBOX_UID) or (not IS_ROOT and ppid == me):
            found.append((int(entry), state))
    return found


@contextmanager
def gate() -> Iterator[tuple[str, Callable[[], None]]]:
    """A file path a sandboxed program can wait for, and the function that creates it."""
    folder = tempfile.mkdtemp(prefix="sandbox-gate-")
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
