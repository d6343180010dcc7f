"""Delivery checks over the repository: images that exist, registries that keep them, a supported EKS.

| id       | rule                                                                             |
|----------|----------------------------------------------------------------------------------|
| MLOPS023 | every `mlops/<image>` a manifest runs is one `.github/workflows/images.yaml`     |
|          | builds, from this environment's registry, tagged as it tags (40-hex commit or    |
|          | `X.Y.Z` release) or pinned by digest; prod: a digest or a release tag            |
| MLOPS027 | ECR lifecycle rules count release tags (`X.Y.Z`) apart from commit and cache tags |
| MLOPS028 | build caches go to a repository terraform creates with mutable tags              |
| MLOPS029 | each environment's `kubernetes_version` is in EKS standard support today and is  |
|          | the version whose schemas `mlops validate` checks core kinds against             |

Each check is registered in `env_checks.CHECKS`; a check about the repository (not one
environment) reports the same lines for every environment, and the engine keeps one.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

import mlops
from mlops.conventions.errors import MlopsError
from mlops.rendering import fast_yaml
from mlops.rendering.render import RenderedKustomization
from mlops.rendering.terraform_hcl import parse, parse_text
from mlops.validate.objects.appsets import cluster_params
from mlops.validate.objects.problems import Problem, field_path, resource_name
from mlops.validate.objects.violations import HINTS
from mlops.validate.objects.yaml_files import yaml_error_position
from mlops.validate.schema_checks.schemas import KUBERNETES_VERSION

IMAGES_WORKFLOW = ".github/workflows/images.yaml"
ECR_MODULE = "terraform/modules/ecr"

EKS_STANDARD_SUPPORT_END = {
    "1.32": dt.date(2026, 3, 23),
    "1.33": dt.date(2026, 7, 29),
    "1.34": dt.date(2026, 12, 2),
    "1.35": dt.date(2027, 3, 27),
}
"""End of standard support per EKS version: the EKS Kubernetes version calendar
(docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html; 14 months after release).
Add a row when a new version is released; a version without a row is reported."""

_PLATFORM_IMAGE = re.compile(
    r"^(?:(?P<registry>[^/]+)/)?mlops/(?P<name>[^:@/]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
_COMMIT_TAG = re.compile(r"^[0-9a-f]{40}$")
_RELEASE_TAG = re.compile(r"^\d+\.\d+\.\d+$")
# A workflow's tag set at run time: `wf-{{...}}` for what it builds itself (MLOPS110), or a
# bare `{{...}}` for a tag another step resolved.
_ARGO_EXPRESSION = re.compile(r"^(?:wf-)?\{\{[^{}]+\}\}$")
# Samples of the tags each kind of push writes, to see which lifecycle rule takes them.
_SAMPLE_TAGS = {
    "release": "1.2.3",
    "commit": "0123456789abcdef0123456789abcdef01234567",
    "cache": "buildcache",
}


def _problem(file: str, resource: str, field: str, message: str, policy_id: str) -> Problem:
    return Problem(file, resource, field, message, policy_id, HINTS[policy_id])


# --- MLOPS023: images that exist ----------------------------------------------------------


def built_images(repo: Path) -> set[str]:
    """Return the images the images workflow's build matrix pushes as `mlops/<image>` (none without it)."""
    path = repo / IMAGES_WORKFLOW
    try:
        workflow = (fast_yaml.load(path.read_text()) if path.is_file() else None) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        # Without the build matrix no image can be judged: one clear error, not a traceback.
        line, column, message = (
            yaml_error_position(exc) if isinstance(exc, yaml.YAMLError) else (0, "", str(exc))
        )
        where = f"{IMAGES_WORKFLOW}:{line}" if line else IMAGES_WORKFLOW
        raise MlopsError(f"{where}: {column + ': ' if column else ''}{message}") from exc
    names: set[str] = set()
    for job in (workflow.get("jobs") or {}).values():
        for entry in ((job.get("strategy") or {}).get("matrix") or {}).get("include") or []:
            if isinstance(entry, dict) and entry.get("image"):
                names.add(str(entry["image"]))
    return names


