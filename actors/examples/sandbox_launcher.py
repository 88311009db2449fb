"""The sandbox launcher: trusted code that runs in the sandbox's child process, around the
sandboxed program.

`actorlog.actors.examples.sandbox.SandboxRunner` starts it with the host's own
interpreter, as the host's user, in a new session::

    python -I -S -c SOURCE SPEC

``SOURCE`` is the text of this module, ``SPEC`` a JSON `Spec`. The launcher therefore
imports nothing but the standard library: isolated mode (``-I -S``) sees no
site-packages, so not even ``actorlog`` is importable there. The host reads the source
once (``inspect.getsource``) and hands it over on the command line rather than this
file's path, so the launcher does not depend on where the package lies or who may read
it, a host keeps one launcher for its lifetime even if the package is upgraded under it,
and a process listing shows the launcher's code, as tools that look for leftover
launchers expect. The file also runs as a script (``python -I -S sandbox_launcher.py
SPEC``); importing it runs nothing.

What it does:

1. it makes itself a child subreaper (``PR_SET_CHILD_SUBREAPER``), so every orphan of the
   program, even one in a session of its own, is re-parented to the launcher;
2. it forks the program's process, which resets the signals Python changed, puts itself
   in a process group of its own, applies the resource limits (never above the host's
   own ceilings), drops to the sandbox user when ``uid`` is given and ``exec``\\ s
   ``argv`` (a failure is written to a pipe and ends the child with status 127);
3. it writes ``{"child": PID}`` on the status pipe, waits for the program, then kills its
   process group and every process left under the launcher and reaps them all;
4. it writes the `Report` on the status pipe and exits 0.

``SIGTERM`` (wall timeout, too much output, shutdown) kills the program at once; the
clean-up above follows. When the host dies (even by ``SIGKILL``), the status pipe's read
end closes: a watcher thread sees it, the launcher cleans up the same way and removes the
scratch directory itself, since no host is left to do it.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys
import threading
import warnings  # noqa: F401 - os.execvp imports it lazily, which the sandbox user may not be allowed to do

TYPE_CHECKING = False
"""`typing.TYPE_CHECKING` without importing `typing` (mypy treats any ``TYPE_CHECKING`` so):
the launcher starts once per sandbox, and the types below matter only to the type checker."""

__all__ = ["main"]

if TYPE_CHECKING:
    from types import FrameType
    from typing import TypedDict

    class Spec(TypedDict):
        """What the host asks the launcher to run (its command-line argument, as JSON)."""

        argv: list[str]
        """The program and its arguments (``argv[0]`` is looked up on ``PATH``)."""
        limits: list[tuple[str, int, int]]
        """``(RLIMIT_NAME, soft, hard)`` for each resource limit to apply."""
        status_fd: int
        """The write end of the status pipe, inherited from the host."""
        scratch: str
        """The scratch directory (the working directory), removed here if the host died."""
        uid: int | None
        """The user to switch to before ``exec`` (None: stay the host's user)."""
        gid: int | None
        """The group to switch to along with ``uid``."""

    class Report(TypedDict):
        """What the launcher reports on the status pipe when the program is gone."""

        exit_code: int
        """The program's exit status, or minus the signal that killed it."""
        signal: int | None
        """The signal that killed the program, if one did."""
        cpu: float
        """User plus system CPU seconds the program used."""
        exec_error: str | None
        """Why the program could not be started (``exec`` or a limit failed), if it could not."""


class _Launch:
    """The launcher's state, shared by the main thread, the SIGTERM handler and the watcher."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.status = spec["status_fd"]
        self.child = 0
        self.stop = False
        self.orphaned = False

    def kill_child(self) -> None:
        """SIGKILL the program's process group and the program itself (once it exists)."""
        if self.child:
            for kill, target in ((os.killpg, self.child), (os.kill, self.child)):
                try:
                    kill(target, signal.SIGKILL)
                except OSError:
                    pass

    def on_term(self, signum: int, frame: FrameType | None) -> None:
        """Stop: kill the program now; the main thread then cleans up and reports."""
        self.stop = True
        self.kill_child()

    def host_gone(self) -> None:
        """The host died: clean up as if told to stop, and remove the scratch directory too."""
        self.orphaned = True
        self.on_term(signal.SIGTERM, None)

    def watch_host(self) -> None:
        """Wait until the read end of the status pipe closes (the host died), then `host_gone`."""
        watcher = select.poll()
        watcher.register(self.status, 0)  # POLLERR comes when the reader is gone
        while not watcher.poll():
            pass
        self.host_gone()


def _exec_program(spec: Spec, err_r: int, err_w: int) -> None:
    """In the forked child: limits, privilege drop, ``exec``. Never returns."""
    try:
        for name in ("SIGTERM", "SIGPIPE", "SIGXFSZ"):  # Python ignores the last two; exec would keep that
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        os.close(err_r)
        os.setpgid(0, 0)
        for limit, soft, hard in spec["limits"]:
            which = getattr(resource, limit)
            ceiling = resource.getrlimit(which)[1]
            if ceiling != resource.RLIM_INFINITY:  # never more than the host has
                soft, hard = min(soft, ceiling), min(hard, ceiling)
            resource.setrlimit(which, (soft, hard))
        uid, gid = spec["uid"], spec["gid"]
        if uid is not None:
            if gid is None:
                raise ValueError("the spec names a uid to switch to but no gid")
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        os.execvp(spec["argv"][0], spec["argv"])
    except BaseException as exc:
        try:
            os.write(err_w, f"{type(exc).__name__}: {exc}".encode("utf-8", "replace"))
        finally:
            os._exit(127)


def _children() -> list[int]:
    """The pids of the launcher's children (the program, and orphans re-parented here)."""
    me = os.getpid()
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    data = stat.read()
                if int(data[data.rindex(b")") + 2 :].split()[1]) == me:
                    found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def _read_all(fd: int) -> bytes:
    data = b""
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return data
        data += chunk


def _kill_and_reap_everything(child: int) -> None:
    """Kill the program's process group, then every process left under the launcher, and reap them all."""
    try:
        os.killpg(child, signal.SIGKILL)
    except OSError:
        pass
    while True:
        for leftover in _children():
            try:
                os.kill(leftover, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break


def main(argv: list[str]) -> None:
    """Run the program ``argv[1]`` (a JSON `Spec`) describes, clean up, report."""
    spec: Spec = json.loads(argv[1])
    launch = _Launch(spec)
    os.set_inheritable(launch.status, False)
    signal.signal(signal.SIGTERM, launch.on_term)
    try:  # orphans of the program are re-parented here, so none escapes the clean-up
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except Exception:
        pass

    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _exec_program(spec, err_r, err_w)
    launch.child = pid
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    threading.Thread(target=launch.watch_host, daemon=True).start()
    os.close(err_w)
    try:
        os.write(launch.status, (json.dumps({"child": pid}) + "\n").encode())
    except OSError:  # the host is already gone: clean up as if told to stop
        launch.host_gone()
    if launch.stop:
        launch.kill_child()
    _, wait_status, usage = os.wait4(pid, 0)
    error = _read_all(err_r)
    _kill_and_reap_everything(pid)

    report: Report = {
        "exit_code": os.waitstatus_to_exitcode(wait_status),
        "signal": os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else None,
        "cpu": usage.ru_utime + usage.ru_stime,
        "exec_error": error.decode("utf-8", "replace") or None,
    }
    if launch.orphaned:  # nobody will remove the scratch directory: do it here
        import shutil  # only on this rare path: it costs each launcher's start a few ms otherwise

        shutil.rmtree(spec["scratch"], ignore_errors=True)
    else:
        try:
            os.write(launch.status, (json.dumps(report) + "\n").encode())
        except OSError:
            pass


if __name__ == "__main__":
    main(sys.argv)
