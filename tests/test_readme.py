"""The README's code works as written, and its two opening commands are the ones CI runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import actorlog.actors.examples.agent  # noqa: F401 - registers the example event types
import actorlog.actors.examples.sandbox  # noqa: F401
from actorlog.events import Event
from actorlog.events.codec import default_codec

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CI_SCRIPT = (ROOT / ".ci" / "run").read_text()
BIN = Path(sys.executable).parent

# Every fenced block: (language, text), in document order.
BLOCKS = [(lang, textwrap.dedent(text)) for lang, text in re.findall(r"^ *```(\w+)\n(.*?)^ *```", README, flags=re.S | re.M)]
OPENING = [text.strip() for lang, text in BLOCKS if lang == "sh"][:2]


def ci_command(name: str) -> str:
    found = re.search(rf'^{name}="\$PYTHON (.*)"$', CI_SCRIPT, flags=re.M)
    assert found is not None, f".ci/run should define {name}"
    return "python3 " + found.group(1)


def test_readme_opens_with_the_demo_command_then_the_test_command() -> None:
    assert OPENING == [ci_command("DEMO_COMMAND"), ci_command("TEST_COMMAND")]
    first_block = README.index("```")
    assert "## " not in README[:first_block], "the two commands come before any section"


def test_every_code_block_is_of_a_kind_this_test_runs() -> None:
    assert {lang for lang, _ in BLOCKS} <= {"python", "sh", "toml"}
    assert sum(lang == "python" for lang, _ in BLOCKS) >= 5


def test_readme_blocks_run_in_order(tmp_path: Path, postgres_server: Any) -> None:
    """Each block runs in order in one folder, as a reader pastes them: Python in a fresh
    interpreter, shell with the installed commands on PATH, TOML through `actorlog run`.
    The two opening install commands are run by .ci/run from a clean clone instead.
    ``$PG``, which the PostgreSQL block says to set, is the tests' server."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PG": postgres_server.tcp_base()}
    shell_seen = 0
    for index, (lang, block) in enumerate(BLOCKS):
        if lang == "sh":
            shell_seen += 1
            if shell_seen <= 2:
                continue
            command = ["bash", "-euo", "pipefail", "-c", block]
        elif lang == "python":
            command = [sys.executable, "-c", block]
        else:
            run_config(tmp_path, block, env)
            continue
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env)
        assert result.returncode == 0, f"README block {index} ({lang}) failed:\n{block}\n--- stderr ---\n{result.stderr}"


def run_config(folder: Path, block: str, env: dict[str, str]) -> None:
    """A TOML block is a config `actorlog run` starts; SIGTERM stops it with exit 0."""
    (folder / "readme.toml").write_text(block)
    process = subprocess.Popen(
        [str(BIN / "actorlog"), "run", "readme.toml", "--db", "readme-run.db"], cwd=folder, env=env,
        stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    first = process.stderr.readline()  # "actorlog run: started ..." once every plugin runs
    process.send_signal(signal.SIGTERM)
    rest = process.stderr.read()
    assert process.wait(timeout=60) == 0, first + rest
    assert "started llm, sandbox, agent" in first, first + rest


def test_event_catalogue_lists_every_event_kind() -> None:
    registry = default_codec.registry
    kinds = {  # actorlog's own event types (other tests register theirs in the same registry)
        kind for kind in registry.kinds()
        if issubclass(cls := registry.type_for(kind) or object, Event) and cls.__module__.startswith("actorlog.")
    }
    section = README[README.index("## Event catalogue"):]
    section = section[: section.index("\n## ")]
    listed = set(re.findall(r"`([a-z_.]+)`", section))
    assert kinds - listed == set()


def test_readme_python_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    """Every Python example type-checks under ``mypy --strict`` as written: the statistics
    document is typed (TypedDicts), and no example passes an Optional where a value belongs."""
    files = []
    for index, (lang, block) in enumerate(BLOCKS):
        if lang == "python":
            path = tmp_path / f"readme_block_{index}.py"
            path.write_text(block)
            files.append(str(path))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), *files],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
