"""The Sandbox example plugin: limits really enforced on real child processes.

A CPU loop is killed, a memory hog refused, a fork bomb contained (as root, the sandbox
first drops to ``nobody``, because the kernel does not apply the process limit to root),
output truncated, the scratch directory removed, the environment minimal; the
container limit refuses or queues; events are logged; no process is left behind.
Timeouts here are safety nets: no test asserts on durations.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actor_helpers import read_log, wait_until
from actorlog.actors import ActorSystem, Health, StartError
from actorlog.actors.examples.sandbox import (
    RunCommand,
    RunPython,
    SandboxConfigError,
    SandboxCreated,
    SandboxError,
    SandboxFinished,
    SandboxFullError,
    SandboxKilled,
    SandboxPlugin,
    SandboxResult,
    load_config,
)
from actorlog.events import Event
from sandbox_helpers import (
    IS_ROOT,
    SANDBOX_UID,
    Background,
    adopting_orphans,
    config,
    descendants,
    end_new_processes,
    gate,
    runner,
    sandboxed_programs,
    wait_for_gate,
)

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def no_sandbox_processes_left() -> Iterator[None]:
    """No process the test's sandboxes started (zombies included) survives the test.

    Those are the processes under this one: while the test runs, orphans are re-parented
    here (`adopting_orphans`), so even a program that escaped its launcher is counted. The
    sandboxes of other programs (the demo running meanwhile), though they run as the same
    user, are not.
    """
    with adopting_orphans():
        before = {proc.key for proc in descendants()}
        yield
        left = [proc for proc in descendants() if proc.key not in before]
        still = end_new_processes(before) if left else []
    assert not left, (
        f"processes of this test's sandboxes left behind (ended now): {'; '.join(map(str, left))}"
        + (f"; could not end: {'; '.join(map(str, still))}" if still else "")
    )


def _scratch_of(result: SandboxResult) -> Path:
    line = next(line for line in result.stdout.splitlines() if line.startswith("cwd="))
    return Path(line.removeprefix("cwd="))


# -- limits --------------------------------------------------------------------------------------


def test_a_cpu_busy_loop_is_killed_by_the_cpu_limit() -> None:
    events: list[Event] = []
    result = runner(events, cpu_seconds=1, wall_timeout=20).run_python("while True:\n    pass\n")
    assert result.killed and result.reason == "cpu"
    assert result.signal in (signal.SIGXCPU, signal.SIGKILL) and result.exit_code == -result.signal
    created, killed = events
    assert isinstance(created, SandboxCreated) and created.limits.cpu_seconds == 1
    assert isinstance(killed, SandboxKilled) and killed.reason == "cpu" and killed.sandbox_id == created.sandbox_id


def test_a_memory_hog_is_refused_by_the_address_space_limit() -> None:
    code = "data = bytearray(2 * 1024 ** 3)\nprint('allocated')\n"
    result = runner(memory_bytes=256 * 1024 * 1024).run_python(code)
    assert result.exit_code != 0 and not result.killed
    assert "MemoryError" in result.stderr and "allocated" not in result.stdout
    assert result.reason == "memory"


FORK_BOMB = """
import os, time
forked = 0
try:
    for _ in range(200):
        pid = os.fork()
        if pid == 0:
            os.setsid()  # try to escape the process group as well
            time.sleep(60)
            os._exit(0)
        forked += 1
    print("unlimited", forked)
except BlockingIOError as exc:
    print("blocked", forked, exc.errno)
