"""What `verify` checks beyond the chain: signed checkpoints, a witness, expected hashes, snapshots.

A hash chain alone shows edits only to someone who does not recompute it. With the
signing key's public key, every ``checkpoint`` row's signature is checked against the
chain hash it signs, so rewriting history before a checkpoint is found. A witness (the
checkpoints kept outside the log) or an expected ``SEQ:HASH`` pins the log's length
and content, so truncation, rollback to an older copy and a log rewritten from the
start are found too. Rows after the newest valid checkpoint are not yet covered by a
signature: they are counted, not failed.

`ChainAudit` is fed each row as the chain is walked once, so signed verification costs
one signature check per checkpoint on top of the plain verify.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from actorlog.events import Checkpoint, SnapshotTaken
from actorlog.store.checkpoints import STORE_ACTOR
from actorlog.store.signing import PublicKey, checkpoint_message
from actorlog.store.snapshot_table import snapshot_digest


class Finding(msgspec.Struct, frozen=True):
    """One thing verification found wrong, with the seq it concerns (None: the log as a whole)."""

    seq: int | None
    problem: str


_checkpoint = msgspec.json.Decoder(Checkpoint)
_snapshot = msgspec.json.Decoder(SnapshotTaken)


def parse_expect(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` as given to ``verify --expect``; ValueError for anything else."""
    seq, sep, digest = text.partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"--expect takes SEQ:HASH (a seq and a 64-digit hex chain hash), got {text!r}")
    return int(seq), digest


class ChainAudit:
    """Checks checkpoints, pinned hashes and snapshot records while the chain is walked."""

    def __init__(
        self,
        public_key: PublicKey | None = None,
        pinned: Iterable[tuple[int, str, str]] = (),
    ) -> None:
        """``pinned``: (seq, hash, source) triples the log must hold (witness lines, ``--expect``)."""
        self.public_key = public_key
        self.pinned: dict[int, tuple[str, str]] = {}
        for seq, digest, source in pinned:
            self.pinned.setdefault(seq, (digest, source))
        self.findings: list[Finding] = []
        self.checkpoints = 0
        self.valid_checkpoints = 0
        self.signed_up_to = 0
        """The seq of the newest checkpoint whose signature verifies, over an unbroken chain."""
        self.last_seq = 0
        self.snapshot_digests: set[str] = set()
        self.snapshot_records = 0
        """``snapshot.taken`` rows in the chain: how many snapshots were stored since snapshots were chained."""
        self._previous_hash = ""
        self._chain_ok = True

    def see(self, seq: int, actor: Any, kind: Any, payload: Any, stored: Any, chain_ok: bool) -> None:
        """Look at one row, in seq order; ``chain_ok``: the chain is intact up to and including it."""
        self.last_seq = seq
        self._chain_ok = self._chain_ok and chain_ok
        pinned = self.pinned.get(seq)
        if pinned is not None and stored != pinned[0]:
            self.findings.append(Finding(seq, (
                f"row seq {seq} hashes to {_short(stored)} but {pinned[1]} holds {_short(pinned[0])}: "
                f"the log was rewritten or replaced by another copy"
            )))
        if actor == STORE_ACTOR and kind == "checkpoint":
            self._checkpoint(seq, payload)
        elif actor == STORE_ACTOR and kind == "snapshot.taken":
            self.snapshot_records += 1
            try:
                self.snapshot_digests.add(_snapshot.decode(payload).digest)
            except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
                self.findings.append(Finding(seq, f"snapshot record at seq {seq} cannot be read"))
        self._previous_hash = stored if type(stored) is str else ""

    def _checkpoint(self, seq: int, payload: Any) -> None:
        self.checkpoints += 1
        if self.public_key is None:
            return
        try:
            checkpoint = _checkpoint.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
            self.findings.append(Finding(seq, f"checkpoint at seq {seq} cannot be read: it was altered"))
            return
        key = self.public_key
        message = checkpoint_message(
            checkpoint.covered_seq, checkpoint.covered_hash, checkpoint.time, checkpoint.run, checkpoint.key_id
        )
        if checkpoint.key_id != key.key_id:
            self.findings.append(Finding(seq, (
                f"checkpoint at seq {seq} names key {checkpoint.key_id}, not the trusted key {key.key_id}: "
                f"forged, or signed with another key"
            )))
            return
        if not key.verifies(message, checkpoint.signature):
            self.findings.append(Finding(seq, (
                f"checkpoint at seq {seq} has a signature that does not verify with key {key.key_id}: "
                f"forged or altered"
            )))
            return
        if checkpoint.covered_seq != seq - 1 or checkpoint.covered_hash != self._previous_hash:
            since = self.signed_up_to
            self.findings.append(Finding(since + 1, (  # the first row no valid signature vouches for
                f"checkpoint at seq {seq} signs hash {_short(checkpoint.covered_hash)} for seq "
                f"{checkpoint.covered_seq}, but the log's row {seq - 1} hashes to {_short(self._previous_hash)}: "
                f"rows {since + 1} to {checkpoint.covered_seq} were rewritten (the chain recomputed), "
                f"inserted or removed"
            )))
            return
        self.valid_checkpoints += 1
        if self._chain_ok:
            self.signed_up_to = seq

    def finish(self) -> list[str]:
        """After the last row: findings about what the log lacks; returns notes (not failures)."""
        for seq, (digest, source) in sorted(self.pinned.items()):
            if seq > self.last_seq:
                self.findings.append(Finding(seq, (
                    f"log ends at seq {self.last_seq} but {source} holds seq {seq}: "
                    f"the log was truncated or rolled back to an older copy"
                )))
        notes = []
        if self.public_key is None:
            if self.checkpoints:
                notes.append(f"{self.checkpoints} signed checkpoint(s) not checked: give the public key "
                             f"(--public-key) to check them")
            notes.append("without a signing key's public key, an editor who recomputes the hash chain is not detected")
        elif self.last_seq and not self.valid_checkpoints:
            notes.append(
                f"no valid signed checkpoint: nothing is vouched for by a signature; all {self.last_seq} row(s), "
                f"seq 1 to {self.last_seq}, are not yet covered by a signature and could have been rewritten with "
                f"the chain recomputed. A log whose "
                f"checkpoints were all removed looks like this: keep a witness (--witness) or pass --expect SEQ:HASH"
            )
        elif self.last_seq > self.signed_up_to:
            hint = "" if self.pinned else (
                "; checkpoints removed from the end look the same, so keep a witness (--witness) to catch that"
            )
            notes.append(
                f"{self.last_seq - self.signed_up_to} row(s), seq {self.signed_up_to + 1} to {self.last_seq}, "
                f"were written after the newest valid checkpoint: not yet covered by a signature{hint}"
            )
        return notes


