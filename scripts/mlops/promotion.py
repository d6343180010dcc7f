"""Promote and roll back a model version in one environment: registry checks, the commit, the push, the alias.

Order of side effects, chosen so a failure leaves the repository AND the registry as they were:
  1. every check that needs no change: environment, model folder, version number, clean
     checkout, the version in the registry and its gate, the remote reachable;
  2. the commit, built off the remote tip without touching the checkout (`gitops.commit_file`);
  3. the push, the commit point: until it succeeds nothing anyone else sees has changed
     (the unpushed commit object is unreachable garbage);
  4. only then the MLflow alias `<env>`, which mirrors what git says the environment runs.
     Setting it before the push would leave a wrong alias behind a failed push; setting it
     after can only fail with git already right, and rerunning the same promote repairs it
     (the "already there" path re-syncs the alias). The alias is synced to the remote tip,
     re-checked after the write, so racing promotes converge on the version git ends with.
A canary (`canary=True`, `--canary`) is the same for the model's second deployment,
`overlays/<env>/models/<model>-canary/`, with MLflow alias `<env>-canary`.
prod changes go through a pull request: the commit is pushed to a branch and the prod alias
is not moved here. Once the PR is merged, Argo CD syncs the deployment and its PostSync hook
(base/models/vllm/alias-sync-job.yaml, `mlops registry sync-alias`) points the alias at the
version it synced; rerunning the promote on main does the same by hand.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlops import github, gitops, model_version_file, write_inputs
from mlops.environments import PR_ENVS, check_env
from mlops.errors import MlopsError
from mlops.model_version_file import (
    ModelVersionFile,
    alias_name,
    deployment_name,
    relative_path,
)
from mlops.registry import ModelVersion, Registry, require_gate_passed

ALIAS_SYNC_ROUNDS = 10


class HeldBackError(MlopsError):
    """An automated promote asked for a version a rollback held back."""


@dataclass
class Outcome:
    """What a promote or rollback did, for the CLI's report and for callers such as the demo."""

    env: str
    model: str
    old_version: str
    new_version: str
    canary: bool = False
    commit: str | None = None
    pushed_ref: str | None = None
    attempts: int = 0
    alias: str | None = None
    pull_request: github.PullRequest | None = None


def _check_inputs(env: str, model: str, remote: str, branch: str, workflow: str | None) -> None:
    """Check the values every promote and rollback takes, before anything is read or written."""
    check_env(env)
    write_inputs.check_model_name(model, "--model")
    write_inputs.check_remote(remote)
    write_inputs.check_branch(branch)
    if workflow is not None:
        write_inputs.check_trailer_value(workflow, "--workflow")


def _check_model(repo: Path, env: str, model: str, canary: bool) -> None:
    deployment = deployment_name(model, canary)
    if not (repo / relative_path(env, deployment)).is_file():
        raise model_version_file.ModelVersionFileError(
            model_version_file.missing_message(repo, env, deployment)
        )


def _read_at(
    repo: Path, rev: str, env: str, model: str, where: str, canary: bool = False
) -> ModelVersionFile:
    path = relative_path(env, deployment_name(model, canary))
    text = gitops.show_file(repo, rev, path)
    if text is None:
        what = f"no canary of model {model!r}" if canary else f"unknown model {model!r}"
        raise model_version_file.ModelVersionFileError(f"{path} does not exist on {where}: {what}")
    return model_version_file.parse(text, f"{path} (on {where})", model=model)


def _where(env: str, canary: bool) -> str:
    return f"{env} canary" if canary else env


def _trailers(model: str, version: str, env: str, run_id: str | None, workflow: str, **extra: str) -> str:
    """Return the trailer block; every value is checked to be one line, so none can add a trailer."""
    values = {
        "Model": model,
        "Version": version,
        "Env": env,
        "MLflow-Run": run_id or "unknown",
        "Workflow": workflow,
        **{key.replace("_", "-"): value for key, value in extra.items()},
    }
    for key, value in values.items():
        write_inputs.check_trailer_value(value, f"commit trailer {key}")
    return "".join(f"{key}: {value}\n" for key, value in values.items())


def _body_value(value: str, what: str) -> str:
    """Return a value for the commit message's body after checking it is one line (it could forge one)."""
    return write_inputs.check_trailer_value(value, what)


