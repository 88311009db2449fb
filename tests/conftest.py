"""Shared fixtures and helpers for the actorlog test suite."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _store_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("StoreWriter")}


@pytest.fixture(autouse=True)
def no_leaked_store_threads() -> Iterator[None]:
    """Every test must stop the store actors it starts (close its stores)."""
    before = _store_threads()
    yield
    deadline = time.monotonic() + 5.0
    leaked = _store_threads() - before
    while leaked and time.monotonic() < deadline:
        time.sleep(0.01)
        leaked = {t for t in leaked if t.is_alive()}
    assert not leaked, f"store actor threads left running: {sorted(t.name for t in leaked)}"


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    """A path for a new event log in a fresh directory."""
    return tmp_path / "events.db"
