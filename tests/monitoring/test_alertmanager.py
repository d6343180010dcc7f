"""Alertmanager configuration in the kube-prometheus-stack values: valid, and routed by severity."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from mlops.conventions.paths import ENVS

VALUES_DIR = Path(__file__).resolve().parents[2] / "apps" / "upstream" / "kube-prometheus-stack"

# (labels of an alert) -> receivers it reaches, per environment. Prod pages on critical.
ROUTES = {
    "prod": [
        ({"alertname": "MLflowDown", "severity": "critical"}, "pager,chat"),
        ({"alertname": "GPUNodeIdle", "severity": "warning"}, "chat"),
        ({"alertname": "KubeletTooManyPods", "severity": "info"}, "null"),
        ({"alertname": "Watchdog", "severity": "none"}, "null"),
    ],
    "dev": [
        ({"alertname": "MLflowDown", "severity": "critical"}, "chat"),
        ({"alertname": "GPUNodeIdle", "severity": "warning"}, "chat"),
        ({"alertname": "KubeletTooManyPods", "severity": "info"}, "null"),
        ({"alertname": "Watchdog", "severity": "none"}, "null"),
    ],
}


@pytest.fixture(scope="module")
def amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        pytest.fail("amtool not found: `make test` installs it (Debian package prometheus-alertmanager)")
    return path


def _config(env: str, tmp_path: Path) -> Path:
    values = yaml.safe_load((VALUES_DIR / f"values-{env}.yaml").read_text())
    path = tmp_path / f"alertmanager-{env}.yaml"
    path.write_text(yaml.safe_dump(values["alertmanager"]["config"]))
    return path


@pytest.mark.parametrize("env", ENVS)
def test_alertmanager_config_is_valid_and_routes_by_severity(env: str, amtool: str, tmp_path: Path) -> None:
    config = _config(env, tmp_path)
    check = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    for labels, receivers in ROUTES[env]:
        pairs = [f"{k}={v}" for k, v in labels.items()]
        routed = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={config}", *pairs],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert routed.stdout.strip() == receivers, f"{env} {labels}: {routed.stdout}{routed.stderr}"


@pytest.mark.parametrize("env", ENVS)
def test_receivers_read_credentials_from_the_mounted_secret_only(env: str, tmp_path: Path) -> None:
    values = yaml.safe_load((VALUES_DIR / f"values-{env}.yaml").read_text())
    secrets = values["alertmanager"]["alertmanagerSpec"]["secrets"]
    mounted = tuple(f"/etc/alertmanager/secrets/{name}/" for name in secrets)
    for receiver in values["alertmanager"]["config"]["receivers"]:
        for kind, configs in receiver.items():
            if kind == "name":
                continue
            for config in configs:
                inline = {"api_url", "routing_key", "service_key", "url"} & set(config)
                assert not inline, (
                    f"{env} receiver {receiver['name']}: credentials inline in {sorted(inline)}"
                )
                files = [v for k, v in config.items() if k.endswith("_file")]
                assert files and all(f.startswith(mounted) for f in files), (
                    f"{env} {receiver['name']}: {files}"
                )
    manifests = {m["metadata"]["name"]: m for m in values["extraManifests"]}
    for name in secrets:
        assert manifests[name]["kind"] == "ExternalSecret"
        assert manifests[name]["spec"]["dataFrom"][0]["extract"]["key"] == f"mlops/{env}/{name}"
