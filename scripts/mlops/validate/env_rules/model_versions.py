"""MLOPS071, 073-075, 085: a model folder says one name, a sound version file, a server sized as it asks.

What docs/adding-a-model.md tells a person to keep in step, checked on every model folder
`overlays/<env>/models/<folder>/`:

- MLOPS071: the folder's name, its `namePrefix` (`<folder>-`), the rendered Deployment's name
  (`<folder>-vllm`) and `data.model` of its model-version.yaml agree (`data.model` is the folder
  name, or `<model>` for a `<model>-canary` folder). A copied folder left unedited renders
  another folder's objects (MLOPS070 then names the clash).
- MLOPS073: the version file, read by the one parser `mlops status`, `promote` and `rollback`
  use (`mlops.repository.model_version_file`): `version` an MLflow registered model version (MLflow
  numbers them 1, 2, ...: mlflow `store/model_registry/sqlalchemy_store.py`), `weightsUri` an
  `s3://` URI in this environment's artifact bucket as terraform names it
  (`terraform_hcl.data_bucket`: dev never serves from prod's bucket; the vLLM role of each
  environment reads its own), `mlflowRun`, when present, an MLflow run id (`uuid4().hex`,
  mlflow `store/tracking/sqlalchemy_store.py` create_run), and neither holding a `<...>`
  placeholder from docs/adding-a-model.md (S3 accepts `<run>` in a key, so only this catches it).
  Other keys are left alone.
- MLOPS085: `weightsDigest` is `sha256:<64 lowercase hex>`, the digest of the trainer's weights
  manifest that `mlops promote` copies from the version's `weights_digest` tag; the model
  server's init container (base/models/vllm/deployment.yaml, fetch-weights) refuses to start
  vLLM on weights that do not hash to it, and refuses any other form of the value before it
  downloads anything. `none` is accepted only while the folder lists the bootstrap component
  (mlops.repository.bootstrap: 0 replicas, nothing fetched). A file without the key does not even build
  (the `model-version` component's replacement needs `data.weightsDigest`).
- MLOPS074: vLLM's `--tensor-parallel-size` times `--pipeline-parallel-size` (as the container's
  args expand `$(SERVE_TENSOR_PARALLEL_SIZE)`, `mlops.rendering.vllm_args`) equals the container's
  `nvidia.com/gpu`: vLLM starts one worker per GPU of that world size and fails at start-up
  when the pod has fewer; more GPUs than that sit idle. A Deployment's pod is one node, so
  tensor x pipeline parallel is the pod's GPU count ("set tensor_parallel_size to the number of
  GPUs per node and pipeline_parallel_size to the number of nodes",
  https://docs.vllm.ai/en/latest/serving/parallelism_scaling/).
- MLOPS075: a `<model>-canary` folder has its stable `<model>` folder beside it, renders its
  pods and selectors with `mlops.platform/track: canary` (the `canary` component), and serves
  with the stable one's vLLM flags and GPUs (docs/adding-a-model.md, Canary: "a copy of the
  stable one with three differences"), so the comparison the canary analysis makes is
  between versions, not between configurations.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from mlops.conventions import write_inputs
from mlops.conventions.deployment import CANARY_SUFFIX, VERSION_FILE_NAME
from mlops.conventions.errors import MlopsError
from mlops.conventions.paths import cache_root
from mlops.rendering import build_cache, fast_yaml, vllm_args
from mlops.rendering.render import RenderedKustomization
from mlops.rendering.terraform_hcl import data_bucket
from mlops.repository import bootstrap, model_version_file
from mlops.validate.object_rules.pod_policies import GPU_RESOURCE
from mlops.validate.objects.problems import Problem, mapping
from mlops.validate.objects.violations import HINTS

TRACK_LABEL = "mlops.platform/track"
_PARALLEL_FLAGS = ("--tensor-parallel-size", "--pipeline-parallel-size")
_SERVED_NAME_FLAG = "--served-model-name"


def check(repo: Path, env: str, rendered: Sequence[RenderedKustomization]) -> Iterator[Problem]:
    """Report model folders of `env` whose names, version file or GPU sizing disagree.

    MLOPS071, MLOPS073-075 and MLOPS085 (the module docstring says what each checks).
    """
    root = f"overlays/{env}/models"
    by_folder = {
        r.path.removeprefix(root + "/"): r
        for r in rendered
        if r.env == env and r.path.startswith(root + "/") and "/" not in r.path.removeprefix(root + "/")
    }
    bucket = data_bucket(repo, env)
    deployments: dict[str, dict[str, Any]] = {}
    known = _VersionFileResults(repo, env)
    for folder, result in sorted(by_folder.items()):
        yield from _names(repo, result.path, folder, result)
        yield from known.problems(result.path, folder, bucket)
        for _path, deployment in vllm_args.model_deployments([result]):
            deployments[folder] = deployment
            yield from _gpu_sizing(result.path, deployment)
    known.save()
    failed = {folder for folder, result in by_folder.items() if result.error}
    for folder, deployment in sorted(deployments.items()):
        # A stable folder that did not build is reported once, as its build failure.
        if folder.endswith(CANARY_SUFFIX) and folder.removesuffix(CANARY_SUFFIX) not in failed:
            yield from _canary(f"{root}/{folder}", folder, deployment, deployments)


class _VersionFileResults:
    """MLOPS071/073 results of each model-version.yaml, kept across runs by the file's content.

    The round-trip parser `promote` writes with (ruamel) reads one file in about 10 ms: at a
    hundred models per environment that was a second of every run, for files a pull request
    rarely touches. A result depends on the file's text, its folder, the environment's bucket
    and this code, so those make the key and the cache file's name.
    """

    def __init__(self, repo: Path, env: str) -> None:
        modules = (model_version_file, write_inputs, sys.modules[__name__])
        code = b"".join(Path(str(m.__file__)).read_bytes() for m in modules)
        digest = hashlib.sha256(code + str(repo.resolve()).encode()).hexdigest()[:16]
        self.repo = repo
        self.path = cache_root() / "model-versions" / f"{env}-{digest}.json"
        self.used: set[str] = set()
        self.use = build_cache.enabled()
        self.known: dict[str, list[list[str]]] = {}
        if self.use:
            try:
                loaded = json.loads(self.path.read_text())
                self.known = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                pass
        self.changed = False

    def problems(self, path: str, folder: str, bucket: str | None) -> list[Problem]:
        """`_version_file`'s problems for the folder at `path`, from the cache when the file is unchanged."""
        try:
            text = (self.repo / path / VERSION_FILE_NAME).read_bytes()
        except OSError:
            text = b"\0missing"
        key = hashlib.sha256(f"{path}\0{folder}\0{bucket}\0".encode() + text).hexdigest()
        self.used.add(key)
        stored = self.known.get(key)
        if stored is None:
            found = list(_version_file(self.repo, path, folder, bucket))
            stored = [[p.file, p.resource, p.field, p.message, p.policy_id] for p in found]
            self.known[key] = stored
            self.changed = True
        return [_problem(*entry) for entry in stored]

    def save(self) -> None:
        """Keep the results of the files as they are now (older versions of a file are dropped)."""
        if self.use and (self.changed or self.used != set(self.known)):
            build_cache.write_cache_file(self.path, json.dumps({k: self.known[k] for k in sorted(self.used)}))


