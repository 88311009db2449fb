"""The audit UI in a real browser (issue 17).

``actorlog serve`` runs as a real subprocess over a demo log; Debian's chromium, driven by
Playwright, opens the index, the ordered views, canned queries, a failure's timeline, a run's
timeline and the charts, and the tests assert on what a person sees: the traceback on the
timeline, one mark per event or point on the charts, links that lead to the story. Every page
is refused the network (the charting library is the package's own asset). Screenshots are
saved under each test's temporary directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actor_helpers import wait_until
from actorlog.actors import ActorSystem
from demo_helpers import run_actorlog
from ui_helpers import browser, make_demo_log, need_browser, offline_page, query, serve_once, serving

LATENCIES = [0.12, 0.5, 0.25, 1.5, 0.75]
"""Observations of ``ui.latency`` added to the demo log: the metric chart must show 5 points."""


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    log = make_demo_log(tmp_path_factory.mktemp("ui"))
    with ActorSystem(log) as system:
        for value in LATENCIES:
            system.metrics.observe("ui.latency", value)
        for _ in range(3):
            with system.monitor.time("ui.step"):
                pass
    return log


@pytest.fixture(scope="module")
def base_url(demo_log: Path) -> Iterator[str]:
    need_browser()
    with serving(demo_log) as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


@pytest.fixture
def page(chromium: Any, base_url: str) -> Iterator[Any]:
    elsewhere: list[str] = []
    opened = offline_page(chromium, base_url, elsewhere)
    try:
        yield opened
    finally:
        opened.close()
    assert elsewhere == [], f"a page asked the network for {elsewhere}"


def stats(log: Path) -> dict[str, Any]:
    result = run_actorlog("stats", log, "--json")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def column(page: Any, name: str) -> list[str]:
    return [cell.strip() for cell in page.locator(f"table.rows-and-columns tbody td.col-{name}").all_inner_texts()]


def story_with_a_traceback(log: Path) -> str:
    """The correlation with the most failures raised (a retried task, at least one traceback)."""
    (correlation,) = query(log, "SELECT correlation FROM events WHERE kind = 'failure.raised' "
                                "AND correlation IS NOT NULL GROUP BY correlation ORDER BY count(*) DESC, min(seq) LIMIT 1")[0]
    return str(correlation)


def test_index_lists_the_log_with_its_title_and_views(page: Any, base_url: str, demo_log: Path, tmp_path: Path) -> None:
    page.goto(base_url + "demo")
    assert "actorlog event log" in page.locator("h1").inner_text()
    for view in ("lifecycle", "failures", "retries", "measurements"):
        assert page.locator(f"a[href$='/demo/{view}']").count() >= 1, view
    for canned in ("story", "failures_by_type", "restarts_over_time", "runs", "slowest_operations", "metric_series"):
        assert page.locator(f"a[href$='/demo/{canned}']").count() >= 1, canned
    page.screenshot(path=str(tmp_path / "index.png"), full_page=True)


def test_the_failures_view_has_one_ordered_row_per_failure_with_its_decision(
    page: Any, base_url: str, demo_log: Path, tmp_path: Path
) -> None:
    page.goto(base_url + "demo/failures?_size=max")
    seqs = [int(s) for s in column(page, "seq")]
    assert seqs == sorted(seqs) and seqs, "the view is ordered by seq"
    times = column(page, "time")
    assert all(len(t) == 24 and t[10] == "T" and t.endswith("Z") for t in times), times[:3]
    errors = stats(demo_log)["errors"]
    assert Counter(column(page, "exc_type")) == Counter(errors["error_types"])  # one row per failure, as stats counts
    assert set(column(page, "action")) <= {"continue", "retry", "restart", "restart_with_dependents", "stop", "escalate"}
    assert all(action for action in column(page, "action")), "every failure shows its decision"
    page.screenshot(path=str(tmp_path / "failures.png"), full_page=True)
    # a correlation is a link to its story, and the story shows the traceback
    link = page.locator("table.rows-and-columns tbody td.col-correlation a").first
    correlation = link.inner_text().strip()
    link.click()
    page.wait_for_url(f"**/-/actorlog/story/{correlation}*")
    assert correlation in page.locator("h1").inner_text()
    assert page.locator("pre.actorlog-traceback").count() >= 1
    assert "Traceback (most recent call last)" in page.locator("pre.actorlog-traceback").first.inner_text()


def test_lifecycle_is_in_order_so_a_restart_follows_its_start(page: Any, base_url: str, demo_log: Path) -> None:
    page.goto(base_url + "demo/lifecycle?_size=max")
    seqs = [int(s) for s in column(page, "seq")]
    kinds = column(page, "kind")
    assert seqs == sorted(seqs)
    assert "plugin.restarted" in kinds
    assert kinds.index("plugin.started") < kinds.index("plugin.restarted")


def test_canned_query_failures_by_type_equals_actorlog_stats(page: Any, base_url: str, demo_log: Path) -> None:
    page.goto(base_url + "demo/failures_by_type")
    counted: Counter[str] = Counter()
    for exc_type, failures in zip(column(page, "exc_type"), column(page, "failures")):
        counted[exc_type] += int(failures)
    assert counted == Counter(stats(demo_log)["errors"]["error_types"])


def test_the_story_timeline_marks_every_event_and_shows_the_traceback_inline(
    page: Any, base_url: str, demo_log: Path, tmp_path: Path
) -> None:
    correlation = story_with_a_traceback(demo_log)
    expected = query(demo_log, "SELECT seq, kind FROM events WHERE correlation = ? ORDER BY seq", correlation)
    page.goto(f"{base_url}-/actorlog/story/{correlation}")
    page.wait_for_selector("body[data-charts-drawn='true']")
    events = page.locator("ol.actorlog-events > li")
    assert [int(i.split("-")[1]) for i in [events.nth(n).get_attribute("id") for n in range(events.count())]] == [
        seq for seq, _ in expected
    ]
    # one mark per event on the time axis, one lane per actor
    figure = page.locator("figure.actorlog-chart[data-chart='timeline']")
    assert figure.locator("svg [aria-label='dot'] path, svg [aria-label='dot'] circle").count() == len(expected)
    actors = [a for (a,) in query(demo_log, "SELECT DISTINCT actor FROM events WHERE correlation = ?", correlation)]
    lanes = figure.locator("svg [aria-label='y-axis tick label'] text").all_text_contents()
    assert sorted(lanes) == sorted(actors)
    # failures and decisions are marked, and each failure's traceback is shown where it happened
    raised = [seq for seq, kind in expected if kind == "failure.raised"]
    assert page.locator("li.actorlog-failure[data-kind='failure.raised'] pre.actorlog-traceback").count() == len(raised)
    assert page.locator("li.actorlog-decision").count() == sum(kind == "recovery.decided" for _, kind in expected)
    traceback = page.locator(f"#event-{raised[0]} pre.actorlog-traceback")
    assert traceback.is_visible() and "Traceback (most recent call last)" in traceback.inner_text()
    page.screenshot(path=str(tmp_path / "story.png"), full_page=True)
    # the run it belongs to is a link to the run's timeline
    page.locator("a.actorlog-run").first.click()
    page.wait_for_url("**/-/actorlog/run/*")
    page.wait_for_selector("body[data-charts-drawn='true']")
    assert page.locator("li[data-kind='run.started']").count() == 1
    assert page.locator("li[data-kind='plugin.restarted']").count() >= 1
    assert page.locator("li[data-kind='counter.incremented'], li[data-kind='operation.timed']").count() == 0
    page.screenshot(path=str(tmp_path / "run.png"), full_page=True)


def test_the_canned_story_query_links_back_to_the_timeline(page: Any, base_url: str, demo_log: Path) -> None:
    correlation = story_with_a_traceback(demo_log)
    page.goto(f"{base_url}demo/story?correlation={correlation}")
    rows = query(demo_log, "SELECT count(*) FROM events WHERE correlation = ?", correlation)[0][0]
    assert len(column(page, "seq")) == rows
    page.locator("table.rows-and-columns tbody td.col-run a").first.click()
    page.wait_for_url("**/-/actorlog/run/*")


def test_charts_of_restarts_errors_and_a_metric_series(page: Any, base_url: str, demo_log: Path, tmp_path: Path) -> None:
    page.goto(base_url + "-/actorlog/charts")
    page.wait_for_selector("body[data-charts-drawn='true']")
    restarts = query(demo_log, "SELECT count(*) FROM events WHERE kind = 'plugin.restarted' AND actor = 'supervisor'")[0][0]
    assert restarts >= 1
    assert int(page.locator("#restarts-chart").get_attribute("data-points")) == restarts
    assert page.locator("#restarts-chart svg [aria-label='rect'] rect").count() >= 1
    assert int(page.locator("#errors-chart").get_attribute("data-points")) == stats(demo_log)["errors"]["total_errors"]
    assert page.locator("#errors-chart svg [aria-label='rect'] rect").count() >= 1
    page.screenshot(path=str(tmp_path / "charts.png"), full_page=True)
    # a metric's series: one point per observation
    page.locator("ul.actorlog-metrics a", has_text="ui.latency").click()
    page.wait_for_url("**/-/actorlog/metric/ui.latency*")
    page.wait_for_selector("body[data-charts-drawn='true']")
    chart = page.locator("#series-chart")
    assert chart.locator("svg [aria-label='dot'] circle").count() == len(LATENCIES)
    assert chart.locator("svg [aria-label='line'] path").count() == 3  # p50, p95, p99
    page.screenshot(path=str(tmp_path / "metric.png"), full_page=True)
    # a timed operation: its durations in seconds, with its percentiles
    page.goto(base_url + "-/actorlog/metric/ui.step")
    page.wait_for_selector("body[data-charts-drawn='true']")
    assert page.locator("#series-chart svg [aria-label='dot'] circle").count() == 3
    assert "in seconds" in page.locator("p.actorlog-counts").inner_text()


def test_pages_show_what_an_application_commits_while_it_writes(
    chromium: Any, demo_log: Path, tmp_path: Path
) -> None:
    log = tmp_path / "live.db"
    elsewhere: list[str] = []
    with ActorSystem(log) as system, serving(log) as url:
        page = offline_page(chromium, url, elsewhere)
        page.goto(url + "live/measurements")
        before = len(column(page, "seq"))
        for value in (1.0, 2.0, 3.0):
            system.metrics.observe("live.value", value)
        system.flush()

        def shown() -> bool:
            page.goto(url + "-/actorlog/metric/live.value")
            return page.locator("p.actorlog-counts").count() == 1 and "3 points" in page.locator(
                "p.actorlog-counts").inner_text()

        wait_until(shown, timeout=60, what="the committed measurements on the metric page")
        page.goto(url + "live/measurements")
        assert len(column(page, "seq")) == before + 3
        system.metrics.observe("live.value", 4.0)
        assert system.flush() > 0  # the writer is not held up by the UI reading
        page.close()
    assert elsewhere == []
    verified = run_actorlog("verify", log)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_serve_refuses_what_it_cannot_serve_in_one_line(tmp_path: Path) -> None:
    missing = serve_once(tmp_path / "nothing.db", "--port", "0")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    (line,) = missing.stderr.strip().splitlines()
    assert line.startswith("actorlog: error:") and "nothing.db" in line
    assert not (tmp_path / "nothing.db").exists()
    other = tmp_path / "other.db"
    subprocess.run(["sqlite3", str(other), "create table t(x)"], check=False)
    if other.exists():
        refused = serve_once(other, "--port", "0")
        assert refused.returncode == 2 and "not an actorlog event log" in refused.stderr


def test_serve_on_a_busy_port_says_so(tmp_path: Path, demo_log: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve_once(demo_log, "--port", str(port))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"cannot serve on 127.0.0.1:{port}" in line and "--port 0" in line


def test_datasette_serve_gets_the_plugin_through_its_entry_point(demo_log: Path) -> None:
    """Datasette's own ``datasette serve LOG`` loads actorlog's plugin (entry point ``datasette``)."""
    correlation = story_with_a_traceback(demo_log)
    datasette = Path(sys.executable).parent / "datasette"
    result = subprocess.run([str(datasette), "serve", str(demo_log), "--get", f"/-/actorlog/story/{correlation}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback (most recent call last)" in result.stdout and "actorlog-traceback" in result.stdout
    canned = subprocess.run([str(datasette), "serve", str(demo_log), "--get", "/demo/failures_by_type.json?_shape=array"],
                            capture_output=True, text=True, timeout=120)
    assert canned.returncode == 0, canned.stderr
    counted: Counter[str] = Counter()
    for row in json.loads(canned.stdout):
        counted[row["exc_type"]] += row["failures"]
    assert counted == Counter(stats(demo_log)["errors"]["error_types"])


def test_the_failure_count_the_readme_and_the_demo_suggest_equals_actorlog_stats(demo_log: Path) -> None:
    """``select plugin, exc_type, count(*) from failures group by 1, 2`` counts each failure once (issue 17)."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "sqlite-utils"), "query", str(demo_log),
         "select plugin, exc_type, count(*) as n from failures group by 1, 2"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    by_type: Counter[str] = Counter()
    by_plugin: Counter[str] = Counter()
    for row in json.loads(result.stdout):
        by_type[row["exc_type"]] += row["n"]
        by_plugin[row["plugin"]] += row["n"]
    errors = stats(demo_log)["errors"]
    assert by_type == Counter(errors["error_types"]) and by_plugin == Counter(errors["errors_by_plugin"])


def test_every_view_gives_its_rows_in_seq_order_to_plain_sql(demo_log: Path) -> None:
    """``select * from lifecycle`` (no ORDER BY), as sqlite-utils or Datasette's SQL box runs it."""
    for view in ("lifecycle", "failures", "retries", "measurements"):
        seqs = [seq for (seq,) in query(demo_log, f"SELECT seq FROM {view}")]
        assert seqs and seqs == sorted(seqs), view
    kinds = [kind for (kind,) in query(demo_log, "SELECT kind FROM lifecycle WHERE plugin = 'llm'")]
    assert kinds.index("plugin.started") < kinds.index("plugin.restarted")
