"""Regenerate the README's two screenshots: a failure's timeline and a metric's chart.

    .venv/bin/python scripts/readme_screenshots.py        # writes docs/timeline.png and docs/chart.png

It runs ``actorlog demo`` into a temporary folder, serves that log with ``actorlog serve``
(port 0), opens the pages in Debian's chromium through Playwright (no network: every
request outside the server is refused) and saves the two pictures. Needs the test extra
(``pip install -e '.[test]'``) and ``/usr/bin/chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from playwright.sync_api import Route, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ACTORLOG = Path(sys.executable).parent / "actorlog"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def story_to_show(log: Path) -> str:
    """A correlation whose story has a retried failure: two or three failures raised."""
    conn = sqlite3.connect(f"{log.absolute().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT correlation, count(*) AS n FROM events WHERE kind = 'failure.raised' AND correlation IS NOT NULL "
            "GROUP BY correlation ORDER BY abs(n - 2), min(seq) LIMIT 1"
        ).fetchall()
    finally:
        conn.close()
    if not rows:
        raise SystemExit("the demo log holds no failure to show")
    return str(rows[0][0])


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "demo.db"
        subprocess.run([str(ACTORLOG), "demo", "--db", str(log), "--tasks", "12", "--seed", "3"], check=True,
                       stdout=subprocess.DEVNULL, timeout=600)
        server = subprocess.Popen([str(ACTORLOG), "serve", str(log), "--port", "0"], stderr=subprocess.PIPE, text=True)
        try:
            assert server.stderr is not None
            line = server.stderr.readline()
            if " at " not in line:
                raise SystemExit(f"actorlog serve did not start: {line}{server.stderr.read()}")
            base = line.split(" at ", 1)[1].split(" ", 1)[0]
            own = urlparse(base).netloc
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1200, "height": 800}, device_scale_factor=1)

                def offline(route: Route) -> None:
                    if urlparse(route.request.url).netloc == own:
                        route.continue_()
                    else:
                        route.abort()

                page.route("**/*", offline)
                page.goto(f"{base}-/actorlog/story/{story_to_show(log)}")
                page.wait_for_selector("body[data-charts-drawn='true']")
                page.screenshot(path=str(DOCS / "timeline.png"), clip={"x": 0, "y": 0, "width": 1200, "height": 800})
                page.goto(f"{base}-/actorlog/metric/llm.generate")
                page.wait_for_selector("body[data-charts-drawn='true']")
                page.screenshot(path=str(DOCS / "chart.png"), clip={"x": 0, "y": 0, "width": 1200, "height": 620})
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(f"wrote {DOCS / 'timeline.png'} and {DOCS / 'chart.png'}")


if __name__ == "__main__":
    main()
