"""A PostgreSQL server for the benchmarks' PostgreSQL cases: the one ``--postgres URL`` or
``$ACTORLOG_BENCH_POSTGRES`` names, or a throwaway one started (as the ``postgres`` user when
run as root) in a temporary directory and removed afterwards."""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

ENV = "ACTORLOG_BENCH_POSTGRES"


def add_postgres_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--postgres", metavar="URL", default=os.environ.get(ENV),
                        help=f"a PostgreSQL server (libpq URL) for the PostgreSQL cases (default: ${ENV}, else a "
                             f"throwaway server); 'off' skips them")


@contextlib.contextmanager
def postgres_logs(url: str | None) -> Iterator[Callable[[], str] | None]:
    """Yield a function returning the URL of a new, empty log (a fresh schema), or None when
    no server can be had (the PostgreSQL cases are then skipped, and say so)."""
    if url == "off":
        yield None
        return
    if url:
        yield lambda: _with_schema(url)
        return
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if not binaries:
        print("no PostgreSQL server binaries (apt-get install -y postgresql): the PostgreSQL cases are skipped")
        yield None
        return
    bin_dir = Path(binaries[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="actorlog-bench-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = str(folder / "data")
    try:
        subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                        "--no-sync"], check=True, capture_output=True)
        # fsync stays on (the server's default): its commits survive power loss, which SQLite's
        # synchronous=NORMAL ones may not, so PostgreSQL does more per commit than its reference
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", data, "-l", str(folder / "log"), "-w", "-o",
                        f"-k {folder} -p {port} -c listen_addresses=''", "start"], check=True, capture_output=True)
        yield lambda: _with_schema(f"postgresql:///postgres?host={folder}&port={port}&user=postgres")
    finally:
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _with_schema(url: str) -> str:
    return url + ("&" if "?" in url else "?") + "schema=bench_" + secrets.token_hex(4)
