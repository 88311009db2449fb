"""A plugin whose handlers fail deterministically with the exact text of the message they got
(tests/test_replay_fidelity.py).

Imported as the top-level module ``fidelity_plugin`` (its folder is put on ``sys.path`` by
tests/replay_helpers.py, and given to ``actorlog reproduce --import-path`` in subprocesses),
so the class path recorded in the log is ``fidelity_plugin:Strict``.

Each handler raises ``ValueError(repr(message))``: a reproduction says "reproduced" only
if the handler is given a message equal, field type by field type, to the one it got live.
`Leave` raises the `BaseException` it names (SystemExit, KeyboardInterrupt, GeneratorExit).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from actorlog.actors import Plugin, handler
from actorlog.events import Message, register


class Point(msgspec.Struct, frozen=True):
    """A plain (untagged) Struct nested inside a message."""

    x: int
    label: str


@register
class Measured(Message, tag="t12.measured", frozen=True):
    """A float field: an int sent in it must not come back as a float (or the other way)."""

    value: float


@register
class Loose(Message, tag="t12.loose", frozen=True):
    """An ``Any`` field: a tuple sent in it is a list once encoded to JSON."""

    value: Any


@register
class Table(Message, tag="t12.table", frozen=True):
    """A dict with int keys: JSON object keys are strings."""

    rows: dict[int, str]


@register
class Maybe(Message, tag="t12.maybe", frozen=True):
    """Optional fields, None or not."""

    count: int | None = None
    name: str | None = None


@register
class Shaped(Message, tag="t12.shaped", frozen=True):
    """Nested Structs, a Literal, a tuple and bytes."""

    point: Point
    path: list[Point]
    mode: Literal["fast", "slow"]
    pair: tuple[int, str]
    data: bytes


@register
class Leave(Message, tag="t12.leave", frozen=True):
    """Raise the BaseException ``how`` names (not an Exception)."""

    how: Literal["SystemExit", "KeyboardInterrupt", "GeneratorExit"]


LEAVING: dict[str, type[BaseException]] = {
    "SystemExit": SystemExit,
    "KeyboardInterrupt": KeyboardInterrupt,
    "GeneratorExit": GeneratorExit,
}

MESSAGE_TYPES: tuple[type[Message], ...] = (Measured, Loose, Table, Maybe, Shaped)
"""The types whose handlers raise ``ValueError(repr(message))``."""


class Strict(Plugin):
    """Every handler raises ``ValueError(repr(message))``; `Leave` raises a BaseException."""

    version = "1.0"

    def _fail(self, message: Message) -> None:
        raise ValueError(repr(message))

    @handler
    def measured(self, message: Measured) -> None:
        self._fail(message)

    @handler
    def loose(self, message: Loose) -> None:
        self._fail(message)

    @handler
    def table(self, message: Table) -> None:
        self._fail(message)

    @handler
    def maybe(self, message: Maybe) -> None:
        self._fail(message)

    @handler
    def shaped(self, message: Shaped) -> None:
        self._fail(message)

    @handler
    def leave(self, message: Leave) -> None:
        raise LEAVING[message.how](f"leaving by {message.how}")


class StartsByLeaving(Strict):
    """``on_start`` raises SystemExit: the plugin never starts."""

    def on_start(self) -> None:
        raise SystemExit("on_start left")
