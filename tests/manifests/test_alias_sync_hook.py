"""Every model deployment carries one Argo CD Sync hook Job that moves its env's MLflow alias.

The Job reads the deployment's own model-version ConfigMap (mounted by name, renamed by the
folder's namePrefix) and names its own environment; a canary's names `--canary`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from mlops.conventions.deployment import Deployment
from mlops.conventions.paths import ENVS
from mlops.rendering.render import render_kustomization
from mlops.repository import bootstrap
from mlops.repository.model_version_file import deployments_in
from mlops.validate.object_rules.pod_policies import image_problem
from mlops.validate.object_rules.sync_hooks import sync_wait_bound
from support.canary import add_canary

HOOK_DELETE = "BeforeHookCreation,HookSucceeded"
MOUNT = "/etc/mlops/model-version"
ACCOUNTS = {"dev": "111122223333", "prod": "444455556666"}


def _deployments(repo: Path) -> list[tuple[str, str]]:
    return [(env, d) for env in ENVS for d in deployments_in(repo, env)]


def _served(repo: Path, env: str, deployment: str = "support-chat") -> Path:
    """Take a deployment out of bootstrap mode, as its first promote does; return the repository."""
    path = repo / bootstrap.kustomization_file(Deployment.from_folder(env, deployment))
    path.write_text(bootstrap.without_bootstrap(path.read_text()))
    return repo


def _hook(docs: list[dict[str, Any]]) -> dict[str, Any]:
    jobs = [d for d in docs if d["kind"] == "Job"]
    assert len(jobs) == 1, [j["metadata"]["name"] for j in jobs]
    return jobs[0]


def _check_hook(docs: list[dict[str, Any]], env: str, deployment: str) -> list[str]:
    """Assert the hook is this deployment's; return its args."""
    job = _hook(docs)
    assert job["metadata"]["name"] == f"{deployment}-alias-sync"
    assert job["metadata"]["namespace"] == "models"
    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "Sync"
    assert annotations["argocd.argoproj.io/hook-delete-policy"] == HOOK_DELETE
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["mlops"], "the git-bot entrypoint promotes: the hook must override it"
    args = container["args"]
    assert args[:2] == ["registry", "sync-alias"]
    assert f"--env={env}" in args and sum(a.startswith("--env") for a in args) == 1
    assert f"--version-file={MOUNT}" in args
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == MOUNT)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    configmaps = [d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"]
    assert configmaps == [f"{deployment}-model-version"]
    assert volume["configMap"]["name"] == configmaps[0]
    image = container["image"]
    assert image.startswith(f"{ACCOUNTS[env]}.dkr.ecr.us-west-2.amazonaws.com/mlops/git-bot:")
    assert image_problem(image, env) is None
    env_vars = {e["name"]: e.get("value") for e in container["env"]}
    assert env_vars["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    # only the promotion identity may move an environment's alias (images/mlflow/registry_access)
    logins = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in container["env"]}
    assert logins["MLFLOW_TRACKING_USERNAME"] == {"name": "mlflow-git-bot", "key": "username"}
    assert logins["MLFLOW_TRACKING_PASSWORD"] == {"name": "mlflow-git-bot", "key": "password"}
    assert "ExternalSecret" not in {d["kind"] for d in docs}  # the Secret is the platform's
    return args


def test_every_served_model_deployment_has_its_own_hook(scratch_repo: Path) -> None:
    found = _deployments(scratch_repo)
    assert ("dev", "support-chat") in found and ("prod", "support-chat") in found
    for env, deployment in found:
        docs = render_kustomization(
            _served(scratch_repo, env, deployment), f"overlays/{env}/models/{deployment}"
        )
        args = _check_hook(docs, env, deployment)
        assert ("--canary" in args) == deployment.endswith("-canary")


@pytest.mark.parametrize("env", ENVS)
def test_a_fresh_install_serves_nothing_until_the_first_promote(scratch_repo: Path, env: str) -> None:
    """As shipped, support-chat is in bootstrap mode: no pod, no GPU node, no alias hook to fail."""
    folder = f"overlays/{env}/models/support-chat"
    shipped = render_kustomization(scratch_repo, folder)
    assert [d for d in shipped if d["kind"] == "Job"] == []
    (deployment,) = [d for d in shipped if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 0
    (scaled,) = [d for d in shipped if d["kind"] == "ScaledObject"]
    assert scaled["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"] == "0"

    # Leaving bootstrap (what the first promote commits) changes exactly those three things.
    served = render_kustomization(_served(scratch_repo, env), folder)
    _check_hook(served, env, "support-chat")
    (served_deployment,) = [d for d in served if d["kind"] == "Deployment"]
    assert "replicas" not in served_deployment["spec"]
    deployment["spec"].pop("replicas")
    assert served_deployment == deployment
    (served_scaled,) = [d for d in served if d["kind"] == "ScaledObject"]
    assert "autoscaling.keda.sh/paused-replicas" not in served_scaled["metadata"]["annotations"]


@pytest.mark.parametrize("env", ENVS)
def test_canary_hook_moves_the_canary_alias(scratch_repo: Path, env: str) -> None:
    _served(scratch_repo, env)
    add_canary(scratch_repo, env, "2", f"s3://mlops-{env}-mlflow-artifacts/1/feedc0de/artifacts/model")
    stable = _check_hook(
        render_kustomization(scratch_repo, f"overlays/{env}/models/support-chat"), env, "support-chat"
    )
    canary = _check_hook(
        render_kustomization(scratch_repo, f"overlays/{env}/models/support-chat-canary"),
        env,
        "support-chat-canary",
    )
    assert "--canary" not in stable
    assert canary.count("--canary") == 1


def test_a_model_folder_without_the_env_component_fails_validation(scratch_repo: Path) -> None:
    from mlops.conventions.paths import default_crds_dir
    from mlops.validate.runner.engine import validate

    kustomization = (
        _served(scratch_repo, "dev") / "overlays" / "dev" / "models" / "support-chat" / "kustomization.yaml"
    )
    text = kustomization.read_text()
    assert "  - ../../model-alias-sync\n" in text
    kustomization.write_text(text.replace("  - ../../model-alias-sync\n", ""))

    report = validate(scratch_repo, ("dev",), default_crds_dir(Path(__file__).resolve().parents[2]))
    problems = [str(p) for p in report.problems]
    assert any("MLOPS002" in p and "support-chat-alias-sync" in p for p in problems), problems


@pytest.mark.parametrize("env", ENVS)
def test_a_rollback_commit_is_not_held_by_the_version_it_replaces(scratch_repo: Path, env: str) -> None:
    """Argo CD syncs the rollback commit at most the hook's deadline after the bad version's sync began.

    The bad version's sync consists of the resources and the Sync hook in one phase and wave,
    so (gitops-engine `Sync()`) the operation waits for the hook Job alone, never for the
    crash-looping Deployment's health; the hook ends within activeDeadlineSeconds. The
    rollback commit (the model-version file set back, what `mlops rollback` commits) renders
    the same shape, so it is not held either.
    """
    folder = f"overlays/{env}/models/support-chat"
    bad = render_kustomization(_served(scratch_repo, env), folder)
    assert sync_wait_bound(bad) == 300
    version_file = scratch_repo / folder / "model-version.yaml"
    text = version_file.read_text()
    version = re.search(r'version: "(\d+)"', text)
    assert version is not None
    version_file.write_text(text.replace(version.group(0), f'version: "{int(version.group(1)) + 1}"'))
    rollback = render_kustomization(scratch_repo, folder)
    assert _hook(rollback)["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "Sync"
    assert sync_wait_bound(rollback) == 300

    # The previous design: a PostSync hook waits for every resource to be Healthy, so the
    # bad version's sync (and the rollback queued behind it) has no bound.
    _hook(bad)["metadata"]["annotations"]["argocd.argoproj.io/hook"] = "PostSync"
    assert sync_wait_bound(bad) is None
