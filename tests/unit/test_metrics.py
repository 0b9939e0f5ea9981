"""The metrics registry renders the Prometheus text format exactly, and counts correctly from
many threads."""

from __future__ import annotations

import threading

import pytest

from app.telemetry import Counter, GatewayMetrics, Histogram


def test_a_fresh_registry_exports_the_capture_invariant_as_zero() -> None:
    text = GatewayMetrics().render(projection_lags={"decisions": 3, "agents": 0})
    lines = text.splitlines()
    assert "# TYPE dispatch_without_capture_total counter" in lines
    assert "dispatch_without_capture_total 0" in lines
    assert 'ainfera_projection_lag_events{projection="agents"} 0' in lines
    assert 'ainfera_projection_lag_events{projection="decisions"} 3' in lines
    assert text.endswith("\n")


def test_requests_and_histograms_render_cumulative_buckets() -> None:
    metrics = GatewayMetrics()
    metrics.count_request("messages", "ainfera-inference", "succeeded")
    metrics.count_request("messages", "ainfera-inference", "succeeded")
    metrics.count_request("chat.completions", "direct", "failed")
    metrics.observe_upstream("openai", 0.02)
    metrics.observe_upstream("openai", 0.3)
    metrics.observe_upstream("openai", 99.0)
    metrics.observe_overhead("messages", 0.0007)
    lines = metrics.render().splitlines()
    assert ('ainfera_requests_total{surface="messages",router="ainfera-inference",'
            'status="succeeded"} 2') in lines
    assert 'ainfera_requests_total{surface="chat.completions",router="direct",status="failed"} 1' \
        in lines
    assert 'ainfera_upstream_latency_seconds_bucket{provider="openai",le="0.01"} 0' in lines
    assert 'ainfera_upstream_latency_seconds_bucket{provider="openai",le="0.025"} 1' in lines
    assert 'ainfera_upstream_latency_seconds_bucket{provider="openai",le="0.5"} 2' in lines
    assert 'ainfera_upstream_latency_seconds_bucket{provider="openai",le="60"} 2' in lines
    assert 'ainfera_upstream_latency_seconds_bucket{provider="openai",le="+Inf"} 3' in lines
    assert 'ainfera_upstream_latency_seconds_count{provider="openai"} 3' in lines
    assert 'ainfera_upstream_latency_seconds_sum{provider="openai"} 99.32' in lines
    assert 'ainfera_gateway_overhead_seconds_bucket{surface="messages",le="0.001"} 1' in lines


def test_a_bucket_bound_is_inclusive_and_labels_are_escaped() -> None:
    histogram = Histogram("h", "help", ("k",), buckets=(1.0, 2.0))
    histogram.observe(1.0, k='a"b\\c\nd')
    lines = histogram.render()
    assert 'h_bucket{k="a\\"b\\\\c\\nd",le="1"} 1' in lines


def test_counters_refuse_wrong_labels_and_going_down() -> None:
    counter = Counter("c_total", "help", ("surface",))
    with pytest.raises(ValueError, match="takes labels"):
        counter.inc(router="x")
    with pytest.raises(ValueError, match="only goes up"):
        counter.inc(-1, surface="messages")


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
    assert metrics.requests.value(surface="messages", router="direct",
                                  status="succeeded") == 8000
    assert metrics.dispatch_without_capture.value() == 8000
