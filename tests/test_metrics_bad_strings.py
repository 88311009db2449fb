"""A metric name or tag the log cannot encode (issue 13) is refused at the caller with a
`ValueError` naming the metric, instead of making the collector drop the whole batch
it was buffered with (the valid measurements lost, live and in the log, uncounted).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actorlog.actors import ActorSystem, MetricsOptions
from metrics_helpers import measurement_records, read_log

LONE_SURROGATES = ["\ud800", "ok\udcff", "\udfff-tail"]
"""Python strs that UTF-8 (and so the log's JSON) cannot hold; the type check passes them."""


def bad_calls(system: ActorSystem, text: str) -> list[tuple[str, Callable[[], Any]]]:
    """(the metric an error must name, a call that must raise ValueError) for ``text``."""
    metrics, monitor = system.metrics, system.monitor
    return [
        (text, lambda: metrics.increment(text)),
        (text, lambda: metrics.gauge(text, 1.0)),
        (text, lambda: metrics.observe(text, 1.0)),
        (text, lambda: monitor.start(text)),
        (text, lambda: monitor.time(text)),
        (text, lambda: monitor.timed(text)(lambda: None)),
        ("bad.tag.value", lambda: metrics.increment("bad.tag.value", tags={"k": text})),
        ("bad.tag.key", lambda: metrics.observe("bad.tag.key", 2.0, tags={text: "v"})),
        ("bad.tag.gauge", lambda: metrics.gauge("bad.tag.gauge", 2.0, tags={"k": "v", "j": text})),
        ("bad.tag.op", lambda: monitor.start("bad.tag.op", tags={"k": text})),
        ("bad.tag.timed", lambda: monitor.timed("bad.tag.timed", tags={text: "v"})(lambda: None)),
    ]


@pytest.mark.parametrize("text", LONE_SURROGATES, ids=ascii)
def test_a_name_or_tag_that_cannot_be_encoded_is_refused_and_costs_no_other_measurement(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "app.db"
    outcomes: list[str] = []
    # one buffer for all of it: the bad measurement would share its batch with the good ones
    with ActorSystem(path, metrics=MetricsOptions(buffer_size=10_000, flush_interval=3600.0)) as system:
        for i in range(10):
            system.metrics.increment("good.before", tags={"i": "x"})
            system.metrics.observe("good.hist", float(i))
        for metric, call in bad_calls(system, text):
            try:
                call()
            except ValueError as exc:
                outcomes.append("named" if repr(metric) in str(exc) else f"unnamed: {exc}")
            else:
                outcomes.append(f"accepted {metric!r}")
        for _ in range(5):
            system.metrics.increment("good.after")
        system.flush()
        live = system.all_metrics()
    # the valid measurements are all there, live and in the log, and nothing was dropped
    assert live.counters == {"good.before{i=x}": 10.0, "good.after": 5.0}
    records = measurement_records(path)
    assert sorted({r.event.name for r in records}) == ["good.after", "good.before", "good.hist"]
    assert len(records) == 25
    assert read_log(path, kinds=["measurements.dropped"]) == []
    # and each bad one was refused at its caller with a ValueError naming the metric
    assert outcomes == ["named"] * len(outcomes), outcomes


def test_non_ascii_names_and_tags_that_encode_are_recorded(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.metrics.increment("größe", tags={"région": "île-de-france", "emoji": "\N{ROCKET}"})
        with system.monitor.time("durée"):
            pass
        system.flush()
        counters = system.all_metrics().counters
    assert counters["größe{emoji=\N{ROCKET},région=île-de-france}"] == 1.0
    assert {r.event.name for r in measurement_records(path)} == {"größe", "durée"}
