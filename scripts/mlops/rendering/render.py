"""The one render path: find every kustomization of an environment and build them in parallel.

Every command that needs rendered manifests (validate, promote's diff, the tests, the demo)
calls this module; nothing else shells out to kustomize.

    from mlops.rendering.render import render_env, render_kustomization
    for rendered in render_env(repo, "dev"):        # overlay leaves + clusters/dev
        print(rendered.path, rendered.component, len(rendered.documents))
    docs = render_kustomization(repo, "overlays/prod/mlflow")
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops.conventions.environments import ENVS, check_env
from mlops.conventions.errors import MlopsError
from mlops.rendering import build_cache, fast_yaml, kustomize

CLUSTER_COMPONENT = "cluster"
"""The component name of `clusters/<env>`, the root each cluster's Argo CD points at."""

_KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclass(frozen=True)
class Target:
    """One kustomization to build: its folder relative to the repo, its environment and component."""

    path: str
    env: str
    component: str


@dataclass
class RenderedKustomization:
    """The result of building one kustomization.

    Attributes:
        path: the folder relative to the repository root, e.g. `overlays/dev/models/support-chat`.
        env: the environment (`dev`, `prod`).
        component: `mlflow`, `models/support-chat`, ... or `cluster` for `clusters/<env>`.
        documents: the rendered objects, in kustomize's output order.
        error: why the build failed (then `documents` is empty); None on success.
        seconds: how long the build and parse took.
        finished: when it was done (`time.perf_counter()`).
    """

    path: str
    env: str
    component: str
    documents: list[dict[str, Any]] = field(default_factory=list)
    origins: list[str | None] = field(default_factory=list)
    """Per document, the file it came from (`mlops.rendering.build_cache.Built.origins`)."""
    error: str | None = None
    seconds: float = 0.0
    finished: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the kustomization built."""
        return self.error is None


def _is_kustomization_dir(path: Path) -> bool:
    return any((path / name).is_file() for name in _KUSTOMIZATION_FILES)


def _is_component(path: Path) -> bool:
    """Tell whether `path` is a kustomize `Component`: not built alone, only by the overlays using it."""
    for name in _KUSTOMIZATION_FILES:
        file = path / name
        if file.is_file():
            try:
                text = file.read_text()
                # Only a file that says "Component" can be one: most are never parsed here
                # (`components:` is lower case), which matters at a few hundred folders.
                data = fast_yaml.load(text) if "Component" in text else {}
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                return False  # built as a leaf: kustomize's error names it, MLOPS049 gives the line
            return isinstance(data, dict) and data.get("kind") == "Component"
    return False


def overlay_leaves(repo: Path, env: str) -> list[str]:
    """Return the overlay folders of `env` that ApplicationSets point at, relative to the repo.

    A leaf is a folder under `overlays/<env>/` with a kustomization and no kustomization
    in any folder below it; kustomize `Component`s are not leaves.
    """
    root = repo / "overlays" / env
    if not root.is_dir():
        return []
    # One walk for every kustomization file name (a glob per name walked the tree three times).
    names = set(_KUSTOMIZATION_FILES)
    found = sorted(Path(top) for top, _, files in os.walk(root) if names.intersection(files))
    dirs = [d for d in found if not _is_component(d)]
    # One set of every folder above a kustomization: a pairwise test was quadratic in folders
    # (4 s of a one-model-change validation at 100 models).
    above = {parent for d in dirs for parent in d.parents}
    leaves = [d for d in dirs if d not in above]
    return [str(d.relative_to(repo)) for d in leaves]


def targets(repo: Path, env: str) -> list[Target]:
    """Return every kustomization of `env`: the overlay leaves plus `clusters/<env>`."""
    check_env(env)
    found = [
        Target(path=p, env=env, component=str(Path(p).relative_to(Path("overlays") / env)))
        for p in overlay_leaves(repo, env)
    ]
    cluster = Path("clusters") / env
    if _is_kustomization_dir(repo / cluster):
        found.append(Target(path=str(cluster), env=env, component=CLUSTER_COMPONENT))
    return found


def render_target(repo: Path, target: Target) -> RenderedKustomization:
    """Build one target; a failure is returned with `error` set, never raised."""
    start = time.perf_counter()
    result = RenderedKustomization(path=target.path, env=target.env, component=target.component)
    try:
        result.documents, result.origins, _ = build_cache.build(repo / target.path, cwd=repo)
    except MlopsError as exc:
        result.error = str(exc)
    except yaml.YAMLError as exc:
        result.error = f"{target.path}: rendered output is not valid YAML: {exc}"
    result.finished = time.perf_counter()
    result.seconds = result.finished - start
    return result


def default_workers(count: int) -> int:
    """How many kustomize processes to run at once: enough to keep every CPU busy."""
    return max(1, min(count, max(4, 2 * (os.cpu_count() or 1))))


def iter_rendered(
    repo: Path, wanted: Sequence[Target], *, workers: int | None = None
) -> Iterator[RenderedKustomization]:
    """Start building all of `wanted` in parallel and yield each result, in order, as soon as it is done.

    A consumer can check the first kustomization while kustomize still builds the others.
    Failed builds are yielded with `error` set.
    """
    if not wanted:
        return
    with ThreadPoolExecutor(
        max_workers=workers or default_workers(len(wanted)), thread_name_prefix="kustomize"
    ) as pool:
        futures = [pool.submit(render_target, repo, t) for t in wanted]
        for future in futures:
            yield future.result()


def render_targets(
    repo: Path, wanted: Sequence[Target], *, keep_going: bool = False, workers: int | None = None
) -> list[RenderedKustomization]:
    """Build `wanted` in parallel (one kustomize process per folder) and return results in order.

    Raises:
        MlopsError: a build failed and `keep_going` is False (the first failure is raised).
    """
    results = list(iter_rendered(repo, wanted, workers=workers))
    if not keep_going:
        for result in results:
            if result.error:
                raise kustomize.KustomizeError(result.error)
    return results


def render_envs(
    repo: Path, envs: Iterable[str] = ENVS, *, component: str | None = None, keep_going: bool = False
) -> list[RenderedKustomization]:
    """Render every kustomization of each of `envs` in one parallel batch.

    Args:
        repo: the repository root.
        envs: the environments to render.
        component: only this component (`mlflow`, `models/support-chat`, `models` for every
            model, `cluster` for `clusters/<env>`); None for all.
        keep_going: return failed builds with `error` set instead of raising.
    """
    wanted = [t for env in envs for t in targets(repo, env) if _matches(t.component, component)]
    if component and not wanted:
        known = sorted({t.component for env in envs for t in targets(repo, env)})
        raise MlopsError(f"no component {component!r} in {', '.join(envs)}: known are {', '.join(known)}")
    return render_targets(repo, wanted, keep_going=keep_going)


def render_env(
    repo: Path, env: str, *, component: str | None = None, keep_going: bool = False
) -> list[RenderedKustomization]:
    """Render every kustomization of one environment (overlay leaves and `clusters/<env>`)."""
    return render_envs(repo, (env,), component=component, keep_going=keep_going)


def render_kustomization(repo: Path, path: str | Path) -> list[dict[str, Any]]:
    """Build one kustomization folder (absolute, or relative to `repo`) and return its objects."""
    folder = Path(path) if Path(path).is_absolute() else repo / path
    return build_cache.build(folder, cwd=repo).documents


def to_yaml(documents: Iterable[dict[str, Any]]) -> str:
    """Return `documents` as one multi-document YAML stream."""
    return "".join("---\n" + fast_yaml.dump(doc) for doc in documents)


def render_text(repo: Path, env: str, component: str | None = None) -> str:
    """Return the rendered manifests of `env` (or one component) as YAML, one header per folder."""
    parts = []
    for rendered in render_env(repo, env, component=component):
        parts.append(f"# Source: {rendered.path}\n{to_yaml(rendered.documents)}")
    return "".join(parts)


def _matches(component: str, wanted: str | None) -> bool:
    if wanted is None:
        return True
    wanted = wanted.strip("/")
    return component == wanted or component.startswith(wanted + "/")
