"""The Agent example plugin: real LLM (offline model) and Sandbox plugins, a real log.

The agent asks the model for code and runs it in the sandbox; failed attempts go through
the error handler (retried, then given up), a model crash restarts the LLM plugin and the
agent retries with a shorter prompt, a dropped connection is retried inside the LLM
plugin. Seeds that make each of these happen are found deterministically with the
offline model itself, then given to `Solve`.
"""

from __future__ import annotations

import ast
import contextlib
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from actor_helpers import read_log
from actorlog.actors import ActorSystem, DependencyError, Plugin, StartError
from actorlog.actors.examples.agent import (
    PROMPT,
    AgentConfig,
    AgentConfigError,
    AgentPlugin,
    Solution,
    Solve,
    attempt_seed,
    extract_code,
    load_config,
)
from actorlog.actors.examples.llm import (
    BackendUnavailable,
    Generate,
    GenerationError,
    LLMPlugin,
    OfflineBackend,
)
from actorlog.actors.examples.sandbox import SandboxPlugin
from actorlog.store.records import EventRecord
from hypothesis import given
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

RUN_FAILED = "actorlog.actors.examples.agent.RunFailed"
GENERATION_ERROR = "actorlog.actors.examples.llm.GenerationError"
BACKEND_UNAVAILABLE = "actorlog.actors.examples.llm.BackendUnavailable"
MODEL_CRASHED = "actorlog.actors.examples.llm.ModelCrashed"

SORT_TASK = "Write a function that sorts a list of numbers"
FIB_TASK = "Return the first n Fibonacci numbers"


@contextlib.contextmanager
def agent_system(
    path: Path, *, llm: dict[str, Any] | None = None, sandbox: dict[str, Any] | None = None,
    agent: dict[str, Any] | None = None,
) -> Iterator[ActorSystem]:
    """A started system with the three example plugins under their usual names."""
    with ActorSystem(path) as system:
        system.register("llm", LLMPlugin, config=llm or {})
        system.register("sandbox", SandboxPlugin, config={"cpu_seconds": 1, "wall_timeout": 20.0, **(sandbox or {})})
        system.register("agent", AgentPlugin, config={"retry_delay": 0.0, **(agent or {})})
        system.start()
        yield system


def solve(system: ActorSystem, task: str, seed: int | None = None) -> Solution:
    solution: Solution = system.ask("agent", Solve(task=task, seed=seed), timeout=120)
    return solution


def generation(prompt: str, seed: int, backend: OfflineBackend | None = None, attempt: int = 1) -> str | None:
    """The offline model's text for the agent's request, or None when it fails."""
    try:
        return (backend or OfflineBackend()).generate(Generate(prompt=prompt, max_tokens=512, seed=seed), seed, attempt).text
    except GenerationError:
        return None


def printed_call_argument(code: str) -> Any:
    """The literal the generated program passes to its function in its last line."""
    call = re.search(r"^print\(\w+\((.*)\)\)$", code, re.MULTILINE)
    assert call is not None, code
    return ast.literal_eval(call.group(1))


def llm_requests(path: Path) -> list[EventRecord]:
    return [r for r in read_log(path, kinds=["message.received"]) if r.event.recipient == "llm"]


def failures(path: Path, task: str) -> list[EventRecord]:
    return [r for r in read_log(path, kinds=["failure.raised"]) if r.event.plugin == task]


# -- solving ---------------------------------------------------------------------------------------


def test_a_normal_task_is_solved_in_one_attempt_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    with agent_system(path) as system:
        solution = solve(system, SORT_TASK, seed=11)
        again = solve(system, SORT_TASK, seed=11)
    assert solution.solved and solution.attempts == 1 and solution.error is None
    assert solution.task == SORT_TASK
    expected_text = generation(PROMPT.format(task=SORT_TASK), attempt_seed(11, 1))
    assert expected_text is not None and solution.code == extract_code(expected_text)
    numbers = printed_call_argument(solution.code)
    assert ast.literal_eval(solution.stdout.strip()) == sorted(numbers)
    assert msgspec.structs.replace(again, sandbox_id=solution.sandbox_id) == solution  # same seed, same attempt
    assert again.sandbox_id != solution.sandbox_id

    finished = read_log(path, kinds=["agent.task_finished"])
    assert [(r.actor, r.event.task, r.event.solved, r.event.attempts, r.event.exc_type) for r in finished] == [
        ("agent", SORT_TASK, True, 1, None)] * 2
    assert finished[0].event.sandbox_id == solution.sandbox_id
    ran = [r.event for r in read_log(path, kinds=["sandbox.finished"]) if r.event.sandbox_id == solution.sandbox_id]
    assert [(e.exit_code, e.stdout) for e in ran] == [(0, solution.stdout)]
    assert read_log(path, kinds=["failure.raised"]) == []
    timed = [r.event for r in read_log(path, kinds=["operation.timed"]) if r.event.name == "agent.solve"]
    assert [t.ok for t in timed] == [True, True]


