"""The CRD schemas that ship with the CLI: compact copies of pinned upstream CRDs, their lock, their refresh.

`mlops validate` reads `scripts/mlops/crd_schemas/` unless `--crds` or `$MLOPS_CRDS_DIR` names
another folder. Each upstream CRD file becomes one JSON file there holding the same
CustomResourceDefinitions cut down to what validation reads: group, names, scope and, per
served version, the `openAPIV3Schema` without its documentation keys (`description`,
`example`, `externalDocs`). Every `x-kubernetes-*` key, CEL rules included, stays, so the
strict schemas `mlops.validate.schema_checks.crds` derives are the same as from the upstream files.

`crds.lock` records, per upstream file, its project, version, URL and sha256, and the sha256
of the packaged file made from it. `mlops crds refresh` rebuilds both from a folder of
upstream CRDs (laid out `<project>-<version>/<file>`, as `../shared/crds`) or, only when asked,
from the pinned release URLs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.conventions.errors import MlopsError
from mlops.rendering import fast_yaml
from mlops.validate.schema_checks.crds import DOC_KEYS

LOCK_NAME = "crds.lock"
"""The lock file inside the schema folder (no .json suffix: it is not a CRD file)."""


class PackagedCrdsError(MlopsError):
    """An upstream CRD is missing or unreadable, or the packaged schemas differ from their sources."""


@dataclass(frozen=True)
class UpstreamSource:
    """One upstream project's CRD files at the release the platform pins."""

    project: str
    repository: str
    version: str
    path: str
    files: tuple[str, ...]

    @property
    def folder(self) -> str:
        """The folder of these files in an upstream CRD directory: `<project>-<version>`."""
        return f"{self.project}-{self.version}"

    def url(self, file: str) -> str:
        """Return the raw URL of `file` at the pinned tag."""
        return f"https://raw.githubusercontent.com/{self.repository}/{self.version}/{self.path}/{file}"


# Versions match the charts in apps/upstream (tests/manifests/test_apps.py checks those that overlap).
SOURCES: tuple[UpstreamSource, ...] = (
    UpstreamSource(
        "argo-cd",
        "argoproj/argo-cd",
        "v3.5.1",
        "manifests/crds",
        ("application-crd.yaml", "applicationset-crd.yaml", "appproject-crd.yaml"),
    ),
    UpstreamSource(
        "argo-workflows",
        "argoproj/argo-workflows",
        "v4.1.2",
        "manifests/base/crds/full",
        (
            "argoproj.io_clusterworkflowtemplates.yaml",
            "argoproj.io_cronworkflows.yaml",
            "argoproj.io_workfloweventbindings.yaml",
            "argoproj.io_workflows.yaml",
            "argoproj.io_workflowtemplates.yaml",
        ),
    ),
    UpstreamSource(
        "aws-load-balancer-controller",
        "kubernetes-sigs/aws-load-balancer-controller",
        "v2.17.1",
        "config/crd/bases",
        ("elbv2.k8s.aws_ingressclassparams.yaml", "elbv2.k8s.aws_targetgroupbindings.yaml"),
    ),
    UpstreamSource(
        "external-dns",
        "kubernetes-sigs/external-dns",
        "v0.22.0",
        "config/crd/standard",
        ("dnsendpoints.externaldns.k8s.io.yaml",),
    ),
    UpstreamSource(
        "external-secrets",
        "external-secrets/external-secrets",
        "v2.9.0",
        "config/crds/bases",
        (
            "external-secrets.io_clustersecretstores.yaml",
            "external-secrets.io_externalsecrets.yaml",
            "external-secrets.io_secretstores.yaml",
        ),
    ),
    UpstreamSource(
        "karpenter",
        "aws/karpenter-provider-aws",
        "v1.14.1",
        "pkg/apis/crds",
        (
            "karpenter.k8s.aws_ec2nodeclasses.yaml",
            "karpenter.sh_nodeclaims.yaml",
            "karpenter.sh_nodepools.yaml",
        ),
    ),
    UpstreamSource(
        "keda",
        "kedacore/keda",
        "v2.20.2",
        "config/crd/bases",
        ("keda.sh_scaledobjects.yaml", "keda.sh_triggerauthentications.yaml"),
    ),
    UpstreamSource(
        "prometheus-operator",
        "prometheus-operator/prometheus-operator",
        "v0.93.1",
        "example/prometheus-operator-crd",
        (
            "monitoring.coreos.com_podmonitors.yaml",
            "monitoring.coreos.com_probes.yaml",
            "monitoring.coreos.com_prometheusrules.yaml",
            "monitoring.coreos.com_servicemonitors.yaml",
        ),
    ),
    UpstreamSource(
        "training-operator",
        "kubeflow/trainer",
        "v1.9.4",
        "manifests/base/crds",
        ("kubeflow.org_pytorchjobs.yaml",),
    ),
)


