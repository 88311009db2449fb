"""`Plugin`: the base class of an application component run as an actor.

::

    class Generate(Message, tag="llm.generate", frozen=True):
        prompt: str

    class LLMPlugin(Plugin):
        version = "1.2.0"

        def on_start(self) -> None:
            self.model = self.config.get("model", "offline")

        @handler
        def generate(self, message: Generate) -> str:
            return f"{self.model}: {message.prompt}"

A handler's return value is the reply to ``ask``. Handlers run one at a time in the
plugin's own actor thread, so a plugin needs no locks for its own state.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

import msgspec

from actorlog.actors.errors import RegistrationError
from actorlog.events import Message

if TYPE_CHECKING:
    from actorlog.actors.context import PluginContext, PluginRef

F = TypeVar("F", bound=Callable[..., Any])
_HANDLES = "__actorlog_handles__"


class Health(msgspec.Struct, frozen=True):
    """The result of a health check."""

    healthy: bool
    detail: str = ""


@overload
def handler(function: F) -> F: ...
@overload
def handler(function: type[Message]) -> Callable[[F], F]: ...
def handler(function: Any) -> Any:
    """Mark a method as the handler of one message type.

    ``@handler`` takes the type from the annotation of the method's message parameter;
    ``@handler(MessageType)`` names it explicitly.
    """
    if isinstance(function, type):
        message_type = function

        def mark(method: F) -> F:
            setattr(method, _HANDLES, message_type)
            return method

        return mark
    setattr(function, _HANDLES, None)
    return function


class Plugin:
    """Base class of plugins. Override what you need; every hook is optional.

    Class attributes, each of which `ActorSystem.register` may override:

    - ``version``: this plugin's version, checked against dependents' ``requires``.
    - ``depends_on``: names of plugins that must be running before this one starts.
    - ``requires``: version specifiers for dependencies, e.g. ``{"sandbox": ">=1.0,<2"}``.
    - ``permissions``: which senders may send which message types, e.g.
      ``{Solve: {"app"}, Status: {"*"}}``; None (the default) lets anyone send anything
      this plugin handles. Sender names are plugin names, ``"app"`` for the application.
    - ``log_messages``: log every received message (needed to reproduce failures).
    - ``health_interval``: seconds between automatic health checks, or None.
    - ``max_inbox``: messages that may wait for this plugin (queued, or stashed while it
      recovers) before senders are slowed; a sender waits up to 30 s for room, then gets
      `PluginOverloadedError`.
    """

    version: ClassVar[str] = "0.0.0"
    depends_on: ClassVar[Sequence[str]] = ()
    requires: ClassVar[Mapping[str, str]] = {}
    permissions: ClassVar[Mapping[type[Message], Collection[str]] | None] = None
    log_messages: ClassVar[bool] = True
    health_interval: ClassVar[float | None] = None
    max_inbox: ClassVar[int] = 10_000

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        """Check a config for this plugin without starting it; raise (a `ValueError`, say)
        naming the key at fault.

        Config files are checked with it before the log is opened (``actorlog run``,
        ``actorlog run --check``), so a config the plugin would reject at start is refused
        before anything is written. Decode the config with the same function `on_start`
        uses (a msgspec struct, say); leave out what depends on the host it runs on (files,
        users, environment variables, the network), which `on_start` checks. The default
        accepts any config.
        """

    def __init__(self, context: PluginContext, config: Mapping[str, Any]) -> None:
        self.context = context
        self.config: Mapping[str, Any] = config

    @property
    def deps(self) -> Mapping[str, PluginRef]:
        """References to the plugins this one depends on, by name."""
        return self.context.deps

    def on_start(self) -> None:
        """Called in the plugin's thread before it takes messages; raise to fail the start."""

    def on_stop(self) -> None:
        """Called in the plugin's thread after its last message."""

    def on_shutdown(self) -> None:
        """Called once when the system begins to stop, from the stopping thread, possibly
        while a handler of this plugin is still running: cancel long-running work here
        (kill child processes, close sockets) so the stop does not wait for it. Must be
        thread-safe. `on_stop` still follows, in the plugin's own thread."""

    def on_upgrade(self) -> Any:
        """Called in the plugin's thread when `ActorSystem.upgrade` replaces this instance, after
        its last message and before `on_stop`: return the state to hand to the new instance's
        `migrate` (anything; it stays in memory, it is not logged). The default hands over nothing."""
        return None

    def migrate(self, old_state: Any, old_version: str) -> None:
        """Called in the plugin's thread on the new instance of an upgrade, after `on_start` and
        before its first message, with what the old instance's `on_upgrade` returned and the old
        version. Raise to refuse it: the upgrade is then rolled back. On a rollback the old class
        gets its own state back the same way. The default ignores it."""

    def health_check(self) -> bool | Health:
        """Report health; return False or ``Health(False, detail)`` (or raise) when unhealthy."""
        return True


def handlers_of(cls: type[Plugin]) -> dict[type[Message], Callable[..., Any]]:
    """The plugin class's handlers by message type (subclasses override their bases)."""
    table: dict[type[Message], Callable[..., Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, member in vars(klass).items():
            if not callable(member) or not hasattr(member, _HANDLES):
                continue
            message_type = getattr(member, _HANDLES) or _annotated_type(cls, name, member)
            if not (isinstance(message_type, type) and issubclass(message_type, Message)):
                raise RegistrationError(
                    f"{cls.__qualname__}.{name} handles {message_type!r}, which is not an actorlog Message subclass"
                )
            table[message_type] = getattr(cls, name)  # the final class's method: overrides win
    return table


def _annotated_type(cls: type, name: str, method: Callable[..., Any]) -> Any:
    params = [p for p in inspect.signature(method).parameters.values() if p.name != "self"]
    if len(params) != 1:
        raise RegistrationError(
            f"{cls.__qualname__}.{name}: a handler takes exactly one message parameter besides self"
        )
    try:
        hints = typing.get_type_hints(method)
    except Exception as exc:  # noqa: BLE001 - unresolvable forward references
        raise RegistrationError(
            f"{cls.__qualname__}.{name}: cannot resolve the message type annotation ({exc}); "
            f"use @handler(MessageType) instead"
        ) from None
    if params[0].name not in hints:
        raise RegistrationError(
            f"{cls.__qualname__}.{name}: annotate the message parameter with its type, or use @handler(MessageType)"
        )
    return hints[params[0].name]
