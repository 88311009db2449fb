"""Helpers of the fault suites (tests/test_fault_crash.py, tests/test_fault_overload.py) and of
``benchmarks/soak.py``, which runs the same checks for longer.

Crash: `kill_plan` draws, from a seed, when to kill the demo worker
(``tests/helpers/demo_worker.py``); `run_and_kill` runs and kills it; `CrashHistory`
keeps what every killed worker acknowledged; `crash_problems` checks a log after a kill;
`LeftoverWatch` finds sandbox processes that outlive their killed host.

Overload: `start_overload` runs ``tests/helpers/overload_worker.py``; `read_overload_log`
reads back what its run logged; `overload_problems` compares the two.

Every check returns a list of problems (empty: all is well) rather than asserting, so the
tests and the soak script report them the same way.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actorlog.replay.rebuild import rebuild
from actorlog.store import EventStore
from actorlog.store.errors import NotAnEventLogError

HELPERS = Path(__file__).parent / "helpers"
DEMO_WORKER = HELPERS / "demo_worker.py"
OVERLOAD_WORKER = HELPERS / "overload_worker.py"
ACTORLOG_CLI = Path(sys.executable).parent / "actorlog"
"""The ``actorlog`` console script installed next to the interpreter running the tests."""

MB = 2**20

# -- crash: the kill schedule -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KillPlan:
    """When to kill one worker: ``delay`` seconds after it is spawned or after it printed ``ready``."""

    seed: int
    index: int
    anchor: str
    """``"spawn"`` (the kill may land while the worker imports, opens or creates the log,
    registers or starts plugins) or ``"ready"`` (while the demo runs)."""
    delay: float
    worker_seed: int
    """The seed of the demo's tasks in the worker."""

    def describe(self) -> str:
        return (
            f"seed={self.seed} kill #{self.index}: SIGKILL {self.delay:.3f} s after {self.anchor} "
            f"(worker seed {self.worker_seed})"
        )


SPAWN_SHARE = 0.15
"""Share of kills timed from the spawn rather than from ``ready``."""
MAX_SPAWN_DELAY = 1.0
MAX_READY_DELAY = 1.5


def kill_plan(seed: int, index: int) -> KillPlan:
    """The plan of kill ``index`` of a run seeded ``seed``: the same seed and index always give the same plan."""
    rng = random.Random(f"actorlog-crash:{seed}:{index}")
    anchor = "spawn" if rng.random() < SPAWN_SHARE else "ready"
    delay = rng.uniform(0.0, MAX_SPAWN_DELAY if anchor == "spawn" else MAX_READY_DELAY)
    return KillPlan(seed=seed, index=index, anchor=anchor, delay=round(delay, 4), worker_seed=rng.randrange(1, 2**31))


# -- crash: running and killing the worker -------------------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    """A checkpoint the worker printed: ``flush()`` returned ``seq``, the row at ``seq`` had ``hash``,
    and (when ``tick >= 0``) every ``crash.tick`` counter up to ``tick`` was recorded before."""

    seq: int
    hash: str
    tick: int


@dataclass
class WorkerOutput:
    run: str | None = None
    acks: list[Ack] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def last_tick(self) -> int:
        return max((ack.tick for ack in self.acks), default=0)


def parse_worker_output(text: str) -> WorkerOutput:
    """The complete lines of the worker's stdout (a last line cut by the kill is ignored)."""
    output = WorkerOutput()
    lines = text.split("\n")[:-1]  # what follows the last newline is not a complete line
    for line in lines:
        word, _, rest = line.partition(" ")
        if word == "ready":
            output.run = rest
        elif word == "ack":
            seq, digest, tick = rest.split(" ")
            output.acks.append(Ack(int(seq), digest, int(tick)))
        elif word == "task":
            output.tasks.append(rest)
        else:
            output.errors.append(line)
    return output


@dataclass
class Killed:
    plan: KillPlan
    output: WorkerOutput
    returncode: int
    stderr: str
    killed_at: float
    """``time.monotonic()`` when the SIGKILL was sent."""


