"""What a change does to the rendered manifests: per-resource unified diffs as markdown for a PR.

Both sides are rendered through `mlops.rendering.render` (the one render path). A git ref is
exported with `git archive` into a temporary folder first, so the checkout is never
switched; the working tree is rendered in place.

Only the folders a change can reach are rendered: git names the paths that differ between
the two sides, and a folder whose build reads none of them (`build_cache.build_scope`: its
folders, the folders it references, the files its kustomizations name) renders the same on
both. A pull request that touches one model costs about the same with a hundred models as
with one. A folder that reads something non-local is always rendered.

Reviewers read it line by line: a string that holds a file of its own (the gateway's
`routes.yaml` in its ConfigMap, a dashboard's JSON) is shown as a YAML block of its lines,
JSON pretty-printed, never as one escaped string; the summary lists each deployment whose
version or weights changed and each route whose weights changed. `--base REF...` compares
with the merge base, so a base branch that moved on shows nothing the change does not do.
"""

from __future__ import annotations

import difflib
import io
import json
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops.conventions.deployment import Deployment
from mlops.conventions.environments import ENVS
from mlops.conventions.errors import MlopsError
from mlops.rendering import build_cache, fast_yaml
from mlops.rendering.render import render_targets, targets
from mlops.repository import gitops, model_version_file


@dataclass
class ResourceChange:
    """One rendered resource that differs between the two sides."""

    env: str
    path: str
    resource: str
    status: str  # "changed", "added", "removed"
    diff: str


@dataclass
class VersionChange:
    """A deployment whose version file names a different version, or different weights, on the two sides."""

    env: str
    model: str  # the deployment folder: `<model>`, or `<model>-canary` for a canary
    old: str | None
    new: str | None
    weights_uri: str | None
    weights_changed: list[str] | None = None  # the `weights*` keys that differ at the same version


@dataclass
class RouteChange:
    """A model whose gateway backends or their weights differ between the two sides."""

    env: str
    model: str
    old: dict[str, int]  # backend -> weight
    new: dict[str, int]


@contextmanager
def exported_tree(repo: Path, ref: str) -> Iterator[Path]:
    """Yield a temporary folder holding the tracked files of `ref` (removed afterwards)."""
    tar_bytes = gitops.archive(repo, ref)
    with tempfile.TemporaryDirectory(prefix="mlops-diff-") as tmp:
        try:
            with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
                tar.extractall(tmp, filter="data")
        except tarfile.ReadError:
            if gitops.list_files(repo, ref, "."):
                raise
            # An empty tree (a first, empty commit) archives as a header and no member.
        yield Path(tmp)


