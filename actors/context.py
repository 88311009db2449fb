"""What a plugin sees of the system: references to other plugins, its log, clock, randomness, metrics."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from actorlog.actors.capabilities import Capabilities, Capability
from actorlog.actors.clock import RecordedClock
from actorlog.actors.monitor import MetricsClient, PerformanceMonitor
from actorlog.actors.retry import Retrying, make_retrying
from actorlog.events import RESERVED_KINDS
from actorlog.store import Ticket

if TYPE_CHECKING:
    from actorlog.actors.router import Router


class PluginRef:
    """A reference to a plugin for sending it messages, as a given sender.

    Plugins get these for their dependencies (``self.deps["llm"]``); messages sent
    through them carry the sending plugin's name and, inside a handler, the
    correlation of the message being handled.
    """

    __slots__ = ("_context", "_router", "name", "sender")

    def __init__(self, router: Router, name: str, sender: str, context: PluginContext | None = None) -> None:
        self._router = router
        self._context = context
        self.name = name
        self.sender = sender

    def __repr__(self) -> str:
        return f"<PluginRef {self.name!r} as {self.sender!r}>"

    def _correlation(self, correlation: str | None) -> str | None:
        if correlation is None and self._context is not None:
            return self._context.correlation
        return correlation

    def tell(self, message: object, *, correlation: str | None = None) -> None:
        """Send without waiting. A failure in the handler is reported to the error handler."""
        if correlation is None and self._context is not None:  # inlined `_correlation`: the hot path
            correlation = self._context.correlation
        self._router.send(self.sender, self.name, message, correlation, None)

    def ask(self, message: object, *, timeout: float | None = None, correlation: str | None = None) -> Any:
        """Send and wait for the handler's return value (or its exception).

        An ask that could never be answered (a plugin asking itself, or closing a cycle of
        plugins waiting on each other) is refused with `RuntimeError` naming the cycle.
        """
        self._router.check_ask(self.sender, self.name, message)
        future: Future[Any] = Future()
        self._router.send(self.sender, self.name, message, self._correlation(correlation), future)
        return self._router.wait(future, self.name, message, timeout, self.sender)

    async def ask_async(self, message: object, *, timeout: float | None = None, correlation: str | None = None) -> Any:
        """`ask` for async code: waits without blocking the event loop."""
        self._router.check_ask(self.sender, self.name, message)
        future: Future[Any] = Future()
        self._router.send(self.sender, self.name, message, self._correlation(correlation), future)
        try:
            # shielded: a timeout must not cancel the reply the handler will still set
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout)
        except asyncio.TimeoutError:
            raise self._router.timeout_error(self.name, message, timeout) from None


class PluginContext(RecordedClock):
    """A plugin's window on the system, available as ``self.context``.

    Inside a handler, `now` and `random` are deterministic for reproduction: the clock
    reads the time the message was received and the generator is seeded from a seed,
    both stored in the message's ``message.received`` event.
    """

    def __init__(self, router: Router, name: str, run: str, depends_on: tuple[str, ...]) -> None:
        super().__init__()
        self._router = router
        self.name = name
        """This plugin's name."""
        self.run = run
        """The id of the actor-system run."""
        self.deps: Mapping[str, PluginRef] = {dep: PluginRef(router, dep, name, self) for dep in depends_on}
        """References to the plugins this one depends on."""
        assert router.recorder is not None
        self.metrics = MetricsClient(router.recorder)
        """Counters, gauges and histograms, recorded by the metrics collector."""
        self.monitor = PerformanceMonitor(router.recorder)
        """Timing of named operations (decorator, context manager, start/end)."""
        self.capabilities = Capabilities.everything()
        """What the plugin may reach: live, everything (reproduction withholds what the user does not allow)."""

    def getenv(self, name: str, default: str | None = None) -> str | None:
        """The environment variable ``name``. Read the environment through this (not
        ``os.environ``), so that reproducing a log of unknown origin reads it as unset."""
        return os.environ.get(name, default)

    def allows(self, capability: Capability) -> bool:
        """Whether this plugin may use ``capability`` (``"network"``, ``"processes"``,
        ``"environment"``) here: always live; during reproduction only what the user allowed.
        Ask before starting programs or connecting, and refuse clearly when it says no."""
        return self.capabilities.allows(capability)

    def emit(self, event: object, *, correlation: str | None = None) -> Ticket:
        """Append one of this plugin's own events to the log (registered Event types only).

        Built-in facts (run, plugin lifecycle, message, failure, recovery, retry/task and
        metrics bookkeeping events) are written only by the system's own actors: emitting
        one raises `PermissionError`. Measurements (counters, gauges, histograms, timed
        operations) may be emitted, and count.
        """
        kind = getattr(getattr(type(event), "__struct_config__", None), "tag", None)
        if kind in RESERVED_KINDS:
            raise PermissionError(
                f"plugin {self.name!r} may not emit {kind} ({type(event).__qualname__}): it is a built-in fact that "
                f"only the actor system's own actors write; define an event type of your own for it"
            )
        return self._router.store.append(event, actor=self.name, correlation=correlation or self.correlation)

    def retry(self, task: str | None = None, **options: Any) -> Retrying:
        """Run callables with retries from this plugin (see `ActorSystem.retry`); inside a
        handler the attempts share the correlation of the message being handled."""
        injected = {k: options.pop(k, None) for k in ("policy", "clock", "sleep", "async_sleep", "random")}
        return make_retrying(
            self._router, injected.pop("policy"), options, task=task, caller=self.name,
            correlation=options.pop("correlation", None) or self.correlation, **injected,
        )

    def ref(self, name: str) -> PluginRef:
        """A reference to any plugin, sending as this one (permissions still apply)."""
        return PluginRef(self._router, name, self.name, self)

    def tell(self, name: str, message: object, *, correlation: str | None = None) -> None:
        """Send to any plugin by name without waiting."""
        self.ref(name).tell(message, correlation=correlation)

    def ask(self, name: str, message: object, *, timeout: float | None = None) -> Any:
        """Send to any plugin by name and wait for its reply."""
        return self.ref(name).ask(message, timeout=timeout)
