"""A Prometheus server can scrape a running application (issue 17).

``ActorSystem(metrics_address=...)``, ``system.serve_metrics``, ``actorlog run --metrics-address``
and ``[metrics] address`` serve ``/metrics`` with prometheus_client's own server. The tests
scrape it over real HTTP and parse it with prometheus_client's parser: counters and
histogram counts are cumulative (they never go down, whatever ``max_history`` and the
window), histograms have the configured buckets, negative increments are refused, the
endpoint stops with the system, a busy port is a one-line error, and a rebuilt multi-run
export carries a ``run`` label.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from actor_helpers import read_log
from demo_helpers import ACTORLOG_CLI, finish
from actorlog.actors import ActorSystem, MetricsAddressError, MetricsOptions
from actorlog.actors.config import build_system, load_config
from actorlog.replay import rebuild_metrics, to_prometheus


def scrape(url: str) -> dict[str, Any]:
    """{family: (type, {(sample name, frozenset(labels)): value})} from one real HTTP scrape."""
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return parse(text)


def parse(text: str) -> dict[str, Any]:
    families: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in families, f"family {family.name} exported twice"
        families[family.name] = (family.type, {(s.name, frozenset(s.labels.items())): s.value for s in family.samples})
    return families


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_scrapes_are_cumulative_while_observations_go_on_and_after_the_window(tmp_path: Path) -> None:
    options = MetricsOptions(max_history=5, buckets=(0.1, 1.0, 10.0))
    with ActorSystem(tmp_path / "app.db", metrics=options, metrics_address="127.0.0.1:0") as system:
        server = system.metrics_server
        assert server is not None and server.port != 0
        run = system.run
        labels = frozenset({("run", run)})
        seen: list[tuple[float, float, float]] = []
        observed: list[float] = []
        for round_ in range(4):
            for i in range(7):  # more than max_history each round: the windowed summary is capped, the export not
                value = [0.05, 0.5, 5.0, 50.0][(round_ + i) % 4]
                system.metrics.observe("http.latency", value)
                observed.append(value)
                system.metrics.increment("jobs.done")
                with system.monitor.time("job.run"):
                    pass
            families = scrape(server.url)
            kind, samples = families["http_latency"]
            assert kind == "histogram"
            count = samples[("http_latency_count", labels)]
            total = samples[("http_latency_sum", labels)]
            jobs = families["jobs_done"][1][("jobs_done_total", labels)]
            seen.append((count, total, jobs))
            assert count == len(observed) and math.isclose(total, math.fsum(observed))
            assert jobs == len(observed)
            # the buckets asked for, cumulative, +Inf last and equal to the count
            buckets = {dict(k[1])["le"]: v for k, v in samples.items() if k[0] == "http_latency_bucket"}
            assert buckets == {
                "0.1": observed.count(0.05), "1.0": observed.count(0.05) + observed.count(0.5),
                "10.0": len(observed) - observed.count(50.0), "+Inf": len(observed),
            }
            # a timed operation: a histogram in seconds, with its calls as a counter
            timed_kind, timed = families["job_run_seconds"]
            assert timed_kind == "histogram"
            assert timed[("job_run_seconds_count", labels)] == len(observed)
            assert families["job_run_calls"][1][("job_run_calls_total", labels)] == len(observed)
        assert all(a <= b for a, b in zip(seen, seen[1:]))  # no sample ever went down
        # once the window has passed, the windowed summary is empty; the export still counts everything
        later = time.time() + 3600
        assert system.metric_summary("http.latency", as_of=later, window_seconds=60).count == 0
        assert system.metric_summary("http.latency", window_seconds=3600).count == 5  # max_history
        families = scrape(server.url)
        assert families["http_latency"][1][("http_latency_count", labels)] == len(observed)
        assert not any(kind == "summary" for kind, _ in families.values())
        url = server.url
    # the endpoint stops with the system
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=30)
    # what was scraped is what the log replays to
    assert parse(to_prometheus(rebuild_metrics(tmp_path / "app.db"))) == families


def test_negative_counter_increments_are_refused_at_the_caller(tmp_path: Path) -> None:
    with ActorSystem(tmp_path / "app.db") as system:
        system.metrics.increment("jobs", 2)
        with pytest.raises(ValueError, match=r"counter 'jobs': an increment must be >= 0, got -1"):
            system.metrics.increment("jobs", -1)
        text = system.prometheus()
    assert parse(text)["jobs"][1] == {("jobs_total", frozenset({("run", system.run)})): 2.0}
    assert [r.event.value for r in read_log(tmp_path / "app.db", kinds=["counter.incremented"])] == [2.0]


def test_serve_metrics_on_any_free_port_and_the_buckets_of_one_metric(tmp_path: Path) -> None:
    options = MetricsOptions(histogram_buckets={"size.bytes": (1024.0, 1048576.0)})
    with ActorSystem(tmp_path / "app.db", metrics=options) as system:
        assert system.metrics_server is None
        server = system.serve_metrics("127.0.0.1", 0)
        system.metrics.observe("size.bytes", 2048)
        system.metrics.observe("other", 0.2)
        families = scrape(server.url)
        with pytest.raises(RuntimeError, match="already serves metrics"):
            system.serve_metrics("127.0.0.1", 0)
    run = frozenset({("run", system.run)})
    size = {dict(k[1])["le"]: v for k, v in families["size_bytes"][1].items() if k[0] == "size_bytes_bucket"}
    assert size == {"1024.0": 0.0, "1.048576e+06": 1.0, "+Inf": 1.0}
    other = [dict(k[1])["le"] for k in families["other"][1] if k[0] == "other_bucket"]
    assert other[:3] == ["0.005", "0.01", "0.025"] and other[-1] == "+Inf"  # the default buckets, in seconds
    assert families["other"][1][("other_count", run)] == 1.0


def test_a_busy_port_or_a_bad_address_is_a_clear_error(tmp_path: Path, busy_port: int) -> None:
    with pytest.raises(MetricsAddressError, match=rf"cannot serve metrics on 127.0.0.1:{busy_port}: .*port 0"):
        ActorSystem(tmp_path / "app.db", metrics_address=f"127.0.0.1:{busy_port}")
    (stopped,) = read_log(tmp_path / "app.db", kinds=["run.stopped"])
    assert stopped.event.clean is False and "metrics endpoint" in stopped.event.reason
    for address, problem in (("9464", "HOST:PORT"), ("localhost:http", "port must be a number"),
                             (":9464", "has no host")):
        with pytest.raises(MetricsAddressError, match=problem):
            ActorSystem(tmp_path / "other.db", metrics_address=address)
    assert not (tmp_path / "other.db").exists()  # refused before the log is opened


def test_a_rebuilt_multi_run_export_carries_a_run_label(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    runs = []
    for count in (2, 3):
        with ActorSystem(path) as system:
            for _ in range(count):
                system.metrics.increment("jobs")
                system.metrics.observe("latency", 0.2)
            live = parse(system.prometheus())
        runs.append(system.run)
        assert live["jobs"][1] == {("jobs_total", frozenset({("run", system.run)})): float(count)}
        assert parse(to_prometheus(rebuild_metrics(path, run=system.run))) == live
    rebuilt = parse(to_prometheus(rebuild_metrics(path)))
    assert rebuilt["jobs"][1] == {
        ("jobs_total", frozenset({("run", runs[0])})): 2.0, ("jobs_total", frozenset({("run", runs[1])})): 3.0,
    }
    assert rebuilt["latency"][1][("latency_count", frozenset({("run", runs[1])}))] == 3.0


LLM = '[plugins.llm]\nclass = "actorlog.actors.examples.llm:LLMPlugin"\nconfig = { backend = "offline" }\n'


def config_file(tmp_path: Path, address: str | None) -> Path:
    config = tmp_path / "app.toml"
    metrics = f'[metrics]\naddress = "{address}"\n' if address else ""
    config.write_text(
        'log = "app.db"\n' + metrics
        + '[plugins.llm]\nclass = "actorlog.actors.examples.llm:LLMPlugin"\nconfig = { backend = "offline" }\n'
    )
    return config


def scrape_a_run(tmp_path: Path, *args: str, address: str | None) -> dict[str, Any]:
    process = subprocess.Popen([str(ACTORLOG_CLI), "run", str(config_file(tmp_path, address)), *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                               env={**os.environ})
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith("actorlog run: started"), line
        url = line.split("metrics at ", 1)[1].split(")", 1)[0]
        families = scrape(url)
        process.terminate()
        result = finish(process, timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert result.returncode == 0, result.stderr
    return families


def test_actorlog_run_serves_metrics_from_the_option_or_the_config_file(tmp_path: Path) -> None:
    from_option = scrape_a_run(tmp_path, "--metrics-address", "127.0.0.1:0", address=None)
    from_file = scrape_a_run(tmp_path, address="127.0.0.1:0")
    for families in (from_option, from_file):  # answered 200 in the exposition format (an idle system may have none)
        assert all(("run" in dict(labels)) for _, samples in families.values() for _, labels in samples)


def test_actorlog_run_on_a_busy_port_says_so_in_one_line(tmp_path: Path, busy_port: int) -> None:
    config = config_file(tmp_path, None)
    result = subprocess.run([str(ACTORLOG_CLI), "run", str(config), "--metrics-address", f"127.0.0.1:{busy_port}"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"cannot serve metrics on 127.0.0.1:{busy_port}" in line
    bad = subprocess.run([str(ACTORLOG_CLI), "run", str(config_file(tmp_path, "nowhere"))],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert bad.returncode == 2 and "key `metrics.address`" in bad.stderr and "Traceback" not in bad.stderr


def test_the_config_file_sets_the_address_and_the_buckets(tmp_path: Path) -> None:
    config = tmp_path / "app.toml"
    config.write_text('log = "app.db"\n[metrics]\naddress = "127.0.0.1:0"\nbuckets = [0.1, 1.0]\n'
                      'histogram_buckets = { "size.bytes" = [1024, 4096] }\n' + LLM)
    system = build_system(load_config(config))
    with system:
        assert system.metrics_server is not None
        system.metrics.observe("latency", 0.5)
        system.metrics.observe("size.bytes", 2000)
        families = scrape(system.metrics_server.url)
    latency = {dict(k[1])["le"]: v for k, v in families["latency"][1].items() if k[0] == "latency_bucket"}
    assert latency == {"0.1": 0.0, "1.0": 1.0, "+Inf": 1.0}
    size = {dict(k[1])["le"]: v for k, v in families["size_bytes"][1].items() if k[0] == "size_bytes_bucket"}
    assert size == {"1024.0": 0.0, "4096.0": 1.0, "+Inf": 1.0}
    (configured,) = read_log(tmp_path / "app.db", kinds=["metrics.configured"])
    assert configured.event.buckets == [0.1, 1.0]  # recorded, so replay exports the same buckets


@pytest.mark.parametrize(("line", "problem"), [
    ("buckets = [1.0, 0.5]", "key `metrics.buckets`: metrics option buckets: bucket bounds must be strictly increasing"),
    ("buckets = []", "key `metrics.buckets`"),
    ('histogram_buckets = { "x" = [2, 1] }', "key `metrics.histogram_buckets`"),
    ('address = "localhost"', "key `metrics.address`"),
])
def test_bad_metrics_settings_are_refused_by_check_naming_the_key(tmp_path: Path, line: str, problem: str) -> None:
    config = tmp_path / "app.toml"
    config.write_text(f'log = "app.db"\n[metrics]\n{line}\n' + LLM)
    result = subprocess.run([str(ACTORLOG_CLI), "run", "--check", str(config)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert problem in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "app.db").exists()
