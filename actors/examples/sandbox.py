"""The Sandbox plugin: untrusted commands and Python snippets in a limited child process.

::

    with ActorSystem("app.db") as system:
        system.register("sandbox", SandboxPlugin, config={"cpu_seconds": 5, "container_limit": 2})
        system.start()
        result = system.ask("sandbox", RunPython(code="print(6 * 7)"), timeout=60)
        assert result.stdout == "42\\n" and result.exit_code == 0

Each sandbox is a fresh scratch directory (removed afterwards, whatever happened) and a
child process with

- resource limits: CPU seconds (``RLIMIT_CPU``), address space (``RLIMIT_AS``), open
  files (``RLIMIT_NOFILE``), processes (``RLIMIT_NPROC``), file size (``RLIMIT_FSIZE``),
  no core dumps;
- a wall-clock timeout and a cap on the output it may print (each of stdout and stderr),
  past which the whole sandbox is killed;
- a minimal environment (``PATH``, ``HOME`` and ``TMPDIR`` pointing at the scratch
  directory, ``LANG``): nothing of the host's environment is inherited;
- when the host runs as root, an unprivileged user (``nobody`` by default): the kernel
  does not apply ``RLIMIT_NPROC`` to root, so without the switch a fork bomb would not be
  contained;
- ``PR_SET_NO_NEW_PRIVS`` (Linux): no setuid program or file capability gives it more;
- on Linux, where the kernel allows each (``isolate``, on by default), fresh namespaces:
  a *mount* namespace with a private, size-limited tmpfs (``tmp_bytes``) on ``/tmp``,
  ``/var/tmp``, ``/dev/shm`` and ``/run/lock`` (nothing written there outlives the
  sandbox or is seen by another), a *network* namespace with only a loopback interface
  (the host's 127.0.0.1 is out of reach; ``network=true`` keeps the host's network), an
  *IPC* namespace, and a *PID* namespace (the sandbox sees only its own processes, and
  none outlives its init, which dies with the launcher); a host that is not root gets
  them through a user namespace of its own;
- a memory limit for the whole sandbox (``memory_bytes``): a cgroup v2 of its own where
  one is delegated to this process (``cgroup``), else the resident memory of all its
  processes plus what its tmpfs holds, watched every ``watch_interval`` s (killed with
  reason ``memory``), besides each process's address-space limit.

How a sandbox runs: the host starts a small trusted *launcher*
(`actorlog.actors.examples.sandbox_launcher`, whose source the host's interpreter runs
with ``-c``, as the host's user, in a new session). The launcher makes itself a child
subreaper, enters the namespaces, forks the sandboxed program (under a small init of its
own when it has a PID namespace), applies the limits, drops privileges and ``exec``\\ s
it. When the program exits or the host asks it to stop (``SIGTERM``: wall timeout, too
much output, shutdown), the launcher kills the program's process group and then every
process left under it (orphans are re-parented to the launcher, even those that started
sessions of their own), reaps them all, and reports the program's exit status and CPU
time on a status pipe. If the host itself dies (even by SIGKILL), the launcher sees the
status pipe's reader vanish, does the same clean-up and removes the scratch directory.
So no sandboxed process, not even a zombie, outlives its sandbox, and nothing in the host
runs ``preexec_fn`` (unsafe in a threaded program such as the actor system).

What the launcher could not make is reported on its first status line; the plugin records
it at start (``sandbox.isolation``), logs a warning naming each missing namespace and why,
and shows it in its health detail (``not isolated: network (Operation not permitted)``).

Limits of the design, stated plainly: without a cgroup, ``RLIMIT_NPROC`` counts *all*
processes of the sandbox user, so concurrent sandboxes running as the same user share that
budget, and the memory limit is enforced by watching, so a fast allocation may overshoot
it for up to ``watch_interval`` s; the filesystem outside the private temporary
directories is the host's, as the sandbox user may access it (event logs are created
0600, so it cannot read them); where a namespace cannot be made (not Linux, no privilege,
a container that forbids it) its isolation is missing, as the plugin says; and when the
host is not root the program runs as the host's own user (in its own namespaces where it
has them).

Events (registered at import): ``sandbox.isolation`` (at start: the namespaces made, what
is missing and why, how memory is held), ``sandbox.created`` (id, mode, argv, user,
limits), then either ``sandbox.finished`` (exit code, duration, bounded excerpts of the
output, whether the output was truncated) or ``sandbox.killed`` (the reason: ``timeout``,
``cpu``, ``output``, ``file_size``, ``signal``, ``stopped`` or ``memory``, and the same
details). Output excerpts and argv are redacted (`actorlog.actors.redaction`) before they
are logged.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import pwd
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import msgspec

from actorlog.actors.examples import sandbox_launcher
from actorlog.actors.plugin import Health, Plugin, handler
from actorlog.actors.redaction import excerpt
from actorlog.events import Event, Message, register

if TYPE_CHECKING:
    from actorlog.actors.examples.sandbox_launcher import Spec

logger = logging.getLogger(__name__)

__all__ = [
    "FinishReason",
    "KillReason",
    "RunCommand",
    "RunPython",
    "SandboxConfig",
    "SandboxConfigError",
    "SandboxCreated",
    "SandboxError",
    "SandboxFinished",
    "SandboxFullError",
    "SandboxIsolation",
    "SandboxIsolationChecked",
    "SandboxKilled",
    "SandboxLimits",
    "SandboxPlugin",
    "SandboxResult",
    "SandboxRunner",
    "load_config",
]

KillReason = Literal["timeout", "cpu", "output", "file_size", "signal", "stopped", "memory"]
"""Why a sandbox was killed: its wall-clock timeout, its CPU limit, too much output, its
file-size limit, another signal (a crash, or a signal it sent itself), shutdown, or the
memory of the whole sandbox going past ``memory_bytes``."""

FinishReason = Literal["memory", "exec_failed"]
"""A note on a sandbox that exited by itself: it failed for lack of memory (its address
space limit), or its program could not be executed at all (exit code 127)."""

Mode = Literal["python", "command"]

_GRACE = 5.0
"""Seconds the host waits for the launcher after asking it to stop, before killing it."""

_MEMORY_MARKERS = ("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory")

Positive = Annotated[int, msgspec.Meta(ge=1)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]


# -- errors ------------------------------------------------------------------------------------


class SandboxError(RuntimeError):
    """A sandbox could not be run (no scratch directory, the launcher could not start, ...)."""


class SandboxFullError(SandboxError):
    """Every sandbox slot (``container_limit``) is in use and the policy refused to wait longer."""


class SandboxConfigError(ValueError):
    """The plugin's configuration is invalid; the message names the offending key."""


