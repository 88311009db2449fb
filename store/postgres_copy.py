"""A group commit in two waits for the server, through psycopg's libpq wrapper (``conn.pgconn``).

psycopg's ``Cursor.copy`` takes a statement that is a COPY and nothing else, so a group
commit cost four waits for the server: BEGIN with the lock and the last row, the start of
the COPY, its end, the COMMIT. libpq also runs a COPY among other statements of one query
string, their results coming after the data's end. `OpenCopy` sends ``BEGIN; lock; SELECT
last row; COPY ...; SELECT pg_notify(...); COMMIT``: one wait until the server takes data
(with the last row, which the chain goes on from), and one after the end of the data,
which commits. A wait for the server is also a wait for the interpreter lock (up to its
5 ms switch interval while producers encode), so each wait saved is worth more than its
round trip.

Errors are psycopg's own classes (`psycopg.errors.lookup` by SQLSTATE; a lost connection
is an `OperationalError` and the connection is then ``broken``), as through a cursor.
"""

from __future__ import annotations

import select
from typing import Any

_OPERATIONAL = ("08", "53", "55", "57", "58")
"""SQLSTATE classes psycopg raises as OperationalError (connection, resources, object state,
operator intervention, system)."""


class OpenCopy:
    """A COPY into ``events`` whose query string ends with the NOTIFY and the COMMIT."""

    def __init__(self, conn: Any, columns: str, channel: str, before: str = "") -> None:
        """Send the query string, ``before`` (statements whose results are kept in
        `results_before`, such as the BEGIN and the lock) first, and wait until the server takes data."""
        import psycopg
        from psycopg import pq

        self._psycopg = psycopg
        self._pq = pq
        self._pgconn = conn.pgconn
        # poll, not select: a process with a thousand files open has sockets past select's limit
        self._readable, self._writable = select.poll(), select.poll()
        self._readable.register(self._pgconn.socket, select.POLLIN)
        self._writable.register(self._pgconn.socket, select.POLLIN | select.POLLOUT)
        self.results_before: list[Any] = []
        # the notify names the newest seq, which this transaction holds the lock for
        query = (f"{before}COPY events ({columns}) FROM STDIN; "
                 f"SELECT pg_notify('{channel}', (SELECT coalesce(max(seq), 0) FROM events)::text); COMMIT")
        self._pgconn.send_query(query.encode())
        self._flush()
        while (result := self._next_result()) is not None and result.status != pq.ExecStatus.COPY_IN:
            if result.status == pq.ExecStatus.FATAL_ERROR:  # the server skips the statements after it
                error = self._error(result)
                self._drain()
                raise error
            self.results_before.append(result)
        if result is None:
            raise self._error(None)

    def write(self, data: bytes) -> None:
        """Queue COPY data (whole text lines). libpq sends what the socket takes without
        waiting; the rest goes with the end (`finish`), so the data costs no wait of its own."""
        pgconn = self._pgconn
        while pgconn.put_copy_data(data) == 0:  # libpq could not queue it: wait until it can
            self._wait_writable()

    def finish(self) -> None:
        """End the data, which commits; raise the first error the statements gave. Whatever
        else goes wrong once the end may have been sent leaves the outcome unknown: it is
        raised as a lost connection (the connection closed), which the writer resolves."""
        try:
            self._finish()
        except self._psycopg.Error:
            raise
        except Exception as exc:
            self._pgconn.finish()
            raise self._psycopg.OperationalError(f"the end of a COPY could not be confirmed: {exc!r}") from exc

    def _finish(self) -> None:
        pgconn = self._pgconn
        while pgconn.put_copy_end() == 0:
            self._wait_writable()
        self._flush()
        error = None
        while (result := self._next_result()) is not None:
            if error is None and result.status == self._pq.ExecStatus.FATAL_ERROR:
                error = self._error(result)
        if error is not None:
            raise error

    def abort(self) -> None:
        """End the COPY with an error, so nothing of it is committed; never raises."""
        try:
            while self._pgconn.put_copy_end(b"actorlog: the group commit was abandoned") == 0:
                self._wait_writable()
            self._flush()
            self._drain()
        except Exception:  # noqa: BLE001 - a lost connection (any error of it) commits nothing either
            pass

    def _drain(self) -> None:
        while self._next_result() is not None:
            pass

    def _next_result(self) -> Any:
        pgconn = self._pgconn
        while pgconn.is_busy():
            self._readable.poll()
            pgconn.consume_input()
        return pgconn.get_result()

    def _flush(self) -> None:
        while self._pgconn.flush() == 1:
            self._wait_writable()

    def _wait_writable(self) -> None:
        """Wait until the socket takes more, reading what the server sends meanwhile (a notice,
        an error) so that neither side waits for the other."""
        if any(events & select.POLLIN for _, events in self._writable.poll()):
            self._pgconn.consume_input()

    def _error(self, result: Any) -> Exception:
        psycopg = self._psycopg
        if result is None:
            lost: Exception = psycopg.OperationalError(
                self._pgconn.error_message.decode(errors="replace").strip() or "the server sent no result for the COPY"
            )
            return lost
        field = self._pq.DiagnosticField
        # what psycopg's own errors say: the primary message (no "ERROR:" prefix), else the whole text
        message = (result.error_field(field.MESSAGE_PRIMARY) or result.error_message or b"").decode(
            errors="replace").strip()
        sqlstate = (result.error_field(field.SQLSTATE) or b"").decode()
        try:
            kind = psycopg.errors.lookup(sqlstate) if sqlstate else psycopg.OperationalError
        except KeyError:  # a code psycopg has no class for: its class's kind, as psycopg reads it
            kind = psycopg.OperationalError if sqlstate[:2] in _OPERATIONAL else psycopg.DatabaseError
        error = kind(message)
        if sqlstate and not error.sqlstate:
            error.sqlstate = sqlstate  # as psycopg does for a code it has no class for
        return error  # type: ignore[no-any-return]
