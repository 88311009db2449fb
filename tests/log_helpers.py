"""Helpers shared by the event-log tests (importable as a plain module)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

HELPERS = Path(__file__).parent / "helpers"
"""Scripts the subprocess tests run with the test interpreter."""

ACTORLOG_CLI = Path(sys.executable).parent / "actorlog"
"""The ``actorlog`` console script installed next to the test interpreter."""


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
