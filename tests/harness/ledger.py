"""A real store with the gateway's event sequences on it, for the ledger tests.

Inferences are built with the domain aggregates under audit_context, exactly as
app.services.inference records them (Routed first and alone, the rest saved together on
close), and saved through the group-commit writer; tenants and keys through the same services
the CLI uses. The sequencer and the checkpointer are driven from the test thread so every test
decides when leaves and checkpoints appear.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from adapters.database import Database
from adapters.migrations import migrate
from adapters.signer import Ed25519NoteSigner
from adapters.store import EventStore
from adapters.writer import GroupCommitWriter
from app.services import tenancy
from domain.context import audit_context
from domain.ids import public_inference_id
from domain.inference import Inference
from projections.checkpointer import sign_latest
from projections.ledger_entries import LedgerEntries
from projections.ledger_tables import StoredCheckpoint
from projections.projector import Projector
from projections.registry import build_projector, names
from projections.view import Session

ORIGIN = "ledger.test/log"
KINDS = ("streamed", "tool_use", "failed", "passthrough")
EXPECTED_TYPES = {
    "streamed": ["Routed", "Dispatched", "Streamed", "Completed", "Debited"],
    "tool_use": ["Routed", "Dispatched", "Completed", "Debited"],
    "failed": ["Routed", "Dispatched", "Dispatched", "Completed"],
    "passthrough": ["Routed", "Dispatched", "Completed", "Debited"],
}


def _candidates() -> list[dict[str, Any]]:
    return [
        {"model": "fake-claude", "provider": "anthropic", "quality": "0.91",
         "est_cost_usd": "0.004200", "eligible": True, "cleared_floor": True,
         "rejection_reason": None},
        {"model": "fake-gpt", "provider": "openai", "quality": "0.70",
         "est_cost_usd": "0.000800", "eligible": False, "cleared_floor": False,
         "rejection_reason": "below_floor"},
    ]  # fmt: skip


def record_inference(writer: GroupCommitWriter, tenant: UUID, agent: UUID, kind: str) -> Inference:
    """One inference of `kind` with the events the gateway records for it."""
    routed = kind != "passthrough"
    with audit_context(str(tenant), str(agent), f"req_{uuid.uuid4().hex}"):
        inference = Inference(
            api="messages" if kind != "tool_use" else "chat.completions",
            requested_model="ainfera-inference" if routed else "fake-claude",
            router="ainfera-inference" if routed else "direct", alias_hit=None,
            candidates=_candidates() if routed else [], chosen_model="fake-claude",
            policy={"min_quality": "0.80", "routing_preference": "balanced",
                    "preference_live": False},
            ruleset_hash="sha256:" + "ab" * 32, stream=kind == "streamed",
            tools=2 if kind == "tool_use" else 0, request_digest="sha256:" + "cd" * 32,
        )
    writer.save_blocking(inference)  # write-ahead: Routed alone, before any upstream byte
    with audit_context(str(tenant), str(agent), f"req_{uuid.uuid4().hex}"):
        usage = {"input_tokens": 120, "output_tokens": 48, "cache_read": None, "cache_write": 0}
        if kind == "failed":
            for status in (529, 500):
                inference.dispatch("anthropic", "up-claude", None,
                                   {"type": "overloaded_error", "status": status,
                                    "retryable": True})
            inference.complete("failed", None, None, 840, None)
        else:
            inference.dispatch("anthropic", "up-claude", "req_up_1", None)
            if kind == "streamed":
                inference.record_stream(ttft_ms=212, chunks=17, bytes=4096)
            stop = "tool_use" if kind == "tool_use" else "end_turn"
            inference.complete("succeeded", stop, usage, 1234, "sha256:" + "ef" * 32)
            inference.debit(Decimal("0.000842"), "2025-06-01", f"res_{inference.id.hex}")
    writer.save_blocking(inference)
    return inference


@dataclass
class LedgerWorld:
    database: Database
    store: EventStore
    writer: GroupCommitWriter
    signer: Ed25519NoteSigner
    key_file: Path
    tenant_a: UUID
    tenant_b: UUID
    agent_a: UUID
    agent_b: UUID
    key_a: str
    key_b: str
    inferences: dict[str, Inference] = field(default_factory=dict)
    sequencer: Projector | None = None

    def session(self) -> Session:
        return Session(self.database.connect(), self.database.kind)

    def sequence(self) -> int:
        """Runs the sequencer until the ledger holds every stored event."""
        if self.sequencer is None:
            self.sequencer = build_projector(self.database.connect, self.database.kind,
                                             self.store, [LedgerEntries.name])
        return self.sequencer.catch_up()

    def catch_up_read_models(self) -> None:
        """Every other registered projection, applied to the end of the store once."""
        db = self.database
        others = [name for name in names() if name != LedgerEntries.name]
        projector = build_projector(db.connect, db.kind, self.store, others)
        try:
            projector.catch_up()
        finally:
            projector.close()

    def sign(self) -> StoredCheckpoint | None:
        session = self.session()
        try:
            return sign_latest(session, self.signer, ORIGIN)
        finally:
            session.close()

    def record(self, kind: str, tenant: str = "a") -> Inference:
        if tenant == "a":
            return record_inference(self.writer, self.tenant_a, self.agent_a, kind)
        return record_inference(self.writer, self.tenant_b, self.agent_b, kind)

    def public_id(self, kind: str) -> str:
        inference = self.inferences[kind]
        return public_inference_id(inference.id, inference.api)

    def close(self) -> None:
        if self.sequencer is not None:
            self.sequencer.close()
        self.writer.close()
        self.store.close()


@contextmanager
def ledger_world(database_url: str, tmp_path: Path) -> Iterator[LedgerWorld]:
    """Tenants a and b with keys, one inference of every kind for a and one for b (interleaved
    with b's, so a's leaves are not contiguous), all sequenced; nothing signed yet."""
    database = Database.from_url(database_url)
    migrate(database)
    store = EventStore(database)
    writer = GroupCommitWriter(store)
    writer.start()
    key_file = tmp_path / "signing.key"
    signer = Ed25519NoteSigner.load_or_create(key_file, ORIGIN)
    tenant_a = tenancy.create_tenant(store, "tenant-a")
    tenant_b = tenancy.create_tenant(store, "tenant-b")
    issued_a = tenancy.create_key(store, "tenant-a", None)
    issued_b = tenancy.create_key(store, "tenant-b", None)
    world = LedgerWorld(database, store, writer, signer, key_file, tenant_a, tenant_b,
                        issued_a.agent_id, issued_b.agent_id, issued_a.key, issued_b.key)
    try:
        for kind in KINDS:
            world.inferences[kind] = world.record(kind)
            world.inferences[f"b_{kind}"] = world.record(kind, tenant="b")
        world.sequence()
        yield world
    finally:
        world.close()