def promote_message(
    mv: ModelVersion, env: str, old: str, workflow: str, automated: bool, canary: bool = False
) -> str:
    """Return the commit message of a promote: subject, why, and the parseable trailers.

    A canary's message says so in the subject and adds trailer `Deployment: <model>-canary`.
    """
    extra = {"Deployment": deployment_name(mv.model, canary)} if canary else {}
    gate = ""
    if "gate_value" in mv.tags:
        where = f"tag %s of version {mv.version} in the MLflow registry"
        gate = (
            f" Its evaluation gate passed: "
            f"{_body_value(mv.tags.get('gate_metric', 'metric'), where % 'gate_metric')} "
            f"{_body_value(mv.tags['gate_value'], where % 'gate_value')} against threshold "
            f"{_body_value(mv.tags.get('gate_threshold', '?'), where % 'gate_threshold')}."
        )
    _body_value(mv.weights_uri, f"the weights URI of version {mv.version} in the MLflow registry")
    return (
        f"Promote {mv.model} to version {mv.version} in {_where(env, canary)} (was {old})\n\n"
        f"Version {mv.version} of {mv.model} comes from MLflow run {mv.run_id or 'unknown'}.{gate}\n"
        f"Weights: {mv.weights_uri}\n\n"
        + _trailers(
            mv.model,
            mv.version,
            env,
            mv.run_id,
            workflow,
            Previous_Version=old,
            Promoted_By="automation" if automated else "person",
            **extra,
        )
    )


def _pr_branch(kind: str, deployment: str, version: str, env: str) -> str:
    return f"{kind}/{deployment}-{version}-{env}"


def _version_at_tip(repo: Path, remote: str, branch: str, env: str, model: str, canary: bool = False) -> str:
    tip = gitops.fetch(repo, remote, branch)
    if tip is None:
        raise gitops.GitError(f"remote {remote!r} has no branch {branch!r}")
    return _read_at(repo, tip, env, model, f"{remote}/{branch}", canary).version


def sync_alias(
    repo: Path, registry: Registry, remote: str, branch: str, env: str, model: str, canary: bool = False
) -> str:
    """Point alias `env` (`<env>-canary` for the canary) at the version the remote branch names; return it.

    Re-checks after each write: the loop makes racing promotes converge, since whoever writes
    last has fetched after writing, so a stale write by a slow promote is corrected by that
    promote itself.
    """
    alias = alias_name(env, canary)
    for _ in range(ALIAS_SYNC_ROUNDS):
        version = _version_at_tip(repo, remote, branch, env, model, canary)
        if registry.alias_version(model, alias) != version:
            registry.set_alias(model, alias, version)
        if _version_at_tip(repo, remote, branch, env, model, canary) == version:
            return version
    raise MlopsError(
        f"alias {alias!r} of {model!r} could not settle: {remote}/{branch} keeps changing; run `mlops status`"
    )


def _after_push_alias(
    repo: Path, registry: Registry, remote: str, branch: str, env: str, model: str, sha: str, canary: bool
) -> str:
    try:
        return sync_alias(repo, registry, remote, branch, env, model, canary)
    except MlopsError as exc:
        raise MlopsError(
            f"commit {sha[:12]} is pushed to {remote}/{branch}, but setting MLflow alias "
            f"{alias_name(env, canary)!r} failed: "
            f"{exc}; "
            f"rerun the same command to set the alias (git already has the change)"
        ) from exc


def _proposal_at(
    repo: Path, remote: str, pr_branch: str, base: str, env: str, model: str, target: str, canary: bool
) -> str | None:
    """Return the tip of `pr_branch` when it already proposes `target` on top of `base`, else None."""
    tip = gitops.fetch(repo, remote, pr_branch)
    if tip is None or gitops.rev_parse(repo, f"{tip}^") != base:
        return None  # absent, or built on an older main: it is rebuilt
    try:
        proposed = _read_at(repo, tip, env, model, f"{remote}/{pr_branch}", canary)
    except MlopsError:
        return None
    return tip if proposed.version == target else None


