"""/metrics through prometheus-client: every metric name the gateway has always exported, the
values they count, a page a Prometheus parser reads, counting from many threads, and a new
metric added by another component appearing without touching the renderer."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from app.telemetry import GatewayMetrics

NAMES = {"ainfera_requests", "ainfera_upstream_latency_seconds",
         "ainfera_gateway_overhead_seconds", "dispatch_without_capture",
         "ainfera_projection_lag_events", "ainfera_projection_position",
         "ainfera_token_counts"}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_fresh_registry_exports_every_name_and_the_capture_invariant_as_zero() -> None:
    metrics = GatewayMetrics()
    assert isinstance(metrics.registry, CollectorRegistry)
    text = metrics.render(projection_lags={"decisions": 3, "agents": 0},
                          projection_positions={"decisions": 9})
    assert {f.name for f in text_string_to_metric_families(text)} == NAMES
    found = samples(text)
    assert found[("dispatch_without_capture_total", frozenset())] == 0
    assert found[("ainfera_projection_lag_events", frozenset({("projection", "agents")}))] == 0
    assert found[("ainfera_projection_lag_events",
                  frozenset({("projection", "decisions")}))] == 3
    assert found[("ainfera_projection_position",
                  frozenset({("projection", "decisions")}))] == 9
    assert "_created" not in text
    assert text.endswith("\n")


def test_requests_and_histograms_count_with_cumulative_buckets() -> None:
    metrics = GatewayMetrics()
    metrics.count_request("messages", "ainfera-inference", "succeeded")
    metrics.count_request("messages", "ainfera-inference", "succeeded")
    metrics.count_request("chat.completions", "direct", "failed")
    for seconds in (0.02, 0.3, 99.0):
        metrics.observe_upstream("openai", seconds)
    metrics.observe_overhead("messages", 0.0007)
    found = samples(metrics.render())
    ok = frozenset({("surface", "messages"), ("router", "ainfera-inference"),
                    ("status", "succeeded")})
    assert found[("ainfera_requests_total", ok)] == 2
    failed = frozenset({("surface", "chat.completions"), ("router", "direct"),
                        ("status", "failed")})
    assert found[("ainfera_requests_total", failed)] == 1

    def bucket(le: str) -> float:
        return found[("ainfera_upstream_latency_seconds_bucket",
                      frozenset({("provider", "openai"), ("le", le)}))]

    assert [bucket(le) for le in ("0.01", "0.025", "0.5", "60.0", "+Inf")] == [0, 1, 2, 2, 3]
    openai = frozenset({("provider", "openai")})
    assert found[("ainfera_upstream_latency_seconds_count", openai)] == 3
    assert abs(found[("ainfera_upstream_latency_seconds_sum", openai)] - 99.32) < 1e-9
    assert found[("ainfera_gateway_overhead_seconds_bucket",
                  frozenset({("surface", "messages"), ("le", "0.001")}))] == 1


def test_counting_from_many_threads_loses_nothing() -> None:
    metrics = GatewayMetrics()

    def work() -> None:
        for _ in range(1000):
            metrics.count_request("messages", "direct", "succeeded")
            metrics.count_dispatch_without_capture()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = samples(metrics.render())
    direct = frozenset({("surface", "messages"), ("router", "direct"), ("status", "succeeded")})
    assert found[("ainfera_requests_total", direct)] == 8000
    assert found[("dispatch_without_capture_total", frozenset())] == 8000


def test_another_component_adds_a_metric_without_touching_the_renderer() -> None:
    metrics = GatewayMetrics()
    ready = metrics.gauge("ainfera_ready", "1 when the gateway can serve.", ("check",))
    ready.labels(check="store").set(1)
    assert samples(metrics.render())[("ainfera_ready", frozenset({("check", "store")}))] == 1
    # Two apps in one process keep their own counts.
    other = GatewayMetrics()
    metrics.count_request("messages", "direct", "succeeded")
    assert "ainfera_requests_total{" not in other.render()