def run_and_kill(path: Path, plan: KillPlan, scratch: Path, workdir: Path, *, ready_timeout: float = 120.0) -> Killed:
    """Start the demo worker on ``path`` and SIGKILL it as ``plan`` says; its stdout and
    stderr are kept in ``workdir`` (``kill-NNNN.out``/``.err``)."""
    out_path = workdir / f"kill-{plan.index:04d}.out"
    err_path = workdir / f"kill-{plan.index:04d}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, str(DEMO_WORKER), str(path), str(plan.worker_seed), str(scratch)],
            stdout=out, stderr=err, stdin=subprocess.DEVNULL,
        )
    try:
        if plan.anchor == "ready":
            deadline = time.monotonic() + ready_timeout
            while process.poll() is None and b"ready " not in out_path.read_bytes():
                if time.monotonic() > deadline:
                    break  # killed all the same; the missing ready line is reported by the checks
                time.sleep(0.005)
        time.sleep(plan.delay)
        killed_at = time.monotonic()
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return Killed(
        plan=plan, output=parse_worker_output(out_path.read_text()), returncode=process.returncode,
        stderr=err_path.read_text(errors="replace"), killed_at=killed_at,
    )


# -- crash: what was acknowledged, and the checks ------------------------------------------------------------------


@dataclass
class CrashHistory:
    """Everything the killed workers of one log acknowledged."""

    acked: dict[int, str] = field(default_factory=dict)
    """seq -> hash of every acknowledged checkpoint."""
    ticks: dict[str, int] = field(default_factory=dict)
    """run -> the highest acknowledged tick of that run."""
    conflicts: list[str] = field(default_factory=list)

    def add(self, killed: Killed) -> None:
        for ack in killed.output.acks:
            known = self.acked.setdefault(ack.seq, ack.hash)
            if known != ack.hash:
                self.conflicts.append(f"seq {ack.seq} was acknowledged with hash {known[:12]} and later {ack.hash[:12]}")
        if killed.output.run is not None:
            self.ticks[killed.output.run] = max(self.ticks.get(killed.output.run, 0), killed.output.last_tick)

    @property
    def last_acked(self) -> int:
        return max(self.acked, default=0)


def worker_problems(killed: Killed) -> list[str]:
    """The worker must have been killed by us (not died on its own) and printed nothing unexpected."""
    problems = []
    if killed.returncode != -signal.SIGKILL:
        problems.append(f"the worker exited by itself with {killed.returncode} before the kill; stderr: {killed.stderr[-3000:]}")
    if killed.output.errors:
        problems.append(f"the worker reported: {killed.output.errors}")
    if killed.plan.anchor == "ready" and killed.output.run is None:
        problems.append(f"the worker never printed ready; stderr: {killed.stderr[-3000:]}")
    return problems


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ACTORLOG_CLI), *args], capture_output=True, text=True, timeout=300, check=False)


