"""The gateway app in this process (Litestar's test client, no socket) in front of the loopback
fake upstream, on a store of the caller's choice, with a tenant and key made through the same
services the CLI uses. For tests about what the edge answers, where a subprocess and a socket
would only cost time; timing and disconnects need the real server (tests/harness/gateway.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient, TestClient

from adapters.database import Database
from adapters.store import EventStore
from app.factory import create_app
from app.settings import Settings
from tests.fakes.upstream import FakeUpstream
from tests.harness.gateway import CATALOG, World, prepare_world

FAKE_KEYS = {"FAKE_ANTHROPIC_KEY": "sk-ant-fake", "FAKE_OPENAI_KEY": "sk-oai-fake",
             "FAKE_GEMINI_KEY": "gm-fake"}


def gateway_settings(database_url: str, fake: FakeUpstream, tmp: Path,
                     **changes: Any) -> Settings:
    config = tmp / "ainfera.toml"
    config.write_text(CATALOG.format(base=fake.base_url))
    return Settings(database_url=database_url, config_path=str(config),
                    signing_key_file=str(tmp / "signing.key"), environ=FAKE_KEYS).with_(**changes)


@dataclass
class InProcess:
    key: str
    agent_id: str
    store: EventStore  # a second store on the same database, to look at what was recorded

    def recorded(self) -> int:
        """How many events the ledger holds."""
        return self.store.max_notification_id()


@asynccontextmanager
async def async_gateway(database_url: str, fake: FakeUpstream, tmp: Path,
                        prepared: World | None = None,
                        **changes: Any) -> AsyncIterator[tuple[AsyncTestClient[Any], InProcess]]:
    """`prepared`: a world the test made itself (a capped agent, say); else the default one."""
    world = prepared or prepare_world(database_url)
    store = EventStore(Database.from_url(database_url))
    try:
        app = create_app(gateway_settings(database_url, fake, tmp, **changes))
        async with AsyncTestClient(app=app) as client:
            yield client, InProcess(world.key, world.agent_id, store)
    finally:
        store.close()


@contextmanager
def sync_gateway(database_url: str, fake: FakeUpstream, tmp: Path,
                 **changes: Any) -> Iterator[tuple[TestClient[Any], InProcess]]:
    """The same for synchronous tests (hypothesis drives plain functions)."""
    world = prepare_world(database_url)
    store = EventStore(Database.from_url(database_url))
    try:
        app = create_app(gateway_settings(database_url, fake, tmp, **changes))
        with TestClient(app=app) as client:
            yield client, InProcess(world.key, world.agent_id, store)
    finally:
        store.close()