# -- configuration -------------------------------------------------------------------------------


class SandboxConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The Sandbox plugin's configuration (the plugin's ``config`` mapping, decoded).

    Every key is optional. Sizes are bytes, times seconds.
    """

    cpu_seconds: Positive = 10
    """CPU time the program may use (``RLIMIT_CPU``; SIGXCPU, then SIGKILL one second later)."""
    memory_bytes: Positive = 512 * 1024 * 1024
    """Memory of the whole sandbox: every process's resident memory plus what its private
    /tmp holds (a cgroup v2 ``memory.max`` where one is writable, else watched every
    ``watch_interval`` s; past it the sandbox is killed, reason ``memory``). Also each
    process's address space (``RLIMIT_AS``): a larger allocation fails (MemoryError)."""
    max_open_files: Positive = 64
    """Open file descriptors per process (``RLIMIT_NOFILE``)."""
    max_processes: Positive = 32
    """Processes of the sandbox user (``RLIMIT_NPROC``), counted across all its processes."""
    max_file_bytes: Positive = 16 * 1024 * 1024
    """Largest file the program may write (``RLIMIT_FSIZE``)."""
    max_output_bytes: Positive = 1024 * 1024
    """Output kept from each of stdout and stderr; more kills the sandbox (reason ``output``)."""
    wall_timeout: PositiveFloat = 30.0
    """Wall-clock time a sandbox may run; a message's ``timeout`` may shorten it, not extend it."""
    container_limit: Positive = 4
    """Sandboxes that may run at once."""
    when_full: Literal["wait", "refuse"] = "wait"
    """When every slot is taken: wait up to ``wait_timeout`` for one, or refuse at once."""
    wait_timeout: PositiveFloat = 60.0
    """How long the ``wait`` policy waits for a free slot before raising `SandboxFullError`."""
    python: str | None = None
    """The interpreter that runs `RunPython` snippets (in isolated mode, ``-I -S -B``).
    Default: the host's own interpreter when the sandbox user can run it, else the first
    ``python3`` on ``search_path`` that it can (a virtual environment under a private home
    directory is not readable by ``nobody``)."""
    run_as_user: str | None = None
    """The user sandboxes run as. Default: ``nobody`` when the host is root, else the host's
    own user; naming another user than the host's needs root."""
    scratch_root: str | None = None
    """Where scratch directories are made (default: the system's temporary directory).
    The sandbox user must be able to traverse it when names under it are used."""
    search_path: str = "/usr/bin:/bin"
    """``PATH`` inside the sandbox (how `RunCommand` finds a program given by name)."""
    event_output_chars: Annotated[int, msgspec.Meta(ge=0)] = 2048
    """Characters of stdout and stderr copied into ``sandbox.finished``/``sandbox.killed``."""
    isolate: bool = True
    """On Linux, run each sandbox in fresh mount, network, IPC and PID namespaces where the
    kernel allows (see the module's documentation); False runs it in the host's."""
    network: bool = False
    """Let sandboxed programs use the host's network (no network namespace of their own)."""
    tmp_bytes: Positive = 64 * 1024 * 1024
    """Size of the private tmpfs on /tmp, /var/tmp, /dev/shm and /run/lock (counted in ``memory_bytes``)."""
    cgroup: str | None = None
    """A cgroup v2 directory this process may write, with the memory and pids controllers
    enabled for its children, under which each sandbox gets a cgroup of its own. Default:
    this process's own cgroup, when it delegates them (it rarely does: give a delegated one)."""
    watch_interval: PositiveFloat = 0.05
    """Seconds between two looks at a sandbox's memory when no cgroup holds it."""


