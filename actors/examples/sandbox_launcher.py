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
2. on Linux, when the spec asks for isolation, it moves into fresh namespaces, each where
   the kernel allows it, and says which in its first status line (a user namespace first
   when it is not root, which is what lets an unprivileged launcher make the others):

   - a **mount** namespace with one size-limited tmpfs (``tmp_bytes``) mounted on
     ``/tmp``, ``/var/tmp``, ``/dev/shm`` and ``/run/lock``, so nothing written there
     outlives the sandbox or is seen by anyone else; the scratch directory stays visible
     where it was;
   - a **network** namespace holding only a loopback interface (unless ``network``);
   - an **IPC** namespace (System V shared memory and message queues of its own);
   - a **PID** namespace: the program runs under a small init (a fork of this launcher,
     pid 1 there) and no process of the sandbox outlives that init, which dies with the
     launcher (``PR_SET_PDEATHSIG``); the sandbox sees only its own processes in /proc;

3. it forks the program's process (under that init, with a PID namespace), which resets
   the signals Python changed, puts itself in a process group of its own, applies the
   resource limits (never above the host's own ceilings), sets ``PR_SET_NO_NEW_PRIVS``,
   drops to the sandbox user when ``uid`` is given and ``exec``\\ s ``argv`` (a failure
   is written to a pipe and ends the child with status 127);
4. it holds the whole sandbox's memory to ``memory_bytes``: in a cgroup v2 of its own
   under ``cgroup`` when the host found one it may write (``memory.max``, ``pids.max``),
   else by watching the resident memory of every process of the sandbox plus what its
   tmpfs holds, every ``watch_interval`` seconds, and killing the sandbox past the limit
   (``killed_for: "memory"``);
5. it writes ``{"child": PID, "isolation": {...}}`` on the status pipe, waits for the
   program, then kills its process group and every process left under the launcher and
   reaps them all;
6. it writes the `Report` on the status pipe and exits 0.

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
    from collections.abc import Callable
    from types import FrameType
    from typing import Any, TypedDict

    class Spec(TypedDict, total=False):
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
        isolate: bool
        """Make fresh namespaces where the kernel allows (Linux)."""
        network: bool
        """Keep the host's network (no network namespace)."""
        tmp_bytes: int
        """Size of the private tmpfs on /tmp, /var/tmp, /dev/shm and /run/lock."""
        memory_bytes: int
        """Memory of the whole sandbox: resident memory of its processes plus its tmpfs."""
        max_processes: int
        """Processes of the sandbox (``pids.max`` of its cgroup, when it has one)."""
        cgroup: str | None
        """A cgroup v2 directory the host may write, to make the sandbox's own cgroup under."""
        watch_interval: float
        """Seconds between two looks at the sandbox's memory (without a cgroup)."""
        private_tmp: bool
        """Set by the launcher: its private tmpfs is mounted (its use counts as memory)."""

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
        killed_for: str | None
        """``"memory"`` when the launcher killed the sandbox for going past ``memory_bytes``."""


# -- Linux system calls through the C library ------------------------------------------------------

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38
_PRIVATE_DIRS = (("/var/tmp", "var-tmp"), ("/dev/shm", "shm"), ("/run/lock", "run-lock"))
"""World-writable places other than /tmp, each given a directory of the sandbox's own tmpfs."""


class _Libc:
    """The few calls of the C library the launcher needs; each raises OSError on failure."""

    def __init__(self) -> None:
        import ctypes  # noqa: PLC0415 - only on Linux, and only when a sandbox starts

        self._ctypes = ctypes
        self._libc = ctypes.CDLL(None, use_errno=True)

    def _check(self, result: int, what: str) -> None:
        if result != 0:
            errno = self._ctypes.get_errno()
            raise OSError(errno, os.strerror(errno), what)

    def prctl(self, option: int, value: int) -> None:
        self._check(self._libc.prctl(option, value, 0, 0, 0), f"prctl({option})")

    def unshare(self, flags: int) -> None:
        self._check(self._libc.unshare(flags), "unshare")

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
        self._check(self._libc.mount(_c(source), target.encode(), _c(fstype), flags, _c(data)), f"mount {target}")


def _c(text: str | None) -> bytes | None:
    return text.encode() if text is not None else None


def _libc() -> _Libc | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return _Libc()
    except (OSError, ImportError):
        return None


def _problem(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__


# -- namespaces -------------------------------------------------------------------------------------


class _Isolation:
    """What the launcher managed to make, and why the rest could not be made."""

    def __init__(self) -> None:
        self.made: list[str] = []
        self.missing: dict[str, str] = {}
        self.memory = "per-process"
        self.private_tmp = False
        self.pid_namespace = False

    def document(self) -> dict[str, Any]:
        return {"made": self.made, "missing": self.missing, "memory": self.memory}


def _isolate(spec: Spec, libc: _Libc | None, isolation: _Isolation) -> None:
    """Enter fresh user, mount, network and IPC namespaces (before any thread starts: unshare
    refuses those to a threaded process). The PID namespace comes later (`_new_pid_namespace`)."""
    if libc is None:
        isolation.missing["namespaces"] = "not Linux, or the C library cannot be called"
        return
    _user_namespace(libc, isolation)
    wanted = [("mount", CLONE_NEWNS), ("ipc", CLONE_NEWIPC)]
    if not spec.get("network"):
        wanted.insert(1, ("network", CLONE_NEWNET))
    for name, flag in wanted:
        try:
            libc.unshare(flag)
        except OSError as exc:
            isolation.missing[name] = _problem(exc)
            continue
        try:
            if name == "mount":
                _private_tmp(spec, libc)
                isolation.private_tmp = True
            elif name == "network":
                _loopback_up()
        except OSError as exc:
            isolation.missing[{"mount": "private tmp", "network": "loopback"}.get(name, name)] = _problem(exc)
        isolation.made.append(name)


def _user_namespace(libc: _Libc, isolation: _Isolation) -> None:
    """When not root, a user namespace of its own, mapping this user to itself: in it, this
    process may make the other namespaces."""
    if os.geteuid() == 0:
        return
    uid, gid = os.geteuid(), os.getegid()
    try:
        libc.unshare(CLONE_NEWUSER)
        for name, text in (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as file:
                file.write(text)
        isolation.made.append("user")
    except OSError as exc:
        isolation.missing["user"] = _problem(exc)


def new_network_namespace() -> dict[str, Any]:
    """Move this process (single-threaded: the kernel refuses a threaded one) into a fresh
    network namespace with only loopback, through a user namespace of its own when not root,
    as a sandbox's launcher does; for `actorlog reproduce`'s child process too. Returns what
    was made and what was refused and why (`_Isolation.document`): ``"network"`` is in
    ``made`` only when the namespace exists."""
    isolation = _Isolation()
    libc = _libc()
    if libc is None:
        isolation.missing["network"] = "not Linux, or the C library cannot be called"
        return isolation.document()
    _user_namespace(libc, isolation)
    try:
        libc.unshare(CLONE_NEWNET)
    except OSError as exc:
        isolation.missing["network"] = _problem(exc)
        return isolation.document()
    isolation.made.append("network")
    try:
        _loopback_up()
    except OSError as exc:
        isolation.missing["loopback"] = _problem(exc)
    return isolation.document()


def _new_pid_namespace(libc: _Libc | None, isolation: _Isolation) -> None:
    """Have the next child start a PID namespace (as its pid 1). Last of all: a process that
    did this can start no more threads."""
    if libc is None:
        return
    try:
        libc.unshare(CLONE_NEWPID)
    except OSError as exc:
        isolation.missing["pid"] = _problem(exc)
        return
    isolation.made.append("pid")
    isolation.pid_namespace = True


def _private_tmp(spec: Spec, libc: _Libc) -> None:
    """One size-limited tmpfs on /tmp, /var/tmp, /dev/shm and /run/lock; the scratch
    directory stays where it was (bound back in when it was under one of them)."""
    scratch = spec["scratch"]
    held = os.open(scratch, os.O_PATH | os.O_DIRECTORY)
    try:
        libc.mount(None, "/", None, MS_REC | MS_PRIVATE, None)  # nothing done here reaches the host's mounts
        libc.mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(spec['tmp_bytes'])},mode=755")
        for sub in ("tmp", *(sub for _, sub in _PRIVATE_DIRS)):
            os.mkdir(f"/tmp/{sub}")
            os.chmod(f"/tmp/{sub}", 0o1777)
        for target, sub in _PRIVATE_DIRS:
            if os.path.isdir(target) and not os.path.islink(target):
                libc.mount(f"/tmp/{sub}", target, None, MS_BIND | MS_REC, None)
        libc.mount("/tmp/tmp", "/tmp", None, MS_BIND, None)  # /tmp shows the tmpfs's own tmp/ only
        if not _same_directory(scratch, held):
            os.makedirs(scratch, exist_ok=True)
            libc.mount(f"/proc/self/fd/{held}", scratch, None, MS_BIND, None)
    finally:
        os.close(held)


def _same_directory(path: str, fd: int) -> bool:
    try:
        here, there = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _loopback_up() -> None:
    """Bring up ``lo`` in a new network namespace (its only interface)."""
    import fcntl  # noqa: PLC0415 - only when a network namespace was made
    import socket  # noqa: PLC0415
    import struct  # noqa: PLC0415

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14s", b"lo", flags | iff_up, b""))


# -- memory of the whole sandbox ----------------------------------------------------------------------


class _Cgroup:
    """The sandbox's own cgroup v2 under the host's ``cgroup`` directory."""

    def __init__(self, parent: str, spec: Spec) -> None:
        self.path = os.path.join(parent, f"actorlog-sandbox-{os.getpid()}")
        os.mkdir(self.path)
        try:
            self._write("memory.max", str(int(spec["memory_bytes"])))
            self._write("pids.max", str(int(spec["max_processes"])))
            for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                if os.path.exists(os.path.join(self.path, name)):
                    self._write(name, value)
        except OSError:
            self.remove()
            raise

    def _write(self, name: str, value: str) -> None:
        with open(os.path.join(self.path, name), "w") as file:
            file.write(value)

    def add(self, pid: int) -> None:
        self._write("cgroup.procs", str(pid))

    def ran_out_of_memory(self) -> bool:
        try:
            with open(os.path.join(self.path, "memory.events")) as file:
                return any(line.split()[0] in ("oom_kill", "oom_group_kill") and int(line.split()[1]) > 0
                           for line in file if line.strip())
        except (OSError, ValueError, IndexError):
            return False

    def remove(self) -> None:
        try:
            if os.path.exists(os.path.join(self.path, "cgroup.kill")):
                self._write("cgroup.kill", "1")
            else:
                with open(os.path.join(self.path, "cgroup.procs")) as file:
                    for line in file:
                        try:
                            os.kill(int(line), signal.SIGKILL)
                        except (OSError, ValueError):
                            pass
        except OSError:
            pass
        for _ in range(200):  # the killed processes leave it a little later
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                select.select([], [], [], 0.01)


def _resident_bytes(pids: list[int]) -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as file:
                total += int(file.read().split()[1]) * page
        except (OSError, ValueError, IndexError):
            pass
    return total


def _tmp_used() -> int:
    try:
        stat = os.statvfs("/tmp")
    except OSError:
        return 0
    return (stat.f_blocks - stat.f_bfree) * stat.f_frsize


def _watch_memory(
    limit: int, interval: float, pids: Callable[[], list[int]], count_tmp: bool, over: Callable[[], None],
    done: threading.Event,
) -> None:
    """Every ``interval`` s until ``done``: when the resident memory of ``pids()`` (plus the
    private tmpfs) is over ``limit``, call ``over`` once and stop."""
    while not done.wait(interval):
        used = _resident_bytes(pids()) + (_tmp_used() if count_tmp else 0)
        if used > limit:
            over()
            return


def _processes(parent_of: Callable[[int], int | None], root: int, *, include_root: bool) -> list[int]:
    """Every process under ``root`` (by the parent each process in /proc names)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if entry.isdigit():
            parent = parent_of(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found, todo = ([root] if include_root else []), [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            found.append(pid)
            todo.append(pid)
    return found


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            data = stat.read()
        return int(data[data.rindex(b")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return None


# -- the launcher's state ---------------------------------------------------------------------------


class _Launch:
    """The launcher's state, shared by the main thread, the SIGTERM handler and the watchers."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.status = spec["status_fd"]
        self.child = 0
        self.stop = False
        self.orphaned = False
        self.killed_for: str | None = None

    def kill_child(self) -> None:
        """SIGKILL the program's process group and the program itself (once it exists); with a
        PID namespace the child is its init, whose death ends every process there."""
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

    def out_of_memory(self) -> None:
        self.killed_for = "memory"
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


def _exec_program(spec: Spec, libc: _Libc | None, err_r: int, err_w: int) -> None:
    """In the forked child: limits, no new privileges, privilege drop, ``exec``. Never returns."""
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
        if libc is not None:
            libc.prctl(PR_SET_NO_NEW_PRIVS, 1)  # no setuid program, no file capability gives it more
        uid, gid = spec["uid"], spec["gid"]
        if uid is not None:
            if gid is None:
                raise ValueError("the spec names a uid to switch to but no gid")
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
        os.chdir(spec["scratch"])
        os.execvp(spec["argv"][0], spec["argv"])
    except BaseException as exc:
        try:
            os.write(err_w, f"{type(exc).__name__}: {exc}".encode("utf-8", "replace"))
        finally:
            os._exit(127)


def _init(spec: Spec, libc: _Libc, err_r: int, err_w: int, go_r: int, report_w: int) -> None:
    """Pid 1 of the sandbox's PID namespace: wait for the go, fork the program, reap every
    process, watch the memory; when the program is gone, end every process left and report
    its status on ``report_w``. Never returns."""
    code = 0
    try:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the launcher's death ends the namespace
        go = os.read(go_r, 1)
        if not go:  # the launcher died before the go
            os._exit(1)
        os.close(go_r)
        try:  # a /proc of the namespace's own processes (in a mount namespace of init's own)
            libc.unshare(CLONE_NEWNS)
            libc.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
            own_proc = True
        except OSError:
            own_proc = False
        program = os.fork()
        if program == 0:
            os.close(report_w)
            _exec_program(spec, libc, err_r, err_w)
        os.close(err_w)
        os.close(err_r)
        done = threading.Event()
        over: list[bool] = []

        def exceeded() -> None:
            over.append(True)
            try:
                os.kill(-1, signal.SIGKILL)  # from pid 1: every other process of the namespace
            except OSError:
                pass

        if own_proc and go == b"w":  # the launcher has no cgroup to hold the memory: watch it here
            threading.Thread(target=_watch_memory, daemon=True, args=(
                int(spec["memory_bytes"]), float(spec.get("watch_interval", 0.05)),
                lambda: [int(e) for e in os.listdir("/proc") if e.isdigit() and e != "1"],
                bool(spec.get("private_tmp")), exceeded, done,
            )).start()
        status, usage = 0, None
        while True:
            pid, wait_status, rusage = os.wait4(-1, 0)
            if pid == program:
                status, usage = wait_status, rusage
                break
        done.set()
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        while True:
            try:
                os.wait()
            except ChildProcessError:
                break
        report = {
            "status": status, "cpu": usage.ru_utime + usage.ru_stime if usage else 0.0,
            "killed_for": "memory" if over else None,
        }
        os.write(report_w, (json.dumps(report) + "\n").encode())
    except BaseException:  # noqa: BLE001 - pid 1 must exit, whatever happened
        code = 1
    os._exit(code)


def _children() -> list[int]:
    """The pids of the launcher's children (the program, and orphans re-parented here)."""
    me = os.getpid()
    return [pid for pid in _processes(_parent, me, include_root=False) if _parent(pid) == me]


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


def _cgroup(spec: Spec, isolation: _Isolation) -> _Cgroup | None:
    parent = spec.get("cgroup")
    if not parent:
        return None
    try:
        group = _Cgroup(parent, spec)
    except OSError as exc:
        isolation.missing["cgroup"] = _problem(exc)
        return None
    isolation.memory = "cgroup"
    return group


def main(argv: list[str]) -> None:
    """Run the program ``argv[1]`` (a JSON `Spec`) describes, clean up, report."""
    spec: Spec = json.loads(argv[1])
    launch = _Launch(spec)
    os.set_inheritable(launch.status, False)
    signal.signal(signal.SIGTERM, launch.on_term)
    libc = _libc()
    if libc is not None:
        try:  # orphans of the program are re-parented here, so none escapes the clean-up
            libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
        except OSError:
            pass
    isolation = _Isolation()
    parent_fd = -1
    if spec.get("isolate"):
        try:  # the scratch directory's parent as the host sees it, to remove it from if the host dies
            parent_fd = os.open(os.path.dirname(spec["scratch"]) or ".", os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            pass
        _isolate(spec, libc, isolation)
    group = _cgroup(spec, isolation)
    spec["private_tmp"] = isolation.private_tmp
    threading.Thread(target=launch.watch_host, daemon=True).start()
    if spec.get("isolate"):
        _new_pid_namespace(libc, isolation)
    if group is None and spec.get("memory_bytes") and libc is not None and os.path.isdir("/proc/self"):
        isolation.memory = "watched"
    done = threading.Event()
    if isolation.memory == "watched" and not isolation.pid_namespace:  # with one, its init watches
        me = os.getpid()
        threading.Thread(target=_watch_memory, daemon=True, args=(
            int(spec["memory_bytes"]), float(spec.get("watch_interval", 0.05)),
            lambda: _processes(_parent, me, include_root=False), isolation.private_tmp, launch.out_of_memory, done,
        )).start()

    err_r, err_w = os.pipe()
    go_r, go_w = os.pipe()
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.close(report_r)
        if isolation.pid_namespace and libc is not None:
            _init(spec, libc, err_r, err_w, go_r, report_w)
        if not os.read(go_r, 1):  # wait until the launcher has put this process in its cgroup
            os._exit(1)
        os.close(go_r)
        os.close(report_w)
        _exec_program(spec, libc, err_r, err_w)
    launch.child = pid
    os.close(go_r)
    os.close(report_w)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    if group is not None:
        try:
            group.add(pid)
        except OSError as exc:  # then the sandbox's memory is watched by its init (or not at all)
            isolation.missing["cgroup"] = _problem(exc)
            isolation.memory = "watched" if isolation.pid_namespace else "per-process"
            group.remove()
            group = None
    os.write(go_w, b"w" if isolation.memory == "watched" else b"g")
    os.close(go_w)
    os.close(err_w)
    try:
        os.write(launch.status, (json.dumps({"child": pid, "isolation": isolation.document()}) + "\n").encode())
    except OSError:  # the host is already gone: clean up as if told to stop
        launch.host_gone()
    if launch.stop:
        launch.kill_child()
    _, wait_status, usage = os.wait4(pid, 0)
    done.set()
    error = _read_all(err_r)
    inner = _read_all(report_r)
    _kill_and_reap_everything(pid)
    cpu = usage.ru_utime + usage.ru_stime
    killed_for = launch.killed_for
    if inner:  # the init's report: the program's own status
        document = json.loads(inner.splitlines()[0])
        wait_status, cpu = int(document["status"]), max(cpu, float(document["cpu"]))
        killed_for = killed_for or document["killed_for"]
    if group is not None:
        if group.ran_out_of_memory():
            killed_for = "memory"
        group.remove()

    report: Report = {
        "exit_code": os.waitstatus_to_exitcode(wait_status),
        "signal": os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else None,
        "cpu": cpu,
        "exec_error": error.decode("utf-8", "replace") or None,
        "killed_for": killed_for,
    }
    if launch.orphaned:  # nobody will remove the scratch directory: do it here
        import shutil  # noqa: PLC0415 - only on this rare path: it costs each launcher's start a few ms otherwise

        if parent_fd >= 0:
            shutil.rmtree(os.path.basename(spec["scratch"]), ignore_errors=True, dir_fd=parent_fd)
        else:
            shutil.rmtree(spec["scratch"], ignore_errors=True)
    else:
        try:
            os.write(launch.status, (json.dumps(report) + "\n").encode())
        except OSError:
            pass


if __name__ == "__main__":
    main(sys.argv)
