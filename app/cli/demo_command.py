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

from app.bootstrap import open_store
from app.cli.errors import CommandError
from app.cli.receipt_commands import verify_files
from app.jobs.checkpointer import checkpoint_opener
from app.services import tenancy
from app.services.audit import verify
from app.settings import Settings
from domain.tenancy import parse_cap

SIM_KEY_ENV = "AINFERA_DEMO_SIM_KEY"
# Files this command writes in its directory, and so may delete on the next run.
OWN_FILES = ("ledger.db", "ledger.db-wal", "ledger.db-shm", "signing.key", "ainfera.toml",
             "gateway.log", "receipt.json", "env")
READY_TIMEOUT_S = 120.0
RECEIPT_TIMEOUT_S = 60.0

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

WEATHER = {"name": "get_weather", "description": "Current weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}


class Tour:
    """Numbered steps, each printing what it did and what it showed."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.number = 0

    def step(self, title: str) -> None:
        self.number += 1
        print(f"\n[{self.number}/{self.total}] {title}", flush=True)

    @staticmethod
    def show(text: str) -> None:
        print(f"      {text}", flush=True)


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
            key = _tenancy(tour, database_url)
            _write_env(home, url, key)
            claude = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0)
            gpt = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
            try:
                first = _calls(tour, claude, gpt, url, key)
                _refused(tour, database_url, url, anthropic)
            finally:
                claude.close()
                gpt.close()
            _receipt(tour, url, key, first, home)
            _dashboard(tour, url, key)
            _verify(tour, database_url, env)
            _explore(home, url, first)
            if args.no_wait:
                print("\n--no-wait: stopping the gateway and the simulator.", flush=True)
                return 0
            print(f"\nThe gateway keeps serving on {url} (simulated upstream on "
                  f"{sim.base_url}). Press Ctrl-C to stop both.", flush=True)
            return _serve_until_interrupted(gateway)
    return 0


def _tenancy(tour: Tour, database_url: str) -> str:
    tour.step("Create a tenant, an agent with a daily cap, and a key")
    with open_store(Settings(database_url=database_url)) as opened:
        store = opened.store
        tenant_id = tenancy.create_tenant(store, "demo")
        agent_id = tenancy.create_agent(store, "demo", "support-bot", parse_cap("1.00"))
        tenancy.create_agent(store, "demo", "tiny-budget", parse_cap("0.000001"))
        issued = tenancy.create_key(store, "demo", "support-bot")
    tour.show(f"$ ainfera tenant create demo                        -> {tenant_id}")
    tour.show("$ ainfera agent create --tenant demo --name support-bot --daily-cap-usd 1.00")
    tour.show(f"                                                     -> {agent_id}")
    tour.show(f"$ ainfera key create --tenant demo --agent support-bot -> {issued.key[:7]}... "
              "(shown once; saved in the env file below)")
    tour.show("every one of these is an event on the ledger (TenantCreated, AgentRegistered, "
              "KeyIssued)")
    return issued.key


def _calls(tour: Tour, claude: Any, gpt: Any, url: str, key: str) -> str:
    tour.step("Real calls with the official SDKs (base_url is the only change)")
    raw = claude.messages.with_raw_response.create(
        model="ainfera-inference", max_tokens=200,
        messages=[{"role": "user", "content": "Hello! Which model answers me?"}])
    message = raw.parse()
    tour.show(f"anthropic, routed: model='ainfera-inference' -> served by {message.model} "
              f"(router {raw.headers['x-ainfera-router']}), id {message.id}")
    tour.show(f"  text: {message.content[0].text}")
    pieces: list[str] = []
    with claude.messages.stream(model="sim-claude", max_tokens=200, messages=[
            {"role": "user", "content": "Stream me something."}]) as stream:
        pieces.extend(stream.text_stream)
        streamed = stream.get_final_message()
    tour.show(f"anthropic, pinned + streamed: model='sim-claude', {len(pieces)} text deltas "
              f"as they arrived, stop_reason {streamed.stop_reason}, id {streamed.id}")
    tools = [{"type": "function", "function": {
        "name": WEATHER["name"], "description": WEATHER["description"],
        "parameters": WEATHER["input_schema"]}}]
    asked = [{"role": "user", "content": "What's the weather in Paris?"}]
    call = gpt.chat.completions.create(model="ainfera-inference", messages=asked, tools=tools)
    tool_call = call.choices[0].message.tool_calls[0]
    tour.show(f"openai, routed + tools: the model called {tool_call.function.name}"
              f"({tool_call.function.arguments}), finish_reason "
              f"{call.choices[0].finish_reason}, id {call.id}")
    answered = gpt.chat.completions.create(model="ainfera-inference", messages=[
        *asked, call.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": tool_call.id, "content": '{"temp_c": 18}'}],
        tools=tools)
    tour.show(f"openai, the tool result sent back: {answered.choices[0].message.content}")
    chunks = gpt.chat.completions.create(
        model="sim-gpt", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Count to three."}])
    usage = None
    count = 0
    for chunk in chunks:
        count += 1
        usage = chunk.usage or usage
    tour.show(f"openai, pinned + streamed: model='sim-gpt', {count} chunks, usage "
              f"{usage.prompt_tokens if usage else '?'} in / "
              f"{usage.completion_tokens if usage else '?'} out")
    return str(message.id)


def _refused(tour: Tour, database_url: str, url: str, anthropic: Any) -> None:
    tour.step("A call over its agent's daily cap is refused before any upstream byte")
    with open_store(Settings(database_url=database_url)) as opened:
        tiny_key = tenancy.create_key(opened.store, "demo", "tiny-budget").key
    client = anthropic.Anthropic(base_url=url, api_key=tiny_key, max_retries=0)
    try:
        client.messages.create(model="ainfera-inference", max_tokens=200,
                               messages=[{"role": "user", "content": "Hi"}])
        tour.show("unexpected: the call was served")
    except anthropic.RateLimitError as exc:
        tour.show(f"agent tiny-budget (cap $0.000001): HTTP {exc.status_code}, "
                  f"x-should-retry {exc.response.headers.get('x-should-retry')}")
        tour.show(f"  {exc.body['error']['message'] if isinstance(exc.body, dict) else exc}")
        tour.show("  recorded too: a Routed and a Completed(rejected_budget) event")
    finally:
        client.close()


def _receipt(tour: Tour, url: str, key: str, inference_id: str, home: Path) -> None:
    tour.step(f"Fetch the receipt of {inference_id} and verify it offline")
    headers = {"x-api-key": key}
    deadline = time.monotonic() + RECEIPT_TIMEOUT_S
    while True:
        response = httpx.get(f"{url}/v1/inferences/{inference_id}/receipt", headers=headers,
                             timeout=30)
        if response.status_code == 200:
            break
        if response.status_code != 202 or time.monotonic() > deadline:
            raise CommandError(f"the receipt of {inference_id} did not come: HTTP "
                               f"{response.status_code} {response.text[:200]}")
        time.sleep(0.2)  # 202: its events are not in a signed checkpoint yet
    receipt_file = home / "receipt.json"
    receipt_file.write_text(response.text)
    vkey = httpx.get(f"{url}/v1/ledger/public-key", timeout=30).json()["vkey"]
    receipt = response.json()
    tour.show(f"{len(receipt['entries'])} events, each with its leaf, chain link and "
              f"inclusion proof, under a checkpoint signed by {vkey.split('+')[0]}")
    verified = verify_files(str(receipt_file), vkey, None, None)
    tour.show(f"$ ainfera receipt verify {receipt_file} --vkey '{vkey}'")
    tour.show(f"receipt verifies: {len(verified.entries)} events at tree size "
              f"{verified.checkpoint.size}; no server or database was used for this check")


def _dashboard(tour: Tour, url: str, key: str) -> None:
    tour.step("What the dashboard endpoints say now")
    headers = {"x-api-key": key, "x-ainfera-consistent": "true"}
    usage = httpx.get(f"{url}/v1/usage/daily?days=1", headers=headers, timeout=30).json()
    totals = usage["totals"]
    tour.show(f"GET /v1/usage/daily?days=1: {totals['calls']} calls, "
              f"${totals['cost_usd']} spent, by status {totals['by_status']}")
    metrics = httpx.get(f"{url}/v1/agents/support-bot/metrics", headers=headers,
                        timeout=30).json()
    tour.show(f"GET /v1/agents/support-bot/metrics: {metrics['calls']} calls, p50 "
              f"{metrics['latency_p50_ms']} ms, spend today "
              f"${metrics['spend_today']['settled_usd']} of the $1.00 cap")


def _verify(tour: Tour, database_url: str, env: dict[str, str]) -> None:
    tour.step("Check the whole ledger and every read model: ainfera verify")
    settings = Settings.from_env(env)
    with open_store(settings) as opened:
        report = verify(opened.database, opened.store,
                        open_checkpoint=checkpoint_opener(settings))
    tour.show("replayed every event into scratch read models and diffed them with the live "
              "ones; recomputed every leaf, chain link, subtree root and signed checkpoint")
    if report.ok:
        tour.show(f"no differences: {report.events_checked} events, "
                  f"{len(report.positions)} read models")
    else:
        tour.show(f"{len(report.problems)} problems, the first: {report.problems[0]}")


def _explore(home: Path, url: str, inference_id: str) -> None:
    env_file = home / "env"
    print(f"""
Keep exploring, in another shell:

  source {env_file}                 # AINFERA_URL, KEY, AINFERA_DATABASE_URL, ...
  curl -s -H "x-api-key: $KEY" $AINFERA_URL/v1/inferences/{inference_id}
  curl -s -H "x-api-key: $KEY" $AINFERA_URL/v1/inferences/{inference_id}/decision
  curl -s -H "x-api-key: $KEY" "$AINFERA_URL/v1/usage/daily?days=7"
  curl -s $AINFERA_URL/v1/ledger/checkpoint
  .venv/bin/ainfera tenant list; .venv/bin/ainfera key list --tenant demo
  .venv/bin/ainfera verify
  open {url}/schema/ in a browser for the API reference

Then with your own vendor keys: README.md, "With vendor keys".""", flush=True)


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