def _propose(
    repo: Path,
    remote: str,
    branch: str,
    pr_branch: str,
    build: Callable[[str], str | None],
    env: str,
    model: str,
    target: str,
    canary: bool,
) -> gitops.PushResult:
    """Push the proposal for a PR environment to `pr_branch`, or find the one already there.

    The PR branch belongs to mlops: one built on an older main is replaced. One that already
    proposes the same version on the current main is kept, so a second promote of the same
    version (a rerun, or a racer losing the push) finds it and succeeds without pushing.
    """
    base = gitops.fetch(repo, remote, branch)
    if base is None:
        raise gitops.GitError(f"remote {remote!r} has no branch {branch!r}: pass --branch")
    sha = build(base)  # also checks every value the commit would carry
    if sha is None:
        return gitops.PushResult(commit=None, attempts=1, base=base)
    found = _proposal_at(repo, remote, pr_branch, base, env, model, target, canary)
    if found:
        return gitops.PushResult(commit=found, attempts=1, base=base, existing=True)
    if gitops.push_commit(repo, remote, sha, f"+refs/heads/{pr_branch}"):
        return gitops.PushResult(commit=sha, attempts=1, base=base)
    found = _proposal_at(repo, remote, pr_branch, base, env, model, target, canary)
    if found:
        return gitops.PushResult(commit=found, attempts=1, base=base, existing=True)
    raise gitops.GitError(
        f"push to branch {pr_branch} on remote {remote!r} lost a race with another push, and the branch "
        f"does not propose version {target} on the current {branch}: run the command again"
    )


