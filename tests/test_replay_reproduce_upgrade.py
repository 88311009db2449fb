"""Reproducing failures of a plugin that was upgraded (issue 19): the class and config that were
active when the failure happened are the ones replayed, the state handed over as it was live."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from actor_helpers import read_log
from actorlog.actors import ActorSystem, UpgradeError
from actorlog.replay.reproduce import reproduce
from upgrade_helpers import CONTINUE_ON_FAILURE, BadStart, CounterV1, CounterV2, Explode, Tick, Total

GONE_MODULE = '''
from upgrade_helpers import CounterV1

class Gone(CounterV1):
    version = "9.0"
'''


def _record(path: Path) -> None:
    with ActorSystem(path, error_policy=CONTINUE_ON_FAILURE) as system:
        system.register("counter", CounterV1, config={"model": "small"})
        system.start()
        for n in (1, 2):
            system.tell("counter", Tick(n=n))
        with pytest.raises(ValueError, match="CounterV1 1.0 exploded at count 2"):
            system.ask("counter", Explode(), timeout=10)
        system.ask("counter", Total(), timeout=10)  # answered once the decision (continue) let it run again
        system.upgrade("counter", CounterV2, config={"model": "large"})
        for n in (3, 4, 5):
            system.tell("counter", Tick(n=n))
        with pytest.raises(KeyError, match="CounterV2 2.0 exploded at count 5"):
            system.ask("counter", Explode(), timeout=10)


def test_failures_before_and_after_an_upgrade_are_reproduced_by_the_class_active_then(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    _record(path)
    before, after = read_log(path, kinds=["failure.raised"])
    (upgraded,) = read_log(path, kinds=["plugin.upgraded"])

    first = reproduce(path, before.seq)
    assert first.reproduced, first
    assert (first.class_path, first.recorded_version, first.current_version) == (
        "upgrade_helpers:CounterV1", "1.0", "1.0")
    assert first.upgrades == () and first.messages_replayed == 3

    second = reproduce(path, after.seq)
    assert second.reproduced, second
    assert (second.class_path, second.recorded_version, second.current_version) == (
        "upgrade_helpers:CounterV2", "2.0", "2.0")
    # count 5 only if the two ticks before the upgrade were replayed by V1 and handed over to V2
    assert second.message == after.event.message and "exploded at count 5" in second.message
    assert second.upgrades == (upgraded.seq,)
    assert any(f"upgraded at seq {upgraded.seq}" in note for note in second.notes)


def test_a_failure_in_an_upgrades_new_version_is_reproduced_with_that_version(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("counter", CounterV1)
        system.start()
        system.tell("counter", Tick(n=1))
        with pytest.raises(UpgradeError):
            system.upgrade("counter", BadStart)
    (failure,) = read_log(path, kinds=["failure.raised"])
    outcome = reproduce(path, failure.seq)
    assert outcome.reproduced, outcome
    assert (outcome.class_path, outcome.recorded_version) == ("upgrade_helpers:BadStart", "2.1")
    assert outcome.exc_type == "builtins.RuntimeError" and outcome.failed_at_seq is None


def test_a_class_active_after_an_upgrade_that_is_gone_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t19_gone.py").write_text(GONE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "app.db"
    with ActorSystem(path, error_policy=CONTINUE_ON_FAILURE) as system:
        system.register("counter", CounterV1)
        system.start()
        system.upgrade("counter", "t19_gone:Gone")
        with pytest.raises(ValueError):
            system.ask("counter", Explode(), timeout=10)
    (tmp_path / "t19_gone.py").unlink()
    monkeypatch.delitem(sys.modules, "t19_gone")
    (failure,) = read_log(path, kinds=["failure.raised"])
    outcome = reproduce(path, failure.seq)
    assert not outcome.reproduced
    assert (outcome.class_path, outcome.recorded_version) == ("t19_gone:Gone", "9.0")
    (note,) = [n for n in outcome.notes if n.startswith("cannot reproduce")]
    assert "t19_gone:Gone (version 9.0), active from the upgrade at seq" in note and "can no longer be loaded" in note
