"""Receipt fetch and offline verification against a ledger of one million leaves.

Run: PYTHONPATH=. .venv/bin/python bench/receipt_bench.py [--leaves N] [--keep DIR]

Builds a SQLite store whose `ledger_entries` / `ledger_nodes` hold N leaves written straight
into the tables (filler rows, hashed and chained like real ones, plus the five real events of
one inference spread across the tree), then measures what the gateway and an auditor pay:
- signing a checkpoint of the whole tree from the table (projections.checkpointer.sign_latest);
- build_receipt from the table (what GET /v1/inferences/{id}/receipt runs after auth);
- the same request end to end through the HTTP app (auth, tenant check, receipt, JSON);
- a consistency proof between two sizes from the table;
- verify_receipt in-process, and `ainfera receipt verify` as a subprocess (what an analyst
  runs: Python start-up included).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from adapters.database import Database
from adapters.migrations import migrate
from adapters.receipts import verify_receipt
from adapters.signer import Ed25519NoteSigner
from adapters.store import EventStore
from adapters.writer import GroupCommitWriter
from app.factory import create_app
from app.services import tenancy
from app.settings import Settings
from domain.hashchain import GENESIS, chain_hash
from domain.ids import public_inference_id
from domain.merkle_tree import CompactRange
from projections.checkpointer import sign_latest
from projections.ledger_entries import LedgerEntries
from projections.ledger_event import canonical_leaf
from projections.ledger_receipts import build_receipt, consistency
from projections.ledger_tables import INSERT_ENTRY, INSERT_NODE, MIN_LEVEL
from projections.registry import build_projector, names
from projections.view import Session
from tests.harness.ledger import record_inference

ORIGIN = "bench.example/log"
FILLER = ('{{"agent_id":null,"aggregate_id":"00000000-0000-4000-8000-{i:012d}","leaf_index":{i},'
          '"recorded_at":"2025-06-01T00:00:00.000000Z","request_id":"req_{i}",'
          '"tenant_id":"bench-filler","type":"Filler","version":1}}')


def timed(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def build(directory: Path, n: int) -> tuple[Database, Ed25519NoteSigner, str, str, str]:
    """The store, the key, the inference's public id, its owner's API key, the key file."""
    database = Database.from_url(f"sqlite:///{directory / 'bench.db'}")
    migrate(database)
    store = EventStore(database)
    writer = GroupCommitWriter(store)
    writer.start()
    tenant = tenancy.create_tenant(store, "bench")
    issued = tenancy.create_key(store, "bench", None)
    inference = record_inference(writer, tenant, issued.agent_id, "streamed")
    events = store.events_of(inference.id)
    writer.close()
    store.close()
    # Where the inference's events sit: early, middle (two adjacent), and the very end.
    positions = [n // 7, n // 2, n // 2 + 1, n - 2, n - 1]
    real = {p: canonical_leaf(e, p) for p, e in zip(positions, events, strict=True)}
    edge, chain = CompactRange(), GENESIS
    conn = database.connect()
    started = time.perf_counter()
    conn.execute("BEGIN")
    rows: list[tuple[Any, ...]] = []
    nodes: list[tuple[int, int, str]] = []
    for i in range(n):
        if i in real:
            obj, text, leaf = real[i]
            row = (obj["aggregate_id"], obj["version"], obj["type"], obj["tenant_id"])
        else:
            text = FILLER.format(i=i)
            leaf = hashlib.sha256(b"\0" + text.encode()).digest()
            row = (f"00000000-0000-4000-8000-{i:012d}", 1, "Filler", "bench-filler")
        chain = chain_hash(chain, leaf)
        rows.append((i, 1_000_000_000 + i, *row, leaf.hex(), chain.hex(), text))
        nodes += [(k[0], k[1], h.hex()) for k, h in edge.append(leaf) if k[0] >= MIN_LEVEL]
        if len(rows) == 50_000:
            conn.executemany(database.sql(INSERT_ENTRY), rows)
            rows = []
    conn.executemany(database.sql(INSERT_ENTRY), rows)
    conn.executemany(database.sql(INSERT_NODE), nodes)
    conn.execute("COMMIT")
    conn.close()
    print(f"{n:,} leaf rows and {len(nodes):,} subtree roots written in "
          f"{time.perf_counter() - started:.1f} s "
          f"({(directory / 'bench.db').stat().st_size / 2**20:.0f} MiB SQLite file)")
    key_file = directory / "signing.key"
    signer = Ed25519NoteSigner.load_or_create(key_file, ORIGIN)
    return database, signer, public_inference_id(inference.id, inference.api), issued.key, \
        str(key_file)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--keep", help="build in this directory and leave it there")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        run(Path(args.keep), args.leaves)
        return
    with tempfile.TemporaryDirectory(prefix="ainfera-receipt-bench-") as scratch:
        run(Path(scratch), args.leaves)


def run(directory: Path, n: int) -> None:
    database, signer, public_id, api_key, key_file = build(directory, n)
    session = Session(database.connect(), database.kind)

    start = time.perf_counter()
    checkpoint = sign_latest(session, signer, ORIGIN)
    assert checkpoint is not None
    assert checkpoint.size == n
    print(f"sign a checkpoint of {n:,} leaves from the table: "
          f"{(time.perf_counter() - start) * 1e3:.1f} ms")

    aggregate = str(json.loads(session.execute(
        "SELECT event_json FROM ledger_entries WHERE leaf_index = %s", (n - 1,))[0][0])
        ["aggregate_id"])
    receipt: Any = build_receipt(session, aggregate, public_id, ORIGIN, 5)
    took = timed(lambda: build_receipt(session, aggregate, public_id, ORIGIN, 5), 50)
    print(f"build_receipt, 5 entries (SQL reads + 5 inclusion proofs): {took * 1e3:.2f} ms")
    took = timed(lambda: consistency(session, n // 3, n), 50)
    print(f"consistency proof {n // 3:,} -> {n:,} from the table: {took * 1e3:.2f} ms")
    session.close()

    # The gateway waits at start for usage_daily to reach the store's end (spend counters);
    # bring the read models there as a projection worker would. Not the sequencer: this
    # ledger's leaves were written straight into its tables.
    store = EventStore(database)
    projector = build_projector(database.connect, database.kind, store,
                                [name for name in names() if name != LedgerEntries.name])
    projector.catch_up()
    projector.close()
    store.close()
    settings = Settings(database_url=database.url, signing_key_file=key_file,
                        log_origin=ORIGIN, run_projections=False)

    async def over_http() -> float:
        async with AsyncTestClient(app=create_app(settings)) as client:
            url = f"/v1/inferences/{public_id}/receipt"
            headers = {"x-api-key": api_key}
            samples = []
            for _ in range(50):
                begin = time.perf_counter()
                response = await client.get(url, headers=headers)
                samples.append(time.perf_counter() - begin)
                assert response.status_code == 200, response.text
            return statistics.median(samples)

    print(f"GET /v1/inferences/{{id}}/receipt end to end (in-process client): "
          f"{asyncio.run(over_http()) * 1e3:.2f} ms")

    verify_receipt(receipt, signer.vkey)
    took = timed(lambda: verify_receipt(receipt, signer.vkey), 200)
    print(f"verify_receipt, 5 entries against the {n:,}-leaf checkpoint: {took * 1e3:.2f} ms")
    path = directory / "receipt.json"
    path.write_text(json.dumps(receipt))
    ainfera = str(Path(sys.executable).with_name("ainfera"))

    def cli() -> None:
        subprocess.run([ainfera, "receipt", "verify", str(path), "--vkey", signer.vkey],  # noqa: S603
                       check=True, capture_output=True)

    print(f"`ainfera receipt verify` subprocess (with interpreter start): "
          f"{timed(cli, 5) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
