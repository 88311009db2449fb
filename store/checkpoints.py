"""Signed checkpoints, written by the store's writer, and the witness file that keeps them.

With a signing key, the writer appends a ``checkpoint`` event (actor ``store``) every
``every`` events and every ``interval`` seconds (at the next commit, or once that long
has passed with nothing to write), and at a clean close. Each signs the seq and chain hash of the row before it. The witness, a file
outside the log (one JSON line per checkpoint, append-only by convention, readable by
``jq``), keeps them where an editor of the log cannot reach, so truncation and
rollback are detected too.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actorlog.events import Checkpoint, Codec
from actorlog.store.chain import row_content
from actorlog.store.rows import PendingRow
from actorlog.store.signing import SigningKey, checkpoint_message

STORE_ACTOR = "store"
"""The actor name of the rows the store writes itself (checkpoints)."""

DEFAULT_CHECKPOINT_EVERY = 10_000
"""Events between checkpoints by default (an Ed25519 signature costs about 50 us)."""

DEFAULT_CHECKPOINT_INTERVAL = 10.0
"""Seconds between checkpoints by default: an idle writer signs its newest rows this long after the last checkpoint."""


def witness_file(witness: str | os.PathLike[str], log: str | os.PathLike[str]) -> Path:
    """The witness file of ``log``: ``witness`` itself if it is a file (or ends in .jsonl),
    else ``<log file name>.witness.jsonl`` inside the directory ``witness``."""
    path = Path(witness)
    if path.suffix == ".jsonl" or path.is_file():
        return path
    return path / f"{Path(log).name}.witness.jsonl"


def witness_line(checkpoint: Checkpoint, seq: int, digest: str, log: str | os.PathLike[str]) -> str:
    """One checkpoint as the JSON line a witness keeps: its own seq and hash, and what it signs."""
    return json.dumps({
        "log": str(log), "seq": seq, "hash": digest, "covered_seq": checkpoint.covered_seq,
        "covered_hash": checkpoint.covered_hash, "time": checkpoint.time, "run": checkpoint.run,
        "key_id": checkpoint.key_id, "signature": checkpoint.signature,
    }, sort_keys=True)


def read_witness(path: Path) -> list[dict[str, Any]]:
    """Every checkpoint a witness file holds, oldest first (ValueError for a line that is not one)."""
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if not (isinstance(entry, dict) and type(entry.get("seq")) is int and isinstance(entry.get("hash"), str)):
                raise ValueError
        except ValueError:
            raise ValueError(f"witness {str(path)!r}: line {number} is not a checkpoint (JSON with seq and hash)") from None
        entries.append(entry)
    return entries


@dataclass
class Checkpointer:
    """What the writer needs to sign: the key, how often, and where the witness is."""

    key: SigningKey
    codec: Codec
    run: str
    log: str
    """How the witness names the log (a path, or a URL without its password)."""
    every: int = DEFAULT_CHECKPOINT_EVERY
    interval: float = DEFAULT_CHECKPOINT_INTERVAL
    witness: Path | None = None
    since: int = 0
    """Rows committed since the last checkpoint."""
    last_at: float = 0.0

    def __post_init__(self) -> None:
        self.last_at = time.monotonic()
        if self.witness is not None:
            self.witness.parent.mkdir(parents=True, exist_ok=True)

    def due(self, rows: int) -> bool:
        """Count ``rows`` more; whether a checkpoint is due after them."""
        self.since += rows
        return self.since >= self.every or (self.since > 0 and time.monotonic() - self.last_at >= self.interval)

    def pending(self, covered_seq: int, covered_hash: str, ts: float) -> tuple[PendingRow, Checkpoint]:
        """The checkpoint row to chain after ``covered_seq``, and its event."""
        key = self.key
        event = Checkpoint(
            covered_seq=covered_seq, covered_hash=covered_hash, time=ts, run=self.run, key_id=key.key_id,
            signature=key.sign(checkpoint_message(covered_seq, covered_hash, ts, self.run, key.key_id)),
        )
        kind, version, payload = self.codec.encode(event)
        content = row_content(ts, self.run, STORE_ACTOR, kind, version, None, payload)
        return [None, ts, self.run, STORE_ACTOR, kind, version, None, payload.decode(), content], event

    def written(self, checkpoint: Checkpoint, seq: int, digest: str) -> None:
        """After its COMMIT: start counting again and hand the checkpoint to the witness."""
        self.since = 0
        self.last_at = time.monotonic()
        if self.witness is not None:
            with open(self.witness, "a", encoding="utf-8") as out:
                out.write(witness_line(checkpoint, seq, digest, self.log) + "\n")
                out.flush()
                os.fsync(out.fileno())
