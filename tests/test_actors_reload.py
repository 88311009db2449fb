"""Reloading a config file into a running system, in process (issue 19): what a reload
refuses as a whole, and what it does when a step fails once the file passed its checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from actor_helpers import live_events
from actorlog.actors import ConfigError
from actorlog.actors.config import build_system, load_config
from actorlog.actors.reload import Reloader
from upgrade_helpers import Tick, Total

BASE = '''
[plugins.counter]
class = "upgrade_helpers:CounterV1"
config = {{ model = "{model}" }}
{extra}
'''


def _write(path: Path, model: str = "small", extra: str = "") -> None:
    path.write_text(BASE.format(model=model, extra=extra))


def test_a_reload_changing_what_only_a_restart_can_change_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "app.toml"
    _write(config)
    system = build_system(load_config(config), db=tmp_path / "app.db")
    with system:
        system.start()
        reloader = Reloader(system, load_config(config))
        system.tell("counter", Tick(n=1))
        _write(config, model="large", extra="[supervision]\nmax_restarts = 9\n")
        with pytest.raises(ConfigError, match="key `supervision` changed"):
            reloader.reload()
        _write(config, model="large", extra='depends_on = []\nmax_inbox = 5\n')
        with pytest.raises(ConfigError, match=r"key `plugins.counter.max_inbox` changed"):
            reloader.reload()
        _write(config, model="large", extra='[plugins.other]\nclass = "upgrade_helpers:NoSuchClass"\n')
        with pytest.raises(ConfigError, match="NoSuchClass"):
            reloader.reload()
        refused = live_events(system, kinds=["config.reload_refused"])
        assert len(refused) == 3 and all(r.actor == "system" for r in refused)
        assert live_events(system, kinds=["plugin.upgraded", "config.reloaded"]) == []
        assert system.ask("counter", Total(), timeout=10)["config"] == {"model": "small"}

        _write(config, model="large")  # the config alone: an upgrade, the count handed over
        plan, problems = reloader.reload()
        assert (plan.upgrade, plan.add, plan.remove, problems) == (("counter",), (), (), [])
        total = system.ask("counter", Total(), timeout=10)
        assert (total["config"], total["count"]) == ({"model": "large"}, 1)
        plan, _ = reloader.reload()  # the same file again: nothing to do
        assert plan.upgrade == plan.add == plan.remove == ()


def test_an_added_plugin_that_fails_to_start_is_taken_out_and_the_rest_runs_on(tmp_path: Path) -> None:
    config = tmp_path / "app.toml"
    _write(config)
    system = build_system(load_config(config), db=tmp_path / "app.db")
    with system:
        system.start()
        reloader = Reloader(system, load_config(config))
        _write(config, extra='[plugins.broken]\nclass = "upgrade_helpers:BadStart"\n')
        plan, problems = reloader.reload()
        assert plan.add == ("broken",)
        assert len(problems) == 1 and "'broken' failed to start" in problems[0]
        assert list(system.plugins) == ["counter"] and system.state("counter") == "running"
        system.tell("counter", Tick(n=1))
        assert system.ask("counter", Total(), timeout=10)["count"] == 1
        # the next reload of the same file tries again
        plan, problems = reloader.reload()
        assert plan.add == ("broken",) and len(problems) == 1
