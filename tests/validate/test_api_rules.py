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
from mlops.validate.objects.violations import HINTS
from mlops.validate.runner.engine import Report
from support.validate_cli import validate_lines

PREFIX = "support-chat-with-a-prefix-long-enough-to-break-the-service-name-"
MODEL = "overlays/dev/models/support-chat"
GATEWAY = "overlays/dev/gateway: Deployment/gateway"
CONTAINER = "spec.template.spec.containers[0]"


def _replace(repo: Path, path: str, old: str, new: str, count: int = 1) -> None:
    file = repo / path
    text = file.read_text()
    assert text.count(old) >= count, f"{path} no longer contains {old!r}: update the planted defect"
    if count == 1:
        file.write_text(text.replace(old, new, 1))
    else:  # the count-th occurrence only
        head, *rest = text.split(old)
        file.write_text(head + old.join(rest[: count - 1]) + new + old.join(rest[count - 1 :]))


def _hinted(line: str, policy: str) -> str:
    return f"{line} [{policy}: {HINTS[policy]}]"


@pytest.fixture(scope="module")
def lines(repo_copy: Path, crds_dir: Path) -> list[str]:
    """Plant one defect per rule in a copy of the repository, then run `mlops validate dev` once."""
    # MLOPS040: the two quantities.
    _replace(repo_copy, "overlays/dev/mlflow/resources.yaml", "cpu: 250m", "cpu: 500mm")
    _replace(repo_copy, "overlays/dev/mlflow/resources.yaml", "memory: 1Gi", "memory: 6GB")
    # MLOPS041: the gateway requests more memory than its limit.
    _replace(repo_copy, "base/gateway/deployment.yaml", "memory: 256Mi", "memory: 1Gi")
    # MLOPS042: a GPU limit different from its request.
    _replace(repo_copy, f"{MODEL}/resources.yaml", 'nvidia.com/gpu: "1"', 'nvidia.com/gpu: "2"', count=2)
    # MLOPS043: a namePrefix that makes the rendered Service name longer than a DNS-1035 label.
    _replace(repo_copy, f"{MODEL}/kustomization.yaml", "namePrefix: support-chat-", f"namePrefix: {PREFIX}")
    # MLOPS044: a label value with a space.
    _replace(
        repo_copy,
        "base/gateway/deployment.yaml",
        "    app.kubernetes.io/component: gateway\n",
        "    app.kubernetes.io/component: gateway\n    team: platform team\n",
    )
    # MLOPS045: the gateway's selector no longer selects its pods.
    _replace(
        repo_copy,
        "base/gateway/deployment.yaml",
        "  selector:\n    matchLabels:\n      app.kubernetes.io/name: gateway\n",
        "  selector:\n    matchLabels:\n      app.kubernetes.io/name: gatewayy\n",
    )
    # MLOPS046: a probe's port name typo.
    _replace(repo_copy, "base/gateway/deployment.yaml", "port: http\n", "port: htp\n")
    # MLOPS047: the MLflow Service targets a port name its pods do not have.
    _replace(repo_copy, "base/mlflow/service.yaml", "targetPort: http", "targetPort: http-api")
    # MLOPS048: a repeated key in a patch.
    _replace(
        repo_copy, "overlays/dev/mlflow/replicas.yaml", "  replicas: 1\n", "  replicas: 1\n  replicas: 2\n"
    )
    # MLOPS049 (and kustomize's message with the file): an indentation error in a kustomization.
    _replace(repo_copy, "overlays/dev/monitoring/kustomization.yaml", "\n    target:", "\n   target:")
    # A patch path typo: kustomize's whole message.
    _replace(
        repo_copy,
        "overlays/dev/karpenter/kustomization.yaml",
        "path: gpu-limits.yaml",
        "path: gpu-limit.yaml",
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
    where = "overlays/dev/mlflow: Deployment/mlflow: spec.template.spec.containers[0].resources.requests"
    assert _hinted(f"{where}.cpu: '500mm' {shape}", "MLOPS040") in lines
    assert _hinted(f"{where}.memory: '6GB' {shape}", "MLOPS040") in lines


def test_request_above_limit(lines: list[str]) -> None:
    assert (
        _hinted(
            f"{GATEWAY}: {CONTAINER}.resources.requests.memory: "
            "'1Gi' must be less than or equal to memory limit of '512Mi'",
            "MLOPS041",
        )
        in lines
    )


def test_gpu_limit_different_from_request(lines: list[str]) -> None:
    assert (
        _hinted(
            f"{MODEL}: Deployment/{PREFIX}vllm: spec.template.spec.containers[0].resources.requests"
            "[\"nvidia.com/gpu\"]: '1' must be equal to nvidia.com/gpu limit of '2' "
            "(an extended resource cannot be overcommitted)",
            "MLOPS042",
        )
        in lines
    )


def test_rendered_service_name_too_long(lines: list[str]) -> None:
    name = f"{PREFIX}vllm"
    assert (
        _hinted(
            f"{MODEL}: Service/{name}: metadata.name: '{name}' must be no more than 63 characters "
            f"(it has {len(name)})",
            "MLOPS043",
        )
        in lines
    )


def test_label_value(lines: list[str]) -> None:
    assert (
        _hinted(
            f"{GATEWAY}: metadata.labels.team: label value 'platform team' must be empty"
            " or consist of alphanumeric characters, '-', '_' or '.', starting and ending with an "
            "alphanumeric character",
            "MLOPS044",
        )
        in lines
    )


def test_selector_that_misses_the_template(lines: list[str]) -> None:
    assert (
        _hinted(
            f"{GATEWAY}: spec.template.metadata.labels: `selector` does not match "
            "template `labels`: the selector wants app.kubernetes.io/name=gatewayy",
            "MLOPS045",
        )
        in lines
    )


def test_probe_port_name_typo(lines: list[str]) -> None:
    assert (
        _hinted(
            f"{GATEWAY}: {CONTAINER}.startupProbe.httpGet.port: "
            "port 'htp' is not a port name of container 'gateway' (its ports: http): the kubelet fails the "
            "probe with 'port htp not found'",
            "MLOPS046",
        )
        in lines
    )


def test_service_target_port_name(lines: list[str]) -> None:
    assert (
        _hinted(
            "overlays/dev/mlflow: Service/mlflow: spec.ports[0].targetPort: 'http-api' is not a "
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


def test_yaml_error_names_file_and_line(lines: list[str]) -> None:
    assert (
        _hinted(
            "overlays/dev/monitoring/kustomization.yaml:7: (YAML): column 4: not valid YAML: while parsing a "
            "block collection; did not find expected '-' indicator",
            "MLOPS049",
        )
        in lines
    )
    assert (
        "overlays/dev/monitoring: Kustomization/monitoring: kustomization.yaml: kustomize build failed: "
        "invalid Kustomization: yaml: line 6: did not find expected '-' indicator"
    ) in lines


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
    [line] = [line for line in lines if line.startswith("overlays/dev/karpenter: Kustomization/karpenter:")]
    assert line.startswith(
        "overlays/dev/karpenter: Kustomization/karpenter: kustomization.yaml: kustomize build failed: "
        "trouble configuring builtin PatchTransformer with config: `path: gpu-limit.yaml`: "
        "failed to get the patch file from path(gpu-limit.yaml): "
    )
    assert "overlays/dev/karpenter/gpu-limit.yaml" in line


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

    assert api_rules.parse_quantity(value) == Decimal(expected)


@pytest.mark.parametrize("value", ["500mm", "6GB", "2K", "1 Gi", "", "Gi", "1e"])
def test_quantities_that_do_not(value: str) -> None:
    assert api_rules.parse_quantity(value) is None


def test_summary_says_one_problem() -> None:
    report = Report(envs=("dev",), problems=[Problem("f", "K/n", "x", "y")], documents=3)
    assert report.summary().startswith("1 problem in 3 documents across dev ")
    report.problems.append(Problem("f", "K/n", "x", "z"))
    assert report.summary().startswith("2 problems in 3 documents across dev ")
