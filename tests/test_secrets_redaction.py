"""Secrets never reach the log (issue 15, "Secrets are written into the append-only log").

A secret in the append-only, hash-chained log cannot be removed without breaking the
chain. Every test here plants secrets in configs and error texts of real systems writing
real SQLite files, then looks for them in the log, its -wal and -shm files, what every
CLI command prints about the log, and the exceptions raised.
"""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
import traceback
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actor_helpers import read_log, share, shared
from actorlog.actors import ActorSystem, RegistrationError, StartError
from actorlog.actors.examples.llm import Generate, GenerationError, LLMConfigError, LLMPlugin, parse_config
from llm_helpers import FakeLLMServer
from replay_helpers import run_cli
from secrets_helpers import (
    FRAME_SAFE,
    FRAMES,
    SHAPES,
    Fail,
    LeakyPlugin,
    cli_output,
    everything_written,
    leaks,
    log_files,
    random_secret,
    random_token,
)

RNG = random.Random(15)
KEY = SHAPES["openai"](RNG)
GITHUB = SHAPES["github"](RNG)
JWT = SHAPES["jwt"](RNG)
AWS = SHAPES["aws"](RNG)


def exception_texts(exc: BaseException) -> bytes:
    """Everything an exception shows of itself: str, repr and its traceback (without the
    exceptions chained to it, which are the application's own)."""
    return (str(exc) + repr(exc) + "".join(traceback.format_exception(exc, chain=False))).encode()


def failure_seqs(path: Path, plugin: str) -> list[int]:
    return [r.seq for r in read_log(path, kinds=["failure.raised"]) if r.event.plugin == plugin and r.event.trigger_seq]


# -- a credential where a name belongs is refused ----------------------------------------------------


