"""The LLM example plugin: the offline model, the OpenAI-compatible backend, and its secrets."""

from __future__ import annotations

import contextlib
import io
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actor_helpers import read_log
from actorlog.actors import ActorSystem, StartError
from actorlog.actors.examples.llm import (
    OFFLINE_MODEL,
    BackendHTTPError,
    Completion,
    Generate,
    GenerationError,
    GenerationTimeout,
    InvalidResponseError,
    LLMConfigError,
    LLMPlugin,
    OfflineBackend,
    OpenAICompatibleBackend,
    Secret,
    parse_config,
)
from actorlog.replay.reproduce import reproduce
from llm_helpers import FakeLLMServer

KEY = "sk-test-SECRET-123"
KEY_ENV = "ACTORLOG_TEST_LLM_KEY"


@contextlib.contextmanager
def llm_system(path: Path, **config: Any) -> Iterator[ActorSystem]:
    """A started system running only the LLM plugin (as ``llm``) with ``config``."""
    with ActorSystem(path) as system:
        system.register("llm", LLMPlugin, config=config)
        system.start()
        yield system


def outcome(system: ActorSystem, message: Generate) -> tuple[str, str]:
    """("ok", text) or (exception type, message) of asking the plugin."""
    try:
        reply: Completion = system.ask("llm", message, timeout=10)
    except GenerationError as exc:
        return (type(exc).__name__, str(exc))
    return ("ok", reply.text)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with FakeLLMServer() as fake:
        yield fake


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


def http_config(server: FakeLLMServer, **extra: Any) -> dict[str, Any]:
    return {"backend": "openai", "base_url": server.base_url, "model": "test-model", "api_key_env": KEY_ENV, **extra}


# -- the offline model --------------------------------------------------------------------------


def test_same_prompt_and_seed_give_the_same_text_across_systems(tmp_path: Path) -> None:
    prompts = ["write code to sort a list", "what is event sourcing?", "write a function"]
    replies = []
    for name in ("a.db", "b.db"):
        with llm_system(tmp_path / name) as system:
            replies.append([system.ask("llm", Generate(prompt=p, seed=7), timeout=10) for p in prompts])
    assert replies[0] == replies[1]
    first = replies[0][0]
    assert (first.backend, first.model, first.seed, first.finish_reason) == ("offline", OFFLINE_MODEL, 7, "stop")
    assert first.tokens == len(first.text.split())
    assert "def " in first.text and "sort" in first.text


def test_different_seeds_usually_give_different_text(tmp_path: Path) -> None:
    with llm_system(tmp_path / "app.db") as system:
        texts = {system.ask("llm", Generate(prompt="write code to sort a list", seed=s), timeout=10).text
                 for s in range(10)}
    assert len(texts) > 1


def test_without_a_seed_one_is_drawn_and_reported(tmp_path: Path) -> None:
    with llm_system(tmp_path / "app.db") as system:
        first = system.ask("llm", Generate(prompt="reverse a list"), timeout=10)
        again = system.ask("llm", Generate(prompt="reverse a list", seed=first.seed), timeout=10)
    assert first.seed is not None
    assert again.text == first.text


@pytest.mark.parametrize("prompt", [
    "write code to sort a list", "sum of numbers", "find the largest value", "keep the even numbers",
    "square every item", "remove duplicates", "fibonacci", "factorial", "list the primes",
    "is it a palindrome", "count words", "write a python script",
])
def test_offline_code_runs(prompt: str) -> None:
    backend = OfflineBackend()
    for seed in range(4):
        text = backend.generate(Generate(prompt=prompt), seed).text
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(text, f"<offline {prompt!r} seed {seed}>", "exec"), {})  # noqa: S102 - our own output
        assert printed.getvalue().strip(), text


def test_max_tokens_cuts_the_text(tmp_path: Path) -> None:
    with llm_system(tmp_path / "app.db") as system:
        short = system.ask("llm", Generate(prompt="write code to sort a list", max_tokens=3, seed=1), timeout=10)
        full = system.ask("llm", Generate(prompt="write code to sort a list", seed=1), timeout=10)
        with pytest.raises(ValueError, match="max_tokens"):
            system.ask("llm", Generate(prompt="x", max_tokens=0), timeout=10)
    assert (short.tokens, short.finish_reason) == (3, "length")
    assert full.text.startswith(short.text) and len(short.text.split()) == 3


def test_failure_rate_one_always_fails_and_zero_never(tmp_path: Path) -> None:
    messages = [Generate(prompt=f"task {i}") for i in range(10)]
    with llm_system(tmp_path / "always.db", failure_rate=1.0) as system:
        for message in messages:
            with pytest.raises(GenerationError, match="simulated failure"):
                system.ask("llm", message, timeout=10)
    with llm_system(tmp_path / "never.db", failure_rate=0.0) as system:
        assert all(outcome(system, m)[0] == "ok" for m in messages)


