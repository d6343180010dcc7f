"""Confidence bounds for canary analysis: error rates (Wilson, Newcombe) and p95s from histogram buckets.

Both comparisons are one-sided and account for how many requests each side saw, so a
handful of unlucky requests on a small canary does not read as a regression, and a real
regression is not waved through because the sample was small: the verdict is then
"inconclusive" and the analysis waits for more traffic. docs/promotion.md (Canary analysis)
explains the method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

Verdict = Literal["pass", "fail", "inconclusive"]


def z_score(confidence: float) -> float:
    """Return the one-sided normal quantile for `confidence` (1.645 for 0.95)."""
    return NormalDist().inv_cdf(confidence)


def wilson(events: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion `events / n` (0..1 when there are no trials)."""
    if n <= 0:
        return 0.0, 1.0
    p = events / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class RateComparison:
    """Canary minus stable error rate, with Newcombe's hybrid score bounds on the difference."""

    canary_rate: float
    stable_rate: float
    lower: float
    upper: float
    limit: float
    verdict: Verdict

    def summary(self) -> str:
        """One line with the numbers the verdict rests on."""
        return (
            f"canary {self.canary_rate:.4f} vs stable {self.stable_rate:.4f}: difference in "
            f"[{self.lower:+.4f}, {self.upper:+.4f}], allowed +{self.limit:.4f} -> {self.verdict}"
        )


def compare_error_rates(
    canary_errors: float, canary_n: float, stable_errors: float, stable_n: float, limit: float, z: float
) -> RateComparison:
    """Judge whether the canary's error rate exceeds stable's by more than `limit`.

    fail: even the lower bound of the difference is above `limit` (confidently worse);
    pass: the upper bound is within `limit` (confidently not worse); inconclusive otherwise.
    Newcombe (1998), method 10: the difference's bounds combine each side's Wilson interval.
    """
    p1, p2 = canary_errors / canary_n, stable_errors / stable_n
    l1, u1 = wilson(canary_errors, canary_n, z)
    l2, u2 = wilson(stable_errors, stable_n, z)
    diff = p1 - p2
    lower = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    verdict: Verdict = "fail" if lower > limit else "pass" if upper <= limit else "inconclusive"
    return RateComparison(p1, p2, lower, upper, limit, verdict)


@dataclass(frozen=True)
class QuantileBounds:
    """A quantile of a bucketed histogram: the buckets' estimate and a confidence interval."""

    estimate: float
    lower: float
    upper: float
    count: int


def min_samples_for_bounds(q: float, z: float) -> int:
    """Return the fewest samples for which the `q` quantile's upper bound (`quantile_bounds`) is finite."""
    n = 1
    while math.ceil(n * q + z * math.sqrt(n * q * (1 - q))) + 1 > n:
        n += 1
    return n


def quantile_bounds(buckets: Sequence[tuple[float, float]], q: float, z: float) -> QuantileBounds | None:
    """Bounds on the `q` quantile from cumulative buckets `[(le, count), ...]` (+Inf included).

    Distribution-free: of n samples, the number at or below the true quantile is
    Binomial(n, q), so the order statistics of ranks n*q -/+ z*sqrt(n*q*(1-q)) bracket it.
    A rank is only known to the bucket holding it, so the lower bound is that bucket's lower
    edge and the upper bound its upper edge (infinite in the +Inf bucket). The estimate
    interpolates linearly inside the bucket, as PromQL's histogram_quantile does.
    None when the histogram is empty.
    """
    ordered = sorted((le, round(count)) for le, count in buckets)
    n = ordered[-1][1] if ordered else 0
    if n <= 0:
        return None
    spread = z * math.sqrt(n * q * (1 - q))
    low_rank = max(1, math.floor(n * q - spread))
    high_rank = min(n + 1, math.ceil(n * q + spread) + 1)

    def bucket(rank: float) -> tuple[float, float, int, int]:
        below_le, below_count = 0.0, 0
        for le, count in ordered:
            if count >= rank:
                return below_le, le, below_count, count
            below_le, below_count = le, count
        return below_le, math.inf, below_count, n

    lo_edge, _, _, _ = bucket(low_rank)
    _, hi_edge, _, _ = bucket(high_rank) if high_rank <= n else (0.0, math.inf, 0, 0)
    start, end, before, at = bucket(n * q)
    if math.isinf(end):
        estimate = start
    else:
        estimate = start + (end - start) * ((n * q - before) / max(at - before, 1))
    return QuantileBounds(estimate=estimate, lower=lo_edge, upper=hi_edge, count=n)


@dataclass(frozen=True)
class LatencyComparison:
    """Canary p95 against stable p95 times the allowed ratio."""

    canary: QuantileBounds
    stable: QuantileBounds
    ratio: float
    verdict: Verdict

    def summary(self) -> str:
        """One line with the numbers the verdict rests on."""
        c, s = self.canary, self.stable
        return (
            f"canary p95 ~{_ms(c.estimate)} [{_ms(c.lower)}, {_ms(c.upper)}] vs stable ~{_ms(s.estimate)} "
            f"[{_ms(s.lower)}, {_ms(s.upper)}], allowed x{self.ratio:g} -> {self.verdict}"
        )


def _ms(seconds: float) -> str:
    return "inf" if math.isinf(seconds) else f"{seconds * 1000:.3g}ms"


def compare_p95(canary: QuantileBounds, stable: QuantileBounds, ratio: float) -> LatencyComparison:
    """Judge the canary's p95 against `ratio` times stable's.

    fail: the canary's lower bound is above `ratio` times stable's upper bound, so even the
    kindest reading of both samples has the canary too slow. pass: not that, and the canary's
    estimate is within `ratio` times stable's estimate. inconclusive otherwise: the estimate
    is over but the evidence is not yet conclusive, so the analysis waits for more traffic.
    Requiring the canary's upper bound to clear would make a small canary wait on bucket
    edges alone (its bound sits one bucket above stable's for the same latency).
    """
    if canary.lower > ratio * stable.upper:
        verdict: Verdict = "fail"
    elif canary.estimate <= ratio * stable.estimate:
        verdict = "pass"
    else:
        verdict = "inconclusive"
    return LatencyComparison(canary, stable, ratio, verdict)
