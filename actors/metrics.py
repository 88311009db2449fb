"""The metrics collector actor: turns measurement messages into events in the log."""

from __future__ import annotations

import logging
from typing import Any

import pykka

from actorlog.actors.protocol import Increment, Observe, SetGauge
from actorlog.events import CounterIncremented, GaugeSet, HistogramObserved
from actorlog.store import EventStore

ACTOR = "metrics"

logger = logging.getLogger(__name__)


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
            logger.error("the metrics collector ignored a %s: it only records measurements", kind.__qualname__)
            return None
        try:
            self.store.append(event, actor=ACTOR)
        except Exception:  # noqa: BLE001 - one bad measurement must not stop the collector
            logger.exception("the metrics collector could not record %r", message)
        return None
