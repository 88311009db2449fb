"""What of a plugin's config may enter the log: secrets never do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_SECRET_SUFFIXES = ("key", "token", "secret", "password", "passwd", "credentials")
_REFERENCE_SUFFIXES = ("_env", "_var", "_file", "_path", "_name")


def redacted(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as logged: values under secret-looking keys (``api_key``, ``token``,
    ``password``...) become ``"***"``, at any depth. Keys naming where a secret lives
    (``api_key_env``, ``token_file``) are kept: they hold no secret themselves."""

    def visit(key: str, value: Any) -> Any:
        lowered = key.lower()
        if isinstance(value, str) and lowered.endswith(_SECRET_SUFFIXES) and not lowered.endswith(_REFERENCE_SUFFIXES):
            return "***"
        if isinstance(value, Mapping):
            return {k: visit(str(k), v) for k, v in value.items()}
        return value

    return {key: visit(key, value) for key, value in config.items()}
