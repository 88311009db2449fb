"""``actorlog run`` stops on SIGTERM and SIGINT even when a plugin blocks (issue 13).

A signal while an ``on_start`` blocks starts the orderly stop at once (under the stop
timeouts); a second signal while an ``on_stop`` blocks stops at once, with what was
committed in the log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from actor_helpers import read_log, wait_until
from demo_helpers import ACTORLOG_CLI, finish

PLUGIN = '''
import pathlib, threading
from actorlog.actors import Plugin, handler
from actorlog.events import Message, register

@register
class Nudge(Message, tag="t13.nudge", frozen=True):
    pass

class Blocking(Plugin):
    """Blocks in on_start or on_stop (config "where"), after touching config["marker"]."""

    def on_start(self):
        if self.config.get("where") == "start":
            pathlib.Path(self.config["marker"]).touch()
            threading.Event().wait()

    def on_stop(self):
        if self.config.get("where") == "stop":
            pathlib.Path(self.config["marker"]).touch()
            threading.Event().wait()

    @handler
    def nudge(self, message: Nudge) -> None:
        pass
'''


def start_run(tmp_path: Path, where: str, control_timeout: float) -> tuple[subprocess.Popen[str], Path, Path]:
    (tmp_path / "blocking_plugins.py").write_text(PLUGIN)
    marker, log = tmp_path / "marker", tmp_path / "run.db"
    config = tmp_path / "run.toml"
    config.write_text(
        f'log = "run.db"\n[supervision]\ncontrol_timeout = {control_timeout}\n'
        f'[plugins.steady]\nclass = "blocking_plugins:Blocking"\n'
        f'[plugins.blocker]\nclass = "blocking_plugins:Blocking"\ndepends_on = ["steady"]\n'
        f'config = {{ where = "{where}", marker = "{marker}" }}\n'
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    process = subprocess.Popen([str(ACTORLOG_CLI), "run", str(config)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    return process, marker, log


def test_sigterm_while_an_on_start_blocks_stops_the_system(tmp_path: Path) -> None:
    process, marker, log = start_run(tmp_path, "start", control_timeout=1.0)
    try:
        wait_until(marker.exists, timeout=60, what="the blocking on_start")
        process.send_signal(signal.SIGTERM)
        result = finish(process, timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "actorlog run: stopped on SIGTERM; log flushed"
    (stopped,) = read_log(log, kinds=["run.stopped"])
    assert stopped.event.clean is False and "'blocker'" in stopped.event.reason  # abandoned, and the log says so
    assert [r.event.plugin for r in read_log(log, kinds=["plugin.stopped"])] == ["steady"]


def test_a_second_signal_while_an_on_stop_blocks_stops_at_once(tmp_path: Path) -> None:
    process, marker, log = start_run(tmp_path, "stop", control_timeout=600.0)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith("actorlog run: started"), line
        process.send_signal(signal.SIGINT)
        wait_until(marker.exists, timeout=60, what="the blocking on_stop")
        process.send_signal(signal.SIGTERM)  # the on_stop would hold the stop for 600 s
        result = finish(process, timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "stopped at once on a second SIGTERM" in result.stderr.strip().splitlines()[-1]
    stopping = [r.event.plugin for r in read_log(log, kinds=["plugin.stopping"])]
    assert stopping == ["blocker"]  # what was committed before the second signal is in the log
    verify = subprocess.run([str(ACTORLOG_CLI), "verify", str(log)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert sys.executable
