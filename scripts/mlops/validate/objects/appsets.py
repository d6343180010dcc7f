"""ApplicationSet coverage: what the ApplicationSets generate exists and renders, and reaches every overlay.

Each cluster's Argo CD sees only its own cluster, so the ApplicationSets rendered for
`clusters/<env>` are evaluated against one cluster: name `<env>`, label `env=<env>` and the
labels/annotations terraform writes on the Argo CD cluster secret (`CLUSTER_METADATA`). Supported
generators: `clusters`, `git` (`directories`, `files`), `list`, `matrix` (two children, the
second may use the first's parameters) and `merge` (evaluated as its first child). Any other
generator is reported as a problem, never skipped.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from mlops.rendering import fast_yaml
from mlops.rendering.render import RenderedKustomization, overlay_leaves
from mlops.validate.objects import gotemplate
from mlops.validate.objects.problems import Problem, resource_name
from mlops.validate.objects.selectors import selector_matches
from mlops.validate.objects.violations import HINTS

PLATFORM_REPO_ANNOTATION = "platform_repo_url"
"""Cluster-secret annotation with this repository's URL: sources with that repoURL are checked here."""

_TFVARS_ANNOTATIONS = (
    "platform_repo_url",
    "platform_repo_revision",
    "aws_account_id",
    "aws_region",
    "cluster_name",
)
_TFVAR_LINE = re.compile(r'^\s*(\w+)\s*=\s*"([^"]*)"', re.M)


class _Annotations(dict):  # type: ignore[type-arg]
    """Cluster annotations: terraform writes more facts (role ARNs, bucket names) than validation knows.

    A key not read from the tfvars yields a visible placeholder, so a template that uses it
    still renders; paths and names never depend on those facts.
    """

    def __missing__(self, key: str) -> str:
        return f"<annotation {key}>"


def cluster_params(repo: Path, env: str) -> dict[str, Any]:
    """Return the parameters the `clusters` generator yields for the cluster of `env`.

    The label `env=<env>` and the annotations terraform writes on the Argo CD cluster secret,
    with values from `terraform/envs/<env>/terraform.tfvars` where it sets them.
    """
    annotations = _Annotations(cluster_name=f"mlops-{env}", platform_repo_url=f"file://{repo}")
    tfvars = repo / "terraform" / "envs" / env / "terraform.tfvars"
    if tfvars.is_file():
        values = dict(_TFVAR_LINE.findall(tfvars.read_text()))
        annotations.update({k: values[k] for k in _TFVARS_ANNOTATIONS if k in values})
    return {
        "name": "in-cluster",
        "nameNormalized": "in-cluster",
        "server": "https://kubernetes.default.svc",
        "metadata": {
            "labels": {"env": env, "argocd.argoproj.io/secret-type": "cluster"},
            "annotations": annotations,
        },
    }


class _GeneratorError(ValueError):
    pass


def check_coverage(
    repo: Path, envs: Sequence[str], rendered: Sequence[RenderedKustomization]
) -> list[Problem]:
    """Return coverage problems of every environment (MLOPS010, MLOPS011)."""
    problems: list[Problem] = []
    by_path = {r.path: r for r in rendered}
    for env in envs:
        reached: set[str] = set()
        names: dict[str, str] = {}  # Application name -> who makes it, for MLOPS012
        platform_url = _platform_url(repo, env)
        for result in rendered:
            if result.env != env:
                continue
            for doc in result.documents:
                if not isinstance(doc, dict) or not str(doc.get("apiVersion", "")).startswith("argoproj.io/"):
                    continue
                if doc.get("kind") == "ApplicationSet":
                    problems.extend(_check_appset(repo, env, result.path, doc, by_path, reached, names))
                elif doc.get("kind") == "Application":
                    problems.extend(
                        _claim(names, str((doc.get("metadata") or {}).get("name")), result.path, doc)
                    )
                    for _field, path in _source_paths(doc.get("spec") or {}, ["spec"], platform_url):
                        reached.add(_normal(path))
        root = by_path.get(str(Path("clusters") / env))
        if root is not None and root.error:
            continue  # its ApplicationSets are unknown: "not reached" would be said of every overlay
        for leaf in overlay_leaves(repo, env):
            if leaf not in reached:
                component = str(Path(leaf).relative_to(Path("overlays") / env))
                problems.append(
                    Problem(
                        leaf,
                        f"Kustomization/{component}",
                        "path",
                        f"overlay is not reached by any ApplicationSet of clusters/{env}",
                        "MLOPS011",
                        HINTS["MLOPS011"],
                    )
                )
    return problems