def _resource_name(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    ns = meta.get("namespace")
    name = meta.get("name", "?")
    return f"{doc.get('kind', '?')} {ns + '/' if ns else ''}{name}"


def changed_paths(repo: Path, base: str, new: str | None) -> list[str]:
    """The paths that differ between ref `base` and ref `new`, or the working tree when `new` is None.

    For the working tree: tracked files changed, staged or not, plus untracked and ignored ones
    (kustomize reads those too); a folder of them is one entry ending in `/`.
    """

    def paths(*args: str) -> list[str]:
        return [p for p in gitops.git(repo, *args, "-z").stdout.split("\0") if p]

    if new is not None:
        return paths("diff", "--name-only", "--no-renames", base, new)
    return paths("diff", "--name-only", "--no-renames", base) + paths("ls-files", "--others", "--directory")


def _reaches(changed: str, folders: Sequence[str], files: Sequence[str]) -> bool:
    """Whether a changed path (a folder when it ends in `/`) is, or holds, something a build reads."""
    path = changed.rstrip("/")
    return any(
        not folder or path == folder or path.startswith(folder + "/") or folder.startswith(path + "/")
        for folder in folders
    ) or any(file == path or file.startswith(path + "/") for file in files)


def untouched(root: Path, envs: Sequence[str], changed: Sequence[str]) -> set[str]:
    """The kustomization folders of `envs` in `root` whose build reads none of the `changed` paths.

    When none of what a folder reads differs, its kustomizations are the same on the other side
    too, so they name the same inputs there: the folder renders the same on both sides.
    """
    repo = root.resolve()
    found = set()
    for env in envs:
        for target in targets(root, env):
            scope = build_cache.build_scope(root / target.path)
            if scope is None:
                continue
            try:
                folders = [str(f.relative_to(repo)).removeprefix(".") for f in scope[0]]
                files = [str(f.relative_to(repo)) for f in scope[1]]
            except ValueError:
                continue  # it reads outside the repository: render it
            if not any(_reaches(path, folders, files) for path in changed):
                found.add(target.path)
    return found


def _rendered(
    root: Path, envs: Sequence[str], skip: set[str]
) -> tuple[dict[tuple[str, str, str], Any], dict[str, str]]:
    """Return {(env, kustomization path, resource): document} for every rendered object, and failed builds."""
    out: dict[tuple[str, str, str], Any] = {}
    failed: dict[str, str] = {}
    wanted = [t for env in envs for t in targets(root, env) if t.path not in skip]
    for rendered in render_targets(root, wanted, keep_going=True):
        if rendered.error:
            failed[rendered.path] = rendered.error
        for doc in rendered.documents:
            key = (rendered.env, rendered.path, f"{doc.get('apiVersion', '')} {_resource_name(doc)}")
            out[key] = doc
    return out, failed


_BLOCK = "\x00mlops-block-{}\x00"


def _as_lines(value: str) -> str | None:
    """The lines a string shows as a block: its own, or its JSON pretty-printed; None for one line."""
    stripped = value.strip()
    if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]"):
        try:
            return json.dumps(json.loads(stripped), indent=2, ensure_ascii=False) + "\n"
        except ValueError:
            pass
    return value if "\n" in value.rstrip("\n") else None


def _yaml(doc: Any) -> str:
    """A document as the diff shows it ("" for none); dumped only for documents that differ.

    A string that holds lines of its own (routes.yaml in a ConfigMap, a JSON dashboard) is
    written as a literal block (`key: |`) of those lines, so its diff shows the lines that
    changed instead of one escaped string. The block's text is the value (JSON re-indented),
    for reading: the diff is for review, the cluster gets what kustomize rendered.
    """
    if doc is None:
        return ""
    blocks: list[str] = []

    def swap(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: swap(value) for key, value in node.items()}
        if isinstance(node, list):
            return [swap(value) for value in node]
        if isinstance(node, str) and (lines := _as_lines(node)) is not None:
            blocks.append(lines)
            return _BLOCK.format(len(blocks) - 1)
        return node

    text = fast_yaml.dump(swap(doc), width=4096)
    if not blocks:
        return text
    out = []
    for line in text.splitlines(keepends=True):
        marker = line.find('"\\0mlops-block-')
        if marker < 0:
            out.append(line)
            continue
        index = int(line[marker:].split("-")[2].split("\\")[0])
        indent = " " * (len(line) - len(line.lstrip(" ")) + 2)
        prefix = line[:marker]
        if prefix.lstrip().startswith("- ") and prefix.strip() == "-":
            indent = " " * (len(prefix) + 2)
        out.append(f"{prefix}|{'' if blocks[index].endswith(chr(10)) else '-'}\n")
        out += [f"{indent}{row}\n" if row else "\n" for row in blocks[index].rstrip("\n").split("\n")]
    return "".join(out)


def _versions(
    root: Path, envs: Sequence[str], other: Path
) -> dict[tuple[str, str], model_version_file.ModelVersionFile]:
    """The version files of `root` that differ from `other`'s (an unchanged file changes no version)."""
    found = {}
    for env in envs:
        for deployment in model_version_file.deployments_in(root, env):  # stable and canary folders
            rel = Deployment.from_folder(env, deployment).version_file
            try:
                if (root / rel).read_bytes() == (other / rel).read_bytes():
                    continue
            except OSError:
                pass  # added or removed on one side: parsed below
            try:
                found[(env, deployment)] = model_version_file.load(root, env, deployment)
            except MlopsError:
                continue  # a broken file shows up in the resource diff and in `mlops validate`
    return found


