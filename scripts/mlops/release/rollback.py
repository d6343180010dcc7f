"""Roll a deployment back to an earlier version in its git history, holding the current one back.

The order of side effects is promote's (mlops.release.promotion): checks, the commit off the remote
tip, the push (or, in prod, the pull request), then the MLflow alias.

Going back is a git change: every value the version file gets (`version`, `weightsUri`,
`weightsDigest`, `mlflowRun`) comes from the state of the file that last deployed the target
version, so they agree with each other. One exception: a version git only named in bootstrap
mode (`weightsDigest: none`, never served) takes the trainer's `weights_digest` tag from the
registry, and without the registry the rollback is refused (the weights fetch would refuse it).
The registry is asked only to confirm: when it answers, the run it
records for that version must be the one git names, or the rollback refuses; when it cannot
answer (`MLFLOW_TRACKING_URI` unset, the server down) the rollback still commits, says what
it could not check, and leaves the alias to the deployment's Sync hook.

A canary's rollback also takes its traffic away: the canary backend in the gateway routes
goes to weight 0 (stable 100) in the same commit, so the analysis stops judging it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlops.conventions import write_inputs
from mlops.conventions.deployment import CANARY_BACKEND, Deployment
from mlops.conventions.errors import MlopsError
from mlops.release.canary_analysis import routes_with_canary
from mlops.release.registry import Registry, RegistryUnavailableError
from mlops.release.write_path import (
    DeploymentChange,
    Write,
    check_inputs,
    deliver,
    pr_branch,
    read_at,
    require_version_file,
    trailers,
)
from mlops.rendering import fast_yaml
from mlops.repository import gitops, model_version_file
from mlops.repository.model_version_file import ModelVersionFile


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
    emergency: str | None = None,
    propose: str | None = None,
    registry: Registry | None = None,
    log: Callable[[str], None] = print,
) -> DeploymentChange:
    """Roll `model` in `env` (its canary with `canary`) back to an earlier version in git (or `to`).

    The target is the newest version in the file's history, other than the current one, that
    is not held back; the version it moves away from is held back. So repeated rollbacks
    walk further back, and a held-back version returns only when a person promotes it
    (`to` refuses a held-back version too). docs/promotion.md, "Rollback", says the same.

    Args:
        repo: a clone of the GitOps repository with `remote` configured.
        env: the environment.
        model: the model.
        to: the version to go back to (default: the newest earlier one not held back).
        workflow: the Argo workflow that asked for it (trailer `Workflow:`); None means a person.
        remote: the git remote to fetch from and push to.
        branch: the branch Argo CD follows.
        canary: roll back the canary deployment (and take its traffic away).
        emergency: the reason to push straight to `branch` where the environment otherwise
            goes through a pull request (prod); recorded as trailer `Emergency:`.
        propose: push to this new branch and open a pull request into `branch` instead.
        registry: the MLflow registry (default: `MLFLOW_TRACKING_URI`); when it cannot be
            reached the rollback goes ahead without it (module docstring).
        log: where progress lines go.
    """
    check_inputs(env, model, remote, branch, workflow, propose)
    if to is not None:
        write_inputs.check_version(to, "--to version")
    if emergency is not None:
        write_inputs.check_trailer_value(emergency, "--emergency reason")
        if not emergency.strip():
            raise MlopsError("--emergency needs a reason (it becomes the commit's Emergency: trailer)")
        if propose is not None:
            raise MlopsError(
                "--emergency pushes straight to the branch, --propose opens a pull request: pick one"
            )
    deployment = Deployment(env, model, canary)
    gitops.require_clean(repo)
    gitops.require_writable(repo)
    unavailable: str | None = None
    if registry is None:
        try:
            registry = Registry()  # a malformed MLFLOW_TRACKING_URI is a bad input: refused here
        except RegistryUnavailableError as exc:
            unavailable = str(exc)
    path, where_env, flag = deployment.version_file, deployment.label, deployment.cli_flag
    target = gitops.RemoteBranch(repo, remote, branch)
    tip = require_version_file(target, deployment)
    current = read_at(repo, tip, deployment, target.where)
    deployed: dict[str, ModelVersionFile] = {}  # version -> the newest file state that deployed it
    for entry in gitops.file_history(repo, tip, path):
        if entry.text is None:
            continue
        try:
            state = model_version_file.parse(entry.text, f"{path} at {entry.sha[:12]}", model=model)
        except MlopsError:
            continue  # a broken state in history was never a version that ran
        deployed.setdefault(state.version, state)
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
        goal = deployed[to]
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
        goal = earlier[0]
    registry, unchecked = _registry_check(registry, unavailable, model, goal, path)
    if unchecked:
        log(f"warning: {unchecked}")
    digest, digest_from = _weights_digest(registry, model, goal, path, f"--env {env} --model {model}{flag}")
    run_id = goal.run_id if registry is None else goal.run_id or registry.run_of(model, goal.version)
    workflow_name = workflow or "manual"
    seen: dict[str, ModelVersionFile] = {}
    extra = {
        **({"Deployment": deployment.name} if canary else {}),
        **({"Emergency": emergency.strip()} if emergency is not None else {}),
    }

    def build(base: str) -> str | None:
        now = read_at(repo, base, deployment, target.where)
        seen["current"] = now
        if now.version == goal.version:
            return None
        held = [v for v in now.held_back if v != goal.version]
        if now.version not in held:
            held.append(now.version)
        changes: dict[str, str | None] = {
            path: now.with_version(goal.version, goal.weights_uri, run_id, held, weights_digest=digest)
        }
        routes = _routes_without_canary_traffic(repo, base, deployment, target.where)
        if routes is not None:
            changes[deployment.routes_file] = routes
        message = (
            f"Roll back {model} to version {goal.version} in {where_env} (was {now.version})\n\n"
            f"Version {now.version} is held back (data.{model_version_file.HELD_BACK_KEY}): automated "
            f"promotes will not bring it back until a person promotes it explicitly.\n"
            + ("The canary's route goes to weight 0 (stable 100) so the analysis stops judging it.\n"
               if routes is not None else "")
            + (f"Not checked against the MLflow registry: {unchecked}\n" if unchecked else "")
            + f"Weights: {goal.weights_uri}\n"
            + f"Weights digest: {digest} ({digest_from})\n\n"
            + trailers(model, goal.version, env, run_id, workflow_name,
                        Previous_Version=now.version, Rolled_Back_From=now.version, Held_Back=",".join(held),
                        **extra)
        )  # fmt: skip
        return gitops.commit_files(repo, base, changes, message)

    title = f"Roll back {model} to version {goal.version} in {where_env}"
    write = Write(
        deployment, target, "rollback", registry, log, propose=propose, direct=emergency is not None
    )
    result, alias, pr = deliver(write, goal.version, build, title)
    old = seen["current"].version
    outcome = DeploymentChange(env=env, model=model, old_version=old, new_version=goal.version, canary=canary,
                      commit=result.commit, attempts=result.attempts, alias=alias,
                      pull_request=pr)  # fmt: skip
    if result.commit is None:
        log(f"{model} is already at version {goal.version} in {where_env}: nothing to commit")
        return outcome
    if result.existing:
        log(f"rolling {model} back to {goal.version} in {where_env} is already proposed: nothing changed")
    else:
        where = (
            f"{remote} branch {propose or pr_branch('rollback', deployment, goal.version)}"
            if write.through_pull_request
            else target.where
            + (" (emergency: no pull request)" if emergency and deployment.through_pull_request else "")
        )
        log(
            f"rolled back {model} {old} -> {goal.version} in {where_env}: commit {result.commit[:12]} "
            f"pushed to {where} (version {old} held back)"
        )
    if alias:
        log(f"MLflow alias {deployment.alias!r} of {model!r} -> version {alias}")
    return outcome


def _weights_digest(
    registry: Registry | None, model: str, goal: ModelVersionFile, path: str, flags: str
) -> tuple[str, str]:
    """Return the digest the rollback writes and where it comes from.

    Git's state of the version names it, unless that state predates digests or named the
    version in bootstrap mode (`none`: never served); then the trainer's tag in the registry
    does. With neither, the weights fetch would refuse the version, so the rollback is refused.
    """
    if not model_version_file.weights_digest_problem(goal.weights_digest, bootstrapping=False):
        return str(goal.weights_digest), f"as git recorded it for version {goal.version}"
    recorded = registry.weights_digest(model, goal.version) if registry is not None else None
    if recorded is not None:
        return recorded, "the trainer's tag in the MLflow registry; git's state of the version had none"
    why = (
        "was never served (the folder named it in bootstrap mode, before its first promote)"
        if goal.weights_digest == model_version_file.BOOTSTRAP_DIGEST
        else "was written before promote recorded the trainer's weights digest"
    )
    registry_says = "holds no weights_digest for it" if registry is not None else "is unreachable"
    raise MlopsError(
        f"version {goal.version} of {model!r} {why}: the state of {path} that names it has "
        f"data.{model_version_file.WEIGHTS_DIGEST_KEY} {goal.weights_digest!r}, which the weights fetch "
        f"refuses, and the MLflow registry {registry_says}; "
        f"bring it back with `mlops promote {flags} --version {goal.version}` once the registry has it"
    )


def _registry_check(
    registry: Registry | None, unavailable: str | None, model: str, goal: ModelVersionFile, path: str
) -> tuple[Registry | None, str | None]:
    """Confirm `goal` against the registry; return it (None when unreachable) and what went unchecked.

    Raises when the registry answers and disagrees: the version is not registered, or its
    run is not the `mlflowRun` git recorded for it (the two would then describe different
    weights, and the alias would name something git does not serve).
    """
    if goal.run_id:
        # a run id from history reaches the commit and this check's message: one line or nothing
        write_inputs.check_trailer_value(goal.run_id, f"{goal.path}: data.{model_version_file.RUN_KEY}")
    try:
        if registry is None:
            raise RegistryUnavailableError(unavailable or "no MLflow registry")
        run = registry.run_of(model, goal.version)
    except RegistryUnavailableError as exc:
        return None, (
            f"{exc} (version {goal.version} and its run were taken from git only; the MLflow alias is "
            "left to the deployment's Sync hook)"
        )
    if goal.run_id and run and goal.run_id != run:
        raise MlopsError(
            f"{goal.path}: data.{model_version_file.RUN_KEY} of version {goal.version} is {goal.run_id} in "
            f"git, but the MLflow registry at {registry.uri} says version {goal.version} of {model!r} comes "
            f"from run {run}: git and the registry disagree about what that version is, so nothing was "
            f"rolled back; find out which is right, then fix {path} or roll back --to another version"
        )
    return registry, None


def _routes_without_canary_traffic(repo: Path, rev: str, deployment: Deployment, where: str) -> str | None:
    """Return the routes with `deployment`'s canary at weight 0, or None when that changes nothing.

    Only a canary rollback touches the routes: it takes the canary's traffic away so the
    analysis (which judges a canary with weight above 0) leaves it alone, as an abort does.
    """
    if not deployment.canary:
        return None
    routes_path = deployment.routes_file
    text = gitops.show_file(repo, rev, routes_path)
    if text is None:
        return None
    backends = ((fast_yaml.load(text) or {}).get("models") or {}).get(deployment.model) or {}
    route = (backends.get("backends") or {}).get(CANARY_BACKEND)
    if not isinstance(route, dict) or route.get("weight") == 0:
        return None
    return routes_with_canary(text, deployment.model, 0, f"{routes_path} (on {where})")