def _check_appset(
    repo: Path,
    env: str,
    file: str,
    doc: dict[str, Any],
    by_path: dict[str, RenderedKustomization],
    reached: set[str],
    names: dict[str, str],
) -> list[Problem]:
    spec = doc.get("spec") or {}
    name = resource_name(doc)
    problems: list[Problem] = []

    def problem(field: str, message: str, policy: str = "MLOPS010") -> None:
        problems.append(Problem(file, name, field, message, policy, HINTS[policy]))

    if not spec.get("goTemplate"):
        problem("spec.goTemplate", "only goTemplate: true ApplicationSets can be evaluated; set it")
        return problems
    try:
        param_sets = _generate(repo, env, spec.get("generators") or [], "spec.generators")
    except _GeneratorError as exc:
        problem(*str(exc).split(": ", 1))
        return problems
    template = spec.get("template") or {}
    if spec.get("templatePatch"):
        problem("spec.templatePatch", "templatePatch cannot be evaluated here; express it in the template")
    for params in param_sets:
        try:
            app = gotemplate.render_object(template, params)
        except gotemplate.TemplateError as exc:
            problem("spec.template", f"cannot evaluate the template: {exc}")
            return problems
        app_name = (app.get("metadata") or {}).get("name", "?")
        problems.extend(_claim(names, app_name, file, doc))
        sources = _source_paths(app.get("spec") or {}, ["spec", "template", "spec"], _platform_url(repo, env))
        for where, path in sources:
            normal = _normal(path)
            reached.add(normal)
            target = by_path.get(normal)
            if not (repo / normal).is_dir():
                problem(where, f'generated Application "{app_name}" points at {normal}: no such folder')
            elif target is not None:
                # Built with the environment: a failed build is reported once, with kustomize's
                # message, on the folder itself; a second line here would add nothing to fix.
                continue
            elif not _renders(repo, normal):
                problem(
                    where,
                    f'generated Application "{app_name}" points at {normal}: not a kustomization that builds',
                )
    return problems


def _claim(names: dict[str, str], app_name: str, file: str, doc: dict[str, Any]) -> list[Problem]:
    """Record that `doc` makes Application `app_name`; a name made twice in one cluster is MLOPS012."""
    owner = f"{file}: {resource_name(doc)}"
    first = names.setdefault(app_name, owner)
    if first is owner:
        return []
    return [
        Problem(
            file,
            resource_name(doc),
            "spec.template.metadata.name" if doc.get("kind") == "ApplicationSet" else "metadata.name",
            f'Application "{app_name}" is also generated by {first.split(": ", 1)[1]}; '
            "Argo CD keeps only one of them",
            "MLOPS012",
            HINTS["MLOPS012"],
        )
    ]


def _renders(repo: Path, path: str) -> bool:
    from mlops.conventions.errors import MlopsError
    from mlops.rendering import kustomize

    try:
        kustomize.build(repo / path, cwd=repo)
    except MlopsError:
        return False
    return True


def _platform_url(repo: Path, env: str) -> str:
    return _same_repo(cluster_params(repo, env)["metadata"]["annotations"][PLATFORM_REPO_ANNOTATION])


def _same_repo(url: str) -> str:
    return url.strip().rstrip("/").removesuffix(".git").lower()


def _source_paths(spec: dict[str, Any], prefix: list[str], platform_url: str) -> list[tuple[str, str]]:
    """(field, path) of each source in this repository; other repositories and Helm charts are not here."""
    found = []
    sources = [("source", spec.get("source"))]
    sources += [(f"sources[{i}]", src) for i, src in enumerate(spec.get("sources") or [])]
    for name, src in sources:
        if not isinstance(src, dict) or src.get("path") is None or src.get("chart"):
            continue
        if _same_repo(str(src.get("repoURL", ""))) != platform_url:
            continue
        found.append((".".join([*prefix, name, "path"]), str(src["path"])))
    return found


def _normal(path: str) -> str:
    return str(Path(path.strip("/") or "."))


