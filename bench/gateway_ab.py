"""The gateway of this checkout against another checkout's, in one run: the same load rows
(closed loop, non-streamed POST /v1/messages, pinned model, core pinning as `make bench`)
alternating between the two, so a change is judged by ratios measured minutes apart on the
same machine rather than against a report from another day.

Run: .venv/bin/python -m bench.gateway_ab --other DIR [--store postgres|sqlite]
     [--rounds 2] [--seconds 6]

DIR is another checkout with its own .venv (`git worktree add DIR REV && make -C DIR
install`). Each side runs in a subprocess of its own interpreter and code: this file is run by
DIR's Python with DIR's `bench` package on the path, so it uses only what `bench` has long
offered (servers.gateway, LoadBench). PostgreSQL and Redis are the test services
(AINFERA_TEST_POSTGRES_URL, AINFERA_TEST_REDIS_URL, with the usual local defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
PG = os.environ.get("AINFERA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("AINFERA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def one_side(root: Path, store_kind: str, seconds: float) -> list[dict[str, Any]]:
    """The rows of the checkout at `root` (this process runs its interpreter and code)."""
    sys.path.insert(0, str(root))
    os.chdir(root)
    from bench import servers
    from bench.common import FakeServer
    from bench.overhead import LoadBench
    from bench.pinning import Pinning
    from bench.plan import Plan
    from bench.targets import gateway_messages

    plan = Plan(duration=seconds, warmup=1.0, concurrency=(1, 64))
    pinning = Pinning.plan(True)
    pinning.pin_self()
    store = (servers.Store("sqlite", "SQLite + in-process counters") if store_kind == "sqlite"
             else servers.Store("postgres", "PostgreSQL + Redis", PG, REDIS))
    rows = []
    with asyncio.Runner() as runner, tempfile.TemporaryDirectory() as tmp, \
            FakeServer() as fake:
        load = LoadBench(plan, runner.run, fake)
        with servers.gateway(store, fake, Path(tmp), pinning) as gw:
            target = gateway_messages(gw.url, gw.key, "fake-claude", False)
            for row in load.measure(target, "gateway", store.label, gw):
                usage = row.cpu
                spent = {k: v * 1000 / row.result.requests
                         for k, v in (usage.seconds.items() if usage else ())}
                rows.append({"conc": row.conc, "rps": row.rps, "p50_ms": row.p50 * 1000,
                             "errors": row.result.errors, "cpu_ms": spent})
    return rows


def run_side(root: Path, store_kind: str, seconds: float) -> list[dict[str, Any]]:
    python = root / ".venv" / "bin" / "python"
    out = subprocess.run(  # noqa: S603 - a checkout's own interpreter running this file
        [str(python), str(HERE), "--one", str(root), "--store", store_kind,
         "--seconds", str(seconds)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_ab")
    parser.add_argument("--other", type=Path, help="another checkout, with its own .venv")
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one_side(args.one, args.store, args.seconds)))
        return
    if args.other is None:
        parser.error("--other DIR is required")
    sides = {"other": args.other.resolve(), "this": HERE.parent.parent}
    print(f"store: {args.store}; this = {sides['this']}, other = {sides['other']}")
    print("round side  conc   req/s  p50 ms  CPU ms/req (gateway, projector)")
    for number in range(1, args.rounds + 1):
        for name, root in sides.items():
            for row in run_side(root, args.store, args.seconds):
                cpu = row["cpu_ms"]
                print(f"{number:>5} {name:<5} {row['conc']:>4} {row['rps']:>7,.0f} "
                      f"{row['p50_ms']:>7.1f}  {cpu.get('gateway', 0):.2f}, "
                      f"{cpu.get('projector', 0):.2f}  errors {row['errors']}", flush=True)


if __name__ == "__main__":
    main()
