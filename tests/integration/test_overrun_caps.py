"""Spend caps against an upstream that overruns max_tokens (issue 10, finding 7: an upstream
that returned 400 output tokens for max_tokens 50 pushed an agent to 3.6x its cap). Streams are
cut at the limit and debited for what was delivered, so the cap holds; the overrun is on the
ledger."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.upstream import FakeUpstream, start_fake_upstream, text
from tests.harness.gateway import prepare_world
from tests.harness.inprocess import async_gateway

CAP = "0.0010"
BODY = {"model": "fake-claude", "max_tokens": 10, "stream": True,
        "messages": [{"role": "user", "content": "please write a very long story about the sea"}]}


@pytest.fixture
def fake() -> Any:
    with start_fake_upstream() as upstream:
        # 400 words where 10 tokens were asked for, and the usage to match at the end.
        upstream.script("up-claude", text(" ".join(["wave"] * 400), output_tokens=400))
        yield upstream


async def test_an_overrunning_upstream_cannot_push_an_agent_past_its_cap(
        tmp_path: Path, fake: FakeUpstream) -> None:
    url = f"sqlite:///{tmp_path}/overrun.db"
    world = prepare_world(url, daily_cap_usd=CAP)
    async with async_gateway(url, fake, tmp_path, prepared=world) as (client, gateway):
        statuses = []
        for _ in range(15):
            answer = await client.post("/v1/messages", json=BODY,
                                       headers={"x-api-key": gateway.key})
            statuses.append(answer.status_code)
            if answer.status_code == 200:
                assert answer.text.count("wave") <= 10
                assert '"stop_reason":"max_tokens"' in answer.text
        assert 429 in statuses, "the cap was never reached"
        debited = Decimal(0)
        overruns = []
        for notification in gateway.store.notifications(1, 10_000):
            event: Any = gateway.store.decode(notification)
            if type(event).__name__ == "Debited" and event.agent_id == world.agent_id:
                debited += Decimal(event.cost_usd)
            if type(event).__name__ == "Completed" and event.status == "succeeded":
                overruns.append(event.overrun)
    assert debited <= Decimal(CAP), f"overshoot {debited - Decimal(CAP)}"
    assert overruns
    assert all(o == {"max_tokens": 10, "output_tokens": 10, "cut": True} for o in overruns)
