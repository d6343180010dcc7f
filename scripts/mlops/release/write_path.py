"""The steps every write to a deployment shares: read its version file, the trailers, deliver, the alias.

Promote and rollback (mlops.release.promotion, mlops.release.rollback) differ only in which version they
pick and the commit message they write; both then hand a `build` function to `deliver`,
which pushes to the branch (dev) or proposes a pull request (prod), and, after a push,
points the deployment's MLflow alias at what the branch names (`sync_alias`). The canary
analysis reuses the trailers.

Two choices override the environment's default delivery (docs/promotion.md, "Which path a
change takes"): `propose` puts a dev change on a named branch with a pull request instead of
pushing it, and `direct` (rollback's `--emergency`) pushes a prod change straight to the
branch Argo CD follows.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlops.conventions import write_inputs
from mlops.conventions.deployment import VERSION_FILE_NAME, Deployment
from mlops.conventions.environments import check_env
from mlops.conventions.errors import MlopsError
from mlops.release import github
from mlops.release.registry import Registry, point_alias
from mlops.repository import gitops, model_version_file
from mlops.repository.model_version_file import ModelVersionFile

ALIAS_SYNC_ROUNDS = 10


@dataclass
class DeploymentChange:
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


@dataclass(frozen=True)
class Write:
    """One write to a deployment: what it changes, where it lands, who asked, what it logs.

    Attributes:
        deployment: the deployment whose version file changes.
        target: the branch the commit lands on (or, for prod, the base of its pull request).
        kind: `promote` or `rollback`: the PR branch's prefix and the command the PR body names.
        registry: the MLflow registry whose alias follows git; None when it could not be reached
            (a rollback then leaves the alias to the deployment's Sync hook).
        log: where progress lines go.
        propose: a branch to propose the change on (a pull request into `target`), in any
            environment; None takes the environment's default.
        direct: push to `target` even where the environment goes through pull requests
            (an emergency rollback).
    """

    deployment: Deployment
    target: gitops.RemoteBranch
    kind: str
    registry: Registry | None
    log: Callable[[str], None]
    propose: str | None = None
    direct: bool = False

    @property
    def through_pull_request(self) -> bool:
        """Whether this write is proposed on a branch rather than pushed to the target branch."""
        if self.propose is not None:
            return True
        return self.deployment.through_pull_request and not self.direct


def check_inputs(
    env: str, model: str, remote: str, branch: str, workflow: str | None, propose: str | None = None
) -> None:
    """Check the values every promote and rollback takes, before anything is read or written."""
    check_env(env)
    write_inputs.check_model_name(model, "--model")
    write_inputs.check_remote(remote)
    write_inputs.check_branch(branch)
    if workflow is not None:
        write_inputs.check_trailer_value(workflow, "--workflow")
    if propose is not None:
        write_inputs.check_branch(propose, "--propose")
        if propose == branch:
            raise MlopsError(
                f"--propose {propose} is the branch Argo CD follows (--branch): a proposal needs its own "
                "branch; leave --propose out to push straight to it"
            )


def require_version_file(target: gitops.RemoteBranch, deployment: Deployment) -> str:
    """Fetch the remote branch and return its tip; raise, naming its deployments, unless it has the file.

    The remote tip decides, not the checkout: a model added on the remote since the last pull
    is there to promote, and one deleted there is gone however old the checkout is.
    """
    tip = target.tip()
    read_at(target.repo, tip, deployment, target.where)
    return tip


def read_at(repo: Path, rev: str, deployment: Deployment, where: str) -> ModelVersionFile:
    """Return `deployment`'s version file at `rev` (`where` names that revision in messages)."""
    path = deployment.version_file
    text = gitops.show_file(repo, rev, path)
    if text is None:
        what = (
            f"no canary of model {deployment.model!r}"
            if deployment.canary
            else f"unknown model {deployment.model!r}"
        )
        folder = f"overlays/{deployment.env}/models/"
        known = sorted(
            f.removeprefix(folder).split("/")[0]
            for f in gitops.list_files(repo, rev, folder)
            if f.endswith("/" + VERSION_FILE_NAME)
        )
        hint = ": add the canary folder first (docs/adding-a-model.md, Canary)" if deployment.canary else ""
        raise model_version_file.ModelVersionFileError(
            f"{what} in {deployment.env}: {path} does not exist on {where} "
            f"(deployments in {deployment.env} there: {', '.join(known) or 'none'}){hint}"
        )
    return model_version_file.parse(text, f"{path} (on {where})", model=deployment.model)


def trailers(model: str, version: str, env: str, run_id: str | None, workflow: str, **extra: str) -> str:
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


def pr_branch(kind: str, deployment: Deployment, version: str) -> str:
    """Return the branch a prod write is proposed on: `<kind>/<deployment>-<version>-<env>`."""
    return f"{kind}/{deployment.name}-{version}-{deployment.env}"


def _version_at_tip(target: gitops.RemoteBranch, deployment: Deployment) -> str:
    tip = gitops.fetch(target.repo, target.remote, target.branch)
    if tip is None:
        raise gitops.GitError(f"remote {target.remote!r} has no branch {target.branch!r}")
    return read_at(target.repo, tip, deployment, target.where).version


def sync_alias(target: gitops.RemoteBranch, registry: Registry, deployment: Deployment) -> str:
    """Point `deployment`'s MLflow alias at the version the remote branch names; return that version.

    Re-checks after each write: the loop makes racing promotes converge, since whoever writes
    last has fetched after writing, so a stale write by a slow promote is corrected by that
    promote itself.
    """
    for _ in range(ALIAS_SYNC_ROUNDS):
        version = _version_at_tip(target, deployment)
        point_alias(registry, deployment.model, deployment.alias, version)
        if _version_at_tip(target, deployment) == version:
            return version
    raise MlopsError(
        f"alias {deployment.alias!r} of {deployment.model!r} could not settle: {target.where} keeps "
        "changing; run `mlops status`"
    )


def _after_push_alias(write: Write, sha: str) -> str | None:
    if write.registry is None:
        deployment = write.deployment
        write.log(
            f"MLflow alias {deployment.alias!r} of {deployment.model!r} was not moved (no registry): the "
            "deployment's Sync hook moves it when Argo CD syncs this commit and MLflow answers; or, once "
            f"MLflow is back, run `mlops registry sync-alias --env {deployment.env}{deployment.cli_flag} "
            f"--version-file {deployment.version_file}` on {write.target.where}"
        )
        return None
    try:
        return sync_alias(write.target, write.registry, write.deployment)
    except MlopsError as exc:
        raise MlopsError(
            f"commit {sha[:12]} is pushed to {write.target.where}, but setting MLflow alias "
            f"{write.deployment.alias!r} failed: "
            f"{exc}; "
            f"rerun the same command to set the alias (git already has the change)"
        ) from exc


def _proposal_at(write: Write, branch: str, base: str, version: str) -> str | None:
    """Return the tip of `branch` when it already proposes `version` on top of `base`, else None."""
    repo, remote = write.target.repo, write.target.remote
    tip = gitops.fetch(repo, remote, branch)
    if tip is None or gitops.rev_parse(repo, f"{tip}^") != base:
        return None  # absent, or built on an older main: it is rebuilt
    try:
        proposed = read_at(repo, tip, write.deployment, f"{remote}/{branch}")
    except MlopsError:
        return None
    return tip if proposed.version == version else None


def _propose(
    write: Write, branch: str, build: Callable[[str], str | None], version: str
) -> gitops.PushResult:
    """Push the proposal for a PR environment to `branch`, or find the one already there.

    The PR branch mlops names (`pr_branch`) belongs to mlops: one built on an older main is
    replaced. A branch the person named (`propose`) is theirs: it is created, never replaced.
    One that already proposes the same version on the current main is kept, so a second
    promote of the same version (a rerun, or a racer losing the push) finds it and succeeds
    without pushing.
    """
    target = write.target
    base = target.tip()
    sha = build(base)  # also checks every value the commit would carry
    if sha is None:
        return gitops.PushResult(commit=None, attempts=1, base=base)
    found = _proposal_at(write, branch, base, version)
    if found:
        return gitops.PushResult(commit=found, attempts=1, base=base, existing=True)
    if write.propose is not None and gitops.fetch(target.repo, target.remote, branch) is not None:
        raise gitops.GitError(
            f"branch {branch} already exists on remote {target.remote!r} and does not propose version "
            f"{version} of {write.deployment.model!r} on the current {target.branch}: --propose creates a "
            "new branch and never replaces one; pass another name (nothing was changed)"
        )
    if gitops.push_commit(target.repo, target.remote, sha, f"+refs/heads/{branch}"):
        return gitops.PushResult(commit=sha, attempts=1, base=base)
    found = _proposal_at(write, branch, base, version)
    if found:
        return gitops.PushResult(commit=found, attempts=1, base=base, existing=True)
    raise gitops.GitError(
        f"push to branch {branch} on remote {target.remote!r} lost a race with another push, and the branch "
        f"does not propose version {version} on the current {target.branch}: run the command again"
    )


def _github_repository(target: gitops.RemoteBranch) -> str:
    repository = os.environ.get("GITHUB_REPOSITORY") or github.repository_from_remote(
        gitops.remote_url(target.repo, target.remote)
    )
    if not repository:
        raise github.GitHubError(
            f"GITHUB_TOKEN is set but the GitHub repository is unknown: remote {target.remote!r} is "
            f"{gitops.remote_url(target.repo, target.remote)}; set GITHUB_REPOSITORY=owner/name"
        )
    return repository


def deliver(
    write: Write, version: str, build: Callable[[str], str | None], title: str
) -> tuple[gitops.PushResult, str | None, github.PullRequest | None]:
    """Push the commit `build` makes (to the branch, or to a PR branch for prod) and do what follows.

    Returns:
        The push, the version the alias now names (None when it was not moved: prod, or no
        commit), and the pull request (None without one).
    """
    deployment, target, log = write.deployment, write.target, write.log
    repo, env = target.repo, deployment.env
    token = os.environ.get("GITHUB_TOKEN", "").strip()
    # checked before any push, so a prod write that could not open its PR changes nothing
    repository = _github_repository(target) if write.through_pull_request and token else None
    if not write.through_pull_request:
        result = gitops.commit_and_push(
            repo, target.remote, target.branch, f"refs/heads/{target.branch}", build
        )
        if result.commit is None:
            return result, None, None
        if gitops.fast_forward(repo, target.branch, result.commit):
            log(f"fast-forwarded local {target.branch} to {result.commit[:12]}")
        return result, _after_push_alias(write, result.commit), None
    branch = write.propose or pr_branch(write.kind, deployment, version)
    result = _propose(write, branch, build, version)
    if result.commit is None:
        return result, None, None
    if result.existing:
        log(
            f"branch {branch} on {target.remote} already proposes version {version} on the current "
            f"{target.branch} (commit {result.commit[:12]}, pushed by an earlier or concurrent run): "
            "nothing pushed"
        )
    else:
        log(
            f"pushed branch {branch} ({result.commit[:12]}) to {target.remote}; "
            f"{env} changes when it is merged into {target.branch}; Argo CD's Sync hook then moves "
            f"MLflow alias {deployment.alias!r}"
        )
    if not token:
        log(f"GITHUB_TOKEN is not set: open a pull request from {branch} into {target.branch} by hand")
        return result, None, None
    assert repository is not None
    if result.existing:
        # the run that pushed the branch opens its pull request: find it before rendering a body
        found = github.find_open_pull_request(token=token, repository=repository, head=branch)
        if found:
            log(f"pull request #{found.number}: {found.url} (already open)")
            return result, None, found
    from mlops.rendering.manifest_diff import diff_markdown

    try:
        rendered = diff_markdown(repo, result.base or target.branch, result.commit, envs=(env,))
    except MlopsError as exc:
        rendered = f"Rendering {env} failed, so there is no diff: {exc}\n"
    body = (
        f"{title}.\n\nOpened by `mlops {write.kind}`. Argo CD syncs {env} when this is merged; the "
        f"deployment's Sync hook (`mlops registry sync-alias`) then points the MLflow alias "
        f"`{deployment.alias}` at version {version}. Should that hook fail, "
        f"`mlops promote --env {env} --model {deployment.model}{deployment.cli_flag} --version {version}` "
        f"on {target.branch} sets it (it makes no commit: the version is already there).\n\n{rendered}"
    )
    try:
        pr = github.open_pull_request(
            token=token, repository=repository, head=branch, base=target.branch, title=title, body=body
        )
    except github.GitHubError as exc:
        raise github.GitHubError(f"branch {branch} is pushed, but the pull request failed: {exc}") from exc
    log(f"pull request #{pr.number}: {pr.url}" + ("" if pr.created else " (already open)"))
    return result, None, pr
