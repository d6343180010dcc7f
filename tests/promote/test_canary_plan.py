"""A canary plan's latency thresholds: a ratio, and optionally an increase too small to matter."""

from __future__ import annotations

import pytest
from mlops.canary.canary_plan import CanaryPlanError, LatencyLimit, parse

PLAN = """\
steps: [25, 100]
minRequests: 100
minDuration: 5m
thresholds:
  errorRate: {maxIncrease: 0.02}
  ttftP95: %s
"""


def test_latency_threshold_takes_a_ratio_and_an_optional_increase() -> None:
    plan = parse(PLAN % "{maxRatio: 1.5, maxIncrease: 50ms}", "plan.yaml")
    assert plan.latency == {"ttftP95": LatencyLimit(ratio=1.5, slack_s=0.05)}
    assert parse(PLAN % "{maxRatio: 2}", "plan.yaml").latency == {"ttftP95": LatencyLimit(2.0, 0.0)}
    assert parse(PLAN % "{maxRatio: 1.2, maxIncrease: 0.5s}", "plan.yaml").latency["ttftP95"].slack_s == 0.5


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{maxRatio: 1.5, maxIncrease: 50}", "thresholds.ttftP95: must be {maxRatio: <number>, maxIncrease"),
        ("{maxIncrease: 50ms}", "thresholds.ttftP95: must be {maxRatio"),
        ("{maxRatio: 1.5, slack: 5ms}", "thresholds.ttftP95: must be {maxRatio"),
        ("{maxRatio: 0.8}", "thresholds.ttftP95.maxRatio: 0.8 must be a ratio >= 1"),
    ],
)
def test_a_malformed_latency_threshold_names_the_field(spec: str, message: str) -> None:
    with pytest.raises(CanaryPlanError, match="plan.yaml is not a valid canary plan") as raised:
        parse(PLAN % spec, "plan.yaml")
    assert message in str(raised.value)
