"""The metrics collector actor: turns measurement messages into events in the log."""

from __future__ import annotations

from typing import Any

import pykka

from actorlog.actors.protocol import Increment, Observe, SetGauge
from actorlog.events import CounterIncremented, GaugeSet, HistogramObserved
from actorlog.store import EventStore

ACTOR = "metrics"


class MetricsCollector(pykka.ThreadingActor):
    """Records counters, gauges and histogram observations as events."""

    use_daemon_thread = True

    def __init__(self, store: EventStore) -> None:
        super().__init__()
        self.store = store

    def on_receive(self, message: Any) -> Any:
        kind = type(message)
        if kind is Increment:
            event: Any = CounterIncremented(name=message.name, value=message.value, tags=message.tags)
        elif kind is SetGauge:
            event = GaugeSet(name=message.name, value=message.value, tags=message.tags)
        elif kind is Observe:
            event = HistogramObserved(name=message.name, value=message.value, tags=message.tags)
        else:
            raise TypeError(f"the metrics collector does not handle {kind.__qualname__}")
        self.store.append(event, actor=ACTOR)
        return None
