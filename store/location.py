"""Where a log lives: an SQLite file path, or a PostgreSQL URL naming a database and a schema.

``postgresql://user:secret@db.example/audit?schema=shop`` names the log in schema ``shop``
of database ``audit`` (schema ``actorlog`` when none is given). actorlog's own parameters
(``schema``, ``hold_timeout``) are taken out of the URL before libpq sees it. The password
never appears in `LogLocation.display`, so errors, reprs and logged events can name the
server safely.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import msgspec

URL_SCHEMES = ("postgresql", "postgres")
DEFAULT_SCHEMA = "actorlog"
DEFAULT_HOLD_TIMEOUT = 5.0
"""Seconds a PostgreSQL writer may hold the log's ordering lock while idle or stuck before the server ends its session."""

_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class LogLocation(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed log target: ``path`` for SQLite, or ``conninfo``/``schema`` for PostgreSQL."""

    backend: str
    """``"sqlite"`` or ``"postgresql"``."""
    display: str
    """How messages name the log: the file path, or the URL without its password."""
    path: Path | None = None
    conninfo: str = ""
    """The libpq URL (with its password, without actorlog's parameters); never shown."""
    schema: str = DEFAULT_SCHEMA
    hold_timeout: float = DEFAULT_HOLD_TIMEOUT

    @property
    def name(self) -> str:
        """A short name for files kept beside the log (witness files): the file's name, or ``db-schema``."""
        if self.path is not None:
            return self.path.name
        database = urlsplit(self.conninfo).path.lstrip("/") or "postgres"
        return f"{unquote(database)}-{self.schema}"


def is_url(target: object) -> bool:
    """Whether ``target`` is a PostgreSQL URL rather than a file path."""
    return isinstance(target, str) and target.split(":", 1)[0].lower() in URL_SCHEMES and "://" in target


def redact_url(url: str) -> str:
    """``url`` with any password removed (in the authority and in a ``password=`` parameter)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{hostport}" if user else hostport
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() != "password"]
    return _join(parts.scheme, netloc, parts.path, urlencode(query, safe="/"))


def parse_location(target: str | os.PathLike[str]) -> LogLocation:
    """Parse a log target; raises `ValueError` (one line, no password) for a malformed URL."""
    if not is_url(target):
        if str(target).split(":", 1)[0].lower() in URL_SCHEMES and ":/" in str(target):
            raise ValueError(f"{redact_url(str(target))!r} looks like a PostgreSQL URL made into a Path, which "
                             f"drops its '//': pass the URL as a str")
        path = Path(target)
        return LogLocation(backend="sqlite", display=str(path), path=path)
    url = str(target)
    try:
        parts = urlsplit(url)
        _ = parts.port  # a malformed port raises here
    except ValueError as exc:
        raise ValueError(f"{redact_url(url)!r} is not a valid PostgreSQL URL: {exc}") from None
    schema, hold = DEFAULT_SCHEMA, DEFAULT_HOLD_TIMEOUT
    kept: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema":
            schema = value
        elif key == "hold_timeout":
            try:
                hold = float(value)
            except ValueError:
                hold = -1.0
            if not 0 < hold < 86400:
                raise ValueError(
                    f"{redact_url(url)!r}: hold_timeout must be a number of seconds between 0 and 86400, got {value!r}"
                )
        else:
            kept.append((key, value))
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(
            f"{redact_url(url)!r}: schema must be a plain identifier (letters, digits, _; at most 63), got {schema!r}"
        )
    conninfo = _join("postgresql", parts.netloc, parts.path, urlencode(kept, safe="/", quote_via=quote))
    display = redact_url(conninfo)
    display += ("&" if "?" in display else "?") + f"schema={schema}"
    return LogLocation(backend="postgresql", display=display, conninfo=conninfo, schema=schema, hold_timeout=hold)


def _join(scheme: str, netloc: str, path: str, query: str) -> str:
    # urlunsplit drops the "//" of an empty authority (postgresql:///db?host=/run/pg), which libpq needs
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")
