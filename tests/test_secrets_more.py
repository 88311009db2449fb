"""More of issue 15: credentials under keys that say where a secret lives, and the README's
Security section.

A key ending ``_file``, ``_name`` or ``_path`` is neither a secret-naming key (its value is
not masked whole) nor a key that holds the name of an environment variable (``*_env``,
``*_var``: a credential there is refused). What the code does with a credential pasted
under one, and what the README promises, is that its value is redacted as text: every
token shape, PEM private key and URL credential becomes ``***``, so it never reaches the
log or its -wal, while an ordinary path stays readable.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from actor_helpers import read_log, share
from actorlog.actors import ActorSystem
from log_helpers import ACTORLOG_CLI
from secrets_helpers import SHAPES, Fail, LeakyPlugin, everything_written, leaks, log_files, random_token

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

RNG = random.Random(1515)
PEM_KEY = ("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI" + random_token(RNG, size=23)
           + "\n-----END PRIVATE KEY-----\n")
SECRETS: dict[str, str] = {
    "token_file": SHAPES["openai"](RNG),
    "api_key_file": SHAPES["github-pat"](RNG),
    "secret_name": SHAPES["github"](RNG),
    "key_name": SHAPES["slack"](RNG),
    "credentials_path": SHAPES["aws"](RNG),
    "cert_path": SHAPES["jwt"](RNG),
    "service_account_file": SHAPES["google"](RNG),
    "billing_key_path": SHAPES["stripe"](RNG),
    "signing_key_file": PEM_KEY,
}
"""A credential pasted where a file, a name or a path belongs."""

URL_KEY = random_token(RNG, size=24)
ORDINARY = {"password_file": "/run/secrets/db_password", "model_name": "offline-small", "cache_path": "/var/cache/app"}
"""Values that only say where a secret lives or what something is called: kept as they are."""


def secret_texts(value: str) -> list[str]:
    """What must never appear: the value, and for a PEM key each line of its body."""
    return [line for line in value.splitlines() if line and "-----" not in line] or [value]


def test_a_credential_under_a_file_name_or_path_key_never_reaches_the_log_or_its_wal(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    config: dict[str, Any] = {
        **SECRETS, **ORDINARY,
        "backup_url_path": f"https://deploy:{URL_KEY}@backup.example.com/v1",
        "deploy": [{"token_file": SECRETS["token_file"], "region": "eu"}],
    }
    texts = {"boom": f"cannot open token file {SECRETS['token_file']}: no such file ({SECRETS['cert_path']})"}
    with ActorSystem(path) as system:
        system.register("w", LeakyPlugin, config={"texts": share(texts), **config})  # redacted, not refused
        system.start()
        with pytest.raises(RuntimeError):
            system.ask("w", Fail(slot="boom"), timeout=10)
        system.flush()
        live = log_files(path)
        assert any(name.endswith("-wal") for name in live)
    (registered,) = [r.event for r in read_log(path, kinds=["plugin.registered"])]
    for key in SECRETS:
        assert registered.config[key].strip() == "***", key
    assert registered.config["backup_url_path"] == "https://***@backup.example.com/v1"
    assert registered.config["deploy"] == [{"token_file": "***", "region": "eu"}]
    for key, value in ORDINARY.items():
        assert registered.config[key] == value, key
    failures = read_log(path, kinds=["failure.raised"])
    assert [r.event.message for r in failures] == ["cannot open token file ***: no such file (***)"]
    places = {**live, **everything_written(path, [r.seq for r in failures])}
    for value in [*SECRETS.values(), URL_KEY]:
        for text in secret_texts(value):
            assert not leaks(text, places), text


def test_a_config_file_with_credentials_under_file_name_and_path_keys_runs_without_logging_them(
    tmp_path: Path,
) -> None:
    """Through ``actorlog run``: the log and its -wal while the system runs, and after it stopped."""
    values = {key: SECRETS[key] for key in ("token_file", "secret_name", "credentials_path", "cert_path")}
    body = ", ".join(f'{key} = "{value}"' for key, value in values.items())
    config = tmp_path / "app.toml"
    config.write_text(f'log = "app.db"\n[plugins.worker]\nclass = "actor_helpers:Worker"\nconfig = {{ {body} }}\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([str(ACTORLOG_CLI), "run", str(config)], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        first = process.stderr.readline()  # "actorlog run: started ..." once every plugin runs
        assert "started worker" in first, first
        live = log_files(tmp_path / "app.db")
        assert any(name.endswith("-wal") for name in live)
        process.send_signal(signal.SIGTERM)
        out, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=60)
    assert process.returncode == 0, first + rest
    (registered,) = [r.event for r in read_log(tmp_path / "app.db", kinds=["plugin.registered"])]
    assert {key: registered.config[key] for key in values} == dict.fromkeys(values, "***")
    places = {**{f"live {name}": data for name, data in live.items()}, **log_files(tmp_path / "app.db"),
              "actorlog run output": (first + out + rest).encode()}
    for value in values.values():
        assert not leaks(value, places), value


# -- the README says what the log may hold, what reproduction may do, what the sandbox isolates ------------


def security_section() -> str:
    start = README.index("\n## Security\n")
    end = README.index("\n## ", start + 1)
    return README[start:end]


def test_the_readme_has_a_security_section_with_its_three_parts() -> None:
    section = security_section()
    parts = re.findall(r"^- \*\*(.+?)\*\*", section, flags=re.M)
    assert parts == ["What the log may contain.", "What reproduction may do.", "What the sandbox isolates."]
    assert "[Security](#security)" in README  # linked from the reproduction section


@pytest.mark.parametrize(("part", "phrases"), [
    ("What the log may contain.", [
        "append-only", "one redaction function", "actorlog.actors.redaction.redact", "`***`",
        "PEM private keys", "refused by `register` before anything is logged, without being echoed",
        "Not redacted:", "message payloads", "log_messages=False", "created `0600`",
    ]),
    ("What reproduction may do.", [
        "opening a log runs nothing you did not allow", "environment variables, the network, child processes",
        "native code", "child process", "network namespace", "audit hooks", "file writes are not withheld",
        "not a sandbox for hostile plugin code",
    ]),
    ("What the sandbox isolates.", [
        "CPU", "wall timeout", "output cap", "minimal environment", "unprivileged user", "no_new_privs", "tmpfs",
        "network namespace with only loopback", "PID namespaces", "memory_bytes", "cgroup",
        "not isolated: network", "macOS",
    ]),
])
def test_each_part_of_the_security_section_says_what_it_covers(part: str, phrases: list[str]) -> None:
    section = security_section()
    start = section.index(f"- **{part}**")
    following = section.find("\n- **", start + 1)
    text = " ".join(section[start: following if following >= 0 else len(section)].split())  # lines joined
    missing = [phrase for phrase in phrases if phrase not in text]
    assert not missing, (part, missing)
