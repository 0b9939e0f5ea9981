"""`make bench` (and `make bench-compare`): every benchmark in sequence, a summary on stdout and
docs/benchmarks.md.

Run: .venv/bin/python -m bench [--quick] [--litellm PATH] [--no-postgres] [--no-pin]

1. load (bench/gateway_bench.py): the direct ceiling, the stack floor, LiteLLM (--litellm,
   the proxy binary make bench-compare installs), the gateway on PostgreSQL + Redis and on
   SQLite, pinned model and routed, at 1 and 64 connections; CPU per request by process and
   thread; projection lag during and after a long load; time to first byte, streamed
2. group commit vs one save per call (SQLite and PostgreSQL)
3. bench/ledger_bench.py (the ledger math), run as a subprocess

Everything talks to loopback only: the fake upstream, the servers under test, PostgreSQL and
Redis are on 127.0.0.1. PostgreSQL comes from AINFERA_BENCH_POSTGRES_URL, else
AINFERA_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test; Redis from
AINFERA_BENCH_REDIS_URL, else AINFERA_TEST_REDIS_URL, else redis://127.0.0.1:6379/0. When one
is unreachable its rows are skipped (or run without Redis) and the report says so.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import uvloop

from bench.commit_bench import run_commit_benchmark
from bench.common import ROOT, Section
from bench.gateway_bench import LoadOutcome, run_load_benchmarks
from bench.pinning import Pinning
from bench.plan import Plan
from bench.report import PG, SQLITE
from bench.servers import Store

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
REPORT = ROOT / "docs" / "benchmarks.md"


def postgres_url(disabled: bool) -> tuple[str | None, str]:
    """The PostgreSQL URL to use (None when unusable) and its server version or why not."""
    if disabled:
        return None, "skipped (--no-postgres)"
    url = (os.environ.get("AINFERA_BENCH_POSTGRES_URL")
           or os.environ.get("AINFERA_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)
    if urlsplit(url).hostname not in LOOPBACK:
        return None, "skipped (benchmarks only talk to loopback)"
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        return None, f"skipped (unreachable: {str(exc).strip().splitlines()[0]})"
    return url, f"PostgreSQL {row[0] if row else '?'}"


def redis_url(disabled: bool) -> tuple[str | None, str]:
    """The Redis URL for the PostgreSQL gateway's spend counters (None: in-process counters),
    and its server version or why not."""
    if disabled:
        return None, "skipped (--no-postgres)"
    import redis

    url = (os.environ.get("AINFERA_BENCH_REDIS_URL")
           or os.environ.get("AINFERA_TEST_REDIS_URL") or DEFAULT_REDIS_URL)
    if urlsplit(url).hostname not in LOOPBACK:
        return None, "skipped (benchmarks only talk to loopback)"
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        info = client.info("server")
    except redis.RedisError as exc:
        return None, f"skipped (unreachable: {exc})"
    finally:
        client.close()
    return url, f"Redis {info.get('redis_version', '?')}"


def machine_facts(pg: str, rd: str) -> list[tuple[str, str]]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return [
        ("nproc", str(len(os.sched_getaffinity(0)))),
        ("CPU", cpu),
        ("memory", memory),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("SQLite", sqlite3.sqlite_version),
        ("PostgreSQL", pg),
        ("Redis", rd),
        ("load average at start (1/5/15 min)", _loadavg()),
    ]


def _loadavg() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def ledger_section() -> Section:
    began = time.perf_counter()
    section = Section("Ledger math (bench/ledger_bench.py, 1,000,000 leaves)", ["figure"])
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(ROOT / "bench" / "ledger_bench.py")], cwd=ROOT,
        capture_output=True, text=True, timeout=240, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    for line in done.stdout.splitlines():
        if line.strip():
            section.add(line.strip())
    if done.returncode:
        section.notes.append(f"ledger_bench.py exited {done.returncode}: "
                             f"{done.stderr.strip().splitlines()[-1:]}")
    section.seconds = time.perf_counter() - began
    return section


def setup_text(stores: list[Store], pinning: Pinning, load: LoadOutcome) -> str:
    affinity = ", ".join(f"{name} {'/'.join(sorted(cores))}"
                         for name, cores in load.affinity.items())
    where = "; ".join(f"{s.label} ({_store_detail(s)})" for s in stores)
    peer = (f" and the LiteLLM proxy ({load.litellm_version}, its own venv "
            "bench/.litellm-venv)" if load.litellm_version else "")
    return (
        "Setup: processes on loopback, each with its own GIL. The load generator "
        "(this process: aiohttp on uvloop, closed loop over kept-alive connections) and the "
        "fake upstream (tests/fakes/upstream.py in bench/fake_server.py, on uvloop) are the "
        "client side. One server under test runs at a time: the stack floor "
        "(bench/floor_server.py: Litestar + msgspec, forwarding to the fake upstream through "
        "the gateway's own upstream client, adapters.providers.http's aiohttp path), "
        "`ainfera serve` (1 uvicorn worker, uvloop + "
        "httptools, started by tests/harness/gateway.py in its default topology: "
        "AINFERA_PROJECTOR=process, the projector and checkpointer in a child process the "
        f"gateway supervises){peer}. Stores: {where}. Core pinning: {pinning.describe()}, "
        "set with sched_setaffinity (inherited at fork, re-applied to every thread of each "
        "server's process tree); Cpus_allowed_list read back from /proc: "
        f"{affinity or 'not recorded'}. PostgreSQL and Redis are the machine's shared "
        "services and float over both cores; the group-commit and ledger sections measure "
        "one process alone and run unpinned. CPU is user + system time from "
        "/proc/PID/stat and /proc/PID/task/TID/stat; the gateway's threads carry their "
        "Python names (bench/threadnames/sitecustomize.py).")


def _store_detail(store: Store) -> str:
    if store.kind == "sqlite":
        return "a fresh SQLite file, spend counters in process"
    counters = "spend counters in Redis under a fresh key prefix" if store.redis_url \
        else "Redis unreachable, spend counters in process"
    return f"a fresh PostgreSQL schema, {counters}"


def write_report(sections: list[Section], facts: list[tuple[str, str]], command: str,
                 started: datetime, wall: float, setup: str, quick: bool) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/__main__.py`); do not edit by hand, rerun it. "
        "Figures come from one run on one machine: compare the ratios, which hold across "
        "machines far better than the absolute numbers.",
        "",
        *(["**This report comes from a `--quick` run: seconds-long rows that check the "
           "harness works end to end. Its figures are not to be quoted; run `make bench` "
           "(or `make bench-compare`) on a quiet machine for figures.**", ""] if quick else []),
        "| run | |",
        "| --- | --- |",
        f"| command | `{command}` |",
        f"| date | {started.strftime('%Y-%m-%d %H:%M UTC')} |",
        f"| wall time of the whole run | {wall:.0f} s |",
        *(f"| {name} | {value} |" for name, value in facts),
        "",
        setup,
        "",
        "Commands: `make bench` (everything but LiteLLM), `make bench-compare` (the same with "
        "the LiteLLM rows; it creates bench/.litellm-venv first), `BENCH_ARGS=--quick` on "
        "either for a smoke test of the harness whose figures are not to be quoted.",
        "",
    ]
    for number, section in enumerate(sections, 1):
        section.title = f"{number}. {section.title}"
        lines.append(section.markdown())
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--no-postgres", action="store_true",
                        help="SQLite only (no PostgreSQL, no Redis)")
    parser.add_argument("--quick", action="store_true",
                        help="short runs (a smoke test of the benchmarks, not figures)")
    parser.add_argument("--litellm", type=Path, metavar="PATH",
                        help="the `litellm` proxy binary to measure beside the gateway "
                             "(make bench-compare passes bench/.litellm-venv/bin/litellm)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    args = parser.parse_args()
    if args.litellm is not None and not args.litellm.is_file():
        parser.error(f"--litellm {args.litellm}: no such file (run make bench-compare)")
    started = datetime.now(UTC)
    began = time.perf_counter()
    pg_url, pg_fact = postgres_url(args.no_postgres)
    rd_url, rd_fact = redis_url(args.no_postgres or pg_url is None)
    facts = machine_facts(pg_fact, rd_fact)
    plan = Plan.short() if args.quick else Plan()
    pinning = Pinning.plan(enabled=not args.no_pin)
    # Before anything is started: the fake upstream and the asyncio executor inherit it.
    pinning.pin_self()
    stores = [Store("sqlite", SQLITE)]
    if pg_url:
        stores.insert(0, Store("postgres", PG, pg_url, rd_url))
    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="ainfera-bench-") as tmp, \
            asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        load = run_load_benchmarks(plan, Path(tmp), stores, args.litellm, pinning, runner)
        sections += load.sections
        pinning.unpin_self()
        print("group commit", flush=True)
        sections.append(run_commit_benchmark(Path(tmp), pg_url, runner,
                                             duration=plan.commit_duration))
    print("ledger math", flush=True)
    sections.append(ledger_section())
    wall = time.perf_counter() - began
    command = " ".join(["python -m bench", *sys.argv[1:]])
    write_report(sections, facts, command, started, wall, setup_text(stores, pinning, load),
                 plan.quick)
    print()
    print(" ".join(f"{name}={value}" for name, value in facts[:2] + facts[4:5]))
    for section in sections:
        print(section.text())
    print(f"whole run: {wall:.0f} s; written to {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
