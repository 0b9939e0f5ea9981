"""Spend caps under real concurrency: several gateway processes, one agent, a small cap, real
PostgreSQL and Redis; Redis flushed mid-run; crashed calls closed as abandoned."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import redis

from adapters.database import Database
from adapters.store import EventStore
from tests.conftest import POSTGRES_URL, REDIS_URL, _check_postgres, _check_redis
from tests.fakes.upstream import FakeUpstream, closed_port, start_fake_upstream, text
from tests.harness.gateway import AINFERA, Server, prepare_world, scratch_database, serve

CAP = Decimal("0.0050")
BODY = {"model": "fake-claude", "max_tokens": 16,
        "messages": [{"role": "user", "content": "spend a little"}]}


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with start_fake_upstream() as upstream:
        upstream.script("up-claude", text("ok", first_byte_delay=0.05))
        yield upstream


def debited_for(database_url: str, agent_id: str) -> list[Decimal]:
    store = EventStore(Database.from_url(database_url))
    try:
        costs = []
        start = 1
        while page := store.notifications(start, 1000):
            for notification in page:
                if notification.topic.endswith("Inference.Debited"):
                    event = store.decode(notification)
                    if event.agent_id == agent_id:  # type: ignore[attr-defined]
                        costs.append(Decimal(event.cost_usd))  # type: ignore[attr-defined]
            start = page[-1].id + 1
        return costs
    finally:
        store.close()


def fire(urls: list[str], key: str, count: int) -> list[int]:
    def post(i: int) -> int:
        response = httpx.post(f"{urls[i % len(urls)]}/v1/messages", json=BODY,
                              headers={"x-api-key": key}, timeout=60)
        return response.status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        return list(pool.map(post, range(count)))


def test_four_gateways_never_settle_past_the_cap(fake: FakeUpstream, tmp_path: Path) -> None:
    _check_postgres()
    _check_redis()
    prefix = f"ainfera-test:{uuid.uuid4().hex[:12]}:"
    env = {"AINFERA_REDIS_URL": REDIS_URL, "AINFERA_REDIS_PREFIX": prefix}
    with scratch_database("postgres", tmp_path, POSTGRES_URL) as url, ExitStack() as stack:
        world = prepare_world(url, daily_cap_usd=str(CAP))
        servers: list[Server] = []
        for n in range(4):
            only_gateway = {} if n == 0 else {"AINFERA_NO_INPROCESS_PROJECTIONS": "1"}
            servers.append(stack.enter_context(
                serve(url, fake, tmp_path, {**env, **only_gateway}, name=f"gw{n}")))
        urls = [s.url for s in servers]

        first = fire(urls, world.key, 200)
        assert set(first) <= {200, 429}
        assert first.count(200) > 0
        assert first.count(429) > 0
        print(f"first burst: {first.count(200)} served, {first.count(429)} refused")
        spent = sum(debited_for(url, world.agent_id), Decimal(0))
        assert spent <= CAP, f"overshoot {spent - CAP}"

        # Redis loses everything (a restart without persistence): the next calls rebuild the
        # counters from the ledger and the cap still holds.
        client = redis.Redis.from_url(REDIS_URL)
        lost = list(client.scan_iter(f"{prefix}*"))
        assert lost
        client.delete(*lost)
        client.close()
        second = fire(urls, world.key, 100)
        assert set(second) <= {200, 429}
        spent_after = sum(debited_for(url, world.agent_id), Decimal(0))
        print(f"after flush: {second.count(200)} served; spent {spent_after} of {CAP}")
        assert spent_after <= CAP, f"overshoot after the flush {spent_after - CAP}"
        calls = len(debited_for(url, world.agent_id))
        assert calls == first.count(200) + second.count(200)
        rollup = httpx.get(f"{urls[0]}/v1/caps/rollup?consistent=true",
                           headers={"x-api-key": world.key}, timeout=10).json()
        assert Decimal(rollup["budget"]["used_usd"]) == spent_after
        assert Decimal(rollup["budget"]["settled_usd"]) == spent_after

        # `ainfera verify` compares the Redis counters with the ledger, and names a drift.
        verify_env = {**os.environ, "AINFERA_DATABASE_URL": url, **env,
                      "AINFERA_SIGNING_KEY_FILE": str(tmp_path / "signing.key")}
        clean = subprocess.run([AINFERA, "verify"], env=verify_env, capture_output=True,
                               text=True, timeout=120, check=False)
        assert clean.returncode == 0, clean.stderr
        day = datetime.now(UTC).date().isoformat()
        client = redis.Redis.from_url(REDIS_URL)
        client.set(f"{prefix}budget:{day}:settled:{world.agent_id}", 0)
        client.close()
        drifted = subprocess.run([AINFERA, "verify"], env=verify_env, capture_output=True,
                                 text=True, timeout=120, check=False)
        assert drifted.returncode == 1
        assert f"spend counter for agent {world.agent_id}" in drifted.stdout
        assert drifted.stdout.startswith("spend counters: Redis differs from the ledger")
        assert "1 counters" in drifted.stderr


def test_a_crashed_call_is_closed_as_abandoned_at_restart(fake: FakeUpstream,
                                                           tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/crash.db"
    world = prepare_world(url)
    fake.script("up-claude", text(" ".join(["slow"] * 50), chunk_delay=0.2))
    # The dead gateway's heartbeat stops; one TTL later the new one may close its call.
    env = {"AINFERA_HEARTBEAT_TTL_S": "1"}
    with serve(url, fake, tmp_path, env, name="doomed", allow_crash=True) as doomed, \
            httpx.stream("POST", f"{doomed.url}/v1/messages", headers={"x-api-key": world.key},
                         json={**BODY, "stream": True}, timeout=10) as response:
        public_id = response.headers["x-ainfera-inference-id"]
        next(response.iter_lines())
        os.kill(doomed.proc.pid, signal.SIGKILL)
        doomed.proc.wait(10)
    with serve(url, fake, tmp_path, env, name="restarted") as restarted:
        deadline = time.monotonic() + 30
        while True:
            events = httpx.get(f"{restarted.url}/v1/inferences/{public_id}",
                               headers={"x-api-key": world.key}, timeout=5).json()["events"]
            completed = [e for e in events if e["type"] == "Completed"]
            if completed or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert [e["type"] for e in events] == ["Routed", "Dispatched", "Completed"]
    assert completed[0]["status"] == "abandoned"


@pytest.mark.parametrize("fail_open", [False, True])
def test_counters_down_fail_closed_unless_configured_open(fake: FakeUpstream, tmp_path: Path,
                                                          fail_open: bool) -> None:
    url = f"sqlite:///{tmp_path}/down.db"
    world = prepare_world(url, daily_cap_usd="1.00")
    env = {"AINFERA_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0",
           "AINFERA_BUDGET_FAIL_OPEN": "1" if fail_open else "0"}
    with serve(url, fake, tmp_path, env, ready_path="/healthz") as server:
        # Ready means a call would succeed now: not when failing closed, yes when failing open
        # (the counters are still named as down).
        ready = httpx.get(f"{server.url}/readyz", timeout=5)
        assert ready.status_code == (200 if fail_open else 503)
        assert ready.json()["checks"]["counters"] != "ok"
        response = httpx.post(f"{server.url}/v1/messages", json=BODY,
                              headers={"x-api-key": world.key}, timeout=30)
        public_id = response.headers["x-ainfera-inference-id"]
        events = httpx.get(f"{server.url}/v1/inferences/{public_id}",
                           headers={"x-api-key": world.key}, timeout=5).json()["events"]
    completed = next(e for e in events if e["type"] == "Completed")
    if fail_open:
        assert response.status_code == 200
        assert completed["status"] == "succeeded"
    else:
        assert response.status_code == 503
        assert response.json()["error"]["message"].startswith("spend counters are unavailable")
        assert completed["status"] == "rejected_budget"


def test_a_cap_change_on_the_ledger_reaches_a_running_gateway(fake: FakeUpstream,
                                                              tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/policy.db"
    world = prepare_world(url, daily_cap_usd="0")
    env = {**os.environ, "AINFERA_DATABASE_URL": url}
    with serve(url, fake, tmp_path, name="policy") as server:
        def call() -> int:
            return httpx.post(f"{server.url}/v1/messages", json=BODY,
                              headers={"x-api-key": world.key}, timeout=30).status_code

        assert call() == 429
        changed = subprocess.run([AINFERA, "agent", "set-cap", "--tenant", "acme", "--agent",
                                  "bot", "--daily-cap-usd", "1.00"], env=env,
                                 capture_output=True, text=True, timeout=60, check=False)
        assert changed.returncode == 0, changed.stderr
        deadline = time.monotonic() + 5  # gateways trust a cap for 2 s
        while (status := call()) == 429 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 200


def test_a_projection_worker_repairs_what_a_dead_gateway_left_open(fake: FakeUpstream,
                                                                   tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/worker.db"
    world = prepare_world(url)
    fake.script("up-claude", text(" ".join(["slow"] * 50), chunk_delay=0.2))
    env = {**os.environ, "AINFERA_DATABASE_URL": url, "AINFERA_HEARTBEAT_TTL_S": "1",
           "AINFERA_SIGNING_KEY_FILE": str(tmp_path / "signing.key")}
    # The worker's read models let the gateway build its spend counters (it fails closed
    # until they can be built from the ledger).
    assert subprocess.run([AINFERA, "project", "--once"], env=env, capture_output=True,
                          timeout=120, check=False).returncode == 0
    gateway_env = {"AINFERA_NO_INPROCESS_PROJECTIONS": "1"}
    with serve(url, fake, tmp_path, gateway_env, name="lone", allow_crash=True) as lone, \
            httpx.stream("POST", f"{lone.url}/v1/messages", headers={"x-api-key": world.key},
                         json={**BODY, "stream": True}, timeout=10) as response:
        public_id = response.headers["x-ainfera-inference-id"]
        next(response.iter_lines())
        assert response.status_code == 200
        os.kill(lone.proc.pid, signal.SIGKILL)
        lone.proc.wait(10)
    time.sleep(2)  # past the dead gateway's heartbeat TTL
    worker = subprocess.run([AINFERA, "project", "--once"], env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert worker.returncode == 0, worker.stderr
    store = EventStore(Database.from_url(url))
    try:
        from domain.ids import parse_inference_id

        events = store.events_of(parse_inference_id(public_id))
        assert [type(e).__name__ for e in events] == ["Routed", "Dispatched", "Completed"]
        assert events[-1].status == "abandoned"  # type: ignore[attr-defined]
    finally:
        store.close()
