"""Secrets put in a plugin's config by mistake never reach the log."""

from __future__ import annotations

from pathlib import Path

from actor_helpers import Worker, read_log

from actorlog.actors import ActorSystem

SECRET = "sk-live-DO-NOT-LOG-9f3a"


def test_secret_looking_config_values_are_redacted_in_the_log(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    config = {
        "api_key": SECRET, "nested": {"password": SECRET, "user": "alice"},
        "api_key_env": "OPENAI_API_KEY", "model": "offline", "max_tokens": 5,
    }
    with ActorSystem(path) as system:
        system.register("w", Worker, config=config)
        system.start()
    registered = [r.event for r in read_log(path, kinds=["plugin.registered"])][0]
    assert registered.config == {
        "api_key": "***", "nested": {"password": "***", "user": "alice"},
        "api_key_env": "OPENAI_API_KEY", "model": "offline", "max_tokens": 5,
    }
    for suffix in ("", "-wal", "-shm"):
        file = Path(str(path) + suffix)
        if file.exists():
            assert SECRET.encode() not in file.read_bytes()
