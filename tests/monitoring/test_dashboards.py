"""Grafana dashboards: valid JSON shipped by the sidecar, every query parses, every metric is known."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from known_metrics import KNOWN_METRICS
from mlops.conventions.paths import ENVS
from promql import dashboard_queries, metric_names, substitute_grafana_variables

DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "base" / "monitoring" / "dashboards"
DASHBOARDS = sorted(DASHBOARDS_DIR.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _recorded(objects: list[dict[str, Any]]) -> set[str]:
    return {
        rule["record"]
        for obj in objects
        if obj.get("kind") == "PrometheusRule"
        for group in obj["spec"]["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def test_the_three_dashboards_exist() -> None:
    assert {p.stem for p in DASHBOARDS} == {"model-serving", "gpu-fleet", "training-runs"}


@pytest.mark.parametrize("env", ENVS)
def test_every_dashboard_ships_as_a_sidecar_configmap(
    env: str, monitoring_objects: dict[str, list[dict[str, Any]]]
) -> None:
    shipped = {
        key: (obj["metadata"], value)
        for obj in monitoring_objects[env]
        if obj["kind"] == "ConfigMap"
        for key, value in obj.get("data", {}).items()
    }
    for path in DASHBOARDS:
        assert path.name in shipped, (
            f"{env}: {path.name} is in no ConfigMap (base/monitoring configMapGenerator)"
        )
        metadata, text = shipped[path.name]
        assert metadata["labels"].get("grafana_dashboard") == "1", f"{metadata['name']}: sidecar label"
        assert metadata["name"] == f"dashboard-{path.stem}", "stable name, no hash suffix"
        assert json.loads(text) == _load(path)


def test_dashboards_have_unique_uids_and_use_the_datasource_variable() -> None:
    uids = [_load(p)["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)
    for path in DASHBOARDS:
        dashboard = _load(path)
        variables = {v["name"] for v in dashboard["templating"]["list"]}
        assert "datasource" in variables, f"{path.name}: no $datasource variable"
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == "${datasource}", f"{path.name}: {panel['title']!r}"
            assert panel["targets"], f"{path.name}: panel {panel['title']!r} has no query"


def test_every_dashboard_query_parses(promtool: str, tmp_path: Path) -> None:
    groups = []
    for path in DASHBOARDS:
        rules = [
            {
                "record": f"dashboard:{path.stem.replace('-', '_')}:query_{i}",
                "expr": substitute_grafana_variables(expr),
            }
            for i, (_, expr) in enumerate(dashboard_queries(_load(path)))
        ]
        assert rules, f"{path.name} has no query"
        groups.append({"name": path.stem, "rules": rules})
    rules_file = tmp_path / "dashboards.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": groups}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_file)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_in_dashboards_and_rules_is_known(
    monitoring_objects: dict[str, list[dict[str, Any]]],
) -> None:
    recorded = set().union(*(_recorded(objects) for objects in monitoring_objects.values()))
    used: dict[str, set[str]] = {}
    for path in DASHBOARDS:
        for where, expr in dashboard_queries(_load(path)):
            for name in metric_names(substitute_grafana_variables(expr)):
                used.setdefault(name, set()).add(f"{path.name} {where}")
    for env, objects in monitoring_objects.items():
        for obj in objects:
            if obj.get("kind") != "PrometheusRule":
                continue
            for group in obj["spec"]["groups"]:
                for rule in group["rules"]:
                    name = rule.get("alert") or rule.get("record")
                    where = f"{env} PrometheusRule {obj['metadata']['name']} {name}"
                    for name in metric_names(rule["expr"]):
                        used.setdefault(name, set()).add(where)
    unknown = {
        name: sorted(places)
        for name, places in used.items()
        if name not in KNOWN_METRICS | dict.fromkeys(recorded)
    }
    assert not unknown, (
        f"metrics no exporter of the platform emits (add them to tests/monitoring/known_metrics.py "
        f"with their source if they are real): {unknown}"
    )