def crash_problems(path: Path, history: CrashHistory, *, cli: bool) -> list[str]:
    """Check the log after a kill: `actorlog verify` (in process with ``cli=False``: the same
    `EventStore.verify`), ``PRAGMA integrity_check``, a statistics rebuild (`rebuild`, and
    ``actorlog stats --json`` with ``cli=True``), and every acknowledged checkpoint: the
    rows 1..seq all there once, the row at seq with the hash read back after the flush,
    and every acknowledged tick counter of every run exactly once (no tick missing before
    the highest one logged, none twice)."""
    problems = list(history.conflicts)
    try:
        store = EventStore.open_readonly(path)
    except (NotAnEventLogError, OSError) as exc:
        if history.acked:
            return [*problems, f"the log cannot be opened although {len(history.acked)} checkpoints were acknowledged: {exc}"]
        return problems  # killed before the log was created: nothing was promised
    with store:
        report = store.verify()
        if not report.ok:
            problems.append(f"verify failed: {list(report.problems)}")
        integrity = [row[0] for row in store.db.execute("PRAGMA integrity_check").fetchall()]
        if integrity != ["ok"]:
            problems.append(f"PRAGMA integrity_check: {integrity[:10]}")
        hashes = dict(store.db.execute("SELECT seq, hash FROM events").fetchall())
        last = max(hashes, default=0)
        if len(hashes) != last:
            missing = sorted(set(range(1, last + 1)) - set(hashes))[:10]
            problems.append(f"the seqs are not 1..{last}: {len(hashes)} rows, first missing {missing}")
        if history.last_acked > last:
            problems.append(f"seq {history.last_acked} was acknowledged by flush() but the log ends at {last}")
        wrong = [(seq, digest[:12], (hashes.get(seq) or "none")[:12]) for seq, digest in sorted(history.acked.items())
                 if hashes.get(seq) != digest]
        if wrong:
            problems.append(f"{len(wrong)} acknowledged rows differ (seq, acked hash, logged hash): {wrong[:5]}")
        for run, acked_tick in sorted(history.ticks.items()):
            logged = [int(n) for (n,) in store.db.execute(
                "SELECT json_extract(payload, '$.tags.n') FROM events WHERE run = ? AND kind = 'counter.incremented' "
                "AND json_extract(payload, '$.name') = 'crash.tick'", (run,)
            )]
            twice = sorted(n for n, times in Counter(logged).items() if times > 1)
            if twice:
                problems.append(f"run {run}: ticks logged more than once: {twice[:10]}")
            top = max(logged, default=0)
            if top < acked_tick:
                problems.append(f"run {run}: tick {acked_tick} was acknowledged but the log's ticks end at {top}")
            gaps = sorted(set(range(1, top + 1)) - set(logged))
            if gaps:
                problems.append(f"run {run}: ticks missing before tick {top}: {gaps[:10]}")
        try:
            statistics = rebuild(store)
            if statistics.position != last:
                problems.append(f"rebuild stopped at {statistics.position}, the log ends at {last}")
            statistics.document()
        except Exception as exc:  # noqa: BLE001 - any error is the finding
            problems.append(f"rebuild failed: {type(exc).__name__}: {exc}")
    if cli:
        verify = _run_cli("verify", str(path))
        if verify.returncode != 0 or not verify.stdout.startswith("ok"):
            problems.append(f"actorlog verify exited {verify.returncode}: {verify.stdout.strip()} {verify.stderr.strip()}")
        stats = _run_cli("stats", str(path), "--json")
        if stats.returncode != 0:
            problems.append(f"actorlog stats --json exited {stats.returncode}: {stats.stderr.strip()[:2000]}")
        else:
            position = json.loads(stats.stdout).get("position")
            if position != last:
                problems.append(f"actorlog stats --json reports position {position}, the log ends at {last}")
    return problems


# -- crash: sandbox processes that outlive their host ----------------------------------------------------------------


@dataclass
class Leftover:
    """A process whose working directory is a sandbox scratch directory of ours."""

    pid: int
    start: int
    """Start time in clock ticks after boot (with the pid, it names the process uniquely)."""
    uid: int
    ppid: int
    cwd: str
    cmdline: str
    program: str
    """The first lines of the sandboxed snippet (``main.py`` in the scratch directory)."""

    @property
    def user(self) -> str:
        try:
            import pwd

            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return str(self.uid)

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.start)

    def age(self) -> float:
        """Seconds since the process started."""
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        return uptime - self.start / ticks

    @property
    def launcher(self) -> bool:
        return "PR_SET_CHILD_SUBREAPER" in self.cmdline  # the launcher's code is its -c argument

    def describe(self) -> str:
        what = "the sandbox launcher" if self.launcher else repr(self.cmdline[:60])
        return (
            f"pid {self.pid} (parent {self.ppid}), user {self.user}, {self.age():.1f} s old: {what} of snippet "
            f"{self.program!r}"
        )


