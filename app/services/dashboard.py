"""The dashboard's answers, built from the read models for one tenant at one moment (the
queries; their HTTP routes are app/http/routes/dashboard.py, the same concept one layer out).

Pure functions of a read snapshot and `now` (so tests can pin the clock): the HTTP layer only
picks the tenant, the time and the consistency. Money is read as whole nano-dollars, summed as
integers and answered as decimal strings without trailing zeros (domain.money.from_nanos);
ratios are plain numbers.

Definitions (also in docs/projections.md):
- usage days are UTC dates of Routed; `by_status.fallback` is a subset of `ok`; only days with
  calls are listed (an empty tenant gets `days: []`) unless zero-filling is asked for.
- the 24-hour window holds calls whose Completed falls in (now - 24 h, now].
- caps rollup: `calls`, `error_rate` and `latency_p50_ms` are over the 24-hour window, the
  first two over every call, `latency_p50_ms` over routed calls only (routing_outcomes;
  null when there were none: a tenant of passthroughs has no routing latency); `budget.set`
  is the sum of the daily caps of the agents that have one, and `budget.used_usd` what those
  agents spent today (UTC); `breaches.quality` counts routed calls completed in the window
  as `rejected_floor` (no model met the quality floor);
  `breaches.reliability` counts agents whose window error rate exceeds 5%.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.money import from_nanos, usd_str
from projections.agent_metrics import outcomes_by_day, percentile, window_rows, window_stats
from projections.agents import tenant_agents
from projections.inference_list import IN_FLIGHT
from projections.routing_outcomes import count_status_since, latencies_since
from projections.usage_daily import read_days
from projections.view import Session, utc_text

WINDOW = timedelta(hours=24)
RELIABILITY_ERROR_RATE = 0.05
MAX_DAYS = 366
SPLITS = ("agent", "outcome")
"""`usage_daily(by=...)`: per day, the calls and spend of each agent (from usage_daily), or of
each exact outcome, the Completed status or `in_flight` (from agent_metrics)."""


def _zero_status() -> dict[str, int]:
    return {"ok": 0, "fallback": 0, "error": 0}


def usage_daily(session: Session, tenant_id: str, days: int, today: date,
                agent_id: str | None = None, by: str | None = None,
                fill_zero: bool = False) -> dict[str, Any]:
    """The UTC dates of the window that had calls (oldest first), or with `fill_zero` every
    date of the window, zeros included; and the totals, zeros when there were no calls. Only
    `agent_id`'s calls when given; with `by`, each day's split (see SPLITS)."""
    first = today - timedelta(days=days - 1)
    window = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    found = [row for row in read_days(session, tenant_id, window[0], window[-1])
             if agent_id is None or row[1] == agent_id]
    dates = window if fill_zero else sorted({str(row[0]) for row in found})
    calls: dict[str, int] = dict.fromkeys(dates, 0)
    cost: dict[str, int] = dict.fromkeys(dates, 0)
    status = {d: _zero_status() for d in dates}
    per_agent: dict[str, dict[str, dict[str, Any]]] = {d: {} for d in dates}
    for day, agent, n, spent, ok, fallback, error in found:
        calls[day] += int(n)
        cost[day] += int(spent)
        status[day]["ok"] += int(ok)
        status[day]["fallback"] += int(fallback)
        status[day]["error"] += int(error)
        per_agent[day][str(agent)] = {"calls": int(n),
                                      "cost_usd": usd_str(from_nanos(int(spent))),
                                      "by_status": {"ok": int(ok), "fallback": int(fallback),
                                                    "error": int(error)}}
    totals = _zero_status()
    for counts in status.values():
        for key, value in counts.items():
            totals[key] += value
    rows: list[dict[str, Any]] = [
        {"date": d, "calls": calls[d], "cost_usd": usd_str(from_nanos(cost[d])),
         "by_status": status[d]}
        for d in dates]
    if by == "agent":
        for row in rows:
            row["by_agent"] = per_agent[row["date"]]
    elif by == "outcome" and dates:
        outcomes = _by_outcome(session, tenant_id, dates, agent_id)
        for row in rows:
            row["by_outcome"] = outcomes[row["date"]]
    return {
        "days": rows,
        "totals": {"calls": sum(calls.values()),
                   "cost_usd": usd_str(from_nanos(sum(cost.values()))), "by_status": totals},
    }


def _by_outcome(session: Session, tenant_id: str, dates: list[str],
                agent_id: str | None) -> dict[str, dict[str, dict[str, str | int]]]:
    """Per day, calls and spend of each exact outcome, added up by the database."""
    until = (date.fromisoformat(dates[-1]) + timedelta(days=1)).isoformat()
    out: dict[str, dict[str, dict[str, str | int]]] = {d: {} for d in dates}
    for day, status, calls, spent in sorted(
            outcomes_by_day(session, tenant_id, dates[0], until, agent_id),
            key=lambda row: (row[0], row[1] or IN_FLIGHT)):
        if day in out:
            out[day][status or IN_FLIGHT] = {"calls": calls,
                                             "cost_usd": usd_str(from_nanos(spent))}
    return out


def caps_rollup(session: Session, tenant_id: str, now: datetime) -> dict[str, Any]:
    agents = tenant_agents(session, tenant_id)
    caps = {agent_id: cap for agent_id, _name, cap in agents if cap is not None}
    today = now.date().isoformat()
    used = from_nanos(sum(int(row[3]) for row in read_days(session, tenant_id, today, today)
                          if row[1] in caps))
    since, until = utc_text(now - WINDOW), utc_text(now)
    rows = window_rows(session, tenant_id, since, until)
    per_agent: dict[str, list[Sequence[Any]]] = defaultdict(list)
    for row in rows:
        per_agent[row[0]].append(row)
    unreliable = sum(1 for agent_rows in per_agent.values()
                     if window_stats(agent_rows).error_rate > RELIABILITY_ERROR_RATE)
    window = window_stats(rows)
    return {
        "agents": len(agents),
        "policies_set": len(caps),
        "budget": {"set": usd_str(sum(caps.values(), Decimal(0)).normalize()),
                   "used_usd": usd_str(used)},
        "latency_p50_ms": percentile(latencies_since(session, tenant_id, since, until), 50),
        "calls": window.calls,
        "error_rate": window.error_rate,
        "breaches": {
            "quality": count_status_since(session, tenant_id, "rejected_floor", since, until),
            "reliability": unreliable,
        },
        "window_hours": 24,
        "as_of": utc_text(now),
    }


def agent_metrics(session: Session, tenant_id: str, agent_id: str,
                  now: datetime) -> dict[str, Any]:
    rows = window_rows(session, tenant_id, utc_text(now - WINDOW), utc_text(now), agent_id)
    return {"agent_id": agent_id, "window_hours": 24, "as_of": utc_text(now),
            **window_stats(rows).as_dict()}
