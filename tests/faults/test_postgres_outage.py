"""PostgreSQL stopped and started under load, with one gateway (and its projector child) that
is never restarted (issue 10, findings 1 and 2): during the outage an inference call and a
ledger read are refused within seconds with retry advice, never a 500 or a hang, and `/readyz`
is 503 naming the store; within 10 s of the server's return `/readyz` is 200, the projector
has caught up, and every invariant of tests/faults/checks.py holds."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx

from tests.fakes.upstream import FakeUpstream
from tests.faults.outages import (
    OUTAGE_S,
    READY_WITHIN_S,
    REFUSED_WITHIN_S,
    WARM_S,
    report,
    settle_and_check,
)
from tests.faults.scenario import scenario
from tests.faults.servers import RedisServer
from tests.harness.pg_cluster import PgCluster


def test_postgres_stopped_and_started(fault_database: str, fault_postgres: PgCluster,
                                      fault_redis: RedisServer, steady_fake: FakeUpstream,
                                      tmp_path: Path) -> None:
    prefix = f"faults:{uuid.uuid4().hex[:8]}:"
    with scenario(fault_database, fault_redis.url, prefix, steady_fake, tmp_path) as s:
        pid = s.server.proc.pid
        time.sleep(WARM_S)
        outage_start = time.monotonic()
        fault_postgres.stop()
        time.sleep(1.0)
        # An inference call and a ledger read during the outage: refused fast, in the caller's
        # shape, with retry advice; never a 500 and never a hang.
        began = time.monotonic()
        call = httpx.post(f"{s.url}/v1/chat/completions", timeout=30,
                          headers={"authorization": f"Bearer {s.world.other_key}"},
                          json={"model": "fake-gpt", "messages": [{"role": "user",
                                                                   "content": "hi"}]})
        refused_in = time.monotonic() - began
        assert call.status_code == 503, call.text
        assert set(call.json()["error"]) == {"message", "type", "param", "code"}
        assert call.headers["x-should-retry"] == "true"
        assert refused_in < REFUSED_WITHIN_S
        checkpoint = httpx.get(f"{s.url}/v1/ledger/checkpoint", timeout=30)
        assert checkpoint.status_code == 503, checkpoint.text
        assert checkpoint.headers["retry-after"]
        time.sleep(max(OUTAGE_S - (time.monotonic() - outage_start), 0))
        restarting = time.monotonic()
        fault_postgres.start()
        restart_took = time.monotonic() - restarting
        outage_end = time.monotonic()
        figures = settle_and_check(s, outage_start=outage_start, restarting=restarting,
                                   outage_end=outage_end, component="store")
        assert s.server.proc.pid == pid
        during = [c for c in s.load.calls if outage_start + 1.0 < c.started < outage_end - 0.5]
        slow = [round(c.ended - c.started, 2) for c in during
                if c.status == 503 and c.ended - c.started > REFUSED_WITHIN_S]
        assert not slow, f"calls refused only after {slow} s"
        figures.update({"refused_in_s": round(refused_in, 3),
                        "postgres_restart_s": round(restart_took, 2)})
        # Then Redis loses its data: the counters are rebuilt from read models that came back
        # with PostgreSQL (they used to wait on a read side that never reconnected, and refuse
        # every call until the gateway was restarted).
        fault_redis.stop()
        fault_redis.start()
        lost = time.monotonic()
        served_again = s.ready.wait_ready(lost + 0.5, READY_WITHIN_S)
        answer = httpx.post(f"{s.url}/v1/messages", timeout=30,
                            headers={"x-api-key": s.world.other_key},
                            json={"model": "fake-claude", "max_tokens": 8,
                                  "messages": [{"role": "user", "content": "hi"}]})
        assert answer.status_code == 200, answer.text
        figures["counters_back_after_redis_loss_s"] = round(served_again + 0.5, 2)
    report("postgres", figures)
