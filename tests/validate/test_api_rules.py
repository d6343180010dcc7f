"""API rules the schemas miss, YAML read strictly, stale generated files, errors a person can act on.

One copy of the repository gets a defect per rule (MLOPS040-050, a patch path typo, a YAML
indentation error) and `mlops validate dev` runs once over it; each test asserts the exact
problem line a user would read. Sub-cases that need an object the repository does not render
(a CronJob, a fractional GPU) are planted in a manifest given to the same checks directly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlops.validate.object_rules import api_rules
from mlops.validate.objects.problems import Problem
from mlops.validate.objects.quantities import parse_quantity
from mlops.validate.objects.violations import HINTS
from mlops.validate.runner.engine import Report
from support.validate_cli import validate_lines

PREFIX = "support-chat-with-a-prefix-long-enough-to-break-the-service-name-"
MODEL = "overlays/dev/models/support-chat"
REPO = Path(__file__).resolve().parents[2]
GATEWAY_BASE = "base/gateway/deployment.yaml"
CONTAINER = "spec.template.spec.containers[0]"
LINES: dict[str, int] = {}
"""The line each planted defect landed on, by a name of the plant: the problem lines name it."""


def _replace(repo: Path, path: str, old: str, new: str, count: int = 1, *, mark: str = "") -> None:
    """Replace the count-th `old` of a file with `new`; with `mark`, remember the line `new` starts on."""
    file = repo / path
    text = file.read_text()
    assert text.count(old) >= count, f"{path} no longer contains {old!r}: update the planted defect"
    head, *rest = text.split(old)
    before = old.join([head, *rest[: count - 1]])
    file.write_text(before + new + old.join(rest[count - 1 :]))
    if mark:
        LINES[mark] = before.count("\n") + 1 + (new.count("\n") if new.startswith("\n") else 0)


def _gateway(repo: Path, text: str) -> str:
    """A problem about the gateway Deployment whose field is on the planted line holding `text`."""
    line = next(n for n, line in enumerate((repo / GATEWAY_BASE).read_text().splitlines(), 1) if text in line)
    return f"{GATEWAY_BASE}:{line} (overlays/dev/gateway): Deployment/gateway"


def _line(path: str, text: str) -> int:
    """The line of the repository's `path` that holds `text` (before any plant above it)."""
    return next(n for n, line in enumerate((REPO / path).read_text().splitlines(), 1) if text in line)


def _hinted(line: str, policy: str) -> str:
    return f"{line} [{policy}: {HINTS[policy]}]"


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    """Plant one defect per rule in a copy of the repository, then run `mlops validate dev` once."""
    # MLOPS040: the two quantities, a core quantity outside a container, a CRD's quantity.
    _replace(repo_copy, "overlays/dev/mlflow/resources.yaml", "cpu: 250m", "cpu: 500mm", mark="500mm")
    _replace(repo_copy, "overlays/dev/mlflow/resources.yaml", "memory: 1Gi", "memory: 6GB", mark="6GB")
    _replace(repo_copy, "base/mlflow/deployment.yaml", "sizeLimit: 5Gi", "sizeLimit: 5GB", mark="sizeLimit")
    pool = "overlays/dev/karpenter/gpu-limits.yaml"
    _replace(repo_copy, pool, "memory: 1024Gi", "memory: 6GB", mark="pool")
    # MLOPS041: the gateway requests more memory than its limit.
    _replace(repo_copy, GATEWAY_BASE, "memory: 256Mi", "memory: 1Gi")
    # MLOPS042: a GPU limit different from its request (the overlay's patch sets both).
    _replace(repo_copy, f"{MODEL}/resources.yaml", 'nvidia.com/gpu: "1"', 'nvidia.com/gpu: "2"', count=2)
    LINES["gpu"] = (repo_copy / f"{MODEL}/resources.yaml").read_text().splitlines().index(
        '              nvidia.com/gpu: "1"'
    ) + 1
    # MLOPS043: a namePrefix that makes the rendered Service name longer than a DNS-1035 label.
    _replace(repo_copy, f"{MODEL}/kustomization.yaml", "namePrefix: support-chat-", f"namePrefix: {PREFIX}")
    # MLOPS044: a label value with a space.
    _replace(
        repo_copy,
        GATEWAY_BASE,
        "    app.kubernetes.io/component: gateway\n",
        "    app.kubernetes.io/component: gateway\n    team: platform team\n",
    )
    # MLOPS045: the gateway's selector no longer selects its pods.
    _replace(
        repo_copy,
        GATEWAY_BASE,
        "  selector:\n    matchLabels:\n      app.kubernetes.io/name: gateway\n",
        "  selector:\n    matchLabels:\n      app.kubernetes.io/name: gatewayy\n",
    )
    # MLOPS046: a probe's port name typo.
    _replace(repo_copy, GATEWAY_BASE, "port: http\n", "port: htp\n")
    # MLOPS047: the MLflow Service targets a port name its pods do not have.
    _replace(repo_copy, "base/mlflow/service.yaml", "targetPort: http", "targetPort: http-api", mark="target")
    # MLOPS048: a repeated key in a patch.
    _replace(
        repo_copy, "overlays/dev/mlflow/replicas.yaml", "  replicas: 1\n", "  replicas: 1\n  replicas: 2\n"
    )
    # MLOPS049 (and kustomize's message with the file): an indentation error in a kustomization.
    _replace(repo_copy, "overlays/dev/monitoring/kustomization.yaml", "\n    target:", "\n   target:")
    # A patch path typo: kustomize's whole message, on the kustomization's line that names it.
    _replace(
        repo_copy,
        "overlays/dev/workflows/kustomization.yaml",
        "path: git-bot-token.yaml",
        "path: git-bot-tokens.yaml",
        mark="typo",
    )
    # MLOPS049: a file that is not UTF-8 (a values file saved in Latin-1).
    (repo_copy / "overlays/dev/gateway/legacy-values.yaml").write_bytes(b"owner: caf\xe9\n")
    # MLOPS050: a hand edit in a generated workflow.
    generated = repo_copy / "base/workflows/generated/retrain-cron.yaml"
    generated.write_text(generated.read_text() + "# edited by hand\n")

    return validate_lines(repo_copy, crds_dir, "dev")


