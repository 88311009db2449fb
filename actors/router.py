"""Routing application messages to plugin actors, with every check made at the sender."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pykka

from actorlog.actors.correlation import new_correlation
from actorlog.actors.errors import (
    AskCycleError,
    PluginNotRunningError,
    PluginOverloadedError,
    SystemStoppedError,
    UnknownPluginError,
)
from actorlog.actors.error_policy import ErrorPolicy
from actorlog.actors.inbox_bound import InboxBound
from actorlog.actors.metrics import Recorder
from actorlog.actors.plugin import Plugin
from actorlog.actors.protocol import Delivery
from actorlog.events import Message, MessageRefused, TypeRegistry
from actorlog.store import EventStore

APP = "app"
"""The sender name of the application itself."""

ANYONE = "*"
"""In a plugin's permissions, a sender name that stands for every sender."""

DEFAULT_MAX_INBOX = 10_000
"""Messages a plugin may have waiting (in its inbox or stash) before senders are slowed."""

INBOX_TIMEOUT = 30.0
"""How long a sender waits for room in a full inbox before `PluginOverloadedError`."""

ACCEPTING = frozenset({"starting", "running", "suspended", "restarting", "upgrading"})
"""Plugin states in which messages are queued for it (a restart or an upgrade delivers them to the new instance)."""


@dataclass
class PluginEntry:
    """Everything the system knows about one registered plugin.

    ``cls``, ``config``, ``handlers`` and ``version`` are set at registration and replaced
    only by the plugin's own actor, when an upgrade's new instance has started.
    """

    name: str
    cls: type[Plugin]
    config: dict[str, Any]
    depends_on: tuple[str, ...]
    requires: dict[str, str]
    permissions: dict[type[Message], frozenset[str]] | None
    log_messages: bool
    health_interval: float | None
    handlers: dict[type[Message], Callable[..., Any]]
    state: str = "registered"
    """Written by the plugin's own actor only; senders read it to know whether it takes messages."""
    handling: str | None = None
    """The message type its handler is running now, if any (written by its actor; named when it hangs)."""
    ref: pykka.ActorRef[Any] | None = None
    thread: threading.Thread | None = None
    """The plugin actor's thread (set by the actor when it starts)."""
    restarts: int = 0
    """Restarts so far (written by the supervisor only)."""
    restart_times: list[float] = field(default_factory=list)
    instance: Plugin | None = None
    """The running instance, if any (set by its actor; read by `ActorSystem.stop` for `on_shutdown`)."""
    inbox: InboxBound = field(default_factory=lambda: InboxBound(DEFAULT_MAX_INBOX))
    """Messages sent but not yet handled or refused (stashed ones included), bounded."""
    version: str = ""
    """The version it runs (the class's own unless registered or upgraded with another)."""
    sent: set[type[Message]] = field(default_factory=set)
    """Message types sent to it so far (an upgrade must keep handling them); added to under `sent_lock`."""
    sent_lock: threading.Lock = field(default_factory=threading.Lock)
    checked: dict[tuple[str, type], dict[type[Message], Callable[..., Any]]] = field(default_factory=dict)
    """(sender, message type) pairs whose checks passed, each with the handlers it was checked
    against (a cache: any sender may add an entry; every entry it adds is true)."""

    def __post_init__(self) -> None:
        if not self.version:
            self.version = str(self.cls.version)

    def sent_types(self) -> frozenset[type[Message]]:
        """The message types sent to this plugin so far."""
        with self.sent_lock:
            return frozenset(self.sent)

    def accepts(self, sender: str, message_type: type[Message]) -> bool:
        """Whether ``sender`` may send this plugin messages of ``message_type``."""
        if self.permissions is None:
            return True
        allowed = self.permissions.get(message_type)
        return allowed is not None and (sender in allowed or ANYONE in allowed)


