"""``actorlog serve LOG``: the audit UI, Datasette with actorlog's plugin, over a log opened read-only.

Datasette is the ``ui`` extra (``pip install 'actorlog[ui]'``); without it the command says
so in one line. The log is checked first (an actorlog event log, readable), then served with
Datasette's read-only connections (``mode=ro``): an application may go on writing it (WAL),
and each page shows what was committed when it was asked for.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path
from typing import Any

import click

from actorlog.replay.cli import friendly_errors
from actorlog.store import EventStore

DEFAULT_PORT = 8001
"""Datasette's own default port."""


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: any free port), or a one-line error."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listener = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise ValueError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    try:
        listener.bind((host, port))
        listener.listen(128)
    except OSError as exc:
        listener.close()
        raise ValueError(
            f"cannot serve on {host}:{port}: {exc.strerror or exc} (choose another --port, or --port 0 for any free port)"
        ) from None
    return listener


@click.command()
@click.argument("log", type=click.Path(path_type=str))
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="The port to listen on (0: any free port; the line printed says which).")
@friendly_errors
def serve(log: str, host: str, port: int) -> None:
    """Open LOG read-only in Datasette, with actorlog's audit UI: ordered views, canned queries,
    timelines of a correlation or a run, and charts. Runs until Ctrl-C.

    Needs the ui extra: pip install 'actorlog[ui]'. `datasette serve LOG` gets the same plugin.

    \b
    Examples:
      actorlog serve actorlog-demo.db
      actorlog serve app.db --port 9000 --host 0.0.0.0
    """
    EventStore.open_readonly(log).close()  # an actorlog event log we can read, or a one-line error
    try:
        # imported here: Datasette is an optional extra, and every other command works without it
        import uvicorn
        from datasette.app import Datasette
    except ImportError:
        raise ValueError("actorlog serve needs Datasette: pip install 'actorlog[ui]'") from None
    datasette: Any = Datasette([str(Path(log))], settings={"sql_time_limit_ms": 5000, "suggest_facets": False})
    # (suggested facets would run a query per column of every page: seconds on a large log)
    listener = _listen(host, port)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(datasette.invoke_startup())
    finally:
        loop.close()
    bound = listener.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"actorlog serve: {log} (read-only) at http://{shown}:{bound}/ ; stop with Ctrl-C", err=True)
    sys.stderr.flush()
    server = uvicorn.Server(uvicorn.Config(datasette.app(), log_level="warning", lifespan="off"))
    server.run(sockets=[listener])
    click.echo("actorlog serve: stopped", err=True)