def _generate(repo: Path, env: str, generators: list[Any], where: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, generator in enumerate(generators):
        out.extend(_one(repo, env, generator, f"{where}[{i}]", {}))
    return out


def _one(
    repo: Path, env: str, generator: dict[str, Any], where: str, outer: dict[str, Any]
) -> list[dict[str, Any]]:
    if not isinstance(generator, dict) or len([k for k in generator if k != "selector"]) != 1:
        raise _GeneratorError(f"{where}: a generator has exactly one type")
    kind = next(k for k in generator if k != "selector")
    body = generator[kind] or {}
    try:
        if kind == "clusters":
            params = cluster_params(repo, env)
            if not selector_matches(body.get("selector") or {}, params["metadata"]["labels"]):
                return []
            values = gotemplate.render_object(body.get("values") or {}, {**outer, **params})
            return [{**outer, **params, "values": values}]
        if kind == "list":
            return [{**outer, **element} for element in body.get("elements") or []]
        if kind == "git":
            return [{**outer, **p} for p in _git(repo, gotemplate.render_object(body, outer), where)]
        if kind in ("matrix", "merge"):
            children = body.get("generators") or []
            if len(children) != 2:
                raise _GeneratorError(f"{where}.{kind}.generators: needs exactly two generators")
            first = _one(repo, env, children[0], f"{where}.{kind}.generators[0]", outer)
            if kind == "merge":
                return first
            return [
                combined
                for params in first
                for combined in _one(repo, env, children[1], f"{where}.{kind}.generators[1]", params)
            ]
    except gotemplate.TemplateError as exc:
        raise _GeneratorError(f"{where}.{kind}: cannot evaluate: {exc}") from exc
    raise _GeneratorError(f"{where}.{kind}: generator type {kind!r} cannot be evaluated offline")


def _git(repo: Path, body: dict[str, Any], where: str) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    prefix = body.get("pathParamPrefix")
    if body.get("directories"):
        include = [d["path"] for d in body["directories"] if not d.get("exclude")]
        exclude = [d["path"] for d in body["directories"] if d.get("exclude")]
        dirs = sorted(
            {
                str(p.relative_to(repo))
                for pattern in include
                for p in repo.glob(pattern.strip("/"))
                if p.is_dir() and not any(part.startswith(".") for part in p.relative_to(repo).parts)
            }
        )
        for d in dirs:
            if any(_glob_match(d, pattern.strip("/")) for pattern in exclude):
                continue
            params.append(_path_params(d, prefix))
    elif body.get("files"):
        for pattern in [f["path"] for f in body["files"]]:
            for file in sorted(repo.glob(pattern.strip("/"))):
                try:
                    data = fast_yaml.load(file.read_text()) or {}
                except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                    # The file and line are MLOPS049's (mlops.validate.objects.yaml_files); here, what it
                    # stops.
                    raise _GeneratorError(
                        f"{where}.git.files: {file.relative_to(repo)} does not read as YAML"
                    ) from exc
                params.append({**data, **_path_params(str(file.parent.relative_to(repo)), prefix)})
    else:
        raise _GeneratorError(f"{where}.git: needs directories or files")
    return params


def _glob_match(path: str, pattern: str) -> bool:
    """Argo CD's directory globs: `*` stays within one folder, `**` crosses folders."""
    regex = re.escape(pattern).replace(r"\*\*", "\0").replace(r"\*", "[^/]*").replace("\0", ".*")
    return re.fullmatch(regex, path) is not None or fnmatch.fnmatch(path, pattern) and "/" not in pattern


def _path_params(path: str, prefix: str | None) -> dict[str, Any]:
    segments = path.split("/")
    basename = segments[-1]
    values = {
        "path": path,
        "basename": basename,
        "basenameNormalized": re.sub(r"[^a-z0-9-]", "-", basename.lower()),
        "filename": basename,
        "segments": segments,
    }
    return {prefix: {"path": values}} if prefix else {"path": values}


def generated_applications(
    repo: Path, env: str, rendered: Sequence[RenderedKustomization]
) -> list[tuple[str, dict[str, Any]]]:
    """(file, Application) for every Application `env`'s cluster gets: written out or generated.

    ApplicationSets are evaluated like `check_coverage` does; one that cannot be evaluated
    yields nothing here (coverage reports it as MLOPS010).
    """
    apps: list[tuple[str, dict[str, Any]]] = []
    for result in rendered:
        if result.env != env:
            continue
        for doc in result.documents:
            if not isinstance(doc, dict) or not str(doc.get("apiVersion", "")).startswith("argoproj.io/"):
                continue
            if doc.get("kind") == "Application":
                apps.append((result.path, doc))
            elif doc.get("kind") == "ApplicationSet" and (doc.get("spec") or {}).get("goTemplate"):
                spec = doc["spec"]
                try:
                    params = _generate(repo, env, spec.get("generators") or [], "spec.generators")
                    apps.extend(
                        (result.path, gotemplate.render_object(spec.get("template") or {}, p)) for p in params
                    )
                except (_GeneratorError, gotemplate.TemplateError):
                    continue
    return apps


def helm_charts(app: dict[str, Any]) -> list[str]:
    """Return the Helm chart names an Application installs (its `source` and `sources`)."""
    spec = app.get("spec") or {}
    sources = [spec.get("source"), *(spec.get("sources") or [])]
    return [str(s["chart"]) for s in sources if isinstance(s, dict) and s.get("chart")]
