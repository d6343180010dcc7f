"""The canary plan of a model in one environment: the traffic steps and what a canary must show at each.

The plan lives beside the stable deployment, `overlays/<env>/models/<model>/canary-plan.yaml`
(it outlives any one canary), and is not a Kubernetes object: only `mlops canary analyze`
reads it, and `mlops validate` checks it (policies MLOPS030-033, docs/validation.md)::

    steps: [10, 25, 50, 100]     # canary weight in percent, in order; the last is 100
    minRequests: 200             # canary requests per step before it is judged
    minDuration: 10m             # and time spent at the step
    maxDuration: 2h              # still inconclusive after this long at a step: abort
    confidence: 0.95             # of each one-sided bound
    thresholds:                  # canary relative to stable; leave one out to skip it
      errorRate: {maxIncrease: 0.01}   # 5xx share may exceed stable's by at most 1 point
      ttftP95: {maxRatio: 1.25, maxIncrease: 50ms}  # p95 time to first token at most 1.25x
                                       # stable's or 50 ms more, whichever allows more
      itlP95: {maxRatio: 1.2}          # p95 inter-token latency at most 1.2x stable's

A latency's `maxIncrease` is the difference too small to matter: without it, a p95 of a few
milliseconds must stay within the ratio, which the gateway's histogram buckets may be too
coarse to resolve (mlops.canary.canary_stats.compare_p95 then decides on the estimate).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops.canary.canary_stats import min_samples_for_bounds, z_score
from mlops.conventions.deployment import (
    CANARY_BACKEND,
    CANARY_SUFFIX,
    ROUTES_PATH,
    STABLE_BACKEND,
    Deployment,
)
from mlops.conventions.errors import MlopsError
from mlops.rendering import fast_yaml
from mlops.validate.objects.problems import Problem

FILE_NAME = "canary-plan.yaml"

_DURATION = re.compile(r"^([1-9][0-9]*)(s|m|h)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
_LATENCY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s)$")
_FIELDS = {"steps", "minRequests", "minDuration", "maxDuration", "confidence", "thresholds"}
_THRESHOLDS = ("errorRate", "ttftP95", "itlP95")

_HINTS = {
    "MLOPS030": "fix the field's type or name (docs/promotion.md, Canary analysis)",
    "MLOPS031": "list increasing weights between 1 and 100 that end with 100",
    "MLOPS032": (
        "use minRequests >= 20, maxDuration > minDuration, 0.5 < confidence < 1, thresholds > 0 (ratios >= 1)"
    ),
    "MLOPS033": "set the canary route's weight to 0 or one of the plan's steps, stable to the rest",
}


class CanaryPlanError(MlopsError):
    """A canary plan is missing or invalid; the message lists every problem."""


@dataclass(frozen=True)
class LatencyLimit:
    """How much slower than stable's a canary's p95 may be: `ratio` times, or `slack_s` more."""

    ratio: float
    slack_s: float = 0.0


@dataclass(frozen=True)
class CanaryPlan:
    """A validated plan (durations in seconds)."""

    path: str
    steps: tuple[int, ...]
    min_requests: int
    min_duration_s: int
    max_duration_s: int
    confidence: float
    max_error_rate_increase: float | None
    latency: dict[str, LatencyLimit]  # "ttftP95" / "itlP95", the ones the plan sets

    def next_step(self, weight: int) -> int | None:
        """Return the step after `weight`, or None when `weight` is the last one."""
        later = [s for s in self.steps if s > weight]
        return later[0] if later else None


def plan_path(env: str, model: str) -> str:
    """Return the plan's path relative to the repository root."""
    return f"{Deployment(env, model).overlay}/{FILE_NAME}"


