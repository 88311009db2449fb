"""One process of the live/replay contract's several-processes scenario.

Usage: contract_worker.py PATH PLAN_JSON

Opens its own ActorSystem on the shared log PATH (its own run), prints ``ready RUN`` and
waits for a line on stdin, so that every worker's workload runs at the same time. Then it
runs PLAN (see ``contract_helpers.record_run``), taking live documents while the other
processes write, and prints one JSON line per live capture (``{"capture": ...}``) and one
with its model (``{"model": ...}``), computed from the plan.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec  # noqa: E402

from contract_helpers import record_run  # noqa: E402
from actorlog.store import new_run_id  # noqa: E402


def main() -> None:
    path, plan = sys.argv[1], json.loads(sys.argv[2])  # a file path or a PostgreSQL URL
    run = new_run_id()
    print("ready", run, flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit("the parent never said go")
    record = record_run(path, plan, run=run)
    for capture in record.captures:
        print(json.dumps({"capture": msgspec.to_builtins(capture)}), flush=True)
    print(json.dumps({"model": record.model.to_builtins()}), flush=True)


if __name__ == "__main__":
    main()
