"""Plugin states: a projection folded from lifecycle and health events."""

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
)
from actorlog.store import EventRecord

_STATES: dict[type[Any], str] = {
    PluginRegistered: "registered",
    PluginStarting: "starting",
    PluginStarted: "running",
    PluginStopping: "stopping",
    PluginStopped: "stopped",
    PluginFailed: "failed",
}


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


class PluginStates:
    """Each plugin's state, version, restart count and last health, by name (the latest run wins)."""

    kinds = (
        "plugin.registered", "plugin.starting", "plugin.started", "plugin.stopping", "plugin.stopped",
        "plugin.failed", "plugin.restarted", "plugin.health_checked",
    )
    name = "plugins"
    version = 1

    def __init__(self) -> None:
        self.plugins: dict[str, PluginState] = {}
        self.position = 0

    def apply(self, record: EventRecord) -> None:
        """Fold one event record (other kinds are ignored)."""
        event = record.event
        kind = type(event)
        if kind is PluginRegistered:
            self.plugins[event.plugin] = PluginState(
                state="registered", version=event.plugin_version, class_path=event.class_path, run=record.run
            )
        else:
            plugin = self.plugins.get(getattr(event, "plugin", None))  # type: ignore[arg-type]
            if plugin is None:
                return
            if kind in _STATES:
                plugin.state = _STATES[kind]
            elif kind is PluginRestarted:
                plugin.restarts = event.restart_count
            elif kind is PluginHealthChecked:
                plugin.healthy, plugin.health_detail, plugin.last_health_at = event.healthy, event.detail, record.ts
            else:
                return
        self.position = record.seq

    def state(self) -> dict[str, Any]:
        """The whole state as builtins (for snapshots)."""
        return {"position": self.position, "plugins": msgspec.to_builtins(self.plugins)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PluginStates:
        """Rebuild a projection saved with `state`."""
        projection = cls()
        projection.position = int(state["position"])
        projection.plugins = msgspec.convert(state["plugins"], dict[str, PluginState])
        return projection

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every plugin's state as builtins, by name."""
        return {name: msgspec.to_builtins(state) for name, state in sorted(self.plugins.items())}
