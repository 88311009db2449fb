"""Hold a PostgreSQL log's ordering lock the way a writer does mid-commit, then wait (to be frozen).

Usage: pg_lock_holder.py URL [idle|copy]

Opens actorlog's own writer connection, begins a group commit (which takes the lock),
prints ``locked`` and waits for stdin to close. The test freezes it with SIGSTOP. ``idle``
(the default): frozen between two statements of the transaction; ``copy``: frozen with the
group commit's COPY open, the server waiting for its data.
"""

from __future__ import annotations

import sys

from actorlog.store.location import parse_location
from actorlog.store.postgres_backend import PostgresWriter


def main() -> None:
    writer = PostgresWriter(parse_location(sys.argv[1]), busy_timeout=5.0, synchronous="NORMAL", run="frozen")
    writer.open()
    if (sys.argv[2] if len(sys.argv) > 2 else "idle") == "copy":
        writer.begin_insert()
    else:
        writer.begin()
    print("locked", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
