"""Plugin states: a projection folded from lifecycle, upgrade and health events.

A plugin is identified by its run and its name, so the plugins of two runs (two
processes sharing one log, or one application run twice) never merge. Lifecycle events
count only when the supervisor wrote them, health checks only when the plugin itself did.
"""

from __future__ import annotations

from typing import Any

import msgspec

from actorlog.events import (
    PluginFailed,
    PluginHealthChecked,
    PluginRegistered,
    PluginRestarted,
    PluginStarted,
    PluginStarting,
    PluginStopped,
    PluginStopping,
    PluginStopTimedOut,
    PluginUpgraded,
    PluginUpgradeFailed,
    PluginUpgrading,
)
from actorlog.store import EventRecord

_STATES: dict[type[Any], str] = {
    PluginRegistered: "registered",
    PluginStarting: "starting",
    PluginStarted: "running",
    PluginStopping: "stopping",
    PluginStopped: "stopped",
    PluginFailed: "failed",
    PluginStopTimedOut: "stop_timed_out",
    PluginUpgrading: "upgrading",
    PluginUpgraded: "running",
}


class VersionChange(msgspec.Struct, kw_only=True):
    """One entry of a plugin's version history: the class and version it ran from ``seq`` on."""

    seq: int
    time: float
    change: str
    """``registered`` or ``upgraded``."""
    version: str
    class_path: str


class PluginState(msgspec.Struct, kw_only=True):
    """What the log says about one plugin."""

    state: str
    version: str
    class_path: str
    restarts: int = 0
    healthy: bool | None = None
    health_detail: str = ""
    last_health_at: float | None = None
    run: str = ""
    history: list[VersionChange] = msgspec.field(default_factory=list)
    """Every version it ran in its run, oldest first (registration, then each upgrade)."""


SUPERVISOR_ACTOR = "supervisor"
"""The only actor entitled to write plugin lifecycle events."""

PluginKey = tuple[str, str]
"""(run, name): the identity of a plugin."""


class PluginStates:
    """Each plugin's state, version, restart count and last health, by (run, name)."""

    kinds = (
        "plugin.registered", "plugin.starting", "plugin.started", "plugin.stopping", "plugin.stopped",
        "plugin.failed", "plugin.restarted", "plugin.health_checked", "plugin.stop_timed_out",
        "plugin.upgrading", "plugin.upgraded", "plugin.upgrade_failed",
    )
    name = "plugins"
    version = 2

    def __init__(self) -> None:
        self.plugins: dict[PluginKey, PluginState] = {}
        self.position = 0

    def apply(self, record: EventRecord) -> None:
        """Fold one event record (other kinds, and built-in facts from actors not entitled to them, are ignored)."""
        self.fold(record.kind, record.event, record.seq, record.ts, record.run, record.actor)

    def fold(self, kind: str, event: Any, seq: int, ts: float, run: str, actor: str) -> None:
        """Fold one event given with its row's columns (``apply`` without an `EventRecord`)."""
        cls = type(event)
        if cls is PluginHealthChecked:
            if actor != event.plugin:
                return
        elif actor != SUPERVISOR_ACTOR:
            return
        if cls is PluginRegistered:
            self.plugins[(run, event.plugin)] = PluginState(
                state="registered", version=event.plugin_version, class_path=event.class_path, run=run,
                history=[VersionChange(seq=seq, time=ts, change="registered",
                                       version=event.plugin_version, class_path=event.class_path)],
            )
        else:
            plugin = self.plugins.get((run, getattr(event, "plugin", None)))  # type: ignore[arg-type]
            if plugin is None:
                return
            if cls in _STATES:
                plugin.state = _STATES[cls]
                if cls is PluginUpgraded:
                    plugin.version, plugin.class_path = event.plugin_version, event.class_path
                    plugin.history.append(VersionChange(seq=seq, time=ts, change="upgraded",
                                                        version=event.plugin_version, class_path=event.class_path))
            elif cls is PluginUpgradeFailed:
                plugin.state = "running" if event.rolled_back else "failed"
            elif cls is PluginRestarted:
                plugin.restarts = event.restart_count
            elif cls is PluginHealthChecked:
                plugin.healthy, plugin.health_detail, plugin.last_health_at = event.healthy, event.detail, ts
            else:
                return
        self.position = seq

    def get(self, run: str, name: str) -> PluginState | None:
        """What the log says about plugin ``name`` of ``run``, if it was registered."""
        return self.plugins.get((run, name))

    def state(self) -> dict[str, Any]:
        """The whole state as builtins (for snapshots)."""
        return {
            "position": self.position,
            "plugins": [[run, name, msgspec.to_builtins(plugin)] for (run, name), plugin in self.plugins.items()],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PluginStates:
        """Rebuild a projection saved with `state`."""
        projection = cls()
        projection.position = int(state["position"])
        for run, name, plugin in state["plugins"]:
            projection.plugins[(str(run), str(name))] = msgspec.convert(plugin, PluginState)
        return projection

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every plugin's state as builtins, by run (in the order runs appear) and then by name."""
        runs: dict[str, dict[str, dict[str, Any]]] = {}
        for (run, name), plugin in self.plugins.items():
            runs.setdefault(run, {})[name] = msgspec.to_builtins(plugin)
        return {run: dict(sorted(plugins.items())) for run, plugins in runs.items()}
