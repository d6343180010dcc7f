"""Canary analysis: judge a model's canary against stable from the gateway's metrics, and commit the decision.

`analyze` reads, on the remote tip of the branch Argo CD follows, the model's canary plan
(`canary_plan`), the gateway routes and both model version files; it asks Prometheus what the
gateway measured for each backend (`backend="stable"|"canary"`, and the version each serves)
since the current step began, and decides:

- wait: too little traffic or time at this step, or the comparison is still inconclusive;
- start: the canary is at weight 0 with a new version that is not held back: first step;
- advance: every threshold passed: the next step's weight, in `overlays/<env>/gateway/routes.yaml`;
- finish: the last step (100) passed: the canary's version becomes the stable one, the canary
  folder and its route are removed, in one commit;
- abort: a threshold failed (or stayed inconclusive past `maxDuration`): canary weight 0 and
  the canary's version file rolled back to the stable version with the bad one held back, in
  one commit.

The analysis changes nothing in the cluster: Argo CD syncs the commit. Commits carry
`Canary-*` trailers with the numbers; abort goes straight to the branch in every environment
(a rollback must not wait for a review), start/advance/finish open a pull request in prod,
like promote. A step begins at the newest commit that changed the routes or the canary's
version file; the step at 100% has no stable traffic of its own, so it is compared with what
stable served during the step before.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from mlops.canary import canary_plan, canary_stats, prometheus
from mlops.canary.canary_metrics import QUANTILE, judge, measure
from mlops.canary.canary_plan import CanaryPlan
from mlops.conventions.deployment import CANARY_BACKEND, STABLE_BACKEND, Deployment
from mlops.conventions.environments import PR_ENVS, check_env
from mlops.conventions.errors import MlopsError
from mlops.release import github
from mlops.release.write_path import trailers
from mlops.repository import gitops, model_version_file
from mlops.repository.model_version_file import ModelVersionFile


class NoCanaryError(MlopsError):
    """The model's routes have no canary backend: nothing is being rolled out."""


@dataclass
class Decision:
    """What the analysis decided, the numbers it rests on, and the commit that carries it (if any)."""

    action: str
    reason: str
    env: str
    model: str
    canary_version: str
    weight: int
    next_weight: int | None = None
    window_s: int = 0
    checks: list[str] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)
    commit: str | None = None
    pushed_ref: str | None = None
    pull_request: github.PullRequest | None = None


@dataclass
class _State:
    """The repository state the decision is about, read at one commit."""

    plan: CanaryPlan
    routes_text: str
    weight: int
    stable: ModelVersionFile
    canary: ModelVersionFile


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    return y


def _routes_backends(data: Any, model: str, where: str) -> dict[str, Any]:
    try:
        backends = data["models"][model]["backends"]
        backends[STABLE_BACKEND]["weight"]
    except (KeyError, TypeError) as exc:
        raise MlopsError(
            f"{where}: models.{model}.backends.{STABLE_BACKEND} is missing: the model has no route"
        ) from exc
    return backends  # type: ignore[no-any-return]


def routes_with_canary(text: str, model: str, weight: int | None, where: str) -> str:
    """Return the routes with `model`'s canary at `weight`, stable at the rest; None removes the canary."""
    data = _yaml().load(text)
    backends = _routes_backends(data, model, where)
    if weight is None:
        backends.pop(CANARY_BACKEND, None)
        backends[STABLE_BACKEND]["weight"] = 100
    else:
        backends[CANARY_BACKEND]["weight"] = weight
        backends[STABLE_BACKEND]["weight"] = 100 - weight
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()


def _read_state(repo: Path, rev: str, env: str, model: str, where: str) -> _State:
    plan_path = canary_plan.plan_path(env, model)
    plan_text = gitops.show_file(repo, rev, plan_path)
    if plan_text is None:
        raise canary_plan.CanaryPlanError(
            f"{plan_path} does not exist on {where}: add a canary plan for {model!r} in {env} "
            "(docs/promotion.md, Canary analysis)"
        )
    plan = canary_plan.parse(plan_text, plan_path)
    routes_path = Deployment(env, model).routes_file
    routes_text = gitops.show_file(repo, rev, routes_path) or ""
    backends = _routes_backends(_yaml().load(routes_text), model, f"{routes_path} (on {where})")
    canary_route = backends.get(CANARY_BACKEND)
    if not isinstance(canary_route, dict) or not isinstance(canary_route.get("weight"), int):
        raise NoCanaryError(
            f"{routes_path} (on {where}) has no {CANARY_BACKEND!r} backend for {model!r}: "
            "no canary is running (add one: docs/adding-a-model.md, Canary)"
        )
    files = {}
    for canary in (False, True):
        path = Deployment(env, model, canary).version_file
        text = gitops.show_file(repo, rev, path)
        if text is None:
            raise MlopsError(f"{path} does not exist on {where}: the route names a canary with no deployment")
        files[canary] = model_version_file.parse(text, f"{path} (on {where})", model=model)
    return _State(plan, routes_text, int(canary_route["weight"]), files[False], files[True])