def parse_duration(value: Any) -> int | None:
    """Seconds in `30s`, `10m`, `2h` (or a bare integer of seconds); None when it is neither."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else None


def parse_latency(value: Any) -> float | None:
    """Seconds in `50ms`, `0.5s`, `2s`; None when it is not a latency like that."""
    match = _LATENCY.match(value) if isinstance(value, str) else None
    if not match:
        return None
    return float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def check(data: Any, path: str) -> tuple[CanaryPlan | None, list[Problem]]:
    """Return the plan in `data` (loaded YAML of `path`) and every problem with it.

    The plan is None when there is any problem: a half-valid plan must not steer traffic.
    """
    problems: list[Problem] = []

    def problem(field: str, message: str, policy: str) -> None:
        problems.append(Problem(path, "CanaryPlan", field, message, policy, _HINTS[policy]))

    if not isinstance(data, dict):
        problem("", "the plan must be a mapping with steps, minRequests, minDuration, ...", "MLOPS030")
        return None, problems
    for key in sorted(set(data) - _FIELDS):
        problem(key, f"unknown field; allowed: {', '.join(sorted(_FIELDS))}", "MLOPS030")
    for key in sorted(_FIELDS - {"thresholds", "maxDuration", "confidence"} - set(data)):
        problem(key, "required field is missing", "MLOPS030")

    steps = data.get("steps")
    if "steps" in data:
        if (
            not isinstance(steps, list)
            or not steps
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in steps)
        ):
            problem("steps", f"must be a non-empty list of integer weights, got {steps!r}", "MLOPS030")
            steps = None
        elif any(not 1 <= s <= 100 for s in steps) or list(steps) != sorted(set(steps)) or steps[-1] != 100:
            problem(
                "steps", f"{steps} must increase strictly, stay within 1..100 and end with 100", "MLOPS031"
            )

    min_requests = data.get("minRequests")
    if "minRequests" in data:
        if not isinstance(min_requests, int) or isinstance(min_requests, bool):
            problem("minRequests", f"must be an integer, got {min_requests!r}", "MLOPS030")
        elif min_requests < 20:
            # Below ~20 requests no bound is tight enough to tell a 1% from a 10% error rate.
            problem("minRequests", f"{min_requests} is too few to judge a step: use at least 20", "MLOPS032")

    durations: dict[str, int | None] = {}
    for key in ("minDuration", "maxDuration"):
        if key in data:
            durations[key] = parse_duration(data[key])
            if durations[key] is None:
                problem(key, f"must be a duration like 30s, 10m or 2h, got {data[key]!r}", "MLOPS030")
    min_s = durations.get("minDuration")
    max_s = durations.get("maxDuration") if "maxDuration" in data else (min_s or 0) * 12
    if min_s and max_s and max_s <= min_s:
        problem("maxDuration", f"{data.get('maxDuration')!r} must be longer than minDuration", "MLOPS032")

    confidence = _number(data.get("confidence", 0.95))
    if confidence is None:
        problem("confidence", f"must be a number, got {data.get('confidence')!r}", "MLOPS030")
    elif not 0.5 < confidence < 1:
        problem("confidence", f"{confidence} must be between 0.5 and 1 (exclusive)", "MLOPS032")

    error_increase, latency, any_set = None, {}, False
    thresholds = data.get("thresholds", {})
    if not isinstance(thresholds, dict):
        problem("thresholds", "must be a mapping of errorRate, ttftP95, itlP95", "MLOPS030")
        thresholds = {}
    for name in sorted(set(thresholds) - set(_THRESHOLDS)):
        problem(f"thresholds.{name}", f"unknown threshold; allowed: {', '.join(_THRESHOLDS)}", "MLOPS030")
    if "errorRate" in thresholds:
        spec = thresholds["errorRate"]
        value = (
            _number(spec.get("maxIncrease"))
            if isinstance(spec, dict) and set(spec) == {"maxIncrease"}
            else None
        )
        if value is None:
            problem("thresholds.errorRate", f"must be {{maxIncrease: <share>}}, got {spec!r}", "MLOPS030")
        elif not 0 < value < 1:
            problem(
                "thresholds.errorRate.maxIncrease", f"{value} must be a share between 0 and 1", "MLOPS032"
            )
        else:
            error_increase, any_set = value, True
    for name in ("ttftP95", "itlP95"):
        if name not in thresholds:
            continue
        spec = thresholds[name]
        keys = set(spec) if isinstance(spec, dict) else set()
        ratio = _number(spec.get("maxRatio")) if isinstance(spec, dict) else None
        slack = parse_latency(spec.get("maxIncrease", "0ms")) if isinstance(spec, dict) else None
        if ratio is None or slack is None or not keys <= {"maxRatio", "maxIncrease"}:
            problem(f"thresholds.{name}", f"must be {{maxRatio: <number>, maxIncrease: <like 50ms>}} "
                    f"(maxIncrease optional), got {spec!r}", "MLOPS030")  # fmt: skip
        elif ratio < 1:
            problem(f"thresholds.{name}.maxRatio", f"{ratio} must be a ratio >= 1", "MLOPS032")
        else:
            latency[name], any_set = LatencyLimit(ratio, slack), True
    if not problems and not any_set:
        problem("thresholds", "no threshold set: a canary would advance on traffic alone", "MLOPS032")
    if problems or not isinstance(steps, list) or not isinstance(min_requests, int):
        return None, problems
    if latency:
        # Fewer samples than this and the p95's upper bound lies in the +Inf bucket: every
        # latency comparison would stay inconclusive until maxDuration aborts the canary.
        needed = min_samples_for_bounds(0.95, z_score(confidence or 0.95))
        if min_requests < needed:
            problem(
                "minRequests",
                f"{min_requests} requests cannot bound a p95 at confidence {confidence}: use >= {needed}",
                "MLOPS032",
            )
    if problems:
        return None, problems
    assert min_s is not None and max_s is not None and confidence is not None
    return (
        CanaryPlan(
            path=path,
            steps=tuple(steps),
            min_requests=min_requests,
            min_duration_s=min_s,
            max_duration_s=max_s,
            confidence=confidence,
            max_error_rate_increase=error_increase,
            latency=latency,
        ),  # fmt: skip
        [],
    )


def parse(text: str, path: str) -> CanaryPlan:
    """Return the plan in `text`; raise CanaryPlanError listing every problem."""
    try:
        data = fast_yaml.load(text)
    except yaml.YAMLError as exc:
        raise CanaryPlanError(f"{path}: not valid YAML: {exc}") from exc
    plan, problems = check(data, path)
    if plan is None:
        raise CanaryPlanError(f"{path} is not a valid canary plan: " + "; ".join(str(p) for p in problems))
    return plan


def canary_weight_problems(routes: Any, routes_path: str, plans: dict[str, CanaryPlan]) -> Iterable[Problem]:
    """MLOPS033: a model with a plan routes its canary at 0 or at one of the plan's steps."""
    models = routes.get("models") if isinstance(routes, dict) else None
    for model, plan in sorted(plans.items()):
        spec = models.get(model) if isinstance(models, dict) else None
        backends = spec.get("backends") if isinstance(spec, dict) else None
        canary = backends.get(CANARY_BACKEND) if isinstance(backends, dict) else None
        weight = canary.get("weight") if isinstance(canary, dict) else None
        if not isinstance(weight, int):
            continue  # no canary route: nothing is in flight (the gateway validates the shape)
        stable = backends.get(STABLE_BACKEND, {}) if isinstance(backends, dict) else {}
        field = f"models.{model}.backends.{CANARY_BACKEND}.weight"
        if weight != 0 and weight not in plan.steps:
            yield Problem(
                routes_path, "Routes", field,
                f"canary weight {weight} is not a step of {plan.path} ({list(plan.steps)})",
                "MLOPS033", _HINTS["MLOPS033"],
            )  # fmt: skip
        elif isinstance(stable, dict) and stable.get("weight") != 100 - weight:
            yield Problem(
                routes_path, "Routes", f"models.{model}.backends.{STABLE_BACKEND}.weight",
                f"stable weight {stable.get('weight')!r} and canary weight {weight} must add up to 100 "
                f"(weights are percent under {plan.path})",
                "MLOPS033", _HINTS["MLOPS033"],
            )  # fmt: skip


