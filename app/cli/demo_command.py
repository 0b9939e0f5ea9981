"""`ainfera demo` (what `make demo` runs): a first hour in one command, with no vendor keys and
no network.

It starts the upstream simulator (`upstream_sim`, clearly not a model) and a real gateway
process on the embedded store in `var/demo/`, creates a tenant, an agent with a daily cap and a
key, then makes real calls with the official `anthropic` and `openai` SDKs: routed and pinned,
plain, streamed and with tools, plus one refused by a cap. It fetches a receipt, verifies it
offline against the log's public key, shows the dashboard, prints how to keep exploring, and
keeps the gateway serving until Ctrl-C (`--no-wait` stops after the tour, for tests and CI).

Each run starts from a fresh demo ledger: it deletes only the files it writes in its directory.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.cli.demo_tour import (
    Tour,
    cap_refusal,
    dashboard_step,
    explore_hints,
    receipt_step,
    sdk_calls,
    tenancy_step,
    verify_step,
)
from app.cli.errors import CommandError
from app.settings import Settings

SIM_KEY_ENV = "AINFERA_DEMO_SIM_KEY"
# Files this command writes in its directory, and so may delete on the next run.
OWN_FILES = ("ledger.db", "ledger.db-wal", "ledger.db-shm", "signing.key", "ainfera.toml",
             "gateway.log", "receipt.json", "env")
READY_TIMEOUT_S = 120.0

CATALOG = """\
# Written by `ainfera demo`: every provider is the local upstream SIMULATOR ({sim}); no call
# leaves this machine and no answer comes from a model. Prices are made up for the demo.
[providers.anthropic]
kind = "anthropic"
base_url = "{sim}"
api_key_env = "{key_env}"

[providers.openai]
kind = "openai"
base_url = "{sim}/v1"
api_key_env = "{key_env}"

[providers.gemini]
kind = "gemini"
base_url = "{sim}"
api_key_env = "{key_env}"

[[models]]
slug = "sim-gpt"
provider = "openai"
upstream_model = "sim-gpt"
quality = "0.70"
input_usd_per_mtok = "0.50"
output_usd_per_mtok = "2.00"
supports_tools = true

[[models]]
slug = "sim-gemini"
provider = "gemini"
upstream_model = "sim-gemini"
quality = "0.75"
input_usd_per_mtok = "1.25"
output_usd_per_mtok = "5.00"
supports_tools = true

[[models]]
slug = "sim-claude"
provider = "anthropic"
upstream_model = "sim-claude"
quality = "0.85"
input_usd_per_mtok = "3.00"
output_usd_per_mtok = "15.00"
supports_tools = true

