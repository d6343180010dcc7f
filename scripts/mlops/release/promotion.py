"""Promote a model version to one environment: registry checks, the commit, the push, the alias.

Order of side effects, chosen so a failure leaves the repository AND the registry as they were:
  1. every check that needs no change: environment, model folder, version number, clean
     checkout, the version in the registry, its gate and its weights digest (tag
     `weights_digest`, written by the trainer identity; copied to `data.weightsDigest`, which
     the model server's weights fetch verifies), the remote reachable;
  2. the commit, built off the remote tip without touching the checkout (`gitops.commit_file`);
  3. the push, the commit point: until it succeeds nothing anyone else sees has changed
     (the unpushed commit object is unreachable garbage);
  4. only then the MLflow alias `<env>`, which mirrors what git says the environment runs.
     Setting it before the push would leave a wrong alias behind a failed push; setting it
     after can only fail with git already right, and rerunning the same promote repairs it
     (the "already there" path re-syncs the alias). The alias is synced to the remote tip,
     re-checked after the write, so racing promotes converge on the version git ends with.
Rollback (mlops.release.rollback) follows the same order.
A canary (`canary=True`, `--canary`) is the same for the model's second deployment,
`overlays/<env>/models/<model>-canary/`, with MLflow alias `<env>-canary`.
A deployment still in bootstrap mode (mlops.repository.bootstrap: its folder lists the bootstrap
Component, so nothing is served) leaves it with its first promote: the same commit removes
the Component from the folder's kustomization.yaml, even when the version number is the one
the file already names (a fresh MLflow's first version is 1, as the shipped file says).
prod changes go through a pull request: the commit is pushed to a branch and the prod alias
is not moved here. Once the PR is merged, Argo CD syncs the deployment and its Sync hook
(base/models/vllm/alias-sync-job.yaml, `mlops registry sync-alias`) points the alias at the
version it synced; rerunning the promote on main does the same by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlops.conventions import write_inputs
from mlops.conventions.deployment import Deployment
from mlops.conventions.errors import MlopsError
from mlops.conventions.registry_names import (
    GATE_METRIC_TAG,
    GATE_THRESHOLD_TAG,
    GATE_VALUE_TAG,
    WEIGHTS_DIGEST_TAG,
)
from mlops.release.registry import (
    ModelVersion,
    Registry,
    require_gate_passed,
    require_gate_recorded,
    require_weights_digest,
    require_weights_in_artifact_store,
)
from mlops.release.write_path import (
    DeploymentChange,
    Write,
    check_inputs,
    deliver,
    pr_branch,
    read_at,
    require_version_file,
    sync_alias,
    trailers,
)
from mlops.repository import bootstrap, gitops, model_version_file
from mlops.repository.model_version_file import ModelVersionFile


class HeldBackError(MlopsError):
    """An automated promote asked for a version a rollback held back."""


def _body_value(value: str, what: str) -> str:
    """Return a value for the commit message's body after checking it is one line (it could forge one)."""
    return write_inputs.check_trailer_value(value, what)


def promote_message(
    mv: ModelVersion, deployment: Deployment, old: str, workflow: str, automated: bool
) -> str:
    """Return the commit message of a promote: subject, why, and the parseable trailers.

    A canary's message says so in the subject and adds trailer `Deployment: <model>-canary`.
    """
    extra = {"Deployment": deployment.name} if deployment.canary else {}
    gate = ""
    if GATE_VALUE_TAG in mv.tags:
        where = f"tag %s of version {mv.version} in the MLflow registry"
        gate = (
            f" Its evaluation gate passed: "
            f"{_body_value(mv.tags.get(GATE_METRIC_TAG, 'metric'), where % GATE_METRIC_TAG)} "
            f"{_body_value(mv.tags[GATE_VALUE_TAG], where % GATE_VALUE_TAG)} against threshold "
            f"{_body_value(mv.tags.get(GATE_THRESHOLD_TAG, '?'), where % GATE_THRESHOLD_TAG)}."
        )
    _body_value(mv.weights_uri, f"the weights URI of version {mv.version} in the MLflow registry")
    return (
        f"Promote {mv.model} to version {mv.version} in {deployment.label} (was {old})\n\n"
        f"Version {mv.version} of {mv.model} comes from MLflow run {mv.run_id or 'unknown'}.{gate}\n"
        f"Weights: {mv.weights_uri}\n"
        f"Weights digest: {_body_value(mv.tags.get(WEIGHTS_DIGEST_TAG, 'none'), 'the weights digest')}"
        " (recorded by the trainer)\n\n"
        + trailers(
            mv.model,
            mv.version,
            deployment.env,
            mv.run_id,
            workflow,
            Previous_Version=old,
            Promoted_By="automation" if automated else "person",
            **extra,
        )
    )