def _stat(pid: int) -> tuple[str, int, int]:
    """(state, start time in clock ticks after boot, parent pid) of a process."""
    with open(f"/proc/{pid}/stat", "rb") as handle:
        data = handle.read()
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[19]), int(fields[1])


def sandbox_leftovers(scratch_root: Path) -> list[Leftover]:
    """Every process whose working directory is under ``scratch_root`` (launchers and programs)."""
    root = str(scratch_root.resolve()) + os.sep
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            if not cwd.startswith(root):
                continue
            uid = os.stat(f"/proc/{pid}").st_uid
            state, start, ppid = _stat(pid)
            if state == "Z":
                continue  # already dead, waiting to be reaped by whoever adopted it
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        try:
            program = " | ".join(Path(cwd, "main.py").read_text(errors="replace").strip().splitlines()[:4])[:160]
        except OSError:
            program = "?"
        found.append(Leftover(pid, start, uid, ppid, cwd, cmdline, program))
    return found


def _alive(leftover: Leftover) -> bool:
    try:
        state, start, _ = _stat(leftover.pid)
    except (OSError, ValueError, IndexError):
        return False
    return start == leftover.start and state != "Z"


def end_leftovers(leftovers: list[Leftover], grace: float = 3.0) -> list[Leftover]:
    """End these processes (each checked by pid and start time, so a reused pid is never hit):
    SIGKILL the sandboxed programs, SIGTERM the launchers (which then kill and reap what is
    under them); after ``grace`` seconds SIGKILL whatever is left. Returns those still alive."""
    for leftover in leftovers:
        if _alive(leftover):
            try:
                os.kill(leftover.pid, signal.SIGTERM if leftover.launcher else signal.SIGKILL)
            except OSError:
                pass
    deadline = time.monotonic() + grace
    while any(_alive(x) for x in leftovers) and time.monotonic() < deadline:
        time.sleep(0.02)
    for leftover in leftovers:
        if _alive(leftover):
            try:
                os.kill(leftover.pid, signal.SIGKILL)
            except OSError:
                pass
    time.sleep(0.05)
    return [x for x in leftovers if _alive(x)]


LINGER = 3.0
"""Seconds after its host was killed past which a sandbox process counts as lingering: a
program killed by its CPU limit (1 s in the demo) or by writing to its dead host's pipes is
gone well before; one that sleeps or waits is not."""


