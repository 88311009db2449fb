"""Shared message types, plugins and helpers for the actor-system tests (tests/test_actors_*.py).

Message tags are unique across the whole test session (the default type registry is
process-global), so every type used by the actor tests is defined here, once.

Plugins reach test-owned objects (recorders, events, switches) through `share`: the
config (which must be JSON) carries a key, and the plugin looks the object up.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from actorlog.actors import CarryOut, ErrorPolicy, Health, Plugin, ReportFailure, handler
from actorlog.events import Event, Message, register
from actorlog.store import EventStore
from actorlog.store.records import EventRecord

T = TypeVar("T")

# -- waiting -------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.01, what: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy; return it. Fails after ``timeout`` s.

    ``timeout`` is only a safety net against hanging: tests never assert on durations.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s: {what or predicate!r}")
        time.sleep(interval)


# -- objects shared between a test and its plugins -------------------------------------------

_shared: dict[str, Any] = {}
_shared_lock = threading.Lock()


def share(obj: Any) -> str:
    """Make ``obj`` reachable from plugins by the returned key (put the key in the config)."""
    key = uuid.uuid4().hex
    with _shared_lock:
        _shared[key] = obj
    return key


def shared(key: str) -> Any:
    with _shared_lock:
        return _shared[key]


class Recorder:
    """A thread-safe list."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Any] = []

    def append(self, item: Any) -> None:
        with self._lock:
            self._items.append(item)

    @property
    def items(self) -> list[Any]:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


# -- reading the log --------------------------------------------------------------------------


def read_log(path: Path, **filters: Any) -> list[EventRecord]:
    """Every committed event of the log at ``path`` matching ``filters``, read-only."""
    store = EventStore.open_readonly(path)
    try:
        return list(store.events(**filters))
    finally:
        store.close()


def live_events(system: Any, **filters: Any) -> list[EventRecord]:
    """Flush a running system's store and read its events matching ``filters``."""
    system.store.flush()
    return list(system.store.events(**filters))


def kinds_of(records: Iterable[EventRecord]) -> list[str]:
    return [r.kind for r in records]