def _commit_time(repo: Path, rev: str, path: str, skip: int = 0) -> float | None:
    history = gitops.git(repo, "log", f"-{skip + 1}", "--format=%cI", rev, "--", path).stdout.split()
    return datetime.fromisoformat(history[skip]).timestamp() if len(history) > skip else None


def analyze(
    repo: Path,
    *,
    env: str,
    model: str,
    prometheus_url: str | None = None,
    workflow: str | None = None,
    remote: str = "origin",
    branch: str = "main",
    dry_run: bool = False,
    log: Callable[[str], None] = print,
) -> Decision:
    """Judge `model`'s canary in `env` and commit the decision; the module docstring lists the decisions.

    Args:
        repo: a clone of the GitOps repository with `remote` configured.
        env: the environment (`dev` pushes every decision to `branch`; `prod` opens PRs except for abort).
        model: the model whose canary is judged.
        prometheus_url: Prometheus' base URL (default `$PROMETHEUS_URL`, else the in-cluster service).
        workflow: the Argo workflow running it (trailer `Workflow:`); None means a person.
        remote: the git remote to fetch from and push to.
        branch: the branch Argo CD follows.
        dry_run: decide and print, commit nothing.
        log: where progress lines go.
    """
    check_env(env)
    url = prometheus_url or prometheus.default_url()
    tip = gitops.fetch(repo, remote, branch)
    if tip is None:
        raise gitops.GitError(f"remote {remote!r} has no branch {branch!r}: pass --branch")
    where = f"{remote}/{branch}"
    try:
        state = _read_state(repo, tip, env, model, where)
    except NoCanaryError as exc:
        # The CronWorkflow asks about every model with a plan, most of the time with no canary.
        log(f"{model} in {env}: none: {exc}")
        return Decision("none", str(exc), env, model, "", 0)
    plan, weight, version = state.plan, state.weight, state.canary.version
    decision = Decision("wait", "", env, model, version, weight)

    if weight == 0:
        if version == state.stable.version or version in state.canary.held_back:
            decision.action = "none"
            decision.reason = (
                f"the canary gets no traffic and serves version {version} "
                + ("(held back)" if version in state.canary.held_back else "(the stable version)")
                + ": promote a new canary version with `mlops promote --canary` to start one"
            )
        else:
            decision.action, decision.next_weight = "start", plan.steps[0]
            decision.reason = f"version {version} is new on the canary: route {plan.steps[0]}% to it"
        return _commit(repo, decision, state, tip, workflow, remote, branch, dry_run, log)
    if weight not in plan.steps:
        raise MlopsError(
            f"{Deployment(env, model).routes_file}: canary weight {weight} is not a step of {plan.path} "
            f"({list(plan.steps)}): set it to a step (mlops validate reports this as MLOPS033)"
        )

    routes_path = Deployment(env, model).routes_file
    canary_path = Deployment(env, model, canary=True).version_file
    started = max(
        t for t in (_commit_time(repo, tip, routes_path), _commit_time(repo, tip, canary_path)) if t
    )
    now = time.time()
    window_s = max(1, int(now - started))
    decision.window_s = window_s
    names = list(plan.latency)
    canary = measure(url, model, CANARY_BACKEND, version, window_s, now, names)
    if weight == 100:
        # Stable gets nothing at 100%: its baseline is what it served during the step before.
        before = _commit_time(repo, tip, routes_path, skip=1) or started - window_s
        stable = measure(url, model, STABLE_BACKEND, state.stable.version, max(1, int(started - before)),
                         started, names)  # fmt: skip
        baseline = f"stable in the {int(started - before)} s of the step before"
    else:
        stable = measure(url, model, STABLE_BACKEND, state.stable.version, window_s, now, names)
        baseline = "stable in the same window"
    decision.trailers = {
        "Canary-Step": f"{weight}%",
        "Canary-Window": f"{window_s}s",
        "Canary-Requests": f"canary {canary.requests:.0f}, {baseline} {stable.requests:.0f}",
    }
    decision.checks.append(
        f"window {window_s} s at {weight}%: canary {canary.requests:.0f} requests "
        f"({canary.errors:.0f} errors), {baseline}: {stable.requests:.0f} ({stable.errors:.0f} errors)"
    )
    short = []
    if window_s < plan.min_duration_s:
        short.append(f"{window_s} s of the {plan.min_duration_s} s minimum at this step")
    if canary.requests < plan.min_requests:
        short.append(f"{canary.requests:.0f} of the {plan.min_requests} canary requests needed")
    if stable.requests < plan.min_requests:
        short.append(f"{stable.requests:.0f} of the {plan.min_requests} stable requests needed")
    if short:
        decision.reason = "not enough data yet: " + ", ".join(short)
        return _commit(repo, decision, state, tip, workflow, remote, branch, dry_run, log)

    z = canary_stats.z_score(plan.confidence)
    bounds = {
        name: (
            canary_stats.quantile_bounds(canary.latency[name], QUANTILE, z),
            canary_stats.quantile_bounds(stable.latency[name], QUANTILE, z),
        )
        for name in names
    }
    verdicts, lines, trailers = judge(state.plan, canary, stable, bounds, z, baseline_fixed=weight == 100)
    decision.checks += lines
    decision.trailers |= trailers
    if "fail" in verdicts:
        decision.action, decision.next_weight = "abort", 0
        decision.reason = "the canary is worse than stable beyond the plan's thresholds"
    elif "inconclusive" in verdicts:
        if window_s > plan.max_duration_s:
            decision.action, decision.next_weight = "abort", 0
            decision.reason = (
                f"still inconclusive after {window_s} s, past maxDuration {plan.max_duration_s} s"
            )
        else:
            decision.reason = "inconclusive: waiting for more traffic"
    elif weight == 100:
        decision.action = "finish"
        decision.reason = f"every threshold passed at 100%: version {version} becomes the stable version"
    else:
        decision.action, decision.next_weight = "advance", plan.next_step(weight)
        decision.reason = f"every threshold passed at {weight}%"
    return _commit(repo, decision, state, tip, workflow, remote, branch, dry_run, log)


