"""Run a command and write its own peak RSS to a file: ``measure_rss.py RSS_FILE COMMAND ARGS...``.

A child's ``ru_maxrss`` starts from its parent's peak RSS when it forks (Linux copies the
memory map's high-water mark), so a command forked straight from a test process that
has grown large looks large too. Forked from this small process instead, its figure is
its own. Standard streams are passed through; the exit status is the command's (a signal
death is passed on as the same signal).
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    rss_file, command = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        os.execvp(command[0], command)
    _, status, usage = os.wait4(pid, 0)
    with open(rss_file, "w") as out:
        out.write(str(usage.ru_maxrss * 1024))  # KiB on Linux
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
