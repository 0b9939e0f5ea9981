"""Checkpoint bodies, signed notes and verifier keys, held to the C2SP texts and to the Go
golang.org/x/mod/sumdb/note reference vector (Ed25519 is deterministic, so our signature must
equal Go's byte for byte)."""

from __future__ import annotations

import base64
from hashlib import sha256

import pytest

from adapters.signer import Ed25519NoteSigner, Ed25519Verifier, verify_note
from domain.checkpoint import (
    ED25519,
    BadSignatureError,
    Checkpoint,
    MalformedCheckpointError,
    MalformedNoteError,
    MalformedVkeyError,
    NoteSignature,
    UnknownKeyError,
    key_id,
    open_note,
    parse_checkpoint,
    parse_note,
    parse_vkey,
    sign_note,
)

GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
    "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
# A vkey from transparency-dev/formats whose base64 contains '+'.
PLUS_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
ROOT = sha256(b"root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()


def test_signing_reproduces_the_go_reference_note() -> None:
    signer = Ed25519NoteSigner.from_private_key_text(GO_SKEY)
    assert signer.vkey == GO_VKEY
    assert signer.private_key_text() == GO_SKEY
    assert signer.sign_note(GO_TEXT) == GO_NOTE
    note = open_note(GO_NOTE, [Ed25519Verifier.from_vkey(GO_VKEY)])
    assert note.text == GO_TEXT
    assert [s.name for s in note.signatures] == ["PeterNeumann"]
    assert note.signatures[0].key_id == bytes.fromhex("c74f20a3")


def test_a_changed_text_fails_the_known_key() -> None:
    verifier = Ed25519Verifier.from_vkey(GO_VKEY)
    with pytest.raises(BadSignatureError, match="PeterNeumann"):
        open_note(GO_NOTE.replace("cryptography", "cryptographY"), [verifier])


def test_key_id_is_c2sp_recommended_hash() -> None:
    public = base64.b64decode(GO_VKEY.split("+", 2)[2])[1:]
    want = sha256(b"PeterNeumann\n\x01" + public).digest()[:4]
    assert key_id("PeterNeumann", ED25519, public) == want == bytes.fromhex("c74f20a3")


def test_vkeys_parse_including_base64_with_a_plus() -> None:
    assert parse_vkey(GO_VKEY).text == GO_VKEY
    plus = parse_vkey(PLUS_VKEY)
    assert (plus.name, plus.key_id.hex(), plus.signature_type) == ("TEST", "7997405c", 1)
    assert Ed25519Verifier.from_vkey(PLUS_VKEY).name == "TEST"


def test_every_mangling_of_a_vkey_is_refused() -> None:
    # The same sweep as sumdb/note's TestNewVerifier: every proper substring, every byte + 1.
    for i in range(len(GO_VKEY) + 1):
        for j in range(i + 1, len(GO_VKEY) + 1):
            if (i, j) != (0, len(GO_VKEY)):
                with pytest.raises(MalformedVkeyError):
                    Ed25519Verifier.from_vkey(GO_VKEY[i:j])
    for i, c in enumerate(GO_VKEY):
        with pytest.raises(MalformedVkeyError):
            Ed25519Verifier.from_vkey(GO_VKEY[:i] + chr(ord(c) + 1) + GO_VKEY[i + 1 :])
    # Right key id for the bytes, wrong length or algorithm: still not an Ed25519 key.
    for raw in (b"\x01" + bytes(31), b"\x02" + bytes(32)):
        kid = key_id("x", raw[0], raw[1:]).hex()
        with pytest.raises(MalformedVkeyError, match="not a 32-byte Ed25519 key"):
            Ed25519Verifier.from_vkey(f"x+{kid}+{base64.b64encode(raw).decode()}")


def test_checkpoint_body_round_trips() -> None:
    text = f"example.com/log\n20852163\n{ROOT_B64}\n"
    cp = parse_checkpoint(text)
    assert (cp.origin, cp.size, cp.root, cp.extensions) == ("example.com/log", 20852163, ROOT, ())
    assert cp.text == text
    with_ext = parse_checkpoint(text + "ext one\n")
    assert with_ext.extensions == ("ext one",)
    assert with_ext.text == text + "ext one\n"
    assert parse_checkpoint(f"o\n0\n{ROOT_B64}\n").size == 0


@pytest.mark.parametrize(
    "text",
    [
        f"example.com/log\n12\n{ROOT_B64}",  # no final newline
        "example.com/log\n12\n",  # no root
        f"\n12\n{ROOT_B64}\n",  # empty origin
        f"o\n012\n{ROOT_B64}\n",  # leading zero
        f"o\n-1\n{ROOT_B64}\n",
        f"o\n+1\n{ROOT_B64}\n",
        f"o\n 1\n{ROOT_B64}\n",
        f"o\n18446744073709551616\n{ROOT_B64}\n",  # 2**64
        f"o\n1\n{base64.b64encode(ROOT[:31]).decode()}\n",  # 31-byte root
        f"o\n1\n{ROOT_B64.rstrip('=')}\n",  # unpadded
        "o\n1\n" + base64.urlsafe_b64encode(bytes([255]) * 32).decode() + "\n",  # URL-safe
        f"o\n1\n{ROOT_B64}\n\n",  # empty extension line
    ],
)
def test_malformed_checkpoint_bodies_are_refused(text: str) -> None:
    with pytest.raises(MalformedCheckpointError):
        parse_checkpoint(text)


def test_non_canonical_base64_is_refused() -> None:
    # "AB==" and "AA==" both decode to one zero byte; only the canonical spelling is accepted.
    with pytest.raises(MalformedNoteError, match="not canonical"):
        parse_note("t\n\n\u2014 k AAAAAAB=\n")


def test_checkpoints_cannot_be_built_wrong() -> None:
    for bad in (("", 1, ROOT), ("a\nb", 1, ROOT), ("o", -1, ROOT), ("o", 1, ROOT[:5])):
        with pytest.raises(MalformedCheckpointError):
            Checkpoint(*bad)


def test_signed_checkpoint_verifies_and_names_its_failures() -> None:
    signer = Ed25519NoteSigner.generate("example.com/log")
    note = signer.sign_checkpoint("example.com/log", 7, ROOT)
    assert note.startswith(f"example.com/log\n7\n{ROOT_B64}\n\n\u2014 example.com/log ")
    assert verify_note(note, signer.vkey) == Checkpoint("example.com/log", 7, ROOT)
    other = Ed25519NoteSigner.generate("example.com/log")
    with pytest.raises(UnknownKeyError, match="no signature by a known key"):
        verify_note(note, other.vkey)
    with pytest.raises(BadSignatureError):
        verify_note(note.replace("\n7\n", "\n8\n"), signer.vkey)
    with pytest.raises(MalformedCheckpointError):
        verify_note(signer.sign_note("not\na checkpoint\n"), signer.vkey)


def test_unknown_signatures_are_ignored_but_a_bad_known_one_rejects() -> None:
    log = Ed25519NoteSigner.generate("log.example")
    witness = Ed25519NoteSigner.generate("witness.example")
    text = Checkpoint("log.example", 3, ROOT).text
    note = sign_note(text, [witness, log])
    opened = open_note(note, [log.verifier])
    assert [s.name for s in opened.signatures] == ["log.example"]
    forged = NoteSignature("log.example", log.key_id, bytes(64)).line
    with pytest.raises(BadSignatureError):
        open_note(note + forged, [log.verifier, witness.verifier])
    with pytest.raises(UnknownKeyError):
        open_note(sign_note(text, [witness]), [log.verifier])


@pytest.mark.parametrize(
    ("note", "message"),
    [
        ("text\n\u2014 k AAAAAAA=\n", "no blank line"),
        ("text\n\n", "no signature lines"),
        ("text\n\n\u2014 k AAAAAAA=", "do not end with a newline"),
        ("text\n\n-- k AAAAAAA=\n", "em dash"),
        ("text\n\n\u2014 k+1 AAAAAAA=\n", "not a valid key name"),
        ("text\n\n\u2014 k AAAA\n", "too short"),
        ("text\n\n\u2014 k not-base64!\n", "not standard base64"),
        ("te\txt\n\n\u2014 k AAAAAAA=\n", "control character"),
        ("text\ud800\n\n\u2014 k AAAAAAA=\n", "UTF-8"),
        ("text\n\n" + "\u2014 k AAAAAAA=\n" * 101, "over 100"),
    ],
)
def test_malformed_notes_are_refused(note: str, message: str) -> None:
    with pytest.raises(MalformedNoteError, match=message):
        parse_note(note)


def test_sign_note_refuses_text_that_would_not_round_trip() -> None:
    signer = Ed25519NoteSigner.generate("k")
    for text in ("no newline", "blank\n\nline\n", "tab\there\n"):
        with pytest.raises(MalformedNoteError):
            signer.sign_note(text)
    with pytest.raises(MalformedNoteError, match="at least one signature"):
        sign_note("text\n", [])
