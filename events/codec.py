"""Encoding registered types to JSON and decoding stored (kind, version, payload) back.

One typed decoder (a msgspec tagged union of every registered type) reads current
payloads; older versions go through their upcasters as dicts first.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Union

import msgspec

from actorlog.events.base import UnknownEvent
from actorlog.events.errors import DecodeError, EncodeError, NotRegisteredError, UnknownKindError
from actorlog.events.registry import TypeRegistry, default_registry, not_registered_message


class Codec:
    """Turns registered messages and events into JSON payloads and back."""

    def __init__(self, registry: TypeRegistry | None = None) -> None:
        self.registry = registry if registry is not None else default_registry
        self._by_type = self.registry.by_type
        self._encode = msgspec.json.Encoder().encode
        self._dict_decoder = msgspec.json.Decoder()
        self._lock = threading.Lock()
        self._generation = -1
        self._union: msgspec.json.Decoder[Any] = self._dict_decoder
        self._versions: dict[str, int] = {}

    def encode(self, obj: object) -> tuple[str, int, bytes]:
        """Return ``(kind, version, payload)`` for an instance of a registered type.

        Raises `NotRegisteredError` for anything else and `EncodeError` for a value
        JSON cannot carry faithfully (NaN or infinite floats become ``null``).
        """
        info = self._by_type.get(type(obj))  # type: ignore[arg-type]
        if info is None:
            raise NotRegisteredError(not_registered_message(obj))
        kind, version = info
        try:
            payload = self._encode(obj)
        except RecursionError:
            raise EncodeError(
                f"{kind} cannot be stored: its data is nested deeper than Python's recursion limit; "
                f"store flatter data"
            ) from None
        if payload.find(b"null") >= 0 and _has_non_finite(msgspec.to_builtins(obj, builtin_types=(msgspec.Raw,))):
            # JSON has no NaN or infinity: msgspec writes them as null, which would read back as something else.
            # (A msgspec.Raw is JSON already: whoever encoded it checked it.)
            raise EncodeError(
                f"{kind} cannot be stored faithfully: it holds a NaN or infinite float, which JSON cannot "
                f"represent; store a finite number or None instead"
            )
        return kind, version, payload

    def decode(
        self, kind: str, version: int, payload: str | bytes, *, seq: int | None = None, lenient: bool = False
    ) -> Any:
        """Decode a stored payload to its registered type.

        Strict reads raise `UnknownKindError` or `DecodeError` naming ``seq``; lenient
        reads return an `UnknownEvent` placeholder instead.
        """
        if self._generation == self.registry.generation and self._versions.get(kind) == version:
            try:  # the common case, kept short: a registered kind at its current version
                obj = self._union.decode(payload)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                if lenient:
                    return self._placeholder(kind, version, payload, str(exc))
                raise DecodeError(kind, version, seq, str(exc)) from None
            except RecursionError:
                if lenient:
                    return self._placeholder(kind, version, payload, f"payload {TOO_DEEP}")
                raise DecodeError(kind, version, seq, f"its payload {TOO_DEEP}") from None
            if obj.__struct_config__.tag == kind:
                return obj
        cls = self.registry.type_for(kind)
        if cls is None:
            if lenient:
                return self._placeholder(kind, version, payload, "unknown kind")
            raise UnknownKindError(kind, seq)
        current = getattr(cls, "version", 1)
        try:
            if type(version) is not int:  # only a row written by something else than actorlog
                raise DecodeError(kind, version, seq, "its version is not an integer")
            if version == current:
                obj = self._decoder().decode(payload)
                if type(obj) is not cls:
                    raise DecodeError(kind, version, seq, f"payload is tagged {type(obj).__name__}, not {kind!r}")
                return obj
            if version > current:
                raise DecodeError(
                    kind, version, seq,
                    f"it was written by newer code (this process knows version {current}); upgrade the code that defines it",
                )
            return msgspec.convert(self._upcast(kind, version, current, payload, seq), cls)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            if lenient:
                return self._placeholder(kind, version, payload, str(exc))
            raise DecodeError(kind, version, seq, str(exc)) from None
        except DecodeError as exc:
            if lenient:
                return self._placeholder(kind, version, payload, exc.problem)
            raise
        except RecursionError:
            if lenient:
                return self._placeholder(kind, version, payload, f"payload {TOO_DEEP}")
            raise DecodeError(kind, version, seq, f"its payload {TOO_DEEP}") from None

    def _upcast(self, kind: str, version: int, current: int, payload: str | bytes, seq: int | None) -> Any:
        data = self._dict_decoder.decode(payload)
        if not isinstance(data, dict):
            raise DecodeError(kind, version, seq, "payload is not a JSON object")
        for step in range(version, current):
            upcast = self.registry.upcaster_for(kind, step)
            if upcast is None:
                raise DecodeError(
                    kind, version, seq,
                    f"no upcaster from version {step} to {step + 1} is registered "
                    f"(actorlog.events.upcaster({kind!r}, {step}))",
                )
            try:
                data = upcast(dict(data))
            except Exception as exc:
                raise DecodeError(kind, version, seq, f"upcaster from version {step} raised {exc!r}") from exc
        data["kind"] = kind
        return data

    def _decoder(self) -> msgspec.json.Decoder[Any]:
        if self._generation != self.registry.generation:
            with self._lock:
                generation = self.registry.generation
                types = self.registry.types()
                union: Any = Union[types] if len(types) > 1 else types[0]  # noqa: UP007
                self._union = msgspec.json.Decoder(union)
                self._versions = dict(self.registry.kind_and_version_of(t) for t in types)
                self._generation = generation
        return self._union

    def _placeholder(self, kind: str, version: int, payload: str | bytes, reason: str) -> UnknownEvent:
        try:
            raw: Any = self._dict_decoder.decode(payload)
        except (msgspec.DecodeError, RecursionError):
            raw = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        return UnknownEvent(kind=kind, version=version, payload=raw, reason=reason)


TOO_DEEP = "is nested too deeply to decode (deeper than Python's recursion limit)"

default_codec = Codec()
"""A codec over the default registry."""


def _has_non_finite(value: Any) -> bool:
    """Whether a builtins tree (dicts, lists, scalars) holds a NaN or infinite float."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(item) for item in value)
    return False
