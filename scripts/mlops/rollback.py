"""Roll a deployment back to an earlier version in its git history, holding the current one back.

The order of side effects is promote's (mlops.promotion): checks, the commit off the remote
tip, the push (or, in prod, the pull request), then the MLflow alias.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlops import gitops, model_version_file, write_inputs
from mlops.deployment import Deployment
from mlops.errors import MlopsError
from mlops.model_version_file import ModelVersionFile
from mlops.registry import Registry
from mlops.write_path import (
    DeploymentChange,
    Write,
    check_inputs,
    deliver,
    read_at,
    require_version_file,
    trailers,
)


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
) -> DeploymentChange:
    """Roll `model` in `env` (its canary with `canary`) back to an earlier version in git (or `to`).

    The target is the newest version in the file's history, other than the current one, that
    is not held back; the version it moves away from is held back. So repeated rollbacks
    walk further back, and a held-back version returns only when a person promotes it
    (`to` refuses a held-back version too). docs/promotion.md, "Rollback", says the same.
    """
    check_inputs(env, model, remote, branch, workflow)
    if to is not None:
        write_inputs.check_version(to, "--to version")
    deployment = Deployment(env, model, canary)
    require_version_file(repo, deployment)
    gitops.require_clean(repo)
    gitops.require_writable(repo)
    registry = registry or Registry()
    path, where_env, flag = deployment.version_file, deployment.label, deployment.cli_flag
    target = gitops.RemoteBranch(repo, remote, branch)
    tip = target.tip()
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
    mv = registry.model_version(model, goal.version)  # the alias needs it, so check before any change
    run_id = goal.run_id or mv.run_id
    workflow_name = workflow or "manual"
    seen: dict[str, ModelVersionFile] = {}

    def build(base: str) -> str | None:
        now = read_at(repo, base, deployment, target.where)
        seen["current"] = now
        if now.version == goal.version:
            return None
        held = [v for v in now.held_back if v != goal.version]
        if now.version not in held:
            held.append(now.version)
        text = now.with_version(goal.version, goal.weights_uri, run_id, held)
        message = (
            f"Roll back {model} to version {goal.version} in {where_env} (was {now.version})\n\n"
            f"Version {now.version} is held back (data.{model_version_file.HELD_BACK_KEY}): automated "
            f"promotes will not bring it back until a person promotes it explicitly.\n"
            f"Weights: {goal.weights_uri}\n\n"
            + trailers(model, goal.version, env, run_id, workflow_name,
                        Previous_Version=now.version, Rolled_Back_From=now.version, Held_Back=",".join(held),
                        **({"Deployment": deployment.name} if canary else {}))
        )  # fmt: skip
        return gitops.commit_file(repo, base, path, text, message)

    title = f"Roll back {model} to version {goal.version} in {where_env}"
    write = Write(deployment, target, "rollback", registry, log)
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
        log(
            f"rolled back {model} {old} -> {goal.version} in {where_env}: commit {result.commit[:12]} "
            f"(version {old} held back)"
        )
    if alias:
        log(f"MLflow alias {deployment.alias!r} of {model!r} -> version {alias}")
    return outcome