def _problem(file: str, resource: str, field: str, message: str, policy: str) -> Problem:
    return Problem(file, resource, field, message, policy, HINTS[policy])


def _names(repo: Path, path: str, folder: str, result: RenderedKustomization) -> Iterator[Problem]:
    file = repo / path / "kustomization.yaml"
    try:
        kustomization = fast_yaml.load(file.read_text()) if file.is_file() else {}
    except yaml.YAMLError:
        return  # the build reports a kustomization that does not parse
    prefix = kustomization.get("namePrefix") if isinstance(kustomization, dict) else None
    if prefix != f"{folder}-":
        yield _problem(
            f"{path}/kustomization.yaml", f"Kustomization/models/{folder}", "namePrefix",
            f"namePrefix is {prefix!r}, not {folder + '-'!r}: the folder name names the deployment's objects "
            f"({folder}-vllm); with another prefix it renders another folder's objects", "MLOPS071",
        )  # fmt: skip
        return
    names = [mapping(d, "metadata").get("name") for d in result.documents if d.get("kind") == "Deployment"]
    if names and f"{folder}-vllm" not in names:
        yield _problem(
            path, f"Deployment/{names[0]}", "metadata.name",
            f"the model Deployment of folder {folder!r} must be named {folder}-vllm "
            "(the gateway routes to <folder>-vllm)", "MLOPS071",
        )  # fmt: skip


