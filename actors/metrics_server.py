"""The ``/metrics`` endpoint a Prometheus server scrapes: ``prometheus_client``'s own HTTP server.

The server runs in its own thread (``prometheus_client.start_http_server``); each scrape
reads the live statistics (``read``), so it answers what the log has committed, the same
fold ``rebuild(log, run=...)`` computes. `MetricsServer.close` stops it; the actor system
does so when it stops.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import Metric

from actorlog.actors.errors import MetricsAddressError
from actorlog.replay.prometheus import registry_of

DEFAULT_PORT = 9464
"""The port Prometheus' exporter registry suggests for application exporters like this one."""


def parse_address(address: str) -> tuple[str, int]:
    """``"HOST:PORT"`` (``"[::1]:9464"`` for IPv6; port 0: any free port) as (host, port);
    `MetricsAddressError` names what is wrong."""
    if not isinstance(address, str) or ":" not in address:
        raise MetricsAddressError(f"metrics address must be HOST:PORT (e.g. 127.0.0.1:{DEFAULT_PORT}), got {address!r}")
    host, _, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise MetricsAddressError(f"metrics address {address!r} has no host (e.g. 127.0.0.1:{DEFAULT_PORT})")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise MetricsAddressError(f"metrics address {address!r}: the port must be a number from 0 to 65535")
    return host, int(port_text)


class MetricsServer:
    """Serves ``/metrics`` (text exposition format) on ``host:port`` until `close`."""

    def __init__(self, read: Callable[[], Iterable[Metric]], host: str, port: int) -> None:
        if not 0 <= port <= 65535:
            raise MetricsAddressError(f"metrics port must be from 0 to 65535, got {port}")
        try:
            server, thread = start_http_server(port, addr=host, registry=registry_of(read))
        except OSError as exc:
            raise MetricsAddressError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc} "
                f"(choose another --metrics-address, or port 0 for any free port)"
            ) from None
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self._closed = False
        self.host = host
        self.port: int = server.server_address[1]
        """The port it listens on (the one chosen for port 0)."""

    @property
    def url(self) -> str:
        """Where Prometheus scrapes: ``http://HOST:PORT/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop listening and wait for the server's thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
