"""`/readyz` names what cannot work (issue 10): read models that no projector moves, and a
checkpointer that refuses to sign (the stored tree no longer extends a signed checkpoint);
`/healthz` stays 200 through both, since the process itself is fine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from adapters.database import Database
from app.services import tenancy
from app.services.readiness import STALL_AFTER_S
from tests.fakes.upstream import FakeUpstream, start_fake_upstream
from tests.harness.inprocess import InProcess, async_gateway

Client = AsyncTestClient[Any]
# How long a test waits for /readyz to say what it must: the stall rule's own 5 s, plus room
# for a loaded machine.
WITHIN_S = STALL_AFTER_S + 15


@pytest.fixture
def fake() -> Any:
    with start_fake_upstream() as upstream:
        yield upstream


async def until_ready_says(client: Client, component: str, words: str) -> dict[str, Any]:
    deadline = time.monotonic() + WITHIN_S
    while True:
        answer = await client.get("/readyz")
        body: dict[str, Any] = answer.json()
        if answer.status_code == 503 and component in body["failing"] \
                and words in body["checks"][component]:
            assert answer.headers["retry-after"] == "1"
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.3)


@pytest.fixture
async def without_projector(tmp_path: Path, fake: FakeUpstream
                            ) -> AsyncIterator[tuple[Client, InProcess]]:
    async with async_gateway(f"sqlite:///{tmp_path}/stall.db", fake, tmp_path,
                             run_projections=False) as pair:
        yield pair


async def test_read_models_nobody_moves_are_a_stalled_projector(
        without_projector: tuple[Client, InProcess]) -> None:
    client, world = without_projector
    tenancy.create_tenant(world.store, "more-events")  # the ledger moves, the read models not
    body = await until_ready_says(client, "projector", "stalled")
    assert "events behind the ledger" in body["checks"]["projector"]
    assert (await client.get("/healthz")).status_code == 200


async def test_a_checkpointer_that_refuses_to_sign_a_fork_is_named(
        tmp_path: Path, fake: FakeUpstream) -> None:
    url = f"sqlite:///{tmp_path}/fork.db"
    async with async_gateway(url, fake, tmp_path) as (client, world):
        deadline = time.monotonic() + WITHIN_S
        database = Database.from_url(url)
        while True:  # the in-process checkpointer signs what prepare_world recorded
            conn = database.connect()
            try:
                signed = conn.execute("SELECT max(tree_size) FROM ledger_checkpoints").fetchone()
            finally:
                conn.close()
            if signed and signed[0]:
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        # Someone edits the stored tree's history: the signed root no longer matches it.
        conn = database.connect()
        try:
            conn.execute("UPDATE ledger_checkpoints SET root_hash = ? WHERE tree_size = ?",
                         ("00" * 32, signed[0]))
        finally:
            conn.close()
        tenancy.create_tenant(world.store, "one-more")  # the tree grows past the checkpoint
        body = await until_ready_says(client, "checkpointer", "refusing to sign")
        assert "refusing to sign" in body["checks"]["checkpointer"]
        assert (await client.get("/healthz")).status_code == 200
