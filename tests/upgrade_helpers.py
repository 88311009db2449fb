"""Message types and plugins for the hot-upgrade tests (issue 19).

`CounterV1` and `CounterV2` count `Tick` messages, check that each follows the one before
(so a message lost, handled twice or out of order shows), and hand their count to the next
version through ``on_upgrade`` / ``migrate``. The other classes fail at the steps an upgrade
must survive. Importable by path, so reproduction can load them back from the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actorlog.actors import ErrorPolicy, Plugin, handler
from actorlog.events import Message, register

from actor_helpers import shared


@register
class Tick(Message, tag="t19.tick", frozen=True):
    n: int


@register
class Total(Message, tag="t19.total", frozen=True):
    pass


@register
class Explode(Message, tag="t19.explode", frozen=True):
    pass


@register
class Hold(Message, tag="t19.hold", frozen=True):
    """Its handler waits until the `threading.Event` shared under ``key`` is set."""

    key: str


@register
class Fresh(Message, tag="t19.fresh", frozen=True):
    """Handled only by `CounterV3`."""


class Counting(Plugin):
    """Counts ticks and hands its count over; handles `Tick` only."""

    version = "0.9"

    def on_start(self) -> None:
        self.count = 0
        self.last = 0
        self.anomalies: list[str] = []
        self.received_from: str | None = None

    def on_upgrade(self) -> Any:
        return {"count": self.count, "last": self.last, "anomalies": self.anomalies}

    def migrate(self, old_state: Any, old_version: str) -> None:
        if old_state is not None:
            self.count, self.last = old_state["count"], old_state["last"]
            self.anomalies = list(old_state["anomalies"])
        self.received_from = old_version

    @handler
    def tick(self, message: Tick) -> None:
        if message.n != self.last + 1:
            self.anomalies.append(f"{message.n} after {self.last}")
        self.last = message.n
        self.count += 1

    @handler
    def hold(self, message: Hold) -> None:
        shared(message.key).wait()


class CounterV1(Counting):
    version = "1.0"

    @handler
    def total(self, message: Total) -> dict[str, Any]:
        return {"count": self.count, "last": self.last, "anomalies": self.anomalies, "version": self.version,
                "class": type(self).__name__, "from": self.received_from, "config": dict(self.config)}

    @handler
    def explode(self, message: Explode) -> None:
        raise ValueError(f"{type(self).__name__} {self.version} exploded at count {self.count}")


class CounterV2(CounterV1):
    version = "2.0"

    @handler
    def explode(self, message: Explode) -> None:
        raise KeyError(f"{type(self).__name__} {self.version} exploded at count {self.count}")


class CounterV3(Counting):
    """Handles `Fresh` but no longer `Total` (nor `Explode`)."""

    version = "3.0"

    @handler
    def fresh(self, message: Fresh) -> int:
        return self.count


class Strict(CounterV1):
    """Refuses a negative ``limit`` in its config."""

    version = "1.5"

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        if config.get("limit", 0) < 0:
            raise ValueError(f"key `limit` must be >= 0, got {config['limit']}")


class BadStart(CounterV1):
    version = "2.1"

    def on_start(self) -> None:
        raise RuntimeError("the new model cannot be loaded")


class BadMigrate(CounterV1):
    version = "2.2"

    def migrate(self, old_state: Any, old_version: str) -> None:
        raise TypeError(f"cannot read state of version {old_version}")


class Fragile(CounterV1):
    """Its ``on_start`` fails once the list shared under config ``broken`` is not empty."""

    version = "1.0"

    def on_start(self) -> None:
        if shared(self.config["broken"]):
            raise OSError("the old version's resources are gone")
        super().on_start()


class User(Plugin):
    """Depends on ``counter`` and requires its version 1."""

    depends_on = ("counter",)
    requires = {"counter": ">=1,<2"}

    @handler
    def total(self, message: Total) -> Any:
        return self.deps["counter"].ask(message, timeout=30)


CONTINUE_ON_FAILURE = ErrorPolicy(actions={"low": "continue", "medium": "continue", "high": "continue"})
"""Handler failures go on with the same instance (its state is what the reproduction must rebuild)."""
