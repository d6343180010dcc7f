"""Which promtool unit-test files run for an environment, and what they cover."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

RULE_TESTS_DIR = Path(__file__).parent / "rules"
"""`*.test.yaml` run for every environment; `<env>/<name>.test.yaml` replaces `<name>.test.yaml`
for that environment (its overlay patched the rules the shared file tests)."""


def alert_rules(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every alerting rule of the PrometheusRules in `objects`, by alert name."""
    return {
        rule["alert"]: rule
        for obj in objects
        if obj.get("kind") == "PrometheusRule"
        for group in obj["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def unit_test_files(env: str) -> dict[str, Path]:
    """The unit-test files for `env`, by file name."""
    files = {path.name: path for path in sorted(RULE_TESTS_DIR.glob("*.test.yaml"))}
    files.update({path.name: path for path in sorted((RULE_TESTS_DIR / env).glob("*.test.yaml"))})
    return files


def coverage(files: list[Path]) -> dict[str, set[str]]:
    """Alert name -> the outcomes its `alert_rule_test`s check: `firing`, `not firing`."""
    seen: dict[str, set[str]] = {}
    for path in files:
        for case in yaml.safe_load(path.read_text()).get("tests", []):
            for check in case.get("alert_rule_test", []):
                outcome = "firing" if check.get("exp_alerts") else "not firing"
                seen.setdefault(check["alertname"], set()).add(outcome)
    return seen
