"""Process metrics through `prometheus-client`, rendered on `/metrics` in the Prometheus text
format.

One `GatewayMetrics` per app (it lives on the Runtime) with its own `CollectorRegistry`, so
tests never share counts. Recording is thread-safe and cheap, fit for the request path.

Adding a metric: declare it in `GatewayMetrics.__post_init__` with `self.registry` (or call
`metrics.counter(...)`, `.histogram(...)`, `.gauge(...)` from the component that owns it) and
give the owner a method that records it; `/metrics` renders whatever the registry holds.
Values known only at scrape time (projection lag) are set in `render`.

`dispatch_without_capture_total` counts upstream dispatches made without a durable Routed
event (a broken write-ahead audit). It must stay 0; it is exported even when 0 so an alert on
`dispatch_without_capture_total > 0` can tell "never happened" from "not scraped".

`ainfera_projector_*` describe the projector this process runs (absent when it runs none):
what it last knew, read from its state without a database round trip, so they still answer
while the database is down; `ainfera_projection_*` are read from the tracking rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import disable_created_metrics as _disable_created
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from projections.projector import ProjectorState

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
OVERHEAD_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

# The `*_created` series the library adds by default would double every counter and
# histogram on the page with timestamps nobody alerts on.
_disable_created()  # type: ignore[no-untyped-call]


class ProjectorCollector(Collector):
    """The projector's own state as of the last scrape (totals it keeps itself, so they are
    reported as they are rather than incremented here)."""

    def __init__(self) -> None:
        self.state: ProjectorState | None = None

    def collect(self) -> Iterator[Metric]:
        state = self.state
        if state is None:
            return
        success = state.last_success_at.timestamp() if state.last_success_at else 0.0
        gauges = (
            ("ainfera_projector_position",
             "The notification id every read model of this process's projector has applied.",
             state.position),
            ("ainfera_projector_lag_events",
             "Events the projector knew were in the ledger beyond its position.", state.lag),
            ("ainfera_projector_failing",
             "1 while the projector's latest attempt failed (it retries with back-off).",
             int(state.last_error is not None)),
            ("ainfera_projector_last_success_timestamp_seconds",
             "When the projector last reached the database (Unix time; 0 = never).", success),
        )
        for name, help_text, value in gauges:
            yield GaugeMetricFamily(name, help_text, value=value)
        counters = (
            ("ainfera_projector_applied_events",
             "Events applied by this projector, summed over its read models.",
             state.applied_total),
            ("ainfera_projector_batches", "Batches this projector committed.",
             state.batches_total),
            ("ainfera_projector_statements",
             "Statements the projector sent to the database (a few per batch when set-based).",
             state.statements_total),
            ("ainfera_projector_errors", "Batches or polls that failed.", state.errors_total),
        )
        for name, help_text, value in counters:
            yield CounterMetricFamily(name, help_text, value=value)


@dataclass
class GatewayMetrics:
    """The gateway's instruments. Surfaces are "messages" and "chat.completions"; routers
    "ainfera-inference" and "direct"; status is the Completed status or an HTTP refusal."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = self.counter(
            "ainfera_requests_total", "Inference requests by surface, router and final status.",
            ("surface", "router", "status"))
        self.upstream_latency = self.histogram(
            "ainfera_upstream_latency_seconds",
            "Time waiting on an upstream per attempt: to its answer, or to a stream's first "
            "event.", ("provider",), LATENCY_BUCKETS_S)
        self.overhead = self.histogram(
            "ainfera_gateway_overhead_seconds",
            "Time the gateway itself added to a request (total minus upstream), per surface.",
            ("surface",), OVERHEAD_BUCKETS_S)
        self.dispatch_without_capture = self.counter(
            "dispatch_without_capture_total",
            "Upstream dispatches made without a durable Routed event. Must stay 0.")
        self.token_counts = self.counter(
            "ainfera_token_counts_total",
            "POST /v1/messages/count_tokens calls (read-only, never inferences), by how they "
            "were answered: upstream, estimated or failed.", ("mode",))
        self.projection_lag = self.gauge(
            "ainfera_projection_lag_events",
            "Events in the ledger a projection has not applied yet.", ("projection",))
        self.projection_position = self.gauge(
            "ainfera_projection_position", "The last notification id a projection applied.",
            ("projection",))
        self.projector = ProjectorCollector()
        self.registry.register(self.projector)

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(name, help_text, labels, registry=self.registry)

    def histogram(self, name: str, help_text: str, labels: Sequence[str] = (),
                  buckets: Sequence[float] = LATENCY_BUCKETS_S) -> Histogram:
        return Histogram(name, help_text, labels, registry=self.registry, buckets=buckets)

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(name, help_text, labels, registry=self.registry)

    def count_request(self, surface: str, router: str, status: str) -> None:
        self.requests.labels(surface=surface, router=router, status=status).inc()

    def observe_upstream(self, provider: str, seconds: float) -> None:
        self.upstream_latency.labels(provider=provider).observe(seconds)

    def observe_overhead(self, surface: str, seconds: float) -> None:
        self.overhead.labels(surface=surface).observe(seconds)

    def count_dispatch_without_capture(self) -> None:
        self.dispatch_without_capture.inc()

    def count_token_count(self, mode: str) -> None:
        self.token_counts.labels(mode=mode).inc()

    def render(self, projection_lags: Mapping[str, int] | None = None,
               projection_positions: Mapping[str, int] | None = None,
               projector: ProjectorState | None = None) -> str:
        for gauge, values in ((self.projection_lag, projection_lags),
                              (self.projection_position, projection_positions)):
            for name, value in (values or {}).items():
                gauge.labels(projection=name).set(value)
        self.projector.state = projector
        return generate_latest(self.registry).decode()