def test_failure_pattern_is_reproducible_with_fixed_seeds(tmp_path: Path) -> None:
    messages = [Generate(prompt=f"write code for task {i}", seed=1000 + i) for i in range(30)]
    patterns = []
    for name in ("a.db", "b.db"):
        with llm_system(tmp_path / name, failure_rate=0.5) as system:
            patterns.append([outcome(system, m) for m in messages])
    assert patterns[0] == patterns[1]
    kinds = {kind for kind, _ in patterns[0]}
    assert kinds == {"ok", "GenerationError"}


def test_a_failure_with_a_drawn_seed_is_reproduced_from_the_log(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with llm_system(path, failure_rate=0.5) as system:
        outcomes = [outcome(system, Generate(prompt=f"write code for task {i}")) for i in range(40)]
    assert any(kind == "GenerationError" for kind, _ in outcomes)
    failures = read_log(path, kinds=["failure.raised"])
    assert failures
    for record in failures[:3]:
        result = reproduce(str(path), record.seq)
        assert result.reproduced, result.notes
        assert result.exc_type is not None and result.exc_type.endswith("GenerationError")


def test_generations_are_timed_with_their_outcome(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    messages = [Generate(prompt=f"write code for task {i}", seed=i) for i in range(20)]
    with llm_system(path, failure_rate=0.5, model="tiny") as system:
        results = [outcome(system, m)[0] == "ok" for m in messages]
    timed = [r.event for r in read_log(path, kinds=["operation.timed"]) if r.event.name == "llm.generate"]
    assert sorted(t.ok for t in timed) == sorted(results)
    assert {True, False} <= {t.ok for t in timed}
    assert all(t.tags == {"backend": "offline", "model": "tiny"} for t in timed)


def test_offline_health_is_good(tmp_path: Path) -> None:
    with llm_system(tmp_path / "app.db") as system:
        assert system.check_health("llm")["llm"].healthy


# -- the OpenAI-compatible backend --------------------------------------------------------------


def test_http_success(tmp_path: Path, server: FakeLLMServer, key: str) -> None:
    path = tmp_path / "app.db"
    with llm_system(path, **http_config(server)) as system:
        reply = system.ask("llm", Generate(prompt="say hello", max_tokens=32), timeout=10)
        seeded = system.ask("llm", Generate(prompt="again", seed=5), timeout=10)
        health = system.check_health("llm")["llm"]
    assert reply == Completion(text=server.reply_text, model="test-model-0613", backend="openai", tokens=5)
    assert seeded.text == server.reply_text
    assert health.healthy and KEY_ENV in health.detail and key not in health.detail
    first, second = server.requests
    assert (first.method, first.path) == ("POST", "/v1/chat/completions")
    headers = {name.lower(): value for name, value in first.headers.items()}
    assert headers["authorization"] == f"Bearer {key}"
    assert headers["content-type"] == "application/json"
    assert first.body == {"model": "test-model", "messages": [{"role": "user", "content": "say hello"}], "max_tokens": 32}
    assert second.body["seed"] == 5
    timed = [r.event for r in read_log(path, kinds=["operation.timed"]) if r.event.name == "llm.generate"]
    assert [t.ok for t in timed] == [True, True]
    assert timed[0].tags == {"backend": "openai", "model": "test-model"}


def test_http_without_a_key_variable_sends_no_authorization(tmp_path: Path, server: FakeLLMServer) -> None:
    with llm_system(tmp_path / "app.db", **http_config(server, api_key_env=None)) as system:
        assert system.ask("llm", Generate(prompt="hi"), timeout=10).text == server.reply_text
    assert "authorization" not in {name.lower() for name in server.requests[0].headers}


@pytest.mark.parametrize("status", [500, 401])
def test_http_error_status_is_a_clear_error(tmp_path: Path, server: FakeLLMServer, key: str, status: int) -> None:
    server.mode, server.status = "status", status
    server.error_body = {"error": {"message": f"Incorrect API key provided: {key}"}}  # servers may echo it
    with llm_system(tmp_path / "app.db", **http_config(server)) as system:
        with pytest.raises(BackendHTTPError) as info:
            system.ask("llm", Generate(prompt="hi"), timeout=10)
    error = info.value
    assert (error.status, error.endpoint) == (status, f"{server.base_url}/chat/completions")
    text = str(error)
    assert f"HTTP {status}" in text and error.endpoint in text and "Incorrect API key provided" in text
    assert key not in text and key not in repr(error)
    if status == 401:
        assert KEY_ENV in text


def test_http_slow_server_times_out(tmp_path: Path, server: FakeLLMServer, key: str) -> None:
    server.mode = "slow"
    path = tmp_path / "app.db"
    with llm_system(path, **http_config(server, timeout=0.2)) as system:
        with pytest.raises(GenerationTimeout) as info:
            system.ask("llm", Generate(prompt="hi"), timeout=10)
    assert isinstance(info.value, TimeoutError)
    assert "did not answer within" in str(info.value) and "0.2" in str(info.value)
    timed = [r.event for r in read_log(path, kinds=["operation.timed"]) if r.event.name == "llm.generate"]
    assert [t.ok for t in timed] == [False]


@pytest.mark.parametrize("mode, expected", [("malformed", "not valid JSON"), ("wrong_shape", "unexpected shape")])
def test_http_bad_answer_is_a_clear_error(tmp_path: Path, server: FakeLLMServer, key: str, mode: str, expected: str) -> None:
    server.mode = mode
    with llm_system(tmp_path / "app.db", **http_config(server)) as system:
        with pytest.raises(InvalidResponseError, match=expected):
            system.ask("llm", Generate(prompt="hi"), timeout=10)


def test_unreachable_server_is_a_clear_error(tmp_path: Path, key: str) -> None:
    with socket.socket() as probe:  # a port nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = {"backend": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": "m", "api_key_env": KEY_ENV}
    with llm_system(tmp_path / "app.db", **config) as system:
        with pytest.raises(GenerationError, match="cannot reach") as info:
            system.ask("llm", Generate(prompt="hi"), timeout=10)
    assert key not in str(info.value)


def test_missing_key_variable_fails_the_start_naming_it(
    tmp_path: Path, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("llm", LLMPlugin, config=http_config(server))
        with pytest.raises(StartError) as info:
            system.start()
    assert KEY_ENV in str(info.value) and "not set" in str(info.value)
    assert server.requests == []


def test_health_reports_a_key_that_went_missing(server: FakeLLMServer, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = OpenAICompatibleBackend(server.base_url, "m", KEY_ENV)
    assert backend.health().healthy
    monkeypatch.delenv(KEY_ENV)
    health = backend.health()
    assert not health.healthy and KEY_ENV in health.detail
    assert server.requests == []  # health checks never call the network


# -- secrets --------------------------------------------------------------------------------------


def test_the_key_appears_nowhere(tmp_path: Path, server: FakeLLMServer, key: str) -> None:
    path = tmp_path / "app.db"
    errors: list[BaseException] = []
    config = http_config(server, timeout=0.2)
    with llm_system(path, **config) as system:
        assert system.ask("llm", Generate(prompt="say hello"), timeout=10).text == server.reply_text
        server.error_body = {"error": {"message": f"Incorrect API key provided: {key}"}}
        for mode, status in [("status", 401), ("status", 500), ("malformed", 0), ("slow", 0)]:
            server.mode, server.status = mode, status
            try:
                system.ask("llm", Generate(prompt=f"mode {mode} {status}"), timeout=10)
            except GenerationError as exc:
                errors.append(exc)
            server.mode = "ok"
        system.check_health("llm")
    assert len(errors) == 4
    assert server.requests[0].headers["Authorization"] == f"Bearer {key}"  # it was really used

    # not in any error
    for error in errors:
        for text in (str(error), repr(error), repr(error.args)):
            assert key not in text
    # not in the repr of any config or of the backend
    parsed = parse_config(config)
    backend = OpenAICompatibleBackend(server.base_url, "m", KEY_ENV)
    for obj in (parsed, backend, backend.api_key(), config):
        assert key not in repr(obj) and key not in str(obj)
    assert "***" in repr(backend.api_key())
    # not in the log: neither in the bytes of its files nor in any column of any row
    files = [p for p in tmp_path.iterdir() if p.name.startswith(path.name)]
    assert path in files
    for file in files:
        assert key.encode() not in file.read_bytes(), file.name
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT * FROM events").fetchall()
    finally:
        connection.close()
    text = "\n".join(str(value) for row in rows for value in row)
    assert "say hello" in text and "Incorrect API key provided: ***" in text  # the log did record the run
    assert key not in text


def test_secret_masks_itself() -> None:
    secret = Secret(KEY)
    assert KEY not in repr(secret) and KEY not in str(secret) and KEY not in f"{secret}"
    assert secret.reveal() == KEY
    assert secret.redact(f"echo {KEY}!") == "echo ***!"
    import pickle  # noqa: PLC0415

    with pytest.raises(TypeError):
        pickle.dumps(secret)


# -- bad config -------------------------------------------------------------------------------------


@pytest.mark.parametrize("config, key_named", [
    ({"modle": "x"}, "'modle'"),
    ({"api_key": "sk-test-SECRET-123"}, "'api_key'"),
    ({"timeout": "fast"}, "'timeout'"),
    ({"timeout": 0}, "'timeout'"),
    ({"failure_rate": 2}, "'failure_rate'"),
    ({"backend": "gpt"}, "'backend'"),
    ({"backend": "openai", "model": "m"}, "'base_url'"),
    ({"backend": "openai", "base_url": "ftp://example.org"}, "'base_url'"),
    ({"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}, "'model'"),
    ({"api_key_env": "not a variable name"}, "'api_key_env'"),
])
def test_bad_config_fails_the_start_naming_the_key(tmp_path: Path, config: dict[str, Any], key_named: str) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("llm", LLMPlugin, config=config)
        with pytest.raises(StartError) as info:
            system.start()
    text = str(info.value)
    assert "LLMConfigError" in text and key_named in text, text
    assert KEY not in text
    with pytest.raises(LLMConfigError):
        parse_config(config)


def test_a_secret_looking_unknown_key_gets_a_hint() -> None:
    with pytest.raises(LLMConfigError, match="api_key_env") as info:
        parse_config({"api_key": KEY})
    assert "environment variable" in str(info.value) and KEY not in str(info.value)