@dataclass(frozen=True)
class Bundle:
    """The packaged schema files (relative path -> content) and the lock that describes them."""

    files: dict[str, bytes]
    lock: dict[str, Any]

    def lock_text(self) -> str:
        """Return the lock file's content."""
        return json.dumps(self.lock, indent=2) + "\n"


def packaged_name(source: UpstreamSource, file: str) -> str:
    """Where the compact copy of an upstream file lives in the schema folder."""
    return f"{source.project}/{Path(file).stem}.json"


def build(upstream_dir: Path) -> Bundle:
    """Read every pinned file from `upstream_dir` and return the packaged files and their lock.

    Raises:
        PackagedCrdsError: a pinned file is missing or holds no CustomResourceDefinition.
    """
    files: dict[str, bytes] = {}
    entries = []
    for source in SOURCES:
        for file in source.files:
            path = upstream_dir / source.folder / file
            if not path.is_file():
                raise PackagedCrdsError(
                    f"{path} is missing: put {source.url(file)} there, or run `mlops crds refresh --download`"
                )
            raw = path.read_bytes()
            crds = [compact_crd(doc) for doc in fast_yaml.load_all(raw) if _is_crd(doc)]
            if not crds:
                raise PackagedCrdsError(
                    f"{path} holds no CustomResourceDefinition: is it the file from {source.url(file)}?"
                )
            name = packaged_name(source, file)
            files[name] = (json.dumps(crds, separators=(",", ":")) + "\n").encode()
            entries.append(
                {
                    "project": source.project,
                    "version": source.version,
                    "url": source.url(file),
                    "sha256": hashlib.sha256(raw).hexdigest(),
                    "packaged": name,
                    "packaged_sha256": hashlib.sha256(files[name]).hexdigest(),
                }
            )
    lock = {
        "comment": "Written by `mlops crds refresh`: the upstream CRD files the packaged schemas come from.",
        "files": entries,
    }
    return Bundle(files, lock)


def _is_crd(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition"


def compact_crd(crd: dict[str, Any]) -> dict[str, Any]:
    """Return `crd` with only what validation reads: group, names, scope, served versions' schemas."""
    spec = crd["spec"]
    versions = [
        {"name": v["name"], "schema": {"openAPIV3Schema": strip_docs(v["schema"]["openAPIV3Schema"])}}
        for v in spec.get("versions", [])
        if v.get("served", True) and (v.get("schema") or {}).get("openAPIV3Schema") is not None
    ]
    return {
        "apiVersion": crd.get("apiVersion", "apiextensions.k8s.io/v1"),
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd["metadata"]["name"]},
        "spec": {
            "group": spec["group"],
            "names": {"kind": spec["names"]["kind"], "plural": spec["names"]["plural"]},
            "scope": spec.get("scope"),
            "versions": versions,
        },
    }