def test_a_task_without_a_seed_draws_one_from_the_recorded_randomness(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    with agent_system(path) as system:
        solution = solve(system, FIB_TASK)
    assert solution.solved
    received = read_log(path, kinds=["message.received"])
    solve_seed = next(r.event.seed for r in received if r.event.recipient == "agent")
    drawn = random.Random(solve_seed).getrandbits(63)  # the handler's randomness is seeded from the recorded seed
    assert [r.event.message["seed"] for r in llm_requests(path)] == [attempt_seed(drawn, 1)]


def test_a_program_that_runs_forever_is_retried_then_given_up(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    task = "Write a loop that runs forever"
    with agent_system(path, sandbox={"cpu_seconds": 1}, agent={"max_retries": 1}) as system:
        solution = solve(system, task, seed=3)
    assert not solution.solved and solution.attempts == 2
    assert solution.error is not None and solution.error.startswith(f"{RUN_FAILED}: the program was killed (cpu)")
    assert "while True" in solution.code

    killed = read_log(path, kinds=["sandbox.killed"])
    assert [r.event.reason for r in killed] == ["cpu", "cpu"]
    assert solution.sandbox_id == killed[-1].event.sandbox_id

    raised = failures(path, "agent.attempt")
    assert [(r.actor, r.event.exc_type) for r in raised] == [("agent", RUN_FAILED)] * 2
    assessed = {r.event.failure_seq: r.event for r in read_log(path, kinds=["failure.assessed"])}
    decided = {r.event.failure_seq: r.event for r in read_log(path, kinds=["recovery.decided"])}
    assert [assessed[r.seq].exc_type for r in raised] == [RUN_FAILED] * 2
    assert [decided[r.seq].action for r in raised] == ["retry", "stop"]
    scheduled = read_log(path, kinds=["retry.scheduled"])
    assert [(r.actor, r.event.task, r.event.attempt, r.event.exc_type) for r in scheduled] == [
        ("agent", "agent.attempt", 1, RUN_FAILED)]
    gave_up = read_log(path, kinds=["task.gave_up"])
    assert [(r.actor, r.event.task, r.event.attempts, r.event.exc_type) for r in gave_up] == [
        ("agent", "agent.attempt", 2, RUN_FAILED)]
    # One story: every step of the retries carries the correlation of the Solve message.
    solve_message = next(r for r in read_log(path, kinds=["message.received"]) if r.event.recipient == "agent")
    assert {r.correlation for r in [*raised, *scheduled, *gave_up]} == {solve_message.correlation}

    finished = read_log(path, kinds=["agent.task_finished"])
    assert [(e.solved, e.attempts, e.exc_type) for e in (r.event for r in finished)] == [(False, 2, RUN_FAILED)]
    timed = [r.event for r in read_log(path, kinds=["operation.timed"]) if r.event.name == "agent.solve"]
    assert [t.ok for t in timed] == [False]


def test_a_failed_generation_is_retried_with_the_next_attempt_seed(tmp_path: Path) -> None:
    prompt = PROMPT.format(task=FIB_TASK)
    flaky = OfflineBackend(failure_rate=0.5)
    seed = next(s for s in range(1000) if generation(prompt, attempt_seed(s, 1), flaky) is None
                and generation(prompt, attempt_seed(s, 2), flaky) is not None)
    path = tmp_path / "agent.db"
    with agent_system(path, llm={"failure_rate": 0.5}) as system:
        solution = solve(system, FIB_TASK, seed=seed)
    assert solution.solved and solution.attempts == 2
    second = generation(prompt, attempt_seed(seed, 2))
    assert second is not None and solution.code == extract_code(second)
    n = printed_call_argument(solution.code)
    fib = [0, 1]
    while len(fib) < n:
        fib.append(fib[-1] + fib[-2])
    assert ast.literal_eval(solution.stdout.strip()) == fib[:n]

    requests = llm_requests(path)
    assert [r.event.message["seed"] for r in requests] == [attempt_seed(seed, 1), attempt_seed(seed, 2)]
    assert [r.event.message["prompt"] for r in requests] == [prompt, prompt]
    llm_failures = failures(path, "llm")
    assert [(r.event.exc_type, r.event.trigger_seq) for r in llm_failures] == [(GENERATION_ERROR, requests[0].seq)]
    assert [r.event.exc_type for r in failures(path, "agent.attempt")] == [GENERATION_ERROR]
    assert [r.event.task for r in read_log(path, kinds=["retry.scheduled"])] == ["agent.attempt"]


def test_a_model_crash_restarts_the_llm_and_a_shorter_prompt_succeeds(tmp_path: Path) -> None:
    task = "Sort these numbers: " + ", ".join(str(n) for n in range(40, 0, -1))
    prompt = PROMPT.format(task=task)
    context = 150
    assert len(prompt) // 2 <= context < len(prompt)  # the full prompt crashes the model, half of it fits
    path = tmp_path / "agent.db"
    with agent_system(path, llm={"context_chars": context}) as system:
        solution = solve(system, task, seed=4)
        restarts = system.restarts("llm")
        state = system.state("llm")
    assert restarts == 1 and state == "running"
    assert solution.solved and solution.attempts == 2
    assert ast.literal_eval(solution.stdout.strip()) == sorted(printed_call_argument(solution.code))

    assert [len(r.event.message["prompt"]) for r in llm_requests(path)] == [len(prompt), len(prompt) // 2]
    assert [r.event.exc_type for r in failures(path, "llm")] == [MODEL_CRASHED]
    assert [r.event.exc_type for r in failures(path, "agent.attempt")] == [MODEL_CRASHED]
    restarted = read_log(path, kinds=["plugin.restarted"])
    assert [(r.event.plugin, r.event.restart_count) for r in restarted] == [("llm", 1)]
    crash = failures(path, "llm")[0]
    decided = [r.event for r in read_log(path, kinds=["recovery.decided"]) if r.event.failure_seq == crash.seq]
    assert [d.action for d in decided] == ["restart"]


def test_a_dropped_connection_is_retried_inside_the_llm_plugin(tmp_path: Path) -> None:
    prompt = PROMPT.format(task=FIB_TASK)
    shaky = OfflineBackend(connection_error_rate=0.5)

    def drops(seed: int, attempt: int) -> bool:
        try:
            shaky.generate(Generate(prompt=prompt, max_tokens=512, seed=seed), seed, attempt)
        except BackendUnavailable:
            return True
        return False

    seed = next(s for s in range(1000) if drops(attempt_seed(s, 1), 1) and not drops(attempt_seed(s, 1), 2))
    path = tmp_path / "agent.db"
    with agent_system(path, llm={"connection_error_rate": 0.5, "retry_delay": 0.0}) as system:
        solution = solve(system, FIB_TASK, seed=seed)
        restarts = system.restarts("llm")
    assert solution.solved and solution.attempts == 1  # the agent never saw the dropped connection
    assert restarts == 0
    assert [r.event.message["seed"] for r in llm_requests(path)] == [attempt_seed(seed, 1)]

    dropped = failures(path, "llm.connection")
    assert [(r.actor, r.event.exc_type) for r in dropped] == [("llm", BACKEND_UNAVAILABLE)]
    decided = [r.event for r in read_log(path, kinds=["recovery.decided"]) if r.event.failure_seq == dropped[0].seq]
    assert [d.action for d in decided] == ["retry"]
    scheduled = read_log(path, kinds=["retry.scheduled"])
    assert [(r.actor, r.event.task, r.event.attempt, r.event.exc_type) for r in scheduled] == [
        ("llm", "llm.connection", 1, BACKEND_UNAVAILABLE)]
    assert scheduled[0].correlation == dropped[0].correlation
    succeeded = [r.event for r in read_log(path, kinds=["task.succeeded"]) if r.event.task == "llm.connection"]
    assert [s.attempts for s in succeeded] == [2]
    assert failures(path, "agent.attempt") == [] and failures(path, "llm") == []


# -- config and dependencies ---------------------------------------------------------------------


@pytest.mark.parametrize(("config", "key"), [
    ({"colour": "blue"}, "colour"),
    ({"max_retries": "two"}, "max_retries"),
    ({"max_retries": -1}, "max_retries"),
    ({"retry_delay": -0.5}, "retry_delay"),
    ({"run_timeout": 0}, "run_timeout"),
    ({"max_tokens": 0}, "max_tokens"),
])
def test_a_bad_agent_config_fails_the_start_naming_the_key(tmp_path: Path, config: dict[str, Any], key: str) -> None:
    path = tmp_path / "agent.db"
    with ActorSystem(path) as system:
        system.register("llm", LLMPlugin)
        system.register("sandbox", SandboxPlugin)
        system.register("agent", AgentPlugin, config=config)
        with pytest.raises(StartError) as info:
            system.start()
    assert info.value.plugin == "agent"
    assert "AgentConfigError" in str(info.value) and key in str(info.value)
    with pytest.raises(AgentConfigError, match=key):
        load_config(config)
    stopped = [r.event.plugin for r in read_log(path, kinds=["plugin.stopped"])]
    assert sorted(stopped) == ["llm", "sandbox"]  # what had started was stopped again
    assert [r.event.plugin for r in read_log(path, kinds=["plugin.failed"])] == ["agent"]


def test_the_agent_needs_its_sandbox(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "agent.db") as system:
        system.register("llm", LLMPlugin)
        system.register("agent", AgentPlugin)
        with pytest.raises(DependencyError, match="'sandbox'"):
            system.start()
    assert read_log(tmp_path / "agent.db", kinds=["plugin.started"]) == []


class NewerSandbox(Plugin):
    """A sandbox of a major version the agent does not accept."""

    version = "2.0.0"


def test_the_agent_refuses_a_sandbox_of_another_major_version(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "agent.db") as system:
        system.register("llm", LLMPlugin)
        system.register("sandbox", NewerSandbox)
        system.register("agent", AgentPlugin)
        with pytest.raises(DependencyError, match=r"'sandbox' >=1\.0,<2") as info:
            system.start()
    assert "2.0.0" in str(info.value)
    assert read_log(tmp_path / "agent.db", kinds=["plugin.started"]) == []


# -- properties -------------------------------------------------------------------------------------

CODE_TEXT = st.text(st.characters(exclude_characters="`", codec="utf-8"), max_size=80)


@given(seed=st.integers(min_value=-(2**63), max_value=2**63 - 1), attempt=st.integers(min_value=1, max_value=50))
def test_attempt_seeds_are_deterministic_distinct_and_fit_a_message(seed: int, attempt: int) -> None:
    value = attempt_seed(seed, attempt)
    assert value == attempt_seed(seed, attempt)
    assert 0 <= value < 2**63
    assert value != attempt_seed(seed, attempt + 1)
    assert msgspec.json.decode(msgspec.json.encode(Generate(prompt="x", seed=value)), type=Generate).seed == value


@given(before=CODE_TEXT, lang=st.sampled_from(["", "python", "py", "python ", "py\t"]), code=CODE_TEXT,
       after=CODE_TEXT, second=CODE_TEXT)
def test_extract_code_takes_the_first_fenced_block(before: str, lang: str, code: str, after: str, second: str) -> None:
    body = code if code.endswith("\n") or not code else code + "\n"
    text = f"{before}\n```{lang}\n{body}```{after}\n```python\n{second}\n```\n"
    assert extract_code(text) == body


@given(text=CODE_TEXT)
def test_extract_code_without_a_fence_is_the_whole_text(text: str) -> None:
    assert extract_code(text) == text


@given(st.builds(
    AgentConfig,
    max_retries=st.integers(0, 20), retry_delay=st.floats(0, 60), max_tokens=st.integers(1, 10_000),
    run_timeout=st.none() | st.floats(0.001, 600), ask_timeout=st.floats(0.001, 600), output_chars=st.integers(0, 10**6),
))
def test_agent_config_round_trips_through_its_plain_form(config: AgentConfig) -> None:
    plain = msgspec.to_builtins(config)
    assert load_config(plain) == config
    assert load_config(msgspec.json.decode(msgspec.json.encode(plain))) == config


def test_an_empty_agent_config_is_the_default() -> None:
    assert load_config({}) == AgentConfig()
