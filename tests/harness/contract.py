"""The contract tests' gateway (tests/integration/test_contract_*.py): an app in this process
(the real factory, the real store, in-process projections) in front of the loopback fake
upstream, serving a catalog of the test's own (tests/harness/inprocess.py serves the shared
e2e catalog), driven over HTTP with Litestar's test client.

Cheaper than a gateway subprocess, and enough wherever a test needs the HTTP contract rather
than real sockets or streaming timing (for those, see tests/harness/gateway.py). Both surfaces
are spoken with plain JSON bodies, so a test sees exactly the status, body and headers a client
would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from litestar.testing import AsyncTestClient

from adapters.store import EventStore
from app.factory import create_app
from app.services import tenancy
from app.settings import Settings
from tests.fakes.upstream import FakeUpstream, text
from tests.harness.gateway import PROVIDERS

FAKE_KEYS = {"FAKE_ANTHROPIC_KEY": "sk-ant-fake", "FAKE_OPENAI_KEY": "sk-oai-fake",
             "FAKE_GEMINI_KEY": "gm-fake"}



def model_toml(slug: str, provider: str, quality: str, prices: str, tools: bool,
               **extra: object) -> str:
    """One `[[models]]` table; the upstream model name (the fake's script key) is `up-SLUG`."""
    input_price, output_price = prices.split()
    lines = [
        "[[models]]", f'slug = "{slug}"', f'provider = "{provider}"',
        f'upstream_model = "up-{slug}"', f'quality = "{quality}"',
        f'input_usd_per_mtok = "{input_price}"', f'output_usd_per_mtok = "{output_price}"',
        f"supports_tools = {'true' if tools else 'false'}",
    ]
    for key, value in extra.items():
        lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


@dataclass
class InProcessGateway:
    client: AsyncTestClient  # type: ignore[type-arg]
    fake: FakeUpstream
    store: EventStore
    key: str  # tenant "acme", agent "bot"
    other_key: str  # tenant "globex", its default agent

    async def messages(self, body: dict[str, Any], key: str | None = None) -> httpx.Response:
        return await self.client.post("/v1/messages", json=body,
                                      headers={"x-api-key": key or self.key})

    async def chat(self, body: dict[str, Any], key: str | None = None) -> httpx.Response:
        return await self.client.post("/v1/chat/completions", json=body,
                                      headers={"authorization": f"Bearer {key or self.key}"})

    async def call(self, surface: str, model: str, key: str | None = None,
                   **fields: Any) -> httpx.Response:
        """One call on `surface` ("messages" or "chat"), with a one-line user message."""
        body: dict[str, Any] = {"model": model,
                                "messages": [{"role": "user", "content": "hello"}], **fields}
        if surface == "messages":
            body.setdefault("max_tokens", 16)
            return await self.messages(body, key)
        return await self.chat(body, key)

    async def events(self, public_id: str, key: str | None = None) -> list[dict[str, Any]]:
        response = await self.client.get(f"/v1/inferences/{public_id}",
                                         headers={"x-api-key": key or self.key})
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events

    async def routed(self, response: httpx.Response) -> dict[str, Any]:
        """The Routed event of the call that gave `response`."""
        events = await self.events(response.headers["x-ainfera-inference-id"])
        assert events[0]["type"] == "Routed"
        return events[0]

    async def read(self, path: str, key: str | None = None) -> httpx.Response:
        """A consistent dashboard read: it waits until the projections hold every call."""
        return await self.client.get(path, headers={"x-api-key": key or self.key,
                                                    "x-ainfera-consistent": "true"})


@dataclass(frozen=True)
class World:
    """What the apps of one test share: the store's tenants and keys, the config file."""

    database_url: str
    store: EventStore
    fake: FakeUpstream
    config: Path
    key: str
    other_key: str


def prepare_world(database_url: str, store: EventStore, fake: FakeUpstream, tmp: Path,
                  models: str) -> World:
    """Tenants `acme` (agent `bot`) and `globex` with a key each, and a config serving `models`
    (TOML `[[models]]` tables) from the fake upstream, every model scripted to answer text."""
    config = tmp / "contract.toml"
    config.write_text(PROVIDERS.format(base=fake.base_url) + models)
    tenancy.create_tenant(store, "acme")
    tenancy.create_tenant(store, "globex")
    tenancy.create_agent(store, "acme", "bot", None)
    key = tenancy.create_key(store, "acme", "bot").key
    other_key = tenancy.create_key(store, "globex", None).key
    for line in models.splitlines():
        if line.startswith("upstream_model = "):
            name = line.split('"')[1]
            fake.script(name, text(f"Hello from {name}."))
    return World(database_url, store, fake, config, key, other_key)


@asynccontextmanager
async def serve_world(world: World, **settings: Any) -> AsyncIterator[InProcessGateway]:
    """One app (the real factory) over the world's store; `settings` override Settings."""
    chosen: dict[str, Any] = {
        # The signing key lives beside the config, in the test's tmp dir, never in the checkout.
        "signing_key_file": str(world.config.with_name("signing.key")), **settings}
    app = create_app(Settings(database_url=world.database_url, config_path=str(world.config),
                              environ=FAKE_KEYS, **chosen))
    async with AsyncTestClient(app=app) as client:
        yield InProcessGateway(client, world.fake, world.store, world.key, world.other_key)