class LeftoverWatch:
    """Watches a scratch root across kills. A process still there `LINGER` seconds after
    the kill that orphaned it is *lingering*: recorded, then ended (by pid) so that such
    processes do not pile up. `finish` waits for the last ones, then does the same."""

    def __init__(self, scratch_root: Path) -> None:
        self.scratch_root = scratch_root
        self.orphaned: dict[tuple[int, int], tuple[int, float]] = {}
        """(pid, start) -> (the kill after which it was first seen, when that kill was sent)."""
        self.lingering: list[tuple[int, Leftover, float, str]] = []
        """(kill index, process, seconds since its host was killed, description) of every lingering process."""
        self.peak = 0

    def scan(self, kill_index: int, killed_at: float) -> None:
        """Look after kill ``kill_index`` (sent at ``killed_at``, monotonic time)."""
        current = sandbox_leftovers(self.scratch_root)
        self.peak = max(self.peak, len(current))
        now = time.monotonic()
        stale = []
        for leftover in current:
            index, orphaned_at = self.orphaned.setdefault(leftover.key, (kill_index, killed_at))
            if now - orphaned_at >= LINGER:
                stale.append(leftover)
                self.lingering.append((index, leftover, now - orphaned_at, leftover.describe()))
        if stale:
            end_leftovers(stale)

    def finish(self, kill_index: int) -> None:
        """Wait until every process left is gone or lingering, then record and end those."""
        while True:
            current = sandbox_leftovers(self.scratch_root)
            now = time.monotonic()
            for leftover in current:  # any not seen yet (a kill that was not scanned) counts from now
                self.orphaned.setdefault(leftover.key, (kill_index, now))
            if all(now - self.orphaned[x.key][1] >= LINGER for x in current):
                break
            time.sleep(0.1)
        for leftover in current:
            index, orphaned_at = self.orphaned[leftover.key]
            self.lingering.append((index, leftover, now - orphaned_at, leftover.describe()))
        if current:
            end_leftovers(current)

    def scratch_dirs(self) -> list[str]:
        """Scratch directories left behind (their host died before removing them)."""
        try:
            return sorted(name for name in os.listdir(self.scratch_root) if name.startswith("actorlog-sandbox-"))
        except OSError:
            return []

    def remove_scratch(self) -> None:
        shutil.rmtree(self.scratch_root, ignore_errors=True)

    def summary(self) -> str:
        if not self.lingering:
            return f"no sandbox process outlived its killed host by {LINGER:g} s"
        launchers = [x for _, x, _, _ in self.lingering if x.launcher]
        programs = [x for _, x, _, _ in self.lingering if not x.launcher]
        snippets = Counter(x.program.split(" | ")[1] if " | " in x.program else x.program for x in programs)
        kills = sorted({entry[0] for entry in self.lingering})
        index, _, after, description = next((entry for entry in self.lingering if not entry[1].launcher), self.lingering[0])
        return (
            f"{len(launchers)} sandbox launcher(s) (user {launchers[0].user if launchers else '-'}) and {len(programs)} "
            f"sandboxed program(s) (user {programs[0].user if programs else '-'}) were still running {LINGER:g} s or more "
            f"after their host was killed (kills {kills}); the programs: "
            + ", ".join(f"{count} x {snippet!r}" for snippet, count in snippets.most_common())
            + f". For example, after kill #{index}: {description}, {after:.1f} s after its host died. "
            f"The test ended them."
        )


def make_scratch_root() -> Path:
    """A scratch root the sandbox user can traverse (pytest's tmp_path is private to root)."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="actorlog-crash-scratch-"))
    os.chmod(root, 0o755)
    return root


# -- overload -------------------------------------------------------------------------------------------------------

MEASUREMENT_KINDS = {
    "counter.incremented": "counter", "gauge.set": "gauge", "histogram.observed": "histogram", "operation.timed": "operation",
}

RSS_BOUND_MB = 100
"""The RSS growth allowed to an overloaded system with default options (see tests/test_fault_overload.py)."""
LATE_GROWTH_MB = 25
"""Growth allowed between the first half of the overload and the second (no slow leak)."""


def start_overload(path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(OVERLOAD_WORKER), str(path), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )


def overload_report(process: subprocess.Popen[str], timeout: float = 600) -> dict[str, Any]:
    """The worker's JSON report; raises with its stderr if it failed."""
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    if process.returncode != 0 or not out.strip():
        raise AssertionError(f"the overload worker failed with {process.returncode}: {err[-4000:]}")
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    report["stderr"] = err
    return report


@dataclass
class OverloadLog:
    """What one overload run logged."""

    kinds: Counter[str]
    dropped: int
    drop_events: int
    lifecycle: Counter[tuple[str, str]]
    failures: list[tuple[int, str, str, str]]
    """(seq, plugin, exc_type, message) of every failure.raised."""
    assessed: Counter[int]
    """failure_seq -> failure.assessed events naming it."""
    decided: dict[int, list[str]]
    """failure_seq -> actions of the recovery.decided events naming it."""
    received: Counter[int]
    """n -> message.received events of Work(n) to ``flaky``."""
    run_stopped: list[bool]
    """``clean`` of each run.stopped."""