def check_repository(repo: Path, env: str, rendered: Sequence[object] = ()) -> list[Problem]:
    """Every canary plan of `env` in the checkout (MLOPS030-033); an env check of `mlops validate`."""
    problems: list[Problem] = []
    plans: dict[str, CanaryPlan] = {}
    for file in sorted((repo / "overlays" / env / "models").glob(f"*/{FILE_NAME}")):
        rel = str(file.relative_to(repo))
        model = file.parent.name
        if model.endswith(CANARY_SUFFIX):
            stable_plan = plan_path(env, model[: -len(CANARY_SUFFIX)])
            message = f"the plan belongs beside the stable deployment: move it to {stable_plan}"
            problems.append(Problem(rel, "CanaryPlan", "", message, "MLOPS030", _HINTS["MLOPS030"]))
            continue
        try:
            data = fast_yaml.load(file.read_text())
        except yaml.YAMLError as exc:
            problems.append(
                Problem(rel, "CanaryPlan", "", f"not valid YAML: {exc}", "MLOPS030", _HINTS["MLOPS030"])
            )
            continue
        plan, found = check(data, rel)
        problems += found
        if plan is not None:
            plans[model] = plan
    routes_path = ROUTES_PATH.format(env=env)
    routes_file = repo / routes_path
    if plans and routes_file.is_file():
        try:
            routes = fast_yaml.load(routes_file.read_text())
        except yaml.YAMLError:
            routes = None  # the gateway's own check reports a broken routes file
        problems += canary_weight_problems(routes, routes_path, plans)
    return problems
