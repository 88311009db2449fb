"""Measurement payloads read the short way: replay's fast path for the metrics projection.

Measurements are most of a log, and the metrics projection reads only their name, tags,
value (and ``ok``). Replay decodes their payloads straight into the small views below,
which hold exactly those fields with the same types as the registered events, the finite
check done by msgspec in C instead of in ``__post_init__``, and no GC tracking. A view
goes to the same `Metrics` method a live event goes to, so live and replay share the fold.

A payload a view refuses is decoded again by the codec, which raises its usual error
naming the seq: the checks and the messages are the registered types' own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any, Union

import msgspec

from actorlog.events import CounterIncremented, GaugeSet, HistogramObserved, OperationTimed, TypeRegistry
from actorlog.replay.metrics import Metrics

Finite = Annotated[float, msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)]
"""A float that is neither NaN nor infinite (the registered types check it in ``__post_init__``)."""


class CounterView(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="counter.incremented"):
    """What the metrics projection reads of a ``counter.incremented``."""

    name: str
    value: Finite = 1.0
    tags: dict[str, str] = {}


class GaugeView(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="gauge.set"):
    """What the metrics projection reads of a ``gauge.set``."""

    name: str
    value: Finite
    tags: dict[str, str] = {}


class HistogramView(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="histogram.observed"):
    """What the metrics projection reads of a ``histogram.observed``."""

    name: str
    value: Finite
    tags: dict[str, str] = {}


class OperationView(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="kind", tag="operation.timed"):
    """What the metrics projection reads of an ``operation.timed``."""

    name: str
    value: Finite
    ok: bool = True
    tags: dict[str, str] = {}


VIEWS: dict[type[msgspec.Struct], type[msgspec.Struct]] = {
    CounterIncremented: CounterView,
    GaugeSet: GaugeView,
    HistogramObserved: HistogramView,
    OperationTimed: OperationView,
}
"""The registered measurement type each view stands for (tests check they have the same fields)."""

decode_view: Callable[[str | bytes], Any] = msgspec.json.Decoder(
    Union[CounterView, GaugeView, HistogramView, OperationView]  # noqa: UP007 - a runtime union for msgspec
).decode
"""Decode a measurement payload to its view; the tag (``kind``) must be one of the four."""

ViewFold = Callable[[Any, float, str], None]
"""Folds one view (or event) that happened at ``ts`` in ``run`` into the metrics."""


def measurement_folds(registry: TypeRegistry, metrics: Metrics) -> dict[str, tuple[type[Any], int, ViewFold]]:
    """For each measurement kind whose registered type is still the built-in one: its view
    type, the version its payloads must have to be read through it, and the `Metrics`
    method that folds it. A kind registered to another type is left to the codec."""
    methods: dict[type[msgspec.Struct], ViewFold] = {
        CounterIncremented: metrics.increment,
        GaugeSet: metrics.set_gauge,
        HistogramObserved: metrics.observe,
        OperationTimed: metrics.time_operation,
    }
    folds = {}
    for event_type, view in VIEWS.items():
        kind = str(event_type.__struct_config__.tag)
        if registry.type_for(kind) is event_type:
            folds[kind] = (view, int(getattr(event_type, "version", 1)), methods[event_type])
    return folds
