"""Systems described by a TOML file: what ``actorlog run CONFIG.toml`` starts.

::

    log = "agent.db"                     # relative paths are relative to this file

    [supervision]
    max_restarts = 3
    within_seconds = 60.0

    [errors.severities]
    "builtins.ConnectionError" = "low"   # exception type (qualified name) -> severity

    [plugins.llm]
    class = "actorlog.actors.examples.llm:LLMPlugin"
    config = { failure_rate = 0.1 }

    [plugins.agent]
    class = "actorlog.actors.examples.agent:AgentPlugin"
    depends_on = ["llm", "sandbox"]
    health_interval = 10.0

The file is decoded with msgspec into the typed structs below, then checked as a whole
(plugin names free, classes importable, dependencies known, acyclic and of the
required versions, exception types found, ``[[send]]`` messages of types their
recipients handle) before the log is opened. Every problem is a `ConfigError` naming
the file and the key. Plugins are registered in the order the file lists them.
"""

from __future__ import annotations

import builtins
import difflib
import json
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from actorlog.actors.error_policy import ErrorPolicy
from actorlog.actors.redaction import check_config
from actorlog.actors.errors import ConfigError, DependencyError, MetricsAddressError, RegistrationError
from actorlog.actors.graph import start_order, unmet_requirement
from actorlog.actors.loading import describe_exception, import_module, load_plugin_class
from actorlog.actors.metrics import MetricsOptions
from actorlog.actors.metrics_server import parse_address
from actorlog.actors.plugin import Plugin, handlers_of
from actorlog.actors.supervisor import RestartPolicy
from actorlog.actors.system import RESERVED_NAMES, ActorSystem
from actorlog.store.errors import one_line
from actorlog.store.location import is_url
from actorlog.store.schema import check_regular_file
from actorlog.store.signing import SigningKey, SigningKeyError
from actorlog.events import Message, RecoveryAction, Severity

__all__ = [
    "ErrorSettings",
    "MetricsSettings",
    "PluginSettings",
    "SendSettings",
    "StoreSettings",
    "SupervisionSettings",
    "SystemConfig",
    "build_system",
    "load_config",
    "toml_key",
]

Positive = Annotated[int, msgspec.Meta(ge=1)]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=31_536_000)]
"""A duration in seconds: positive and finite, at most a year (``inf`` and ``1e308`` are refused)."""


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class StoreSettings(_Section, frozen=True):
    """``[store]``: how the event log is written."""

    synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL"
    busy_timeout: Seconds = 5.0
    max_pending_rows: Positive = 5_000
    max_batch_rows: Positive = 1_000
    signing_key: str | None = None
    """An Ed25519 private key file (``actorlog keygen``): the log gets signed checkpoints. Relative to the config file."""
    witness: str | None = None
    """A directory or ``.jsonl`` file that keeps a copy of each checkpoint. Relative to the config file."""
    checkpoint_every: Positive = 10_000
    checkpoint_interval: Seconds = 10.0
    file_mode: Annotated[int, msgspec.Meta(ge=0, le=0o777)] = 0o600
    """The permission bits a new log (and its -wal and -shm files) is created with, less the
    umask: ``0o600`` (its owner only), ``0o640`` for a group of readers."""


class SupervisionSettings(_Section, frozen=True):
    """``[supervision]``: restart intensity (more restarts of one plugin in the window escalates)."""

    max_restarts: Annotated[int, msgspec.Meta(ge=0)] = 3
    within_seconds: Seconds = 60.0
    control_timeout: Seconds = 5.0
    """How long a plugin may take to halt or stop (then it is abandoned, and the run is not clean)."""


class ErrorSettings(_Section, frozen=True):
    """``[errors]``: severities by exception type, and the action for each severity."""

    severities: dict[str, Severity] = {}
    """Qualified exception type name (``"builtins.ConnectionError"``, ``"pkg.mod.Error"``) -> severity."""
    actions: dict[Severity, RecoveryAction] = {}
    """Severity -> action (continue, restart, restart_with_dependents, stop, escalate)."""