def read_overload_log(path: Path, run: str) -> OverloadLog:
    with EventStore.open_readonly(path) as store:
        db = store.db

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return db.execute(sql, (run,)).fetchall()

        kinds: Counter[str] = Counter(dict(rows("SELECT kind, count(*) FROM events WHERE run = ? GROUP BY kind")))
        dropped, drop_events = rows(
            "SELECT coalesce(sum(json_extract(payload, '$.count')), 0), count(*) FROM events "
            "WHERE run = ? AND kind = 'measurements.dropped'"
        )[0]
        lifecycle: Counter[tuple[str, str]] = Counter()
        for kind, plugin, count in rows(
            "SELECT kind, json_extract(payload, '$.plugin'), count(*) FROM events WHERE run = ? AND kind LIKE 'plugin.%' "
            "GROUP BY 1, 2"
        ):
            lifecycle[(kind, plugin)] = count
        failures = [tuple(r) for r in rows(
            "SELECT seq, json_extract(payload, '$.plugin'), json_extract(payload, '$.exc_type'), "
            "json_extract(payload, '$.message') FROM events WHERE run = ? AND kind = 'failure.raised' ORDER BY seq"
        )]
        assessed: Counter[int] = Counter(r[0] for r in rows(
            "SELECT json_extract(payload, '$.failure_seq') FROM events WHERE run = ? AND kind = 'failure.assessed'"
        ))
        decided: dict[int, list[str]] = {}
        for seq, action in rows(
            "SELECT json_extract(payload, '$.failure_seq'), json_extract(payload, '$.action') FROM events "
            "WHERE run = ? AND kind = 'recovery.decided'"
        ):
            decided.setdefault(seq, []).append(action)
        received: Counter[int] = Counter(r[0] for r in rows(
            "SELECT json_extract(payload, '$.message.n') FROM events WHERE run = ? AND kind = 'message.received' "
            "AND json_extract(payload, '$.recipient') = 'flaky'"
        ))
        run_stopped = [bool(r[0]) for r in rows(
            "SELECT json_extract(payload, '$.clean') FROM events WHERE run = ? AND kind = 'run.stopped'"
        )]
    return OverloadLog(kinds, int(dropped), int(drop_events), lifecycle, failures, assessed, decided, received, run_stopped)


def rss_figures(report: dict[str, Any]) -> dict[str, float]:
    """Start, peak and growth in MB, and the growth between the two halves of the run."""
    rss = report["rss"]
    samples = rss["samples"]
    half = report.get("seconds", samples[-1][0]) / 2
    first = max((value for t, value in samples if t <= half), default=rss["start"])
    second = max((value for t, value in samples if t > half), default=first)
    return {
        "start_mb": rss["start"] / MB, "peak_mb": rss["peak"] / MB, "growth_mb": (rss["peak"] - rss["start"]) / MB,
        "late_growth_mb": (second - first) / MB,
    }


def memory_problems(report: dict[str, Any], bound_mb: float = RSS_BOUND_MB, late_mb: float = LATE_GROWTH_MB) -> list[str]:
    figures = rss_figures(report)
    problems = []
    if report.get("aborted"):
        problems.append(f"RSS grew past {bound_mb} MB: the worker stopped early after {report['seconds']} s")
    if figures["growth_mb"] > bound_mb:
        problems.append(f"RSS grew {figures['growth_mb']:.1f} MB (from {figures['start_mb']:.1f} MB), over the bound of {bound_mb} MB")
    if not report.get("aborted") and figures["late_growth_mb"] > late_mb:
        problems.append(f"RSS still grew {figures['late_growth_mb']:.1f} MB in the second half of the run (allowed {late_mb} MB)")
    return problems


def accounting_problems(report: dict[str, Any], log: OverloadLog) -> list[str]:
    """Every measurement produced is either committed or counted in a measurements.dropped event."""
    problems = []
    produced = report["measurements"]["by_kind"]
    committed = {short: log.kinds.get(kind, 0) for kind, short in MEASUREMENT_KINDS.items()}
    total_produced, total_committed = sum(produced.values()), sum(committed.values())
    if report["options"]["overload"] == "block":
        if log.dropped or log.drop_events:
            problems.append(f"overload='block' dropped {log.dropped} measurements in {log.drop_events} events")
        if committed != produced:
            problems.append(f"committed {committed} != produced {produced}")
    else:
        if total_committed + log.dropped != total_produced:
            problems.append(
                f"committed {total_committed:,} + dropped {log.dropped:,} = {total_committed + log.dropped:,} "
                f"!= produced {total_produced:,} (missing {total_produced - total_committed - log.dropped:,})"
            )
        if any(committed[kind] > produced[kind] for kind in produced):
            problems.append(f"more committed than produced: {committed} > {produced}")
    if report["dropped_live"] != log.dropped:
        problems.append(f"the live statistics count {report['dropped_live']} drops, the log {log.dropped}")
    return problems


