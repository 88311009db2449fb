"""Errors raised by the event layer. Every actorlog error derives from `ActorlogError`."""

from __future__ import annotations

from typing import Any


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to about ``limit`` characters: error messages quote stored values,
    which a foreign writer can make as long as it likes."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 12]}... ({len(text):,} chars)"


class ActorlogError(Exception):
    """Base class of every error actorlog raises on purpose."""


class NotRegisteredError(ActorlogError, TypeError):
    """An object that is not an instance of a registered message or event type was given."""


class RegistrationError(ActorlogError, TypeError, ValueError):
    """Something cannot be registered: a type (bad tag, tag clash, not a Message or Event
    subclass) or a plugin (duplicate or reserved name, bad config, unloadable class).

    One class for both, so ``except RegistrationError`` catches every refusal; it is a
    `TypeError` and a `ValueError`, as each refusal has been before."""


class UnknownKindError(ActorlogError, LookupError):
    """A stored event names a kind this process has no registered type for."""

    def __init__(self, kind: str, seq: int | None) -> None:
        where = f"event seq {seq}" if seq is not None else "a payload"
        super().__init__(
            f"{where} has kind {shown(kind)}, which no registered type carries; "
            f"register the type that defines it (actorlog.events.register) "
            f"or read with lenient=True to get UnknownEvent placeholders"
        )
        self.kind = kind
        self.seq = seq


class DecodeError(ActorlogError, ValueError):
    """A stored payload cannot be turned back into its typed event."""

    def __init__(self, kind: str, version: int, seq: int | None, problem: str) -> None:
        where = f"event seq {seq}" if seq is not None else "a payload"
        super().__init__(
            f"{where} (kind {shown(kind)}, version {shown(version, 30)}) cannot be decoded: {problem}; "
            f"read with lenient=True to get an UnknownEvent placeholder instead"
        )
        self.kind = kind
        self.version = version
        self.seq = seq
        self.problem = problem


class EncodeError(ActorlogError, ValueError):
    """An event cannot be encoded faithfully (for example a NaN or infinite float)."""
