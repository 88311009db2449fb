"""The child process of a confined reproduction: ``python -P -m actorlog.replay.reproduce_child``.

`actorlog.replay.reproduce.reproduce` starts it while any capability is withheld, with an
environment of only the variables allowed and `actorlog.replay.reproduce.BASE_ENVIRONMENT`
(so neither ``os.environ`` nor the kernel's copy, ``/proc/self/environ``, holds anything
else). It reads a `ChildRequest` (JSON) on stdin, opens the log, and on Linux, when the
network is withheld and the log is a file, moves into a network namespace of its own with
only loopback (`actorlog.actors.examples.sandbox_launcher.new_network_namespace`, as a
sandbox does), so a connection is refused by the kernel and not only by audit hooks. Then
it reproduces the failure under `actorlog.actors.capabilities.confined` and writes a
`ChildAnswer` (JSON) to its original stdout; what the plugin prints goes to stderr.
"""

from __future__ import annotations

import os
import sys

import msgspec

from actorlog.actors.capabilities import Capabilities
from actorlog.actors.examples.sandbox_launcher import new_network_namespace
from actorlog.events import ActorlogError
from actorlog.replay.reproduce import BASE_ENVIRONMENT, ChildAnswer, ChildRequest, reproduce_here
from actorlog.store import EventStore

_ENVIRONMENT = "only " + ", ".join(name for name in BASE_ENVIRONMENT if name != "SYSTEMROOT") + \
    ", LC_*, PYTHONPATH and the variables allowed in its environment"


def _network(request: ChildRequest, store: EventStore) -> str:
    """A network namespace of its own where it helps and the kernel allows it; what the report says of it."""
    if request.allow_network:
        return "the host's network (allowed)"
    if store.path is None:
        return "the network refused by audit hooks only (the log is read over a connection, so no new network namespace)"
    if not sys.platform.startswith("linux"):
        return "the network refused by audit hooks only (no network namespaces on this platform)"
    made = new_network_namespace()
    for name in [name for name in sys.modules if name.partition(".")[0] in ("ctypes", "_ctypes")]:
        del sys.modules[name]  # loaded to make the namespace: a plugin's `import ctypes` is refused as anywhere
    if "network" in made["made"]:
        return "its own network namespace (loopback only)"
    why = made["missing"].get("network", "refused")
    return f"the network refused by audit hooks only (the kernel made no new network namespace: {why})"


def answer(request: ChildRequest) -> ChildAnswer:
    """Reproduce what ``request`` asks, in this process; the report or the error that stopped it."""
    sys.path[:] = list(request.sys_path)
    capabilities = Capabilities.withheld(
        allow_env=request.allow_env, allow_network=request.allow_network, allow_processes=request.allow_processes,
    )
    try:
        with EventStore.open_readonly(request.log) as store:
            isolation = f"a child process with {_ENVIRONMENT}; {_network(request, store)}"
            report = reproduce_here(store, request.failure_seq, capabilities, absent=request.absent,
                                    isolation=isolation)
    except ActorlogError as exc:
        return ChildAnswer(error_type=f"{type(exc).__module__}.{type(exc).__qualname__}", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - the parent says it in one line
        return ChildAnswer(error_type=f"{type(exc).__module__}.{type(exc).__qualname__}",
                           error=f"{type(exc).__name__}: {exc}")
    return ChildAnswer(report=report)


def main() -> None:
    """Read the request on stdin, answer on the original stdout (the plugin's prints go to stderr)."""
    out = os.dup(1)
    os.dup2(2, 1)
    request = msgspec.json.decode(sys.stdin.buffer.read(), type=ChildRequest)
    reply = msgspec.json.encode(answer(request))
    with os.fdopen(out, "wb") as stream:
        stream.write(reply)


if __name__ == "__main__":
    main()
