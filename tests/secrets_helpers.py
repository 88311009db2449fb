"""Helpers for the secrets tests (tests/test_secrets_redaction.py, tests/test_reproduce_safety.py).

`LeakyPlugin` fails with texts the test chooses (handed over through `share`, so they are
neither in the config nor in a message), and holds whatever config the test plants secrets
in. `everything_written` is every byte the log's files hold and every line the CLI prints
about the log: where a secret must never appear.
"""

from __future__ import annotations

import io
import json
import random
import string
import sys
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from actor_helpers import shared
from actorlog.actors import Health, Plugin, handler
from actorlog.events import Message, register


@register
class Fail(Message, tag="secrets.fail", frozen=True):
    """Raise the text in slot ``slot`` of the shared texts."""

    slot: str


class LeakyPlugin(Plugin):
    """Config: ``texts``, the key of a shared dict of texts; anything else is carried along.
    ``Fail(slot)`` raises ``RuntimeError(texts[slot])``; the health check reports
    ``texts["health"]`` as unhealthy when it is there."""

    version = "1.0.0"

    @handler
    def fail(self, message: Fail) -> None:
        raise RuntimeError(shared(self.config["texts"])[message.slot])

    def health_check(self) -> bool | Health:
        texts = shared(self.config["texts"])
        if "health" in texts:
            return Health(False, texts["health"])
        return True


def log_files(path: Path) -> dict[str, bytes]:
    """The bytes of the log and of its -wal and -shm files, those that exist."""
    found = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        file = Path(str(path) + suffix)
        if file.exists():
            found[file.name] = file.read_bytes()
    return found


def cli_output(*args: str) -> str:
    """What ``actorlog ARGS`` prints (stdout and stderr), run in this process (the real command)."""
    from actorlog.replay.cli import cli  # noqa: PLC0415 - only the tests that read CLI output need it

    out, err = io.StringIO(), io.StringIO()
    saved_path = list(sys.path)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                cli.main(args=list(args), prog_name="actorlog", standalone_mode=True)
            except SystemExit:
                pass
    finally:
        sys.path[:] = saved_path  # reproduce --import-path adds to sys.path
    return out.getvalue() + err.getvalue()


def everything_written(path: Path, failure_seqs: list[int]) -> dict[str, bytes]:
    """The log's files and what the CLI prints about the log (stats, query, tail, runs,
    verify, and reproduce of each failure), each under a name saying where it came from."""
    found = log_files(path)
    commands: list[tuple[str, ...]] = [
        ("stats", str(path), "--json"), ("stats", str(path)), ("query", str(path), "--format", "jsonl"),
        ("query", str(path), "--format", "csv"), ("tail", str(path), "-n", "1000"), ("runs", str(path), "--json"),
        ("verify", str(path)),
    ]
    commands += [("reproduce", str(path), str(seq), "--json") for seq in failure_seqs]
    commands += [("reproduce", str(path), str(seq)) for seq in failure_seqs[:1]]
    for command in commands:
        found["actorlog " + " ".join(command)] = cli_output(*command).encode()
    return found


def leaks(secret: str, places: dict[str, bytes], *, fragment: int | None = None) -> list[str]:
    """Where ``secret`` appears among ``places`` (also as JSON-escaped text); with ``fragment``,
    where any run of that many of its characters does."""
    needles = {secret}
    if fragment is not None:
        needles = {secret[i : i + fragment] for i in range(0, len(secret) - fragment + 1)}
    forms = {form for needle in needles for form in (needle.encode(), json.dumps(needle)[1:-1].encode())}
    found = []
    for name, data in places.items():
        for form in forms:
            if form in data:
                found.append(f"{name} holds {form!r}")
                break
    return found


def random_token(rng: random.Random, alphabet: str = string.ascii_letters + string.digits, size: int = 32) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


SHAPES: dict[str, Callable[[random.Random], str]] = {
    "openai": lambda r: "sk-" + random_token(r, size=40),
    "openai-project": lambda r: "sk-proj-" + random_token(r, string.ascii_letters + string.digits + "_-", 48),
    "github": lambda r: "ghp_" + random_token(r, size=36),
    "github-pat": lambda r: "github_pat_" + random_token(r, string.ascii_letters + string.digits + "_", 60),
    "slack": lambda r: "xoxb-" + random_token(r, string.digits, 12) + "-" + random_token(r, size=24),
    "aws": lambda r: "AKIA" + random_token(r, string.ascii_uppercase + string.digits, 16),
    "google": lambda r: "AIza" + random_token(r, string.ascii_letters + string.digits + "_-", 35),
    "stripe": lambda r: "sk_live_" + random_token(r, size=24),
    "jwt": lambda r: "eyJ" + random_token(r, size=20) + ".eyJ" + random_token(r, size=30) + "." + random_token(r, size=43),
}
"""Secrets recognisable by their shape alone, wherever they appear."""

FRAMES: dict[str, Callable[[str], str]] = {
    "url userinfo": lambda s: f"https://deploy:{s}@api.example.com/v1/chat",
    "url token only": lambda s: f"https://{s}@git.example.com/repo.git",
    "query parameter": lambda s: f"https://api.example.com/v1?model=m&api_key={s}&x=1",
    "authorization header": lambda s: f"Authorization: Bearer {s}",
    "bearer": lambda s: f"sent Bearer {s} to the server",
    "cookie header": lambda s: f"Cookie: session={s}; theme=dark",
    "api key header": lambda s: f"X-Api-Key: {s}",
    "assignment": lambda s: f"password={s}",
    "dict repr": lambda s: f"{{'user': 'bob', 'client_secret': '{s}'}}",
    "json": lambda s: f'{{"access_token": "{s}", "expires": 3600}}',
}
"""Texts holding a secret of any shape where its surroundings say it is one."""


FRAME_SAFE = string.ascii_letters + string.digits + "-._~"
"""What a secret placed in a frame is made of (characters a URL or a bare value may hold)."""


def random_secret(rng: random.Random, alphabet: str = FRAME_SAFE) -> str:
    """A secret with no recognisable shape: found by where it is, or because it was seen."""
    return random_token(rng, alphabet, rng.randint(12, 30))
