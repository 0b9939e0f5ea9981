"""Redis killed under load (no persistence: every counter is lost) and started again, with one
gateway that is never restarted: calls are refused with 503 and retry advice while the counters
are down (the gateway fails closed), `/readyz` names the counters, and once Redis is back the
counters are rebuilt from the ledger without any call having to arrive first."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from tests.fakes.upstream import FakeUpstream
from tests.faults.outages import OUTAGE_S, WARM_S, report, settle_and_check
from tests.faults.scenario import scenario
from tests.faults.servers import RedisServer


def test_redis_stopped_and_started_empty(fault_database: str, fault_redis: RedisServer,
                                         steady_fake: FakeUpstream, tmp_path: Path) -> None:
    prefix = f"faults:{uuid.uuid4().hex[:8]}:"
    with scenario(fault_database, fault_redis.url, prefix, steady_fake, tmp_path) as s:
        time.sleep(WARM_S)
        outage_start = time.monotonic()
        fault_redis.stop()  # a crash without persistence: every counter is lost
        time.sleep(OUTAGE_S)
        restarting = time.monotonic()
        fault_redis.start()
        outage_end = time.monotonic()
        figures = settle_and_check(s, outage_start=outage_start, restarting=restarting,
                                   outage_end=outage_end, component="counters")
        during = [c for c in s.load.calls if outage_start + 1.0 < c.started < outage_end - 0.5]
        assert during
        assert all(c.status == 503 for c in during), {c.status for c in during}
    report("redis", figures)
