"""Logs and process helpers for the CLI convention tests (tests/test_cli_conventions.py).

`build_log` writes many events fast through the store's batch path (`append_many` with
the times given): a 1,500,000-event log in well under a minute. `big_log_path` keeps one
such log per pytest cache (or per session when the cache is off), so it is built once.
"""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from actorlog.events import FailureRaised, GaugeSet
from actorlog.store import EventStore
from log_helpers import ACTORLOG_CLI

BIG_EVENTS = 1_500_000
"""The log size the issue measured on."""

BUILD_VERSION = 1
"""Bumped when `build_log` writes something else, so a cached log of the old shape is rebuilt."""

BATCH = 10_000


def build_log(path: Path, events: int, *, run: str = "big-run", failures_every: int = 1000) -> None:
    """Write ``events`` events: gauges from 8 workers, and a failure every ``failures_every``."""
    base = 1_790_000_000.0
    with EventStore(path, run=run, max_pending_rows=4 * BATCH, max_batch_rows=BATCH) as store:
        for start in range(0, events, BATCH):
            stop = min(start + BATCH, events)
            batch = [
                FailureRaised(plugin="worker", exc_type="builtins.ValueError", message=f"bad input {i}",
                              traceback="Traceback (most recent call last):\n  ...\nValueError: bad input")
                if i % failures_every == failures_every - 1
                else GaugeSet(name="queue_depth", value=float(i % 97), tags={"worker": str(i % 8)})
                for i in range(start, stop)
            ]
            store.append_many(batch, actor="worker", ts=[base + i * 0.001 for i in range(start, stop)])
        store.flush()


def big_log_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 1,500,000-event log, built once and kept in pytest's cache directory (a fresh
    session directory when the cache plugin is off, ``-p no:cacheprovider``)."""
    cache = getattr(request.config, "cache", None)
    folder = Path(cache.mkdir("actorlog-big-log")) if cache is not None else tmp_path_factory.mktemp("big-log")
    path = folder / f"big-{BIG_EVENTS}-v{BUILD_VERSION}.db"
    done = folder / (path.name + ".complete")
    if not done.exists():
        for stale in folder.glob(path.name + "*"):
            stale.unlink()
        # in a process of its own: a child's peak RSS (ru_maxrss) starts from its parent's RSS at fork,
        # so building the log in the test process would make every command measured after it look big
        subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
                        "from cli_helpers import build_log; build_log(Path(sys.argv[2]), int(sys.argv[3]))",
                        str(Path(__file__).parent), str(path), str(BIG_EVENTS)], check=True, timeout=900)
        done.write_text(f"{BIG_EVENTS}\n")
    return path


class Finished:
    """A child's exit status, peak RSS and output, from `os.wait4`."""

    def __init__(self, status: int, max_rss_bytes: int, stdout: str, stderr: str) -> None:
        self.returncode = status
        self.max_rss_bytes = max_rss_bytes
        self.stdout = stdout
        self.stderr = stderr


def wait4(process: subprocess.Popen[str]) -> tuple[int, int]:
    """Reap ``process``: its exit status (negative for a signal) and peak RSS in bytes."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # Popen must not reap it again
    return process.returncode, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def first_lines(args: Sequence[object], count: int, *, safety: float = 120.0) -> tuple[list[str], Finished]:
    """Run ``actorlog ARGS``, read ``count`` lines of its stdout, then close the pipe (as
    ``| head`` does) and reap it. A watchdog kills it after ``safety`` seconds, so a program
    that collects everything before printing fails instead of hanging (never a timing
    assertion: the bound is far beyond what streaming needs). Its peak RSS is measured by
    ``helpers/measure_rss.py``, so it is the command's own, not this process's."""
    with tempfile.TemporaryDirectory() as folder:
        rss_file = Path(folder) / "rss"
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "helpers" / "measure_rss.py"), str(rss_file),
             str(ACTORLOG_CLI), *map(str, args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        assert process.stdout is not None and process.stderr is not None
        watchdog = threading.Timer(safety, lambda: os.killpg(process.pid, signal.SIGKILL))
        watchdog.start()
        try:
            lines = [process.stdout.readline() for _ in range(count)]
            process.stdout.close()
            stderr = process.stderr.read()
            status = process.wait()
        finally:
            watchdog.cancel()
        rss = int(rss_file.read_text()) if rss_file.exists() else 0
    return lines, Finished(status, rss, "".join(lines), stderr)


def run_on_pty(args: Sequence[object], *, stream: str, env: dict[str, str] | None = None,
               timeout: float = 300) -> tuple[int, str, str]:
    """Run ``actorlog ARGS`` with ``stream`` ("stdout" or "stderr") on a pseudo-terminal and
    the other on a pipe; returns (status, what the terminal got, what the pipe got)."""
    master, slave = pty.openpty()
    kwargs = {stream: slave, ("stderr" if stream == "stdout" else "stdout"): subprocess.PIPE}
    process = subprocess.Popen([str(ACTORLOG_CLI), *map(str, args)], env=env, **kwargs)  # type: ignore[call-overload]
    os.close(slave)
    seen = bytearray()
    pipe = process.stderr if stream == "stdout" else process.stdout
    piped: list[bytes] = []
    reader = threading.Thread(target=lambda: piped.append(pipe.read()), daemon=True)
    reader.start()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        seen.extend(chunk)
    os.close(master)
    status = process.wait(timeout=timeout)
    reader.join(timeout)
    return status, seen.decode(errors="replace"), b"".join(piped).decode(errors="replace")
