"""What the gateway served per backend in a window, from Prometheus, and how canary and stable compare.

The numbers behind a canary decision (mlops.release.canary_analysis): requests and 5xx answers, and
the latency histograms the plan names, per backend and version; compared with the plan's
thresholds by mlops.canary.canary_stats.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops.canary import canary_stats, prometheus
from mlops.canary.canary_plan import CanaryPlan

QUANTILE = 0.95
# The target labels Prometheus gives the gateway's own series (base/gateway): prometheus-operator
# sets `job` to the name of the Service a ServiceMonitor selects (unless the ServiceMonitor sets
# jobLabel) and `namespace` to that Service's namespace (prometheus-operator
# pkg/prometheus/promcfg.go, generateServiceMonitorConfig). With honor_labels off (the
# default) a target cannot claim them for itself: its own `job` becomes `exported_job`. So a
# pod elsewhere that emits gateway_* series cannot move a canary decision.
GATEWAY_JOB = "gateway"
GATEWAY_NAMESPACE = "gateway"
GATEWAY_TARGET = f'job="{GATEWAY_JOB}",namespace="{GATEWAY_NAMESPACE}"'
LATENCY_METRICS = {
    "ttftP95": ("gateway_time_to_first_token_seconds_bucket", "p95 time to first token"),
    "itlP95": ("gateway_inter_token_latency_seconds_bucket", "p95 inter-token latency"),
}


@dataclass
class Track:
    """What Prometheus says one backend served in a window."""

    requests: float
    errors: float
    latency: dict[str, list[tuple[float, float]]]  # name -> cumulative buckets (le, count)


def window_increase(metric: str, selector: str, by: str, window_s: int) -> str:
    """PromQL for how much counter `metric` grew in the window, summed by label `by`.

    increase() only sees growth between two samples, so a series born inside the window (the
    canary's first requests, its first 5xx, a new gateway pod) loses everything it counted before
    its first scrape: a canary at 20% whose error series appeared mid-window looked healthier than
    it was. Such a series started at 0, so its whole value is the growth.
    """
    series, seconds = f"{metric}{{{selector}}}", max(window_s, 1)
    existing = f"(increase({series}[{seconds}s]) and {series} offset {seconds}s)"
    born = f"({series} unless {series} offset {seconds}s)"
    return f"sum by ({by}) ({existing} or {born})"


def measure(
    url: str, model: str, backend: str, version: str, window_s: int, at: float, names: list[str]
) -> Track:
    """Return what `backend` (serving `version` of `model`) served in the `window_s` seconds before `at`."""
    selector = f'{GATEWAY_TARGET},model="{model}",backend="{backend}",version="{version}"'
    codes = prometheus.query(url, window_increase("gateway_requests_total", selector, "code", window_s), at)
    # 499: the client left; that says nothing about the version.
    requests = sum(v for labels, v in codes if labels.get("code") != "499")
    errors = sum(v for labels, v in codes if labels.get("code", "").startswith("5"))
    latency = {}
    for name in names:
        metric = LATENCY_METRICS[name][0]
        series = prometheus.query(url, window_increase(metric, selector, "le", window_s), at)
        latency[name] = [(float(labels["le"]), value) for labels, value in series if "le" in labels]
    return Track(requests, errors, latency)


def judge(
    plan: CanaryPlan,
    canary: Track,
    stable: Track,
    bounds: dict[str, tuple[canary_stats.QuantileBounds | None, canary_stats.QuantileBounds | None]],
    z: float,
    baseline_fixed: bool = False,
) -> tuple[list[canary_stats.Verdict], list[str], dict[str, str]]:
    """Compare canary with stable on each threshold of `plan`: the verdicts, report lines and trailers.

    `baseline_fixed`: stable's sample cannot grow any more (the step at 100%).
    """
    verdicts: list[canary_stats.Verdict] = []
    lines: list[str] = []
    trailers: dict[str, str] = {}
    if plan.max_error_rate_increase is not None:
        cmp = canary_stats.compare_error_rates(
            canary.errors,
            canary.requests,
            stable.errors,
            stable.requests,
            plan.max_error_rate_increase,
            z,
            baseline_fixed,
        )
        verdicts.append(cmp.verdict)
        lines.append(f"error rate: {cmp.summary()}")
        trailers["Canary-Error-Rate"] = cmp.summary()
    for name, limit in plan.latency.items():
        label = LATENCY_METRICS[name][1]
        c, s = bounds[name]
        if c is None or s is None or c.count < plan.min_requests or s.count < plan.min_requests:
            verdicts.append("inconclusive")
            counts = f"{c.count if c else 0} canary, {s.count if s else 0} stable"
            lines.append(
                f"{label}: too few samples ({counts}; need {plan.min_requests} each) -> inconclusive"
            )
            continue
        cmp_l = canary_stats.compare_p95(c, s, limit.ratio, limit.slack_s, baseline_fixed)
        verdicts.append(cmp_l.verdict)
        lines.append(f"{label}: {cmp_l.summary()}")
        trailers["Canary-" + ("TTFT-P95" if name == "ttftP95" else "ITL-P95")] = cmp_l.summary()
    return verdicts, lines, trailers