def _message(decision: Decision, state: _State, workflow: str) -> str:
    d, model, env = decision, decision.model, decision.env
    version = state.canary.version
    extra = {"Deployment": Deployment(env, model, canary=True).name, "Canary_Decision": d.action} | {
        key.replace("-", "_"): value for key, value in d.trailers.items()
    }
    if d.action == "abort":
        held = (
            [*state.canary.held_back, version]
            if version not in state.canary.held_back
            else state.canary.held_back
        )
        subject = f"Abort canary of {model} version {version} in {env}: weight {d.weight}% -> 0%"
        body = (
            f"{d.reason[0].upper()}{d.reason[1:]}. The canary's version file goes back to stable version "
            f"{state.stable.version} and version {version} is held back (data.heldBack): automated "
            "promotes skip it.\n"
        )
        extra |= {"Previous_Version": version, "Rolled_Back_From": version, "Held_Back": ",".join(held)}
        run_id, trailer_version = state.stable.run_id, state.stable.version
    elif d.action == "finish":
        subject = (
            f"Finish canary of {model}: version {version} is stable in {env} (was {state.stable.version})"
        )
        body = f"{d.reason[0].upper()}{d.reason[1:]}. The canary deployment and its route are removed.\n"
        extra |= {"Previous_Version": state.stable.version}
        run_id, trailer_version = state.canary.run_id, version
    else:
        subject = f"Canary of {model} version {version} in {env}: {d.weight}% -> {d.next_weight}%"
        body = f"{d.reason[0].upper()}{d.reason[1:]}.\n"
        run_id, trailer_version = state.canary.run_id, version
    checks = "".join(f"- {line}\n" for line in d.checks)
    return f"{subject}\n\n{body}{checks}\n" + trailers(model, trailer_version, env, run_id, workflow, **extra)


