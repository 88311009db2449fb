"""Health checks: on demand, periodic, and unhealthy plugins treated as failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from actor_helpers import Count, Worker, lifecycle, live_events, read_log, share, wait_until
from actorlog.actors import ActorSystem, Health, RestartPolicy


def test_check_health_reports_every_running_plugin_and_logs_it(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    switch = {"mode": "ok"}
    with ActorSystem(path) as system:
        system.register("plain", Worker)
        system.register("probed", Worker, config={"health": share(switch)})
        system.register("idle", Worker)
        system.start()
        results = system.check_health()
        assert results == {"plain": Health(True, ""), "probed": Health(True, "fine"), "idle": Health(True, "")}
        assert system.check_health("probed") == {"probed": Health(True, "fine")}
        system.register("late", Worker)  # registered after start: not running, so not checked
        assert "late" not in system.check_health()
        assert switch["checks"] == 3
        switch["checks"] = 2
        assert switch["checks"] == 2
    checked = read_log(path, kinds=["plugin.health_checked"])
    assert sorted((r.event.plugin, r.event.healthy, r.event.detail) for r in checked) == [
        ("idle", True, ""), ("idle", True, ""), ("plain", True, ""), ("plain", True, ""),
        ("probed", True, "fine"), ("probed", True, "fine"), ("probed", True, "fine"),
    ]
    assert {r.actor for r in checked} == {r.event.plugin for r in checked}
    assert not read_log(path, kinds=["failure.raised"])


@pytest.mark.parametrize(
    ("mode", "expected", "exc_type", "detail_part"),
    [
        ("false", Health(False, ""), "actorlog.actors.errors.UnhealthyError", "no detail given"),
        ("detail", Health(False, "disk full"), "actorlog.actors.errors.UnhealthyError", "disk full"),
        ("raise", None, "builtins.OSError", "probe failed"),
    ],
)
def test_unhealthy_plugin_is_a_failure_and_gets_restarted(
    tmp_path: Path, mode: str, expected: Health | None, exc_type: str, detail_part: str
) -> None:
    path = tmp_path / "app.db"
    switch = {"mode": mode}
    with ActorSystem(path) as system:
        system.register("sick", Worker, config={"health": share(switch)})
        system.register("fine", Worker)
        system.start()
        assert system.ask("sick", Count(), timeout=5)[0] == 1
        result = system.check_health("sick")["sick"]
        if expected is not None:
            assert result == expected
        else:
            assert result.healthy is False and "OSError" in result.detail and "probe failed" in result.detail
        wait_until(lambda: system.restarts("sick") == 1, what="restart after the unhealthy check")
        switch["mode"] = "ok"
        assert system.ask("sick", Count(), timeout=5)[0] == 1  # a fresh instance
        assert system.check_health()["sick"] == Health(True, "fine")
        assert system.restarts("fine") == 0
    records = read_log(path)
    checked = [r for r in records if r.kind == "plugin.health_checked" and r.event.plugin == "sick"]
    assert [r.event.healthy for r in checked] == [False, True]
    failure = next(r for r in records if r.kind == "failure.raised")
    assert failure.event.plugin == "sick" and failure.event.exc_type == exc_type
    assert detail_part in failure.event.message
    assert failure.seq > checked[0].seq
    decision = next(r for r in records if r.kind == "recovery.decided")
    assert decision.event.failure_seq == failure.seq and decision.event.action == "restart"
    assert decision.correlation == failure.correlation
    assert lifecycle([r for r in records if r.seq > decision.seq])[:5] == [
        (kind, "sick")
        for kind in ("plugin.stopping", "plugin.stopped", "plugin.starting", "plugin.started", "plugin.restarted")
    ]


def test_periodic_health_checks(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    switch = {"mode": "ok"}

    class Watched(Worker):
        health_interval = 0.1

    with ActorSystem(path) as system:
        system.register("by_arg", Worker, health_interval=0.1, config={"health": share(switch)})
        system.register("by_class", Watched)
        system.register("never", Worker)
        system.start()

        def enough() -> bool:
            plugins = [r.event.plugin for r in live_events(system, kinds=["plugin.health_checked"])]
            return plugins.count("by_arg") >= 3 and plugins.count("by_class") >= 3

        wait_until(enough, timeout=15, what="three periodic checks of each watched plugin")
    checked = read_log(path, kinds=["plugin.health_checked"])
    assert "never" not in {r.event.plugin for r in checked}
    assert all(r.event.healthy for r in checked)
    assert switch["checks"] >= 3


def test_periodic_health_check_failure_restarts_the_plugin(tmp_path: Path) -> None:
    switch = {"mode": "false"}
    with ActorSystem(tmp_path / "app.db", restart_policy=RestartPolicy(max_restarts=100)) as system:
        system.register("sick", Worker, health_interval=0.1, config={"health": share(switch)})
        system.start()
        wait_until(lambda: system.restarts("sick") >= 1, timeout=15, what="restart by a periodic check")
        switch["mode"] = "ok"
        wait_until(lambda: system.state("sick") == "running")
        assert system.escalation is None
