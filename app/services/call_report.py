"""What one call came to (served model, outcome, cost, time upstream), noted by the write path
as it closes the inference and read by the HTTP edge's log line (app.http.access_log).

It rides in a ContextVar set once per request at the edge, like the audit context: the write
path needs no extra argument, and a call made outside a request (a test, a job) notes nothing.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal


@dataclass
class CallReport:
    served_model: str | None = None
    outcome: str | None = None  # the Completed status
    cost_usd: Decimal | None = None  # the Debited amount, when anything was debited
    upstream_s: float | None = None  # time waiting on upstreams (to first event for streams)


_current: ContextVar[CallReport | None] = ContextVar("ainfera_call_report", default=None)


def start_report() -> CallReport:
    """A fresh report for the request being served (the edge calls it first)."""
    report = CallReport()
    _current.set(report)
    return report


def note_close(outcome: str, served_model: str | None, cost_usd: Decimal | None,
               upstream_s: float) -> None:
    report = _current.get()
    if report is not None:
        report.outcome = outcome
        report.served_model = served_model
        report.cost_usd = cost_usd
        report.upstream_s = upstream_s