def _changes(repo: Path, decision: Decision, state: _State, base: str) -> dict[str, str | None]:
    env, model = decision.env, decision.model
    routes_path = Deployment(env, model).routes_file
    canary_path = Deployment(env, model, canary=True).version_file
    if decision.action == "finish":
        stable_path = Deployment(env, model).version_file
        held = [v for v in state.stable.held_back if v != state.canary.version]
        text = state.stable.with_version(
            state.canary.version,
            state.canary.weights_uri,
            state.canary.run_id,
            held,
            weights_digest=state.canary.weights_digest,
        )
        folder = canary_path.rsplit("/", 1)[0]
        changes: dict[str, str | None] = dict.fromkeys(gitops.list_files(repo, base, folder))
        changes[stable_path] = text
        changes[routes_path] = routes_with_canary(state.routes_text, model, None, routes_path)
        return changes
    changes = {routes_path: routes_with_canary(state.routes_text, model, decision.next_weight, routes_path)}
    if decision.action == "abort":
        held = list(state.canary.held_back)
        if state.canary.version not in held:
            held.append(state.canary.version)
        changes[canary_path] = state.canary.with_version(
            state.stable.version,
            state.stable.weights_uri,
            state.stable.run_id,
            held,
            weights_digest=state.stable.weights_digest,
        )
    return changes


def _commit(
    repo: Path,
    decision: Decision,
    state: _State,
    tip: str,
    workflow: str | None,
    remote: str,
    branch: str,
    dry_run: bool,
    log: Callable[[str], None],
) -> Decision:
    env, model = decision.env, decision.model
    log(
        f"{model} canary (version {decision.canary_version}) in {env} at {decision.weight}%: "
        f"{decision.action}: {decision.reason}"
    )
    for line in decision.checks:
        log(f"  {line}")
    if decision.action in ("wait", "none") or dry_run:
        return decision
    message = _message(decision, state, workflow or "manual")
    where = f"{remote}/{branch}"

    def build(base: str) -> str | None:
        now = _read_state(repo, base, env, model, where) if base != tip else state
        if (now.weight, now.canary.version, now.stable.version) != (
            state.weight,
            state.canary.version,
            state.stable.version,
        ):
            raise MlopsError(
                f"{model}'s canary changed on {where} while it was analysed (weight {state.weight}% -> "
                f"{now.weight}%, version {state.canary.version} -> {now.canary.version}): nothing was "
                "committed; run the analysis again"
            )
        return gitops.commit_files(repo, base, _changes(repo, decision, now, base), message)

    direct = env not in PR_ENVS or decision.action == "abort"
    if direct:
        result = gitops.commit_and_push(repo, remote, branch, f"refs/heads/{branch}", build)
        decision.commit, decision.pushed_ref = result.commit, branch
        if result.commit and gitops.fast_forward(repo, branch, result.commit):
            log(f"fast-forwarded local {branch} to {result.commit[:12]}")
        log(f"{decision.action}: commit {str(result.commit)[:12]} pushed to {where}; Argo CD syncs it")
        return decision
    target = "stable" if decision.action == "finish" else str(decision.next_weight)
    pr_branch = f"canary/{model}-{decision.canary_version}-{target}-{env}"
    result = gitops.commit_and_push(repo, remote, branch, f"+refs/heads/{pr_branch}", build, attempts=1)
    decision.commit, decision.pushed_ref = result.commit, pr_branch
    log(f"{decision.action}: branch {pr_branch} ({str(result.commit)[:12]}) pushed to {remote}; "
        f"{env} changes when it is merged into {branch}")  # fmt: skip
    token = os.environ.get("GITHUB_TOKEN", "").strip()
    if not token:
        log(f"GITHUB_TOKEN is not set: open a pull request from {pr_branch} into {branch} by hand")
        return decision
    repository = os.environ.get("GITHUB_REPOSITORY") or github.repository_from_remote(
        gitops.remote_url(repo, remote)
    )
    if not repository:
        raise github.GitHubError(
            f"branch {pr_branch} is pushed, but the GitHub repository is unknown: set GITHUB_REPOSITORY"
        )
    title = message.splitlines()[0]
    body = message.split("\n", 2)[2] if message.count("\n") >= 2 else title
    decision.pull_request = github.open_pull_request(
        token=token, repository=repository, head=pr_branch, base=branch, title=title, body=body
    )
    log(f"pull request #{decision.pull_request.number}: {decision.pull_request.url}")
    return decision