def _weights_fields(state: model_version_file.ModelVersionFile | None) -> dict[str, str]:
    """The version file's `weights*` values (`weightsUri`, and any digest kept beside it)."""
    doc: Any = state._doc if state is not None else None
    data: dict[Any, Any] = (doc or {}).get("data") or {}
    return {str(k): str(v) for k, v in data.items() if str(k).startswith("weights")}


def _routes(root: Path, env: str) -> dict[str, dict[str, int]]:
    """{model: {backend: weight}} of the environment's gateway routes ({} when absent or unreadable)."""
    path = root / Deployment(env, "x").routes_file
    try:
        models = (fast_yaml.load(path.read_text()) or {}).get("models") or {}
        return {
            str(model): {
                str(name): int(backend.get("weight", 0))
                for name, backend in ((spec or {}).get("backends") or {}).items()
                if isinstance(backend, dict)
            }
            for model, spec in models.items()
            if isinstance(spec, dict)
        }
    except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError):
        return {}  # a broken routes file shows up in the resource diff and in `mlops validate`


def route_changes(base_root: Path, new_root: Path, envs: Sequence[str]) -> list[RouteChange]:
    """The models whose gateway backends or weights differ between the two sides, per environment."""
    found = []
    for env in envs:
        old, new = _routes(base_root, env), _routes(new_root, env)
        for model in sorted(set(old) | set(new)):
            if old.get(model) != new.get(model):
                found.append(RouteChange(env, model, old.get(model, {}), new.get(model, {})))
    return found


@dataclass
class Comparison:
    """What differs between two renders: resources, model versions, and builds that failed on a side."""

    changes: list[ResourceChange]
    versions: list[VersionChange]
    failures: list[str]
    routes: list[RouteChange] | None = None


def compare(
    base_root: Path, new_root: Path, envs: Sequence[str] = ENVS, changed: Sequence[str] | None = None
) -> Comparison:
    """Render `envs` in both folders and return what differs, resources and model versions.

    A kustomization that fails to build on either side is reported, not diffed: its objects
    would otherwise all show as added or removed. `changed`: the paths that differ between the
    two folders (`changed_paths`); folders none of them reaches are not rendered (a build that
    fails the same way on both sides is then not reported: `mlops validate` reports it).
    None renders every folder.
    """
    skip = untouched(new_root, envs, changed) if changed is not None else set()
    old, old_failed = _rendered(base_root, envs, skip)
    new, new_failed = _rendered(new_root, envs, skip)
    failures = [f"base: {err}" for err in old_failed.values()] + [
        f"new: {err}" for err in new_failed.values()
    ]
    broken = set(old_failed) | set(new_failed)
    changes = []
    for key in sorted(set(old) | set(new)):
        if key[1] in broken:
            continue
        before_doc, after_doc = old.get(key), new.get(key)
        if before_doc == after_doc:
            continue  # compared as data: only the documents that differ are dumped to YAML
        before, after = _yaml(before_doc), _yaml(after_doc)
        status = "added" if before_doc is None else "removed" if after_doc is None else "changed"
        env, path, resource = key
        label = resource.split(" ", 1)[1]
        diff = "".join(
            difflib.unified_diff(
                before.splitlines(keepends=True), after.splitlines(keepends=True),
                fromfile=f"a/{path} {label}", tofile=f"b/{path} {label}", n=3,
            )
        )  # fmt: skip
        changes.append(ResourceChange(env=env, path=path, resource=label, status=status, diff=diff))
    old_v, new_v = _versions(base_root, envs, new_root), _versions(new_root, envs, base_root)
    versions = []
    for env, model in sorted(set(old_v) | set(new_v)):
        a, b = old_v.get((env, model)), new_v.get((env, model))
        before_w, after_w = _weights_fields(a), _weights_fields(b)
        weights = [k for k in dict.fromkeys([*before_w, *after_w]) if before_w.get(k) != after_w.get(k)]
        if (a and a.version) != (b and b.version) or (a and b and weights):
            versions.append(
                VersionChange(
                    env=env, model=model, old=a.version if a else None, new=b.version if b else None,
                    weights_uri=b.weights_uri if b else None,
                    weights_changed=weights if a and b and a.version == b.version else None,
                )
            )  # fmt: skip
    routes = route_changes(base_root, new_root, envs)
    return Comparison(changes=changes, versions=versions, failures=failures, routes=routes)


