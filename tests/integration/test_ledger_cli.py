"""The ledger from the command line: `ainfera project` sequences and signs (once, and as a
long-running worker), and `ainfera receipt verify` reads its inputs strictly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.receipts import verify_receipt
from projections.ledger_receipts import build_receipt
from projections.ledger_tables import LedgerTables
from tests.harness.ledger import ORIGIN, LedgerWorld, ledger_world

AINFERA = str(Path(sys.executable).with_name("ainfera"))


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[LedgerWorld]:
    with ledger_world(database_url, tmp_path) as w:
        yield w


def env_of(world: LedgerWorld) -> dict[str, str]:
    return {**os.environ, "AINFERA_DATABASE_URL": world.database.url,
            "AINFERA_SIGNING_KEY_FILE": str(world.key_file), "AINFERA_LOG_ORIGIN": ORIGIN}


def heads(world: LedgerWorld) -> tuple[int, int]:
    """(leaves on the ledger, size of the latest signed checkpoint)."""
    session = world.session()
    try:
        tables = LedgerTables(session)
        latest = tables.latest_checkpoint()
        return tables.head()[0], latest.size if latest else 0
    finally:
        session.close()


def receipt(world: LedgerWorld, kind: str) -> dict[str, Any]:
    inference = world.inferences[kind]
    session = world.session()
    try:
        built = build_receipt(session, str(inference.id), world.public_id(kind), ORIGIN,
                              len(world.store.events_of(inference.id)))
    finally:
        session.close()
    assert isinstance(built, dict)
    return built


def test_project_once_sequences_then_signs(world: LedgerWorld) -> None:
    world.inferences["late"] = world.record("streamed")
    run = subprocess.run([AINFERA, "project", "--once", "--only", "ledger_entries"],
                         capture_output=True, text=True, timeout=120, check=False,
                         env=env_of(world))
    assert run.returncode == 0, run.stderr
    ledger, signed = heads(world)
    assert ledger == signed == world.store.max_notification_id()
    verify_receipt(receipt(world, "late"), world.signer.vkey)


def test_project_worker_signs_while_the_tree_grows(world: LedgerWorld) -> None:
    worker = subprocess.Popen([AINFERA, "project", "--poll-interval", "0.05"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env_of(world))
    try:
        for _ in range(2):
            world.record("tool_use")
            target = world.store.max_notification_id()
            deadline = time.monotonic() + 20
            while heads(world) != (target, target) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert heads(world) == (target, target)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=30)
    assert worker.returncode == 0, stderr
    assert "ledger checkpointer started" in stderr


def test_receipt_verify_reads_strictly(world: LedgerWorld, tmp_path: Path) -> None:
    world.sign()
    good = receipt(world, "passthrough")
    vkey = world.signer.vkey
    path = tmp_path / "receipt.json"

    def verify(text: str, *extra: str) -> subprocess.CompletedProcess[str]:
        path.write_text(text)
        return subprocess.run([AINFERA, "receipt", "verify", str(path), *extra],
                              capture_output=True, text=True, timeout=60, check=False)

    text = json.dumps(good)
    assert verify(text, "--vkey", vkey).returncode == 0
    duplicated = text.replace('"format": "ainfera-receipt/v1"',
                              '"format": "ainfera-receipt/v1", "format": "x"')
    run = verify(duplicated, "--vkey", vkey)
    assert run.returncode == 1
    assert "format: the receipt" in run.stderr
    assert "duplicate key 'format'" in run.stderr
    run = verify(text, "--vkey", "nobody+00000000+AQ==")
    assert run.returncode == 1
    assert "vkey:" in run.stderr
    run = verify(text, "--vkey", vkey, "--json")
    assert json.loads(run.stdout)["verified"] is True
    run = verify(text, "--vkey", vkey, "--consistency", str(path))
    assert run.returncode == 2
    assert "--consistency needs --checkpoint" in run.stderr
    assert verify_receipt(good, vkey).tenant_id == str(world.tenant_a)