def _version_file(repo: Path, path: str, folder: str, bucket: str | None) -> Iterator[Problem]:
    rel = f"{path}/{VERSION_FILE_NAME}"
    file = repo / rel
    if not file.is_file():
        yield _problem(
            rel, "ConfigMap/model-version", "", "missing: every model folder has its model-version.yaml "
            "(docs/adding-a-model.md)", "MLOPS073",
        )  # fmt: skip
        return
    try:
        parsed = model_version_file.parse(file.read_text(), rel)
    except MlopsError as exc:
        yield _problem(
            rel, "ConfigMap/model-version", _field_of(str(exc)), _message_of(str(exc), rel), "MLOPS073"
        )
        return
    try:
        model_version_file.check_deployment_folder(parsed.model, folder, rel)
    except MlopsError as exc:
        yield _problem(rel, "ConfigMap/model-version", "data.model", _message_of(str(exc), rel), "MLOPS071")
    if bucket is not None:
        found = model_version_file.weights_uri_problem(parsed.weights_uri, bucket)
        if found:
            yield _problem(rel, "ConfigMap/model-version", "data.weightsUri", found, "MLOPS073")
    kustomization = repo / path / "kustomization.yaml"
    bootstrapping = kustomization.is_file() and bootstrap.is_bootstrapping(kustomization.read_text())
    found = model_version_file.weights_digest_problem(parsed.weights_digest, bootstrapping=bootstrapping)
    if found:
        key = f"data.{model_version_file.WEIGHTS_DIGEST_KEY}"
        yield _problem(rel, "ConfigMap/model-version", key, found, "MLOPS085")
    if parsed.run_id is not None:
        found = model_version_file.run_id_problem(parsed.run_id)
        if found:
            yield _problem(
                rel, "ConfigMap/model-version", f"data.{model_version_file.RUN_KEY}", found, "MLOPS073"
            )


def _message_of(error: str, rel: str) -> str:
    return error.removeprefix(f"{rel}: ")


def _field_of(error: str) -> str:
    for key in ("model", "version", "weightsUri", model_version_file.HELD_BACK_KEY):
        if f"data.{key}" in error:
            return f"data.{key}"
    return ""


def _flag_values(args: Sequence[str]) -> dict[str, str]:
    """`--flag=value` and `--flag value` of a vLLM command line; the last one wins, as in argparse."""
    values: dict[str, str] = {}
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in _PARALLEL_FLAGS:
            if eq:
                values[name] = value
            elif i + 1 < len(args):
                values[name] = args[i + 1]
    return values


def _gpus(container: dict[str, Any]) -> str | None:
    resources = mapping(container, "resources")
    # An extended resource's request defaults to its limit (core/v1 defaults).
    value = mapping(resources, "requests").get(GPU_RESOURCE, mapping(resources, "limits").get(GPU_RESOURCE))
    return None if value is None else str(value)


