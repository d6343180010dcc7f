"""PrometheusRules: promtool accepts them, every alert is unit-tested both ways, runbooks exist."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlops.conventions.paths import ENVS
from rulesets import alert_rules, coverage, unit_test_files

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks.md"
RUNBOOK_URL = "https://github.com/example-org/mlops-platform/blob/main/docs/runbooks.md#"
SEVERITIES = {"critical", "warning"}

# Identical rules and tests give identical results: dev and prod share most rule files,
# so each distinct (rule files, test file) pair runs promtool once.
_passed: set[str] = set()


def _promtool(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("env", ENVS)
def test_promtool_checks_every_rule_file(env: str, promtool: str, rule_files: dict[str, Path]) -> None:
    files = sorted(p.name for p in rule_files[env].glob("*.yaml"))
    assert files, f"overlays/{env}/monitoring renders no PrometheusRule"
    result = _promtool(promtool, "check", "rules", *files, cwd=rule_files[env])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("env", "name"), [(env, name) for env in ENVS for name in unit_test_files(env)])
def test_promtool_unit_tests(env: str, name: str, promtool: str, rule_files: dict[str, Path]) -> None:
    source = unit_test_files(env)[name]
    spec = yaml.safe_load(source.read_text())
    folder = rule_files[env]
    digest = hashlib.sha256(source.read_bytes())
    for rule_file in spec["rule_files"]:
        assert (folder / rule_file).is_file(), (
            f"{source}: rule_files names {rule_file}, but overlays/{env}/monitoring has no "
            f"PrometheusRule {Path(rule_file).stem!r}"
        )
        digest.update((folder / rule_file).read_bytes())
    if digest.hexdigest() in _passed:
        return
    shutil.copy(source, folder / name)
    result = _promtool(promtool, "test", "rules", name, cwd=folder)
    assert result.returncode == 0, (
        f"{source} against overlays/{env}/monitoring:\n{result.stdout}{result.stderr}"
    )
    _passed.add(digest.hexdigest())


@pytest.mark.parametrize("env", ENVS)
def test_every_alert_is_tested_firing_and_not_firing(
    env: str, monitoring_objects: dict[str, list[dict[str, Any]]]
) -> None:
    alerts = alert_rules(monitoring_objects[env])
    seen = coverage(list(unit_test_files(env).values()))
    missing = {
        alert: sorted({"firing", "not firing"} - seen.get(alert, set()))
        for alert in alerts
        if seen.get(alert, set()) != {"firing", "not firing"}
    }
    assert not missing, f"{env}: alerts without a unit test showing them {missing} (tests/monitoring/rules)"
    assert set(seen) <= set(alerts), f"{env}: tests for alerts that do not exist: {set(seen) - set(alerts)}"


def _runbook_anchors() -> set[str]:
    """GitHub's anchors for the headings of docs/runbooks.md."""
    anchors = set()
    for line in RUNBOOKS.read_text().splitlines():
        if heading := re.match(r"#{1,6}\s+(.*)", line):
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("env", ENVS)
def test_every_alert_has_severity_summary_description_and_runbook(
    env: str, monitoring_objects: dict[str, list[dict[str, Any]]]
) -> None:
    anchors = _runbook_anchors()
    for name, rule in alert_rules(monitoring_objects[env]).items():
        assert rule.get("labels", {}).get("severity") in SEVERITIES, f"{env} {name}: labels.severity"
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), f"{env} {name}: annotations"
        url = annotations.get("runbook_url", "")
        assert url.startswith(RUNBOOK_URL), (
            f"{env} {name}: runbook_url {url!r} is not a docs/runbooks.md link"
        )
        anchor = url.removeprefix(RUNBOOK_URL)
        assert anchor == name.lower(), f"{env} {name}: runbook_url anchor {anchor!r} is not the alert's name"
        assert anchor in anchors, f"{env} {name}: docs/runbooks.md has no section `## {name}`"


def test_every_runbook_section_belongs_to_an_alert(
    monitoring_objects: dict[str, list[dict[str, Any]]],
) -> None:
    alerts = {name.lower() for objects in monitoring_objects.values() for name in alert_rules(objects)}
    sections = {
        line[3:].strip().lower() for line in RUNBOOKS.read_text().splitlines() if line.startswith("## ")
    }
    assert sections == alerts, (
        f"runbook sections without an alert: {sections - alerts}; missing: {alerts - sections}"
    )
