"""Projector CPU per inference, two ways, and the same measurement on another checkout of the
code in the same run (the box is shared and loaded: only ratios within one run mean much).

1. catch-up: N inferences x 5 events recorded first, then one projector over every read model
   applies them from zero in the calling thread; process CPU (time.process_time) per inference.
2. trickle: a projector in its own process (as `ainfera serve` runs it: LISTEN/NOTIFY wake-ups
   on PostgreSQL, polling on SQLite) while inferences arrive one at a time at `--rate` per
   second (5 events in 3 commits each, spread over the call like a c1 load); that process's
   CPU per inference, its passes, and how far behind the read models were (seconds from an
   event's commit until every model had applied it).

Run: .venv/bin/python -m bench.projector_cpu [--before DIR] [--repeat 3] [--inferences 2000]
     [--rate 16] [--seconds 10] [--backends postgres,sqlite] [--scenarios catchup,trickle]

`--before DIR` is a checkout of the code to compare with (e.g. `git worktree add` or
`git archive BASE | tar -x -C DIR`); each measurement runs in a fresh subprocess whose imports
come from that directory (PYTHONPATH) or from this one, alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
_TICK = os.sysconf("SC_CLK_TCK")


# -- the measurements (run in a subprocess whose imports come from the code under test) -------

def _fresh_store(backend: str, tmp: str) -> tuple[str, Any]:
    """A URL of an empty store and a function that drops it."""
    import psycopg

    if backend == "sqlite":
        return f"sqlite:///{tmp}/bench.db", lambda: None
    base = os.environ.get("AINFERA_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    return f"{base}?schema={schema}", drop


def _open(url: str) -> tuple[Any, Any, Any, Any]:
    from adapters.database import Database
    from adapters.migrations import migrate
    from adapters.store import EventStore
    from app.services import tenancy

    database = Database.from_url(url)
    migrate(database)
    store = EventStore(database)
    tenant = tenancy.create_tenant(store, "bench")
    agent = tenancy.create_key(store, "bench", None).agent_id
    return database, store, tenant, agent


def catchup(backend: str, inferences: int, batch_size: int) -> dict[str, float]:
    from bench.projector_bench import backend_cpu, record
    from projections.registry import build_projector

    with tempfile.TemporaryDirectory(prefix="ainfera-bench-") as tmp:
        url, drop = _fresh_store(backend, tmp)
        try:
            database, store, tenant, agent = _open(url)
            record(store, tenant, agent, inferences)
            end = store.max_notification_id()
            pids: list[int] = []

            def connect() -> Any:
                conn = database.connect()
                if database.kind == "postgres":
                    pids.append(int(conn.execute("SELECT pg_backend_pid()").fetchone()[0]))
                return conn

            projector = build_projector(connect, database.kind, store, batch_size=batch_size)
            cpu, wall = time.process_time(), time.perf_counter()
            projector.catch_up()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert projector.position() == end, (projector.position(), end)
            server = backend_cpu(pids)
            projector.close()
            store.close()
            return {"cpu_ms_per_inference": 1000 * cpu / inferences,
                    "backend_ms_per_inference": 1000 * server / inferences,
                    "wall_s": wall, "events": end}
        finally:
            drop()


def _one_inference(store: Any, tenant: Any, agent: Any, gap: float) -> list[tuple[int, float]]:
    """One call's events in the commits the gateway makes at c1, spread over the call;
    returns (last notification id, commit time) of each commit."""
    from bench.projector_bench import CANDIDATES, POLICY
    from domain.context import audit_context
    from domain.inference import Inference

    commits = []
    with audit_context(str(tenant), str(agent), f"trickle_{uuid.uuid4().hex[:8]}"):
        call = Inference(api="messages", requested_model="ainfera-inference",
                         router="ainfera-inference", alias_hit=None, candidates=CANDIDATES,
                         chosen_model="m1", policy=POLICY, ruleset_hash="sha256:" + "ab" * 32,
                         stream=True, tools=0, request_digest="d" * 64)
        steps = [
            lambda: None,
            lambda: call.dispatch("openai", "m1", "up-1", None),
            lambda: (call.record_stream(10, 3, 100),
                     call.complete("succeeded", "end_turn",
                                   {"input_tokens": 10, "output_tokens": 5, "cache_read": None,
                                    "cache_write": None}, 100, None),
                     call.debit(Decimal("0.000123"), "v1", None)),
        ]
        for i, step in enumerate(steps):
            if i:
                time.sleep(gap)
            step()
            recordings = store.save_events(call.collect_events())
            commits.append((max(r.notification.id for r in recordings), time.monotonic()))
    return commits


def project_child(url: str) -> None:
    """The projector process of the trickle scenario: runs until stdin closes, then prints
    its CPU and counters as JSON."""
    from adapters.database import Database
    from adapters.store import EventStore
    from projections.registry import build_projector

    database = Database.from_url(url)
    store = EventStore(database)
    projector = build_projector(database.connect, database.kind, store,
                                listen_connect=database.connect,
                                channel=getattr(store.app.recorder, "channel_name", None))
    cpu = time.process_time()
    projector.start()
    print("ready", flush=True)
    sys.stdin.read()
    projector.stop()
    cpu = time.process_time() - cpu
    state = projector.state()
    store.close()
    print(json.dumps({"cpu_s": cpu, "batches": state.batches_total,
                      "statements": state.statements_total, "errors": state.errors_total}),
          flush=True)


def trickle(backend: str, rate: float, seconds: float) -> dict[str, float]:
    from projections.registry import names
    from projections.tracking import positions
    from projections.view import Session

    with tempfile.TemporaryDirectory(prefix="ainfera-bench-") as tmp:
        url, drop = _fresh_store(backend, tmp)
        try:
            database, store, tenant, agent = _open(url)
            child = subprocess.Popen([sys.executable, str(HERE), "--project", url],  # noqa: S603
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=os.environ.copy(), text=True)
            assert child.stdout is not None
            assert child.stdin is not None
            assert child.stdout.readline().strip() == "ready"
            commits: list[tuple[int, float]] = []
            seen: list[tuple[float, int]] = []  # (when, lowest position)
            done = threading.Event()

            def watch() -> None:
                session = Session(database.connect(), database.kind)
                try:
                    while not done.is_set():
                        session.begin(write=False)
                        position = min(positions(session, names()).values())
                        session.rollback()
                        seen.append((time.monotonic(), position))
                        time.sleep(0.005)
                finally:
                    session.close()

            watcher = threading.Thread(target=watch, daemon=True)
            # Let the projector's first passes (seeding its tracking rows) happen before the
            # clock starts.
            time.sleep(1.0)
            start_id = store.max_notification_id()
            watcher.start()
            began = time.monotonic()
            count = 0
            period = 1.0 / rate
            while time.monotonic() - began < seconds:
                due = began + count * period
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())
                commits += _one_inference(store, tenant, agent, period / 4)
                count += 1
            ended = time.monotonic()
            end = commits[-1][0]
            while not seen or seen[-1][1] < end:
                if time.monotonic() - ended > 30:
                    raise RuntimeError("the projector did not catch up within 30 s")
                time.sleep(0.01)
            caught_up = next(t for t, p in seen if p >= end) - ended
            done.set()
            watcher.join()
            child.stdin.close()
            report = json.loads(child.stdout.readline())
            child.wait()
            lags = []
            for nid, at in commits:
                applied = next((t for t, p in seen if t >= at and p >= nid), None)
                lags.append((applied if applied is not None else ended + caught_up) - at)
            store.close()
            applied_events = end - start_id
            return {"cpu_ms_per_inference": 1000 * report["cpu_s"] / count,
                    "passes_per_inference": report["batches"] / count,
                    "statements_per_inference": report["statements"] / count,
                    "events": applied_events, "inferences": count,
                    "lag_p50_ms": 1000 * statistics.median(lags),
                    "lag_max_ms": 1000 * max(lags), "caught_up_after_end_ms": 1000 * caught_up,
                    "errors": report["errors"]}
        finally:
            drop()


# -- the driver ------------------------------------------------------------------------------

def _run(code: Path, args: list[str]) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, str(HERE), *args], env=env, cwd=code,  # noqa: S603
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--inferences", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--rate", type=float, default=16.0, help="inferences per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--backends", default="postgres,sqlite")
    parser.add_argument("--scenarios", default="catchup,trickle")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.project:
        project_child(args.project)
        return
    if args.child:
        scenario, backend = args.child
        result = (catchup(backend, args.inferences, args.batch_size) if scenario == "catchup"
                  else trickle(backend, args.rate, args.seconds))
        print(json.dumps(result))
        return
    codes = {"after": ROOT}
    if args.before:
        codes = {"before": args.before.resolve(), **codes}
    common = ["--inferences", str(args.inferences), "--batch-size", str(args.batch_size),
              "--rate", str(args.rate), "--seconds", str(args.seconds)]
    results: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    for rep in range(args.repeat):
        for scenario in args.scenarios.split(","):
            for backend in args.backends.split(","):
                for label, code in codes.items():
                    result = _run(code, [*common, "--child", scenario, backend])
                    results.setdefault((scenario, backend, label), []).append(result)
                    print(f"[{rep + 1}/{args.repeat}] {scenario:8} {backend:8} {label:6} "
                          + " ".join(f"{k}={v:.3g}" for k, v in result.items()), flush=True)
    print("\nmedians (CPU per inference in ms):")
    for scenario in args.scenarios.split(","):
        for backend in args.backends.split(","):
            line = f"{scenario:8} {backend:8}"
            medians = {}
            for label in codes:
                runs = results[(scenario, backend, label)]
                medians[label] = statistics.median(r["cpu_ms_per_inference"] for r in runs)
                extra = ""
                if scenario == "trickle":
                    passes = statistics.median(r["passes_per_inference"] for r in runs)
                    extra = (f", passes/inf {passes:.2f}"
                             f", lag max {max(r['lag_max_ms'] for r in runs):.0f} ms"
                             f", caught up {max(r['caught_up_after_end_ms'] for r in runs):.0f} ms")
                line += f" | {label} {medians[label]:.3f}{extra}"
            if len(medians) == 2:
                line += f" | after/before {medians['after'] / medians['before']:.2f}"
            print(line)


if __name__ == "__main__":
    main()
