"""A throwaway PostgreSQL server for the tests, started by them (see ../shared/POSTGRES.md).

``ACTORLOG_TEST_POSTGRES`` may name an existing server instead (a libpq URL of a role that
may create schemas). Without either, the PostgreSQL tests are skipped, unless
``ACTORLOG_REQUIRE_POSTGRES=1`` (as ``.ci/run`` sets), when they fail.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

URL_ENV = "ACTORLOG_TEST_POSTGRES"
REQUIRE_ENV = "ACTORLOG_REQUIRE_POSTGRES"


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server binaries, if any."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """A server in a temporary directory, on a unix socket there and on 127.0.0.1:port."""

    def __init__(self, *, settings: dict[str, str] | None = None) -> None:
        self.bin = postgres_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL's server binaries (initdb, pg_ctl) are not installed: "
                               "apt-get install -y postgresql")
        self.dir = Path(tempfile.mkdtemp(prefix="actorlog-pg-"))
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.dir, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self.settings = {"listen_addresses": "127.0.0.1", "max_connections": "300", "fsync": "off",
                         **(settings or {})}
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        assert self.bin is not None
        subprocess.run([*self._as, str(self.bin / tool), *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = f"-k {self.dir} -p {self.port} " + " ".join(f"-c {k}={v}" for k, v in self.settings.items())
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"), "-w", "-o", options,
                  "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def tcp_base(self) -> str:
        """The server over TCP as a URL without a query, to which ``?schema=...`` can be added."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, schema: str | None = None, *, tcp: bool = False, **params: str) -> str:
        """A libpq URL of this server's ``postgres`` database, for the log in ``schema``."""
        host = f"127.0.0.1:{self.port}" if tcp else ""
        query = "" if tcp else f"host={self.dir}&port={self.port}&"
        query += "user=postgres" + (f"&schema={schema}" if schema else "")
        query += "".join(f"&{k}={v}" for k, v in params.items())
        return f"postgresql://{host}/postgres?{query}"


class ExistingServer:
    """A server named by ``ACTORLOG_TEST_POSTGRES``."""

    def __init__(self, url: str) -> None:
        self.base = url

    def url(self, schema: str | None = None, *, tcp: bool = False, **params: str) -> str:
        """The base URL with ``schema`` and ``params``; with ``tcp``, the same server on 127.0.0.1."""
        base = self._over_tcp() if tcp else self.base
        joiner = "&" if "?" in base else "?"
        query = (f"schema={schema}" if schema else "") + "".join(f"&{k}={v}" for k, v in params.items())
        return base + (joiner + query.lstrip("&") if query else "")

    def tcp_base(self) -> str:
        """The server over TCP as a URL without a query, to which ``?schema=...`` can be added."""
        from urllib.parse import parse_qsl, urlsplit

        parts = urlsplit(self.base)
        query = dict(parse_qsl(parts.query))
        user = parts.username or query.get("user", "postgres")
        port = parts.port or int(query.get("port", "5432"))
        return f"postgresql://{user}@127.0.0.1:{port}{parts.path or '/postgres'}"

    def _over_tcp(self) -> str:
        from urllib.parse import parse_qsl, urlencode, urlsplit

        parts = urlsplit(self.base)
        query = dict(parse_qsl(parts.query))
        port = parts.port or int(query.pop("port", "5432"))
        query.pop("host", None)
        user = f"{parts.username}@" if parts.username else ""
        return f"postgresql://{user}127.0.0.1:{port}{parts.path or '/postgres'}?{urlencode(query)}"


def new_schema() -> str:
    return "t_" + secrets.token_hex(6)


def admin(url: str) -> Any:
    """A plain autocommit psycopg connection (the test's own, not actorlog's) to the server of ``url``."""
    import psycopg

    from actorlog.store.location import parse_location

    location = parse_location(url)
    conn = psycopg.connect(location.conninfo, autocommit=True)
    conn.execute(f'SET search_path TO "{location.schema}"')
    return conn