def check_platform_images(
    repo: Path, env: str, rendered: Sequence[RenderedKustomization]
) -> Iterator[Problem]:
    """MLOPS023: each `mlops/<image>` a manifest of `env` runs exists, and keeps existing.

    The images workflow tags a main build with its commit and a release `vX.Y.Z` with
    `X.Y.Z`, pushes them to the CI account's registry, and ECR replication copies them to
    the others (terraform/modules/ecr). A tag it never writes (`3.17.2`, an upstream
    version) is an ImagePullBackOff on the cluster. In prod a commit tag is refused too:
    prod runs releases, pinned by `@sha256:` digest or by their immutable `X.Y.Z` tag,
    whose lifecycle rule keeps them (MLOPS027). Upstream: ECR tag immutability
    (docs.aws.amazon.com/AmazonECR/latest/userguide/image-tag-mutability.html).
    """
    built = built_images(repo)
    released = repository_version(repo)
    annotations = cluster_params(repo, env)["metadata"]["annotations"]
    registry = f"{annotations['aws_account_id']}.dkr.ecr.{annotations['aws_region']}.amazonaws.com"
    for result in rendered:
        for doc in result.documents:
            if not isinstance(doc, dict):
                continue
            for path, image in _images(doc, []):
                message = _image_problem(image, env, built, registry, released)
                if message:
                    yield _problem(result.path, resource_name(doc), field_path(path), message, "MLOPS023")


@dataclass(frozen=True)
class NeededImage:
    """One `mlops/<image>` tag the rendered overlays pull, and where."""

    name: str
    tag: str
    """`X.Y.Z` (a release), a 40-hex commit, or an Argo expression set at run time."""
    envs: tuple[str, ...]
    files: tuple[str, ...]

    @property
    def release(self) -> str | None:
        """The release `vX.Y.Z` whose images workflow run pushes this tag, or None."""
        return f"v{self.tag}" if _RELEASE_TAG.match(self.tag) else None


def needed_images(
    rendered: Sequence[RenderedKustomization], envs: Sequence[str], repo: Path | None = None
) -> list[NeededImage]:
    """Every `mlops/<image>:<tag>` the rendered kustomizations of `envs` run, with its environments.

    Args:
        rendered: the kustomizations of `envs`, rendered together (render_envs order).
        envs: the environments, to tell which kustomization belongs to which.
        repo: when given, the tags its overlays pin in kustomize `images:` entries count too:
            a part that does not render yet (a model in bootstrap mode renders no alias hook)
            pulls its pinned image the moment its first promote serves it.
    """
    seen: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    for env, path, name, tag in _overlay_pins(repo, envs) if repo is not None else ():
        where = seen.setdefault((name, tag), (set(), set()))
        where[0].add(env)
        where[1].add(path)
    for result in rendered:
        env = next((e for e in envs if f"/{e}/" in f"/{result.path}/"), "")
        for doc in result.documents:
            for _path, image in _images(doc, []) if isinstance(doc, dict) else ():
                match = _PLATFORM_IMAGE.match(image)
                if not match:
                    continue
                where = seen.setdefault(
                    (match["name"], match["tag"] or match["digest"] or ""), (set(), set())
                )
                where[0].add(env)
                where[1].add(result.path)
    return [
        NeededImage(name, tag, tuple(sorted(envs_)), tuple(sorted(files)))
        for (name, tag), (envs_, files) in sorted(seen.items())
    ]


def _overlay_pins(repo: Path, envs: Sequence[str]) -> Iterator[tuple[str, str, str, str]]:
    """(env, kustomization folder, image, tag) of each `images:` entry under overlays/<env> naming mlops/*."""
    for env in envs:
        for file in sorted((repo / "overlays" / env).rglob("kustomization.yaml")):
            try:
                doc = fast_yaml.load(file.read_text())
            except (OSError, yaml.YAMLError):
                continue  # MLOPS049 names an unreadable file
            for entry in (doc or {}).get("images") or [] if isinstance(doc, dict) else []:
                match = _PLATFORM_IMAGE.match(str(entry.get("name", ""))) if isinstance(entry, dict) else None
                if match and entry.get("newTag"):
                    yield env, str(file.parent.relative_to(repo)), match["name"], str(entry["newTag"])


def _image_problem(image: str, env: str, built: set[str], registry: str, released: str) -> str | None:
    match = _PLATFORM_IMAGE.match(image)
    if not match:
        return None  # an upstream image: MLOPS002/003 judge its tag
    name, tag, digest = match["name"], match["tag"], match["digest"]
    if name not in built:
        return f'image "{image}": {IMAGES_WORKFLOW} builds no mlops/{name}'
    if match["registry"] != registry:
        where = f'registry "{match["registry"]}"' if match["registry"] else "no registry"
        return f'image "{image}" has {where}: {env} pulls mlops/* from {registry}'
    if digest or (tag and _ARGO_EXPRESSION.match(tag)):
        return None  # a digest, or a workflow's tag set at run time to the commit it built
    if tag and _RELEASE_TAG.match(tag):
        if _version_key(tag) > _version_key(released):
            return (
                f'image "{image}": this repository has no release {tag} yet (pyproject.toml version '
                f"{released}), so {IMAGES_WORKFLOW} never pushed it"
            )
        return None
    if tag and _COMMIT_TAG.match(tag):
        if env == "prod":
            return f'prod image "{image}" is a commit build: prod runs releases (X.Y.Z or a digest)'
        return None
    return f'image "{image}": tag "{tag or ""}" is not one {IMAGES_WORKFLOW} pushes (40-hex commit or X.Y.Z)'