def promote(
    repo: Path,
    *,
    env: str,
    model: str,
    version: str,
    workflow: str | None = None,
    remote: str = "origin",
    branch: str = "main",
    automated: bool = False,
    canary: bool = False,
    propose: str | None = None,
    registry: Registry | None = None,
    log: Callable[[str], None] = print,
) -> DeploymentChange:
    """Promote `model` `version` to `env` (or its canary); the module docstring gives the order of effects.

    Args:
        repo: a clone of the GitOps repository with `remote` configured.
        env: `dev` (pushed to `branch`) or `prod` (pushed to a PR branch).
        model: the model (folder under `overlays/<env>/models/` and registered model name).
        version: the registered model version.
        workflow: the Argo workflow that asked for it (trailer `Workflow:`); None means a person.
        remote: the git remote to fetch from and push to.
        branch: the branch Argo CD follows.
        automated: the caller is automation (the git-bot); held-back versions are refused.
        canary: edit the canary deployment `<model>-canary/` instead and set alias `<env>-canary`.
        propose: push to this new branch and open a pull request into `branch` instead (dev's
            review path; prod always proposes, on `promote/<deployment>-<version>-prod` by default).
        registry: the MLflow registry (default: `MLFLOW_TRACKING_URI`).
        log: where progress lines go.
    """
    check_inputs(env, model, remote, branch, workflow, propose)
    write_inputs.check_version(version)
    deployment = Deployment(env, model, canary)
    gitops.require_clean(repo)
    gitops.require_writable(repo)
    target = gitops.RemoteBranch(repo, remote, branch)
    require_version_file(target, deployment)
    registry = registry or Registry()
    mv = registry.model_version(model, version)
    require_gate_passed(mv, registry.uri)
    require_gate_recorded(registry, mv)
    require_weights_in_artifact_store(mv)
    weights_digest = require_weights_digest(mv, registry.uri)
    workflow_name = workflow or ("unknown" if automated else "manual")
    path, where_env = deployment.version_file, deployment.label
    seen: dict[str, ModelVersionFile] = {}

    def build(base: str) -> str | None:
        current = read_at(repo, base, deployment, target.where)
        seen["current"] = current
        kustomization = bootstrap.kustomization_file(deployment)
        kustomization_text = gitops.show_file(repo, base, kustomization) or ""
        leaves_bootstrap = bootstrap.is_bootstrapping(kustomization_text)
        if current.version == version and not leaves_bootstrap:
            return None
        if automated and version in current.held_back:
            raise HeldBackError(
                f"version {version} of {model!r} is held back in {where_env} "
                f"(data.{model_version_file.HELD_BACK_KEY} "
                f"in {path}, set by a rollback): automated promotes skip it; a person promotes it explicitly "
                f"with `mlops promote --env {env} --model {model}{deployment.cli_flag} --version {version}` "
                "(without --automated)"
            )
        held = [v for v in current.held_back if v != version]
        text = current.with_version(version, mv.weights_uri, mv.run_id, held, weights_digest=weights_digest)
        message = promote_message(mv, deployment, current.version, workflow_name, automated)
        if not leaves_bootstrap:
            return gitops.commit_file(repo, base, path, text, message)
        log(f"{kustomization}: the first promote leaves bootstrap mode, so version {version} is served")
        changes: dict[str, str | None] = {
            path: text,
            kustomization: bootstrap.without_bootstrap(kustomization_text),
        }
        return gitops.commit_files(repo, base, changes, message)

    write = Write(deployment, target, "promote", registry, log, propose=propose)
    title = f"Promote {model} to version {version} in {where_env}"
    result, alias, pr = deliver(write, version, build, title)
    old = seen["current"].version
    outcome = DeploymentChange(env=env, model=model, old_version=old, new_version=version, canary=canary,
                      commit=result.commit, attempts=result.attempts, alias=alias,
                      pull_request=pr)  # fmt: skip
    alias_label = deployment.alias
    if result.commit is None:
        log(f"{model} is already at version {version} in {where_env} ({target.where}): nothing to commit")
        # No commit means the branch Argo CD follows already names this version (for prod too):
        # make the alias agree, which also repairs an alias a failed earlier run left behind.
        outcome.alias = sync_alias(target, registry, deployment)
        log(f"MLflow alias {alias_label!r} of {model!r} -> version {outcome.alias}")
        return outcome
    where = (
        target.where
        if not write.through_pull_request
        else f"{remote} branch {propose or pr_branch('promote', deployment, version)}"
    )
    if result.existing:
        log(f"{model} version {version} in {where_env} is already proposed on {where}: nothing changed")
    else:
        log(
            f"promoted {model} {old} -> {version} in {where_env}: commit {result.commit[:12]} pushed to "
            f"{where} (attempt {result.attempts})"
        )
    if alias:
        log(f"MLflow alias {alias_label!r} of {model!r} -> version {alias}")
    return outcome
