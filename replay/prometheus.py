"""Metrics in the Prometheus text exposition format, written by ``prometheus_client`` itself.

Counters become ``<name>_total`` counters, gauges gauges, and every other series (histogram
observations, operation durations) a summary over the window ending at ``as_of``: its
``quantile`` samples (0.5, 0.95, 0.99), ``_count`` and ``_sum``. Metric and label names
are made valid (anything but letters, digits, ``_`` and ``:`` becomes ``_``); when two
metrics end up with the same name (``a.b`` and ``a_b``, or one name used as two kinds),
the later one in sorted order gets a ``_<kind>`` suffix (then a number), and its HELP
line keeps the original name.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from actorlog.replay.metrics import DEFAULT_WINDOW, Metrics, SeriesKey, percentile, total

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(name: str) -> str:
    """A valid Prometheus metric name for ``name``."""
    cleaned = _INVALID.sub("_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else "_" + cleaned


def _labels(key: SeriesKey) -> dict[str, str]:
    labels = {}
    for tag, value in key[1]:
        cleaned = _INVALID_LABEL.sub("_", tag)
        labels[cleaned if cleaned and not cleaned[0].isdigit() and not cleaned.startswith("__") else "tag_" + cleaned] = value
    return labels


class _MetricsCollector(Collector):
    def __init__(self, metrics: Metrics, as_of: float, window_seconds: float) -> None:
        self.metrics = metrics
        self.as_of = as_of
        self.window_seconds = window_seconds

    def collect(self) -> Iterator[Metric]:
        metrics = self.metrics
        by_name: dict[tuple[str, str], list[SeriesKey]] = defaultdict(list)
        for key in metrics.counters:
            by_name[("counter", key[0])].append(key)
        for key in metrics.gauges:
            by_name[("gauge", key[0])].append(key)
        for key in metrics.points:
            if key not in metrics.counters and key not in metrics.gauges:
                by_name[("summary", key[0])].append(key)
        taken: set[str] = set()
        for (kind, name), keys in sorted(by_name.items(), key=lambda item: (item[0][1], item[0][0])):
            family = Metric(_unique(metric_name(name), kind, taken), f"actorlog {kind} {name}", kind)
            for key in sorted(keys):
                labels = _labels(key)
                if kind == "counter":
                    family.add_sample(family.name + "_total", labels, metrics.counters[key])
                elif kind == "gauge":
                    family.add_sample(family.name, labels, metrics.gauges[key])
                else:
                    start = self.as_of - self.window_seconds
                    values = sorted(v for ts, v in metrics.points[key] if start < ts <= self.as_of)
                    for q in (0.5, 0.95, 0.99):
                        value = percentile(values, q * 100) if values else math.nan
                        family.add_sample(family.name, {**labels, "quantile": str(q)}, value)
                    family.add_sample(family.name + "_count", labels, float(len(values)))
                    family.add_sample(family.name + "_sum", labels, total(values))
            yield family


def _unique(name: str, kind: str, taken: set[str]) -> str:
    """``name``, or a suffixed form no earlier family (nor its ``_total``/``_count``/``_sum`` samples) uses."""
    def clashes(candidate: str) -> bool:
        return any(form in taken for form in (candidate, candidate + "_total", candidate + "_count", candidate + "_sum"))

    candidate = name
    if clashes(candidate):
        candidate = f"{name}_{kind}"
        number = 2
        while clashes(candidate):
            candidate = f"{name}_{kind}_{number}"
            number += 1
    taken.update((candidate, candidate + "_total", candidate + "_count", candidate + "_sum"))
    return candidate


def to_prometheus(metrics: Metrics, *, as_of: float, window_seconds: float = DEFAULT_WINDOW) -> str:
    """The metrics as a Prometheus text exposition (summaries over the window ending at ``as_of``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_MetricsCollector(metrics, as_of, window_seconds))
    return generate_latest(registry).decode()
