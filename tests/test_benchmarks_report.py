"""benchmarks/run_all.py runs benchmark scripts in subprocesses and writes a Markdown report.

Tiny sizes only (the hidden ``--tiny`` option); nothing here asserts on timings.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN_ALL = ROOT / "benchmarks" / "run_all.py"

# append.py's figures at --rss-events 0 (the memory run is skipped): every one has a reference.
APPEND_FIGURES = (
    "single-event appends, 1 producer",
    "single-event appends, 2 producers",
    "batched appends (100/call), 1 producer",
    "single-event appends, signed (checkpoints every 10,000 / 10 s)",
    "verify with the public key, 2,000 events",
    "PostgreSQL, 1 writer, group commits of 1000",
    "PostgreSQL, 3 writer processes, one log",
    "PostgreSQL tail --follow, commit to print p50 (ms)",
    "p99 (ms)",
)
"""...and the PostgreSQL cases, each beside SQLite's in the same run (p99 has no reference)."""
TABLE_HEADER = "| Benchmark | Figure | actorlog | Unit | Reference | Reference value | Ratio | Target | Result |"


def run_all(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUN_ALL), *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env=env,
    )


def table_rows(report: str) -> list[list[str]]:
    """The cells of every row of the figures table, after its header and separator."""
    lines = report.splitlines()
    start = lines.index(TABLE_HEADER) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


@pytest.mark.slow
def test_quick_append_report_has_machine_header_and_a_row_per_figure(tmp_path: Path, postgres_server: Any) -> None:
    output = tmp_path / "RESULTS.md"
    result = run_all("--tiny", "--only", "append", "--output", str(output),
                     env={**os.environ, "ACTORLOG_BENCH_POSTGRES": postgres_server.url()})
    assert result.returncode == 0, result.stdout + result.stderr
    report = output.read_text()

    assert report.startswith("# actorlog benchmark results")
    assert "NOT the" in report and "reference figures" in report  # marked as a smoke run
    for label in ("**Date (UTC):**", "**CPU:**", "**Platform:**", "**Python:**", "**SQLite:**", "**Packages:**"):
        assert label in report
    assert re.search(r"\*\*SQLite:\*\* \d+\.\d+\.\d+", report)
    for package in ("pykka", "msgspec", "sqlite-utils"):
        assert re.search(rf"{package} \d+\.\d+", report), package

    rows = table_rows(report)
    assert [row[1] for row in rows] == list(APPEND_FIGURES)
    for row in rows:
        benchmark, _, value, unit, reference_name, reference, ratio, target, verdict = row
        assert benchmark == "append"
        assert re.fullmatch(r"[\d,.]+", value) and unit in ("events/s", "ms")
        if reference_name in ("", "-"):  # the p99 beside its p50
            continue
        assert reference_name in ("raw sqlite3", "unsigned appends", "verify without a key", "SQLite",
                                  "SQLite, 3 procs", "SQLite, polled")
        assert re.fullmatch(r"[\d,.]+", reference)
        assert re.fullmatch(r"[\d,.]+x", ratio)
        assert target.startswith((">=", "<=")) and verdict in ("met", "**MISSED**")

    assert "## Missed targets" in report and "## How to rerun" in report
    assert re.search(r"`\S*python\S* benchmarks/append\.py --events 2000 --rss-events 0 --verify-events 2000 --tail-samples 10 --repeat 1`", report)


def test_a_failing_script_is_named_and_the_report_still_written(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    bad_size = "append=--events not-a-number"
    result = run_all("--tiny", "--only", "append", "--script-args", bad_size, "--output", str(output))
    assert result.returncode != 0
    assert "benchmarks/append.py" in result.stderr and "exited with status 2" in result.stderr
    report = output.read_text()
    assert "script failed" in report
    assert "append: no figures, `benchmarks/append.py` exited with status 2" in report
    assert "invalid int value" in report  # the script's own error, from its output
