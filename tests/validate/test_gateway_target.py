"""MLOPS130: the gateway ServiceMonitor keeps the target labels canary analysis selects (planted)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlops.validate.objects.violations import HINTS
from support.validate_cli import by_folder, validate_lines

GATEWAY = "overlays/dev/gateway"
MONITOR = "ServiceMonitor/gateway"


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    """`mlops validate dev` over a copy whose gateway ServiceMonitor sets jobLabel, its Service renamed."""
    monitor = repo_copy / "base/gateway/servicemonitor.yaml"
    text = monitor.read_text()
    assert "spec:\n  selector:\n" in text
    monitor.write_text(
        text.replace("spec:\n  selector:\n", "spec:\n  jobLabel: app.kubernetes.io/name\n  selector:\n")
    )
    service = repo_copy / "base/gateway/service.yaml"
    service.write_text(
        service.read_text().replace("metadata:\n  name: gateway\n", "metadata:\n  name: openai\n")
    )
    return validate_lines(repo_copy, crds_dir, "dev")


def _hinted(line: str) -> str:
    return f"{line} [MLOPS130: {HINTS['MLOPS130']}]"


def test_job_label_on_the_gateway_monitor(lines: list[str]) -> None:
    assert _hinted(
        f"{GATEWAY}: {MONITOR}: spec.jobLabel: sets jobLabel 'app.kubernetes.io/name': the gateway's "
        'series get that label\'s value as `job`, not "gateway", and canary analysis (job="gateway") '
        "finds none of them"
    ) in by_folder(lines)


def test_gateway_service_renamed(lines: list[str]) -> None:
    assert _hinted(
        f'{GATEWAY}: {MONITOR}: spec.selector.matchLabels: selects Service "openai": its series get '
        'job="openai", and canary analysis (job="gateway") finds none of them'
    ) in by_folder(lines)
