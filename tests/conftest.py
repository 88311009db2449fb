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


# -- PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """The PostgreSQL server the tests use: one they start themselves, or $ACTORLOG_TEST_POSTGRES."""
    import os

    from pg_helpers import REQUIRE_ENV, URL_ENV, ExistingServer, PostgresServer, postgres_bin

    try:
        import psycopg  # noqa: F401
    except ImportError:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail("psycopg is not installed but the PostgreSQL tests are required: pip install -e '.[test]'")
        pytest.skip("psycopg is not installed (pip install 'actorlog[postgres]')")
    if os.environ.get(URL_ENV):
        yield ExistingServer(os.environ[URL_ENV])
        return
    if postgres_bin() is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail("no PostgreSQL server binaries, and the PostgreSQL tests are required (apt-get install -y "
                        "postgresql, or set ACTORLOG_TEST_POSTGRES)")
        pytest.skip("no PostgreSQL server binaries (apt-get install -y postgresql) and ACTORLOG_TEST_POSTGRES unset")
    server = PostgresServer()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_log(postgres_server: object) -> str:
    """The URL of a new, empty log: a fresh schema on the tests' PostgreSQL server."""
    from pg_helpers import new_schema

    return postgres_server.url(new_schema())  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(params=["sqlite", "postgresql"])
def any_log(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty log on each backend in turn: a file path, then a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "events.db")
    return request.getfixturevalue("pg_log")  # type: ignore[no-any-return]