"""


def test_a_fork_bomb_is_contained_by_the_process_limit() -> None:
    sandbox = runner(max_processes=10)
    result = sandbox.run_python(FORK_BOMB)
    assert result.exit_code == 0, result.stderr
    verdict, forked, *_ = result.stdout.split()
    assert verdict == "blocked" and int(forked) < 10  # the snippet itself is one of the 10
    # the sleeping children (in sessions of their own) died with the sandbox: the fixture
    # checks none is left, and the sandbox user's process budget is free again
    assert sandbox.run_python("print('fine')").stdout == "fine\n"


@pytest.mark.skipif(not IS_ROOT, reason="the privilege drop only happens when the host is root")
def test_as_root_the_sandbox_runs_as_an_unprivileged_user() -> None:
    code = "import os\nprint(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())\n"
    uid, euid, gid, groups = runner().run_python(code).stdout.split(maxsplit=3)
    assert int(uid) == int(euid) == SANDBOX_UID != 0
    assert int(gid) != 0 and groups.strip() == "[]"
    assert runner().run_command(["sh", "-c", "touch /root/owned"]).exit_code != 0


def test_output_past_the_cap_is_truncated_and_the_flood_killed() -> None:
    events: list[Event] = []
    sandbox = runner(events, max_output_bytes=1000, event_output_chars=100)
    result = sandbox.run_python("while True:\n    print('x' * 100)\n")
    assert result.truncated and len(result.stdout) == 1000
    assert result.killed and result.reason == "output"
    killed = events[-1]
    assert isinstance(killed, SandboxKilled) and killed.truncated and len(killed.stdout) == 100
    small = sandbox.run_python("print('y' * 10)")
    assert not small.truncated and small.stdout == "y" * 10 + "\n"


def test_the_file_size_limit_stops_large_writes() -> None:
    result = runner(max_file_bytes=100_000).run_command(["sh", "-c", "exec head -c 1000000 /dev/zero > big"])
    assert result.killed and result.reason == "file_size" and result.signal == signal.SIGXFSZ
    python = runner(max_file_bytes=100_000).run_python("open('big', 'wb').write(bytes(1_000_000))\n")
    assert python.exit_code != 0 and "File too large" in python.stderr  # Python ignores SIGXFSZ


def test_the_open_files_limit_applies() -> None:
    code = (
        "files = []\n"
        "try:\n"
        "    while True:\n"
        "        files.append(open('/dev/null'))\n"
        "except OSError as exc:\n"
        "    print(len(files), exc.errno)\n"
    )
    opened, errno_ = runner(max_open_files=20).run_python(code).stdout.split()
    assert int(opened) < 20 and int(errno_) == 24  # EMFILE


def test_the_wall_timeout_kills_a_sleeping_child() -> None:
    result = runner(wall_timeout=20).run_python("import time\ntime.sleep(60)\n", timeout=0.5)
    assert result.killed and result.reason == "timeout" and result.signal == signal.SIGKILL


def test_the_scratch_directory_is_removed_whether_the_program_exits_or_is_killed() -> None:
    sandbox = runner()
    finished = sandbox.run_python("import os\nprint('cwd=' + os.getcwd())\nopen('left.txt', 'w').write('x')\n")
    killed = sandbox.run_python(  # killed for its output, which it floods only once 'sub' is made
        "import os\nprint('cwd=' + os.getcwd(), flush=True)\nos.mkdir('sub')\nos.chmod('sub', 0)\n"
        "while True:\n    print('x' * 100)\n",
    )
    assert finished.exit_code == 0 and killed.reason == "output"
    for result in (finished, killed):
        scratch = _scratch_of(result)
        assert scratch.name.startswith("actorlog-sandbox-")
        assert not scratch.exists()


def test_the_environment_is_minimal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOX_TEST_SECRET", "hunter2")
    result = runner().run_python("import os\nfor k in sorted(os.environ): print(k, os.environ[k])\nprint('cwd=' + os.getcwd())\n")
    assert "hunter2" not in result.stdout and "SANDBOX_TEST_SECRET" not in result.stdout
    env = dict(line.split(" ", 1) for line in result.stdout.splitlines() if not line.startswith("cwd="))
    scratch = str(_scratch_of(result))
    assert env == {
        "HOME": scratch, "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": scratch,
    }


def test_commands_stdin_and_programs_that_cannot_run() -> None:
    sandbox = runner()
    echoed = sandbox.run_command(["sh", "-c", "read line; echo \"got $line\"; exit 3"], stdin="hello\n")
    assert (echoed.exit_code, echoed.stdout, echoed.killed, echoed.reason) == (3, "got hello\n", False, None)
    missing = sandbox.run_command(["no-such-program-here"])
    assert missing.exit_code == 127 and missing.reason == "exec_failed"
    assert "no-such-program-here" in missing.stderr
    with pytest.raises(ValueError, match="argv is empty"):
        sandbox.run_command([])
    with pytest.raises(ValueError, match="must be positive"):
        sandbox.run_python("pass", timeout=0)


# -- capacity ------------------------------------------------------------------------------------


def test_the_refuse_policy_raises_a_clear_error_when_every_sandbox_is_busy() -> None:
    sandbox = runner(container_limit=1, when_full="refuse")
    with gate() as (path, release):
        first = Background(lambda: sandbox.run_python(wait_for_gate(path)))
        wait_until(lambda: sandbox.in_use == 1, what="the first sandbox to start")
        with pytest.raises(SandboxFullError, match=r"all 1 sandboxes are in use .*when_full='refuse'"):
            sandbox.run_python("print('second')")
        assert sandbox.health() == Health(True, "1/1 sandboxes in use")
        release()
        assert first.result().stdout == "through\n"
    assert sandbox.in_use == 0 and sandbox.run_python("print('again')").stdout == "again\n"


def test_the_wait_policy_queues_the_extra_sandbox_until_one_is_free() -> None:
    sandbox = runner(container_limit=1, when_full="wait", wait_timeout=30)
    with gate() as (path, release):
        first = Background(lambda: sandbox.run_python(wait_for_gate(path, "print('first')")))
        wait_until(lambda: sandbox.in_use == 1, what="the first sandbox to start")
        second = Background(lambda: sandbox.run_python("print('second')"))
        wait_until(lambda: sandbox.waiting == 1, what="the second caller to wait")
        assert not second.done and sandbox.in_use == 1
        assert sandbox.health().detail == "1/1 sandboxes in use, 1 waiting"
        release()
        assert first.result().stdout == "first\n"
        assert second.result().stdout == "second\n"
    assert (sandbox.in_use, sandbox.waiting) == (0, 0)


def test_the_wait_policy_gives_up_after_its_wait_timeout() -> None:
    sandbox = runner(container_limit=1, when_full="wait", wait_timeout=0.2)
    with gate() as (path, release):
        first = Background(lambda: sandbox.run_python(wait_for_gate(path)))
        wait_until(lambda: sandbox.in_use == 1, what="the first sandbox to start")
        with pytest.raises(SandboxFullError, match=r"stayed in use for wait_timeout=0.2 s"):
            sandbox.run_python("print('second')")
        release()
        first.result()


def test_closing_the_runner_kills_running_sandboxes_and_refuses_new_ones() -> None:
    sandbox = runner()
    running = Background(lambda: sandbox.run_python("import time\ntime.sleep(60)\n"))
    wait_until(lambda: sandbox.in_use == 1, what="the sandbox to start")
    wait_until(sandboxed_programs, timeout=60, what="the sandboxed program to run")
    sandbox.close()
    result = running.result()
    assert result.killed and result.reason == "stopped"
    with pytest.raises(SandboxError, match="closed"):
        sandbox.run_python("pass")


def test_the_leak_check_sees_a_program_that_lost_its_launcher() -> None:
    """The fixture's check is not vacuous: a sandboxed program whose launcher dies (here
    killed from outside, so nothing cleans up after it) is re-parented to this process,
    though it runs in another session, and so still counts among its descendants. (Without
    namespaces: with a PID namespace, nothing survives its launcher; see the next test.)"""
    sandbox = runner(wall_timeout=60, isolate=False)
    with adopting_orphans():
        running = Background(lambda: sandbox.run_command(["sleep", "120"]))
        (program,) = wait_until(sandboxed_programs, timeout=60, what="the sandboxed program to run")

        def its_launcher() -> list[Any]:
            # read afresh: between its launcher's fork and exec, the program's parent is still moving
            procs = descendants()
            now = [proc for proc in procs if proc.key == program.key]
            return [proc for proc in procs if now and proc.pid == now[0].ppid and proc.launcher]

        (launcher,) = wait_until(its_launcher, timeout=60, what="the program's launcher")
        assert launcher.launcher and os.getsid(program.pid) != os.getsid(0)
        os.kill(launcher.pid, signal.SIGKILL)
        wait_until(lambda: [p for p in descendants() if p.key == program.key and p.ppid == os.getpid()],
                   timeout=60, what="the program to be re-parented to the test process")
        os.kill(program.pid, signal.SIGKILL)  # now this process's child: end and reap it here
        os.waitpid(program.pid, 0)
        result = running.result(timeout=60)
    assert result.killed and result.reason == "signal" and result.signal == signal.SIGKILL


def test_with_a_pid_namespace_nothing_outlives_a_killed_launcher() -> None:
    """The launcher killed from outside (nothing of it cleans up): the sandbox's init dies
    with it, and with the init every process of the sandbox."""
    sandbox = runner(wall_timeout=60)
    if sandbox.run_python("pass").exit_code != 0 or sandbox.isolation is None or "pid" not in sandbox.isolation.namespaces:
        pytest.skip("no PID namespace here: " + (sandbox.isolation.summary() if sandbox.isolation else "unknown"))
    with adopting_orphans():
        running = Background(lambda: sandbox.run_command(["sleep", "120"]))
        (program,) = wait_until(sandboxed_programs, timeout=60, what="the sandboxed program to run")
        (init,) = [proc for proc in descendants() if proc.pid == program.ppid]
        (launcher,) = [proc for proc in descendants() if proc.pid == init.ppid]
        assert init.launcher and launcher.launcher and launcher.ppid == os.getpid()
        os.kill(launcher.pid, signal.SIGKILL)
        result = running.result(timeout=60)
        assert not [proc for proc in descendants() if proc.key == program.key]
        # the dead init was re-parented here (this process adopts orphans): a zombie to reap, nothing alive
        (left,) = [proc for proc in descendants() if proc.key == init.key] or [None]
        if left is not None:
            assert left.state == "Z" and left.ppid == os.getpid()
            os.waitpid(left.pid, 0)
    assert result.killed and result.reason == "signal" and result.signal == signal.SIGKILL


def test_health_reports_capacity_and_an_unwritable_scratch_root(tmp_path: Path) -> None:
    assert runner(container_limit=3).health() == Health(True, "0/3 sandboxes in use")
    missing = tmp_path / "gone"
    health = runner(scratch_root=str(missing)).health()
    assert not health.healthy and f"scratch root {missing} is not writable" in health.detail
    assert health.detail.endswith("0/2 sandboxes in use")


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "key"),
    [
        ({"cpu_secnds": 1}, "cpu_secnds"),
        ({"cpu_seconds": "1"}, "cpu_seconds"),
        ({"memory_bytes": 0}, "memory_bytes"),
        ({"when_full": "drop"}, "when_full"),
        ({"wall_timeout": -1}, "wall_timeout"),
    ],
)
def test_config_errors_name_the_key(bad: dict[str, object], key: str) -> None:
    with pytest.raises(SandboxConfigError, match=key):
        load_config(bad)


@pytest.mark.skipif(not IS_ROOT, reason="only root can switch users")
def test_run_as_user_must_be_an_unprivileged_user() -> None:
    with pytest.raises(SandboxConfigError, match="is root"):
        runner(run_as_user="root")
    with pytest.raises(SandboxConfigError, match="not a user"):
        runner(run_as_user="no-such-user-xyz")


# -- the plugin in an actor system ---------------------------------------------------------------


def test_the_plugin_runs_sandboxes_and_logs_their_events(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("sandbox", SandboxPlugin, config=config(container_limit=2))
        system.start()
        ok = system.ask("sandbox", RunPython(code="print(6 * 7)"), timeout=30)
        slow = system.ask("sandbox", RunPython(code="import time\ntime.sleep(60)\n", timeout=0.5), timeout=30)
        listed = system.ask("sandbox", RunCommand(argv=("sh", "-c", "echo $HOME")), timeout=30)
        assert system.check_health("sandbox") == {"sandbox": Health(True, "0/2 sandboxes in use")}
    assert isinstance(ok, SandboxResult) and (ok.exit_code, ok.stdout, ok.killed) == (0, "42\n", False)
    assert slow.killed and slow.reason == "timeout"
    assert listed.exit_code == 0 and "actorlog-sandbox-" in listed.stdout
    records = read_log(path, kinds=["sandbox.created", "sandbox.finished", "sandbox.killed"])
    assert all(r.actor == "sandbox" for r in records)
    created = [r.event for r in records if r.kind == "sandbox.created"]
    assert [(e.sandbox_id, e.mode) for e in created] == [
        (ok.sandbox_id, "python"), (slow.sandbox_id, "python"), (listed.sandbox_id, "command"),
    ]
    assert created[2].argv == ("sh", "-c", "echo $HOME")
    if IS_ROOT:
        assert all(e.user == "nobody" for e in created)
    endings = {r.event.sandbox_id: r.event for r in records if r.kind != "sandbox.created"}
    assert isinstance(endings[ok.sandbox_id], SandboxFinished) and endings[ok.sandbox_id].stdout == "42\n"
    assert isinstance(endings[listed.sandbox_id], SandboxFinished)
    killed = endings[slow.sandbox_id]
    assert isinstance(killed, SandboxKilled) and killed.reason == "timeout"
    # every created sandbox ended, and each event shares its message's correlation
    assert len(records) == 6
    received = read_log(path, kinds=["message.received"])
    assert {r.correlation for r in received} == {r.correlation for r in records}


def test_a_bad_config_or_an_unusable_interpreter_fails_the_start_clearly(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "bad-config.db") as system:
        system.register("sandbox", SandboxPlugin, config=config(max_procs=3))
        with pytest.raises(StartError, match="unknown field `max_procs`"):
            system.start()
    with ActorSystem(tmp_path / "bad-python.db") as system:
        system.register("sandbox", SandboxPlugin, config=config(python="/no/such/python3"))
        with pytest.raises(StartError, match=r"cannot run the Python interpreter '/no/such/python3'.*`python` config key"):
            system.start()
