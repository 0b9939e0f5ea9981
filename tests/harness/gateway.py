"""A real gateway process on a real socket, in front of the loopback fake upstream, with a
tenant and keys made through the same services the CLI uses. Shared by the e2e tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from adapters.database import Database
from adapters.migrations import migrate
from adapters.store import EventStore
from app.services import tenancy
from tests.fakes.upstream import FakeUpstream

AINFERA = str(Path(sys.executable).with_name("ainfera"))

# The three fake providers, every one on the loopback fake upstream; catalogs add models.
PROVIDERS = """
[providers.anthropic]
kind = "anthropic"
base_url = "{base}"
api_key_env = "FAKE_ANTHROPIC_KEY"

[providers.openai]
kind = "openai"
base_url = "{base}/v1"
api_key_env = "FAKE_OPENAI_KEY"

[providers.gemini]
kind = "gemini"
base_url = "{base}"
api_key_env = "FAKE_GEMINI_KEY"
"""

# Upstream model names double as the fake upstream's script keys.
CATALOG = PROVIDERS + """
[[models]]
slug = "fake-gpt"
provider = "openai"
upstream_model = "up-gpt"
quality = "0.70"
input_usd_per_mtok = "1.00"
output_usd_per_mtok = "4.00"
supports_tools = true

[[models]]
slug = "fake-gemini"
provider = "gemini"
upstream_model = "up-gemini"
quality = "0.75"
input_usd_per_mtok = "2.00"
output_usd_per_mtok = "8.00"
supports_tools = true

[[models]]
slug = "fake-claude"
provider = "anthropic"
upstream_model = "up-claude"
quality = "0.80"
input_usd_per_mtok = "3.00"
output_usd_per_mtok = "15.00"
supports_tools = true

[[models]]
slug = "fake-weak"
provider = "openai"
upstream_model = "up-weak"
quality = "0.40"
input_usd_per_mtok = "0.10"
output_usd_per_mtok = "0.20"
supports_tools = false

[router]
canonical = "ainfera-inference"
aliases = ["ainfera-mithril", "ainfera-auto", "ainfera/auto"]
default_min_quality = "0.50"
"""


@dataclass
class Gateway:
    url: str
    key: str
    other_key: str
    agent_id: str
    fake: FakeUpstream
    database_url: str
    signing_key_file: str

    def events(self, public_id: str, key: str | None = None) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/v1/inferences/{public_id}",
                             headers={"x-api-key": key or self.key}, timeout=10)
        response.raise_for_status()
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    def wait_for_completion(self, public_id: str, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            events = self.events(public_id)
            if any(e["type"] == "Completed" for e in events) or time.monotonic() > deadline:
                # Debited follows Completed in the same transaction.
                return events
            time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def scratch_database(kind: str, tmp: Path, postgres_url: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp}/gateway.db"
        return
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{postgres_url}{'&' if '?' in postgres_url else '?'}schema={schema}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass
class World:
    key: str
    other_key: str
    agent_id: str


def prepare_world(database_url: str, daily_cap_usd: str | None = None) -> World:
    """Tenants `acme` (agent `bot`, optionally capped) and `globex`, with a key each."""
    from domain.tenancy import parse_cap

    database = Database.from_url(database_url)
    migrate(database)
    store = EventStore(database)
    try:
        tenancy.create_tenant(store, "acme")
        tenancy.create_tenant(store, "globex")
        tenancy.create_agent(store, "acme", "bot", parse_cap(daily_cap_usd))
        issued = tenancy.create_key(store, "acme", "bot")
        other = tenancy.create_key(store, "globex", None)
    finally:
        store.close()
    return World(issued.key, other.key, str(issued.agent_id))


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path


@contextmanager
def serve(database_url: str, fake: FakeUpstream, tmp: Path,
          extra_env: dict[str, str] | None = None, name: str = "gateway",
          allow_crash: bool = False, ready_path: str = "/readyz",
          catalog: str = CATALOG) -> Iterator[Server]:
    """One `ainfera serve` process, yielded once it answers `ready_path` with 200. `catalog`
    is a TOML template whose `{base}` is the fake upstream's URL."""
    config = tmp / "ainfera.toml"
    config.write_text(catalog.format(base=fake.base_url))
    port = free_port()
    env = {
        **os.environ,
        "AINFERA_DATABASE_URL": database_url,
        "AINFERA_CONFIG": str(config),
        "AINFERA_SIGNING_KEY_FILE": str(tmp / "signing.key"),
        "FAKE_ANTHROPIC_KEY": "sk-ant-fake",
        "FAKE_OPENAI_KEY": "sk-oai-fake",
        "FAKE_GEMINI_KEY": "gm-fake",
        **(extra_env or {}),
    }
    log_path = tmp / f"{name}.log"
    log = log_path.open("w")
    proc = subprocess.Popen([AINFERA, "serve", "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}{ready_path}", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log_path.read_text())
            time.sleep(0.1)
        yield Server(url, proc, log_path)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        log.close()
        output = log_path.read_text()
        if not allow_crash:
            assert "Traceback" not in output, output


@contextmanager
def run_gateway(database_url: str, fake: FakeUpstream, tmp: Path,
                extra_env: dict[str, str] | None = None,
                catalog: str = CATALOG) -> Iterator[Gateway]:
    world = prepare_world(database_url)
    with serve(database_url, fake, tmp, extra_env, catalog=catalog) as server:
        yield Gateway(server.url, world.key, world.other_key, world.agent_id, fake, database_url,
                      str(tmp / "signing.key"))
