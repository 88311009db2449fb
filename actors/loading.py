"""Finding plugin classes: given directly, by import path, or by entry point."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from actorlog.actors.errors import RegistrationError
from actorlog.actors.plugin import Plugin

ENTRY_POINT_GROUP = "actorlog.plugins"


def available_plugins() -> dict[str, str]:
    """Plugins installed under the ``actorlog.plugins`` entry-point group: name -> import path."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_plugin_class(spec: Any) -> type[Plugin]:
    """The plugin class ``spec`` names: a class, ``"pkg.module:Class"``, ``"pkg.module.Class"``,
    or the name of an entry point in the ``actorlog.plugins`` group."""
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
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported with the entry point's name
                raise RegistrationError(
                    f"entry point {spec!r} ({ep.value}) cannot be loaded: {describe_exception(exc)}"
                ) from exc
    module_name, sep, attr = spec.partition(":")
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        raise RegistrationError(
            f"{spec!r} is neither an installed actorlog.plugins entry point nor an import path like 'package.module:Class'"
        )
    return import_object(module_name, attr, f"plugin {spec!r}")


def import_object(module_name: str, attr: str, what: str) -> Any:
    """``module_name``'s attribute ``attr`` (dotted for nested ones), for ``what`` (named in errors);
    see `import_module` for how a module that cannot be imported is reported."""
    obj = import_module(module_name, what)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise RegistrationError(f"module {module_name!r} has no attribute {attr!r} ({what})") from None
        except Exception as exc:  # noqa: BLE001 - a module __getattr__ that raises
            raise RegistrationError(
                f"looking up {attr!r} in module {module_name!r} for {what} failed: {describe_exception(exc)}"
            ) from exc
    return obj


def import_module(module_name: str, what: str) -> Any:
    """Import ``module_name`` for ``what`` (named in errors).

    Whatever importing the module raises (`ImportError`, a `SyntaxError` in it, any exception
    its top-level code raises, even `SystemExit`) becomes a one-line `RegistrationError`
    naming the module, ``what`` and the cause; a relative module name is refused, since
    there is no package to resolve it against. `KeyboardInterrupt` is not caught.
    """
    if module_name.startswith("."):
        raise RegistrationError(
            f"module name {module_name!r} of {what} is a relative import path, which has no package to be "
            f"relative to; give the absolute module path, e.g. 'package.module:Class'"
        )
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise RegistrationError(f"cannot import module {module_name!r} for {what}: {describe_exception(exc)}") from exc
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the module's own code failed: reported, never a traceback
        raise RegistrationError(
            f"importing module {module_name!r} for {what} failed: {describe_exception(exc)}; fix that module"
        ) from exc


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` on one line (a message holding line breaks is shown with repr)."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r}) while being imported"
    text = str(exc)
    if not text.isprintable():
        text = repr(text)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def class_path(cls: type) -> str:
    """The import path a class can be loaded back from: ``module:QualName``."""
    return f"{cls.__module__}:{cls.__qualname__}"