def _gpu_sizing(path: str, deployment: dict[str, Any]) -> Iterator[Problem]:
    name = f"Deployment/{mapping(deployment, 'metadata').get('name')}"
    try:
        args = vllm_args.deployment_args(deployment)
        container = vllm_args.vllm_container(deployment)
    except MlopsError:
        return
    flags = _flag_values(args)
    world = 1
    for flag in _PARALLEL_FLAGS:
        text = flags.get(flag, "1")
        if not text.isdigit() or int(text) < 1:
            yield _problem(
                path, name, "spec.template.spec.containers[vllm].args",
                f"{flag} is {text!r} after the kubelet expands the env: set SERVE_TENSOR_PARALLEL_SIZE "
                "to a positive integer", "MLOPS074",
            )  # fmt: skip
            return
        world *= int(text)
    gpus = _gpus(container)
    if gpus != str(world):
        yield _problem(
            path, name, f'spec.template.spec.containers[vllm].resources.requests["{GPU_RESOURCE}"]',
            f"vLLM runs {world} GPU worker(s) (--tensor-parallel-size x --pipeline-parallel-size = {world}) "
            f"but the container requests {GPU_RESOURCE}: {gpus or 'none'}", "MLOPS074",
        )  # fmt: skip


def _serving_shape(deployment: dict[str, Any]) -> tuple[list[str], str | None]:
    """The vLLM flags without the served names (they carry the version), and the GPU count."""
    args = vllm_args.deployment_args(deployment)
    kept: list[str] = []
    skipping = False
    for arg in args[1:]:
        if arg == _SERVED_NAME_FLAG:
            skipping = True
            continue
        if skipping and not arg.startswith("-"):
            continue
        skipping = False
        kept.append(arg)
    return kept, _gpus(vllm_args.vllm_container(deployment))


def _canary(
    path: str, folder: str, deployment: dict[str, Any], deployments: dict[str, dict[str, Any]]
) -> Iterator[Problem]:
    name = f"Deployment/{mapping(deployment, 'metadata').get('name')}"
    stable_folder = folder.removesuffix(CANARY_SUFFIX)
    labels = mapping(mapping(mapping(mapping(deployment, "spec"), "template"), "metadata"), "labels")
    if labels.get(TRACK_LABEL) != "canary":
        yield _problem(
            path, name, f"spec.template.metadata.labels[{TRACK_LABEL}]",
            f"the canary folder's pods are labelled {TRACK_LABEL}: {labels.get(TRACK_LABEL)!r}, so the "
            "stable Service and PDB select them too: add the component "
            "../../../../base/models/components/canary",
            "MLOPS075",
        )  # fmt: skip
    stable = deployments.get(stable_folder)
    if stable is None:
        yield _problem(
            path, name, "metadata.name",
            f"a canary of {stable_folder!r} but overlays/.../models/{stable_folder}/ renders no model server "
            "beside it: a canary runs next to its stable deployment", "MLOPS075",
        )  # fmt: skip
        return
    try:
        canary_args, canary_gpus = _serving_shape(deployment)
        stable_args, stable_gpus = _serving_shape(stable)
    except MlopsError:
        return
    if canary_args != stable_args or canary_gpus != stable_gpus:
        only_canary = [a for a in canary_args if a not in stable_args]
        only_stable = [a for a in stable_args if a not in canary_args]
        detail = f"canary has {only_canary or '-'}, stable has {only_stable or '-'}"
        if canary_gpus != stable_gpus:
            detail += f"; {GPU_RESOURCE} {canary_gpus} vs {stable_gpus}"
        yield _problem(
            path, name, "spec.template.spec.containers[vllm]",
            f"serves with other flags or GPUs than its stable deployment {stable_folder} ({detail}): copy "
            "serving-args.yaml, resources.yaml and the components from the stable folder", "MLOPS075",
        )  # fmt: skip