def test_quantities_the_api_server_refuses(lines: list[str]) -> None:
    shape = (
        "is not a Kubernetes quantity: the API server refuses it (it must match "
        "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$ with one suffix of Ki Mi Gi Ti Pi Ei, "
        "n u m k M G T P E, or e<exponent>)"
    )
    # The overlay's patch sets the requests: its file and line, not the folder.
    where = "Deployment/mlflow: spec.template.spec.containers[0].resources.requests"
    patch = "overlays/dev/mlflow/resources.yaml"
    assert _hinted(f"{patch}:{LINES['500mm']}: {where}.cpu: '500mm' {shape}", "MLOPS040") in lines
    assert _hinted(f"{patch}:{LINES['6GB']}: {where}.memory: '6GB' {shape}", "MLOPS040") in lines
    assert len([line for line in lines if "'500mm'" in line]) == 1  # the schema and the rule say it once


def test_quantities_outside_containers_and_in_custom_resources(lines: list[str]) -> None:
    # A core quantity field the container rule does not read, and a Karpenter NodePool's limit:
    # the same wording and hint, not the CRD's raw pattern.
    shape = "is not a Kubernetes quantity: the API server refuses it (it must match"
    assert any(
        line.startswith(
            f"base/mlflow/deployment.yaml:{LINES['sizeLimit']} (overlays/dev/mlflow): Deployment/mlflow: "
            f"spec.template.spec.volumes[0].emptyDir.sizeLimit: '5GB' {shape}"
        )
        and line.endswith(f"[MLOPS040: {HINTS['MLOPS040']}]")
        for line in lines
    ), lines
    [pool] = [line for line in lines if "NodePool/gpu" in line]
    assert pool.startswith(
        f"overlays/dev/karpenter/gpu-limits.yaml:{LINES['pool']}: NodePool/gpu: "
        f"spec.limits.memory: '6GB' {shape}"
    )
    assert pool.endswith(f"[MLOPS040: {HINTS['MLOPS040']}]") and "KMGTPE" not in pool


def test_request_above_limit(lines: list[str], repo_copy: Path) -> None:
    assert (
        _hinted(
            f"{_gateway(repo_copy, 'memory: 1Gi')}: {CONTAINER}.resources.requests.memory: "
            "'1Gi' must be less than or equal to memory limit of '512Mi'",
            "MLOPS041",
        )
        in lines
    )


def test_gpu_limit_different_from_request(lines: list[str]) -> None:
    assert (
        _hinted(
            f"{MODEL}/resources.yaml:{LINES['gpu']}: Deployment/{PREFIX}vllm: "
            "spec.template.spec.containers[0].resources.requests"
            "[\"nvidia.com/gpu\"]: '1' must be equal to nvidia.com/gpu limit of '2' "
            "(an extended resource cannot be overcommitted)",
            "MLOPS042",
        )
        in lines
    )


