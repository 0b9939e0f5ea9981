"""What every outage scenario shares: its timing, and the checks after the server is back.
During the outage callers are refused fast with retry advice and `/readyz` says 503 naming
the part; within 10 s of the server's return `/readyz` is 200 again; afterwards every
invariant of tests/faults/checks.py holds, and the gateway process was never restarted.

The figures each scenario measured are printed (`pytest -s`) as one `FIGURES` line;
docs/operations.md quotes them."""

from __future__ import annotations

import json
import time

from tests.faults.checks import (
    dispatch_without_capture,
    ledger_problems,
    run_verify,
    wait_for_lag_zero,
    wait_for_ledger,
)
from tests.faults.scenario import CAP, Scenario

WARM_S = 2.0
OUTAGE_S = 6.0
AFTER_S = 3.0
READY_WITHIN_S = 10.0
READY_ANSWERED_WITHIN_S = 1.5
# A call during an outage is refused within this (the connect timeout is 2 s).
REFUSED_WITHIN_S = 5.0


def settle_and_check(s: Scenario, *, outage_start: float, restarting: float,
                     outage_end: float, component: str) -> dict[str, float]:
    """The common assertions after a fault; returns the figures measured.

    `restarting` is when the server's restart began and `outage_end` when it had come back:
    `/readyz` must say 503 while the server is down, but an answer taken while the restart was
    completing may rightly be 200 again (the gateway can be ready before `start()` returns)."""
    during = s.ready.between(outage_start + 1.0, restarting)
    assert during, "no /readyz answer during the outage"
    assert all(p.status == 503 for p in during), [(p.status, p.failing) for p in during]
    assert all(component in p.failing for p in during), [p.failing for p in during]
    slowest_ready = max(p.took for p in s.ready.probes)
    # It answers within a second (each check gets 0.7 s) whatever is down; the bound leaves
    # room for a loaded machine and is far from the 28 s it used to hang.
    assert slowest_ready < READY_ANSWERED_WITHIN_S, slowest_ready
    recovery = s.ready.wait_ready(outage_end, READY_WITHIN_S)
    time.sleep(AFTER_S)
    calls = s.load.stop()
    assert s.alive(), "the gateway process died"
    log = s.log()
    assert "unhandled error" not in log, log[-5000:]
    assert not [c for c in calls if c.status is not None and c.status >= 500
                and c.status != 503], "a 5xx other than 503"
    refused = [c for c in calls if c.status == 503]
    for call in refused:
        assert call.retry_advised, call.body
        assert call.retry_after, call.body
    assert dispatch_without_capture(s.url) == 0
    lag_zero = wait_for_lag_zero(s.url)
    ledger = wait_for_ledger(s.database_url, calls)
    problems = ledger_problems(ledger, calls, len(s.fake.requests), s.world.agent_id, CAP)
    assert not problems, problems
    verified = run_verify(s.database_url, s.redis_url, s.prefix, str(s.tmp / "signing.key"))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    acknowledged = [c for c in calls if c.acknowledged]
    assert acknowledged, "no call was served at all"
    assert [c for c in calls if c.acknowledged and c.started > outage_end], \
        "nothing was served after the outage"
    return {"calls": len(calls), "acknowledged": len(acknowledged), "refused_503": len(refused),
            "ready_again_s": round(recovery, 2), "slowest_readyz_s": round(slowest_ready, 3),
            "projection_lag_zero_s": round(lag_zero, 2)}


def report(name: str, figures: dict[str, float]) -> None:
    print(f"FIGURES {name} {json.dumps(figures, sort_keys=True)}")