class MetricsSettings(_Section, frozen=True):
    """``[metrics]``: how measurements are kept and bounded (see `MetricsOptions`)."""

    max_history: Positive = MetricsOptions().max_history
    max_pending: Positive = MetricsOptions().max_pending
    overload: Literal["block", "sample"] = "block"
    buffer_size: Positive = MetricsOptions().buffer_size
    flush_interval: Seconds = MetricsOptions().flush_interval
    buckets: list[float] = msgspec.field(default_factory=lambda: list(MetricsOptions().buckets))
    histogram_buckets: dict[str, list[float]] = {}
    address: str | None = None
    """``"HOST:PORT"``: serve ``/metrics`` for Prometheus there (``--metrics-address`` overrides it)."""

    def options(self) -> MetricsOptions:
        """The `MetricsOptions` these settings describe."""
        return MetricsOptions(**_metrics_fields(self))


def _metrics_fields(settings: MetricsSettings) -> dict[str, Any]:
    fields = msgspec.structs.asdict(settings)
    del fields["address"]
    fields["buckets"] = tuple(fields["buckets"])
    fields["histogram_buckets"] = {name: tuple(b) for name, b in fields["histogram_buckets"].items()}
    return fields


class PluginSettings(_Section, frozen=True):
    """``[plugins.NAME]``: one plugin. Keys left out keep the class's own defaults."""

    class_: str = msgspec.field(name="class")
    """Import path (``"package.module:Class"``) or the name of an ``actorlog.plugins`` entry point."""
    config: dict[str, Any] = {}
    depends_on: list[str] | None = None
    requires: dict[str, str] | None = None
    health_interval: Seconds | None = None
    log_messages: bool | None = None
    max_inbox: Positive | None = None


class SendSettings(_Section, frozen=True):
    """``[[send]]``: a message told to a plugin once the system has started."""

    to: str
    type: str
    """The message's tag, e.g. ``"agent.solve"``."""
    message: dict[str, Any] = {}
    """The message's fields."""


class SystemConfig(_Section, frozen=True):
    """A whole system: its log, settings and plugins."""

    log: str | None = None
    """Path of the event log (relative to the config file), or a ``postgresql://`` URL; ``--db`` overrides it."""
    snapshot_every: Positive | None = None
    store: StoreSettings = StoreSettings()
    supervision: SupervisionSettings = SupervisionSettings()
    errors: ErrorSettings = ErrorSettings()
    metrics: MetricsSettings = MetricsSettings()
    plugins: dict[str, PluginSettings] = {}
    send: list[SendSettings] = []


class LoadedConfig(msgspec.Struct, frozen=True):
    """A checked config, with what was resolved from it."""

    path: Path
    config: SystemConfig
    severities: dict[type[BaseException], Severity]
    messages: list[tuple[str, Message]]
    """The ``[[send]]`` messages, decoded into their types: (recipient, message)."""


def load_config(path: str | os.PathLike[str]) -> LoadedConfig:
    """Read, decode and check a config file; `ConfigError` names the file, the key and the problem.

    Everything that can be checked without opening the log or starting a plugin is:
    the file's shape and types, the ``[store] signing_key`` file, plugin names, classes (imported, with their handlers),
    each plugin's own config (its class's `Plugin.validate_config`), dependencies and
    version requirements, exception types, and the ``[[send]]`` messages.
    """
    path = Path(path)
    try:
        return _load(path)
    except RecursionError:
        raise ConfigError(
            f"{path}: the config file is nested too deeply to read (arrays or tables inside one another "
            f"hundreds of levels deep); flatten it"
        ) from None


