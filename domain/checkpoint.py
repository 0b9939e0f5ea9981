"""Checkpoints as text: the C2SP tlog-checkpoint body, signed-note framing and verifier keys.

A checkpoint is `<origin>\\n<tree size>\\n<base64 root>\\n`, signed as a C2SP signed note: the
body, a blank line, then lines `— <key name> <base64(4-byte key id || signature)>`. Verifier keys
travel as `<name>+<hex key id>+<base64(type byte || public key)>`. Parsing is strict (one
spelling of every number and every base64 value) because these bytes are what gets signed.

This module never touches key material: signing and signature checks are done by whatever
`NoteSigner` / `NoteVerifier` the caller passes (adapters.signer provides Ed25519 ones).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Protocol

ED25519 = 0x01
"""The C2SP signed-note signature type byte for Ed25519."""
MAX_SIGNATURES = 100
SIGNATURE_PREFIX = "\u2014 "
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.origin or any("\n" in line or not line for line in self.extensions):
            raise MalformedCheckpointError("origin and extension lines must be non-empty lines")
        if "\n" in self.origin or not 0 <= self.size < 1 << 64 or len(self.root) != 32:
            raise MalformedCheckpointError("a checkpoint is one origin line, a uint64, 32 bytes")

    @property
    def text(self) -> str:
        """The note body that gets signed."""
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root).decode(),
            *self.extensions,
        ]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parses a checkpoint body: origin, decimal size, base64 32-byte root, extension lines."""
    if not text.endswith("\n"):
        raise MalformedCheckpointError("checkpoint body does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedCheckpointError(f"checkpoint body has {len(lines)} lines, needs 3")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise MalformedCheckpointError("checkpoint origin is empty")
    if not _DECIMAL.fullmatch(size_text) or int(size_text) >= 1 << 64:
        raise MalformedCheckpointError(f"checkpoint tree size {size_text!r} is not a decimal")
    root = b64decode_strict(root_text, "checkpoint root", MalformedCheckpointError)
    if len(root) != 32:
        raise MalformedCheckpointError(f"checkpoint root is {len(root)} bytes, not 32")
    if any(not line for line in extensions):
        raise MalformedCheckpointError("checkpoint has an empty extension line")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    @property
    def line(self) -> str:
        encoded = base64.b64encode(self.key_id + self.signature).decode()
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True, slots=True)
class Note:
    text: str
    signatures: tuple[NoteSignature, ...]


