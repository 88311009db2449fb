"""Helpers for the audit UI's tests: a demo log, ``actorlog serve`` as a real subprocess, and a
real browser (Debian's chromium driven by Playwright).

Without /usr/bin/chromium the UI tests are skipped on a developer's machine, and fail in CI
(``CI=true``) or with ``ACTORLOG_REQUIRE_BROWSER=1``: there they are mandatory.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from demo_helpers import finish, run_actorlog, start_actorlog

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def browser_required() -> bool:
    """Whether a missing browser is a failure (CI, or asked for) rather than a skip."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("ACTORLOG_REQUIRE_BROWSER") == "1"


def need_browser() -> None:
    """Skip (or, where the UI tests are mandatory, fail) when the browser or Playwright is missing."""
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401 - only whether it is installed
        except ImportError:
            problem = "playwright is not installed (pip install -e '.[test]')"
    if problem is None:
        return
    if browser_required():
        pytest.fail(f"the UI tests are mandatory here and {problem}")
    pytest.skip(problem)


@contextmanager
def browser() -> Iterator[Any]:
    """A headless chromium, launched by Playwright."""
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def offline_page(launched: Any, base_url: str, asked_elsewhere: list[str]) -> Any:
    """A new page that may only reach ``base_url``; anything else is refused and noted."""
    page = launched.new_page(viewport={"width": 1280, "height": 900})
    own = urlparse(base_url).netloc

    def only_ours(route: Any) -> None:
        url = route.request.url
        if urlparse(url).netloc == own or url.startswith(("data:", "about:")):
            route.continue_()
        else:
            asked_elsewhere.append(url)
            route.abort()

    page.route("**/*", only_ours)
    page.set_default_timeout(60_000)
    return page


def make_demo_log(directory: Path) -> Path:
    """``actorlog demo`` into ``directory``: a log with failures, retries, restarts and measurements."""
    log = directory / "demo.db"
    result = run_actorlog("demo", "--db", log, "--tasks", 12, "--seed", 3, cwd=directory, timeout=300)
    assert result.returncode == 0, result.stderr
    return log


def query(log: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` over the log, opened read-only."""
    conn = sqlite3.connect(f"{log.absolute().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@contextmanager
def serving(log: Path, *args: str) -> Iterator[str]:
    """``actorlog serve LOG --port 0`` running; yields its base URL (``http://127.0.0.1:PORT/``)."""
    process = start_actorlog("serve", log, "--port", "0", *args, cwd=log.parent)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith("actorlog serve: "), line + (process.stderr.read() if process.poll() is not None else "")
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        yield url
    finally:
        process.terminate()
        try:
            finish(process, timeout=60)
        except AssertionError:
            process.kill()
        if process.poll() is None:
            process.kill()
            process.wait()


def serve_once(*args: object) -> subprocess.CompletedProcess[str]:
    """``actorlog serve ...`` expected to refuse at once."""
    return run_actorlog("serve", *args, timeout=120)
