"""The signing key file: created once with mode 0600, reloaded as the same key, never logged."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from adapters.signer import PRIVATE_KEY_PREFIX, Ed25519NoteSigner, SigningKeyError, verify_note

NAME = "ledger.example/log"


def test_a_missing_key_file_is_created_private_and_announced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "var" / "signing.key"
    with caplog.at_level(logging.INFO, logger="adapters.signer"):
        signer = Ed25519NoteSigner.load_or_create(path, NAME)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"generated a new signing key at {path}" in caplog.text
    secret = signer.private_key_text()
    assert path.read_text() == secret + "\n"
    # The key's base64 may itself hold '+', so split off only the name and the key id.
    encoded_key = secret.removeprefix(PRIVATE_KEY_PREFIX).split("+", 2)[-1]
    assert encoded_key not in caplog.text
    assert secret not in repr(signer)
    assert [p.name for p in path.parent.iterdir()] == ["signing.key"]  # no temp file left


def test_the_key_file_is_reloaded_as_the_same_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "signing.key"
    first = Ed25519NoteSigner.load_or_create(path, NAME)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="adapters.signer"):
        again = Ed25519NoteSigner.load_or_create(path, NAME)
    assert again.vkey == first.vkey
    assert "generated" not in caplog.text
    note = first.sign_checkpoint(NAME, 1, bytes(32))
    assert verify_note(note, again.vkey).size == 1


def test_a_key_file_readable_by_others_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "signing.key"
    Ed25519NoteSigner.load_or_create(path, NAME)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="adapters.signer"):
        Ed25519NoteSigner.load_or_create(path, NAME)
    assert "readable by other users" in caplog.text


def test_a_key_under_another_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    Ed25519NoteSigner.load_or_create(path, NAME)
    with pytest.raises(SigningKeyError, match=r"configured name is 'other\.example'"):
        Ed25519NoteSigner.load_or_create(path, "other.example")


@pytest.mark.parametrize(
    "content",
    [
        "not a key",
        "PRIVATE+KEY+name+00000000",
        "PRIVATE+KEY+name+00000000+!!!",
        "PRIVATE+KEY+name+00000000+AQID",  # too short
        "PRIVATE+KEY+name+00000000+" + "A" * 44,  # right size, type 0x00
    ],
)
def test_unusable_key_files_are_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "signing.key"
    path.write_text(content)
    with pytest.raises(SigningKeyError):
        Ed25519NoteSigner.load_or_create(path, "name")


def test_a_key_file_with_a_wrong_key_id_is_refused(tmp_path: Path) -> None:
    text = Ed25519NoteSigner.generate(NAME).private_key_text()
    name, _, encoded = text.removeprefix("PRIVATE+KEY+").split("+", 2)
    path = tmp_path / "signing.key"
    path.write_text(f"PRIVATE+KEY+{name}+00000000+{encoded}\n")
    with pytest.raises(SigningKeyError, match="has key id 00000000"):
        Ed25519NoteSigner.load_or_create(path, NAME)
