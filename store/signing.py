"""Ed25519 keys for signed checkpoints: make, load and check them, and sign a log's state.

A checkpoint binds a seq and its chain hash to a private key kept outside the log, so
someone who can write the log file but not read the key cannot rewrite history without
the signature giving it away. The private key never enters the log, an error or a repr.

Uses the ``cryptography`` package (``pip install 'actorlog[signing]'``).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from actorlog.store.errors import StoreError

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
except ImportError:  # pragma: no cover - the extra is not installed
    HAVE_CRYPTOGRAPHY = False
else:
    HAVE_CRYPTOGRAPHY = True

SIGNATURE_CONTEXT = b"actorlog-checkpoint-v1"
"""Prefix of every signed message, so a checkpoint signature can never be taken for another use of the key."""

KEY_ENV = "ACTORLOG_SIGNING_KEY"
"""The environment variable that may name the private key file."""


class SigningKeyError(StoreError, ValueError):
    """A signing or public key cannot be used: missing, unreadable, too widely readable, or not Ed25519."""


def _require_cryptography() -> None:
    if not HAVE_CRYPTOGRAPHY:
        raise SigningKeyError(
            "signed checkpoints need the cryptography package: pip install 'actorlog[signing]'"
        )


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of the SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def checkpoint_message(covered_seq: int, covered_hash: str, ts: float, run: str, key: str) -> bytes:
    """The bytes a checkpoint's signature covers."""
    return b"|".join(
        (SIGNATURE_CONTEXT, b"%d" % covered_seq, covered_hash.encode(), repr(float(ts)).encode(), run.encode(),
         key.encode())
    )


class SigningKey:
    """A private Ed25519 key loaded from a file; its repr names the file and key id only."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        _require_cryptography()
        self.path = Path(path)
        self._key = _load_private(self.path)
        self.public_key = self._key.public_key()
        self.key_id = key_id(self.public_key)

    def sign(self, message: bytes) -> str:
        """The signature of ``message``, as hex."""
        return self._key.sign(message).hex()

    def __repr__(self) -> str:
        return f"<SigningKey {str(self.path)!r} id={self.key_id}>"


class PublicKey:
    """A public Ed25519 key loaded from a file, to check checkpoint signatures."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        _require_cryptography()
        self.path = Path(path)
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise SigningKeyError(f"public key {str(self.path)!r} cannot be read: {exc.strerror or exc}") from None
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError:
            raise SigningKeyError(f"{str(self.path)!r} is not a PEM public key; give the .pub file keygen wrote") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError(f"public key {str(self.path)!r} is not an Ed25519 key")
        self._key = key
        self.key_id = key_id(key)

    def verifies(self, message: bytes, signature: str) -> bool:
        """Whether ``signature`` (hex) is this key's signature of ``message``."""
        try:
            self._key.verify(bytes.fromhex(signature), message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def __repr__(self) -> str:
        return f"<PublicKey {str(self.path)!r} id={self.key_id}>"


def _load_private(path: Path) -> Ed25519PrivateKey:
    try:
        status = path.stat()
    except OSError as exc:
        raise SigningKeyError(f"signing key {str(path)!r} cannot be read: {exc.strerror or exc}; "
                              f"make one with `actorlog keygen {path}`") from None
    if not stat.S_ISREG(status.st_mode):
        raise SigningKeyError(f"signing key {str(path)!r} is not a regular file")
    if status.st_mode & 0o077:
        raise SigningKeyError(
            f"signing key {str(path)!r} is readable by others (mode {stat.S_IMODE(status.st_mode):04o}); "
            f"a private key must be mode 0600: chmod 600 {path}"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"signing key {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(
            f"{str(path)!r} is not an unencrypted PEM private key; make one with `actorlog keygen`"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"signing key {str(path)!r} is not an Ed25519 key")
    return key


def public_key_path(private: str | os.PathLike[str]) -> Path:
    """Where `generate_key` puts the public key of a private key file: beside it, ``.pub`` added."""
    return Path(f"{os.fspath(private)}.pub")


def generate_key(path: str | os.PathLike[str]) -> tuple[Path, Path, str]:
    """Write a new Ed25519 key pair: the private key at ``path`` (mode 0600, never
    overwritten) and the public key beside it. Returns both paths and the key id."""
    _require_cryptography()
    private_path, public = Path(path), public_key_path(path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(f"{str(private_path)!r} already exists; keygen never overwrites a key") from None
    except OSError as exc:
        raise SigningKeyError(f"cannot create {str(private_path)!r}: {exc.strerror or exc}") from None
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public, key_id(key.public_key())
