"""Hot upgrade (issue 19): a running plugin's class and config replaced without losing a message.

Real actors and a real log; every wait is on a condition, never a sleep.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from actor_helpers import live_events, read_log, share, wait_until
from actorlog.actors import ActorSystem, RestartPolicy, UpgradeError, UpgradeRefusedError
from actorlog.replay import rebuild
from upgrade_helpers import (
    BadMigrate,
    BadStart,
    CounterV1,
    CounterV2,
    CounterV3,
    Fragile,
    Fresh,
    Hold,
    Strict,
    Tick,
    Total,
    User,
)

MESSAGES = 100_000
UPGRADES = 10


def test_upgrades_under_load_handle_every_message_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    sent = [0]
    with ActorSystem(path) as system:
        # not logged: 100,000 message.received rows would only slow the test; the upgrades are logged
        system.register("counter", CounterV1, log_messages=False)
        system.start()

        def produce() -> None:
            for n in range(1, MESSAGES + 1):
                system.tell("counter", Tick(n=n))
                sent[0] = n

        producer = threading.Thread(target=produce, name="t19-producer")
        producer.start()
        try:
            for index in range(UPGRADES):
                # each upgrade lands while the producer is still telling
                wait_until(lambda: sent[0] >= (index + 1) * MESSAGES // (UPGRADES + 2), timeout=120,
                           what=f"the producer past upgrade {index}")
                system.upgrade("counter", CounterV2 if index % 2 == 0 else CounterV1, config={"round": index},
                               timeout=120)
        finally:
            producer.join()
        total = system.ask("counter", Total(), timeout=120)
        assert total["anomalies"] == []  # each message followed the one before: none lost, none twice
        assert total["count"] == MESSAGES and total["last"] == MESSAGES
        assert (total["class"], total["from"], total["config"]) == ("CounterV1", "2.0", {"round": UPGRADES - 1})
        assert sent[0] == MESSAGES
        run = system.run

    upgraded = read_log(path, kinds=["plugin.upgraded"])
    assert len(upgraded) == UPGRADES
    assert [r.event.plugin_version for r in upgraded] == ["2.0", "1.0"] * (UPGRADES // 2)
    upgrading = read_log(path, kinds=["plugin.upgrading"])
    assert [r.correlation for r in upgrading] == [r.correlation for r in upgraded]  # one story per upgrade
    assert len(set(r.correlation for r in upgraded)) == UPGRADES
    assert all(r.actor == "supervisor" for r in upgrading + upgraded)
    state = rebuild(path).plugins.get(run, "counter")
    assert state is not None
    assert [(h.change, h.version) for h in state.history] == [("registered", "1.0")] + [
        ("upgraded", v) for v in ["2.0", "1.0"] * (UPGRADES // 2)
    ]


def test_an_upgrade_hands_over_state_and_is_recorded_with_its_versions(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("counter", CounterV1, config={"model": "small", "api_key": "sk-live-abcdefghijklmnop"})
        system.start()
        for n in (1, 2, 3):
            system.tell("counter", Tick(n=n))
        system.upgrade("counter", "upgrade_helpers:CounterV2", config={"model": "large", "password": "hunter2!"})
        total = system.ask("counter", Total(), timeout=10)
        assert (total["count"], total["class"], total["from"]) == (3, "CounterV2", "1.0")
        assert system.state("counter") == "running"
        live = system.statistics()["plugins"][system.run]["counter"]
        assert (live["version"], live["class_path"]) == ("2.0", "upgrade_helpers:CounterV2")
        assert [h["version"] for h in live["history"]] == ["1.0", "2.0"]
        system.upgrade("counter", CounterV2, migrate=False, version="2.0.1")
        total = system.ask("counter", Total(), timeout=10)
        assert (total["count"], total["from"], total["config"]["model"]) == (0, None, "large")  # config kept
        assert system.statistics()["plugins"][system.run]["counter"]["version"] == "2.0.1"
        run = system.run

    (first, second) = read_log(path, kinds=["plugin.upgraded"])
    assert (first.event.old_class_path, first.event.old_version) == ("upgrade_helpers:CounterV1", "1.0")
    assert (first.event.class_path, first.event.plugin_version) == ("upgrade_helpers:CounterV2", "2.0")
    assert first.event.old_config == {"model": "small", "api_key": "***"}
    assert first.event.config == {"model": "large", "password": "***"}  # redacted, as at registration
    assert second.event.migrate is False
    assert "hunter2" not in path.read_bytes().decode("utf-8", "replace")
    assert rebuild(path).plugins.get(run, "counter").version == "2.0.1"  # type: ignore[union-attr]


def _refused(system: ActorSystem) -> list[str]:
    return [r.event.reason for r in live_events(system, kinds=["plugin.upgrade_refused"])]


def test_an_upgrade_breaking_a_dependents_requires_is_refused(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("counter", CounterV1)
        system.register("user", User)
        system.start()
        system.tell("counter", Tick(n=1))
        with pytest.raises(UpgradeRefusedError, match=r"'user' requires 'counter' >=1,<2, but .* is version 2\.0"):
            system.upgrade("counter", CounterV2)
        with pytest.raises(UpgradeRefusedError, match="is version 7"):
            system.upgrade("counter", CounterV1, version="7")
        assert len(_refused(system)) == 2 and "'user'" in _refused(system)[0]
        # nothing changed: the same instance goes on, with its count
        assert system.ask("user", Total(), timeout=10)["count"] == 1
        assert system.statistics()["plugins"][system.run]["counter"]["version"] == "1.0"
        assert live_events(system, kinds=["plugin.upgrading", "plugin.upgraded"]) == []
        system.upgrade("counter", CounterV1, version="1.9")  # within the requirement: fine


def test_an_upgrade_dropping_a_message_type_it_is_sent_is_refused_unless_allowed(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("counter", CounterV1)
        system.start()
        system.tell("counter", Tick(n=1))
        system.ask("counter", Total(), timeout=10)
        with pytest.raises(UpgradeRefusedError, match=r"no handler for t19\.total, which 'counter' is sent"):
            system.upgrade("counter", CounterV3)
        assert "t19.total" in _refused(system)[0]
        with pytest.raises(TypeError):
            system.ask("counter", Fresh(), timeout=10)  # still the old class
        system.upgrade("counter", CounterV3, allow_dropped_messages=True)
        assert system.ask("counter", Fresh(), timeout=10) == 1  # the count came along
        with pytest.raises(TypeError, match="no handler for it"):
            system.tell("counter", Total())


def test_an_upgrade_with_an_invalid_config_is_refused(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("counter", CounterV1)
        system.start()
        with pytest.raises(UpgradeRefusedError, match="key `limit` must be >= 0"):
            system.upgrade("counter", Strict, config={"limit": -1})
        with pytest.raises(UpgradeRefusedError, match="token_env"):
            system.upgrade("counter", Strict, config={"token_env": "ghp_abcdefghijklmnopqrstuvwxyz0123456789"})
        with pytest.raises(UpgradeRefusedError, match="cannot be logged as JSON"):
            system.upgrade("counter", Strict, config={"when": object()})
        with pytest.raises(UpgradeRefusedError, match="cannot import module"):
            system.upgrade("counter", "no_such_module_t19:Counter")
        assert len(_refused(system)) == 4
        assert "ghp_" not in " ".join(_refused(system))
        assert system.ask("counter", Total(), timeout=10)["class"] == "CounterV1"
        system.upgrade("counter", Strict, config={"limit": 3})
        assert system.ask("counter", Total(), timeout=10)["class"] == "Strict"


@pytest.mark.parametrize(("broken", "raised"), [(BadStart, "the new model cannot be loaded"),
                                                 (BadMigrate, "cannot read state of version 1.0")])
def test_a_failing_new_version_is_rolled_back_to_the_old_with_its_state(
    tmp_path: Path, broken: type, raised: str
) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("counter", CounterV1, config={"model": "small"})
        system.start()
        for n in (1, 2):
            system.tell("counter", Tick(n=n))
        with pytest.raises(UpgradeError, match=raised) as caught:
            system.upgrade("counter", broken, config={"model": "large"})
        assert caught.value.rolled_back
        system.tell("counter", Tick(n=3))
        total = system.ask("counter", Total(), timeout=10)
        assert (total["count"], total["class"], total["config"], total["from"]) == (3, "CounterV1", {"model": "small"}, "1.0")
        assert total["anomalies"] == []
        assert system.state("counter") == "running"
        assert system.restarts("counter") == 0

    story = [r for r in read_log(path) if r.kind.startswith("plugin.upgrad")]
    assert [r.kind for r in story] == ["plugin.upgrading", "plugin.upgrade_failed"]
    assert len({r.correlation for r in story}) == 1
    failed = story[1].event
    assert failed.rolled_back and raised in failed.traceback and failed.plugin_version == broken.version
    (failure,) = read_log(path, kinds=["failure.raised"])
    assert failure.correlation == story[0].correlation and raised in failure.event.message


def test_a_failing_rollback_is_a_failed_restart_and_escalates_after_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    broken: list[str] = []
    system = ActorSystem(path, restart_policy=RestartPolicy(max_restarts=2, within_seconds=600))
    try:
        system.register("counter", Fragile, config={"broken": share(broken)})
        system.start()
        broken.append("yes")  # from now on the old version cannot start again
        with pytest.raises(UpgradeError, match="the old version raised too") as caught:
            system.upgrade("counter", BadStart)
        assert not caught.value.rolled_back
        wait_until(lambda: system.escalation is not None, timeout=60, what="the escalation")
    finally:
        system.stop()
    assert system.escalation is not None and "restarted 2 times" in system.escalation.reason
    kinds = [r.kind for r in read_log(path) if r.actor == "supervisor"]
    assert kinds.count("plugin.upgrade_failed") == 1
    (failed,) = read_log(path, kinds=["plugin.upgrade_failed"])
    assert failed.event.rolled_back is False
    assert len(read_log(path, kinds=["plugin.failed"])) == 3  # the rollback, then two restarts
    assert len(read_log(path, kinds=["escalated"])) == 1


def test_an_upgrade_that_cannot_reach_a_busy_plugin_in_time_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    release = threading.Event()
    with ActorSystem(path) as system:
        system.register("counter", CounterV1)
        system.start()
        system.tell("counter", Hold(key=share(release)))
        system.tell("counter", Tick(n=1))
        try:
            with pytest.raises(UpgradeError, match="did not reach the upgrade within 0.2 s .busy handling Hold."):
                system.upgrade("counter", CounterV2, timeout=0.2)  # the handler holds it until released
        finally:
            release.set()
        system.tell("counter", Tick(n=2))
        total = system.ask("counter", Total(), timeout=10)
        assert (total["class"], total["count"], total["anomalies"]) == ("CounterV1", 2, [])
        system.upgrade("counter", CounterV2)  # once it is free, the same upgrade goes through
        assert system.ask("counter", Total(), timeout=10)["count"] == 2
    (failed,) = read_log(path, kinds=["plugin.upgrade_failed"])
    assert failed.event.handed_over is False and failed.event.rolled_back is True
    assert len(read_log(path, kinds=["plugin.upgrading"])) == 1  # only the upgrade that went through


def test_upgrading_a_plugin_that_is_not_running_is_refused(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        system.register("counter", CounterV1)
        with pytest.raises(UpgradeRefusedError, match="it is registered; only a running plugin"):
            system.upgrade("counter", CounterV2)
        system.start()
        system.upgrade("counter", CounterV2)
        assert system.ask("counter", Total(), timeout=10)["class"] == "CounterV2"


RELOADABLE = '''
from actorlog.actors import Plugin, handler
from actorlog.events import Message, register

@register
class Hello(Message, tag="t19m.hello", frozen=True):
    name: str

class Greeter(Plugin):
    version = "{version}"

    @handler
    def hello(self, message: Hello) -> str:
        return "{greeting}, " + message.name
'''


def test_a_module_imported_again_upgrades_with_its_new_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """importlib.reload gives new Plugin and Message classes under the same names and tags:
    the upgrade takes them over, and messages sent with the new class reach the new code."""
    import importlib
    import sys

    module_file = tmp_path / "t19_greeter.py"
    module_file.write_text(RELOADABLE.format(version="1.0", greeting="hello"))
    monkeypatch.syspath_prepend(str(tmp_path))
    import t19_greeter  # type: ignore[import-not-found]

    try:
        with ActorSystem(tmp_path / "app.db") as system:
            system.register("greeter", t19_greeter.Greeter)
            system.start()
            assert system.ask("greeter", t19_greeter.Hello(name="ann"), timeout=10) == "hello, ann"
            module_file.write_text(RELOADABLE.format(version="2.0", greeting="good day"))
            reloaded = importlib.reload(t19_greeter)
            system.upgrade("greeter", reloaded.Greeter)
            assert system.ask("greeter", reloaded.Hello(name="bob"), timeout=10) == "good day, bob"
            assert system.statistics()["plugins"][system.run]["greeter"]["version"] == "2.0"
    finally:
        sys.modules.pop("t19_greeter", None)
