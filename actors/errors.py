"""Errors of the actor system. Each names the plugins involved and what to do."""

from __future__ import annotations

from collections.abc import Sequence

from actorlog.actors.redaction import redact_text
from actorlog.events import ActorlogError
from actorlog.events import RegistrationError as RegistrationError  # one class for types and plugins


class PluginError(ActorlogError):
    """Base class of actor-system errors."""


class UnknownPluginError(PluginError, LookupError):
    """No plugin of that name is registered in this system."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        listing = ", ".join(sorted(known)) or "none"
        super().__init__(f"no plugin named {name!r} is registered (registered: {listing})")
        self.name = name


class PluginNotRunningError(PluginError, RuntimeError):
    """The plugin exists but is not running (not started yet, stopped, or failed)."""

    def __init__(self, name: str, state: str) -> None:
        super().__init__(f"plugin {name!r} is {state}, so it cannot take messages; start the system first")
        self.name = name
        self.state = state


class ConfigError(ActorlogError, ValueError):
    """A system config file is invalid; the message names the file, the key and the problem."""


class PluginOverloadedError(PluginError, RuntimeError):
    """A plugin's inbox stayed full for longer than the sender may wait."""

    def __init__(self, name: str, max_inbox: int, waited: float) -> None:
        super().__init__(
            f"plugin {name!r} has {max_inbox} messages waiting and took none of them for {waited:g} s; "
            f"it is stuck or far slower than its senders (raise max_inbox when registering it, or send less)"
        )
        self.name = name


class DependencyError(PluginError, ValueError):
    """The plugins' dependencies cannot be satisfied: a cycle, a missing plugin, a version mismatch."""


class StartError(PluginError, RuntimeError):
    """A plugin failed to start; its dependents were left unstarted and the rest stopped."""

    def __init__(self, plugin: str, cause: BaseException, unstarted: Sequence[str]) -> None:
        left = ", ".join(unstarted) or "none"
        super().__init__(
            f"plugin {plugin!r} failed to start: {type(cause).__name__}: {redact_text(str(cause))}; "
            f"left unstarted: {left}; every plugin already started was stopped"
        )
        self.plugin = plugin
        self.unstarted = tuple(unstarted)


class EscalationError(PluginError, RuntimeError):
    """A failure was escalated: the system stopped."""

    def __init__(self, plugin: str, reason: str) -> None:
        super().__init__(
            f"the actor system stopped: a failure in plugin {plugin!r} was escalated ({redact_text(reason)})"
        )
        self.plugin = plugin
        self.reason = reason


class UnhealthyError(PluginError):
    """Raised on behalf of a plugin whose health check reported it unhealthy."""

    def __init__(self, plugin: str, detail: str) -> None:
        super().__init__(f"plugin {plugin!r} is unhealthy: {redact_text(detail) or 'no detail given'}")
        self.plugin = plugin
        self.detail = detail


class SystemStoppedError(PluginError, RuntimeError):
    """The actor system is stopped (or stopping) and takes no more messages."""


class AskCycleError(PluginError, RuntimeError):
    """An ask that could never be answered: a plugin's handler asking its own plugin, or
    closing a cycle of handlers each waiting on the next. Refused at the sender."""

    def __init__(self, chain: Sequence[str], kind: str) -> None:
        sender, recipient = chain[0], chain[1]
        what = "a plugin asking itself" if sender == recipient else "an ask cycle " + " -> ".join(map(repr, chain))
        super().__init__(
            f"plugin {sender!r} may not ask {recipient!r} for {kind}: {what} would wait for ever, since each "
            f"plugin handles one message at a time; tell instead, or answer from the handler that was asked"
        )
        self.chain = tuple(chain)


class UpgradeError(PluginError, RuntimeError):
    """An upgrade of a running plugin failed once begun; ``rolled_back`` says whether the
    old class and config run again (False: the rollback failed too and is handled as a
    failed restart)."""

    def __init__(self, plugin: str, reason: str, *, rolled_back: bool = True) -> None:
        outcome = "the old version runs again" if rolled_back else "the old version could not be started again either"
        super().__init__(f"the upgrade of plugin {plugin!r} failed: {redact_text(reason)}; {outcome}")
        self.plugin = plugin
        self.reason = reason
        self.rolled_back = rolled_back


class UpgradeRefusedError(UpgradeError):
    """An upgrade refused by its checks before anything changed (the old version runs on)."""

    def __init__(self, plugin: str, reason: str) -> None:
        PluginError.__init__(self, f"the upgrade of plugin {plugin!r} was refused: {redact_text(reason)}; nothing changed")
        self.plugin = plugin
        self.reason = reason
        self.rolled_back = True


class MetricsAddressError(ActorlogError, ValueError):
    """The metrics endpoint cannot listen there: a malformed HOST:PORT, or the port is taken."""
