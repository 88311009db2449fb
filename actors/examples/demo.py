"""The demo application behind ``actorlog demo``: the agent, the LLM and the sandbox at work.

::

    report = run_demo("actorlog-demo.db", tasks=20, seed=7)
    print(report.solved, report.gave_up, report.restarts)

The agent is given programming tasks, one at a time. With the offline model and the
settings of `DEMO_PLUGINS`, a run shows every kind of trouble the system handles:

- generations fail now and then (``failure_rate``) and the agent retries them;
- the model's connection drops (``connection_error_rate``, a ``ConnectionError``) and the
  LLM plugin retries the request with exponential backoff;
- one task carries a prompt too long for the model's context: the model crashes
  (`ModelCrashed`), the supervisor restarts the LLM plugin, and the agent retries with a
  shorter prompt;
- some tasks ask for programs that misbehave, and the sandbox stops them: one that
  waits (killed by the wall-clock timeout), one that spins forever (the CPU limit), one
  that floods its output (the output cap) and one that allocates gigabytes (the memory
  limit, a ``MemoryError``).

Everything is decided by ``seed``: the task list, and each task's seed, hence every
generation, failure and dropped connection. The same seed gives the same count of each
event kind from each actor (only thread interleaving, times and backoff delays vary).
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from actorlog.actors.error_policy import ErrorPolicy
from actorlog.actors.examples.agent import AgentPlugin, Solution, Solve
from actorlog.actors.examples.llm import LLMPlugin
from actorlog.replay.documents import StatisticsDocument
from actorlog.actors.examples.sandbox import SandboxPlugin
from actorlog.actors.plugin import Plugin
from actorlog.actors.system import ActorSystem
from actorlog.events import Severity
from actorlog.store import EventStore

__all__ = [
    "DEMO_PLUGINS",
    "DEMO_SEVERITIES",
    "DemoReport",
    "DemoTask",
    "demo_tasks",
    "run_demo",
]

DEMO_PLUGINS: dict[str, tuple[type[Plugin], dict[str, Any]]] = {
    "llm": (LLMPlugin, {
        "backend": "offline", "failure_rate": 0.15, "connection_error_rate": 0.2, "context_chars": 2000,
        "retries": 4, "retry_delay": 0.05,
    }),
    "sandbox": (SandboxPlugin, {
        "cpu_seconds": 1, "wall_timeout": 10.0, "memory_bytes": 256 * 1024 * 1024,
        "max_output_bytes": 64 * 1024, "container_limit": 2,
    }),
    "agent": (AgentPlugin, {"max_retries": 2, "retry_delay": 0.05, "run_timeout": 2.0}),
}
"""The demo's plugins, in registration order: name -> (class, config). ``examples/agent.toml``
describes the same system."""

DEMO_SEVERITIES: dict[type[BaseException], Severity] = {TimeoutError: "medium", ConnectionError: "medium"}
"""A model that times out or cannot be reached is not worth a restart of the LLM plugin
(both are ``OSError`` subclasses, which the default policy rates high); the plugin retries its
connections itself."""

_NORMAL = (
    "Write a function that sorts a list of numbers",
    "Reverse a list of values",
    "Sum a list of numbers",
    "Find the largest value in a list",
    "Keep only the even numbers of a list",
    "Square every number in a list",
    "Remove duplicates from a list",
    "Return the first n Fibonacci numbers",
    "Compute a factorial",
    "List the primes below n",
    "Check whether a phrase is a palindrome",
    "Count the words in a sentence",
)
_HAZARDS = {
    "timeout": "Write a function that waits for an answer from a slow service",
    "cpu": "Write a loop that runs forever",
    "output": "Flood the console with a greeting",
    "memory": "Allocate a buffer of several gigabytes",
}


class DemoTask(msgspec.Struct, frozen=True):
    """One task of the demo: its text, what it is meant to show, and its seed."""

    text: str
    shows: str
    """``"normal"``, ``"crash"`` (a prompt too long for the model), or the sandbox limit it
    runs into: ``"timeout"``, ``"cpu"``, ``"output"``, ``"memory"``."""
    seed: int


class DemoReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a demo run did."""

    path: str
    run: str
    tasks: int
    solved: int
    gave_up: int
    attempts: int
    restarts: dict[str, int]
    seconds: float
    statistics: StatisticsDocument
    """The final statistics, in the shape of ``actorlog stats --json``."""
    reproducible_failure: int | None
    """The seq of a ``failure.raised`` of the LLM plugin, to try ``actorlog reproduce`` on."""


def demo_tasks(count: int, seed: int) -> list[DemoTask]:
    """The demo's tasks: one overlong prompt, the four sandbox hazards, then ordinary tasks,
    shuffled by ``seed`` (with fewer than five tasks, the first of those that fit)."""
    if count < 1:
        raise ValueError(f"the demo needs at least one task, got {count}")
    rng = random.Random(seed)
    readings = ", ".join(str(rng.randint(0, 999)) for _ in range(600))
    special = [("crash", f"Sort these sensor readings: {readings}")]
    special += [(shows, text) for shows, text in _HAZARDS.items()]
    hazards = max(0, count // 5 - len(special))  # longer runs get more hazards, in the same proportion
    special += [(shows, _HAZARDS[shows]) for shows in rng.choices(list(_HAZARDS), k=hazards)]
    chosen = special[:count]
    chosen += [("normal", rng.choice(_NORMAL)) for _ in range(count - len(chosen))]
    rng.shuffle(chosen)
    return [DemoTask(text, shows, _task_seed(seed, index)) for index, (shows, text) in enumerate(chosen)]


def _task_seed(seed: int, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"demo:{seed}:{index}".encode()).digest()[:8], "big") >> 1


def run_demo(
    path: str | os.PathLike[str],
    *,
    tasks: int = 20,
    seed: int = 0,
    progress: Callable[[int, DemoTask, Solution], None] | None = None,
    plugins: Mapping[str, tuple[type[Plugin], dict[str, Any]]] = DEMO_PLUGINS,
) -> DemoReport:
    """Run the demo into the log at ``path`` (appending a run if it exists); ``progress``
    is called after each task with its index, the task and the agent's `Solution`."""
    plan = demo_tasks(tasks, seed)
    started = time.monotonic()
    solutions: list[Solution] = []
    system = ActorSystem(path, error_policy=ErrorPolicy(severities=DEMO_SEVERITIES))
    try:
        for name, (cls, config) in plugins.items():
            system.register(name, cls, config=config)
        system.start()
        for index, task in enumerate(plan):
            solution: Solution = system.ask("agent", Solve(task=task.text, seed=task.seed), timeout=600)
            solutions.append(solution)
            if progress is not None:
                progress(index, task, solution)
        restarts = {name: system.restarts(name) for name in plugins}
    finally:
        system.stop()
    if system.escalation is not None:
        raise system.escalation
    statistics = system.statistics()
    return DemoReport(
        path=str(path), run=system.run, tasks=len(plan), solved=sum(s.solved for s in solutions),
        gave_up=sum(not s.solved for s in solutions), attempts=sum(s.attempts for s in solutions),
        restarts=restarts, seconds=time.monotonic() - started, statistics=statistics,
        reproducible_failure=_llm_failure(path, system.run),
    )


def _llm_failure(path: str | os.PathLike[str], run: str) -> int | None:
    """The first failure of the LLM plugin's own handler in ``run`` (reproducible offline)."""
    with EventStore.open_readonly(path) as store:
        for record in store.events(run=run, actor="llm", kinds="failure.raised"):
            if getattr(record.event, "plugin", None) == "llm":
                return record.seq
    return None