[router]
canonical = "ainfera-inference"
default_min_quality = "0.50"
"""

def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    try:
        import anthropic
        import openai
    except ImportError:
        raise CommandError("the demo needs the official SDKs: run `make demo`, or "
                           "`pip install -e '.[demo]'`") from None
    from upstream_sim import simulated_reply, start_simulator

    home = Path(args.dir)
    home.mkdir(parents=True, exist_ok=True)
    for name in OWN_FILES:
        (home / name).unlink(missing_ok=True)
    _check_port_free(args.port)
    tour = Tour(8)
    tour.step("Start the upstream simulator (stands in for Anthropic, OpenAI and Gemini)")
    with start_simulator(port=args.sim_port, default=simulated_reply) as sim:
        tour.show(f"simulator on {sim.base_url}: canned replies in each vendor's exact wire "
                  "format, no model, no network")
        config = home / "ainfera.toml"
        config.write_text(CATALOG.format(sim=sim.base_url, key_env=SIM_KEY_ENV))
        database_url = f"sqlite:///{home / 'ledger.db'}"
        env = {**os.environ, "AINFERA_DATABASE_URL": database_url,
               "AINFERA_CONFIG": str(config),
               "AINFERA_SIGNING_KEY_FILE": str(home / "signing.key"),
               SIM_KEY_ENV: "sim-key-any-value-works"}
        for unset in ("AINFERA_REDIS_URL", "AINFERA_NO_INPROCESS_PROJECTIONS"):
            env.pop(unset, None)
        tour.step(f"Start the gateway on 127.0.0.1:{args.port} (embedded SQLite ledger)")
        with _gateway(env, args.port, home / "gateway.log") as gateway:
            url = gateway.url
            tour.show(f"ready: {url}/readyz answered 200; its log is {home / 'gateway.log'}")
            tour.show(f"config {config}, ledger {home / 'ledger.db'}")
            key = tenancy_step(tour, database_url)
            _write_env(home, url, key)
            claude = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0)
            gpt = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
            try:
                first = sdk_calls(tour, claude, gpt, url, key)
                cap_refusal(tour, database_url, url, anthropic)
            finally:
                claude.close()
                gpt.close()
            receipt_step(tour, url, key, first, home)
            dashboard_step(tour, url, key)
            verify_step(tour, database_url, env)
            explore_hints(home, url, first)
            if args.no_wait:
                print("\n--no-wait: stopping the gateway and the simulator.", flush=True)
                return 0
            print(f"\nThe gateway keeps serving on {url} (simulated upstream on "
                  f"{sim.base_url}). Press Ctrl-C to stop both.", flush=True)
            return _serve_until_interrupted(gateway)
    return 0


def _write_env(home: Path, url: str, key: str) -> None:
    """A file a second shell can `source` to talk to this demo (its key included: it is a
    throwaway key of a throwaway ledger, readable by you only)."""
    lines = {
        "AINFERA_URL": url, "KEY": key, "ANTHROPIC_BASE_URL": url,
        "OPENAI_BASE_URL": f"{url}/v1",
        "AINFERA_DATABASE_URL": f"sqlite:///{(home / 'ledger.db').resolve()}",
        "AINFERA_CONFIG": str((home / "ainfera.toml").resolve()),
        "AINFERA_SIGNING_KEY_FILE": str((home / "signing.key").resolve()),
    }
    path = home / "env"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.writelines(f"export {name}='{value}'\n" for name, value in lines.items())


def _check_port_free(port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise CommandError(f"port {port} is in use (another gateway?): stop it, or run "
                               "`ainfera demo --port N` (make demo DEMO_FLAGS='--port N')"
                               ) from None


@dataclass(frozen=True)
class Gateway:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path


@contextmanager
def _gateway(env: dict[str, str], port: int, log_path: Path) -> Iterator[Gateway]:
    url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "app.cli.main", "serve", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_ready(url, proc, log_path)
            yield Gateway(url, proc, log_path)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(empty)"]
            raise CommandError(f"the gateway did not become ready; last log line: {tail[0]}")
        time.sleep(0.2)


def _serve_until_interrupted(gateway: Gateway) -> int:
    """Until Ctrl-C (or SIGTERM); or until the gateway stops by itself, which is said."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while (code := gateway.proc.poll()) is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping the gateway and the simulator", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code in (0, -signal.SIGINT, -signal.SIGTERM):
        print(f"\nthe gateway stopped (exit {code}); stopping the simulator", flush=True)
        return 0
    raise CommandError(f"the gateway stopped with exit code {code}: see {gateway.log_path}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def add_demo_command(sub: Any) -> None:
    demo = sub.add_parser(
        "demo", help="a guided first call: simulator, gateway, SDK calls, a verified receipt",
        description="Start the upstream simulator and a gateway on a fresh ledger in --dir, "
                    "make real calls with the official SDKs, verify a receipt offline, and "
                    "keep serving until Ctrl-C. Needs no vendor key and no network.")
    demo.add_argument("--port", type=int, default=8080,
                      help="the gateway's port (default: 8080)")
    demo.add_argument("--sim-port", type=int, default=8765,
                      help="the simulator's port, 0 for any free one (default: 8765)")
    demo.add_argument("--dir", default="var/demo",
                      help="where the demo's ledger, key, config and log go; recreated on each "
                           "run (default: var/demo)")
    demo.add_argument("--no-wait", action="store_true",
                      help="stop after the tour instead of serving until Ctrl-C")
    demo.set_defaults(handler=cmd_demo)
