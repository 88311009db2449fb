"""Metrics in the Prometheus text exposition format, written by ``prometheus_client`` itself.

What Prometheus users expect: every sample is cumulative over its run, so ``rate()`` works.

- Counters become ``<name>_total`` counters; they never go down.
- Gauges stay gauges.
- Observations and timed operations become histograms: ``_bucket{le=...}`` (cumulative,
  ``+Inf`` last), ``_count`` and ``_sum`` over every observation of the run, whatever
  ``max_history`` or a window says. A timed operation's histogram is named in its base
  unit, ``<name>_seconds``. The windowed p50/p95/p99 stay in `Metrics.summary` and
  ``actorlog stats``: a summary whose count can go down has no place in a scrape.
- Every sample carries a ``run`` label (the scope rule: a rebuilt multi-run log exports each
  run's series apart; a tag named ``run`` becomes ``tag_run``).

Metric and label names are made valid (anything but letters, digits, ``_`` and ``:``
becomes ``_``); when two metrics end up with the same name (``a.b`` and ``a_b``, or one name
used as two kinds), the later one in sorted order gets a ``_<kind>`` suffix (then a number),
and its HELP line keeps the original name.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from actorlog.replay.metrics import Histogram, Metrics, SeriesKey

_go_float: Callable[[float], str] = floatToGoString  # prometheus_client's own `le` formatting (untyped there)
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_SUFFIXES = ("", "_total", "_count", "_sum", "_bucket", "_created")


def metric_name(name: str) -> str:
    """A valid Prometheus metric name for ``name``."""
    cleaned = _INVALID.sub("_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else "_" + cleaned


def _labels(run: str, key: SeriesKey) -> dict[str, str]:
    labels = {"run": run}
    for tag, value in key[1]:
        cleaned = _INVALID_LABEL.sub("_", tag)
        if not cleaned or cleaned[0].isdigit() or cleaned.startswith("__") or cleaned in ("run", "le"):
            cleaned = "tag_" + cleaned
        labels[cleaned] = value
    return labels


def _family_name(kind: str, name: str) -> str:
    base = metric_name(name)
    if kind == "histogram_seconds" and not base.endswith("_seconds"):
        return base + "_seconds"
    return base


def families(metrics: Metrics) -> list[Metric]:
    """Every metric family of ``metrics``' runs, in a stable order."""
    by_name: dict[tuple[str, str], list[tuple[str, SeriesKey]]] = defaultdict(list)
    for run, series in metrics.runs.items():
        for key in series.counters:
            by_name[("counter", key[0])].append((run, key))
        for key in series.gauges:
            by_name[("gauge", key[0])].append((run, key))
        for key, histogram in series.histograms.items():
            by_name[("histogram_seconds" if histogram.seconds else "histogram", key[0])].append((run, key))
    taken: set[str] = set()
    result: list[Metric] = []
    for (kind, name), keys in sorted(by_name.items(), key=lambda item: (item[0][1], item[0][0])):
        prometheus_kind = "histogram" if kind.startswith("histogram") else kind
        family = Metric(_unique(_family_name(kind, name), prometheus_kind, taken), f"actorlog {kind} {name}",
                        prometheus_kind)
        for run, key in sorted(keys):
            series = metrics.runs[run]
            labels = _labels(run, key)
            if kind == "counter":
                family.add_sample(family.name + "_total", labels, series.counters[key])
            elif kind == "gauge":
                family.add_sample(family.name, labels, series.gauges[key])
            else:
                _add_histogram(family, labels, series.histograms[key])
        result.append(family)
    return result


def _add_histogram(family: Metric, labels: dict[str, str], histogram: Histogram) -> None:
    for bound, count in histogram.cumulative():
        family.add_sample(family.name + "_bucket", {**labels, "le": _go_float(bound)}, float(count))
    family.add_sample(family.name + "_count", labels, float(histogram.count))
    family.add_sample(family.name + "_sum", labels, histogram.sum)


def _unique(name: str, kind: str, taken: set[str]) -> str:
    """``name``, or a suffixed form no earlier family (nor its samples) uses."""
    def clashes(candidate: str) -> bool:
        return any(candidate + suffix in taken for suffix in _SUFFIXES)

    candidate = name
    if clashes(candidate):
        candidate = f"{name}_{kind}"
        number = 2
        while clashes(candidate):
            candidate = f"{name}_{kind}_{number}"
            number += 1
    taken.update(candidate + suffix for suffix in _SUFFIXES)
    return candidate


class FamiliesCollector(Collector):
    """A ``prometheus_client`` collector that yields what ``read`` returns at each scrape."""

    def __init__(self, read: Callable[[], Iterable[Metric]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        yield from self.read()


def registry_of(read: Callable[[], Iterable[Metric]]) -> CollectorRegistry:
    """A registry holding only a `FamiliesCollector` of ``read`` (no process or platform metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FamiliesCollector(read))
    return registry


def to_prometheus(metrics: Metrics) -> str:
    """The metrics as a Prometheus text exposition: cumulative counters and histograms, gauges, per run."""
    return generate_latest(registry_of(lambda: families(metrics))).decode()
