"""Checks over a whole rendered environment: rules that relate several objects (or the repository).

A per-document policy lives in `policies`; a rule that needs to see more than one object
(a GPU pod and the device plugin that makes GPUs schedulable, a ServiceAccount and the IAM
role terraform gives it, an image and the pipeline that builds it) lives here. Each check
is a function `(repo, env, rendered) -> Iterable[Problem]` listed in `CHECKS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from mlops.canary import canary_plan
from mlops.rendering.render import RenderedKustomization
from mlops.validate.env_rules import (
    build_tags,
    delivery,
    gateway_target,
    image_digests,
    image_sources,
    image_users,
    model_versions,
    ownership,
    references,
)
from mlops.validate.object_rules import api_rules, device_plugin, pod_security, sync_hooks
from mlops.validate.objects.problems import Problem
from mlops.validate.runner import fresh_install_env
from mlops.validate.trust_rules import (
    boundaries,
    canary_labels,
    frontdoor,
    pod_identities,
    reachability,
    workflow_roles,
)

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
    image_digests.check,
    pod_identities.check,
    frontdoor.check,
]
"""Every environment-wide check, run once per environment after all of its kustomizations built."""

WHOLE_TREE: frozenset[EnvCheck] = frozenset(
    {
        device_plugin.check,
        reachability.check,
        boundaries.check_secret_stores,
        pod_security.check,
        gateway_target.check,
        references.check,
        ownership.check,
        fresh_install_env.check_metrics_server,
    }
)
"""Checks that report what is *missing* from the environment (a reference's target, a device plugin,
a namespace's policy). With a kustomization that did not build, its objects are missing too: each
of its objects would be reported again, once per reference, so these wait until every build works."""


def check_env(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> list[Problem]:
    """Return the problems every environment-wide check finds in `env`'s rendered kustomizations."""
    mine = [r for r in rendered if r.env == env]
    broken = any(r.error for r in mine)
    return [
        problem
        for check in CHECKS
        if not (broken and check in WHOLE_TREE)
        for problem in check(repo, env, mine)
    ]


def unchecked_notice(env: str, rendered: Sequence[RenderedKustomization]) -> str | None:
    """The notice that `env`'s whole-tree checks waited for its failed builds, or None when all built."""
    failed = sorted(r.path for r in rendered if r.env == env and r.error)
    if not failed:
        return None
    names = ", ".join(sorted(f"{c.__module__.rsplit('.', 1)[-1]}.{c.__name__}" for c in WHOLE_TREE))
    return (
        f"notice: {env}: {len(failed)} kustomization{'' if len(failed) == 1 else 's'} did not build "
        f"({', '.join(failed)}): the checks of references between objects ({names}) run once every "
        "build of the environment works"
    )
