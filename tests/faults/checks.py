"""What must hold after every fault: read from the ledger itself and from the gateway's own
answers, never from the gateway's memory.

- no acknowledged call is missing from the ledger (each has its Completed);
- no dispatch without Routed: the gateway never counted one, and every request the upstream
  received is a Dispatched attempt of a routed inference;
- no call was left open by a gateway that is still alive;
- the capped agent's Debited total is within its cap (overshoot 0);
- `ainfera verify` passes (read models, chain, tree, checkpoints, spend counters);
- every projection is back at the ledger's end.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx

from adapters.database import Database
from adapters.store import EventStore
from domain.ids import parse_inference_id
from tests.faults.load import Call
from tests.harness.gateway import AINFERA

SETTLE_S = 30.0


@dataclass
class Ledger:
    """Every inference's event names, in order, and the Debited amounts per agent today."""

    events: dict[UUID, list[str]] = field(default_factory=dict)
    statuses: dict[UUID, str] = field(default_factory=dict)
    debited_today: Counter[str] = field(default_factory=Counter)

    @classmethod
    def read(cls, database_url: str) -> Ledger:
        ledger = cls()
        today = datetime.now(UTC).date()
        store = EventStore(Database.from_url(database_url))
        try:
            start = 1
            while page := store.notifications(start, 1000):
                for notification in page:
                    start = notification.id + 1
                    if not notification.topic.startswith("domain.inference:Inference."):
                        continue
                    event: Any = store.decode(notification)
                    name = type(event).__name__
                    ledger.events.setdefault(event.originator_id, []).append(name)
                    if name == "Completed":
                        ledger.statuses[event.originator_id] = str(event.status)
                    if name == "Debited" and event.timestamp.date() == today:
                        ledger.debited_today[str(event.agent_id)] += Decimal(event.cost_usd)
        finally:
            store.close()
        return ledger

    def count(self, name: str) -> int:
        return sum(names.count(name) for names in self.events.values())

    def open_inferences(self) -> list[UUID]:
        return [i for i, names in self.events.items() if "Completed" not in names]


def acknowledged_ids(calls: Iterable[Call]) -> set[UUID]:
    return {parse_inference_id(c.inference_id) for c in calls
            if c.acknowledged and c.inference_id is not None}


def wait_for_ledger(database_url: str, calls: list[Call], *,
                    allow_open: set[UUID] | None = None) -> Ledger:
    """The ledger once every acknowledged call is in it and nothing is left open (closing
    writes land in the background after an outage), or as it is after SETTLE_S."""
    wanted = acknowledged_ids(calls)
    deadline = time.monotonic() + SETTLE_S
    while True:
        ledger = Ledger.read(database_url)
        missing = {i for i in wanted if "Completed" not in ledger.events.get(i, [])}
        still_open = set(ledger.open_inferences()) - (allow_open or set())
        if (not missing and not still_open) or time.monotonic() > deadline:
            return ledger
        time.sleep(0.5)


def ledger_problems(ledger: Ledger, calls: list[Call], upstream_requests: int,
                    capped_agent: str, cap: Decimal, *,
                    allow_open: set[UUID] | None = None, died_in_flight: int = 0) -> list[str]:
    """Everything wrong with the ledger after a fault. `died_in_flight`: calls a killed
    process had sent upstream (each may lack the Dispatched it never got to record, but
    never its Routed)."""
    problems = []
    for inference_id in sorted(acknowledged_ids(calls)):
        names = ledger.events.get(inference_id)
        if not names or "Completed" not in names:
            problems.append(f"acknowledged call {inference_id} is not complete in the ledger: "
                            f"{names}")
    still_open = set(ledger.open_inferences()) - (allow_open or set())
    if still_open:
        problems.append(f"{len(still_open)} inference(s) left open: "
                        f"{[ledger.events[i] for i in list(still_open)[:5]]}")
    routed = ledger.count("Routed")
    dispatched = ledger.count("Dispatched")
    for inference_id, names in ledger.events.items():
        if names[0] != "Routed":
            problems.append(f"inference {inference_id} does not start with Routed: {names}")
    if upstream_requests > dispatched + died_in_flight:
        problems.append(f"the upstream got {upstream_requests} requests but the ledger holds "
                        f"{dispatched} Dispatched attempts ({routed} Routed)")
    spent = ledger.debited_today.get(capped_agent, Decimal(0))
    if spent > cap:
        problems.append(f"capped agent spent ${spent}, over its ${cap} cap")
    return problems


def run_verify(database_url: str, redis_url: str | None, prefix: str | None,
               signing_key_file: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AINFERA_DATABASE_URL": database_url,
           "AINFERA_SIGNING_KEY_FILE": signing_key_file}
    if redis_url:
        env.update({"AINFERA_REDIS_URL": redis_url, "AINFERA_REDIS_PREFIX": prefix or ""})
    return subprocess.run([AINFERA, "verify"], env=env, capture_output=True, text=True,
                          timeout=180, check=False)


# prometheus-client renders every sample as a float ("3.0").
_LAG = re.compile(r'^ainfera_projection_lag_events\{projection="([^"]+)"\} (\S+)$', re.M)


def projection_lags(url: str) -> dict[str, int]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {name: int(float(lag)) for name, lag in _LAG.findall(text)}


def dispatch_without_capture(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    match = re.search(r"^dispatch_without_capture_total (\S+)$", text, re.M)
    assert match, "dispatch_without_capture_total is not on /metrics"
    return float(match.group(1))


def wait_for_lag_zero(url: str, within: float = 30.0) -> float:
    """Seconds until every projection is at the ledger's end; raises after `within`."""
    began = time.monotonic()
    while True:
        try:
            lags = projection_lags(url)
        except httpx.HTTPError:
            lags = {}
        if lags and not any(lags.values()):
            return time.monotonic() - began
        if time.monotonic() - began > within:
            raise AssertionError(f"projections still behind after {within:.0f} s: {lags}")
        time.sleep(0.25)
