"""What a plugin may reach beyond its own code: environment variables, the network, child processes.

Live, a plugin may use all three (`Capabilities.everything`). Reproduction rebuilds a
plugin from a log that may come from someone else, so it withholds them unless the user
allows each (`Capabilities.withheld`): the log's config then cannot point a plugin at the
user's secrets (``api_key_env = "VICTIM_TOKEN"``), its server or its shell.

Plugins ask through their context: ``self.context.getenv(name)`` reads an environment
variable (unset when withheld) and ``self.context.allows("processes")`` says whether it may
start programs. For code that does not ask, `confined` enforces the same on the whole
process while it is active: Python's audit hooks refuse outbound connections and name
lookups (``socket.connect``, ``sendto``, ``getaddrinfo``...) and process creation
(``subprocess.Popen``, ``os.system``, ``os.exec*``, ``os.fork``, ``os.posix_spawn``...)
with `CapabilityDenied`, and the environment variables named are removed from
``os.environ`` until it ends. What starts programs without an audit event
(``_posixsubprocess.fork_exec``, and ``subprocess``'s own reference to it) is replaced
meanwhile by a guard that refuses it the same way, and native code is refused whole
(``native code``: importing ``ctypes``/``_ctypes`` afresh, and every ``ctypes.*`` audit
event: loading a library, looking up or calling a C function), since with it a plugin
could call the C library past every other rule.

This guards against a plugin that is misdirected by what a log says, not against hostile
plugin code: Python code can undo what Python code set up. Reproduction therefore also
runs the plugin in a child process of its own (`actorlog.replay.reproduce`), whose
environment holds only what was allowed. File writes are not withheld.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import msgspec

from actorlog.events import ActorlogError

__all__ = ["Capabilities", "Capability", "CapabilityDenied", "Confinement", "confined", "names_in_config"]

Capability = Literal["environment", "network", "processes"]

_FLAGS: dict[str, str] = {
    "environment": "--allow-env NAME",
    "network": "--allow-network",
    "processes": "--allow-processes",
    "native code": "--trust",
}


class CapabilityDenied(ActorlogError, PermissionError):
    """A plugin tried to use a capability it was not granted (during reproduction of a log
    of unknown origin); the message names it and how to allow it."""

    def __init__(self, capability: str, what: str) -> None:
        super().__init__(
            f"{what} refused: {capability} is not allowed while reproducing a log of unknown origin "
            f"(allow it with {_FLAGS.get(capability, '--trust')}, or --trust for all)"
        )
        self.capability = capability


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What a plugin may use: which environment variables (``environment``: None for all,
    else only those names), the network, child processes."""

    environment: frozenset[str] | None = None
    network: bool = True
    processes: bool = True

    @classmethod
    def everything(cls) -> Capabilities:
        """All of them: a live plugin, or reproduction of a log the user trusts."""
        return cls()

    @classmethod
    def withheld(
        cls, *, allow_env: Iterable[str] = (), allow_network: bool = False, allow_processes: bool = False
    ) -> Capabilities:
        """None of them, except what is allowed: reproduction's default."""
        return cls(environment=frozenset(allow_env), network=allow_network, processes=allow_processes)

    def allows(self, capability: Capability) -> bool:
        """Whether ``capability`` is granted (the environment: wholly)."""
        if capability == "environment":
            return self.environment is None
        return bool(getattr(self, capability))

    def allows_variable(self, name: str) -> bool:
        """Whether the environment variable ``name`` may be read."""
        return self.environment is None or name in self.environment

    def withholds_anything(self) -> bool:
        """Whether any capability is withheld (then native code is refused too: it could reach them all)."""
        return self.environment is not None or not self.network or not self.processes

    def denied(self) -> tuple[str, ...]:
        """The capabilities withheld, for a report: ``environment``, ``network``, ``processes``."""
        found: list[str] = []
        if self.environment is not None:
            allowed = ", ".join(sorted(self.environment))
            found.append(f"environment (except {allowed})" if allowed else "environment")
        if not self.network:
            found.append("network")
        if not self.processes:
            found.append("processes")
        return tuple(found)


_NAME_KEY = re.compile(r"(?:^|[_\-.])(?:env|var|envvar)$", re.IGNORECASE)
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_VARIABLE = re.compile(r"KEY|TOKEN|SECRET|PASSW|_PWD|CREDENTIAL|AUTH|COOKIE", re.IGNORECASE)


def names_in_config(config: Any) -> set[str]:
    """The environment variables a config names (values of ``*_env``/``*_var`` keys, at any depth)."""
    found: set[str] = set()

    def visit(value: Any, named: bool) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                visit(item, isinstance(key, str) and (_NAME_KEY.search(key) is not None or key.lower() == "env"))
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item, named)
        elif named and isinstance(value, str) and _VARIABLE.match(value):
            found.add(value)

    visit(config, False)
    return found


class Confinement:
    """One active `confined` block: what it withholds and what was refused meanwhile."""

    def __init__(self, capabilities: Capabilities) -> None:
        self.capabilities = capabilities
        self.refused: list[str] = []
        """What code tried and was refused, in order (``network: connect to ('10.0.0.1', 80)``)."""
        self.unset: list[str] = []
        """The environment variables that were set and were unset for the block."""
        self._lock = threading.Lock()

    def note(self, capability: str, what: str) -> None:
        """Record that ``what`` was refused (each distinct refusal once)."""
        entry = f"{capability}: {what}"
        with self._lock:
            if entry not in self.refused:
                self.refused.append(entry)


_active: list[Confinement] = []
_active_lock = threading.Lock()
_hook_installed = False