def failure_problems(log: OverloadLog) -> list[str]:
    """Every failure.raised has exactly one failure.assessed and one recovery.decided naming
    it (continue for ``ValueError``, restart for ``OSError``), and nothing names a missing one."""
    problems = []
    for seq, _plugin, exc_type, message in log.failures:
        if log.assessed.get(seq) != 1:
            problems.append(f"failure.raised seq {seq} ({exc_type}: {message}) has {log.assessed.get(seq, 0)} failure.assessed")
        actions = log.decided.get(seq, [])
        expected_action = "restart" if exc_type == "builtins.OSError" else "continue"
        if actions != [expected_action]:
            problems.append(f"failure.raised seq {seq} ({exc_type}) has recovery.decided {actions}, expected [{expected_action!r}]")
    raised = {f[0] for f in log.failures}
    orphans = sorted(set(log.assessed) - raised) + sorted(set(log.decided) - raised)
    if orphans:
        problems.append(f"assessments or decisions naming no failure.raised: {orphans[:10]}")
    return problems[:20]


def lifecycle_problems(report: dict[str, Any], log: OverloadLog) -> list[str]:
    """Lifecycle and failure events are all there: every message logged once, every failure
    assessed and decided once, every start matched by a stop, the run stopped cleanly."""
    problems = []
    messages = report["messages"]
    if report["escalation"]:
        problems.append(f"the system escalated: {report['escalation']}")
    if report["scripted"] != ["bad", "late", "broken"]:
        problems.append(f"the scripted steps did not all happen: {report['scripted']}")
    if log.run_stopped != [True]:
        problems.append(f"run.stopped (clean) events: {log.run_stopped}")
    if log.kinds.get("run.started") != 1:
        problems.append(f"run.started events: {log.kinds.get('run.started')}")
    # every message sent (senders count n = 0..sent-1 in ask mode) and the two scripted ones: logged once each
    if report["options"]["send"] == "ask" and report["options"]["senders"] == 1:
        expected = Counter(range(messages["sent"])) + Counter([-1, -2])
        if log.received != expected:
            extra, missing = log.received - expected, expected - log.received
            problems.append(f"message.received differs from what was sent: extra {sorted(extra)[:10]}, missing {sorted(missing)[:10]}")
    raised = [f for f in log.failures if f[1] == "flaky"]
    by_type = Counter(f[2] for f in raised)
    if by_type != Counter({"builtins.ValueError": messages["failed"] + 1, "builtins.OSError": 1}):
        problems.append(
            f"failure.raised of flaky by type {dict(by_type)}; expected {messages['failed'] + 1} ValueError "
            f"({messages['failed']} answered with a failure + the scripted one) and 1 OSError"
        )
    if len(raised) != len(log.failures):
        problems.append(f"failures of other plugins: {[f for f in log.failures if f[1] != 'flaky'][:5]}")
    problems += failure_problems(log)
    for plugin, starts in (("flaky", 2), ("late", 1)):
        count = {kind: log.lifecycle.get((f"plugin.{kind}", plugin), 0)
                 for kind in ("registered", "starting", "started", "stopping", "stopped", "restarted")}
        wanted = {"registered": 1, "starting": starts, "started": starts, "stopping": starts, "stopped": starts,
                  "restarted": starts - 1}
        if count != wanted:
            problems.append(f"lifecycle of {plugin}: {count}, expected {wanted}")
    return problems
