"""Several hosts, one audit trail: processes with their own ActorSystem on one PostgreSQL log,
over the unix socket and TCP, one SIGKILLed mid-run, with a ``tail --follow`` started first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from actor_helpers import wait_until
from actorlog.events import CounterIncremented
from actorlog.store import EventStore
from backend_cases import cli
from log_helpers import ACTORLOG_CLI, HELPERS
from pg_helpers import new_schema

pytestmark = pytest.mark.slow

ROUNDS = 60


class Lines:
    """Every line a process prints, read on a thread of the test's own."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._process = process
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self.lines.append(line.rstrip("\n"))

    def starting(self, prefix: str) -> list[str]:
        return [line for line in list(self.lines) if line.startswith(prefix)]


def host(target: str, wid: int) -> tuple[subprocess.Popen[str], Lines]:
    process = subprocess.Popen([sys.executable, str(HELPERS / "host_worker.py"), target, str(wid), str(ROUNDS)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return process, Lines(process)


@pytest.mark.parametrize("transport", ["socket", "tcp"])
def test_three_hosts_share_one_gap_free_verified_history(postgres_server: Any, transport: str, tmp_path: Path) -> None:
    schema = new_schema()
    socket_url, tcp_url = postgres_server.url(schema), postgres_server.url(schema, tcp=True)
    with EventStore(socket_url, run="setup") as store:  # the follower's first screen: this one event
        store.append(CounterIncremented(name="setup", value=0.0), actor="worker")
    follower_errors = (tmp_path / "follower.err").open("w")
    follower = subprocess.Popen([str(ACTORLOG_CLI), "tail", socket_url, "--follow", "--format", "jsonl"],
                                stdout=subprocess.PIPE, stderr=follower_errors, text=True)
    followed = Lines(follower)
    wait_until(lambda: followed.lines, timeout=60, what="the follower printed its first screen")
    urls = [socket_url, tcp_url, tcp_url] if transport == "tcp" else [socket_url] * 3
    hosts = [host(url, wid) for wid, url in enumerate(urls)]
    try:
        killed, killed_lines = hosts[1]
        wait_until(lambda: len(killed_lines.starting("flushed ")) >= 2, timeout=180, what="host 1 flushed twice")
        os.kill(killed.pid, signal.SIGKILL)
        flushed_by_killed = int(killed_lines.starting("flushed ")[-1].split()[1])
        for wid in (0, 2):
            assert hosts[wid][0].wait(timeout=300) == 0, hosts[wid][0].stderr.read()  # type: ignore[union-attr]
        killed.wait(timeout=60)

        with EventStore.open_readonly(socket_url) as store:
            records = list(store.events(lenient=True))
            assert [r.seq for r in records] == list(range(1, len(records) + 1))  # unique and gap-free
            assert store.verify().ok
        for wid in range(3):
            values = [r.event.value for r in records if r.kind == "counter.incremented" and r.actor == "worker"
                      and r.event.name == f"host.{wid}"]
            if wid == 1:  # killed: what it flushed is there once, in order; maybe a little more
                assert values == [float(i) for i in range(len(values))] and len(values) >= flushed_by_killed
            else:
                assert values == [float(i) for i in range(ROUNDS)]

        runs = {lines.starting("run ")[0].split()[1]: (wid, lines) for wid, (_, lines) in enumerate(hosts)}
        listed = json.loads(cli("runs", socket_url, "--json").stdout)
        assert sorted(r["run"] for r in listed) == sorted(["setup", *runs])
        assert {r["run"]: r["stopped"] for r in listed}[hosts[1][1].starting("run ")[0].split()[1]] is None
        for run, (wid, lines) in runs.items():
            if wid == 1:
                continue
            live = json.loads(lines.starting("stats ")[0][len("stats "):])
            replayed = cli("stats", socket_url, "--run", run, "--json")
            assert replayed.returncode == 0, replayed.stderr
            assert json.loads(replayed.stdout) == live, f"stats --run {run} differs from host {wid}'s live statistics"

        last = records[-1].seq
        try:
            wait_until(lambda: len(followed.lines) >= last, timeout=120, what="the follower saw every event")
        except AssertionError:
            raise AssertionError(f"the follower printed {len(followed.lines)} of {last} events (exit status "
                                 f"{follower.poll()}), first {followed.lines[:1]}; its stderr: "
                                 f"{(tmp_path / 'follower.err').read_text()[-2000:]}") from None
        assert [json.loads(line)["seq"] for line in followed.lines] == list(range(1, last + 1))
    finally:
        for process, _ in hosts:
            if process.poll() is None:
                process.kill()
                process.wait()
        follower.terminate()
        follower.wait(timeout=30)
        follower_errors.close()
