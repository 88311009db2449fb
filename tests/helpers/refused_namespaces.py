"""Run the Sandbox plugin where the kernel refuses every new namespace, and print what it says.

Usage (as root): refused_namespaces.py LOG PYTHON TESTS_DIR

This process first moves into a user namespace of its own (uids and gids 0-65535 mapped to
themselves, so it is still root and ``nobody`` still exists), and sets that namespace's
``/proc/sys/user/max_{mnt,net,pid,ipc}_namespaces`` to 0: the kernel then refuses every
mount, network, PID and IPC namespace created inside it (``ENOSPC``), exactly as a kernel
without them, or a container that forbids them, would. The host's own limits are not
touched. Then it starts an actor system with the Sandbox plugin on LOG (logging to stderr),
prints one JSON line: the health detail, a program's view of /tmp sharing, and the outcome
of a sandbox whose six processes together hold more than ``memory_bytes``.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import sys
import uuid

CLONE_NEWUSER = 0x10000000


def enter_limited_user_namespace() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    parent = os.getpid()
    mapper = os.fork()
    if mapper == 0:  # writes the parent's maps once it is in its namespace (only the outside may map many ids)
        os.close(ready_w)
        os.close(go_r)
        os.read(ready_r, 1)
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{parent}/{name}", "w") as file:
                file.write("0 0 65536\n")
        os.write(go_w, b"g")
        os._exit(0)
    if libc.unshare(CLONE_NEWUSER) != 0:
        sys.exit(f"unshare(CLONE_NEWUSER) failed: {os.strerror(ctypes.get_errno())}")
    os.write(ready_w, b"r")
    os.read(go_r, 1)
    os.waitpid(mapper, 0)
    for kind in ("mnt", "net", "pid", "ipc"):
        with open(f"/proc/sys/user/max_{kind}_namespaces", "w") as file:
            file.write("0")




def main() -> None:
    log, python, tests = sys.argv[1], sys.argv[2], sys.argv[3]
    enter_limited_user_namespace()
    sys.path.insert(0, tests)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from actorlog.actors import ActorSystem  # noqa: PLC0415 - after the namespace: nothing of it is needed before
    from actorlog.actors.examples.sandbox import RunPython, SandboxPlugin  # noqa: PLC0415
    from sandbox_helpers import SIX_CHILDREN  # noqa: PLC0415 - the tests folder is on the path only now

    marker = f"/tmp/actorlog-refused-{uuid.uuid4().hex}"
    config = {"python": python, "memory_bytes": 384 * 1024 * 1024, "max_processes": 16, "wall_timeout": 30.0,
              "cpu_seconds": 10}
    with ActorSystem(log) as system:
        system.register("sandbox", SandboxPlugin, config=config)
        system.start()
        health = system.check_health("sandbox")["sandbox"]
        shared = system.ask("sandbox", RunPython(code=f"open({marker!r}, 'w').write('x')\n"), timeout=60)
        memory = system.ask("sandbox", RunPython(code=SIX_CHILDREN), timeout=120)
    left = os.path.exists(marker)
    if left:
        os.unlink(marker)
    print(json.dumps({
        "health": [health.healthy, health.detail], "tmp_shared": left and shared.exit_code == 0,
        "memory": {"killed": memory.killed, "reason": memory.reason, "held": memory.stdout.count("held")},
    }))


if __name__ == "__main__":
    main()
