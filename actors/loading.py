"""Finding plugin classes: given directly, by import path, or by entry point."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actorlog.actors.plugin import Plugin

from actorlog.actors.errors import RegistrationError

ENTRY_POINT_GROUP = "actorlog.plugins"


def available_plugins() -> dict[str, str]:
    """Plugins installed under the ``actorlog.plugins`` entry-point group: name -> import path."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_plugin_class(spec: Any) -> type[Plugin]:
    """The plugin class ``spec`` names: a class, ``"pkg.module:Class"``, ``"pkg.module.Class"``,
    or the name of an entry point in the ``actorlog.plugins`` group."""
    from actorlog.actors.plugin import Plugin  # noqa: F811 - at run time, avoiding an import cycle

    if isinstance(spec, type):
        cls = spec
    elif isinstance(spec, str):
        cls = _resolve(spec)
    else:
        raise RegistrationError(f"a plugin is given as a class, an import path or an entry-point name, not {spec!r}")
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise RegistrationError(f"{spec!r} is not a subclass of actorlog.actors.Plugin")
    return cls


def _resolve(spec: str) -> Any:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == spec:
            try:
                return ep.load()
            except Exception as exc:  # noqa: BLE001 - reported with the entry point's name
                raise RegistrationError(f"entry point {spec!r} ({ep.value}) cannot be loaded: {exc}") from exc
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise RegistrationError(
            f"{spec!r} is neither an installed actorlog.plugins entry point nor an import path like 'package.module:Class'"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise RegistrationError(f"cannot import module {module_name!r} for plugin {spec!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise RegistrationError(f"module {module_name!r} has no attribute {attr!r} (plugin {spec!r})") from None
    return obj


def class_path(cls: type) -> str:
    """The import path a class can be loaded back from: ``module:QualName``."""
    return f"{cls.__module__}:{cls.__qualname__}"