def strip_docs(schema: Any) -> Any:
    """Return a copy of an OpenAPI schema without documentation keys, walking schema keywords only.

    A property *named* `description` stays (it lives in a `properties` map, whose keys are
    names, not keywords); `default`, `enum` and CEL rules are data and are copied as they are.
    """
    if isinstance(schema, list):
        return [strip_docs(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in DOC_KEYS:
            continue
        if key in ("properties", "patternProperties", "definitions") and isinstance(value, dict):
            out[key] = {name: strip_docs(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = strip_docs(value)
        else:
            out[key] = value
    return out


def differences(bundle: Bundle, schema_dir: Path) -> list[str]:
    """Return one line per packaged file (or the lock) in `schema_dir` that differs from `bundle`."""
    found = []
    on_disk = {str(p.relative_to(schema_dir)) for p in schema_dir.rglob("*.json")}
    for name in sorted(on_disk - bundle.files.keys()):
        found.append(f"{schema_dir / name}: not made from any pinned upstream file")
    for name, content in sorted(bundle.files.items()):
        path = schema_dir / name
        if not path.is_file():
            found.append(f"{path}: missing")
        elif path.read_bytes() != content:
            found.append(f"{path}: differs from its upstream file")
    lock = schema_dir / LOCK_NAME
    if not lock.is_file() or lock.read_text() != bundle.lock_text():
        found.append(f"{lock}: differs from the pinned sources and their sha256")
    return found


def lock_problems(schema_dir: Path) -> list[str]:
    """Check the schema folder against its own lock, without upstream files: one line per problem.

    The lock must list exactly the pinned sources (project, version, URL) and every packaged
    file with its sha256; no other packaged file may exist.
    """
    lock_path = schema_dir / LOCK_NAME
    if not lock_path.is_file():
        return [f"{lock_path}: missing: run `mlops crds refresh`"]
    entries = json.loads(lock_path.read_text())["files"]
    problems = []
    pinned = [(s.project, s.version, s.url(f), packaged_name(s, f)) for s in SOURCES for f in s.files]
    locked = [(e["project"], e["version"], e["url"], e["packaged"]) for e in entries]
    if locked != pinned:
        problems.append(
            f"{lock_path}: lists other upstream files than the pinned sources: run `mlops crds refresh`"
        )
    for entry in entries:
        path = schema_dir / entry["packaged"]
        if not path.is_file():
            problems.append(f"{path}: missing (the lock lists it)")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != entry["packaged_sha256"]:
            problems.append(f"{path}: sha256 differs from the lock: edited by hand? run `mlops crds refresh`")
    listed = {e["packaged"] for e in entries}
    for path in sorted(schema_dir.rglob("*.json")):
        if str(path.relative_to(schema_dir)) not in listed:
            problems.append(f"{path}: not in the lock")
    return problems


def write(bundle: Bundle, schema_dir: Path) -> None:
    """Replace the packaged files and the lock in `schema_dir` (other files, like README.md, stay)."""
    for path in schema_dir.rglob("*.json"):
        if str(path.relative_to(schema_dir)) not in bundle.files:
            path.unlink()
    for name, content in bundle.files.items():
        path = schema_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != content:
            path.write_bytes(content)
    for folder in sorted((p for p in schema_dir.iterdir() if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    (schema_dir / LOCK_NAME).write_text(bundle.lock_text())


def download(dest: Path) -> None:
    """Fetch every pinned upstream file into `dest/<project>-<version>/` (network).

    Raises:
        PackagedCrdsError: a download failed; the message names the URL.
    """
    for source in SOURCES:
        folder = dest / source.folder
        folder.mkdir(parents=True, exist_ok=True)
        for file in source.files:
            url = source.url(file)
            try:
                with urllib.request.urlopen(url, timeout=60) as response, (folder / file).open("wb") as out:
                    shutil.copyfileobj(response, out)
            except OSError as exc:
                raise PackagedCrdsError(f"could not download {url}: {exc}") from exc
