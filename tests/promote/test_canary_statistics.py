"""The canary comparisons do not fire on noise, and fire on a real regression, at realistic sample sizes."""

from __future__ import annotations

import pytest
from mlops.canary.canary_stats import (
    compare_error_rates,
    compare_p95,
    min_samples_for_bounds,
    quantile_bounds,
    z_score,
)

Z95 = z_score(0.95)
EDGES = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, float("inf"))


def _histogram(samples: dict[float, int]) -> list[tuple[float, float]]:
    """Cumulative buckets over EDGES of `samples` (value -> how many)."""
    return [(edge, sum(n for value, n in samples.items() if value <= edge)) for edge in EDGES]


@pytest.mark.parametrize(
    ("canary", "stable", "verdict"),
    [
        ((1, 100), (0, 1000), "inconclusive"),  # one unlucky error on a small canary is not a regression
        ((0, 200), (2, 2000), "pass"),
        ((3, 300), (20, 3000), "pass"),  # 1% vs 0.67%: within the allowed 2 points with confidence
        ((30, 200), (10, 2000), "fail"),  # 15% vs 0.5%
    ],
)
def test_error_rate_verdicts(canary: tuple[int, int], stable: tuple[int, int], verdict: str) -> None:
    assert compare_error_rates(*canary, *stable, limit=0.02, z=Z95).verdict == verdict


def test_same_error_rate_passes_only_once_the_sample_is_large_enough() -> None:
    small = compare_error_rates(2, 50, 40, 1000, limit=0.02, z=Z95)
    large = compare_error_rates(20, 500, 40, 1000, limit=0.02, z=Z95)
    assert (small.verdict, large.verdict) == ("inconclusive", "pass")
    assert small.upper > large.upper


def test_p95_bounds_bracket_the_bucket_of_the_quantile() -> None:
    bounds = quantile_bounds(_histogram({0.02: 190, 0.2: 10}), 0.95, Z95)
    assert bounds is not None and bounds.count == 200
    assert (bounds.lower, bounds.upper) == (0.01, 0.25)  # ranks 185..196 straddle the two buckets
    assert quantile_bounds([(edge, 0) for edge in EDGES], 0.95, Z95) is None


def test_p95_upper_bound_needs_enough_samples() -> None:
    needed = min_samples_for_bounds(0.95, Z95)
    assert needed == 87
    few = quantile_bounds(_histogram({0.02: needed - 1}), 0.95, Z95)
    enough = quantile_bounds(_histogram({0.02: needed}), 0.95, Z95)
    assert few is not None and few.upper == float("inf")
    assert enough is not None and enough.upper == 0.025


def test_slow_canary_fails_and_equal_latency_passes() -> None:
    stable = quantile_bounds(_histogram({0.02: 950, 0.04: 50}), 0.95, Z95)
    same = quantile_bounds(_histogram({0.02: 95, 0.04: 5}), 0.95, Z95)
    # 2.5x slower but in the bucket next to stable's bound: not evidence yet; 5x slower is.
    near = quantile_bounds(_histogram({0.08: 95, 0.3: 5}), 0.95, Z95)
    slow = quantile_bounds(_histogram({0.2: 95, 0.3: 5}), 0.95, Z95)
    assert stable and same and near and slow
    assert compare_p95(same, stable, ratio=1.25).verdict == "pass"
    assert compare_p95(near, stable, ratio=1.25).verdict == "inconclusive"
    assert compare_p95(slow, stable, ratio=1.25).verdict == "fail"


def test_a_difference_too_small_to_matter_passes_with_the_plans_latency_slack() -> None:
    # A few milliseconds either way: 8 ms against ~5 ms is 1.6x, but only 3 ms.
    stable = quantile_bounds(_histogram({0.004: 950, 0.005: 50}), 0.95, Z95)
    canary = quantile_bounds(_histogram({0.008: 950, 0.009: 50}), 0.95, Z95)
    assert stable and canary
    assert compare_p95(canary, stable, ratio=1.5).verdict == "fail"
    passed = compare_p95(canary, stable, ratio=1.5, slack=0.005)
    assert passed.verdict == "pass"
    assert "allowed x1.5 or +5ms -> pass" in passed.summary()


def test_a_verdict_no_traffic_can_change_is_decided_not_waited_on() -> None:
    # Both p95s sit inside one bucket each (5-10 ms and 10-25 ms) however many requests come:
    # an estimate over the limit is then a failure, not an endless "inconclusive".
    stable = quantile_bounds(_histogram({0.008: 2000}), 0.95, Z95)
    canary = quantile_bounds(_histogram({0.012: 2000}), 0.95, Z95)
    assert stable and canary and stable.settled and canary.settled
    settled = compare_p95(canary, stable, ratio=1.25)
    assert settled.verdict == "fail"
    assert "settled" in settled.summary()
    # With room for more evidence (stable's bound still spans two buckets) it waits.
    spread = quantile_bounds(_histogram({0.008: 190, 0.02: 10}), 0.95, Z95)
    assert spread and not spread.settled
    assert compare_p95(canary, spread, ratio=1.25).verdict == "inconclusive"


def test_at_100_percent_stables_fixed_sample_does_not_hold_the_verdict_open() -> None:
    # Stable's sample from the step before spans two buckets and cannot grow any more.
    stable = quantile_bounds(_histogram({0.008: 190, 0.02: 10}), 0.95, Z95)
    canary = quantile_bounds(_histogram({0.012: 5000}), 0.95, Z95)
    assert stable and canary
    assert compare_p95(canary, stable, ratio=1.25).verdict == "inconclusive"
    assert compare_p95(canary, stable, ratio=1.25, baseline_fixed=True).verdict == "fail"
    healthy = quantile_bounds(_histogram({0.008: 5000}), 0.95, Z95)
    assert healthy and compare_p95(healthy, stable, ratio=1.25, baseline_fixed=True).verdict == "pass"
    # Error rates: 2.6% against 1% of 300 stable requests stays open while stable's interval
    # counts; against stable's rate as a known number, 5,000 canary requests settle it.
    assert compare_error_rates(130, 5000, 3, 300, limit=0.02, z=Z95).verdict == "inconclusive"
    assert compare_error_rates(130, 5000, 3, 300, limit=0.02, z=Z95, baseline_fixed=True).verdict == "pass"
