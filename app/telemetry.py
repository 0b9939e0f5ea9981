"""Process metrics in the Prometheus text format (version 0.0.4), without a client library:
a few counters and histograms the gateway increments, rendered on `/metrics`.

One `GatewayMetrics` per app (it lives on the Runtime), so tests never share counts. Every
method is thread-safe and cheap (a lock and a dict update), fit for the request path.

`dispatch_without_capture_total` counts upstream dispatches made without a durable Routed
event (a broken write-ahead audit). It must stay 0; it is exported even when 0 so an alert on
`dispatch_without_capture_total > 0` can tell "never happened" from "not scraped".

`ainfera_projector_*` describe the projector this process runs (absent when it runs none):
what it last knew, read from its state without a database round trip, so they still answer
while the database is down; `ainfera_projection_*` are read from the tracking rows.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from projections.projector import ProjectorState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
OVERHEAD_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

Labels = tuple[str, ...]


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: Mapping[str, str]) -> Labels:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, not {sorted(labels)}")
        return tuple(str(labels[n]) for n in self.label_names)

    def _header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[Labels, float] = {} if labels else {(): 0.0}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self._header() + [
            f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items
        ]


@dataclass
class _Series:
    buckets: list[int]
    total: float = 0.0
    count: int = 0


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = LATENCY_BUCKETS_S) -> None:
        super().__init__(name, help_text, labels)
        self.bounds = tuple(sorted(buckets))
        self._series: dict[Labels, _Series] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            series = self._series.setdefault(key, _Series([0] * len(self.bounds)))
            index = bisect.bisect_left(self.bounds, value)
            if index < len(self.bounds):
                series.buckets[index] += 1
            series.total += value
            series.count += 1

    def count(self, **labels: str) -> int:
        with self._lock:
            series = self._series.get(self._key(labels))
            return series.count if series else 0

    def render(self) -> list[str]:
        lines = self._header()
        with self._lock:
            items = sorted((k, _Series(list(s.buckets), s.total, s.count))
                           for k, s in self._series.items())
        for key, series in items:
            cumulative = 0
            for bound, hits in zip(self.bounds, series.buckets, strict=True):
                cumulative += hits
                le = _labels((*self.label_names, "le"), (*key, _number(bound)))
                lines.append(f"{self.name}_bucket{le} {cumulative}")
            inf = _labels((*self.label_names, "le"), (*key, "+Inf"))
            lines.append(f"{self.name}_bucket{inf} {series.count}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(series.total)}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {series.count}")
        return lines


@dataclass
class GatewayMetrics:
    """The gateway's instruments. Surfaces are "messages" and "chat.completions"; routers
    "ainfera-inference" and "direct"; status is the Completed status or an HTTP refusal."""

    requests: Counter = field(default_factory=lambda: Counter(
        "ainfera_requests_total", "Inference requests by surface, router and final status.",
        ("surface", "router", "status")))
    upstream_latency: Histogram = field(default_factory=lambda: Histogram(
        "ainfera_upstream_latency_seconds",
        "Time waiting on an upstream per attempt: to its answer, or to a stream's first event.",
        ("provider",)))
    overhead: Histogram = field(default_factory=lambda: Histogram(
        "ainfera_gateway_overhead_seconds",
        "Time the gateway itself added to a request (total minus upstream), per surface.",
        ("surface",), OVERHEAD_BUCKETS_S))
    dispatch_without_capture: Counter = field(default_factory=lambda: Counter(
        "dispatch_without_capture_total",
        "Upstream dispatches made without a durable Routed event. Must stay 0."))
    token_counts: Counter = field(default_factory=lambda: Counter(
        "ainfera_token_counts_total",
        "POST /v1/messages/count_tokens calls (read-only, never inferences), by how they were "
        "answered: upstream, estimated or failed.", ("mode",)))

    def count_request(self, surface: str, router: str, status: str) -> None:
        self.requests.inc(surface=surface, router=router, status=status)

    def observe_upstream(self, provider: str, seconds: float) -> None:
        self.upstream_latency.observe(seconds, provider=provider)

    def observe_overhead(self, surface: str, seconds: float) -> None:
        self.overhead.observe(seconds, surface=surface)

    def count_dispatch_without_capture(self) -> None:
        self.dispatch_without_capture.inc()

    def count_token_count(self, mode: str) -> None:
        self.token_counts.inc(mode=mode)

    def render(self, projection_lags: Mapping[str, int] | None = None,
               projection_positions: Mapping[str, int] | None = None,
               projector: ProjectorState | None = None) -> str:
        lines: list[str] = []
        for metric in (self.requests, self.upstream_latency, self.overhead,
                       self.dispatch_without_capture, self.token_counts):
            lines.extend(metric.render())
        if projection_lags is not None:
            lines.extend(_gauge("ainfera_projection_lag_events",
                                "Events in the ledger a projection has not applied yet.",
                                "projection", projection_lags.items()))
        if projection_positions is not None:
            lines.extend(_gauge("ainfera_projection_position",
                                "The last notification id a projection applied.",
                                "projection", projection_positions.items()))
        if projector is not None:
            lines.extend(_projector_lines(projector))
        return "\n".join(lines) + "\n"


def _projector_lines(state: ProjectorState) -> list[str]:
    success = state.last_success_at.timestamp() if state.last_success_at else 0.0
    metrics: list[tuple[str, str, str, float]] = [
        ("ainfera_projector_position", "gauge",
         "The notification id every read model of this process's projector has applied.",
         state.position),
        ("ainfera_projector_lag_events", "gauge",
         "Events the projector knew were in the ledger beyond its position.", state.lag),
        ("ainfera_projector_failing", "gauge",
         "1 while the projector's latest attempt failed (it retries with back-off).",
         int(state.last_error is not None)),
        ("ainfera_projector_last_success_timestamp_seconds", "gauge",
         "When the projector last reached the database (Unix time; 0 = never).", success),
        ("ainfera_projector_applied_events_total", "counter",
         "Events applied by this projector, summed over its read models.",
         state.applied_total),
        ("ainfera_projector_batches_total", "counter", "Batches this projector committed.",
         state.batches_total),
        ("ainfera_projector_statements_total", "counter",
         "Statements the projector sent to the database (a few per batch when set-based).",
         state.statements_total),
        ("ainfera_projector_errors_total", "counter", "Batches or polls that failed.",
         state.errors_total),
    ]
    lines: list[str] = []
    for name, kind, help_text, value in metrics:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}",
                  f"{name} {_number(value)}"]
    return lines


def _gauge(name: str, help_text: str, label: str,
           values: Iterable[tuple[str, int]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f"{name}{_labels((label,), (k,))} {v}" for k, v in sorted(values)]
    return lines


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + pairs + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))