def check_snapshots(
    rows: Iterable[tuple[Any, ...]], vouched: set[str], chained: int | None = None
) -> tuple[list[Finding], list[Any]]:
    """Every snapshot must match a digest the chain recorded (``snapshot.taken``).

    ``rows`` come in id order. Snapshots were chained from some version on, and rows are
    only appended, so the newest ``chained`` rows (the number of ``snapshot.taken`` rows in
    the chain) are the chained ones: one of those that matches no digest was edited or added
    by hand. The older rows, if they match none, were taken before snapshots were chained:
    they cannot be verified (rebuild skips them), which is not tampering. Returns the findings
    and the ids of those older snapshots. ``chained`` None: every row must match.
    """
    rows = list(rows)
    older = 0 if chained is None else len(rows) - chained
    findings = []
    unchained = []
    for index, (snapshot_id, projection, version, position, run, state) in enumerate(rows):
        try:
            digest = snapshot_digest(projection, version, position, run, state)
        except (TypeError, AttributeError):
            digest = ""
        if digest in vouched:
            continue
        if index < older:
            unchained.append(snapshot_id)
            continue
        findings.append(Finding(position if type(position) is int else None, (
            f"snapshot id {snapshot_id} ({projection} at seq {position}) does not match any digest the chain "
            f"recorded: it was edited or added by hand (rebuild skips it)"
        )))
    return findings, unchained


def witness_pins(entries: Iterable[Mapping[str, Any]], source: str) -> list[tuple[int, str, str]]:
    """The (seq, hash, source) pins of a witness's checkpoint lines."""
    return [(int(entry["seq"]), str(entry["hash"]), f"{source} (checkpoint seq {entry['seq']})") for entry in entries]


def _short(digest: Any) -> str:
    text = digest if isinstance(digest, str) else hashlib.sha256(repr(digest).encode()).hexdigest()
    return text[:12]
