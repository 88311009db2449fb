"""``actorlog run CONFIG.toml`` reloads its file on SIGHUP (issue 19).

A real subprocess: a plugin keeps telling itself numbered messages (started by a
``[[send]]``) while the file changes under it; every number is received once, in order,
across the upgrade. A file that fails the check changes nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from actor_helpers import read_log, wait_until
from actorlog.store import NotAnEventLogError
from demo_helpers import ACTORLOG_CLI, finish

PLUGINS = '''
import threading
from actorlog.actors import Plugin, PluginError, handler
from actorlog.events import Message, register

@register
class Go(Message, tag="t19r.go", frozen=True):
    n: int

class LooperV1(Plugin):
    """Tells itself Go(n + 1) for every Go(n), a little apart; hands its position to the next version."""

    version = "1.0"

    def on_start(self):
        self.last = 0
        self.anomalies = []

    def on_upgrade(self):
        return (self.last, self.anomalies)

    def migrate(self, old_state, old_version):
        if old_state is not None:
            self.last, self.anomalies = old_state[0], list(old_state[1])

    @handler
    def go(self, message: Go) -> None:
        if message.n != self.last + 1:
            self.anomalies.append(message.n)
        self.last = message.n
        threading.Event().wait(self.config.get("pause", 0.001))
        try:
            self.context.tell(self.context.name, Go(n=message.n + 1))
        except PluginError:
            pass  # the system is stopping

class LooperV2(LooperV1):
    version = "2.0"

class Idle(Plugin):
    version = "1.0"
'''


def _config(looper: str, pause: float, extra: str) -> str:
    return (
        f'log = "run.db"\n'
        f'[plugins.looper]\nclass = "t19_reload_plugins:{looper}"\nconfig = {{ pause = {pause} }}\n'
        f'{extra}'
        f'[[send]]\nto = "looper"\ntype = "t19r.go"\nmessage = {{ n = 1 }}\n'
    )


def _received(log: Path) -> list[int]:
    if not log.exists():
        return []
    try:
        read_log(log, kinds=["run.started"])
    except NotAnEventLogError:  # created, its schema not yet written
        return []
    return [r.event.message["n"] for r in read_log(log, kinds=["message.received"]) if r.event.recipient == "looper"]


def test_sighup_upgrades_adds_and_removes_plugins_without_losing_a_message(tmp_path: Path) -> None:
    (tmp_path / "t19_reload_plugins.py").write_text(PLUGINS)
    config, log = tmp_path / "run.toml", tmp_path / "run.db"
    config.write_text(_config("LooperV1", 0.001, '[plugins.old]\nclass = "t19_reload_plugins:Idle"\n'))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    process = subprocess.Popen([str(ACTORLOG_CLI), "run", str(config)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        wait_until(lambda: len(_received(log)) >= 20, timeout=120, what="the loop running")
        # the new file: looper upgraded (class and config), old removed, new added (depending on looper)
        config.write_text(_config(
            "LooperV2", 0.002,
            '[plugins.newbie]\nclass = "t19_reload_plugins:Idle"\ndepends_on = ["looper"]\n',
        ))
        process.send_signal(signal.SIGHUP)
        wait_until(lambda: read_log(log, kinds=["config.reloaded"]), timeout=120, what="the reload")
        (upgraded,) = read_log(log, kinds=["plugin.upgraded"])
        wait_until(lambda: len([r for r in read_log(log, kinds=["message.received"]) if r.seq > upgraded.seq]) >= 20,
                   timeout=120, what="the new version handling the loop")

        # a broken file (a class that does not exist) changes nothing
        config.write_text(_config("NoSuchLooper", 0.002, ""))
        process.send_signal(signal.SIGHUP)
        (refused,) = wait_until(lambda: read_log(log, kinds=["config.reload_refused"]), timeout=120,
                                what="the refusal")
        seen = len(_received(log))
        wait_until(lambda: len(_received(log)) >= seen + 20, timeout=120, what="the loop going on")
        process.send_signal(signal.SIGTERM)
        result = finish(process, timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "reloaded" in result.stderr and "removed old; upgraded looper; added newbie" in result.stderr
    assert "reload refused, nothing changed" in result.stderr and "NoSuchLooper" in result.stderr
    assert "NoSuchLooper" in refused.event.reason

    numbers = _received(log)
    assert numbers == list(range(1, len(numbers) + 1))  # every message received once, in order
    assert len(read_log(log, kinds=["plugin.upgraded"])) == 1  # the broken file upgraded nothing
    assert (upgraded.event.class_path, upgraded.event.config) == ("t19_reload_plugins:LooperV2", {"pause": 0.002})
    (reloaded,) = read_log(log, kinds=["config.reloaded"])
    assert (reloaded.event.removed, reloaded.event.upgraded, reloaded.event.added) == (("old",), ("looper",), ("newbie",))
    lifecycle = [(r.kind, r.event.plugin) for r in read_log(log) if r.kind in ("plugin.stopped", "plugin.started")
                 and r.seq > upgraded.seq - 50]
    assert ("plugin.started", "newbie") in lifecycle
    stopped_old = [r for r in read_log(log, kinds=["plugin.stopped"]) if r.event.plugin == "old"]
    assert len(stopped_old) == 1 and stopped_old[0].seq < reloaded.seq
    # after the stop, the statistics show the upgraded version
    stats = subprocess.run([str(ACTORLOG_CLI), "stats", str(log)], capture_output=True, text=True, timeout=60, env=env)
    assert stats.returncode == 0, stats.stderr
    (row,) = [line for line in stats.stdout.splitlines() if line.startswith("looper")]
    assert row.split()[:3] == ["looper", "stopped", "2.0"]
