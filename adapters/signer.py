"""The ledger's Ed25519 signing key: loaded or created on disk, used to sign checkpoint notes,
and the matching verifier that checks them offline.

The key file holds one line in the golang.org/x/mod/sumdb/note signer-key form,
`PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || 32-byte seed)>`, so the key name travels with
the key and Go tooling (note.NewSigner) can read the same file. A missing file is created with
mode 0600; the key itself is never logged or put in an exception message.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from domain.checkpoint import (
    ED25519,
    Checkpoint,
    MalformedVkeyError,
    Note,
    check_key_name,
    key_id,
    open_note,
    parse_checkpoint,
    parse_vkey,
    sign_note,
    verifier_key,
)

logger = logging.getLogger(__name__)

PRIVATE_KEY_PREFIX = "PRIVATE+KEY+"


@dataclass(frozen=True, slots=True)
class Ed25519Verifier:
    """A `NoteVerifier` for one Ed25519 key, built from its published vkey."""

    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    @classmethod
    def from_vkey(cls, vkey: str) -> Ed25519Verifier:
        parsed = parse_vkey(vkey)
        if parsed.signature_type != ED25519 or len(parsed.public_key) != 32:
            raise MalformedVkeyError(
                f"verifier key {parsed.name} is not a 32-byte Ed25519 key (type 0x01)"
            )
        return cls(
            parsed.name, parsed.key_id, Ed25519PublicKey.from_public_bytes(parsed.public_key)
        )

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


class Ed25519NoteSigner:
    """Signs notes as key `name`; `vkey` is what `GET /v1/ledger/public-key` publishes."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        check_key_name(name)
        self._name = name
        self._private_key = private_key
        self._public_bytes = private_key.public_key().public_bytes_raw()
        self._key_id = key_id(name, ED25519, self._public_bytes)

    @classmethod
    def generate(cls, name: str) -> Ed25519NoteSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_key_text(cls, text: str) -> Ed25519NoteSigner:
        """Parses `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`, checking the key id."""
        parts = text.strip().removeprefix(PRIVATE_KEY_PREFIX).split("+", 2)
        if not text.strip().startswith(PRIVATE_KEY_PREFIX) or len(parts) != 3:
            raise SigningKeyError("not a PRIVATE+KEY+<name>+<hex id>+<base64 key> signing key")
        name, id_hex, encoded = parts
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SigningKeyError(f"signing key {name} is not base64") from None
        if len(raw) != 33 or raw[0] != ED25519:
            raise SigningKeyError(f"signing key {name} is not an Ed25519 seed (0x01 || 32 bytes)")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.key_id.hex() != id_hex:
            raise SigningKeyError(f"signing key {name} has key id {id_hex}, its key gives another")
        return signer

    @classmethod
    def load_or_create(cls, path: Path, name: str) -> Ed25519NoteSigner:
        """The key at `path`, created there (mode 0600) if missing; it must be named `name`.

        Creation writes a temporary file and hard-links it into place, so two processes starting
        together end up sharing whichever key landed first, never a half-written file.
        """
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls._create(path, name)
        signer = cls.from_private_key_text(text)
        if signer.name != name:
            raise SigningKeyError(
                f"signing key at {path} is named {signer.name!r}, configured name is {name!r}"
            )
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            logger.warning("signing key file %s is readable by other users; chmod 600 it", path)
        return signer

    @classmethod
    def _create(cls, path: Path, name: str) -> Ed25519NoteSigner:
        signer = cls.generate(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(signer.private_key_text() + "\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                return cls.load_or_create(path, name)
        finally:
            tmp.unlink(missing_ok=True)
        logger.warning("generated a new signing key at %s", path)
        return signer

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def vkey(self) -> str:
        return verifier_key(self._name, ED25519, self._public_bytes).text

    @property
    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self._name, self._key_id, self._private_key.public_key())

    def private_key_text(self) -> str:
        """The key file line. Secret: write it to a 0600 file, never to a log."""
        encoded = base64.b64encode(bytes([ED25519]) + self._private_key.private_bytes_raw())
        return f"{PRIVATE_KEY_PREFIX}{self._name}+{self._key_id.hex()}+{encoded.decode()}"

    def sign(self, message: bytes) -> bytes:
        return self._private_key.sign(message)

    def sign_note(self, text: str) -> str:
        return sign_note(text, [self])

    def sign_checkpoint(self, origin: str, size: int, root: bytes) -> str:
        """The signed tlog-checkpoint note for a tree of `size` leaves with `root`."""
        return self.sign_note(Checkpoint(origin, size, root).text)

    def __repr__(self) -> str:
        return f"Ed25519NoteSigner({self.vkey!r})"


def open_signed_note(note: str, vkey: str) -> Note:
    """The note, if `vkey` signed it; raises a domain.checkpoint.CheckpointError otherwise."""
    return open_note(note, [Ed25519Verifier.from_vkey(vkey)])


def verify_note(note: str, vkey: str) -> Checkpoint:
    """The checkpoint a note carries, once its signature by `vkey` verifies.

    Raises MalformedVkeyError, MalformedNoteError, UnknownKeyError (no signature by this key),
    BadSignatureError or MalformedCheckpointError, all domain.checkpoint.CheckpointError.
    """
    return parse_checkpoint(open_signed_note(note, vkey).text)


class SigningKeyError(Exception):
    """A signing key file that cannot be used; the message never contains key material."""
