"""The metric-name extraction the known-metrics test relies on."""

from __future__ import annotations

import pytest
from promql import dashboard_queries, metric_names, substitute_grafana_variables


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (model) (rate(gateway_requests_total{code=~"5.."}[5m]))', {"gateway_requests_total"}),
        (
            "histogram_quantile(0.99, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket[5m])))",
            {"vllm:time_to_first_token_seconds_bucket"},
        ),
        ("a > 14.4 * 0.005 and on (model) b offset 30m unless ignoring (pod) group_left c", {"a", "b", "c"}),
        ('(count(up{job="mlflow"} == 1) or vector(0)) == 0', {"up"}),
        (
            "model:gateway_requests_errors:ratio_rate1h / 0.005",
            {"model:gateway_requests_errors:ratio_rate1h"},
        ),
        ('label_replace(x, "dst", "$1", "src", "(.*)") > 1e-3', {"x"}),
        ("max_over_time(d[1h:5m]) < bool 5", {"d"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_grafana_variables_become_parseable_promql() -> None:
    expr = 'rate(x{model=~"$model", version=~"${version}"}[$__rate_interval]) / $__range_s'
    assert substitute_grafana_variables(expr) == 'rate(x{model=~".*", version=~".*"}[5m]) / 21600'
    assert substitute_grafana_variables("increase(y[$__range])") == "increase(y[6h])"


def test_dashboard_queries_include_rows_and_variables() -> None:
    dashboard = {
        "panels": [
            {
                "type": "row",
                "title": "r",
                "panels": [{"title": "p", "targets": [{"refId": "A", "expr": "a"}]}],
            }
        ],
        "templating": {
            "list": [{"name": "model", "type": "query", "query": {"query": "label_values(b, model)"}}]
        },
    }
    assert [expr for _, expr in dashboard_queries(dashboard)] == ["a", "b"]
