"""The pure rules of the read models: how a candidate is collapsed for the dashboard, which
statuses are errors, and nearest-rank percentiles."""

from __future__ import annotations

import json

import pytest

from domain.catalog import canonical_json
from projections.agent_metrics import percentile, window_stats
from projections.decisions import dashboard_candidates, excluded_because, json_text
from projections.events import status_counts


@pytest.mark.parametrize(
    ("eligible", "cleared", "reason", "excluded"),
    [
        (True, True, None, None),
        (False, False, "context_too_small", "context_too_small"),  # explicit reason wins
        (False, False, None, "ineligible"),  # ineligible wins over below_floor
        (False, True, None, "ineligible"),
        (True, False, None, "below_floor"),
        (False, False, "below_floor", "below_floor"),
    ],
)
def test_excluded_precedence(eligible: bool, cleared: bool, reason: str | None,
                             excluded: str | None) -> None:
    candidate = {"eligible": eligible, "cleared_floor": cleared, "rejection_reason": reason}
    assert excluded_because(candidate) == excluded


def test_only_the_chosen_model_is_chosen_and_none_when_rejected() -> None:
    candidates = [{"model": "a", "eligible": True, "cleared_floor": True},
                  {"model": "b", "eligible": True, "cleared_floor": True}]
    assert [c["chosen"] for c in dashboard_candidates(candidates, "b")] == [False, True]
    assert [c["chosen"] for c in dashboard_candidates(candidates, None)] == [False, False]


@pytest.mark.parametrize(
    ("status", "counts"),
    [
        ("succeeded", (1, 0, 0)),
        ("fallback_succeeded", (1, 1, 0)),
        ("failed", (0, 0, 1)),
        ("rejected_floor", (0, 0, 1)),
        ("rejected_budget", (0, 0, 1)),
        ("cancelled", (0, 0, 1)),
        ("abandoned", (0, 0, 1)),
    ],
)
def test_status_counts(status: str, counts: tuple[int, int, int]) -> None:
    assert status_counts(status) == counts


def test_nearest_rank_percentiles_are_observed_values() -> None:
    assert percentile([], 50) is None
    assert percentile([7], 95) == 7
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile(list(range(1, 101)), 95) == 95
    # Costs are whole nano-dollars.
    stats = window_stats([("a", "succeeded", 10, 100_000_000), ("a", "failed", None, None),
                          ("a", "cancelled", 30, 20_000_000)])
    assert (stats.calls, stats.errors, str(stats.cost_usd)) == (3, 2, "0.12")
    assert (stats.latency_p50_ms, stats.latency_p95_ms, stats.error_rate) == (10, 30, 0.6667)


def test_utc_text_is_the_fixed_width_strftime_form_for_every_zone_and_fraction() -> None:
    """The read models' timestamps: the fast form must keep the bytes the old strftime wrote
    (a replay writes the same rows)."""
    from datetime import UTC, datetime, timedelta, timezone

    from projections.view import utc_text

    zones = [UTC, timezone(timedelta(hours=3)), timezone(timedelta(hours=-9, minutes=-30))]
    for zone in zones:
        for moment in (datetime(2026, 11, 29, 11, 5, 7, 123456, tzinfo=zone),
                       datetime(2026, 1, 1, 0, 0, 0, 0, tzinfo=zone),
                       datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=zone),
                       datetime(999, 5, 4, 3, 2, 1, 10, tzinfo=zone)):
            want = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            assert utc_text(moment) == want
    assert utc_text(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"


@pytest.mark.parametrize("value", [
    {}, [], {"min_quality": "0.70", "routing_preference": "balanced", "preference_live": False},
    [{"model": "m", "quality": "0.9", "eligible": True, "rejection_reason": None, "n": 3}],
    {"é": "中文 😀", "\u2028": "\x00\x7f", "b": [1, {"z": None, "a": True}]},
])
def test_canonical_json_keeps_the_bytes_hashes_were_taken_over(value: object) -> None:
    """The kept encoder writes exactly what `json.dumps` with the documented options wrote:
    ruleset hashes and request digests already on the ledger were taken over these bytes."""
    dumped = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                        allow_nan=False).encode("utf-8")
    assert canonical_json(value) == dumped
    assert json_text(value) == dumped.decode("utf-8")


@pytest.mark.parametrize(("value", "error"), [
    ({"x": float("nan")}, ValueError), ({"x": "\ud800"}, UnicodeEncodeError),
    ({"x": object()}, TypeError)])
def test_decision_json_refuses_what_the_catalog_canonical_json_refuses(
        value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        canonical_json(value)
    with pytest.raises(error):
        json_text(value)
