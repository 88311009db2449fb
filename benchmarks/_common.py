"""Helpers shared by the benchmark scripts: memory sampling, result tables and JSON output."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Current resident set size of this process (Linux)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * _PAGE


class RssSampler:
    """Samples RSS every ``interval`` seconds in a thread; reports start and peak."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.start = rss_bytes()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def run_in_threads(target: Callable[..., object], arguments: list[tuple[object, ...]]) -> None:
    """Run ``target`` once per argument tuple, each in its own thread, and wait for all."""
    threads = [threading.Thread(target=target, args=args) for args in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@dataclass
class Figure:
    """One measured figure beside its reference from the same run."""

    name: str
    value: float
    unit: str
    reference: float | None
    reference_name: str
    target: str
    met: bool | None

    @property
    def ratio(self) -> float | None:
        return self.value / self.reference if self.reference else None


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{platform.system()} {platform.machine()}, {time.strftime('%Y-%m-%d')}"
    )


def print_table(title: str, figures: list[Figure]) -> None:
    print(f"\n{title}\n{machine()}\n")
    header = f"{'case':<44} {'actorlog':>14} {'reference':>14} {'ratio':>7}  {'target':<34} result"
    print(header)
    print("-" * len(header))
    for fig in figures:
        ref = _number(fig.reference) if fig.reference is not None else "-"
        ratio = f"{fig.ratio:.2f}x" if fig.ratio is not None else "-"
        result = "-" if fig.met is None else ("met" if fig.met else "MISSED")
        print(f"{fig.name:<44} {_number(fig.value):>14} {ref:>14} {ratio:>7}  {fig.target:<34} {result}")
        if fig.reference is not None:
            print(f"{'':<44} {fig.unit:>14} {fig.reference_name:>14}")
    sys.stdout.flush()


def _number(value: float) -> str:
    """Large figures as whole numbers, small ones (milliseconds, ratios) with two decimals."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--json PATH``: also write the figures as JSON (read by ``run_all.py``)."""
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures to this JSON file")


def write_json(path: Path, title: str, figures: list[Figure]) -> None:
    """Write ``figures`` (with their ratios) and the script's arguments to ``path`` as JSON."""
    document = {
        "title": title,
        "script": Path(sys.argv[0]).name,
        "argv": sys.argv[1:],
        "figures": [{**asdict(fig), "ratio": fig.ratio} for fig in figures],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def report(title: str, figures: list[Figure], json_path: Path | None) -> None:
    """Print the table of ``figures`` and, when ``json_path`` is given, write them there as JSON."""
    print_table(title, figures)
    if json_path is not None:
        write_json(json_path, title, figures)