def repository_version(repo: Path) -> str:
    """Return the version of the checkout being validated: its pyproject.toml's, which a release tag bumps.

    Read from the checkout, not from the installed CLI's metadata: an installed `mlops`
    validates any clone, and a pull request that bumps the version must see its own bump.
    """
    pyproject = repo / "pyproject.toml"
    if not pyproject.is_file():
        return mlops.__version__
    return str(tomllib.loads(pyproject.read_text())["project"]["version"])


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _images(value: Any, path: list[Any]) -> Iterator[tuple[list[Any], str]]:
    """Every `image:` string in a manifest, with its path (containers wherever they are)."""
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "image" and isinstance(child, str):
                yield [*path, key], child
            else:
                yield from _images(child, [*path, key])
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _images(child, [*path, index])


# --- MLOPS027 / MLOPS028: what the registry keeps and accepts -----------------------------


@cache
def _terraform_blocks(module: Path) -> tuple[tuple[str, str, dict[str, Any]], ...]:
    """(resource type, name, body) of every resource in the module's .tf files."""
    blocks = []
    for tf in sorted(module.glob("*.tf")):
        parsed = parse(tf)
        for resource in parsed.get("resource") or []:
            for rtype, named in resource.items():
                for name, body in named.items():
                    blocks.append((_unquote(rtype), _unquote(name), body))
    return tuple(blocks)


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _lifecycle_rules(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the rules of an `aws_ecr_lifecycle_policy` whose policy is `jsonencode({rules = [...]})`."""
    policy = str(body.get("policy", ""))
    inner = re.fullmatch(r"\$\{jsonencode\((.*)\)\}", policy, re.S)
    if not inner:
        return []
    parsed = parse_text(f"policy = {inner[1]}\n")["policy"]
    rules = parsed.get("rules") if isinstance(parsed, dict) else None
    return [r for r in rules or [] if isinstance(r, dict)]


def _selects(rule: dict[str, Any], tag: str) -> bool:
    """Whether a lifecycle rule's selection takes an image tagged `tag` (ECR lifecycle semantics)."""
    selection = rule.get("selection") or {}
    status = _unquote(selection.get("tagStatus"))
    if status == "any":
        return True
    if status != "tagged":
        return False
    patterns = [_unquote(p) for p in selection.get("tagPatternList") or []]
    prefixes = [_unquote(p) for p in selection.get("tagPrefixList") or []]
    return any(fnmatch.fnmatchcase(tag, p) for p in patterns) or any(tag.startswith(p) for p in prefixes)


def check_lifecycle_keeps_releases(
    repo: Path, env: str, rendered: Sequence[RenderedKustomization]
) -> Iterator[Problem]:
    """MLOPS027: a release tag is counted by a rule of its own, never together with commits.

    ECR evaluates rules by priority, and an image whose tags match a rule is never expired
    by a lower-priority one; so the first rule that selects a release tag decides how long
    releases live. If that rule also selects commit or cache tags, every build pushes the
    releases prod pins towards expiry. Upstream: "Lifecycle policy evaluation rules" and
    `tagPatternList`/`tagPrefixList` in docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html.
    """
    for rtype, name, body in _terraform_blocks(repo / ECR_MODULE):
        if rtype != "aws_ecr_lifecycle_policy":
            continue
        rules = sorted(_lifecycle_rules(body), key=lambda r: int(str(r.get("rulePriority", 0))))
        first = next((r for r in rules if _selects(r, _SAMPLE_TAGS["release"])), None)
        if first is None:
            continue
        shared = [kind for kind in ("commit", "cache") if _selects(first, _SAMPLE_TAGS[kind])]
        if shared:
            yield _problem(
                ECR_MODULE,
                f"aws_ecr_lifecycle_policy.{name}",
                f"rules[rulePriority={first.get('rulePriority')}]",
                f"release tags (X.Y.Z) are counted with {' and '.join(shared)} tags by rule "
                f'"{_unquote(first.get("description", ""))}": builds expire the releases prod pins',
                "MLOPS027",
            )


def _repository_patterns(repo: Path) -> list[tuple[re.Pattern[str], str, str]]:
    """(name pattern, mutability, resource) of each `aws_ecr_repository` the ECR module creates."""
    patterns = []
    for rtype, name, body in _terraform_blocks(repo / ECR_MODULE):
        if rtype == "aws_ecr_repository":
            template = str(_unquote(body.get("name", "")))
            regex = re.escape(template)
            regex = re.sub(r"\\\$\\\{[^}]*\\\}", "[^/:]+", regex)
            mutability = str(_unquote(body.get("image_tag_mutability", "MUTABLE")))
            patterns.append((re.compile(f"^{regex}$"), mutability, f"aws_ecr_repository.{name}"))
    return patterns


def _cache_refs(repo: Path, rendered: Sequence[RenderedKustomization]) -> Iterator[tuple[str, str, str, str]]:
    """(file, resource, field, repository) of every build-cache reference CI or a workflow uses."""
    path = repo / IMAGES_WORKFLOW
    text = path.read_text() if path.is_file() else ""
    for match in re.finditer(r"^\s*(cache-(?:from|to)):.*?\bref=((?:\$\{\{[^}]*\}\}|[^,\s])+)", text, re.M):
        yield IMAGES_WORKFLOW, "step docker/build-push-action", match[1], match[2]
    for result in rendered:
        for doc in result.documents:
            if not isinstance(doc, dict) or doc.get("kind") != "WorkflowTemplate":
                continue
            for index, template in enumerate((doc.get("spec") or {}).get("templates") or []):
                for t_index, task in enumerate(((template or {}).get("dag") or {}).get("tasks") or []):
                    for p_index, param in enumerate((task.get("arguments") or {}).get("parameters") or []):
                        if param.get("name") == "cache-ref":
                            where = ["spec", "templates", index, "dag", "tasks", t_index]
                            field = field_path([*where, "arguments", "parameters", p_index, "value"])
                            yield result.path, resource_name(doc), field, str(param.get("value"))


def check_caches_are_rewritable(
    repo: Path, env: str, rendered: Sequence[RenderedKustomization]
) -> Iterator[Problem]:
    """MLOPS028: a build cache's tag is rewritten by every build, so its repository must be mutable.

    An IMMUTABLE repository refuses a push to an existing tag (ImageTagAlreadyExistsException),
    so the second build fails when it exports its cache there. Upstream: ECR tag mutability
    (docs.aws.amazon.com/AmazonECR/latest/userguide/image-tag-mutability.html; the
    IMMUTABLE_WITH_EXCLUSION setting is the other way out), BuildKit's registry cache exporter
    (github.com/moby/buildkit#registry-push-image-and-cache-separately).
    """
    patterns = _repository_patterns(repo)
    for file, resource, field, ref in _cache_refs(repo, rendered):
        # Drop the registry host and the tag; CI's `${{ ... }}` expressions stand for one name part.
        path = re.sub(r"\$\{\{[^}]*\}\}", "x", ref)
        repository = path.split("/", 1)[1] if "/" in path else path
        repository = repository.rsplit(":", 1)[0]
        matched = [(mutability, name) for pattern, mutability, name in patterns if pattern.match(repository)]
        if not matched:
            message = f'build cache "{ref}": {ECR_MODULE} creates no repository {repository}'
        elif matched[0][0] != "MUTABLE":
            mutability, resource_of = matched[0]
            message = (
                f'build cache "{ref}" is in {resource_of}, whose tags are {mutability}: '
                "the second build fails"
            )
        else:
            continue
        yield _problem(file, resource, field, message, "MLOPS028")


# --- MLOPS029: a supported Kubernetes -----------------------------------------------------


def check_kubernetes_version(
    repo: Path, env: str, rendered: Sequence[RenderedKustomization]
) -> Iterator[Problem]:
    """MLOPS029: the EKS version terraform creates is in standard support, and it is what we validate against.

    After standard support ends EKS charges extended support and then upgrades the cluster
    by itself; schemas of another version let fields through that the API server refuses.
    Upstream: the EKS Kubernetes version calendar
    (docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html).
    """
    tfvars = f"terraform/envs/{env}/terraform.tfvars"
    path = repo / tfvars
    if not path.is_file():
        return
    found = re.search(r'^\s*kubernetes_version\s*=\s*"([^"]*)"', path.read_text(), re.M)
    if not found:
        return
    version, today = found[1], dt.date.today()
    end = EKS_STANDARD_SUPPORT_END.get(version)
    if end is None:
        message = f"EKS {version} is not in the support calendar of mlops.validate.env_rules.delivery"
    elif today >= end:
        message = f"EKS {version} left standard support on {end.isoformat()}"
    elif version != KUBERNETES_VERSION:
        message = (
            f"EKS {version}, but mlops validate checks core kinds against Kubernetes {KUBERNETES_VERSION}"
        )
    else:
        return
    yield _problem(tfvars, "variable/kubernetes_version", "kubernetes_version", message, "MLOPS029")
