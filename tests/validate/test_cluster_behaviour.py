"""Cluster-behaviour policies (MLOPS013-019): each bites on its defect planted in a copy of the repository.

One copy gets every defect at once and `mlops validate` runs once over it; each test then
asserts the exact problem line a user would read.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlops.repository import bootstrap
from mlops.validate.objects.violations import HINTS
from support.validate_cli import by_folder, plant, validate_lines

MODEL = "overlays/dev/models/support-chat"
VLLM = "Deployment/support-chat-vllm"
HOOK = "Job/support-chat-alias-sync"


def _template_index(repo: Path, service_account: str) -> int:
    workflow = yaml.safe_load((repo / "base/workflows/generated/train-and-promote.yaml").read_text())
    return next(
        i
        for i, t in enumerate(workflow["spec"]["templates"])
        if t.get("serviceAccountName") == service_account
    )


@pytest.fixture(scope="module")
def planted(repo_copy: Path) -> dict[str, Any]:
    """Plant one defect per cluster-behaviour policy; return what the expected lines need."""
    # MLOPS013: no device plugin chart any more.
    charts = repo_copy / "apps/upstream-charts.yaml"
    text = charts.read_text()
    text, removed = re.subn(
        r"\n(\s+# [^\n]*\n)*\s+- chart: nvidia-device-plugin\n(\s+\w+: [^\n]+\n){3}", "\n", text
    )
    assert removed == 1
    charts.write_text(text)
    # MLOPS014: MLflow (images/mlflow, UID 10001) run as 1000; vLLM without USER.
    plant(repo_copy, "base/mlflow/deployment.yaml", "runAsUser: 10001", "runAsUser: 1000")
    user_env = "            - name: USER\n              value: vllm\n"
    plant(repo_copy, "base/models/vllm/deployment.yaml", user_env, "")
    # MLOPS015: the vLLM container's ephemeral-storage limit back to 4Gi.
    plant(repo_copy, "base/models/vllm/deployment.yaml", "ephemeral-storage: 76Gi", "ephemeral-storage: 4Gi")
    # MLOPS016: git-bot's role loses the artifact-bucket write.
    roles = repo_copy / "terraform/modules/workload-roles/main.tf"
    text = roles.read_text()
    start = text.index('    "git-bot" = [')
    write = text.index('{ sid = "WriteWorkflowLogs"', start)
    roles.write_text(text[: text.rindex("\n", 0, write) + 1] + text[text.index("\n", write) + 1 :])
    # MLOPS017, MLOPS019: the hook back to PostSync, with its TTL (in a served model: the
    # shipped one is in bootstrap mode, which renders no hook).
    kustomization = repo_copy / MODEL / "kustomization.yaml"
    kustomization.write_text(bootstrap.without_bootstrap(kustomization.read_text()))
    plant(
        repo_copy,
        "base/models/vllm/alias-sync-job.yaml",
        "argocd.argoproj.io/hook: Sync",
        "argocd.argoproj.io/hook: PostSync",
    )
    plant(
        repo_copy,
        "base/models/vllm/alias-sync-job.yaml",
        "  activeDeadlineSeconds: 300\n",
        "  activeDeadlineSeconds: 300\n  ttlSecondsAfterFinished: 3600\n",
    )
    # MLOPS018: the default progress deadline.
    plant(repo_copy, "base/models/vllm/deployment.yaml", "  progressDeadlineSeconds: 1800\n", "")
    return {"git_bot_template": _template_index(repo_copy, "git-bot")}


@pytest.fixture(scope="module")
def lines(planted: dict[str, Any], repo_copy: Path, crds_dir: Path) -> list[str]:
    return validate_lines(repo_copy, crds_dir, "dev")


def _hinted(line: str, policy: str) -> str:
    return f"{line} [{policy}: {HINTS[policy]}]"


def test_gpu_pods_without_a_device_plugin(lines: list[str]) -> None:
    assert _hinted(
        f"{MODEL}: {VLLM}: spec.template.spec.containers[0].resources: requests nvidia.com/gpu but "
        "clusters/dev installs no NVIDIA device plugin (nvidia-device-plugin or gpu-operator chart, "
        "or a k8s-device-plugin DaemonSet): no node advertises nvidia.com/gpu and the pod stays Pending",
        "MLOPS013",
    ) in by_folder(lines)


def test_image_built_here_run_as_another_uid(lines: list[str]) -> None:
    assert _hinted(
        "overlays/dev/mlflow: Deployment/mlflow: spec.template.spec.securityContext.runAsUser: runs "
        "images/mlflow as UID 1000 but its Dockerfile creates and runs as UID 10001: no passwd entry or "
        "home for 1000, and the image's files are not its own",
        "MLOPS014",
    ) in by_folder(lines)


def test_torch_image_as_arbitrary_uid_without_user(lines: list[str]) -> None:
    assert _hinted(
        f"{MODEL}: {VLLM}: spec.template.spec.containers[0].env: "
        "runs vllm/vllm-openai as UID 1000, which "
        "has no passwd entry in the image, without USER: getpass.getuser() raises KeyError and torch's "
        "caches are not writable",
        "MLOPS014",
    ) in by_folder(lines)


def test_emptydirs_beyond_the_ephemeral_storage_limit(lines: list[str]) -> None:
    assert _hinted(
        f"{MODEL}: {VLLM}: spec.template.spec.volumes: disk-backed emptyDirs need 72Gi (weights 60Gi, "
        "cache 10Gi, tmp 2Gi) but the containers' "
        "ephemeral-storage limits allow the pod 4Gi: the kubelet "
        "evicts it when they fill",
        "MLOPS015",
    ) in by_folder(lines)


def test_workflow_account_that_cannot_write_logs(lines: list[str], planted: dict[str, Any]) -> None:
    assert _hinted(
        f"overlays/dev/workflows: WorkflowTemplate/train-and-promote: "
        f"spec.templates[{planted['git_bot_template']}].serviceAccountName: pods run as ServiceAccount "
        "git-bot, whose IAM role cannot write the Argo artifact repository s3://mlops-dev-argo-artifacts "
        "(mlops-dev-git-bot has no s3:PutObject on "
        "argo-artifacts/*): the wait container uploads logs and "
        "outputs with that role and the step ends in Error",
        "MLOPS016",
    ) in by_folder(lines)


def test_postsync_hook_holds_the_rollback(lines: list[str]) -> None:
    assert _hinted(
        f"{MODEL}: {HOOK}: metadata.annotations.argocd.argoproj.io/hook: PostSync hook starts only once "
        f"every resource is Healthy: while {VLLM} does not become "
        "healthy the sync operation stays Running "
        "and the next commit (a rollback) is not synced",
        "MLOPS017",
    ) in by_folder(lines)


def test_progress_deadline_below_the_startup_budget(lines: list[str]) -> None:
    assert _hinted(
        f"{MODEL}: {VLLM}: spec.progressDeadlineSeconds: "
        "progressDeadlineSeconds 600 (the default) is not "
        "above the startup probe budget of 900s: the rollout is marked failed (Argo CD: Degraded) while "
        "pods still start",
        "MLOPS018",
    ) in by_folder(lines)


def test_hook_ttl_deletes_the_failed_job(lines: list[str]) -> None:
    assert _hinted(
        f"{MODEL}: {HOOK}: spec.ttlSecondsAfterFinished: ttlSecondsAfterFinished 3600 deletes the failed "
        "hook Job too, which its hook-delete-policy "
        '"BeforeHookCreation,HookSucceeded" keeps for its logs',
        "MLOPS019",
    ) in by_folder(lines)
