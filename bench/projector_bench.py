"""How fast the projector catches up: N inferences x 5 events from zero, on PostgreSQL (default)
or SQLite, wall time and CPU seconds of the projector process and of its database backends.

Run: .venv/bin/python -m bench.projector_bench [--inferences 5000] [--sqlite] [--batch-size 500]

The events are recorded first (Routed of 50 calls in one save, then their Dispatched, Streamed,
Completed and Debited in another, as group commit writes them); then one projector with every
read model starts from zero in its own thread and the clock runs until every model's position
is the store's end. PostgreSQL backend CPU is read from /proc for the projector's own
connections (the server is local), so other sessions on the server do not count.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from decimal import Decimal
from typing import Any

import psycopg

from adapters.database import Database
from adapters.migrations import migrate
from adapters.store import EventStore
from app.services import tenancy
from domain.context import audit_context
from domain.inference import Inference
from projections.registry import build_projector

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
CANDIDATES = [{"model": "m1", "provider": "openai", "quality": "0.80", "est_cost_usd": "0.001",
               "eligible": True, "cleared_floor": True, "rejection_reason": None}]
POLICY = {"min_quality": "0.70", "routing_preference": "balanced", "preference_live": False}
_TICK = os.sysconf("SC_CLK_TCK")


def record(store: EventStore, tenant: Any, agent: Any, inferences: int, group: int = 50) -> None:
    for start in range(0, inferences, group):
        with audit_context(str(tenant), str(agent), f"bench_{start}"):
            calls = [Inference(api="messages", requested_model="ainfera-inference",
                               router="ainfera-inference", alias_hit=None,
                               candidates=CANDIDATES, chosen_model="m1", policy=POLICY,
                               ruleset_hash="sha256:" + "ab" * 32, stream=True, tools=0,
                               request_digest="d" * 64)
                     for _ in range(min(group, inferences - start))]
            store.save_events([e for call in calls for e in call.collect_events()])
            for call in calls:
                call.dispatch("openai", "m1", "up-1", None)
                call.record_stream(10, 3, 100)
                call.complete("succeeded", "end_turn", {"input_tokens": 10, "output_tokens": 5,
                                                        "cache_read": None,
                                                        "cache_write": None}, 100, None)
                call.debit(Decimal("0.000123"), "v1", None)
            store.save_events([e for call in calls for e in call.collect_events()])


def backend_cpu(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def measure(url: str, inferences: int, batch_size: int) -> dict[str, float]:
    database = Database.from_url(url)
    migrate(database)
    store = EventStore(database)
    try:
        tenant = tenancy.create_tenant(store, "bench")
        agent = tenancy.create_key(store, "bench", None).agent_id
        began = time.perf_counter()
        record(store, tenant, agent, inferences)
        recorded = time.perf_counter() - began
        end = store.max_notification_id()
        pids: list[int] = []

        def connect() -> Any:
            conn = database.connect()
            if database.kind == "postgres":
                pids.append(int(conn.execute("SELECT pg_backend_pid()").fetchone()[0]))
            return conn

        projector = build_projector(connect, database.kind, store, batch_size=batch_size)
        cpu, wall = time.process_time(), time.perf_counter()
        projector.start()
        while projector.position() < end:
            time.sleep(0.005)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        server = backend_cpu(pids)
        projector.stop()
        assert projector.state().last_error is None
        return {"events": end, "recorded_s": recorded, "wall_s": wall, "cpu_s": cpu,
                "backend_cpu_s": server}
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inferences", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    if args.sqlite:
        with tempfile.TemporaryDirectory(prefix="ainfera-bench-") as tmp:
            result = measure(f"sqlite:///{tmp}/bench.db", args.inferences, args.batch_size)
    else:
        base = os.environ.get("AINFERA_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            result = measure(f"{base}?schema={schema}", args.inferences, args.batch_size)
        finally:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    print(f"{'sqlite' if args.sqlite else 'postgres'}: {int(result['events'])} events "
          f"(recorded in {result['recorded_s']:.1f} s); caught up in {result['wall_s']:.2f} s "
          f"wall, {result['cpu_s']:.2f} s projector CPU, {result['backend_cpu_s']:.2f} s "
          f"PostgreSQL backend CPU; {result['events'] / result['wall_s']:,.0f} events/s")


if __name__ == "__main__":
    main()
