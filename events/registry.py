"""The type registry: which message and event types exist, and how old payloads upgrade.

Built-in events are registered in `default_registry` at import. Applications add their
own types with `register` (usable as a class decorator) and upcasters with `upcaster`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar, Union

import msgspec

from actorlog.events.base import TAG_FIELD, Event, Message, tag_of
from actorlog.events.errors import NotRegisteredError, RegistrationError

T = TypeVar("T", bound=type[msgspec.Struct])
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns a payload of version N (as a dict) into the shape of version N + 1."""

_TAG_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


class TypeRegistry:
    """Registered message and event types, by tag, with their versions and upcasters.

    Registration is thread-safe. ``generation`` increases on every change so codecs
    know when to rebuild their decoder.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_kind: dict[str, type[msgspec.Struct]] = {}
        self._by_type: dict[type[msgspec.Struct], tuple[str, int]] = {}
        self.by_type: Mapping[type[msgspec.Struct], tuple[str, int]] = MappingProxyType(self._by_type)
        """(tag, version) of every registered type, read-only and always current."""
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self.generation = 0

    def register(self, cls: T, *, replace: bool = False) -> T:
        """Register a `Message` or `Event` subclass; returns it, so it works as a decorator.

        The class must carry an explicit tag (``class X(Event, tag="app.x")``): lowercase
        words joined by dots. Registering the same class twice is harmless; another class
        with a tag already taken is refused unless ``replace=True``, or unless it is the same
        class of a module imported again (`importlib.reload`: same module, same top-level
        qualified name), which then takes the tag over.
        """
        if not (isinstance(cls, type) and issubclass(cls, (Message, Event))):
            raise RegistrationError(
                f"cannot register {cls!r}: only subclasses of actorlog.events.Message or Event can be registered"
            )
        tag = tag_of(cls)
        if tag is None or tag == cls.__name__ or not _TAG_PATTERN.match(tag):
            raise RegistrationError(
                f"cannot register {cls.__module__}.{cls.__qualname__}: it needs an explicit, stable tag of "
                f"lowercase words joined by dots, for example "
                f"`class {cls.__name__}({'Event' if issubclass(cls, Event) else 'Message'}, tag=\"myapp.{_snake(cls.__name__)}\")`"
                + (f" (it has {tag!r})" if tag is not None else "")
            )
        config = cls.__struct_config__
        if config.tag_field != TAG_FIELD or config.array_like:
            raise RegistrationError(
                f"cannot register {cls.__qualname__}: registered types are JSON objects tagged in the field "
                f"{TAG_FIELD!r}; do not override tag_field or set array_like (it has tag_field="
                f"{config.tag_field!r}, array_like={config.array_like})"
            )
        version = getattr(cls, "version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise RegistrationError(
                f"cannot register {cls.__qualname__}: its version must be an int >= 1, got {version!r}"
            )
        with self._lock:
            existing = self._by_kind.get(tag)
            if existing is cls:
                return cls
            if existing is not None and not replace and not _reimported(existing, cls):
                raise RegistrationError(
                    f"cannot register {cls.__module__}.{cls.__qualname__}: tag {tag!r} already belongs to "
                    f"{existing.__module__}.{existing.__qualname__}; choose another tag or pass replace=True"
                )
            candidates = [t for t in self._by_kind.values() if t is not existing] + [cls]
            try:  # every registered type must fit the one union decoder the codec builds
                msgspec.json.Decoder(Union[tuple(candidates)] if len(candidates) > 1 else cls)  # noqa: UP007
            except TypeError as exc:
                raise RegistrationError(f"cannot register {cls.__qualname__}: {exc}") from None
            if existing is not None:
                del self._by_type[existing]
            self._by_kind[tag] = cls
            self._by_type[cls] = (tag, version)
            self.generation += 1
        return cls

    def add_upcaster(self, kind: str, from_version: int, upcast: Upcaster) -> None:
        """Register the function that turns a ``kind`` payload of ``from_version`` into the next version."""
        with self._lock:
            self._upcasters[(kind, from_version)] = upcast
            self.generation += 1

    def upcaster(self, kind: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator form of `add_upcaster`."""

        def decorate(upcast: Upcaster) -> Upcaster:
            self.add_upcaster(kind, from_version, upcast)
            return upcast

        return decorate

    def upcaster_for(self, kind: str, from_version: int) -> Upcaster | None:
        """The upcaster from ``from_version`` of ``kind``, if one is registered."""
        return self._upcasters.get((kind, from_version))

    def type_for(self, kind: str) -> type[msgspec.Struct] | None:
        """The registered type with tag ``kind``, or None."""
        return self._by_kind.get(kind)

    def kind_and_version(self, obj: object) -> tuple[str, int]:
        """The (tag, version) of a registered type's instance; `NotRegisteredError` otherwise."""
        info = self._by_type.get(type(obj))  # type: ignore[arg-type]
        if info is None:
            raise NotRegisteredError(not_registered_message(obj))
        return info

    def kind_and_version_of(self, cls: type[msgspec.Struct]) -> tuple[str, int]:
        """The (tag, version) a registered type is stored with."""
        return self._by_type[cls]

    def is_registered(self, cls: type) -> bool:
        """Whether ``cls`` itself is a registered type."""
        return cls in self._by_type

    def types(self) -> tuple[type[msgspec.Struct], ...]:
        """Every registered type, in registration order."""
        with self._lock:
            return tuple(self._by_kind.values())

    def kinds(self) -> tuple[str, ...]:
        """Every registered tag, in registration order."""
        with self._lock:
            return tuple(self._by_kind)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def not_registered_message(obj: object) -> str:
    """The error text for an object that is not an instance of a registered type."""
    cls = type(obj)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if isinstance(obj, (Message, Event)):
        return f"{name} is not a registered type; register it first with actorlog.events.register({cls.__name__})"
    return (
        f"{name} is not a message or event type: only instances of registered "
        f"actorlog.events.Message or Event subclasses are accepted"
    )


default_registry = TypeRegistry()
"""The process-wide registry used when none is passed explicitly."""


def register(cls: T) -> T:
    """Register a message or event type in the default registry (usable as a decorator)."""
    return default_registry.register(cls)


def upcaster(kind: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register an upcaster in the default registry (decorator)."""
    return default_registry.upcaster(kind, from_version)


def _reimported(existing: type, cls: type) -> bool:
    """Whether ``cls`` is ``existing`` defined again by importing its module again (not a class
    made inside a function, where two classes of one name may well be different types)."""
    return ((existing.__module__, existing.__qualname__) == (cls.__module__, cls.__qualname__)
            and "<locals>" not in cls.__qualname__)
