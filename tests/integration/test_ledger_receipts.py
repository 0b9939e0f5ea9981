"""Receipts end to end on both backends: gateway-shaped inferences on a real store, the
sequencer and checkpointer, the HTTP endpoints, and offline verification with verify_receipt
and with the `ainfera receipt verify` command in a subprocess (no server, no database)."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from adapters.jcs import leaf_hash_of_event
from adapters.receipts import Check, ReceiptVerificationError, verify_receipt, verify_tlog_proof
from adapters.signer import Ed25519NoteSigner, verify_note
from app.factory import create_app
from app.settings import Settings
from domain.merkle import MerkleError, verify_consistency
from tests.harness.ledger import EXPECTED_TYPES, KINDS, ORIGIN, LedgerWorld, ledger_world

AINFERA = str(Path(sys.executable).with_name("ainfera"))
Client = AsyncTestClient[Litestar]


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[LedgerWorld]:
    with ledger_world(database_url, tmp_path) as w:
        yield w


@pytest.fixture
async def client(world: LedgerWorld, database_url: str) -> AsyncIterator[Client]:
    # No in-process projections: each test decides when leaves and checkpoints appear. The
    # other read models are brought up to date first, as a worker would have, because the
    # gateway waits for usage_daily at start to rebuild its spend counters.
    world.catch_up_read_models()
    settings = Settings(database_url=database_url, signing_key_file=str(world.key_file),
                        log_origin=ORIGIN, run_projections=False)
    async with AsyncTestClient(app=create_app(settings)) as c:
        yield c


async def fetch(client: Client, world: LedgerWorld, kind: str, key: str | None = None,
                query: str = "") -> Any:
    return await client.get(f"/v1/inferences/{world.public_id(kind)}/receipt{query}",
                            headers={"x-api-key": key or world.key_a})


async def receipt_of(client: Client, world: LedgerWorld, kind: str, query: str = "",
                     key: str | None = None) -> dict[str, Any]:
    response = await fetch(client, world, kind, key=key, query=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def cli_verify(tmp_path: Path, receipt: dict[str, Any], vkey: str,
               *extra: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    return subprocess.run([AINFERA, "receipt", "verify", str(path), "--vkey", vkey, *extra],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin"})


def failure(receipt: dict[str, Any], vkey: str) -> ReceiptVerificationError:
    with pytest.raises(ReceiptVerificationError) as info:
        verify_receipt(receipt, vkey)
    return info.value


@pytest.mark.parametrize("kind", KINDS)
async def test_receipt_verifies_offline(client: Client, world: LedgerWorld, tmp_path: Path,
                                        kind: str) -> None:
    world.sign()
    receipt = await receipt_of(client, world, kind)
    assert receipt["format"] == "ainfera-receipt/v1"
    assert receipt["origin"] == ORIGIN
    assert receipt["inference_id"] == world.public_id(kind)
    events = [e["event"] for e in receipt["entries"]]
    assert [e["type"] for e in events] == EXPECTED_TYPES[kind]
    assert {e["tenant_id"] for e in events} == {str(world.tenant_a)}
    assert all(e["agent_id"] == str(world.agent_a) and e["request_id"] for e in events)
    if kind != "failed":
        assert events[-1]["cost_usd"] == "0.000842"
    verified = verify_receipt(receipt, world.signer.vkey)
    assert [e.leaf_index for e in verified.entries] == [e["leaf_index"] for e in receipt["entries"]]

    ok = cli_verify(tmp_path, receipt, world.signer.vkey)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"receipt verifies: {world.public_id(kind)}")
    vkey_file = tmp_path / "vkey.txt"
    vkey_file.write_text(world.signer.vkey + "\n")
    assert cli_verify(tmp_path, receipt, str(vkey_file), "--json").returncode == 0


async def test_every_changed_event_byte_is_caught(client: Client, world: LedgerWorld) -> None:
    world.sign()
    receipt = await receipt_of(client, world, "streamed")
    for i, entry in enumerate(receipt["entries"]):
        for key, value in entry["event"].items():
            tampered = copy.deepcopy(receipt)
            event = tampered["entries"][i]["event"]
            if isinstance(value, bool) or value is None:
                event[key] = not value
            elif isinstance(value, int):
                event[key] = value + 1
            elif isinstance(value, str) and value:
                event[key] = value[:-1] + ("0" if value[-1] != "0" else "1")
            else:
                event[key] = "changed"
            error = failure(tampered, world.signer.vkey)
            expected = Check.LEAF_INDEX if key == "leaf_index" else Check.LEAF_HASH
            assert (error.check, error.leaf_index) == (expected, entry["leaf_index"]), key


async def test_reordered_dropped_and_foreign_leaves_fail(client: Client, world: LedgerWorld,
                                                         tmp_path: Path) -> None:
    world.sign()
    receipt = await receipt_of(client, world, "streamed")
    vkey = world.signer.vkey

    reordered = copy.deepcopy(receipt)
    reordered["entries"][1], reordered["entries"][2] = (reordered["entries"][2],
                                                        reordered["entries"][1])
    assert failure(reordered, vkey).check == Check.ORDER

    dropped = copy.deepcopy(receipt)
    del dropped["entries"][2]
    error = failure(dropped, vkey)
    assert (error.check, error.leaf_index) == (Check.VERSION, receipt["entries"][3]["leaf_index"])
    run = cli_verify(tmp_path, dropped, vkey)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"ainfera: error: receipt does NOT verify: {error}"]

    # Another tenant's leaf, with its genuine inclusion proof against the same checkpoint.
    foreign = (await receipt_of(client, world, "b_streamed", key=world.key_b))["entries"][1]
    swapped = copy.deepcopy(receipt)
    swapped["entries"][1] = foreign
    error = failure(swapped, vkey)
    assert (error.check, error.leaf_index) == (Check.TENANT, foreign["leaf_index"])


async def test_trailing_events_dropped_are_not_detectable_from_the_receipt(
        client: Client, world: LedgerWorld) -> None:
    """The documented limit (docs/compliance.md): a receipt cut after any prefix verifies."""
    world.sign()
    receipt = await receipt_of(client, world, "streamed")
    cut = copy.deepcopy(receipt)
    del cut["entries"][3:]
    assert len(verify_receipt(cut, world.signer.vkey).entries) == 3


async def test_checkpoint_signed_by_another_key_fails(client: Client, world: LedgerWorld,
                                                      tmp_path: Path) -> None:
    world.sign()
    receipt = await receipt_of(client, world, "tool_use")
    impostor = Ed25519NoteSigner.generate(ORIGIN)
    body = receipt["checkpoint"][: receipt["checkpoint"].index("\n\n") + 1]
    resigned = dict(receipt, checkpoint=impostor.sign_note(body))
    assert failure(resigned, world.signer.vkey).check == Check.SIGNATURE
    assert failure(receipt, impostor.vkey).check == Check.SIGNATURE
    run = cli_verify(tmp_path, resigned, world.signer.vkey)
    assert run.returncode == 1
    assert "signature:" in run.stderr


async def test_consistency_between_two_real_checkpoints(client: Client, world: LedgerWorld,
                                                       tmp_path: Path) -> None:
    first = world.sign()
    assert first is not None
    kept = tmp_path / "kept.txt"
    kept.write_text((await client.get("/v1/ledger/checkpoint")).text)
    world.inferences["later"] = world.record("streamed")
    world.sequence()
    second = world.sign()
    assert second is not None
    assert second.size > first.size

    response = await client.get(f"/v1/ledger/consistency?first={first.size}&second={second.size}")
    assert response.status_code == 200
    body = response.json()
    proof = [base64.b64decode(h) for h in body["proof"]]
    verify_consistency(first.size, second.size, first.root, second.root, proof)
    forged = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    with pytest.raises(MerkleError):
        verify_consistency(first.size, second.size, first.root, second.root, forged)

    receipt = await receipt_of(client, world, "later", query=f"?since={first.size}")
    vkey = world.signer.vkey
    verified = verify_receipt(receipt, vkey, older_checkpoint=kept.read_text(),
                              consistency_proof=receipt["consistency"]["proof"])
    assert verified.older_checkpoint is not None
    assert verified.older_checkpoint.size == first.size
    run = cli_verify(tmp_path, receipt, vkey, "--checkpoint", str(kept))
    assert run.returncode == 0, run.stderr
    assert f"extends your checkpoint of size {first.size}" in run.stdout
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(body))
    plain = await receipt_of(client, world, "later")
    run = cli_verify(tmp_path, plain, vkey, "--checkpoint", str(kept), "--consistency",
                     str(proof_file))
    assert run.returncode == 0, run.stderr

    receipt["consistency"]["proof"][0] = base64.b64encode(forged[0]).decode()
    run = cli_verify(tmp_path, receipt, vkey, "--checkpoint", str(kept))
    assert run.returncode == 1
    assert "consistency:" in run.stderr
    run = cli_verify(tmp_path, plain, vkey, "--checkpoint", str(kept))
    assert run.returncode == 1
    assert "?since=" in run.stderr


async def test_receipt_is_202_until_a_checkpoint_covers_it(client: Client,
                                                           world: LedgerWorld) -> None:
    world.sign()
    world.inferences["fresh"] = world.record("tool_use")
    pending = await fetch(client, world, "fresh")
    assert pending.status_code == 202
    assert pending.headers["retry-after"] == "1"
    assert "events are on the ledger" in pending.json()["detail"]
    world.sequence()
    pending = await fetch(client, world, "fresh")
    assert pending.status_code == 202
    assert "not yet inside a signed checkpoint" in pending.json()["detail"]
    world.sign()
    verify_receipt(await receipt_of(client, world, "fresh"), world.signer.vkey)


async def test_receipts_are_tenant_scoped(client: Client, world: LedgerWorld) -> None:
    world.sign()
    assert (await fetch(client, world, "streamed", key=world.key_b)).status_code == 404
    assert (await fetch(client, world, "b_streamed", key=world.key_b)).status_code == 200
    anonymous = await client.get(f"/v1/inferences/{world.public_id('streamed')}/receipt")
    assert anonymous.status_code == 401


async def test_tlog_proofs_checkpoint_and_public_key(client: Client,
                                                     world: LedgerWorld) -> None:
    checkpoint = world.sign()
    assert checkpoint is not None
    vkey = (await client.get("/v1/ledger/public-key")).json()["vkey"]
    assert vkey == world.signer.vkey
    note = await client.get("/v1/ledger/checkpoint")
    assert note.headers["content-type"].startswith("text/plain")
    assert verify_note(note.text, vkey).size == checkpoint.size
    receipt = await receipt_of(client, world, "failed")
    body = await receipt_of(client, world, "failed", query="?format=tlog-proof")
    assert [p["leaf_index"] for p in body["proofs"]] == [
        e["leaf_index"] for e in receipt["entries"]]
    for proof, entry in zip(body["proofs"], receipt["entries"], strict=True):
        parsed, signed = verify_tlog_proof(proof["tlog_proof"], vkey)
        assert (parsed.leaf_index, signed.size) == (entry["leaf_index"], checkpoint.size)
        assert leaf_hash_of_event(json.loads(parsed.extra)) == base64.b64decode(
            entry["leaf_hash"])


@pytest.mark.parametrize(("query", "needle"), [
    ("first=0&second=3", "0 < first <= second"),
    ("first=5&second=3", "0 < first <= second"),
    ("first=1&second=100000", "beyond the latest signed checkpoint"),
    ("first=x&second=3", "first"),
    ("second=3", "first"),
])
async def test_bad_consistency_sizes_are_400(client: Client, world: LedgerWorld, query: str,
                                             needle: str) -> None:
    world.sign()
    response = await client.get(f"/v1/ledger/consistency?{query}")
    assert response.status_code == 400
    assert needle in response.json()["error"]["message"]


async def test_bad_receipt_queries_are_400(client: Client, world: LedgerWorld) -> None:
    world.sign()
    for query, needle in (("?since=0", "since=0"), ("?since=2", "not the size of a checkpoint"),
                          ("?format=xml", "format must be")):
        response = await fetch(client, world, "streamed", query=query)
        assert response.status_code == 400, query
        assert needle in response.json()["error"]["message"]


async def test_gateway_signs_checkpoints_in_process(world: LedgerWorld,
                                                    database_url: str) -> None:
    """With in-process projections the sequencer and checkpointer run in the gateway: a
    receipt turns from 202 to 200 without anyone driving them."""
    settings = Settings(database_url=database_url, signing_key_file=str(world.key_file),
                        log_origin=ORIGIN, run_projections=True)
    world.inferences["live"] = world.record("streamed")
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await fetch(client, world, "live")
        for _ in range(100):
            if response.status_code == 200:
                break
            assert response.status_code == 202
            await asyncio.sleep(0.05)
            response = await fetch(client, world, "live")
        assert response.status_code == 200, response.text
        verify_receipt(response.json(), world.signer.vkey)
