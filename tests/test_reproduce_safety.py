"""`actorlog reproduce` is safe for a log of unknown origin (issue 15, "reproduce runs what a log says").

A log made by someone else decides, through its recorded config and messages, what a
reproduced plugin does. These logs are made here the way an attacker would (real systems,
real plugins), then reproduced by the real ``actorlog`` command in a subprocess, as a
victim would, with the victim's secret in its environment: the plugin gets no environment
variables, no network and no child processes unless the victim allows each.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actor_helpers import read_log
from actorlog.actors import ActorSystem, Plugin, handler
from actorlog.actors.examples.llm import Generate, GenerationError, LLMPlugin
from actorlog.actors.examples.sandbox import RunCommand, SandboxPlugin
from actorlog.events import Message, register
from actorlog.replay.reproduce import reproduce
from actorlog.store import EventStore
from replay_helpers import run_cli
from sandbox_helpers import config as sandbox_config
from sandbox_helpers import outside_dir, skip_or_fail

VICTIM_SECRET = "victim-" + "Qm9vdHN0cmFwVG9rZW4xMjM0NTY3ODkw"
"""The victim's token, in the environment of the ``actorlog reproduce`` the victim runs."""

pytestmark = pytest.mark.slow


class AttackerServer:
    """An HTTP server on 127.0.0.1 that answers 500 to everything and records every request's
    headers. Bounded: it stops itself after ``lifetime`` seconds if the test has not."""

    def __init__(self, lifetime: float = 120.0) -> None:
        self.requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                """Quiet."""

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer._lock:
                    outer.requests.append(dict(self.headers.items()))
                body = b'{"error": "try again"}'
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # a connection reset between the server's select and its accept left accept blocked for
        # good, and shutdown() with it (CI hung in this fixture's teardown): accept gives up instead
        self._server.socket.settimeout(1.0)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._stopper = threading.Timer(lifetime, self._server.shutdown)
        self._stopper.daemon = True

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def seen(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self.requests)

    def forget(self) -> None:
        with self._lock:
            self.requests.clear()

    def __enter__(self) -> AttackerServer:
        self._thread.start()
        self._stopper.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopper.cancel()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def attacker(monkeypatch: pytest.MonkeyPatch) -> Iterator[AttackerServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with AttackerServer() as server:
        yield server


def victim_env(**extra: str) -> dict[str, str]:
    """The victim's environment: theirs, with their token in it."""
    return {**os.environ, "VICTIM_TOKEN": VICTIM_SECRET, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1", **extra}


def evil_llm_log(path: Path, server: AttackerServer, monkeypatch: pytest.MonkeyPatch) -> int:
    """A log whose LLM plugin is pointed at the attacker's server with the key read from
    ``VICTIM_TOKEN``; the seq of its failure. It verifies cleanly."""
    monkeypatch.setenv("VICTIM_TOKEN", "the-attackers-own-dummy")
    with ActorSystem(path) as system:
        system.register("llm", LLMPlugin, config={
            "backend": "openai", "base_url": server.base_url, "model": "m", "api_key_env": "VICTIM_TOKEN",
        })
        system.start()
        with pytest.raises(GenerationError):
            system.ask("llm", Generate(prompt="hello"), timeout=20)
    monkeypatch.delenv("VICTIM_TOKEN")
    server.forget()
    (failure,) = [r.seq for r in read_log(path, kinds=["failure.raised"])]
    with EventStore.open_readonly(path) as store:
        assert store.verify().ok
    return failure


def sent_the_secret(server: AttackerServer) -> list[dict[str, str]]:
    return [headers for headers in server.seen() if VICTIM_SECRET in json.dumps(headers)]


def test_reproduce_does_not_send_the_victims_token_to_the_attackers_server(
    tmp_path: Path, attacker: AttackerServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Today: the server receives ``Authorization: Bearer <the victim's token>``."""
    path = tmp_path / "evil.db"
    seq = evil_llm_log(path, attacker, monkeypatch)
    done = run_cli("reproduce", path, seq, "--json", env=victim_env())
    assert not sent_the_secret(attacker) and not attacker.seen()
    assert done.returncode == 1, done.stderr  # not reproduced: it could not even start without the variable
    outcome = json.loads(done.stdout)
    assert outcome["withheld"] == ["environment", "network", "processes"]
    assert "environment: VICTIM_TOKEN read as unset" in outcome["refused"]
    assert any("capabilities withheld" in note for note in outcome["notes"])
    assert any("the outcome depended on withheld capabilities" in note for note in outcome["notes"])
    assert VICTIM_SECRET not in done.stdout + done.stderr


def test_with_the_variable_allowed_but_not_the_network_nothing_is_sent_and_the_report_says_why(
    tmp_path: Path, attacker: AttackerServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "evil.db"
    seq = evil_llm_log(path, attacker, monkeypatch)
    done = run_cli("reproduce", path, seq, "--allow-env", "VICTIM_TOKEN", env=victim_env())
    assert done.returncode == 1, done.stderr
    assert not attacker.seen()
    assert "withheld: environment (except VICTIM_TOKEN), network, processes" in done.stdout
    assert f"refused: network: looking up '127.0.0.1' (port {attacker.port})" in done.stdout
    assert "the outcome depended on withheld capabilities" in done.stdout
    assert VICTIM_SECRET not in done.stdout + done.stderr


def test_the_user_may_allow_what_a_trusted_log_needs(
    tmp_path: Path, attacker: AttackerServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same log, reproduced by someone who trusts it: each capability by its flag, or all by --trust."""
    path = tmp_path / "evil.db"
    seq = evil_llm_log(path, attacker, monkeypatch)
    allowed = run_cli("reproduce", path, seq, "--allow-env", "VICTIM_TOKEN", "--allow-network", "--json",
                      env=victim_env())
    assert len(sent_the_secret(attacker)) == 1  # what the user asked for
    outcome = json.loads(allowed.stdout)
    assert outcome["withheld"] == ["environment (except VICTIM_TOKEN)", "processes"] and outcome["refused"] == []
    attacker.forget()
    trusted = run_cli("reproduce", path, seq, "--trust", "--json", env=victim_env())
    assert json.loads(trusted.stdout)["withheld"] == [] and len(sent_the_secret(attacker)) == 1
    assert VICTIM_SECRET not in allowed.stdout + trusted.stdout  # the report shows no more than the log did


def test_reproduce_does_not_run_the_commands_a_log_recorded(tmp_path: Path) -> None:
    """Today: two recorded RunCommand(("sh", "-c", "id > FILE")) messages are run again."""
    path = tmp_path / "evil.db"
    with outside_dir(mode=0o1777) as folder:
        owned = folder / "owned"
        with ActorSystem(path) as system:
            system.register("sandbox", SandboxPlugin, config=sandbox_config())
            system.start()
            for _ in range(2):
                assert system.ask("sandbox", RunCommand(argv=("sh", "-c", f"id > {owned}")), timeout=60).exit_code == 0
            with pytest.raises(ValueError, match="argv is empty"):
                system.ask("sandbox", RunCommand(argv=()), timeout=60)
        owned.unlink()
        (seq,) = [r.seq for r in read_log(path, kinds=["failure.raised"])]
        done = run_cli("reproduce", path, seq, "--json", env=victim_env())
        assert not owned.exists(), "the recorded commands ran"
        assert done.returncode == 1, done.stderr
        outcome = json.loads(done.stdout)
        assert outcome["exc_type"] == "actorlog.actors.examples.sandbox.SandboxError"
        assert "child processes are not allowed here" in outcome["message"]
        assert "processes: asked for by the plugin" in outcome["refused"]
        allowed = run_cli("reproduce", path, seq, "--allow-processes", "--json", env=victim_env())
        assert allowed.returncode == 0, allowed.stdout + allowed.stderr  # reproduced, the commands run again
        assert owned.exists()


# -- plugins that do not ask: the process itself refuses -------------------------------------------


@register
class Reach(Message, tag="safety.reach", frozen=True):
    """Try ``what`` (``network``, ``process`` or ``env``) then fail, saying what happened."""

    what: str


class Reckless(Plugin):
    """A plugin that uses the environment, the network and child processes without asking its context."""

    version = "1.0.0"

    @handler
    def reach(self, message: Reach) -> None:
        if message.what == "network":
            try:
                urllib.request.urlopen(self.config["url"], data=b"{}", timeout=5)  # noqa: S310 - a local test server
            except urllib.error.HTTPError:
                pass
            raise RuntimeError("network: reached")
        if message.what == "process":
            import subprocess  # noqa: PLC0415

            subprocess.run(["true"], check=True)
            raise RuntimeError("process: ran")
        value = os.environ.get(self.config["token_env"])
        raise RuntimeError(f"env: {'set' if value else 'unset'}")


def test_a_plugin_that_does_not_ask_is_refused_all_the_same(
    tmp_path: Path, attacker: AttackerServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "app.db"
    monkeypatch.setenv("VICTIM_TOKEN", VICTIM_SECRET)
    with ActorSystem(path) as system:
        system.register("reckless", Reckless, config={"url": attacker.base_url, "token_env": "VICTIM_TOKEN"})
        system.start()
        for what in ("network", "process", "env"):
            with pytest.raises(RuntimeError, match=f"{what[:3]}"):
                system.ask("reckless", Reach(what=what), timeout=20)
    attacker.forget()
    network, process, env = [r.seq for r in read_log(path, kinds=["failure.raised"])]

    refused = reproduce(path, network)
    assert not refused.reproduced and not attacker.seen()
    assert refused.exc_type == "urllib.error.URLError" and "network is not allowed while reproducing" in refused.message
    assert refused.refused == (f"network: looking up '127.0.0.1' (port {attacker.port})",)
    assert reproduce(path, network, allow_network=True).reproduced

    spawned = reproduce(path, process)
    assert not spawned.reproduced and "processes: starting 'true'" in spawned.refused  # (after the network again)
    assert reproduce(path, process, allow_processes=True).reproduced

    unset = reproduce(path, env)
    assert not unset.reproduced and unset.message == "env: unset"
    assert any("VICTIM_TOKEN" in note and "unset" in note for note in unset.notes)
    assert reproduce(path, env, allow_env=["VICTIM_TOKEN"]).reproduced
    assert os.environ["VICTIM_TOKEN"] == VICTIM_SECRET  # given back once the reproduction ended
    assert reproduce(path, env, trust=True).reproduced and reproduce(path, env, trust=True).withheld == ()


# -- a log signed by a key the user trusts ---------------------------------------------------------


def test_a_log_signed_by_a_trusted_key_is_reproduced_with_every_capability(
    tmp_path: Path, attacker: AttackerServer,
) -> None:
    """--trust-key PUB: the log's checkpoints must verify with that key up to the failure;
    then the plugin gets what it had live. Any other key, or an unsigned log, is refused (exit 2)."""
    from actorlog.store.signing import generate_key  # noqa: PLC0415 - needs the signing extra

    (tmp_path / "keys").mkdir()
    private, public, _ = generate_key(tmp_path / "keys" / "team.key")
    _, other, _ = generate_key(tmp_path / "keys" / "other.key")
    signed, unsigned = tmp_path / "signed.db", tmp_path / "unsigned.db"
    for path, key in ((signed, private), (unsigned, None)):
        with ActorSystem(path, signing_key=key) as system:
            system.register("reckless", Reckless, config={"url": attacker.base_url, "token_env": "VICTIM_TOKEN"})
            system.start()
            with pytest.raises(RuntimeError):
                system.ask("reckless", Reach(what="network"), timeout=20)
    attacker.forget()
    (seq,) = [r.seq for r in read_log(signed, kinds=["failure.raised"])]
    outcome = reproduce(signed, seq, trust_key=public)
    assert outcome.reproduced and outcome.withheld == () and len(attacker.seen()) == 1
    assert any("signed by the trusted key" in note for note in outcome.notes)
    attacker.forget()
    for path, key, why in ((signed, other, "not vouched for"), (unsigned, public, "signed no checkpoint of this log")):
        (failure,) = [r.seq for r in read_log(path, kinds=["failure.raised"])]
        done = run_cli("reproduce", path, failure, "--trust-key", key, "--import-path", Path(__file__).parent,
                       env=victim_env())
        assert done.returncode == 2 and why in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not attacker.seen()


IMPORT_TIME_PLUGIN = '''
import subprocess

subprocess.run(["sh", "-c", "touch {mark}"], check=False)  # what importing this module does

from actorlog.actors import Plugin, handler
from actorlog.events import Message, register


@register
class Crash(Message, tag="importtime.crash", frozen=True):
    pass


class ImportTimePlugin(Plugin):
    version = "1.0.0"

    @handler
    def crash(self, message: Crash) -> None:
        raise RuntimeError("crashed")
'''


def test_even_importing_the_module_a_log_names_is_confined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The log names the plugin's module: a module that runs a program when imported runs
    none when a reproduction imports it (only the plugin's own process would notice)."""
    mark = tmp_path / "imported"
    (tmp_path / "import_time_plugin.py").write_text(IMPORT_TIME_PLUGIN.format(mark=mark))
    monkeypatch.syspath_prepend(str(tmp_path))
    import import_time_plugin  # noqa: PLC0415 - the recording imports it, as the attacker's machine did

    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("imp", import_time_plugin.ImportTimePlugin)
        system.start()
        with pytest.raises(RuntimeError):
            system.ask("imp", import_time_plugin.Crash(), timeout=10)
    mark.unlink()
    (seq,) = [r.seq for r in read_log(path, kinds=["failure.raised"])]
    done = run_cli("reproduce", path, seq, "--import-path", tmp_path, "--json", env=victim_env())
    assert not mark.exists(), "importing the module ran its program"
    outcome = json.loads(done.stdout)
    assert "processes: starting 'sh'" in outcome["refused"]


# -- below the audit hooks: the reproduction runs in a process of its own (audit G1) ---------------


@register
class Pry(Message, tag="safety.pry", frozen=True):
    """Look at ``what`` (or start ``/bin/touch target`` by way of ``what``), then fail saying what was found."""

    what: str
    target: str = ""


def _fork_exec_touch(fork_exec: Any, target: str) -> None:
    """``/bin/touch target`` through ``_posixsubprocess.fork_exec`` itself (Python 3.11+'s 23 arguments)."""
    errpipe_read, errpipe_write = os.pipe()
    try:
        pid = fork_exec(
            ["/bin/touch", target], [b"/bin/touch"], True, (errpipe_write,), None, None,
            -1, -1, -1, -1, -1, -1, errpipe_read, errpipe_write, True, False, -1, None, None, None, -1, None, False,
        )
    finally:
        os.close(errpipe_write)
    os.read(errpipe_read, 100)
    os.close(errpipe_read)
    os.waitpid(pid, 0)


class Prying(Plugin):
    """A plugin that reaches past Python's audited APIs: the kernel's copy of the environment,
    variables not named like secrets, process creation without an audit event, native code."""

    version = "1.0.0"

    @handler
    def pry(self, message: Pry) -> None:
        what, target = message.what, message.target
        if what == "procenv":
            with open("/proc/self/environ", "rb") as file:
                names = sorted({item.split(b"=", 1)[0].decode() for item in file.read().split(b"\0") if item})
            raise RuntimeError("procenv: " + " ".join(names))
        if what == "environ":
            raise RuntimeError("environ: " + " ".join(sorted(os.environ)))
        if what == "netns":
            raise RuntimeError("netns: " + os.readlink("/proc/self/ns/net"))
        if what == "subprocess._fork_exec":
            import subprocess  # noqa: PLC0415

            _fork_exec_touch(subprocess._fork_exec, target)  # type: ignore[attr-defined]  # noqa: SLF001
        elif what == "_posixsubprocess.fork_exec":
            import _posixsubprocess  # type: ignore[import-not-found]  # noqa: PLC0415

            _fork_exec_touch(_posixsubprocess.fork_exec, target)
        elif what == "posix_spawn":
            os.waitpid(os.posix_spawn("/bin/touch", ["touch", target], {}), 0)
        elif what == "fork":
            pid = os.fork()
            if pid == 0:
                with open(target, "w"):
                    os._exit(0)
            os.waitpid(pid, 0)
        elif what == "write":
            with open(target, "w") as file:
                file.write("written")
        elif what == "ctypes":
            import ctypes  # noqa: PLC0415

            raise RuntimeError(f"ctypes: getpid {ctypes.CDLL(None).getpid()}")
        raise RuntimeError(f"{what}: ran")


def prying_log(path: Path, pries: list[Pry]) -> list[int]:
    """A log of `Prying` failing once for each of ``pries`` (recorded with the victim's token set); their seqs."""
    with ActorSystem(path) as system:
        system.register("pry", Prying)
        system.start()
        for pry in pries:
            with pytest.raises(RuntimeError):
                system.ask("pry", pry, timeout=20)
    return [r.seq for r in read_log(path, kinds=["failure.raised"])]


MINIMAL_ENV = {"PATH", "LANG", "LANGUAGE", "TZ", "PYTHONPATH"}
"""What a confined reproduction's environment may hold besides the variables allowed (and ``LC_*``):
``PYTHONPATH`` is the caller's import paths."""


def test_the_reproduced_plugin_sees_only_the_variables_it_was_allowed(tmp_path: Path) -> None:
    """Today: the kernel's copy of the environment (/proc/self/environ) still holds
    VICTIM_TOKEN, and DATABASE_URL (not named like a secret) is readable in os.environ."""
    path = tmp_path / "app.db"
    procenv, environ = prying_log(path, [Pry(what="procenv"), Pry(what="environ")])
    env = victim_env(DATABASE_URL="postgres://u:pw@h/db", HOME=str(tmp_path))
    for seq, what in ((procenv, "procenv"), (environ, "environ")):
        done = run_cli("reproduce", path, seq, "--import-path", Path(__file__).parent, "--json", env=env)
        outcome = json.loads(done.stdout)
        names = set(outcome["message"].removeprefix(f"{what}: ").split())
        assert not names & {"VICTIM_TOKEN", "DATABASE_URL", "HOME", "NO_PROXY"}, (what, names)
        assert {n for n in names if not n.startswith("LC_")} <= MINIMAL_ENV, (what, names)
        assert "child process" in outcome["isolation"]
    allowed = run_cli("reproduce", path, environ, "--import-path", Path(__file__).parent, "--allow-env",
                      "DATABASE_URL", "--json", env=env)
    assert "DATABASE_URL" in json.loads(allowed.stdout)["message"].split()


@pytest.mark.parametrize("way", ["subprocess._fork_exec", "_posixsubprocess.fork_exec", "posix_spawn", "fork"])
def test_a_program_started_below_the_audited_apis_is_refused(tmp_path: Path, way: str) -> None:
    """Today: ``_posixsubprocess.fork_exec`` (which raises no audit event) runs /bin/touch,
    and the report says REPRODUCED with nothing refused."""
    path, mark = tmp_path / "app.db", tmp_path / "touched"
    (seq,) = prying_log(path, [Pry(what=way, target=str(mark))])
    assert mark.exists()  # live, it ran
    mark.unlink()
    outcome = reproduce(path, seq)
    assert not mark.exists(), f"{way} started a program during the reproduction"
    assert not outcome.reproduced and any(entry.startswith("processes: ") for entry in outcome.refused), outcome
    allowed = reproduce(path, seq, allow_processes=True)
    assert allowed.reproduced and mark.exists(), allowed


def test_native_code_cannot_be_loaded_while_confined(tmp_path: Path) -> None:
    """Today: ``import ctypes`` works during a reproduction, and with it any C function."""
    path = tmp_path / "app.db"
    (seq,) = prying_log(path, [Pry(what="ctypes")])
    outcome = reproduce(path, seq)
    assert not outcome.reproduced and outcome.message is not None and "getpid" not in outcome.message, outcome
    assert any(entry.startswith("native code: ") for entry in outcome.refused), outcome.refused
    assert reproduce(path, seq, trust=True).reproduced


def test_on_linux_the_reproduction_has_a_network_namespace_of_its_own(tmp_path: Path) -> None:
    """Today: the reproduction runs in the caller's process, in the caller's network
    namespace; the network is refused by audit hooks only."""
    if not sys.platform.startswith("linux"):
        pytest.skip("network namespaces are Linux's")
    path = tmp_path / "app.db"
    (seq,) = prying_log(path, [Pry(what="netns")])
    outcome = reproduce(path, seq)
    assert "child process" in outcome.isolation, outcome.isolation
    if "own network namespace" not in outcome.isolation:
        skip_or_fail(f"this kernel made no network namespace for the reproduction: {outcome.isolation}")
    assert outcome.message is not None and outcome.message != f"netns: {os.readlink('/proc/self/ns/net')}"
    assert any("own network namespace" in note for note in outcome.notes)
    with_network = reproduce(path, seq, allow_network=True)
    assert "own network namespace" not in with_network.isolation and with_network.reproduced


def test_in_process_reproduction_is_still_available_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    (seq,) = prying_log(path, [Pry(what="netns")])
    outcome = reproduce(path, seq, isolate=False)
    assert outcome.reproduced and "in this process" in outcome.isolation, outcome.isolation


BESIDE_THE_LOG = '''
import pathlib

pathlib.Path({mark!r}).write_text("imported")  # what importing this module does

from actorlog.actors import Plugin, handler
from actorlog.events import Message, register


@register
class Crash(Message, tag="beside.crash", frozen=True):
    pass


class BesidePlugin(Plugin):
    version = "1.0.0"

    @handler
    def crash(self, message: Crash) -> None:
        raise RuntimeError("crashed")
'''


def test_a_module_shipped_beside_the_log_is_not_imported_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Today: the default ``--import-path .`` imports ``beside_plugin.py`` from the folder of
    a bug-report archive, and its code runs."""
    archive = tmp_path / "archive"
    archive.mkdir()
    mark = tmp_path / "imported"
    (archive / "beside_plugin.py").write_text(BESIDE_THE_LOG.format(mark=str(mark)))
    monkeypatch.syspath_prepend(str(archive))
    import beside_plugin  # noqa: PLC0415 - the recording imports it, as the attacker's machine did

    path = archive / "evil.db"
    with ActorSystem(path) as system:
        system.register("beside", beside_plugin.BesidePlugin)
        system.start()
        with pytest.raises(RuntimeError):
            system.ask("beside", beside_plugin.Crash(), timeout=10)
    mark.unlink()
    (seq,) = [r.seq for r in read_log(path, kinds=["failure.raised"])]
    done = run_cli("reproduce", "evil.db", seq, cwd=archive, env=victim_env())
    assert not mark.exists(), "the module beside the log was imported"
    assert done.returncode == 1 and "--import-path DIR" in done.stdout, done.stdout + done.stderr
    assert "Traceback" not in done.stderr  # (stdout shows the recorded traceback, as every report does)
    given = run_cli("reproduce", "evil.db", seq, "--import-path", ".", cwd=archive, env=victim_env())
    assert given.returncode == 0 and mark.exists(), given.stdout + given.stderr  # asked for: imported


# -- what the documentation promises (audit G2) ----------------------------------------------------


README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_docs_promise_nothing_written_to_the_log_and_say_files_may_be_written() -> None:
    """Today: the README says reproduce "writes nothing", yet a plugin's own code may write files."""
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert "It writes nothing:" not in text and "It writes nothing to the log" in text
    assert "file writes are not withheld" in text
    assert "not a sandbox for hostile plugin code" in text
    helped = " ".join(run_cli("reproduce", "--help").stdout.split())
    assert "Nothing is written to the log" in helped and "file writes are not withheld" in helped


def test_a_plugin_may_still_write_files_as_documented(tmp_path: Path) -> None:
    """The limit the docs state, held to: file writes are not withheld (they are not replayable either)."""
    path, mark = tmp_path / "app.db", tmp_path / "written"
    (seq,) = prying_log(path, [Pry(what="write", target=str(mark))])
    mark.unlink()
    reproduce(path, seq)
    assert mark.read_text() == "written"


# -- the property: whatever the caller's environment holds, only what was allowed gets through ------


VARIABLE_NAMES = st.from_regex(r"[A-Z][A-Z0-9_]{2,14}", fullmatch=True).filter(
    lambda name: name not in MINIMAL_ENV and not name.startswith("LC_"))


@pytest.fixture(scope="module")
def procenv_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("procenv") / "app.db"
    (seq,) = prying_log(path, [Pry(what="procenv")])
    return path, seq


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(planted=st.dictionaries(VARIABLE_NAMES, st.text(st.characters(min_codepoint=33, max_codepoint=126),
                                                         min_size=1, max_size=20), min_size=1, max_size=6),
       data=st.data())
def test_only_the_variables_allowed_reach_the_reproduction(
    procenv_log: tuple[Path, int], planted: dict[str, str], data: st.DataObject,
) -> None:
    """Variables planted in the caller's environment, whatever their names, are absent from
    the reproduction's /proc/self/environ unless allowed by name."""
    path, seq = procenv_log
    allowed = data.draw(st.lists(st.sampled_from(sorted(planted)), unique=True, max_size=2))
    saved = {name: os.environ.get(name) for name in planted}
    os.environ.update(planted)
    try:
        outcome = reproduce(path, seq, allow_env=allowed)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    assert outcome.message is not None
    seen = set(outcome.message.removeprefix("procenv: ").split())
    assert seen & set(planted) == set(allowed), (planted, allowed, seen)