class NoteSigner(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def key_id(self) -> bytes: ...
    def sign(self, message: bytes) -> bytes: ...


class NoteVerifier(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def key_id(self) -> bytes: ...
    def verify(self, message: bytes, signature: bytes) -> bool: ...


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """SHA-256(key name || 0x0A || signature type || public key)[:4], as C2SP recommends."""
    return sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()[:4]


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """The signed note: `text`, a blank line, one signature line per signer."""
    _check_text(text, MalformedNoteError)
    if not text.endswith("\n") or "\n\n" in text:
        raise MalformedNoteError("note text must end with a newline and have no blank line")
    lines = []
    for signer in signers:
        check_key_name(signer.name)
        lines.append(NoteSignature(signer.name, signer.key_id, signer.sign(text.encode())).line)
    if not lines:
        raise MalformedNoteError("a note needs at least one signature")
    return text + "\n" + "".join(lines)


def parse_note(note: str) -> Note:
    """Splits a signed note at its last blank line and parses the signature lines."""
    _check_text(note, MalformedNoteError)
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise MalformedNoteError("note has no signature lines, or they do not end with a newline")
    signatures = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise MalformedNoteError(f"signature line {line[:40]!r} does not start with an em dash")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        check_key_name(name, MalformedNoteError)
        raw = b64decode_strict(encoded, f"signature by {name}", MalformedNoteError)
        if len(raw) < 5:
            raise MalformedNoteError(f"signature by {name} is too short to hold a key id")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    if len(signatures) > MAX_SIGNATURES:
        raise MalformedNoteError(f"note has {len(signatures)} signatures, over {MAX_SIGNATURES}")
    return Note(text, tuple(signatures))


def open_note(note: str, verifiers: Sequence[NoteVerifier]) -> Note:
    """The note with only its verified signatures, per C2SP signed-note.

    Lines whose (name, key id) match no verifier are ignored; a matching line that fails to
    verify rejects the whole note; at least one known key must have signed.
    """
    parsed = parse_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified = []
    for sig in parsed.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if not verifier.verify(parsed.text.encode(), sig.signature):
            raise BadSignatureError(f"signature by {sig.name}+{sig.key_id.hex()} does not verify")
        verified.append(sig)
    if not verified:
        present = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in parsed.signatures)
        wanted = ", ".join(f"{v.name}+{v.key_id.hex()}" for v in verifiers) or "none"
        raise UnknownKeyError(
            f"note is signed by {present}; no signature by a known key ({wanted})"
        )
    return Note(parsed.text, tuple(verified))


@dataclass(frozen=True, slots=True)
class VerifierKey:
    name: str
    key_id: bytes
    signature_type: int
    public_key: bytes

    @property
    def text(self) -> str:
        encoded = base64.b64encode(bytes([self.signature_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"


def verifier_key(name: str, signature_type: int, public_key: bytes) -> VerifierKey:
    check_key_name(name)
    return VerifierKey(name, key_id(name, signature_type, public_key), signature_type, public_key)


def parse_vkey(text: str) -> VerifierKey:
    """Parses `<name>+<8 hex digits>+<base64(type || key)>` and checks the key id matches."""
    # At most two splits: the base64 key may itself contain '+'.
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise MalformedVkeyError("a verifier key is <name>+<hex key id>+<base64 key>")
    name, id_hex, encoded = parts
    check_key_name(name, MalformedVkeyError)
    if not re.fullmatch(r"[0-9a-f]{8}", id_hex):
        raise MalformedVkeyError(f"verifier key id {id_hex!r} is not 8 lowercase hex digits")
    raw = b64decode_strict(encoded, "verifier key", MalformedVkeyError)
    if len(raw) < 2:
        raise MalformedVkeyError("verifier key has no public key after its type byte")
    key = VerifierKey(name, bytes.fromhex(id_hex), raw[0], raw[1:])
    if key.key_id != key_id(name, key.signature_type, key.public_key):
        raise MalformedVkeyError(f"verifier key id {id_hex} does not match its name and key")
    return key


def check_key_name(name: str, error: type[CheckpointError] | None = None) -> None:
    """Key names are non-empty, without Unicode spaces, plus signs or control characters."""
    if not name or "+" in name or any(c.isspace() for c in name) or _CONTROL.search(name):
        raise (error or MalformedNoteError)(f"{name!r} is not a valid key name")


def b64decode_strict(text: str, what: str, error: type[Exception]) -> bytes:
    """Standard base64 with padding, accepting only the one canonical spelling of each value."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise error(f"{what} is not standard base64") from None
    if base64.b64encode(raw).decode() != text:
        raise error(f"{what} is not canonical base64")
    return raw


def _check_text(text: str, error: type[CheckpointError]) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise error("note is not valid UTF-8") from None
    if _CONTROL.search(text):
        raise error("note contains a control character other than newline")


class CheckpointError(ValueError):
    """A checkpoint, signed note or verifier key that is malformed or not trusted."""


class MalformedCheckpointError(CheckpointError):
    """A note body that is not a tlog-checkpoint."""


class MalformedNoteError(CheckpointError):
    """Text that is not a C2SP signed note."""


class MalformedVkeyError(CheckpointError):
    """Text that is not a verifier key, or whose key id does not match its key."""


class UnknownKeyError(CheckpointError):
    """A note with no signature from any trusted key."""


class BadSignatureError(CheckpointError):
    """A signature line from a trusted key whose signature does not verify."""