@pytest.mark.parametrize(("config", "where", "secret"), [
    ({"api_key_env": KEY}, "'api_key_env'", KEY),
    ({"backend": "openai", "api_key_env": GITHUB}, "'api_key_env'", GITHUB),
    ({"auth": {"token_var": JWT}}, "'auth.token_var'", JWT),
    ({"backends": [{"key_env": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}]},
     "'backends[0].key_env'", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    ({"api_key_env": "Zm9vYmFyQmF6UXV4MTIzNDU2Nzg5MEFCQ2RlZkdISUpL"}, "'api_key_env'",
     "Zm9vYmFyQmF6UXV4MTIzNDU2Nzg5MEFCQ2RlZkdISUpL"),
    ({"api_key_env": "P@ssw0rd!2024-prod"}, "'api_key_env'", "P@ssw0rd!2024-prod"),
])
def test_a_credential_where_a_variable_name_belongs_is_refused_before_anything_is_logged(
    tmp_path: Path, config: dict[str, Any], where: str, secret: str,
) -> None:
    """Today: registered, and logged verbatim in plugin.registered (pytest.raises: DID NOT RAISE)."""
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        with pytest.raises(RegistrationError) as info:
            system.register("llm", LLMPlugin, config=config)
        text = str(info.value)
        assert where in text and "NAME of an environment variable" in text and "\n" not in text
        assert secret.encode() not in exception_texts(info.value)
        system.register("fine", LLMPlugin, config={"api_key_env": "OPENAI_API_KEY", "token_var": "MY_TOKEN_2"})
    assert [r.event.plugin for r in read_log(path, kinds=["plugin.registered"])] == ["fine"]
    assert not leaks(secret, log_files(path))


def test_a_config_file_with_a_credential_where_a_name_belongs_exits_2_without_echoing_it(tmp_path: Path) -> None:
    """Today: `actorlog run` starts, and logs the key in plugin.registered."""
    config = tmp_path / "evil.toml"
    config.write_text(
        'log = "app.db"\n[plugins.llm]\nclass = "actorlog.actors.examples.llm:LLMPlugin"\n'
        f'config = {{ api_key_env = "{KEY}" }}\n'
    )
    done = run_cli("run", config, timeout=60)
    assert done.returncode == 2 and KEY not in done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "'api_key_env'" in done.stderr
    assert "evil.toml: key `plugins.llm.config`" in done.stderr
    assert not (tmp_path / "app.db").exists()  # refused while the file was checked, before the log was opened


def test_a_plugin_without_a_check_of_its_own_is_refused_the_same_from_a_config_file(tmp_path: Path) -> None:
    """The generic rule, not a plugin's own `validate_config` (audit G5): `Worker` checks
    nothing, yet ``token_var = "ghp_..."`` is refused while the file is checked. Today (before
    the generic check): `actorlog run` starts and logs the token in plugin.registered."""
    config = tmp_path / "evil.toml"
    config.write_text(
        'log = "app.db"\n[plugins.worker]\nclass = "actor_helpers:Worker"\n'
        f'config = {{ token_var = "{GITHUB}" }}\n'
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    try:
        done = run_cli("run", config, env=env, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("actorlog run started the system: the token went into plugin.registered")
    assert done.returncode == 2 and GITHUB not in done.stdout + done.stderr, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "'token_var'" in done.stderr, done.stderr
    assert "evil.toml: key `plugins.worker.config`" in done.stderr
    assert not (tmp_path / "app.db").exists()


# -- configs, at any depth ----------------------------------------------------------------------------


def test_secrets_anywhere_in_a_config_are_redacted_in_the_log(tmp_path: Path) -> None:
    """Today: headers, lists, URL credentials and query parameters are logged in full."""
    user_key, query_key, cookie, pasted = (random_secret(RNG) for _ in range(4))
    config = {
        "headers": {"Authorization": f"Bearer {KEY}", "X-Api-Key": user_key, "Cookie": f"sid={cookie}",
                    "Accept": "application/json"},
        "keys": [GITHUB, JWT],
        "base_url": f"https://deploy:{query_key}@api.example.com/v1",
        "webhook": f"https://hooks.example.com/in?channel=ops&token={pasted}",
        "nested": [{"deeper": {"client_secret": "s3cr3t-value-42", "region": "eu"}}],
        "key_path": AWS, "model": "offline", "retries": 3,
    }
    secrets = [KEY, user_key, cookie, GITHUB, JWT, query_key, pasted, "s3cr3t-value-42", AWS]
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("w", LeakyPlugin, config={"texts": share({}), **config})
        system.flush()
        live = log_files(path)
    (registered,) = [r.event for r in read_log(path, kinds=["plugin.registered"])]
    assert registered.config["headers"] == {"Authorization": "***", "X-Api-Key": "***", "Cookie": "***",
                                            "Accept": "application/json"}
    assert registered.config["keys"] == ["***", "***"]
    assert registered.config["base_url"] == "https://***@api.example.com/v1"
    assert registered.config["webhook"] == "https://hooks.example.com/in?channel=ops&token=***"
    assert registered.config["nested"] == [{"deeper": {"client_secret": "***", "region": "eu"}}]
    assert registered.config["key_path"] == "***"  # a key naming where a secret lives is still redacted as text
    assert (registered.config["model"], registered.config["retries"]) == ("offline", 3)
    places = {**live, **everything_written(path, [])}
    for secret in secrets:
        assert not leaks(secret, places), secret


# -- error texts ---------------------------------------------------------------------------------------


def test_a_credential_in_an_error_never_reaches_the_log_or_stats_json(tmp_path: Path) -> None:
    """Today: the URL with its key is in failure.raised, failure.assessed and `stats --json`."""
    url_key = random_secret(RNG)
    path = tmp_path / "app.db"
    texts = {"boom": f"cannot reach https://deploy:{url_key}@api.example.com/v1: [Errno 111] Connection refused",
             "again": f"the server said: Authorization: Bearer {KEY} is not valid for ?api_key={GITHUB}"}
    with ActorSystem(path) as system:
        system.register("w", LeakyPlugin, config={"texts": share(texts)})
        system.start()
        for slot in texts:
            with pytest.raises(RuntimeError):
                system.ask("w", Fail(slot=slot), timeout=10)
        system.flush()
        live = log_files(path)
        statistics = system.statistics()
    messages = [r.event.message for r in read_log(path, kinds=["failure.raised"])]
    assert messages == ["cannot reach https://***@api.example.com/v1: [Errno 111] Connection refused",
                        "the server said: Authorization: ***"]
    assert json.loads(cli_output("stats", str(path), "--json"))["errors"] == statistics["errors"]
    places = {**live, **everything_written(path, failure_seqs(path, "w")), "live statistics": json.dumps(statistics).encode()}
    for secret in (url_key, KEY, GITHUB):
        assert not leaks(secret, places), secret


def test_a_secret_across_the_cut_of_a_long_failure_text_leaves_no_part_behind(tmp_path: Path) -> None:
    """A failure text too long for the log is cut in the middle: redacted first, nothing of a
    secret that straddled the cut is kept (today: its first characters are)."""
    token = SHAPES["github"](RNG)
    plain = "a" * 100_000
    with ActorSystem(tmp_path / "probe.db") as system:  # where the cut of a 100,000-character message falls
        system.register("w", LeakyPlugin, config={"texts": share({"long": plain})})
        system.start()
        with pytest.raises(RuntimeError):
            system.ask("w", Fail(slot="long"), timeout=10)
    (probe,) = [r.event for r in read_log(tmp_path / "probe.db", kinds=["failure.raised"])]
    head = probe.message.index("\n... [")
    text = "a" * (head - 12) + " " + token + " " + "b" * (100_000 - head - len(token))
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("w", LeakyPlugin, config={"texts": share({"long": text})})
        system.start()
        with pytest.raises(RuntimeError):
            system.ask("w", Fail(slot="long"), timeout=10)
        system.flush()
        live = log_files(path)
    (failure,) = [r.event for r in read_log(path, kinds=["failure.raised"])]
    assert failure.truncated and "characters cut" in failure.message
    assert not leaks(token, {**live, **everything_written(path, failure_seqs(path, "w"))}, fragment=6)


def test_a_secret_from_the_config_is_redacted_from_error_texts_too(tmp_path: Path) -> None:
    """A value logged as *** in the config stays out of the errors that quote it (today: logged in full)."""
    password = random_secret(RNG, string.ascii_letters)  # no shape at all: only where it was seen says what it is
    path = tmp_path / "app.db"
    texts = {"login": f"login as admin/{password} was refused"}
    with ActorSystem(path) as system:
        system.register("w", LeakyPlugin, config={"texts": share(texts), "db": {"password": password}})
        system.start()
        system.tell("w", Fail(slot="login"))
        system.flush()
        live = log_files(path)
    assert [r.event.message for r in read_log(path, kinds=["failure.raised"])] == ["login as admin/*** was refused"]
    assert not leaks(password, {**live, **everything_written(path, failure_seqs(path, "w"))})


# -- the LLM plugin's quoted server texts ------------------------------------------------------------


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with FakeLLMServer() as fake:
        yield fake


def test_a_key_quoted_across_the_cut_of_an_http_error_leaves_no_part_behind(
    tmp_path: Path, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Today: the first 20 of the key's characters are in the error and in the log (the detail
    is cut at 300 bytes, and only the whole key was removed)."""
    key = "sk-" + random_token(RNG, size=34)  # 37 characters
    monkeypatch.setenv("ACTORLOG_TEST_CUT_KEY", key)
    prefix = '{"error": "'
    server.mode, server.status = "status", 401
    server.error_body = {"error": "k" * (280 - len(prefix)) + key + " is not a valid key"}
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("llm", LLMPlugin, config={
            "backend": "openai", "base_url": server.base_url, "model": "m", "api_key_env": "ACTORLOG_TEST_CUT_KEY",
        })
        system.start()
        with pytest.raises(GenerationError) as info:
            system.ask("llm", Generate(prompt="hi"), timeout=10)
        system.flush()
        live = log_files(path)
    assert "HTTP 401" in str(info.value)
    places = {**live, **everything_written(path, []), "the error": exception_texts(info.value)}
    assert not leaks(key, places, fragment=8)


def test_a_key_quoted_across_the_cut_of_a_non_json_answer_leaves_no_part_behind(
    tmp_path: Path, server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Today: the 80-byte excerpt of the answer keeps the key's first characters."""
    key = "sk-" + random_token(RNG, size=34)
    monkeypatch.setenv("ACTORLOG_TEST_CUT_KEY", key)
    server.mode = "raw"
    server.raw_body = ("<html>" + "p" * 54 + " " + key + " was refused</html>").encode()
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("llm", LLMPlugin, config={
            "backend": "openai", "base_url": server.base_url, "model": "m", "api_key_env": "ACTORLOG_TEST_CUT_KEY",
        })
        system.start()
        with pytest.raises(GenerationError, match="not valid JSON") as info:
            system.ask("llm", Generate(prompt="hi"), timeout=10)
        system.flush()
        live = log_files(path)
    places = {**live, **everything_written(path, []), "the error": exception_texts(info.value)}
    assert not leaks(key, places, fragment=8)


def test_the_llm_plugin_refuses_credentials_in_its_base_url() -> None:
    secret = random_secret(RNG)
    with pytest.raises(LLMConfigError, match="must not hold credentials") as info:
        parse_config({"backend": "openai", "model": "m", "base_url": f"https://user:{secret}@api.example.com/v1"})
    assert secret.encode() not in exception_texts(info.value)


# -- the property: planted anywhere, found nowhere ---------------------------------------------------

PLAIN_KEYS = ("model", "mode", "region", "options", "items", "endpoint", "extra", "settings", "note")
SECRET_KEYS = ("api_key", "token", "password", "client_secret", "Authorization", "X-Api-Key", "keys",
               "apiKey", "db_passwd", "credentials", "private_key", "cookie")
ANY_TEXT = string.ascii_letters + string.digits + string.punctuation + " éü€"


@st.composite
def planted(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """A config with secrets planted at random depths, texts for the plugin's errors holding
    secrets, and the secrets, all from one seed."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    secrets: list[str] = []
    known: list[str] = []
    config: dict[str, Any] = {}
    for index in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["under a secret key", "by its shape", "in a frame"]))
        if how == "under a secret key":
            value: Any = "".join(rng.choice(ANY_TEXT) for _ in range(rng.randint(8, 24)))
            secrets.append(value)
            known.append(value)
            value = {draw(st.sampled_from(SECRET_KEYS)): value}
        elif how == "by its shape":
            value = SHAPES[draw(st.sampled_from(sorted(SHAPES)))](rng)
            secrets.append(value)
        else:
            secret = random_secret(rng, FRAME_SAFE)
            secrets.append(secret)
            value = FRAMES[draw(st.sampled_from(sorted(FRAMES)))](secret)
        for _ in range(draw(st.integers(0, 4))):  # bury it
            if draw(st.booleans()):
                value = {draw(st.sampled_from(PLAIN_KEYS)): value, "n": draw(st.integers(-5, 5))}
            else:
                value = [draw(st.sampled_from(["a", 1, None, 2.5])), value]
        config[f"{draw(st.sampled_from(PLAIN_KEYS))}_{index}"] = value
    texts: dict[str, str] = {}
    for slot in ("told", "asked", "health"):
        how = draw(st.sampled_from(["by its shape", "in a frame", "seen in the config"] if known else
                                   ["by its shape", "in a frame"]))
        if how == "by its shape":
            secret = SHAPES[draw(st.sampled_from(sorted(SHAPES)))](rng)
            inner = secret
        elif how == "in a frame":
            secret = random_secret(rng, FRAME_SAFE)
            inner = FRAMES[draw(st.sampled_from(sorted(FRAMES)))](secret)
        else:
            secret = rng.choice(known)
            inner = secret
        secrets.append(secret)
        texts[slot] = f"{draw(st.sampled_from(['failed:', 'error', '']))} {inner} {draw(st.sampled_from(['', '(retry later)', ';']))}"
    return config, texts, secrets


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=planted())
def test_planted_secrets_never_appear_in_the_log_the_cli_or_exceptions(
    tmp_path_factory: pytest.TempPathFactory, scenario: tuple[dict[str, Any], dict[str, str], list[str]],
) -> None:
    config, texts, secrets = scenario
    path = tmp_path_factory.mktemp("planted") / "app.db"
    with ActorSystem(path) as system:
        system.register("leaky", LeakyPlugin, config={"texts": share(texts), **config})
        system.start()
        system.tell("leaky", Fail(slot="told"))
        try:
            system.ask("leaky", Fail(slot="asked"), timeout=10)
        except RuntimeError:
            pass  # the plugin's own exception, with the plugin's own text: the application's
        system.check_health("leaky")
        system.flush()
        live = log_files(path)
        statistics = json.dumps(system.statistics())
    places = {**live, **everything_written(path, failure_seqs(path, "leaky")), "live statistics": statistics.encode()}
    for secret in secrets:
        assert not leaks(secret, places), secret


class StartFails(LeakyPlugin):
    def on_start(self) -> None:
        raise RuntimeError(shared(self.config["texts"])["told"])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=planted())
def test_planted_secrets_stay_out_of_start_errors(
    tmp_path_factory: pytest.TempPathFactory, scenario: tuple[dict[str, Any], dict[str, str], list[str]],
) -> None:
    """A plugin whose start fails with a secret in its error: the StartError, the log and the CLI keep it out."""
    config, texts, secrets = scenario
    path = tmp_path_factory.mktemp("start") / "app.db"
    with ActorSystem(path) as system:
        system.register("starter", StartFails, config={"texts": share(texts), **config})
        with pytest.raises(StartError) as info:
            system.start()
        system.flush()
        live = log_files(path)
    places = {**live, **everything_written(path, []), "StartError": exception_texts(info.value)}
    for secret in secrets:
        assert not leaks(secret, places), secret


# -- the sandbox's output excerpts (audit G6) ---------------------------------------------------------


SANDBOX_CUT = 100
"""``event_output_chars`` for the excerpt test: the token is printed across this cut."""


def test_a_token_printed_across_the_cut_of_a_sandbox_excerpt_leaves_no_part_behind(tmp_path: Path) -> None:
    """``sandbox.finished``/``sandbox.killed`` keep excerpts of the program's stdout and stderr,
    redacted before they are cut: wherever a ``ghp_`` token falls relative to the cut, no six
    of its characters are logged (a token glued to the word before it, ``pppghp_...``, is not
    recognised at all: see the fix-15 notes). The program builds the token from its reversed text, so the
    message (logged as sent, the documented exemption) does not hold it either."""
    from actorlog.actors.examples.sandbox import RunPython, SandboxPlugin  # noqa: PLC0415
    from sandbox_helpers import config as sandbox_config  # noqa: PLC0415

    token = GITHUB
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("sandbox", SandboxPlugin, config=sandbox_config(event_output_chars=SANDBOX_CUT))
        system.start()
        for offset in (*range(SANDBOX_CUT - len(token) - 4, SANDBOX_CUT + 4, 7), 0, 3):
            code = (f"import sys\nt = {token[::-1]!r}[::-1]\nline = 'p' * {offset} + ' ' + t + ' q' * 60\n"
                    "print(line)\nprint(line, file=sys.stderr)\n")
            system.ask("sandbox", RunPython(code=code), timeout=30)
        hung = f"import time\nprint({token[::-1]!r}[::-1] + ' r' * 80, flush=True)\ntime.sleep(60)\n"
        killed = system.ask("sandbox", RunPython(code=hung, timeout=1.0), timeout=30)
        assert killed.killed and token in killed.stdout  # the reply has it all: only the log is redacted
    records = read_log(path, kinds=["sandbox.finished", "sandbox.killed"])
    assert {r.kind for r in records} == {"sandbox.finished", "sandbox.killed"}
    excerpts = {f"{r.kind} at {r.seq}": json.dumps([r.event.stdout, r.event.stderr]).encode() for r in records}
    assert all(len(r.event.stdout) <= SANDBOX_CUT for r in records)
    assert not leaks(token, excerpts, fragment=6)
