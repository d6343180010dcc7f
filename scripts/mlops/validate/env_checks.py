"""Checks over a whole rendered environment: rules that relate several objects (or the repository).

A per-document policy lives in `policies`; a rule that needs to see more than one object
(a GPU pod and the device plugin that makes GPUs schedulable, a ServiceAccount and the IAM
role terraform gives it, an image and the pipeline that builds it) lives here. Each check
is a function `(repo, env, rendered) -> Iterable[Problem]` listed in `CHECKS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from mlops import canary_plan
from mlops.render import RenderedKustomization
from mlops.validate import (
    api_rules,
    boundaries,
    build_tags,
    canary_labels,
    delivery,
    device_plugin,
    fresh_install_env,
    gateway_target,
    image_sources,
    image_users,
    model_versions,
    ownership,
    pod_security,
    reachability,
    references,
    sync_hooks,
    workflow_roles,
)
from mlops.validate.problems import Problem

EnvCheck = Callable[[Path, str, Sequence[RenderedKustomization]], Iterable[Problem]]

CHECKS: list[EnvCheck] = [
    device_plugin.check,
    image_users.check,
    workflow_roles.check,
    sync_hooks.check,
    delivery.check_platform_images,
    delivery.check_lifecycle_keeps_releases,
    delivery.check_caches_are_rewritable,
    delivery.check_kubernetes_version,
    build_tags.check,
    canary_plan.check_repository,
    reachability.check,
    boundaries.check_secret_stores,
    boundaries.check_projects,
    boundaries.check_privileged_namespaces,
    pod_security.check,
    gateway_target.check,
    canary_labels.check,
    api_rules.check_service_ports,
    references.check,
    ownership.check,
    model_versions.check,
    fresh_install_env.check_replicas_owner,
    fresh_install_env.check_metrics_server,
    fresh_install_env.check_eks_scrapes,
    fresh_install_env.check_list_item_defaults,
    image_sources.check,
]
"""Every environment-wide check, run once per environment after all of its kustomizations built."""


def check_env(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> list[Problem]:
    """Return the problems every environment-wide check finds in `env`'s rendered kustomizations."""
    mine = [r for r in rendered if r.env == env]
    return [problem for check in CHECKS for problem in check(repo, env, mine)]