def lifecycle(records: Iterable[EventRecord], kinds: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """(kind, plugin) of the lifecycle events among ``records``."""
    wanted = set(kinds or ("plugin.starting", "plugin.started", "plugin.stopping", "plugin.stopped", "plugin.restarted"))
    return [(r.kind, r.event.plugin) for r in records if r.kind in wanted]


def thread_names() -> set[str]:
    return {t.name for t in threading.enumerate()}


# -- message types ------------------------------------------------------------------------------


@register
class Generate(Message, tag="t3.generate", frozen=True):
    prompt: str


@register
class Solve(Message, tag="t3.solve", frozen=True):
    task: str


@register
class RunCode(Message, tag="t3.run_code", frozen=True):
    code: str


@register
class Status(Message, tag="t3.status", frozen=True):
    pass


@register
class Ping(Message, tag="t3.ping", frozen=True):
    note: str = ""


@register
class Count(Message, tag="t3.count", frozen=True):
    pass


@register
class Boom(Message, tag="t3.boom", frozen=True):
    text: str = "boom"


@register
class Append(Message, tag="t3.append", frozen=True):
    sink: str
    value: int


@register
class Block(Message, tag="t3.block", frozen=True):
    """Wait until the shared threading.Event ``key`` is set (safety timeout), then answer."""

    key: str
    timeout: float = 10.0


@register
class Sleep(Message, tag="t3.sleep", frozen=True):
    seconds: float


@register
class Interrupt(Message, tag="t3.interrupt", frozen=True):
    """Raise KeyboardInterrupt (``which="keyboard"``) or SystemExit (``which="exit"``)."""

    which: str = "keyboard"


@register
class Draw(Message, tag="t3.draw", frozen=True):
    """Answer (context.now(), context.random().random(), context.correlation)."""


@register
class Measure(Message, tag="t3.measure", frozen=True):
    name: str
    value: float


@register
class Send(Message, tag="t3.send", frozen=True):
    """Make a plugin send ``what`` to ``target`` (through deps when it depends on it)."""

    target: str
    what: str = "ping"
    mode: str = "ask"


@register
class Unhandled(Message, tag="t3.unhandled", frozen=True):
    """A registered message type no test plugin handles."""


@register
class Echo(Message, tag="t3.echo", frozen=True):
    """Handled by the entry-point plugin written to disk by the entry-point tests."""

    text: str


@register
class Noted(Event, tag="t3.noted", frozen=True):
    """A plugin's own event type, appended with context.emit."""

    text: str


class PlainStruct(msgspec.Struct, frozen=True):
    """A msgspec Struct that is not an actorlog Message."""

    x: int = 1


class Solution(msgspec.Struct, frozen=True):
    """The agent's typed reply."""

    task: str
    code: str
    output: str


def make_message(what: str) -> Any:
    """Messages (and non-messages) a plugin may be asked to send with `Send`."""
    return {
        "ping": lambda: Ping(note="from plugin"),
        "solve": lambda: Solve(task="from plugin"),
        "status": lambda: Status(),
        "dict": lambda: {"kind": "t3.ping"},
        "str": lambda: "t3.ping",
        "plain": lambda: PlainStruct(),
        "unhandled": lambda: Unhandled(),
    }[what]()


# -- plugins of the embedding example ---------------------------------------------------------


class LLMPlugin(Plugin):
    version = "1.2.0"

    def on_start(self) -> None:
        self.model = self.config.get("model", "offline")

    @handler
    def generate(self, message: Generate) -> str:
        return f"{self.model}: {message.prompt}"


class SandboxPlugin(Plugin):
    version = "1.4.0"

    @handler
    def run(self, message: RunCode) -> str:
        return f"ran <{message.code}>"


class SandboxV2(SandboxPlugin):
    version = "2.1"


class AgentPlugin(Plugin):
    @handler
    def solve(self, message: Solve) -> Solution:
        code = self.deps["llm"].ask(Generate(prompt=message.task), timeout=5)
        output = self.deps["sandbox"].ask(RunCode(code=code), timeout=5)
        return Solution(task=message.task, code=code, output=output)


class GuardedSolver(Plugin):
    """Only the application may send it Solve; anyone may ask its Status."""

    permissions = {Solve: {"app"}, Status: {"*"}}

    def on_start(self) -> None:
        self.solved = 0

    @handler
    def solve(self, message: Solve) -> str:
        self.solved += 1
        sink = self.config.get("sink")
        if sink:
            shared(sink).append(("solve", message.task))
        return f"solved {message.task}"

    @handler
    def status(self, message: Status) -> int:
        return self.solved


# -- the general-purpose test plugin ----------------------------------------------------------

_instances = itertools.count(1)


class Worker(Plugin):
    """A plugin for every test. Config (all optional):

    - ``sink``: key of a shared Recorder; lifecycle calls are recorded as (hook, name, instance).
    - ``fail_start``: on_start raises RuntimeError("cannot start <name>").
    - ``health``: key of a shared dict whose "mode" is ok / false / detail / raise.
    """

    def __init__(self, context: Any, config: Any) -> None:
        super().__init__(context, config)
        self.instance = next(_instances)
        self.count = 0

    def _record(self, hook: str) -> None:
        sink = self.config.get("sink")
        if sink:
            shared(sink).append((hook, self.context.name, self.instance))

    def on_start(self) -> None:
        self._record("start")
        if self.config.get("fail_start"):
            raise RuntimeError(f"cannot start {self.context.name}")

    def on_stop(self) -> None:
        self._record("stop")

    def health_check(self) -> bool | Health:
        key = self.config.get("health")
        if not key:
            return True
        switch = shared(key)
        switch["checks"] = switch.get("checks", 0) + 1
        mode = switch.get("mode", "ok")
        if mode == "false":
            return False
        if mode == "detail":
            return Health(False, "disk full")
        if mode == "raise":
            raise OSError("probe failed")
        return Health(True, "fine")

    @handler
    def ping(self, message: Ping) -> tuple[str, str, str | None]:
        return ("pong", self.context.name, self.context.correlation)

    @handler
    def count_up(self, message: Count) -> tuple[int, int]:
        self.count += 1
        return (self.count, self.instance)

    @handler
    def boom(self, message: Boom) -> None:
        raise ValueError(message.text)

    @handler
    def append(self, message: Append) -> int:
        shared(message.sink).append((self.context.name, message.value, self.instance))
        return message.value

    @handler
    def block(self, message: Block) -> str:
        if not shared(message.key).wait(message.timeout):
            raise TimeoutError("Block was never released")
        return "released"

    @handler
    def sleep(self, message: Sleep) -> str:
        time.sleep(message.seconds)
        return "slept"

    @handler
    def interrupt(self, message: Interrupt) -> None:
        if message.which == "exit":
            raise SystemExit(3)
        raise KeyboardInterrupt

    @handler
    def draw(self, message: Draw) -> tuple[float, float, str | None]:
        return (self.context.now(), self.context.random().random(), self.context.correlation)

    @handler
    def measure(self, message: Measure) -> None:
        metrics = self.context.metrics
        metrics.increment(f"{message.name}.count", 2.0, tags={"plugin": self.context.name})
        metrics.gauge(f"{message.name}.gauge", message.value)
        metrics.observe(f"{message.name}.hist", message.value * 2)

    @handler
    def send(self, message: Send) -> tuple[str, Any, str]:
        """Returns ("ok", reply, "") or ("error", exception type name, exception text)."""
        ref = self.deps[message.target] if message.target in self.deps else self.context.ref(message.target)
        outgoing = make_message(message.what)
        try:
            if message.mode == "tell":
                ref.tell(outgoing)
                return ("ok", None, "")
            return ("ok", ref.ask(outgoing, timeout=5), "")
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            return ("error", type(exc).__name__, str(exc))


def worker_class(name: str, depends_on: Iterable[str] = (), **attrs: Any) -> type[Worker]:
    """A dynamically created Worker subclass (class attributes instead of register arguments)."""
    return type(f"Dyn_{name}", (Worker,), {"depends_on": tuple(depends_on), **attrs})


# -- error policies ------------------------------------------------------------------------------


def rest_for_one(report: ReportFailure) -> CarryOut:
    return CarryOut(
        plugin=report.plugin, action="restart_with_dependents", reason="rest for one",
        correlation=report.correlation,
    )


def stop_on_failure(report: ReportFailure) -> CarryOut:
    return CarryOut(plugin=report.plugin, action="stop", reason="stop it", correlation=report.correlation)


RESTART_ON_FAILURE = ErrorPolicy(actions={"medium": "restart", "low": "restart"})
"""The supervision tests' policy: every non-critical failure restarts the plugin (the
default policy only restarts on high severity; ValueError, which these tests raise, is medium)."""
