"""What a change does to the rendered manifests: per-resource unified diffs as markdown for a PR.

Both sides are rendered through `mlops.render` (the one render path). A git ref is
exported with `git archive` into a temporary folder first, so the checkout is never
switched; the working tree is rendered in place.

Only the folders a change can reach are rendered: git names the paths that differ between
the two sides, and a folder whose build reads none of them (`build_cache.build_scope`: its
folders, the folders it references, the files its kustomizations name) renders the same on
both. A pull request that touches one model costs about the same with a hundred models as
with one. A folder that reads something non-local is always rendered.
"""

from __future__ import annotations

import difflib
import io
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops import build_cache, fast_yaml, gitops, model_version_file
from mlops.deployment import Deployment
from mlops.environments import ENVS
from mlops.errors import MlopsError
from mlops.render import render_targets, targets


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
    """A deployment whose version file names a different version on the two sides."""

    env: str
    model: str  # the deployment folder: `<model>`, or `<model>-canary` for a canary
    old: str | None
    new: str | None
    weights_uri: str | None


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


def _yaml(doc: Any) -> str:
    """A document as the diff shows it ("" for none); dumped only for documents that differ."""
    if doc is None:
        return ""
    return fast_yaml.dump(doc, width=4096)


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


@dataclass
class Comparison:
    """What differs between two renders: resources, model versions, and builds that failed on a side."""

    changes: list[ResourceChange]
    versions: list[VersionChange]
    failures: list[str]


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
        if (a and a.version) != (b and b.version):
            versions.append(
                VersionChange(
                    env=env, model=model, old=a.version if a else None, new=b.version if b else None,
                    weights_uri=b.weights_uri if b else None,
                )
            )  # fmt: skip
    return Comparison(changes=changes, versions=versions, failures=failures)


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
            lines.append(f"- {v.env} `{v.model}`: {v.old or 'none'} → {v.new or 'removed'}{weights}")
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


def diff_markdown(repo: Path, base: str, new: str | None = None, envs: Sequence[str] = ENVS) -> str:
    """Render `envs` at git ref `base` and at `new` (a ref, or None for the working tree); return markdown."""
    new_tree = nullcontext(repo) if new is None else exported_tree(repo, new)
    # Exported before git is asked what changed: a ref that does not exist is named there.
    with exported_tree(repo, base) as base_root, new_tree as new_root:
        changed = changed_paths(repo, base, new)
        label = "working tree" if new is None else new[:12]
        return to_markdown(compare(base_root, new_root, envs, changed), base, label)