def _deliver(
    repo: Path,
    *,
    env: str,
    model: str,
    kind: str,
    target: str,
    remote: str,
    branch: str,
    build: Callable[[str], str | None],
    title: str,
    registry: Registry,
    log: Callable[[str], None],
    canary: bool = False,
) -> tuple[gitops.PushResult, str | None, github.PullRequest | None]:
    """Push the commit `build` makes (to `branch`, or to a PR branch for prod) and do what follows."""
    token = os.environ.get("GITHUB_TOKEN", "").strip()
    repository = None
    if env in PR_ENVS and token:
        repository = os.environ.get("GITHUB_REPOSITORY") or github.repository_from_remote(
            gitops.remote_url(repo, remote)
        )
        if not repository:
            raise github.GitHubError(
                f"GITHUB_TOKEN is set but the GitHub repository is unknown: remote {remote!r} is "
                f"{gitops.remote_url(repo, remote)}; set GITHUB_REPOSITORY=owner/name"
            )
    if env not in PR_ENVS:
        result = gitops.commit_and_push(repo, remote, branch, f"refs/heads/{branch}", build)
        if result.commit is None:
            return result, None, None
        if gitops.fast_forward(repo, branch, result.commit):
            log(f"fast-forwarded local {branch} to {result.commit[:12]}")
        alias = _after_push_alias(repo, registry, remote, branch, env, model, result.commit, canary)
        return result, alias, None
    pr_branch = _pr_branch(kind, deployment_name(model, canary), target, env)
    result = _propose(repo, remote, branch, pr_branch, build, env, model, target, canary)
    if result.commit is None:
        return result, None, None
    if result.existing:
        log(
            f"branch {pr_branch} on {remote} already proposes version {target} on the current {branch} "
            f"(commit {result.commit[:12]}, pushed by an earlier or concurrent run): nothing pushed"
        )
    else:
        log(
            f"pushed branch {pr_branch} ({result.commit[:12]}) to {remote}; "
            f"{env} changes when it is merged into {branch}; Argo CD's PostSync hook then moves "
            f"MLflow alias {alias_name(env, canary)!r}"
        )
    if not token:
        log(f"GITHUB_TOKEN is not set: open a pull request from {pr_branch} into {branch} by hand")
        return result, None, None
    assert repository is not None
    if result.existing:
        # the run that pushed the branch opens its pull request: find it before rendering a body
        found = github.find_open_pull_request(token=token, repository=repository, head=pr_branch)
        if found:
            log(f"pull request #{found.number}: {found.url} (already open)")
            return result, None, found
    from mlops.manifest_diff import diff_markdown

    try:
        rendered = diff_markdown(repo, result.base or branch, result.commit, envs=(env,))
    except MlopsError as exc:
        rendered = f"Rendering {env} failed, so there is no diff: {exc}\n"
    flag = " --canary" if canary else ""
    body = (
        f"{title}.\n\nOpened by `mlops {kind}`. Argo CD syncs {env} when this is merged; the "
        f"deployment's PostSync hook (`mlops registry sync-alias`) then points the MLflow alias "
        f"`{alias_name(env, canary)}` at version {target}. Should that hook fail, "
        f"`mlops promote --env {env} --model {model}{flag} --version {target}` on {branch} sets it "
        f"(it makes no commit: the version is already there).\n\n{rendered}"
    )
    try:
        pr = github.open_pull_request(
            token=token, repository=repository, head=pr_branch, base=branch, title=title, body=body
        )
    except github.GitHubError as exc:
        raise github.GitHubError(f"branch {pr_branch} is pushed, but the pull request failed: {exc}") from exc
    log(f"pull request #{pr.number}: {pr.url}" + ("" if pr.created else " (already open)"))
    return result, None, pr


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
    registry: Registry | None = None,
    log: Callable[[str], None] = print,
) -> Outcome:
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
        registry: the MLflow registry (default: `MLFLOW_TRACKING_URI`).
        log: where progress lines go.
    """
    _check_inputs(env, model, remote, branch, workflow)
    write_inputs.check_version(version)
    _check_model(repo, env, model, canary)
    gitops.require_clean(repo)
    gitops.require_writable(repo)
    registry = registry or Registry()
    mv = registry.model_version(model, version)
    require_gate_passed(mv, registry.uri)
    workflow_name = workflow or ("unknown" if automated else "manual")
    deployment = deployment_name(model, canary)
    path = relative_path(env, deployment)
    where_env = _where(env, canary)
    flag = " --canary" if canary else ""
    seen: dict[str, ModelVersionFile] = {}

    def build(base: str) -> str | None:
        current = _read_at(repo, base, env, model, f"{remote}/{branch}", canary)
        seen["current"] = current
        if current.version == version:
            return None
        if automated and version in current.held_back:
            raise HeldBackError(
                f"version {version} of {model!r} is held back in {where_env} "
                f"(data.{model_version_file.HELD_BACK_KEY} "
                f"in {path}, set by a rollback): automated promotes skip it; a person promotes it explicitly "
                f"with `mlops promote --env {env} --model {model}{flag} --version {version}` "
                "(without --automated)"
            )
        held = [v for v in current.held_back if v != version]
        text = current.with_version(version, mv.weights_uri, mv.run_id, held)
        message = promote_message(mv, env, current.version, workflow_name, automated, canary)
        return gitops.commit_file(repo, base, path, text, message)

    title = f"Promote {model} to version {version} in {where_env}"
    result, alias, pr = _deliver(
        repo, env=env, model=model, kind="promote", target=version, remote=remote, branch=branch,
        build=build, title=title, registry=registry, log=log, canary=canary,
    )  # fmt: skip
    old = seen["current"].version
    outcome = Outcome(env=env, model=model, old_version=old, new_version=version, canary=canary,
                      commit=result.commit, attempts=result.attempts, alias=alias,
                      pull_request=pr)  # fmt: skip
    alias_label = alias_name(env, canary)
    if result.commit is None:
        log(f"{model} is already at version {version} in {where_env} ({remote}/{branch}): nothing to commit")
        # No commit means the branch Argo CD follows already names this version (for prod too):
        # make the alias agree, which also repairs an alias a failed earlier run left behind.
        outcome.alias = sync_alias(repo, registry, remote, branch, env, model, canary)
        log(f"MLflow alias {alias_label!r} of {model!r} -> version {outcome.alias}")
        return outcome
    where = (
        f"{remote}/{branch}"
        if env not in PR_ENVS
        else f"{remote} branch {_pr_branch('promote', deployment, version, env)}"
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


def rollback(
    repo: Path,
    *,
    env: str,
    model: str,
    to: str | None = None,
    workflow: str | None = None,
    remote: str = "origin",
    branch: str = "main",
    canary: bool = False,
    registry: Registry | None = None,
    log: Callable[[str], None] = print,
) -> Outcome:
    """Roll `model` in `env` (its canary with `canary`) back to an earlier version in git (or `to`).

    The target is the newest version in the file's history, other than the current one, that
    is not held back; the version it moves away from is held back. So repeated rollbacks
    walk further back, and a held-back version returns only when a person promotes it
    (`to` refuses a held-back version too). docs/promotion.md, "Rollback", says the same.
    """
    _check_inputs(env, model, remote, branch, workflow)
    if to is not None:
        write_inputs.check_version(to, "--to version")
    _check_model(repo, env, model, canary)
    gitops.require_clean(repo)
    gitops.require_writable(repo)
    registry = registry or Registry()
    deployment = deployment_name(model, canary)
    path = relative_path(env, deployment)
    where_env = _where(env, canary)
    tip = gitops.fetch(repo, remote, branch)
    if tip is None:
        raise gitops.GitError(f"remote {remote!r} has no branch {branch!r}: pass --branch")
    current = _read_at(repo, tip, env, model, f"{remote}/{branch}", canary)
    deployed: dict[str, ModelVersionFile] = {}  # version -> the newest file state that deployed it
    for entry in gitops.file_history(repo, tip, path):
        if entry.text is None:
            continue
        try:
            state = model_version_file.parse(entry.text, f"{path} at {entry.sha[:12]}", model=model)
        except MlopsError:
            continue  # a broken state in history was never a version that ran
        deployed.setdefault(state.version, state)
    flag = " --canary" if canary else ""
    if to is not None:
        if to == current.version:
            raise MlopsError(f"{model!r} is already at version {to} in {where_env}: nothing to roll back")
        if to in current.held_back:
            raise MlopsError(
                f"version {to} of {model!r} is held back in {where_env} "
                f"(data.{model_version_file.HELD_BACK_KEY} in {path}): a rollback never brings a held-back "
                "version back; a person promotes it with "
                f"`mlops promote --env {env} --model {model}{flag} --version {to}`"
            )
        if to not in deployed:
            raise MlopsError(
                f"version {to} of {model!r} was never deployed to {where_env} "
                f"(versions in the history of {path}: "
                f"{', '.join(deployed) or 'none'}): roll back to one of those, or promote it"
            )
        target = deployed[to]
    else:
        earlier = [
            state
            for version, state in deployed.items()
            if version != current.version and version not in current.held_back
        ]
        if not earlier:
            others = [v for v in deployed if v != current.version]
            if others:
                raise MlopsError(
                    f"no earlier version of {model!r} in {where_env} that is not held back: the history of "
                    f"{path} on {remote}/{branch} has versions {', '.join(deployed)}, and "
                    f"{', '.join(current.held_back)} are held back; roll forward with `mlops promote`"
                )
            raise MlopsError(
                f"no earlier version of {model!r} in {where_env}: "
                f"the history of {path} on {remote}/{branch} only "
                f"has version {current.version}; nothing to roll back to"
            )
        target = earlier[0]
    mv = registry.model_version(model, target.version)  # the alias needs it, so check before any change
    run_id = target.run_id or mv.run_id
    workflow_name = workflow or "manual"
    seen: dict[str, ModelVersionFile] = {}

    def build(base: str) -> str | None:
        now = _read_at(repo, base, env, model, f"{remote}/{branch}", canary)
        seen["current"] = now
        if now.version == target.version:
            return None
        held = [v for v in now.held_back if v != target.version]
        if now.version not in held:
            held.append(now.version)
        text = now.with_version(target.version, target.weights_uri, run_id, held)
        message = (
            f"Roll back {model} to version {target.version} in {where_env} (was {now.version})\n\n"
            f"Version {now.version} is held back (data.{model_version_file.HELD_BACK_KEY}): automated "
            f"promotes will not bring it back until a person promotes it explicitly.\n"
            f"Weights: {target.weights_uri}\n\n"
            + _trailers(model, target.version, env, run_id, workflow_name,
                        Previous_Version=now.version, Rolled_Back_From=now.version, Held_Back=",".join(held),
                        **({"Deployment": deployment} if canary else {}))
        )  # fmt: skip
        return gitops.commit_file(repo, base, path, text, message)

    title = f"Roll back {model} to version {target.version} in {where_env}"
    result, alias, pr = _deliver(
        repo, env=env, model=model, kind="rollback", target=target.version, remote=remote, branch=branch,
        build=build, title=title, registry=registry, log=log, canary=canary,
    )  # fmt: skip
    old = seen["current"].version
    outcome = Outcome(env=env, model=model, old_version=old, new_version=target.version, canary=canary,
                      commit=result.commit, attempts=result.attempts, alias=alias,
                      pull_request=pr)  # fmt: skip
    if result.commit is None:
        log(f"{model} is already at version {target.version} in {where_env}: nothing to commit")
        return outcome
    if result.existing:
        log(f"rolling {model} back to {target.version} in {where_env} is already proposed: nothing changed")
    else:
        log(
            f"rolled back {model} {old} -> {target.version} in {where_env}: commit {result.commit[:12]} "
            f"(version {old} held back)"
        )
    if alias:
        log(f"MLflow alias {alias_name(env, canary)!r} of {model!r} -> version {alias}")
    return outcome