def _load(path: Path) -> LoadedConfig:
    try:
        if not check_regular_file(path, "a config file"):
            raise ConfigError(f"{path}: no such config file")
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    data = _fold_case(data)
    # Tables keyed by name one by one first, so an error names the entry (msgspec says `plugins[...]`).
    for section, entry_type in (("plugins", PluginSettings), ("errors.severities", Severity),
                                ("errors.actions", RecoveryAction)):
        table: Any = data
        for part in section.split("."):
            table = table.get(part) if isinstance(table, dict) else None
        for name, value in (table or {}).items() if isinstance(table, dict) else ():
            try:
                msgspec.convert(value, entry_type)
            except msgspec.ValidationError as exc:
                raise ConfigError(
                    f"{path}: {_describe(str(exc), f'{section}.{toml_key(name)}', entry_type)}"
                ) from None
    try:
        config = msgspec.convert(data, SystemConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {_describe(str(exc))}") from None
    if not config.plugins:
        raise ConfigError(f"{path}: no plugins: add at least one [plugins.NAME] table with a `class` key")
    severities = _check(path, config)
    return LoadedConfig(path, config, severities, _messages(path, config))


def toml_key(name: str) -> str:
    """A TOML key as written in a dotted path: bare when it can be, else quoted."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _describe(problem: str, prefix: str = "", shape: Any = None) -> str:
    """msgspec's "... - at `$.plugins.llm`" as "... (at key `plugins.llm`)", on one line; an
    unknown key gets the closest known one ("did you mean"), a bad enum value the allowed ones.

    ``shape`` is the type at ``prefix`` (default: the whole file's, `SystemConfig`)."""
    located = re.match(r"(.*?)(?: - at `\$\.?(.*)`)?$", problem, re.DOTALL)
    assert located is not None  # the pattern matches any text
    text, where = located.group(1), located.group(2) or ""
    here = _type_at(SystemConfig if shape is None else shape, where)
    unknown = re.fullmatch(r"Object contains unknown field `(.+)`", text, flags=re.DOTALL)
    if unknown:
        text = f"unknown key `{unknown.group(1)}`"
        known = _keys_of(here)
        if known:
            close = difflib.get_close_matches(unknown.group(1), known, n=1, cutoff=0.6)
            text += f"; did you mean `{close[0]}`?" if close else f" (known keys: {', '.join(known)})"
    elif text.startswith("Invalid enum value"):
        allowed = _enum_values(here)
        if allowed:
            text += f"; expected one of {', '.join(map(repr, allowed))}"
    where = ".".join(part for part in (prefix, where.replace("class_", "class")) if part)
    return one_line(f"{text} (at key `{where}`)" if where else text)


def _type_at(shape: Any, where: str) -> Any:
    """The type msgspec checked at path ``where`` (``store.synchronous``, ``plugins[...]``), or None."""
    for part in re.findall(r"[^.\[\]]+|\[[^\]]*\]", where):
        shape = _unoptional(shape)
        if isinstance(shape, type) and issubclass(shape, msgspec.Struct):
            fields = {field.encode_name: field.type for field in msgspec.structs.fields(shape)}
            shape = fields.get(part)
        elif typing.get_origin(shape) in (dict, list):
            shape = typing.get_args(shape)[-1]
        else:
            return None
    return _unoptional(shape)


def _unoptional(shape: Any) -> Any:
    while typing.get_origin(shape) is Annotated:
        shape = typing.get_args(shape)[0]
    if typing.get_origin(shape) in (types.UnionType, typing.Union):
        kept = [arg for arg in typing.get_args(shape) if arg is not type(None)]
        return _unoptional(kept[0]) if len(kept) == 1 else shape
    return shape


def _keys_of(shape: Any) -> list[str]:
    if isinstance(shape, type) and issubclass(shape, msgspec.Struct):
        return [field.encode_name for field in msgspec.structs.fields(shape)]
    return []


def _enum_values(shape: Any) -> list[str]:
    return [str(value) for value in typing.get_args(shape)] if typing.get_origin(shape) is Literal else []


ENUMS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("store", "synchronous"): ("OFF", "NORMAL", "FULL", "EXTRA"),
    ("metrics", "overload"): ("block", "sample"),
}
"""Enum keys whose value is read whatever its case (``synchronous = "full"``): the meaning is clear."""


def _fold_case(data: Any) -> Any:
    """``data`` with the enum values of the config written in their canonical case, where a
    value matches one allowed value but for case; anything else is left for msgspec to refuse."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for (section, key), allowed in ENUMS.items():
        table = data.get(section)
        if isinstance(table, dict) and key in table:
            data[section] = {**table, key: _canonical(table[key], allowed)}
    errors = data.get("errors")
    if isinstance(errors, dict):
        errors = dict(errors)
        severities, actions = typing.get_args(Severity), typing.get_args(RecoveryAction)
        if isinstance(errors.get("severities"), dict):
            errors["severities"] = {k: _canonical(v, severities) for k, v in errors["severities"].items()}
        if isinstance(errors.get("actions"), dict):
            errors["actions"] = {_canonical(k, severities): _canonical(v, actions) for k, v in errors["actions"].items()}
        data["errors"] = errors
    return data


def _canonical(value: Any, allowed: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for choice in allowed:
            if value.casefold() == choice.casefold():
                return choice
    return value


def _check(path: Path, config: SystemConfig) -> dict[type[BaseException], Severity]:
    classes: dict[str, type[Plugin]] = {}
    for name, plugin in config.plugins.items():
        where = f"{path}: key `plugins.{toml_key(name)}"
        if not name:
            raise ConfigError(f"{where}`: a plugin needs a name; write [plugins.NAME] with a non-empty NAME")
        if not name.isprintable():
            raise ConfigError(
                f"{where}`: plugin name {name!r} holds a line break or another unprintable character; "
                f"choose a name without one"
            )
        if name in RESERVED_NAMES:
            raise ConfigError(
                f"{where}`: {name!r} is reserved; choose another plugin name "
                f"(reserved: {', '.join(sorted(RESERVED_NAMES))})"
            )
        try:
            cls = classes[name] = load_plugin_class(plugin.class_)
            handlers_of(cls)
        except RegistrationError as exc:
            raise ConfigError(f"{where}.class`: {one_line(str(exc))}") from None
        try:
            check_config(name, plugin.config)  # a key pasted where a variable's name belongs: refused, not echoed
        except RegistrationError as exc:
            raise ConfigError(f"{where}.config`: {exc}") from None
        try:
            cls.validate_config(plugin.config)
        except Exception as exc:  # noqa: BLE001 - whatever the plugin's own check raises is the answer
            raise ConfigError(f"{where}.config`: {describe_exception(exc)}") from None
        for dep in plugin.depends_on or ():
            if dep not in config.plugins:
                raise ConfigError(
                    f"{path}: key `plugins.{toml_key(name)}.depends_on`: {dep!r} is not a plugin of this file "
                    f"(plugins: {', '.join(map(repr, config.plugins))})"
                )
    for index, send in enumerate(config.send):
        if send.to not in config.plugins:
            raise ConfigError(f"{path}: key `send[{index}].to`: {send.to!r} is not a plugin of this file")
    depends_on = {
        name: plugin.depends_on if plugin.depends_on is not None else list(classes[name].depends_on)
        for name, plugin in config.plugins.items()
    }
    try:
        start_order(depends_on)
    except DependencyError as exc:
        raise ConfigError(f"{path}: keys `plugins.*.depends_on`: {exc}") from None
    for name, plugin in config.plugins.items():
        requires = plugin.requires if plugin.requires is not None else dict(classes[name].requires)
        for dep, spec in requires.items():
            problem = unmet_requirement(name, dep, spec, depends_on[name], classes.get(dep))
            if problem:
                raise ConfigError(f"{path}: key `plugins.{toml_key(name)}.requires`: {problem}")
    for field, value in _metrics_fields(config.metrics).items():
        try:
            MetricsOptions(**{field: value})
        except ValueError as exc:
            raise ConfigError(f"{path}: key `metrics.{field}`: {exc}") from None
    if config.metrics.address is not None:
        try:
            parse_address(config.metrics.address)
        except MetricsAddressError as exc:
            raise ConfigError(f"{path}: key `metrics.address`: {exc}") from None
    if config.store.signing_key is not None:
        try:  # what the store would refuse when opening the log (permissions, not a key), refused here too
            SigningKey(path.parent / config.store.signing_key)
        except SigningKeyError as exc:
            raise ConfigError(f"{path}: key `store.signing_key`: {one_line(str(exc))}") from None
    severities: dict[type[BaseException], Severity] = {}
    for type_name, severity in config.errors.severities.items():
        severities[_exception_type(path, type_name)] = severity
    return severities




def _exception_type(path: Path, name: str) -> type[BaseException]:
    where = f"{path}: key `errors.severities.{toml_key(name)}`"
    if ":" in name:
        module_name, _, qualname = name.partition(":")
    else:
        module_name, _, qualname = name.rpartition(".")
    try:
        owner: Any = import_module(module_name, f"exception type {name!r}") if module_name else builtins
        found = owner
        for part in qualname.split("."):
            found = getattr(found, part, None)
    except RegistrationError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a module __getattr__ that raises
        raise ConfigError(
            f"{where}: looking up {qualname!r} in module {module_name!r} failed: {describe_exception(exc)}"
        ) from None
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        raise ConfigError(
            f"{where}: {name!r} is not an exception type (use a qualified name, e.g. builtins.ConnectionError)"
        )
    return found


def build_system(
    loaded: LoadedConfig, *, db: str | os.PathLike[str] | None = None, metrics_address: str | None = None
) -> ActorSystem:
    """An `ActorSystem` with every plugin of the config registered (not yet started); it serves
    ``/metrics`` at ``metrics_address``, else at the file's ``[metrics] address`` if set."""
    config = loaded.config
    if db is None:
        if config.log is None:
            raise ConfigError(f"{loaded.path}: no event log: set the `log` key or pass --db PATH")
        db = config.log if is_url(config.log) else loaded.path.parent / config.log
    system = ActorSystem(
        db,
        restart_policy=RestartPolicy(
            config.supervision.max_restarts, config.supervision.within_seconds, config.supervision.control_timeout
        ),
        error_policy=ErrorPolicy(severities=loaded.severities, actions=dict(config.errors.actions)),
        store_options=_store_options(loaded),
        metrics=config.metrics.options(),
        snapshot_every=config.snapshot_every,
        metrics_address=metrics_address if metrics_address is not None else config.metrics.address,
    )
    try:
        for name, plugin in config.plugins.items():
            system.register(
                name, plugin.class_, config=plugin.config, depends_on=plugin.depends_on, requires=plugin.requires,
                health_interval=plugin.health_interval, log_messages=plugin.log_messages, max_inbox=plugin.max_inbox,
            )
    except BaseException:
        system.stop()
        raise
    return system


def _messages(path: Path, config: SystemConfig) -> list[tuple[str, Message]]:
    """The ``[[send]]`` messages, decoded into the types their recipients handle."""
    messages: list[tuple[str, Message]] = []
    for index, send in enumerate(config.send):
        handled = {_tag(t): t for t in handlers_of(load_plugin_class(config.plugins[send.to].class_))}
        cls = handled.get(send.type)
        if cls is None:
            raise ConfigError(
                f"{path}: key `send[{index}].type`: plugin {send.to!r} handles no message of type "
                f"{send.type!r} (it handles: {', '.join(sorted(handled)) or 'none'})"
            )
        unknown = sorted(set(send.message) - set(cls.__struct_fields__))
        if unknown:
            raise ConfigError(
                f"{path}: key `send[{index}].message.{toml_key(unknown[0])}`: {send.type} has no field {unknown[0]!r} "
                f"(fields: {', '.join(cls.__struct_fields__)})"
            )
        try:
            message = msgspec.convert(send.message, cls)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"{path}: {_describe(str(exc), f'send[{index}].message')}") from None
        messages.append((send.to, message))
    return messages


def _tag(cls: type[Message]) -> str:
    return str(cls.__struct_config__.tag)


def _store_options(loaded: LoadedConfig) -> dict[str, object]:
    """``[store]`` as `EventStore` options, its paths taken relative to the config file."""
    options: dict[str, object] = msgspec.structs.asdict(loaded.config.store)
    for key in ("signing_key", "witness"):
        if options[key] is not None:
            options[key] = loaded.path.parent / str(options[key])
    return options
