"""The two kinds of typed data: `Message` (a request) and `Event` (a recorded fact).

Both are frozen, keyword-only `msgspec.Struct`s tagged in the field ``kind``. Each
concrete type declares an explicit, stable tag and a schema ``version``::

    class OrderPlaced(Event, tag="shop.order_placed", frozen=True):
        version: ClassVar[int] = 1
        order_id: str
        total: float

Subclasses are frozen at run time whatever they say; repeating ``frozen=True`` keeps
type checkers (which read msgspec's ``dataclass_transform``) in agreement. The tag is
what the log stores, never the Python class name, so renaming or moving
a class does not break old logs.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

TAG_FIELD = "kind"


class Message(msgspec.Struct, frozen=True, kw_only=True, tag_field=TAG_FIELD):
    """Base class of messages: requests sent to an actor with ``tell`` or ``ask``."""

    version: ClassVar[int] = 1


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field=TAG_FIELD):
    """Base class of events: immutable facts, named in the past tense, appended to the log."""

    version: ClassVar[int] = 1


class UnknownEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Placeholder a lenient read yields for a stored event it cannot type.

    ``reason`` says why: the kind is not registered, the version is newer than the
    registered type, or the payload does not match the type.
    """

    kind: str
    version: int
    payload: Any
    reason: str


def tag_of(cls: type[msgspec.Struct]) -> str | None:
    """The tag a Struct type is encoded with, or None when it has none."""
    tag = cls.__struct_config__.tag
    return tag if isinstance(tag, str) else None
