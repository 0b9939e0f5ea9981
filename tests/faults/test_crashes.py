"""A gateway killed with SIGKILL mid-stream, and upstreams that hang or cut their streams, under
load (issue 10). A killed gateway's open calls are closed as `abandoned` by the next gateway
once the dead one's heartbeat is gone, and only then; a hung upstream ends its attempt at the
read timeout (falling back where it may), and repair, sweeping every second meanwhile, never
closes it; a cut stream is recorded as failed and debited for what was delivered. After each,
every invariant of tests/faults/checks.py holds."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.upstream import FakeUpstream, start_fake_upstream, text
from tests.faults.checks import (
    Ledger,
    dispatch_without_capture,
    ledger_problems,
    run_verify,
    wait_for_lag_zero,
    wait_for_ledger,
)
from tests.faults.outages import report
from tests.faults.scenario import CAP, scenario
from tests.faults.servers import RedisServer
from tests.harness.gateway import serve

TTL_S = 2
READ_TIMEOUT_S = 2
# A call waiting on a hung upstream ends by the read timeout (plus fallback and recording);
# far below the 300 s default it would otherwise sit for.
CALL_BOUNDED_S = 4 * READ_TIMEOUT_S + 5


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with start_fake_upstream() as upstream:
        yield upstream


def test_gateway_killed_mid_stream(fault_database: str, fault_redis: RedisServer,
                                   fake: FakeUpstream, tmp_path: Path) -> None:
    for model in ("up-claude", "up-gpt", "up-gemini"):
        # Streams of about 2 s, so several are in flight at any moment.
        fake.script(model, text(" ".join(["word"] * 20), chunk_delay=0.1))
    prefix = f"faults:{uuid.uuid4().hex[:8]}:"
    env = {"AINFERA_HEARTBEAT_TTL_S": str(TTL_S)}
    with scenario(fault_database, fault_redis.url, prefix, fake, tmp_path, env) as s:
        time.sleep(3.0)
        os.kill(s.server.proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        s.server.proc.wait(10)
        calls = s.load.stop()
        world, url = s.world, s.database_url
    in_flight_at_kill = [c for c in calls if c.ended >= killed_at and c.status == 200
                         and not c.acknowledged]
    assert in_flight_at_kill, "no stream was in flight when the gateway was killed"
    before = Ledger.read(url)
    left_open = set(before.open_inferences())
    assert left_open, "the killed gateway left nothing open"
    # A new gateway (another instance) closes what the dead one left open, by itself.
    with serve(url, fake, tmp_path, {"AINFERA_REDIS_URL": fault_redis.url,
                                     "AINFERA_REDIS_PREFIX": prefix, **env},
               name="successor") as successor:
        started = time.monotonic()
        ledger = wait_for_ledger(url, calls)
        repaired_in = time.monotonic() - started
        assert not ledger.open_inferences(), "the dead gateway's calls were not repaired"
        assert {ledger.statuses[i] for i in left_open} == {"abandoned"}
        problems = ledger_problems(ledger, calls, len(fake.requests), world.agent_id, CAP,
                                   died_in_flight=len(left_open))
        assert not problems, problems
        served = httpx.post(f"{successor.url}/v1/messages", timeout=30,
                            headers={"x-api-key": world.other_key},
                            json={"model": "fake-claude", "max_tokens": 16,
                                  "messages": [{"role": "user", "content": "hi"}]})
        assert served.status_code == 200
        assert dispatch_without_capture(successor.url) == 0
        lag_zero = wait_for_lag_zero(successor.url)
        verified = run_verify(url, fault_redis.url, prefix, str(tmp_path / "signing.key"))
        assert verified.returncode == 0, verified.stdout + verified.stderr
    report("sigkill", {"abandoned": len(left_open), "repaired_within_s": round(repaired_in, 2),
                       "projection_lag_zero_s": round(lag_zero, 2),
                       "acknowledged": len([c for c in calls if c.acknowledged])})


def test_upstreams_that_hang_or_cut(fault_database: str, fault_redis: RedisServer,
                                    fake: FakeUpstream, tmp_path: Path) -> None:
    fake.script("up-gpt", text("never sent", first_byte_delay=60))  # hangs
    fake.script("up-claude", text(" ".join(["word"] * 20), chunk_delay=0.02, fail_after=4))
    fake.script("up-gemini", text("the fallback answers"))
    prefix = f"faults:{uuid.uuid4().hex[:8]}:"
    # Repair sweeps every second with the age rule at 0 (the old advice for one process):
    # it must still never touch a call that is waiting on a hung upstream (finding 3).
    env = {"AINFERA_UPSTREAM_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
           "AINFERA_HEARTBEAT_TTL_S": "1", "AINFERA_ABANDON_AFTER_S": "0"}
    with scenario(fault_database, fault_redis.url, prefix, fake, tmp_path, env) as s:
        time.sleep(8.0)
        calls = s.load.stop()
        assert s.alive()
        assert "unhandled error" not in s.log()
        slowest = max(c.ended - c.started for c in calls)
        assert slowest < CALL_BOUNDED_S, f"a call was held {slowest:.1f} s"
        assert all(p.status == 200 for p in s.ready.probes), "upstream faults made it unready"
        assert not [c for c in calls if c.status is not None and c.status >= 500
                    and c.status not in (502, 504)], {c.status for c in calls}
        routed_ok = [c for c in calls if c.model == "ainfera-inference" and c.acknowledged]
        assert routed_ok, "the router never fell back from the hung upstream"
        assert dispatch_without_capture(s.url) == 0
        ledger = wait_for_ledger(s.database_url, calls)
        problems = ledger_problems(ledger, calls, len(fake.requests), s.world.agent_id, CAP)
        assert not problems, problems
        statuses = set(ledger.statuses.values())
        assert {"failed", "fallback_succeeded"} <= statuses, statuses
        assert "abandoned" not in statuses, "repair closed a call that was still being served"
        lag_zero = wait_for_lag_zero(s.url)
        verified = run_verify(s.database_url, s.redis_url, s.prefix, str(s.tmp / "signing.key"))
        assert verified.returncode == 0, verified.stdout + verified.stderr
    report("upstream", {"calls": len(calls), "slowest_call_s": round(slowest, 2),
                        "acknowledged": len([c for c in calls if c.acknowledged]),
                        "projection_lag_zero_s": round(lag_zero, 2)})


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc: no dependency for one lookup)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def test_projector_child_killed_under_load(fault_database: str, fault_redis: RedisServer,
                                           steady_fake: FakeUpstream, tmp_path: Path) -> None:
    """The projector `ainfera serve` runs as its child is SIGKILLed under load: the gateway
    keeps serving, restarts it, and the read models catch up with everything written while
    it was gone; nothing is lost or applied twice (verify)."""
    prefix = f"faults:{uuid.uuid4().hex[:8]}:"
    with scenario(fault_database, fault_redis.url, prefix, steady_fake, tmp_path) as s:
        time.sleep(2.0)
        [child] = children_of(s.server.proc.pid)
        os.kill(child, signal.SIGKILL)
        killed = time.monotonic()
        deadline = killed + 30
        while not (restarted := [p for p in children_of(s.server.proc.pid) if p != child]):
            assert time.monotonic() < deadline, "the projector was not restarted"
            time.sleep(0.2)
        back_in = time.monotonic() - killed
        time.sleep(3.0)
        calls = s.load.stop()
        assert s.alive()
        during = [c for c in calls if killed < c.started < killed + back_in]
        assert all(c.status in (200, 429) for c in during), {c.status for c in during}
        lag_zero = wait_for_lag_zero(s.url)
        ledger = wait_for_ledger(s.database_url, calls)
        problems = ledger_problems(ledger, calls, len(steady_fake.requests), s.world.agent_id,
                                   CAP)
        assert not problems, problems
        verified = run_verify(s.database_url, s.redis_url, s.prefix, str(s.tmp / "signing.key"))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        del restarted
    report("projector_killed", {"restarted_in_s": round(back_in, 2),
                                "projection_lag_zero_s": round(lag_zero, 2),
                                "calls": len(calls)})