_NETWORK_EVENTS = frozenset({
    "socket.connect", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo", "socket.gethostbyname",
    "socket.gethostbyaddr", "socket.getnameinfo",
})
_PROCESS_EVENTS = frozenset({
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "os.startfile", "os.popen",
})


def _describe(event: str, args: tuple[Any, ...]) -> str:
    try:
        if event == "socket.connect" or event == "socket.sendto":
            return f"{event.split('.')[1]} to {args[-1]!r}"
        if event == "socket.getaddrinfo":
            return f"looking up {args[0]!r} (port {args[1]!r})"
        if event in ("socket.gethostbyname", "socket.gethostbyaddr"):
            return f"looking up {args[0]!r}"
        if event == "subprocess.Popen":
            argv = args[1]
            return f"starting {(argv[0] if isinstance(argv, (list, tuple)) and argv else argv)!r}"
        if event in ("os.exec", "os.posix_spawn", "os.spawn"):
            return f"{event} of {args[0]!r}"
    except Exception:  # noqa: BLE001 - a description only
        pass
    return event


_NATIVE_MODULES = frozenset({"ctypes", "_ctypes"})
_PROCESS_MODULES = frozenset({"_posixsubprocess"})
"""Modules whose fresh import would hand out what `_guard_process_creation` replaced."""


def _capability_of(event: str, args: tuple[Any, ...]) -> tuple[str, str] | None:
    """The capability an audit event uses, and how to describe it; None for any other event."""
    if event in _NETWORK_EVENTS:
        return "network", _describe(event, args)
    if event in _PROCESS_EVENTS:
        return "processes", _describe(event, args)
    if event.startswith("ctypes."):
        return "native code", event
    if event == "import" and args and isinstance(args[0], str):
        root = args[0].partition(".")[0]
        if root in _NATIVE_MODULES:
            return "native code", f"importing {args[0]}"
        if root in _PROCESS_MODULES:
            return "processes", f"importing {args[0]} afresh"
    return None


def _withholds(confinement: Confinement, capability: str) -> bool:
    if capability == "native code":
        return confinement.capabilities.withholds_anything()
    return not confinement.capabilities.allows(capability)  # type: ignore[arg-type]


def _refuse_if_withheld(capability: str, what: str) -> None:
    """`CapabilityDenied` (noted in each block that withholds it) if an active block withholds ``capability``."""
    denying = [c for c in list(_active) if _withholds(c, capability)]
    if not denying:
        return
    for confinement in denying:
        confinement.note(capability, what)
    raise CapabilityDenied(capability, what)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _active:
        return
    found = _capability_of(event, args)
    if found is not None:
        _refuse_if_withheld(*found)


_unguarded: list[tuple[Any, str, Any]] = []
"""While a block is active: (module, attribute, the original) for each guarded entry point."""


def _guarded_fork_exec(original: Any, where: str) -> Any:
    def fork_exec(*args: Any, **kwargs: Any) -> Any:
        if _active:
            argv = args[0] if args else None
            first = argv[0] if isinstance(argv, (list, tuple)) and argv else argv
            _refuse_if_withheld("processes", f"{where} of {first!r}")
        return original(*args, **kwargs)

    fork_exec.__wrapped__ = original  # type: ignore[attr-defined]
    return fork_exec


def _guard_process_creation() -> None:
    """Replace the entry points that start a program without an audit event by guards
    (called with the first block, under `_active_lock`)."""
    import _posixsubprocess  # noqa: PLC0415 - POSIX only
    import subprocess  # noqa: PLC0415

    for module, attribute, where in ((_posixsubprocess, "fork_exec", "_posixsubprocess.fork_exec"),
                                     (subprocess, "_fork_exec", "subprocess._fork_exec")):
        original = getattr(module, attribute, None)
        if original is not None:
            _unguarded.append((module, attribute, original))
            setattr(module, attribute, _guarded_fork_exec(original, where))


def _unguard_process_creation() -> None:
    """Put the originals back (called when the last block ends, under `_active_lock`)."""
    while _unguarded:
        module, attribute, original = _unguarded.pop()
        setattr(module, attribute, original)


@contextmanager
def confined(capabilities: Capabilities, hidden: Iterable[str] = ()) -> Iterator[Confinement]:
    """Within the block, the whole process runs under ``capabilities``: what they withhold
    of the network and of child processes is refused (`CapabilityDenied`), native code too
    while anything is withheld (``ctypes``: see the module's docstring), and the
    environment variables in ``hidden`` that they do not allow, together with every variable
    whose name says it holds a secret (``*KEY*``, ``*TOKEN*``, ``*SECRET*``, ``*PASSW*``...),
    are unset until the block ends. Blocks may nest or overlap across threads: a capability
    is refused while any active block withholds it."""
    global _hook_installed
    confinement = Confinement(capabilities)
    with _active_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)  # for good: audit hooks cannot be removed; idle when nothing is confined
            _hook_installed = True
        if not _active and os.name == "posix":
            _guard_process_creation()
        _active.append(confinement)
    saved: dict[str, str] = {}
    if capabilities.environment is not None:
        names = set(hidden) | {name for name in os.environ if _SECRET_VARIABLE.search(name)}
        for name in sorted(names):
            if not capabilities.allows_variable(name) and name in os.environ:
                saved[name] = os.environ.pop(name)
    confinement.unset = sorted(saved)
    try:
        yield confinement
    finally:
        os.environ.update(saved)
        with _active_lock:
            _active.remove(confinement)
            if not _active:
                _unguard_process_creation()
