"""The README's code works as written, and its test command is the one CI runs."""

from __future__ import annotations

import re
import textwrap
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def python_blocks() -> list[str]:
    return [textwrap.dedent(block) for block in re.findall(r"```python\n(.*?)```", README, flags=re.S)]


def test_readme_has_python_examples() -> None:
    assert python_blocks(), "the README should show Python examples"


def test_readme_python_blocks_run_in_order(tmp_path: Path) -> None:
    """Each block runs in a fresh interpreter, in order, in one folder: as a reader pastes them."""
    for index, block in enumerate(python_blocks()):
        result = subprocess.run(
            [sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"README block {index} failed:\n{block}\n--- stderr ---\n{result.stderr}"


def test_readme_test_command_is_the_one_ci_runs() -> None:
    ci_script = (ROOT / ".ci" / "run").read_text()
    ci_command = re.search(r'^TEST_COMMAND="\$PYTHON (.*)"$', ci_script, flags=re.M)
    assert ci_command is not None, ".ci/run should define TEST_COMMAND"
    sh_blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    assert sh_blocks, "the README should open with shell commands"
    readme_commands = [line.strip() for block in sh_blocks[:2] for line in block.strip().splitlines()]
    assert "python3 " + ci_command.group(1) in readme_commands
