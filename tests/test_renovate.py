"""renovate.json passes Renovate's own validator, and its custom managers find every pin they watch."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = json.loads((REPO / "renovate.json").read_text())
VALIDATOR = REPO / ".tools/node_modules/.bin/renovate-config-validator"


def _makefile_variable(name: str) -> str:
    found = re.search(rf"^{name} \?= (\S+)$", (REPO / "Makefile").read_text(), re.M)
    assert found, f"Makefile: no {name}"
    return found.group(1)


def _validate(folder: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: `make tools` installs Renovate's validator only where npm is")
    assert VALIDATOR.is_file(), "Renovate's validator is missing: run `make tools`"
    installed = json.loads((REPO / ".tools/node_modules/renovate/package.json").read_text())["version"]
    assert installed == _makefile_variable("RENOVATE_VERSION"), "run `make tools` (Renovate's version moved)"
    return subprocess.run(
        [str(VALIDATOR), "--strict"], cwd=folder, capture_output=True, text=True, timeout=180, check=False
    )


def test_renovate_config_passes_renovates_validator() -> None:
    result = _validate(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validating renovate.json" in result.stdout


def test_renovates_validator_refuses_an_unknown_option(tmp_path: Path) -> None:
    broken = dict(
        CONFIG, packageRules=[*CONFIG["packageRules"], {"matchPackageNames": ["x"], "enabeld": False}]
    )
    (tmp_path / "renovate.json").write_text(json.dumps(broken))
    result = _validate(tmp_path)
    assert result.returncode == 1
    assert "Invalid configuration option: packageRules[" in result.stdout + result.stderr


def _custom_manager(description: str) -> dict[str, object]:
    managers = [m for m in CONFIG["customManagers"] if m["description"] == description]
    assert len(managers) == 1, description
    return managers[0]


def _matches(description: str, path: str) -> list[dict[str, str]]:
    """Apply one custom manager's matchStrings to a file, as Renovate's regex manager does."""
    manager = _custom_manager(description)
    patterns = [p.strip("/") for p in manager["managerFilePatterns"]]  # type: ignore[union-attr]
    assert any(re.search(p, path) for p in patterns), f"{description}: does not look at {path}"
    text = (REPO / path).read_text()
    found = []
    for pattern in manager["matchStrings"]:  # type: ignore[union-attr]
        # JavaScript named groups (?<name>...) are Python's (?P<name>...).
        python_pattern = pattern.replace("(?<", "(?P<")
        found += [{k: v for k, v in m.groupdict().items() if v} for m in re.finditer(python_pattern, text)]
    return found


def test_every_upstream_chart_in_the_applicationset_is_watched() -> None:
    charts = re.findall(r"- chart: (\S+)", (REPO / "apps/upstream-charts.yaml").read_text())
    https = _matches(
        "Helm charts in the upstream-charts ApplicationSet's list generator", "apps/upstream-charts.yaml"
    )
    oci = _matches("OCI Helm charts in the upstream-charts ApplicationSet", "apps/upstream-charts.yaml")
    watched = {m["depName"] for m in https} | {m["chart"] for m in oci}
    assert watched == set(charts)
    assert {"depName": "kube-prometheus-stack", "currentValue": "88.5.3"}.items() <= next(
        m for m in https if m["depName"] == "kube-prometheus-stack"
    ).items()


def test_training_operator_and_crd_sources_are_watched() -> None:
    operator = _matches(
        "Kustomize sources from GitHub tags in ApplicationSets", "apps/upstream-training-operator.yaml"
    )
    assert operator == [{"depName": "kubeflow/trainer", "currentValue": "v1.9.4"}]
    crds = _matches(
        "Upstream CRD releases in scripts/mlops/validate/schema_checks/packaged_crds.py",
        "scripts/mlops/validate/schema_checks/packaged_crds.py",
    )
    lock = json.loads((REPO / "scripts/mlops/crd_schemas/crds.lock").read_text())
    assert {(m["depName"].split("/")[1], m["currentValue"]) for m in crds} >= {
        ("prometheus-operator", "v0.93.1"),
        ("trainer", "v1.9.4"),
    }
    assert len(crds) == len({(f["project"], f["version"]) for f in lock["files"]})


def test_every_makefile_tool_version_has_a_renovate_comment() -> None:
    lines = (REPO / "Makefile").read_text().splitlines()
    versions = [i for i, line in enumerate(lines) if re.match(r"[A-Z_]+_VERSION \?= ", line)]
    assert versions
    for index in versions:
        assert lines[index - 1].startswith("# renovate: datasource="), (
            f"Makefile: {lines[index]}: no renovate comment"
        )
    found = _matches("Versions under a `# renovate: datasource=... depName=...` comment", "Makefile")
    assert len(found) == len(versions)


def test_workflow_images_are_watched() -> None:
    found = _matches(
        "Images the training workflows run (workflows/container_images.py)", "workflows/container_images.py"
    )
    names = {m["depName"] for m in found}
    assert {"public.ecr.aws/aws-cli/aws-cli", "moby/buildkit"} <= names