def test_rendered_service_name_too_long(lines: list[str]) -> None:
    name = f"{PREFIX}vllm"
    # The Service comes from the base; its name from the folder's namePrefix.
    assert (
        _hinted(
            f"base/models/vllm/service.yaml:{_line('base/models/vllm/service.yaml', '  name: vllm')} "
            f"({MODEL}): Service/{name}: metadata.name: '{name}' must be no more than 63 characters "
            f"(it has {len(name)})",
            "MLOPS043",
        )
        in lines
    )


def test_label_value(lines: list[str], repo_copy: Path) -> None:
    assert (
        _hinted(
            f"{_gateway(repo_copy, 'team: platform team')}: metadata.labels.team: label value "
            "'platform team' must be empty or consist of alphanumeric characters, '-', '_' or '.', "
            "starting and ending with an alphanumeric character",
            "MLOPS044",
        )
        in lines
    )


def test_selector_that_misses_the_template(lines: list[str], repo_copy: Path) -> None:
    text = (repo_copy / GATEWAY_BASE).read_text()
    labels = text[: text.index("      labels:", text.index("  template:"))].count("\n") + 1
    assert (
        _hinted(
            f"{GATEWAY_BASE}:{labels} (overlays/dev/gateway): Deployment/gateway: "
            "spec.template.metadata.labels: `selector` does not match template `labels`: "
            "the selector wants app.kubernetes.io/name=gatewayy",
            "MLOPS045",
        )
        in lines
    )


def test_probe_port_name_typo(lines: list[str], repo_copy: Path) -> None:
    assert (
        _hinted(
            f"{_gateway(repo_copy, 'port: htp')}: {CONTAINER}.startupProbe.httpGet.port: "
            "port 'htp' is not a port name of container 'gateway' (its ports: http): the kubelet fails the "
            "probe with 'port htp not found'",
            "MLOPS046",
        )
        in lines
    )


def test_service_target_port_name(lines: list[str]) -> None:
    assert (
        _hinted(
            f"base/mlflow/service.yaml:{LINES['target']} (overlays/dev/mlflow): Service/mlflow: "
            "spec.ports[0].targetPort: 'http-api' is not a "
            "container port name of the pods it selects (http): the Service gets no endpoints",
            "MLOPS047",
        )
        in lines
    )


def test_duplicate_key_names_file_and_line(lines: list[str]) -> None:
    assert (
        _hinted(
            "overlays/dev/mlflow/replicas.yaml:8: (YAML): spec.replicas: duplicate key 'replicas' (first at "
            "line 7): only one of the two values is kept",
            "MLOPS048",
        )
        in lines
    )


def test_yaml_error_names_file_and_line_once(lines: list[str]) -> None:
    assert (
        _hinted(
            "overlays/dev/monitoring/kustomization.yaml:7: (YAML): column 4: not valid YAML: while parsing a "
            "block collection; did not find expected '-' indicator",
            "MLOPS049",
        )
        in lines
    )
    # kustomize's own "invalid Kustomization: yaml: line 6" says the same of the same file: once.
    assert [line for line in lines if line.startswith("overlays/dev/monitoring")] == [
        _hinted(
            "overlays/dev/monitoring/kustomization.yaml:7: (YAML): column 4: not valid YAML: while parsing a "
            "block collection; did not find expected '-' indicator",
            "MLOPS049",
        )
    ]


def test_unreadable_file_is_a_problem_line(lines: list[str]) -> None:
    assert (
        _hinted(
            "overlays/dev/gateway/legacy-values.yaml: (YAML): (document): cannot be read: 'utf-8' codec "
            "can't decode byte 0xe9 in position 10: invalid continuation byte",
            "MLOPS049",
        )
        in lines
    )


def test_patch_path_typo_keeps_kustomizes_message(lines: list[str]) -> None:
    [line] = [line for line in lines if line.startswith("overlays/dev/workflows/kustomization.yaml")]
    assert line.startswith(
        f"overlays/dev/workflows/kustomization.yaml:{LINES['typo']}: Kustomization/workflows: (build): "
        "kustomize build failed: trouble configuring builtin PatchTransformer with config: "
        "`path: git-bot-tokens.yaml`: failed to get the patch file from path(git-bot-tokens.yaml): "
    )
    assert "overlays/dev/workflows/git-bot-tokens.yaml" in line