def to_markdown(comparison: Comparison, base_label: str, new_label: str) -> str:
    """Format the comparison as markdown for a PR body or comment."""
    changes, versions = comparison.changes, comparison.versions
    lines = [f"### Rendered changes: `{base_label}` → `{new_label}`", ""]
    if comparison.failures:
        lines.append("**Render failures** (not diffed; `mlops validate` says more)")
        lines.append("")
        lines += [f"- {failure}" for failure in comparison.failures]
        lines.append("")
    if versions:
        lines.append("**Model versions**")
        lines.append("")
        for v in versions:
            weights = f" (weights `{v.weights_uri}`)" if v.weights_uri else ""
            if v.weights_changed:
                changed = ", ".join(f"`{k}`" for k in v.weights_changed)
                lines.append(
                    f"- {v.env} `{v.model}`: version {v.new} unchanged, weights changed ({changed}){weights}"
                )
                continue
            lines.append(f"- {v.env} `{v.model}`: {v.old or 'none'} → {v.new or 'removed'}{weights}")
        lines.append("")
    if comparison.routes:
        lines.append("**Route weights**")
        lines.append("")
        for r in comparison.routes:
            backends = dict.fromkeys([*r.old, *r.new])
            shown = ", ".join(
                f"{name} {r.old.get(name, 'none')} → {r.new.get(name, 'none')}"
                if r.old.get(name) != r.new.get(name)
                else f"{name} {r.new[name]}"
                for name in backends
            )
            lines.append(f"- {r.env} `{r.model}`: {shown}")
        lines.append("")
    if not changes:
        lines.append("No rendered resource changes.")
        return "\n".join(lines) + "\n"
    for env in dict.fromkeys(c.env for c in changes):
        mine = [c for c in changes if c.env == env]
        counts = ", ".join(
            f"{sum(c.status == s for c in mine)} {s}"
            for s in ("changed", "added", "removed")
            if any(c.status == s for c in mine)
        )
        lines.append(f"**{env}**: {counts}")
        lines.append("")
        for c in mine:
            lines.append(f"#### {env} · `{c.path}` · {c.resource} ({c.status})")
            lines.append("```diff")
            lines.append(c.diff.rstrip("\n"))
            lines.append("```")
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def merge_base(repo: Path, base: str, new: str | None) -> tuple[str, str]:
    """Resolve `REF...` (git's three-dot: the merge base of REF and HEAD) to a commit; return (ref, label).

    `REF...HEAD` is the same; any other right side is refused, since the new side of the diff
    is the working tree (or `new`). A base without `...` is returned as it is.
    """
    if "..." not in base:
        return base, base
    left, _, right = base.partition("...")
    head = new or "HEAD"
    if right not in ("", head) or not left:
        raise MlopsError(
            f"--base {base!r}: the new side is the {'working tree' if new is None else new}, so a three-dot "
            f"base is REF... (the merge base of REF and {head}); pass e.g. --base origin/main..."
        )
    proc = gitops.git(repo, "merge-base", left, head, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise gitops.GitError(
            f"--base {base!r}: {left!r} and {head} have no merge base in {repo}: "
            "fetch the branch (git fetch origin) or pass a commit both share"
        )
    sha = proc.stdout.strip()
    return sha, f"{base} (merge base {sha[:12]})"


def diff_markdown(repo: Path, base: str, new: str | None = None, envs: Sequence[str] = ENVS) -> str:
    """Render `envs` at git ref `base` and at `new` (a ref, or None for the working tree); return markdown.

    `base` may be `REF...`: the merge base of REF and the new side's commit, so only what the
    change itself does shows, however far REF has moved on since (`merge_base`).
    """
    base, base_label = merge_base(repo, base, new)
    new_tree = nullcontext(repo) if new is None else exported_tree(repo, new)
    # Exported before git is asked what changed: a ref that does not exist is named there.
    with exported_tree(repo, base) as base_root, new_tree as new_root:
        changed = changed_paths(repo, base, new)
        label = "working tree" if new is None else new[:12]
        return to_markdown(compare(base_root, new_root, envs, changed), base_label, label)