def load_config(config: Mapping[str, Any]) -> SandboxConfig:
    """Decode and check a plugin config; `SandboxConfigError` names the key at fault."""
    try:
        return msgspec.convert(dict(config), SandboxConfig)
    except msgspec.ValidationError as exc:
        keys = ", ".join(SandboxConfig.__struct_fields__)
        raise SandboxConfigError(f"invalid sandbox config: {exc} (valid keys: {keys})") from None


class SandboxIsolation(msgspec.Struct, frozen=True, kw_only=True):
    """What isolates the sandboxes on this machine (recorded in ``sandbox.isolation``)."""

    namespaces: tuple[str, ...] = ()
    """The namespaces each sandbox gets: ``mount`` (private /tmp, /var/tmp, /dev/shm,
    /run/lock), ``network`` (only loopback), ``ipc``, ``pid``, and ``user`` when the host is not root."""
    missing: dict[str, str] = msgspec.field(default_factory=dict)
    """What could not be made, and why (``{"network": "Operation not permitted"}``)."""
    memory: str = "per-process"
    """How ``memory_bytes`` holds: ``cgroup`` (the kernel's limit on the whole sandbox),
    ``watched`` (the whole sandbox's resident memory and tmpfs, checked every
    ``watch_interval`` s), or ``per-process`` (only each process's address space)."""
    no_cgroup: str = ""
    """Why no cgroup v2 holds the memory (empty when one does)."""
    no_new_privs: bool = False
    """Whether programs run with ``PR_SET_NO_NEW_PRIVS`` (no setuid or file capabilities)."""

    def summary(self) -> str:
        """One line for a health detail or a warning: what is not isolated, and why."""
        parts = [f"{name} ({why})" for name, why in sorted(self.missing.items())]
        return "not isolated: " + ", ".join(parts) if parts else ""


class SandboxLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The limits one sandbox ran under (recorded in ``sandbox.created``)."""

    cpu_seconds: int
    memory_bytes: int
    max_open_files: int
    max_processes: int
    max_file_bytes: int
    max_output_bytes: int
    wall_timeout: float


# -- messages, reply and events -----------------------------------------------------------------


@register
class RunPython(Message, tag="sandbox.run_python", frozen=True):
    """Run a Python snippet in a sandbox; the reply is a `SandboxResult`.

    The code is written to ``main.py`` in the scratch directory and run with the
    configured interpreter in isolated mode (no site-packages, no ``PYTHON*`` variables).
    ``timeout`` shortens the wall-clock timeout; ``stdin`` is the program's standard input.
    """

    code: str
    timeout: float | None = None
    stdin: str = ""


@register
class RunCommand(Message, tag="sandbox.run_command", frozen=True):
    """Run a program (``argv[0]``, looked up on the sandbox's ``PATH``) in a sandbox.

    The reply is a `SandboxResult`. A program that cannot be executed gives exit code 127
    and reason ``exec_failed``.
    """

    argv: tuple[str, ...]
    timeout: float | None = None
    stdin: str = ""


class SandboxResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a sandboxed program did.

    ``exit_code`` is the program's exit status, or minus the signal that killed it.
    ``killed`` is True when it was terminated by a signal, and ``reason`` says why (a
    `KillReason`); for a program that exited by itself ``reason`` is None or a
    `FinishReason`. ``truncated``: its output went past ``max_output_bytes`` and was cut.
    """

    sandbox_id: str
    exit_code: int
    stdout: str
    stderr: str
    duration: float
    truncated: bool = False
    killed: bool = False
    reason: str | None = None
    signal: int | None = None


@register
class SandboxCreated(Event, tag="sandbox.created", frozen=True):
    """A sandbox was created: a scratch directory and a limited child process."""

    redact_fields: ClassVar[tuple[str, ...]] = ("argv",)
    sandbox_id: str
    mode: Mode
    argv: tuple[str, ...]
    user: str
    limits: SandboxLimits


@register
class SandboxIsolationChecked(Event, tag="sandbox.isolation", frozen=True):
    """How sandboxes are isolated here, found when the plugin starts (by its first sandbox):
    a namespace or cgroup that could not be made is named in ``isolation.missing``."""

    platform: str
    isolation: SandboxIsolation


@register
class SandboxFinished(Event, tag="sandbox.finished", frozen=True):
    """A sandboxed program exited by itself. ``stdout``/``stderr`` are bounded excerpts;
    ``truncated`` says its output went past ``max_output_bytes``."""

    redact_fields: ClassVar[tuple[str, ...]] = ("stdout", "stderr")
    sandbox_id: str
    exit_code: int
    duration: float
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    reason: FinishReason | None = None


@register
class SandboxKilled(Event, tag="sandbox.killed", frozen=True):
    """A sandboxed program was killed; ``reason`` says why, ``signal`` by which signal."""

    redact_fields: ClassVar[tuple[str, ...]] = ("stdout", "stderr")
    sandbox_id: str
    reason: KillReason
    exit_code: int
    duration: float
    signal: int | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False


# -- the launcher: trusted code run in the child, around the sandboxed program -----------------


@functools.cache
def _launcher_source() -> str:
    """The launcher's program (`actorlog.actors.examples.sandbox_launcher`), run with ``-c``."""
    try:
        return inspect.getsource(sandbox_launcher)
    except (OSError, TypeError) as exc:
        raise SandboxError(
            f"cannot read the source of the sandbox launcher ({sandbox_launcher.__name__}): {exc}; "
            f"the package must be installed with its .py files"
        ) from exc


# -- running sandboxes ---------------------------------------------------------------------------


class _Identity(msgspec.Struct, frozen=True):
    name: str
    uid: int
    gid: int


class _Outcome(msgspec.Struct):
    exit_code: int
    signal: int | None
    cpu: float
    exec_error: str | None
    stdout: bytes
    stderr: bytes
    truncated: bool
    kill_reason: KillReason | None
    duration: float
    killed_for: str | None = None
    isolation: dict[str, Any] | None = None


class _Active:
    """One running sandbox, as far as other threads need it: to ask it to stop."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.reason: KillReason | None = None
        self._lock = threading.Lock()
        self._signalled = False
        self._done = False

    def kill(self, reason: KillReason) -> None:
        """Ask the launcher to kill the sandbox (once; the first reason wins)."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
            if self._done or self._signalled:
                return
            self._signalled = True
            try:  # the launcher is not reaped before `done`, so its pid cannot be reused
                os.kill(self.process.pid, signal.SIGTERM)
            except OSError:
                pass

    def done(self) -> None:
        with self._lock:
            self._done = True


def _sandbox_identity(name: str | None) -> _Identity | None:
    """The user to switch to, or None to stay the host's user (not root)."""
    if os.geteuid() == 0:
        name = name or "nobody"
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise SandboxConfigError(f"invalid sandbox config: run_as_user {name!r} is not a user on this system") from None
        if entry.pw_uid == 0:
            raise SandboxConfigError(
                f"invalid sandbox config: run_as_user {name!r} is root; sandboxes must run as an unprivileged "
                f"user (the kernel does not apply the process limit to root)"
            )
        return _Identity(name, entry.pw_uid, entry.pw_gid)
    if name is not None:
        try:
            current = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            current = str(os.geteuid())
        if name != current:
            raise SandboxConfigError(
                f"invalid sandbox config: run_as_user {name!r} needs root to switch users, but this process runs "
                f"as {current!r}; leave run_as_user unset"
            )
    return None


def _remove_tree(path: str) -> None:
    """Remove a scratch directory, even one whose program took permissions away."""
    try:
        shutil.rmtree(path)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    os.chmod(path, 0o700)
    for dirpath, dirnames, _ in os.walk(path):
        for name in dirnames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                os.chmod(full, 0o700)
    shutil.rmtree(path)


class SandboxRunner:
    """Runs sandboxes under one `SandboxConfig`, at most ``container_limit`` at once.

    Thread-safe: several threads may run sandboxes through one runner, and the limit
    holds across them (the plugin's handlers use one runner; an application may share a
    runner between threads directly). ``emit`` receives each ``sandbox.*`` event.
    """

    def __init__(self, config: SandboxConfig, *, emit: Callable[[Event], object] | None = None) -> None:
        self.config = config
        self.identity = _sandbox_identity(config.run_as_user)
        self.scratch_root = config.scratch_root or tempfile.gettempdir()
        self.python = config.python or sys.executable
        """The interpreter `run_python` uses (chosen by `check` when the config names none)."""
        self._python_chosen = config.python is not None
        self._emit = emit
        self._slots = threading.BoundedSemaphore(config.container_limit)
        self._lock = threading.Lock()
        self._in_use = 0
        self._waiting = 0
        self._active: set[_Active] = set()
        self._closed = False
        self.cgroup, self.cgroup_problem = _cgroup_parent(config.cgroup) if config.isolate else (None, "")
        """The cgroup v2 directory sandboxes get cgroups under, or None and why not."""
        self.isolation: SandboxIsolation | None = None
        """What isolated the last sandbox (None until one ran): its launcher reports it."""

    # -- capacity ----------------------------------------------------------------------------

    @property
    def limit(self) -> int:
        """How many sandboxes may run at once."""
        return self.config.container_limit

    @property
    def in_use(self) -> int:
        """How many sandboxes are running (or being set up) now."""
        with self._lock:
            return self._in_use

    @property
    def waiting(self) -> int:
        """How many callers are waiting for a free slot."""
        with self._lock:
            return self._waiting

    @property
    def user(self) -> str:
        """The name of the user sandboxes run as."""
        if self.identity is not None:
            return self.identity.name
        try:
            return pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            return str(os.geteuid())

    def _acquire(self) -> None:
        if self._closed:
            raise SandboxError("the sandbox runner is closed (its plugin stopped); no new sandbox can start")
        limit = self.config.container_limit
        if self.config.when_full == "refuse":
            if not self._slots.acquire(blocking=False):
                raise SandboxFullError(
                    f"all {limit} sandboxes are in use ({limit}/{limit}, container_limit={limit}) and "
                    f"when_full='refuse': try again later, or raise container_limit"
                )
        else:
            with self._lock:
                self._waiting += 1
            try:
                acquired = self._slots.acquire(timeout=self.config.wait_timeout)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not acquired:
                raise SandboxFullError(
                    f"all {limit} sandboxes stayed in use for wait_timeout={self.config.wait_timeout} s "
                    f"(container_limit={limit}, when_full='wait'): try again later, or raise container_limit"
                )
        with self._lock:
            self._in_use += 1

    def _release(self) -> None:
        with self._lock:
            self._in_use -= 1
        self._slots.release()

    def health(self) -> Health:
        """Healthy when the scratch root is writable; the detail reports capacity."""
        with self._lock:
            usage = f"{self._in_use}/{self.config.container_limit} sandboxes in use"
            if self._waiting:
                usage += f", {self._waiting} waiting"
        isolation = self.isolation.summary() if self.isolation is not None else ""
        if isolation:
            usage += f"; {isolation}"
        try:
            os.rmdir(tempfile.mkdtemp(prefix="actorlog-sandbox-check-", dir=self.scratch_root))
        except OSError as exc:
            return Health(False, f"scratch root {self.scratch_root} is not writable ({exc.strerror or exc}); {usage}")
        return Health(True, usage)

    def close(self) -> None:
        """Refuse new sandboxes and kill the running ones (reason ``stopped``)."""
        with self._lock:
            self._closed = True
            active = list(self._active)
        for run in active:
            run.kill("stopped")

    # -- running -----------------------------------------------------------------------------

    def run_python(self, code: str, *, timeout: float | None = None, stdin: str = "") -> SandboxResult:
        """Run a Python snippet in a sandbox (see `RunPython`)."""
        if not self._python_chosen:
            self.check()
        argv = (self.python, "-I", "-S", "-B", "main.py")
        return self._run("python", argv, timeout, stdin, {"main.py": code})

    def run_command(self, argv: Sequence[str], *, timeout: float | None = None, stdin: str = "") -> SandboxResult:
        """Run a program in a sandbox (see `RunCommand`)."""
        if not argv:
            raise ValueError("a sandboxed command needs a program to run: argv is empty")
        return self._run("command", tuple(argv), timeout, stdin, {})

    def check(self) -> None:
        """Run the interpreter once as the sandbox user; `SandboxError` says what is wrong.

        Without a configured ``python``, this is also where the interpreter is chosen:
        the host's own, else the first ``python3`` on ``search_path`` the user can run.
        """
        if self.config.python is not None:
            problem = self._try_interpreter(self.config.python)
            if problem is not None:
                raise SandboxError(
                    f"the sandbox user {self.user!r} cannot run the Python interpreter {self.config.python!r} "
                    f"({problem}); set the `python` config key to an interpreter that user can execute and read, "
                    f"for example /usr/bin/python3"
                )
            return
        tried: list[str] = []
        for candidate in self._interpreter_candidates():
            problem = self._try_interpreter(candidate)
            if problem is None:
                self.python, self._python_chosen = candidate, True
                return
            tried.append(f"{candidate}: {problem}")
        raise SandboxError(
            f"the sandbox user {self.user!r} can run none of the Python interpreters tried ({'; '.join(tried)}); "
            f"set the `python` config key to an interpreter that user can execute and read"
        )

    def _interpreter_candidates(self) -> list[str]:
        candidates = [sys.executable] if sys.executable else []
        for directory in self.config.search_path.split(os.pathsep):
            path = os.path.join(directory, "python3")
            if directory and os.access(path, os.X_OK) and path not in candidates:
                candidates.append(path)
        return candidates

    def _try_interpreter(self, python: str) -> str | None:
        """None when the sandbox user can run ``python``, else what went wrong."""
        scratch = self._make_scratch({})
        try:
            outcome = self._execute((python, "-I", "-S", "-B", "-c", "pass"), scratch,
                                    min(self.config.wall_timeout, 30.0), "", None)
        finally:
            _remove_tree(scratch)
        if outcome.exit_code == 0:
            return None
        detail = outcome.exec_error or outcome.stderr.decode("utf-8", "replace").strip()[-500:]
        return f"exit code {outcome.exit_code}: {detail or 'no output'}"

    def _wall_timeout(self, timeout: float | None) -> float:
        if timeout is None:
            return self.config.wall_timeout
        if not timeout > 0:
            raise ValueError(f"a sandbox timeout must be positive, got {timeout!r}")
        return min(timeout, self.config.wall_timeout)

    def _limits(self) -> SandboxLimits:
        c = self.config
        return SandboxLimits(
            cpu_seconds=c.cpu_seconds, memory_bytes=c.memory_bytes, max_open_files=c.max_open_files,
            max_processes=c.max_processes, max_file_bytes=c.max_file_bytes,
            max_output_bytes=c.max_output_bytes, wall_timeout=c.wall_timeout,
        )

    def _make_scratch(self, files: Mapping[str, str]) -> str:
        try:
            scratch = tempfile.mkdtemp(prefix="actorlog-sandbox-", dir=self.scratch_root)
        except OSError as exc:
            raise SandboxError(f"cannot create a scratch directory under {self.scratch_root}: {exc}") from exc
        try:
            for name, text in files.items():
                with open(os.path.join(scratch, name), "w", encoding="utf-8") as file:
                    file.write(text)
            if self.identity is not None:
                for name in (*files, ""):
                    os.chown(os.path.join(scratch, name), self.identity.uid, self.identity.gid)
        except BaseException:
            _remove_tree(scratch)
            raise
        return scratch

    def _run(
        self, mode: Mode, argv: tuple[str, ...], timeout: float | None, stdin: str, files: Mapping[str, str]
    ) -> SandboxResult:
        wall = self._wall_timeout(timeout)
        self._acquire()
        try:
            scratch = self._make_scratch(files)
            try:
                sandbox_id = uuid.uuid4().hex[:16]

                def created() -> None:
                    self._send(SandboxCreated(
                        sandbox_id=sandbox_id, mode=mode, argv=argv, user=self.user, limits=self._limits(),
                    ))

                outcome = self._execute(argv, scratch, wall, stdin, created)
            finally:
                _remove_tree(scratch)
        finally:
            self._release()
        killed, finished = self._classify(outcome)
        stdout = outcome.stdout.decode("utf-8", "replace")
        stderr = outcome.stderr.decode("utf-8", "replace")
        if finished == "exec_failed":
            stderr += f"sandbox: cannot run {argv[0]!r}: {outcome.exec_error}\n"
        result = SandboxResult(
            sandbox_id=sandbox_id, exit_code=outcome.exit_code, stdout=stdout, stderr=stderr,
            duration=outcome.duration, truncated=outcome.truncated, killed=killed is not None,
            reason=killed or finished, signal=outcome.signal,
        )
        n = self.config.event_output_chars
        # the logged excerpts are redacted before they are cut: a cut never keeps part of a secret
        out, err = excerpt(stdout, n, marker=""), excerpt(stderr, n, marker="")
        if killed is not None:
            self._send(SandboxKilled(
                sandbox_id=sandbox_id, reason=killed, exit_code=result.exit_code, duration=result.duration,
                signal=result.signal, stdout=out, stderr=err, truncated=result.truncated,
            ))
        else:
            self._send(SandboxFinished(
                sandbox_id=sandbox_id, exit_code=result.exit_code, duration=result.duration,
                stdout=out, stderr=err, truncated=result.truncated, reason=finished,
            ))
        return result

    def _send(self, event: Event) -> None:
        if self._emit is not None:
            self._emit(event)

    def _classify(self, outcome: _Outcome) -> tuple[KillReason | None, FinishReason | None]:
        """Why the program was killed, or a note on why it failed by itself (either may be None)."""
        if outcome.signal is not None:
            if outcome.kill_reason is not None:
                return outcome.kill_reason, None
            if outcome.killed_for == "memory":
                return "memory", None
            if outcome.signal == signal.SIGXCPU or (
                outcome.signal == signal.SIGKILL and outcome.cpu >= self.config.cpu_seconds
            ):
                return "cpu", None
            if outcome.signal == signal.SIGXFSZ:
                return "file_size", None
            return "signal", None
        if outcome.exec_error is not None:
            return None, "exec_failed"
        if outcome.exit_code != 0 and any(marker.encode() in outcome.stderr for marker in _MEMORY_MARKERS):
            return None, "memory"
        return None, None

    def _environment(self, scratch: str) -> dict[str, str]:
        return {
            "PATH": self.config.search_path,
            "HOME": scratch,
            "TMPDIR": scratch,
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def _spec(self, argv: tuple[str, ...], status_fd: int, scratch: str) -> str:
        c = self.config
        limits = [
            ("RLIMIT_CPU", c.cpu_seconds, c.cpu_seconds + 1),
            ("RLIMIT_AS", c.memory_bytes, c.memory_bytes),
            ("RLIMIT_NOFILE", c.max_open_files, c.max_open_files),
            ("RLIMIT_NPROC", c.max_processes, c.max_processes),
            ("RLIMIT_FSIZE", c.max_file_bytes, c.max_file_bytes),
            ("RLIMIT_CORE", 0, 0),
        ]
        identity = self.identity
        spec: Spec = {
            "argv": list(argv), "limits": limits, "status_fd": status_fd, "scratch": scratch,
            "uid": identity.uid if identity else None, "gid": identity.gid if identity else None,
            "isolate": c.isolate, "network": c.network, "tmp_bytes": c.tmp_bytes, "memory_bytes": c.memory_bytes,
            "max_processes": c.max_processes, "cgroup": self.cgroup, "watch_interval": c.watch_interval,
        }
        return json.dumps(spec)

    def _execute(
        self, argv: tuple[str, ...], scratch: str, wall: float, stdin: str, created: Callable[[], None] | None
    ) -> _Outcome:
        launcher = sys.executable or self.python
        source = _launcher_source()
        status_r, status_w = os.pipe()
        try:
            with tempfile.TemporaryFile() as stdin_file:
                stdin_file.write(stdin.encode("utf-8"))
                stdin_file.seek(0)
                started = time.monotonic()
                process = subprocess.Popen(
                    [launcher, "-I", "-S", "-c", source, self._spec(argv, status_w, scratch)],
                    stdin=stdin_file, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=scratch,
                    env=self._environment(scratch), start_new_session=True, pass_fds=(status_w,), bufsize=0,
                )
        except OSError as exc:
            os.close(status_r)
            raise SandboxError(f"cannot start the sandbox launcher {launcher!r}: {exc}") from exc
        finally:
            os.close(status_w)
        active = _Active(process)
        with self._lock:
            self._active.add(active)
            closed = self._closed
        if closed:
            active.kill("stopped")
        try:
            if created is not None:
                created()
            return self._supervise(process, status_r, started, wall, active)
        finally:
            with self._lock:
                self._active.discard(active)
            os.close(status_r)
            if process.returncode is None:  # only after an error in the host: leave nothing behind
                active.kill("stopped")
                try:
                    process.wait(_GRACE)
                except subprocess.TimeoutExpired:
                    _kill_group(process.pid)
                    process.wait()
                for stream in (process.stdout, process.stderr):
                    if stream is not None:
                        stream.close()

    def _supervise(
        self, process: subprocess.Popen[bytes], status_r: int, started: float, wall: float, active: _Active
    ) -> _Outcome:
        assert process.stdout is not None and process.stderr is not None
        cap = self.config.max_output_bytes
        out_fd, err_fd = process.stdout.fileno(), process.stderr.fileno()
        streams: dict[int, bytearray] = {out_fd: bytearray(), err_fd: bytearray()}
        status = bytearray()
        truncated = False
        child: int | None = None
        deadline = started + wall
        force_at: float | None = None
        with selectors.DefaultSelector() as selector:
            for fd in (out_fd, err_fd, status_r):
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map():
                now = time.monotonic()
                if active.reason is None and now >= deadline:
                    active.kill("timeout")
                if active.reason is not None and force_at is None:
                    force_at = now + _GRACE
                if force_at is not None and now >= force_at:  # the launcher did not finish: kill it all
                    _kill_group(process.pid)
                    if child is not None:
                        _kill_group(child)
                    break
                until = force_at if force_at is not None else deadline
                for key, _ in selector.select(min(max(until - now, 0.0), 1.0)):
                    data = os.read(key.fd, 65536)
                    if not data:
                        selector.unregister(key.fd)
                    elif key.fd == status_r:
                        status += data
                        if child is None and b"\n" in status:
                            first = json.loads(bytes(status).split(b"\n", 1)[0])
                            child = first.get("child")
                            self._isolated(first.get("isolation"))
                    else:
                        kept = streams[key.fd]
                        room = cap - len(kept)
                        if len(data) > room:
                            kept += data[: max(room, 0)]
                            truncated = True
                            active.kill("output")
                        else:
                            kept += data
        try:
            process.wait(_GRACE)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait()
        finally:
            active.done()
            process.stdout.close()
            process.stderr.close()
        duration = time.monotonic() - started
        report: dict[str, Any] = {}
        for line in bytes(status).splitlines():
            document = json.loads(line)
            if "exit_code" in document:
                report = document
        code = process.returncode
        if not report and code >= 0 and active.reason is None:
            tail = bytes(streams[err_fd][-2000:]).decode("utf-8", "replace").strip()
            raise SandboxError(f"the sandbox launcher failed (exit code {code}) without a report: {tail}")
        if not report:  # the launcher was killed before it could report
            report = {
                "exit_code": code, "signal": -code if code < 0 else None, "cpu": 0.0, "exec_error": None,
            }
        return _Outcome(
            exit_code=int(report["exit_code"]), signal=report["signal"], cpu=float(report["cpu"]),
            exec_error=report["exec_error"], stdout=bytes(streams[out_fd]), stderr=bytes(streams[err_fd]),
            truncated=truncated, kill_reason=active.reason, duration=duration, killed_for=report.get("killed_for"),
        )

    def _isolated(self, reported: Any) -> None:
        """Keep what the launcher says isolated this sandbox (the cgroup's absence included)."""
        if not isinstance(reported, dict):
            return
        missing = {str(k): str(v) for k, v in dict(reported.get("missing") or {}).items()}
        no_cgroup = missing.pop("cgroup", "") or (self.cgroup_problem if self.cgroup is None else "")
        if not self.config.isolate:
            missing = {"namespaces": "isolate=false in the config"}
        if self.config.network and "network" not in missing:
            missing["network"] = "network=true in the config"
        self.isolation = SandboxIsolation(
            namespaces=tuple(str(n) for n in reported.get("made") or ()), missing=missing,
            memory=str(reported.get("memory", "per-process")), no_cgroup=no_cgroup,
            no_new_privs=sys.platform.startswith("linux"),
        )


def _cgroup_parent(configured: str | None) -> tuple[str | None, str]:
    """The cgroup v2 directory to make each sandbox's cgroup under, or None and why not."""
    if not sys.platform.startswith("linux"):
        return None, "no cgroup v2 (not Linux)"
    candidate = configured
    if candidate is None:
        try:
            with open("/proc/self/cgroup", encoding="utf-8") as file:
                own = next((line.strip()[3:] for line in file if line.startswith("0::")), None)
            with open("/proc/self/mountinfo", encoding="utf-8") as file:
                mount = next((line.split(" - ")[0].split()[4] for line in file
                              if " - cgroup2 " in line), None)
        except OSError:
            own = mount = None
        if own is None or mount is None:
            return None, "no cgroup v2 hierarchy is mounted"
        candidate = os.path.join(mount, own.lstrip("/"))
    try:
        with open(os.path.join(candidate, "cgroup.subtree_control"), encoding="utf-8") as file:
            delegated = file.read().split()
    except OSError as exc:
        return None, f"cgroup {candidate} cannot be read ({exc.strerror or exc})"
    lacking = [name for name in ("memory", "pids") if name not in delegated]
    if lacking:
        return None, f"cgroup v2 {candidate} does not enable {' and '.join(lacking)} for its children"
    if not os.access(candidate, os.W_OK):
        return None, f"cgroup v2 {candidate} is not writable by this process"
    return candidate, ""


def _kill_group(pgid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pgid, signal.SIGKILL)
        except OSError:
            pass




# -- the plugin ------------------------------------------------------------------------------------


class SandboxPlugin(Plugin):
    """Runs `RunPython` and `RunCommand` in sandboxes; replies with a `SandboxResult`.

    Config: the keys of `SandboxConfig` (an unknown key or a wrong type fails the start
    with `SandboxConfigError` naming the key). At start the plugin checks that the sandbox
    user can run the configured interpreter. Handlers run one at a time in the plugin's
    thread and wait for their sandbox, so give ``ask`` a timeout longer than
    ``wall_timeout``; the plugin's `runner` holds the ``container_limit``, which also
    applies to threads that use the runner directly. The health check reports capacity and fails
    when the scratch root is not writable. Each run is timed (``sandbox.duration``) and
    counted (``sandbox.runs`` by mode and outcome) in the metrics.
    """

    version = "1.0.0"

    runner: SandboxRunner

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        """Decode the config as `on_start` does (`load_config`), without starting anything."""
        load_config(config)

    def on_start(self) -> None:
        self.settings = load_config(self.config)
        self.runner = SandboxRunner(self.settings, emit=self.context.emit)
        if self.context.capabilities.allows("processes"):  # else nothing can run here, so nothing to check
            self.runner.check()
            isolation = self.runner.isolation
            if isolation is not None:  # what the check's sandbox got: say it at start, in the log
                self.context.emit(SandboxIsolationChecked(platform=sys.platform, isolation=isolation))
                if isolation.summary():
                    logger.warning("sandbox plugin %r: sandboxes are %s", self.context.name, isolation.summary())

    def on_stop(self) -> None:
        if hasattr(self, "runner"):
            self.runner.close()

    def on_shutdown(self) -> None:
        """The system is stopping: kill running sandboxes (reason ``stopped``) and take no more."""
        if hasattr(self, "runner"):
            self.runner.close()

    def health_check(self) -> Health:
        return self.runner.health()

    @handler
    def run_python(self, message: RunPython) -> SandboxResult:
        """Run a Python snippet."""
        self._permitted()
        return self._measured("python", self.runner.run_python(message.code, timeout=message.timeout, stdin=message.stdin))

    @handler
    def run_command(self, message: RunCommand) -> SandboxResult:
        """Run a program."""
        self._permitted()
        return self._measured("command", self.runner.run_command(message.argv, timeout=message.timeout, stdin=message.stdin))

    def _permitted(self) -> None:
        """Refuse to run anything where child processes are not allowed (reproducing a log of unknown origin)."""
        if not self.context.allows("processes"):
            raise SandboxError(
                "the sandbox refuses to run programs: child processes are not allowed here (reproducing a log "
                "of unknown origin); allow them with --allow-processes, or --trust"
            )

    def _measured(self, mode: Mode, result: SandboxResult) -> SandboxResult:
        outcome = f"killed_{result.reason}" if result.killed else ("ok" if result.exit_code == 0 else "failed")
        self.context.metrics.increment("sandbox.runs", tags={"mode": mode, "outcome": outcome})
        self.context.metrics.observe("sandbox.duration", result.duration, tags={"mode": mode})
        return result
