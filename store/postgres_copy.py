"""A group commit's COPY and its COMMIT in one round trip, through psycopg's libpq wrapper.

psycopg's ``Cursor.copy`` takes a statement that is a COPY and nothing else, so a group
commit cost three waits for the server: the lock, the end of the COPY, the COMMIT. libpq
also runs a COPY that is followed by more statements in one query string; the results
come after the data's end. `OpenCopy` sends ``COPY ...; SELECT pg_notify(...); COMMIT``,
so sending the end of the data commits. A wait for the server is also a wait for the
interpreter lock (up to its 5 ms switch interval while producers encode), so one wait less
per group commit is worth more than the round trip itself.

Errors are psycopg's own classes (`psycopg.errors.lookup` by SQLSTATE; a lost connection
is an `OperationalError` and the connection is then ``broken``), as through a cursor.
"""

from __future__ import annotations

import select
from typing import Any



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
        self.results_before: list[Any] = []
        # the notify names the newest seq, which this transaction holds the lock for
        query = (f"{before}COPY events ({columns}) FROM STDIN; "
                 f"SELECT pg_notify('{channel}', (SELECT max(seq) FROM events)::text); COMMIT")
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
            self._wait(write=True)

    def finish(self) -> None:
        """End the data, which commits; raise the first error the statements gave."""
        pgconn = self._pgconn
        while pgconn.put_copy_end() == 0:
            self._wait(write=True)
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
                self._wait(write=True)
            self._flush()
            self._drain()
        except self._psycopg.Error:
            pass  # a lost connection commits nothing either

    def _drain(self) -> None:
        while self._next_result() is not None:
            pass

    def _next_result(self) -> Any:
        pgconn = self._pgconn
        while pgconn.is_busy():
            self._wait(write=False)
            pgconn.consume_input()
        return pgconn.get_result()

    def _flush(self) -> None:
        pgconn = self._pgconn
        while pgconn.flush() == 1:
            if self._wait(write=True):
                pgconn.consume_input()  # the server may be answering (an error) while we send

    def _wait(self, *, write: bool) -> bool:
        """Wait until the socket can be read (or written, when ``write``); True when it can be read."""
        fd = self._pgconn.socket
        readable, _, _ = select.select([fd], [fd] if write else [], [])
        return bool(readable)

    def _error(self, result: Any) -> Exception:
        psycopg = self._psycopg
        if result is None:
            lost: Exception = psycopg.OperationalError(
                self._pgconn.error_message.decode(errors="replace").strip() or "the server sent no result for the COPY"
            )
            return lost
        message = (result.error_message or b"").decode(errors="replace").strip()
        sqlstate = (result.error_field(self._pq.DiagnosticField.SQLSTATE) or b"").decode()
        try:
            kind = psycopg.errors.lookup(sqlstate) if sqlstate else psycopg.OperationalError
        except KeyError:
            kind = psycopg.DatabaseError
        error: Exception = kind(message)
        return error