def test_failed_build_is_said_once(lines: list[str]) -> None:
    # No MLOPS010 "points at ...: it does not build" for the same folder, and no reference that
    # misses an object the failed folder would have rendered (ServiceAccounts, stores, monitors).
    assert not [line for line in lines if "MLOPS010" in line or "overlays/dev/workflows:" in line], lines
    assert not [line for line in lines if "[MLOPS06" in line], lines
    failed = "overlays/dev/monitoring, overlays/dev/workflows"
    assert any(line.startswith(f"notice: dev: 2 kustomizations did not build ({failed})") for line in lines)


def test_stale_generated_workflow(lines: list[str]) -> None:
    assert (
        _hinted(
            "base/workflows/generated/retrain-cron.yaml: CronWorkflow/retrain-support-chat: (document): "
            "stale: differs from what workflows/retrain_cron.py compiles to; run `mlops workflows compile`",
            "MLOPS050",
        )
        in lines
    )


def test_no_traceback_and_one_summary(lines: list[str]) -> None:
    assert not any("Traceback" in line for line in lines)
    assert lines[-1].split(" problems in ")[0].isdigit()


def test_no_kubectl_is_one_line_and_exit_2(repo_root: Path, tmp_path: Path) -> None:
    # Only the venv on PATH: neither kubectl nor kustomize can be found.
    env = {"PATH": str(Path(sys.executable).parent), "MLOPS_REPO": str(repo_root), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", "validate", "dev"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr
        == "error: neither `kustomize` nor `kubectl` is on PATH: install one (kubectl embeds kustomize)\n"
    )
    assert proc.stdout == ""


# --- sub-cases on a manifest of their own -----------------------------------------------------


def _violations(doc: dict[str, Any]) -> list[str]:
    return [
        str(Problem("f", "K/n", v.field, v.message, v.policy_id, v.hint))
        for v in api_rules.check(doc, templated=False)
    ]


def test_cronjob_name_leaves_room_for_the_job_suffix() -> None:
    name = "a" * 53
    doc = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name}}
    assert _violations(doc) == [
        _hinted(
            f"f: K/n: metadata.name: '{name}' must be no more than 52 characters (it has 53): the CronJob "
            "controller appends an 11-character suffix to name each Job",
            "MLOPS043",
        )
    ]


def test_fractional_and_unlimited_gpu() -> None:
    fractional = {"requests": {"nvidia.com/gpu": "0.5"}, "limits": {"nvidia.com/gpu": "0.5"}}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "a", "resources": fractional},
                        {"name": "b", "resources": {"requests": {"nvidia.com/gpu": 1}}},
                    ]
                }
            }
        },
    }
    assert _violations(job) == [
        _hinted(
            f"f: K/n: {CONTAINER}.resources.requests[\"nvidia.com/gpu\"]: '0.5': nvidia.com/gpu is an "
            "extended resource and must be an integer",
            "MLOPS042",
        ),
        _hinted(
            f"f: K/n: {CONTAINER}.resources.limits[\"nvidia.com/gpu\"]: '0.5': nvidia.com/gpu is an "
            "extended resource and must be an integer",
            "MLOPS042",
        ),
        _hinted(
            'f: K/n: spec.template.spec.containers[1].resources.requests["nvidia.com/gpu"]: '
            "requests nvidia.com/gpu without a limit: the API server requires a limit for a resource "
            "that cannot be overcommitted",
            "MLOPS042",
        ),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("500m", "0.5"), ("6Gi", str(6 * 1024**3)), ("1e3", "1000"), ("1E", "1e18"), (".5", "0.5"), ("5.", "5")],
)
def test_quantities_that_parse(value: str, expected: str) -> None:
    from decimal import Decimal

    assert parse_quantity(value) == Decimal(expected)


@pytest.mark.parametrize("value", ["500mm", "6GB", "2K", "1 Gi", "", "Gi", "1e"])
def test_quantities_that_do_not(value: str) -> None:
    assert parse_quantity(value) is None


def test_summary_says_one_problem() -> None:
    report = Report(envs=("dev",), problems=[Problem("f", "K/n", "x", "y")], documents=3)
    assert report.summary().startswith("1 problem in 3 documents across dev ")
    report.problems.append(Problem("f", "K/n", "x", "z"))
    assert report.summary().startswith("2 problems in 3 documents across dev ")
