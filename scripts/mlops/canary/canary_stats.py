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
    canary_errors: float,
    canary_n: float,
    stable_errors: float,
    stable_n: float,
    limit: float,
    z: float,
    baseline_fixed: bool = False,
) -> RateComparison:
    """Judge whether the canary's error rate exceeds stable's by more than `limit`.

    fail: even the lower bound of the difference is above `limit` (confidently worse);
    pass: the upper bound is within `limit` (confidently not worse); inconclusive otherwise.
    Newcombe (1998), method 10: the difference's bounds combine each side's Wilson interval.
    `baseline_fixed`: stable's sample can no longer grow (the step at 100% compares with the
    step before), so its uncertainty would hold the verdict inconclusive however long the
    canary runs: stable's rate counts as a known number and only the canary's interval is used.
    """
    p1, p2 = canary_errors / canary_n, stable_errors / stable_n
    l1, u1 = wilson(canary_errors, canary_n, z)
    l2, u2 = (p2, p2) if baseline_fixed else wilson(stable_errors, stable_n, z)
    diff = p1 - p2
    lower = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    verdict: Verdict = "fail" if lower > limit else "pass" if upper <= limit else "inconclusive"
    return RateComparison(p1, p2, lower, upper, limit, verdict)


@dataclass(frozen=True)
class QuantileBounds:
    """A quantile of a bucketed histogram: the buckets' estimate and a confidence interval.

    `bucket` is the (lower, upper) edge of the bucket holding the estimate.
    """

    estimate: float
    lower: float
    upper: float
    count: int
    bucket: tuple[float, float] = (0.0, math.inf)

    @property
    def settled(self) -> bool:
        """The bounds are the edges of the estimate's bucket: more samples cannot narrow them."""
        return (self.lower, self.upper) == self.bucket and not math.isinf(self.upper)


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
    return QuantileBounds(estimate=estimate, lower=lo_edge, upper=hi_edge, count=n, bucket=(start, end))


@dataclass(frozen=True)
class LatencyComparison:
    """Canary p95 against stable's, allowed `ratio` times it or `slack` seconds more, whichever is more."""

    canary: QuantileBounds
    stable: QuantileBounds
    ratio: float
    slack: float
    verdict: Verdict
    why: str = ""

    def summary(self) -> str:
        """One line with the numbers the verdict rests on."""
        c, s = self.canary, self.stable
        allowed = f"x{self.ratio:g}" + (f" or +{_ms(self.slack)}" if self.slack else "")
        why = f" ({self.why})" if self.why else ""
        return (
            f"canary p95 ~{_ms(c.estimate)} [{_ms(c.lower)}, {_ms(c.upper)}] vs stable ~{_ms(s.estimate)} "
            f"[{_ms(s.lower)}, {_ms(s.upper)}], allowed {allowed}{why} -> {self.verdict}"
        )


def _ms(seconds: float) -> str:
    return "inf" if math.isinf(seconds) else f"{seconds * 1000:.3g}ms"


def compare_p95(
    canary: QuantileBounds,
    stable: QuantileBounds,
    ratio: float,
    slack: float = 0.0,
    baseline_fixed: bool = False,
) -> LatencyComparison:
    """Judge the canary's p95 against the most stable's allows: `ratio` times it, or `slack` seconds more.

    fail: the canary's lower bound is above what stable's upper bound allows, so even the
    kindest reading of both samples has the canary too slow. pass: not that, and the canary's
    estimate is within what stable's estimate allows. inconclusive otherwise: the estimate
    is over but the evidence is not yet conclusive, so the analysis waits for more traffic.
    Requiring the canary's upper bound to clear would make a small canary wait on bucket
    edges alone (its bound sits one bucket above stable's for the same latency).

    Waiting must be able to end. With `baseline_fixed` (stable's sample cannot grow: the step at
    100% compares with the step before) stable's estimate is the limit and only the canary's
    bounds count. And once no more traffic can narrow the bounds that decide (each is its
    estimate's bucket: `settled`), an estimate over the limit fails: the histogram's buckets
    cannot resolve the difference, and the plan's numbers say the canary is too slow.
    """

    def allowed(stable_p95: float) -> float:
        return max(ratio * stable_p95, stable_p95 + slack)

    reference = stable.estimate if baseline_fixed else stable.upper
    if canary.lower > allowed(reference):
        verdict: Verdict = "fail"
        why = "stable's step before is the fixed baseline" if baseline_fixed else ""
    elif canary.estimate <= allowed(stable.estimate):
        verdict, why = "pass", ""
    elif canary.settled and (baseline_fixed or stable.settled):
        verdict, why = "fail", "settled: more traffic cannot narrow the bounds, and the estimate is over"
    else:
        verdict, why = "inconclusive", ""
    return LatencyComparison(canary, stable, ratio, slack, verdict, why)
