"""Hot upgrade: what replaces a running plugin, and the checks made before anything changes.

`ActorSystem.upgrade` runs `prepare_upgrade` on the caller's thread (loading the class,
checking its config, its dependents' ``requires`` and the message types it is sent); a
refusal changes nothing. The supervisor then carries out an `UpgradePlugin`: the
plugin's actor halts the old instance (``on_upgrade``, ``on_stop``) while its inbox
keeps stashing, starts the new one (``on_start``, ``migrate``), and rolls back to the
old `Version` if that fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from actorlog.actors.errors import RegistrationError, UpgradeRefusedError
from actorlog.actors.graph import unmet_requirement
from actorlog.actors.loading import class_path, describe_exception, load_plugin_class
from actorlog.actors.plugin import Plugin, handlers_of
from actorlog.actors.redaction import check_config, redacted
from actorlog.actors.router import PluginEntry, Router
from actorlog.events import Message, PluginUpgraded, PluginUpgradeRefused, PluginUpgrading, tag_of


@dataclass(frozen=True)
class Version:
    """One version of a plugin: its class, config, version and handlers.

    ``migrate`` says whether it is handed the old instance's state; ``from_version`` is
    the version that state comes from (what `Plugin.migrate` is told).
    """

    cls: type[Plugin]
    config: dict[str, Any]
    version: str
    handlers: dict[type[Message], Callable[..., Any]]
    migrate: bool = True
    from_version: str = ""

    @property
    def class_path(self) -> str:
        """The import path the log records for it."""
        return class_path(self.cls)

    @classmethod
    def running(cls, entry: PluginEntry, *, migrate: bool) -> Version:
        """The version ``entry`` runs now (what a rollback starts again)."""
        return cls(entry.cls, entry.config, entry.version, entry.handlers, migrate, entry.version)


class Registration(msgspec.Struct, frozen=True, kw_only=True):
    """What a registered plugin runs now (`ActorSystem.registration`)."""

    class_path: str
    version: str
    depends_on: tuple[str, ...]


class NotUpgradable(RuntimeError):
    """Raised by a plugin's actor asked to hand over while it is not running (failed, awaiting a
    decision, restarting): the upgrade is refused, nothing changed."""


@dataclass(frozen=True)
class UpgradePlugin:
    """Asked of the supervisor: replace ``plugin``'s running version by ``new``; the old
    instance may take ``timeout`` seconds to reach the halt (queued messages first)."""

    plugin: str
    new: Version
    timeout: float
    correlation: str


def prepare_upgrade(
    router: Router, entry: PluginEntry, plugin: type[Plugin] | str, config: Mapping[str, Any] | None,
    version: str | None, *, migrate: bool, allow_dropped_messages: bool,
) -> Version:
    """The `Version` to upgrade ``entry`` to, once every check passed; `UpgradeRefusedError` says
    which failed. ``config`` None keeps the running config."""
    name = entry.name
    described = plugin if isinstance(plugin, str) else class_path(plugin) if isinstance(plugin, type) else repr(plugin)
    try:
        cls = load_plugin_class(plugin)
        handlers = handlers_of(cls)
    except RegistrationError as exc:
        raise UpgradeRefused(name, described, str(version or "?"), str(exc)) from None
    new_version = str(cls.version) if version is None else version
    if not isinstance(new_version, str) or not new_version:
        raise UpgradeRefused(name, described, repr(version), f"version must be a non-empty string, got {version!r}")
    problem = _config_problem(name, cls, entry.config if config is None else config)
    if problem:
        raise UpgradeRefused(name, class_path(cls), new_version, problem)
    new_config = dict(entry.config if config is None else config)
    for other in router.plugins.values():
        spec = other.requires.get(name)
        if spec is None or other.name == name:
            continue
        unmet = unmet_requirement(other.name, name, spec, other.depends_on, cls, new_version)
        if unmet:
            raise UpgradeRefused(name, class_path(cls), new_version, f"{unmet}: it would break dependent {other.name!r}")
    handled_kinds = {tag_of(t) for t in handlers}
    dropped = sorted(k for k in (_kind(t) for t in entry.sent_types()) if k not in handled_kinds)
    if dropped and not allow_dropped_messages:
        raise UpgradeRefused(
            name, class_path(cls), new_version,
            f"{class_path(cls)} has no handler for {', '.join(dropped)}, which {name!r} is sent; pass "
            f"allow_dropped_messages=True to drop them (such messages are then refused)",
        )
    try:
        for message_type in handlers:
            router.registry.register(message_type, replace=_reloaded(router, message_type))
    except RegistrationError as exc:
        raise UpgradeRefused(name, class_path(cls), new_version, str(exc)) from None
    return Version(cls, new_config, new_version, handlers, migrate, entry.version)


class UpgradeRefused(UpgradeRefusedError):
    """`UpgradeRefusedError` carrying what the refusal event records (class path and version)."""

    def __init__(self, plugin: str, class_path: str, version: str, reason: str) -> None:
        super().__init__(plugin, reason)
        self.class_path = class_path
        self.version = version

    def event(self) -> PluginUpgradeRefused:
        """The ``plugin.upgrade_refused`` event recording this refusal."""
        return PluginUpgradeRefused(plugin=self.plugin, class_path=self.class_path, plugin_version=self.version,
                                    reason=self.reason)


def _config_problem(name: str, cls: type[Plugin], config: Any) -> str | None:
    """Why ``config`` cannot be the new config, checked as at registration (and as config files are)."""
    if not isinstance(config, Mapping):
        return f"config of plugin {name!r} must be a mapping, got {type(config).__name__}"
    try:
        check_config(name, dict(config))
    except RegistrationError as exc:
        return str(exc)
    try:
        msgspec.json.encode(dict(config))
    except (TypeError, msgspec.EncodeError) as exc:
        return f"config of plugin {name!r} cannot be logged as JSON: {exc}"
    try:
        cls.validate_config(config)
    except Exception as exc:  # noqa: BLE001 - whatever the plugin's own check raises is the answer
        return f"{class_path(cls)} refuses the config: {describe_exception(exc)}"
    return None


def _reloaded(router: Router, message_type: type[Message]) -> bool:
    """Whether ``message_type`` is the same class of a module imported again (`importlib.reload`):
    then it takes over its tag from the stale class, which senders no longer use."""
    stale = router.registry.type_for(tag_of(message_type) or "")
    return (stale is not None and stale is not message_type
            and (stale.__module__, stale.__qualname__) == (message_type.__module__, message_type.__qualname__))


def _kind(message_type: type[Message]) -> str:
    return tag_of(message_type) or message_type.__qualname__


def upgrade_events(old: Version, new: Version, plugin: str) -> tuple[PluginUpgrading, PluginUpgraded]:
    """The ``plugin.upgrading`` and ``plugin.upgraded`` events of replacing ``old`` by ``new`` (configs redacted)."""
    fields: dict[str, Any] = dict(
        plugin=plugin, old_class_path=old.class_path, old_version=old.version, old_config=redacted(old.config),
        class_path=new.class_path, plugin_version=new.version, config=redacted(new.config), migrate=new.migrate,
    )
    return PluginUpgrading(**fields), PluginUpgraded(**fields)
