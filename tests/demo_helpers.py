"""Helpers for the tests of the agent example, ``actorlog demo`` and ``actorlog run``
(tests/test_example_agent.py, tests/test_demo.py, tests/test_run_config.py).

The commands run as real subprocesses of the installed ``actorlog`` console script; logs
are real SQLite files, read back read-only. Waits are safety nets, never assertions on time.
"""

from __future__ import annotations

import collections
import math
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from actor_helpers import read_log, wait_until
from actorlog.actors.examples import demo as _demo  # noqa: F401 - registers the agent's, LLM's and sandbox's event types
from log_helpers import ACTORLOG_CLI

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO / "examples" / "agent.toml"

LLM_CLASS = "actorlog.actors.examples.llm:LLMPlugin"
SANDBOX_CLASS = "actorlog.actors.examples.sandbox:SandboxPlugin"
AGENT_CLASS = "actorlog.actors.examples.agent:AgentPlugin"


# -- the console script -------------------------------------------------------------------------


def run_actorlog(*args: object, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the installed ``actorlog`` console script to completion."""
    return subprocess.run(
        [str(ACTORLOG_CLI), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False,
    )


def start_actorlog(*args: object, cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start the installed ``actorlog`` console script; stdout and stderr are pipes."""
    return subprocess.Popen(
        [str(ACTORLOG_CLI), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
    )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Wait for a started command; kill it if it outlives ``timeout`` (and fail)."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"actorlog still running after {timeout} s; stderr: {err}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def stop(process: subprocess.Popen[str], signum: signal.Signals) -> subprocess.CompletedProcess[str]:
    """Send ``signum`` to a running command and wait for it to end."""
    process.send_signal(signum)
    return finish(process, timeout=60)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single ``actorlog: error:`` line of a command that exited with status 2, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("actorlog: error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


# -- logs ---------------------------------------------------------------------------------------


def event_counts(path: Path) -> dict[str, collections.Counter[tuple[str, str]]]:
    """For each run of the log: how many events of each (actor, kind) it holds."""
    counts: dict[str, collections.Counter[tuple[str, str]]] = collections.defaultdict(collections.Counter)
    for record in read_log(path):
        counts[record.run][(record.actor, record.kind)] += 1
    return dict(counts)


def count_in_log(path: Path, kind: str) -> int:
    """How many ``kind`` events a (possibly still written) log holds; 0 before it exists."""
    return len(read_log(path, kinds=[kind])) if path.exists() else 0


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    """Poll ``predicate`` until it is truthy (a safety-net timeout, not a timing assertion)."""
    return wait_until(predicate, timeout=timeout, interval=0.05, what=what)


@contextmanager
def running(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """The started command, killed on the way out if a check failed before it ended."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


# -- TOML ---------------------------------------------------------------------------------------


def toml_string(text: str) -> str:
    """A TOML basic string holding exactly ``text`` (anything but printable ASCII escaped)."""
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append(f"\\U{ord(char):08X}")
    out.append('"')
    return "".join(out)


def toml_value(value: Any) -> str:
    """``value`` (str, bool, int, finite float, list or dict of those) as a TOML inline value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        assert math.isfinite(value), value
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {value!r}")


def system_toml(
    plugins: Mapping[str, Mapping[str, Any]], *, log: str | None = None, sends: Sequence[Mapping[str, Any]] = (),
    extra: str = "",
) -> str:
    """A config file: ``log``, ``extra`` top-level text, one table per plugin (name -> its
    keys: class, config, depends_on, ...), then the ``[[send]]`` tables."""
    lines = [f"log = {toml_string(log)}"] if log is not None else []
    if extra:
        lines.append(extra)
    for name, keys in plugins.items():
        lines.append(f"\n[plugins.{toml_string(name)}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in keys.items()]
    for send in sends:
        lines.append("\n[[send]]")
        lines += [f"{key} = {toml_value(value)}" for key, value in send.items()]
    return "\n".join(lines) + "\n"


def agent_system(**llm_config: Any) -> dict[str, dict[str, Any]]:
    """The three example plugins, small and quick, for a config file."""
    return {
        "llm": {"class": LLM_CLASS, "config": {"backend": "offline", "retry_delay": 0.0, **llm_config}},
        "sandbox": {"class": SANDBOX_CLASS, "config": {"cpu_seconds": 1, "wall_timeout": 10.0, "container_limit": 2}},
        "agent": {"class": AGENT_CLASS, "depends_on": ["llm", "sandbox"], "config": {"retry_delay": 0.0}},
    }
