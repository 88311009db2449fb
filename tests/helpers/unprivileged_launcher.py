"""Run the sandbox launcher as this (unprivileged) user, and print what it reported and what its program saw.

Usage: unprivileged_launcher.py LAUNCHER_PY

Only the standard library: it runs under any Python 3.9+ the unprivileged user can execute,
as the launcher itself does. The program prints its uid, its NoNewPrivs flag, what /tmp
holds and how many processes /proc lists. One JSON line: ``{"status": [...], "stdout": "..."}``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

PROGRAM = "id -u; grep NoNewPrivs /proc/self/status; ls -A /tmp; ls /proc | grep -c '^[0-9]'"


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as file:
        source = file.read()
    scratch = tempfile.mkdtemp(prefix="actorlog-sandbox-")
    status_r, status_w = os.pipe()
    spec = {
        "argv": ["sh", "-c", PROGRAM], "limits": [["RLIMIT_NPROC", 64, 64]], "status_fd": status_w,
        "scratch": scratch, "uid": None, "gid": None, "isolate": True, "network": False,
        "tmp_bytes": 16 * 1024 * 1024, "memory_bytes": 256 * 1024 * 1024, "max_processes": 64, "cgroup": None,
        "watch_interval": 0.05,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", source, json.dumps(spec)], capture_output=True, text=True,
            pass_fds=(status_w,), cwd=scratch, timeout=60, check=False,
        )
        os.close(status_w)
        with os.fdopen(status_r) as status:
            lines = [json.loads(line) for line in status.read().splitlines() if line.strip()]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps({"status": lines, "stdout": done.stdout, "stderr": done.stderr, "scratch": os.path.basename(scratch)}))


if __name__ == "__main__":
    main()
