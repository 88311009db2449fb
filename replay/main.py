"""The ``actorlog`` console script: the audit commands and the commands that run a system."""

from __future__ import annotations

from actorlog.replay.app_commands import demo, run
from actorlog.replay.cli import cli
from actorlog.replay.copy_command import copy
from actorlog.replay.serve import serve

cli.add_command(demo)
cli.add_command(run)
cli.add_command(copy)
cli.add_command(serve)

__all__ = ["cli", "main"]


def main() -> None:
    """Entry point of the ``actorlog`` console script."""
    cli(prog_name="actorlog")


if __name__ == "__main__":
    main()
