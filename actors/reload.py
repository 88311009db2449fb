"""Reloading a changed config file into a running system (``actorlog run`` on SIGHUP).

The new file is checked as a whole first, as at start (`load_config`), and so is every
upgrade it implies (`ActorSystem.check_upgrade`); if anything fails, nothing changes and
``config.reload_refused`` records why. Otherwise plugins removed from the file are
stopped (dependents first), plugins whose class, version or config changed are upgraded
in dependency order (dependencies first), and plugins added to the file are registered
and started; ``config.reloaded`` records what was done. Only ``[plugins]`` can change
while running: the log, ``[store]``, ``[supervision]``, ``[errors]`` and ``[metrics]``
are fixed for the run, and ``[[send]]`` messages are sent once, at start.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from actorlog.actors.config import LoadedConfig, PluginSettings, load_config, toml_key
from actorlog.actors.errors import ConfigError, StartError, UpgradeError
from actorlog.actors.graph import start_order
from actorlog.actors.loading import class_path, load_plugin_class
from actorlog.actors.system import ActorSystem
from actorlog.events import ConfigReloaded, ConfigReloadRefused

ACTOR = "system"

_FIXED = ("log", "snapshot_every", "store", "supervision", "errors", "metrics")
"""Top-level keys that cannot change while the system runs."""

_PLUGIN_FIXED = ("depends_on", "requires", "health_interval", "log_messages", "max_inbox")
"""Plugin keys an upgrade does not change."""


class ReloadPlan(msgspec.Struct, frozen=True):
    """What a reload does, in order: remove (dependents first), then upgrade and add (dependencies first)."""

    remove: tuple[str, ...] = ()
    upgrade: tuple[str, ...] = ()
    add: tuple[str, ...] = ()


class Reloader:
    """Keeps what the running system was built from, and applies a changed file to it.

    Owned by the thread that runs ``actorlog run``'s main loop (the signal handler only
    asks for a reload).
    """

    def __init__(self, system: ActorSystem, loaded: LoadedConfig) -> None:
        self.system = system
        self.loaded = loaded
        self.running: dict[str, PluginSettings] = dict(loaded.config.plugins)
        """Each plugin's settings as they run now (a failed upgrade keeps the old ones)."""

    def reload(self, path: str | os.PathLike[str] | None = None) -> tuple[ReloadPlan, list[str]]:
        """Check and apply the file at ``path`` (default: the one loaded at start).

        Returns the plan carried out and the problems met while applying it (an upgrade
        rolled back, say); a file that fails the check raises `ConfigError` and changes nothing.
        """
        where = Path(path) if path is not None else self.loaded.path
        try:
            new = load_config(where)
            plan = self._plan(new)
        except (ConfigError, UpgradeError) as exc:
            self.system.store.append(ConfigReloadRefused(path=str(where), reason=str(exc)), actor=ACTOR)
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{where}: {exc}") from None
        problems = self._apply(new, plan)
        self.system.store.append(
            ConfigReloaded(path=str(where), upgraded=plan.upgrade, added=plan.add, removed=plan.remove), actor=ACTOR,
        )
        return plan, problems

    def _plan(self, new: LoadedConfig) -> ReloadPlan:
        config, old = new.config, self.loaded.config
        for key in _FIXED:
            if getattr(config, key) != getattr(old, key):
                raise ConfigError(
                    f"{new.path}: key `{key}` changed; it cannot change while the system runs: restart "
                    f"`actorlog run` to apply it"
                )
        upgrade: list[str] = []
        for name, settings in config.plugins.items():
            running = self.running.get(name)
            if running is None:
                continue
            for key in _PLUGIN_FIXED:
                if _effective(settings, key) != _effective(running, key):
                    raise ConfigError(
                        f"{new.path}: key `plugins.{toml_key(name)}.{key}` changed; an upgrade changes a plugin's "
                        f"class, version and config only: restart `actorlog run` to apply it"
                    )
            if self._changed(name, running, settings):
                try:
                    self.system.check_upgrade(name, settings.class_, config=settings.config)
                except UpgradeError as exc:
                    raise ConfigError(f"{new.path}: key `plugins.{toml_key(name)}`: {exc}") from None
                upgrade.append(name)
        graph = {name: _depends_on(settings) for name, settings in config.plugins.items()}
        order = start_order(graph)
        removed = [name for name in self.running if name not in config.plugins]
        old_order = start_order({name: self.system.registration(name).depends_on for name in self.running})
        return ReloadPlan(
            remove=tuple(name for name in reversed(old_order) if name in removed),
            upgrade=tuple(name for name in order if name in upgrade),
            add=tuple(name for name in order if name not in self.running),
        )

    def _changed(self, name: str, running: PluginSettings, settings: PluginSettings) -> bool:
        if settings.class_ != running.class_ or settings.config != running.config:
            return True
        cls = load_plugin_class(settings.class_)
        current = self.system.registration(name)
        return (class_path(cls), str(cls.version)) != (current.class_path, current.version)

    def _apply(self, new: LoadedConfig, plan: ReloadPlan) -> list[str]:
        problems: list[str] = []
        plugins = new.config.plugins
        for name in plan.remove:
            self.system.remove(name)
            del self.running[name]
        for name in plan.upgrade:
            settings = plugins[name]
            try:
                self.system.upgrade(name, settings.class_, config=settings.config)
            except UpgradeError as exc:
                problems.append(str(exc))
                continue
            self.running[name] = settings
        for name in plan.add:
            settings = plugins[name]
            self.system.register(
                name, settings.class_, config=settings.config, depends_on=settings.depends_on,
                requires=settings.requires, health_interval=settings.health_interval,
                log_messages=settings.log_messages, max_inbox=settings.max_inbox,
            )
            self.running[name] = settings
        if plan.add:
            try:
                self.system.start()
            except StartError as exc:  # the added plugins it could not start are taken out again
                problems.append(str(exc))
                for name in reversed(plan.add):
                    if self.system.plugins.get(name) != "running":
                        self.system.remove(name)
                        del self.running[name]
        return problems


def _effective(settings: PluginSettings, key: str) -> object:
    """The value of plugin key ``key`` as registered: the file's, or else its class's own."""
    value = getattr(settings, key)
    if value is None:
        value = getattr(load_plugin_class(settings.class_), key)
    if key == "depends_on":
        return tuple(value)
    return dict(value) if key == "requires" else value


def _depends_on(settings: PluginSettings) -> list[str]:
    if settings.depends_on is not None:
        return list(settings.depends_on)
    return list(load_plugin_class(settings.class_).depends_on)
