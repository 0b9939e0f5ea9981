"""The ledger part of `ainfera verify`, on both backends: a sound ledger has no problems; an
event row edited in the library's own table, a ledger row edited, an event deleted, and a
checkpoint signed by another key are each found and named."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from adapters.signer import Ed25519NoteSigner, verify_note
from projections.ledger_verify import verify_ledger
from tests.harness.ledger import ORIGIN, LedgerWorld, ledger_world

AINFERA = str(Path(sys.executable).with_name("ainfera"))


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[LedgerWorld]:
    with ledger_world(database_url, tmp_path) as w:
        assert w.sign() is not None
        w.record("streamed")
        w.sequence()
        assert w.sign() is not None  # two checkpoints, the first inside the second
        yield w


def problems(world: LedgerWorld) -> list[str]:
    db = world.database
    opener = partial(verify_note, vkey=world.signer.vkey)
    return verify_ledger(world.store, db.connect, db.kind, opener)


def execute(world: LedgerWorld, statement: str, params: tuple[object, ...] = ()) -> None:
    session = world.session()
    try:
        session.execute(statement, params)
    finally:
        session.close()


def events_table(world: LedgerWorld) -> str:
    # The library names its table after the application on PostgreSQL only.
    return "stored_events" if world.database.kind == "sqlite" else "ainfera_events"


def edit_stored_event(world: LedgerWorld, old: bytes, new: bytes) -> None:
    """Rewrites the state bytes of the streamed inference's Routed event in place, as someone
    with database access could."""
    inference = world.inferences["streamed"]
    key = inference.id.hex if world.database.kind == "sqlite" else inference.id
    table = events_table(world)
    session = world.session()
    try:
        (state,) = session.execute(
            f"SELECT state FROM {table} WHERE originator_id = %s AND originator_version = 1",
            (key,))[0]
        assert old in bytes(state)
        session.execute(
            f"UPDATE {table} SET state = %s WHERE originator_id = %s AND originator_version = 1",
            (bytes(state).replace(old, new), key))
    finally:
        session.close()


def run_verify(world: LedgerWorld) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AINFERA_DATABASE_URL": world.database.url,
           "AINFERA_SIGNING_KEY_FILE": str(world.key_file), "AINFERA_LOG_ORIGIN": ORIGIN}
    return subprocess.run([AINFERA, "verify"], capture_output=True, text=True, timeout=120,
                          check=False, env=env)


def test_a_sound_ledger_has_no_problems(world: LedgerWorld) -> None:
    assert problems(world) == []
    run = run_verify(world)
    assert run.returncode == 0, run.stderr


def test_an_event_row_edited_in_the_store_is_caught(world: LedgerWorld) -> None:
    edit_stored_event(world, b'"requested_model":"ainfera-inference"',
                      b'"requested_model":"ainfera-inferencf"')
    found = problems(world)
    routed = next(line for line in found if "edited" in line)
    assert routed.startswith("leaf ")
    assert any("the log was rewritten" in line for line in found)
    run = run_verify(world)
    assert run.returncode == 1
    assert "verify failed" in run.stderr


def test_a_ledger_row_edited_is_caught(world: LedgerWorld) -> None:
    execute(world, "UPDATE ledger_entries SET event_json = replace(event_json, %s, %s) "
                   "WHERE leaf_index = 0", ("tenant-a", "tenant-x"))
    assert problems(world)[0].startswith("leaf 0: the store's event (notification 1) does not "
                                         "give the ledger's event object")


def test_an_event_deleted_from_the_store_is_caught(world: LedgerWorld) -> None:
    inference = world.inferences["b_passthrough"]
    key = inference.id.hex if world.database.kind == "sqlite" else inference.id
    execute(world, f"DELETE FROM {events_table(world)} WHERE originator_id = %s "
                   "AND originator_version = 2", (key,))
    found = problems(world)
    assert found
    assert any("notification" in line for line in found)


def test_a_checkpoint_signed_by_another_key_is_caught(world: LedgerWorld) -> None:
    impostor = Ed25519NoteSigner.generate(ORIGIN)
    session = world.session()
    try:
        (size, note) = session.execute(
            "SELECT tree_size, note FROM ledger_checkpoints ORDER BY tree_size LIMIT 1")[0]
    finally:
        session.close()
    forged = impostor.sign_note(note[: note.index("\n\n") + 1])
    execute(world, "UPDATE ledger_checkpoints SET note = %s WHERE tree_size = %s",
            (forged, size))
    assert problems(world) == [
        f"checkpoint of size {size}: the note does not verify: note is signed by "
        f"{ORIGIN}+{impostor.key_id.hex()}; no signature by a known key "
        f"({ORIGIN}+{world.signer.key_id.hex()})"]


def test_a_ledger_index_column_edited_is_caught(world: LedgerWorld) -> None:
    """Receipts find an inference's leaves by aggregate_id: moving a leaf to another
    inference in that column is a finding even though its event and hashes are untouched."""
    execute(world, "UPDATE ledger_entries SET aggregate_id = %s, version = 99 "
                   "WHERE leaf_index = 7", (str(world.inferences["b_streamed"].id),))
    assert problems(world) == [
        "leaf 7: aggregate, version, type or tenant columns differ from the event"]
