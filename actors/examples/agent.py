"""The Agent example plugin: asks the LLM plugin for code, runs it in the Sandbox plugin.

::

    with ActorSystem("app.db") as system:
        system.register("llm", LLMPlugin, config={"failure_rate": 0.1})
        system.register("sandbox", SandboxPlugin, config={"cpu_seconds": 2})
        system.register("agent", AgentPlugin)          # depends on "llm" and "sandbox"
        system.start()
        solution = system.ask("agent", Solve(task="write a function that sorts a list"), timeout=120)
        print(solution.solved, solution.stdout)

For each `Solve` message the agent makes attempts, each one a generation (`Generate` to
``llm``) and a run of the generated program (`RunPython` to ``sandbox``). An attempt
fails when the generation fails or the program does not exit cleanly (`RunFailed`: a
non-zero exit code, or killed by a limit or the timeout). Attempts run through
``self.context.retry``, so each failed one is a ``failure.raised`` event of the task
``agent.attempt`` and a question to the error handler, whose decision (retry after a
backoff, or give up) the agent follows. When the model crashed on a long prompt
(`ModelCrashed`), the next attempt sends a prompt half as long.

Each attempt asks for code with its own seed, derived from the task's seed and the
attempt number, so the same `Solve` (with a ``seed``) gives the same attempts. The reply
is a `Solution`, also when the agent gave up: failing a task is an answer, not a crash
of the agent. Each task ends with an ``agent.task_finished`` event, and is timed as the
operation ``agent.solve`` (a task given up counts as an error).

Config keys (all optional; an unknown key or a wrong type fails the start naming it):
the fields of `AgentConfig`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import msgspec

from actorlog.actors.error_policy import qualified_name
from actorlog.actors.examples.llm import Completion, Generate, GenerationError, ModelCrashed
from actorlog.actors.examples.sandbox import RunPython, SandboxResult
from actorlog.actors.plugin import Plugin, handler
from actorlog.events import ActorlogError, Event, Message, register

__all__ = [
    "AgentConfig",
    "AgentConfigError",
    "AgentPlugin",
    "AgentTaskFinished",
    "RunFailed",
    "Solution",
    "Solve",
    "attempt_seed",
    "extract_code",
]

OPERATION = "agent.solve"
"""The name under which each task is timed by the performance monitor."""

PROMPT = "Write a Python program for this task, printing its result: {task}"
"""How the agent asks the model for code."""


@register
class Solve(Message, tag="agent.solve", frozen=True):
    """Solve a programming task; the reply is a `Solution`.

    ``seed`` pins the attempts' generations; without one, a seed is drawn from the
    agent's recorded randomness (so the log still determines the attempts).
    """

    task: str
    seed: int | None = None


class Solution(msgspec.Struct, frozen=True, kw_only=True):
    """The reply to `Solve`: whether the task was solved, and how."""

    task: str
    solved: bool
    attempts: int
    code: str = ""
    """The program of the last attempt that got one."""
    stdout: str = ""
    """What the program printed (the last attempt's, when not solved)."""
    sandbox_id: str | None = None
    error: str | None = None
    """Why the last attempt failed, as ``"QualifiedType: message"``, when not solved."""


@register
class AgentTaskFinished(Event, tag="agent.task_finished", frozen=True):
    """The agent finished a task: solved or given up, after how many attempts.
    ``message`` (an error's text) is redacted before it is logged."""

    redact_fields: ClassVar[tuple[str, ...]] = ("message",)
    task: str
    solved: bool
    attempts: int
    sandbox_id: str | None = None
    exc_type: str | None = None
    message: str | None = None


class AgentConfigError(ActorlogError, ValueError):
    """The agent's config is invalid; the message names the key."""


class RunFailed(ActorlogError, RuntimeError):
    """The generated program did not exit cleanly in the sandbox."""

    def __init__(self, message: str, result: SandboxResult) -> None:
        super().__init__(message)
        self.result = result


class AgentConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The agent's configuration (the plugin's ``config`` mapping, decoded)."""

    max_retries: Annotated[int, msgspec.Meta(ge=0)] = 2
    """Attempts after the first one, per task."""
    retry_delay: Annotated[float, msgspec.Meta(ge=0.0)] = 0.2
    """Seconds: the base of the exponential backoff between attempts (full jitter)."""
    max_tokens: Annotated[int, msgspec.Meta(ge=1)] = 512
    """The longest program asked of the model, in tokens."""
    run_timeout: Annotated[float, msgspec.Meta(gt=0.0)] | None = None
    """Wall-clock seconds each program may run (None: the sandbox's own ``wall_timeout``)."""
    ask_timeout: Annotated[float, msgspec.Meta(gt=0.0)] = 300.0
    """Seconds to wait for each answer of ``llm`` and ``sandbox``."""
    output_chars: Annotated[int, msgspec.Meta(ge=0)] = 2000
    """Characters of the program's output kept in the `Solution`."""


def load_config(config: Mapping[str, Any]) -> AgentConfig:
    """Decode and check the agent's config; `AgentConfigError` names the key at fault."""
    try:
        return msgspec.convert(dict(config), AgentConfig)
    except msgspec.ValidationError as exc:
        raise AgentConfigError(
            f"invalid agent config: {exc} (valid keys: {', '.join(AgentConfig.__struct_fields__)})"
        ) from None


def attempt_seed(seed: int, attempt: int) -> int:
    """The generation seed of attempt ``attempt`` (1-based) of a task with seed ``seed``."""
    digest = hashlib.sha256(f"{seed}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


_FENCE = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_code(text: str) -> str:
    """The program in a model's answer: the first fenced code block, else the whole text."""
    fenced = _FENCE.search(text)
    return fenced.group(1) if fenced else text


class AgentPlugin(Plugin):
    """Solves programming tasks with the ``llm`` and ``sandbox`` plugins (see the module)."""

    version = "1.0.0"
    depends_on = ("llm", "sandbox")
    requires = {"llm": ">=1.0,<2", "sandbox": ">=1.0,<2"}

    settings: AgentConfig

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        """Decode the config as `on_start` does (`load_config`), without starting anything."""
        load_config(config)

    def on_start(self) -> None:
        self.settings = load_config(self.config)

    @handler
    def solve(self, message: Solve) -> Solution:
        """Make attempts until one works or the error handler gives up."""
        seed = message.seed if message.seed is not None else self.context.random().getrandbits(63)
        state = _Attempts(self, message.task, seed)
        retrying = self.context.retry(
            "agent.attempt", max_retries=self.settings.max_retries, base=self.settings.retry_delay,
            retry_on=(GenerationError, RunFailed, ConnectionError),
        )
        operation = self.context.monitor.start(OPERATION)
        try:
            result = retrying.call(state.attempt)
        except (GenerationError, RunFailed, ConnectionError) as exc:
            self.context.monitor.end(operation, ok=False)
            return self._finish(state, None, exc)
        except BaseException:
            self.context.monitor.end(operation, ok=False)
            raise
        self.context.monitor.end(operation, ok=True)
        return self._finish(state, result, None)

    def _finish(self, state: _Attempts, result: SandboxResult | None, exc: BaseException | None) -> Solution:
        last = result or state.last_result
        stdout = last.stdout[: self.settings.output_chars] if last is not None else ""
        sandbox_id = last.sandbox_id if last is not None else None
        error = None if exc is None else f"{qualified_name(exc)}: {exc}"
        self.context.emit(AgentTaskFinished(
            task=state.task[:200], solved=exc is None, attempts=state.number, sandbox_id=sandbox_id,
            exc_type=None if exc is None else qualified_name(exc), message=None if exc is None else str(exc)[:500],
        ))
        return Solution(
            task=state.task, solved=exc is None, attempts=state.number, code=state.code, stdout=stdout,
            sandbox_id=sandbox_id, error=error,
        )


class _Attempts:
    """One task's attempts: their count, the prompt length allowed, the last program and result."""

    def __init__(self, agent: AgentPlugin, task: str, seed: int) -> None:
        self.agent = agent
        self.task = task
        self.seed = seed
        self.number = 0
        self.prompt_chars: int | None = None
        self.code = ""
        self.last_result: SandboxResult | None = None

    def prompt(self) -> str:
        text = PROMPT.format(task=self.task)
        if self.prompt_chars is not None and len(text) > self.prompt_chars:
            text = text[: self.prompt_chars]
        return text

    def attempt(self) -> SandboxResult:
        self.number += 1
        settings = self.agent.settings
        deps = self.agent.deps
        prompt = self.prompt()
        request = Generate(prompt=prompt, max_tokens=settings.max_tokens, seed=attempt_seed(self.seed, self.number))
        try:
            completion: Completion = deps["llm"].ask(request, timeout=settings.ask_timeout)
        except ModelCrashed:
            self.prompt_chars = max(1, len(prompt) // 2)  # the next attempt asks with a shorter prompt
            raise
        self.code = extract_code(completion.text)
        result: SandboxResult = deps["sandbox"].ask(
            RunPython(code=self.code, timeout=settings.run_timeout), timeout=settings.ask_timeout
        )
        self.last_result = result
        if result.killed:
            raise RunFailed(f"the program was killed ({result.reason}) after {result.duration:.2f} s", result)
        if result.exit_code != 0:
            last_line = result.stderr.strip().splitlines()[-1:] or [f"reason {result.reason}"]
            raise RunFailed(f"the program exited with code {result.exit_code}: {last_line[0][:200]}", result)
        return result
