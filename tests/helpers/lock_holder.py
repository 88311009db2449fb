"""Hold an SQLite lock on a log until told to let go.

Usage: lock_holder.py PATH MODE

MODE is ``immediate`` (BEGIN IMMEDIATE: the write lock), ``exclusive`` (BEGIN EXCLUSIVE)
or ``exclusive-mode`` (``PRAGMA locking_mode=EXCLUSIVE`` then a write transaction: in WAL
mode this shuts readers out as well). Prints ``locked`` once the lock is held, then waits
until a line arrives on stdin (or stdin closes), rolls back and exits 0.
"""

from __future__ import annotations

import sqlite3
import sys


def main() -> None:
    path, mode = sys.argv[1], sys.argv[2]
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    if mode == "immediate":
        conn.execute("BEGIN IMMEDIATE")
    elif mode == "exclusive":
        conn.execute("BEGIN EXCLUSIVE")
    elif mode == "exclusive-mode":
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("SELECT count(*) FROM events").fetchone()
    else:
        sys.exit(f"unknown mode {mode!r}")
    sys.stdout.write("locked\n")
    sys.stdout.flush()
    sys.stdin.readline()
    conn.rollback()
    conn.close()


if __name__ == "__main__":
    main()