class Router:
    """The system's routing table: who is registered, in what state, and how to reach them."""

    def __init__(self, store: EventStore, registry: TypeRegistry) -> None:
        self.store = store
        self.registry = registry
        self.plugins: dict[str, PluginEntry] = {}
        self.errors: pykka.ActorRef[Any] | None = None
        self.error_policy: ErrorPolicy | None = None
        """The error handler's policy, when a plugin's actor may decide by its defaults (set once, at setup)."""
        self.recorder: Recorder | None = None
        self.stopped: BaseException | None = None
        self.stopping = False
        """Set when the system begins to stop: retries give up instead of waiting."""
        self.asking: dict[str, str] = {}
        """Which plugin each plugin's handler is waiting on in an ask (each key written by that plugin's thread)."""

    def entry(self, name: str) -> PluginEntry:
        """The entry of plugin ``name``; `UnknownPluginError` if there is none."""
        try:
            return self.plugins[name]
        except KeyError:
            raise UnknownPluginError(name, list(self.plugins)) from None

    def send(self, sender: str, recipient: str, message: object, correlation: str | None, reply: Future[Any] | None) -> None:
        """Check and deliver one message; raises at the sender, never inside the recipient."""
        if self.stopped is not None:
            raise self.stopped_error("no more messages are taken")
        entry = self.plugins.get(recipient)
        if entry is None:
            raise UnknownPluginError(recipient, list(self.plugins))
        message_type = type(message)
        # The checks of (sender, recipient, type) that passed once pass again while the
        # recipient's handlers are the same (an upgrade replaces them): one dict lookup.
        key = (sender, message_type)
        if entry.checked.get(key) is not entry.handlers:
            self._check(sender, entry, message, correlation)
            entry.checked[key] = entry.handlers
        if entry.state not in ACCEPTING or entry.ref is None:
            raise PluginNotRunningError(recipient, entry.state)
        # Back-pressure: a full inbox slows the sender. A plugin sending to itself is not
        # held (it would wait for itself); it takes a slot only if one is free.
        if sender == recipient:
            bounded = entry.inbox.take(0)
        elif not entry.inbox.take(INBOX_TIMEOUT):
            raise PluginOverloadedError(recipient, entry.inbox.limit, INBOX_TIMEOUT)
        else:
            bounded = True
        entry.ref.tell(Delivery(message, sender, correlation or new_correlation(), reply, bounded))

    def _check(self, sender: str, entry: PluginEntry, message: object, correlation: str | None) -> None:
        """Refuse (logged, raised) a message the recipient has no handler for or may not take from ``sender``."""
        message_type = type(message)
        if message_type not in entry.handlers:
            self._refuse_type(sender, entry, message)
        if message_type not in entry.sent:
            with entry.sent_lock:
                entry.sent.add(message_type)  # type: ignore[arg-type]
        if entry.permissions is not None and not entry.accepts(sender, message_type):  # type: ignore[arg-type]
            kind = self.registry.by_type[message_type][0]  # type: ignore[index]
            self._refused(sender, entry.name, kind, "permission denied", correlation)
            raise PermissionError(
                f"{_who(sender)} may not send {kind} ({message_type.__qualname__}) to plugin {entry.name!r}; "
                f"the plugin's permissions allow it from: {_allowed(entry.permissions.get(message_type))}"  # type: ignore[arg-type]
            )

    def _refuse_type(self, sender: str, entry: PluginEntry, message: object) -> None:
        cls = type(message)
        name = f"{cls.__module__}.{cls.__qualname__}"
        info = self.registry.by_type.get(cls)  # type: ignore[arg-type]
        if info is None or not isinstance(message, Message):
            problem = (
                f"{name} is not a registered message type"
                if isinstance(message, msgspec.Struct)
                else f"{name} is not a message: only instances of registered actorlog.events.Message types may be sent"
            )
            self._refused(sender, entry.name, name, "not a registered message type", None)
            raise TypeError(f"cannot send to plugin {entry.name!r}: {problem}")
        handled = ", ".join(sorted(self.registry.by_type[t][0] for t in entry.handlers)) or "nothing"
        self._refused(sender, entry.name, info[0], "no handler for this message type", None)
        raise TypeError(
            f"cannot send {info[0]} ({cls.__qualname__}) to plugin {entry.name!r}: it has no handler for it "
            f"(it handles: {handled})"
        )

    def _refused(self, sender: str, recipient: str, kind: str, reason: str, correlation: str | None) -> None:
        if self.store.failure is None:
            self.store.append(
                MessageRefused(recipient=recipient, sender=sender, message_kind=kind, reason=reason),
                actor=sender, correlation=correlation,
            )

    def check_ask(self, sender: str, recipient: str, message: object) -> None:
        """Refuse an ask that could never be answered: a plugin asking itself, or an ask
        closing a cycle of plugins each waiting on the next (``a -> b -> a``)."""
        if not self._on_own_thread(sender):
            return  # only a handler on its plugin's own thread holds that plugin up while it waits
        chain = [sender, recipient]
        while chain[-1] != sender:
            waiting_on = self.asking.get(chain[-1])
            if waiting_on is None or len(chain) > len(self.plugins) + 1:
                return
            chain.append(waiting_on)
        kind = self.registry.by_type.get(type(message), (type(message).__qualname__,))[0]  # type: ignore[arg-type]
        raise AskCycleError(chain, kind)

    def _on_own_thread(self, sender: str) -> bool:
        entry = self.plugins.get(sender)
        return entry is not None and entry.thread is threading.current_thread()

    def wait(
        self, future: Future[Any], recipient: str, message: object, timeout: float | None, sender: str = APP
    ) -> Any:
        """The reply in ``future``, or the handler's exception; `TimeoutError` after ``timeout`` seconds."""
        waits = self._on_own_thread(sender)
        if waits:
            self.asking[sender] = recipient
        try:
            return future.result(timeout)
        except FutureTimeout:
            if future.done():
                raise  # the handler itself raised a TimeoutError
            raise self.timeout_error(recipient, message, timeout) from None
        finally:
            if waits:
                self.asking.pop(sender, None)

    def timeout_error(self, recipient: str, message: object, timeout: float | None) -> TimeoutError:
        """The error for an ask that got no answer in time."""
        kind = self.registry.by_type.get(type(message), (type(message).__qualname__,))[0]  # type: ignore[arg-type]
        return TimeoutError(f"plugin {recipient!r} did not answer {kind} within {timeout} s")

    def report(self, message: Message) -> None:
        """Hand a failure report to the error handler without waiting."""
        if self.errors is not None:
            self.errors.tell(message)

    def consult(self, report: Message) -> Any:
        """Ask the error handler to decide on a failure and wait for its decision."""
        if self.errors is None or self.stopped is not None:
            raise self.stopped_error("its error handler cannot decide on failures")
        try:
            return self.errors.ask(report, block=True)
        except pykka.ActorDeadError:
            raise self.stopped_error("its error handler has stopped") from None

    def stopped_error(self, consequence: str) -> SystemStoppedError:
        """The error for work refused because the system stopped, saying why it stopped."""
        why = f" ({self.stopped})" if self.stopped is not None else ""
        error = SystemStoppedError(f"the actor system is stopped{why}; {consequence}")
        error.__cause__ = self.stopped if isinstance(self.stopped, Exception) else None
        return error


def _who(sender: str) -> str:
    return "the application" if sender == APP else f"plugin {sender!r}"


def _allowed(senders: Collection[str] | None) -> str:
    return ", ".join(sorted(senders)) if senders else "nobody"
