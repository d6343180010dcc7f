"""MLflow conventions of the platform: experiment, dataset lineage, registered version, gate tags."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from trainer.errors import TrainerError

#: Model-version tags written by the trainer (git_commit, image_digest, dataset_hash, weights_digest)
#: and evaluate.
VERSION_TAGS = ("git_commit", "image_digest", "dataset_hash", "weights_digest")
GATE_METRIC = "eval_perplexity"
MODEL_ARTIFACT_PATH = "model"
"""The run's artifact folder of the weights: one `attempt-<id>` folder per attempt that uploads them,
its manifest beside it (`attempt-<id>.sha256sums`). mlops.conventions.registry_names spells it too."""
ATTEMPT_PREFIX = "attempt-"


def new_attempt_path() -> str:
    """Return a fresh artifact path for this attempt's weights: `model/attempt-<UTC time>-<8 hex>`.

    A restarted job (a PyTorchJob pod restarted, a workflow retry) resumes its MLflow run; had it
    uploaded into the same folder, files the new save no longer writes would stay beside the new
    ones and the weights would be a mix of two attempts. The id needs no counter read from the
    store, so two pods of one run (a node cut off while its replacement starts) never share a
    folder; the time makes a listing read in the order the attempts uploaded.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"{MODEL_ARTIFACT_PATH}/{ATTEMPT_PREFIX}{stamp}-{secrets.token_hex(4)}"


def configure(tracking_uri: str) -> None:
    """Point MLflow at ``tracking_uri``; a local SQLite file gets its folder created."""
    import mlflow

    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)


def local_artifact_root(tracking_uri: str, experiment: str) -> str | None:
    """For a SQLite store, the experiment's folder beside the database (``.mlops/mlartifacts/<name>``)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return (Path(tracking_uri[len("sqlite:///") :]).resolve().parent / "mlartifacts" / experiment).as_uri()


def experiment_id(name: str, tracking_uri: str) -> str:
    """The id of experiment ``name``, created when missing."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        experiment = client.get_experiment_by_name(name)
    except MlflowException as exc:
        raise TrainerError(f"MLflow at {tracking_uri} is not usable: {exc.message}") from None
    if experiment is not None:
        return str(experiment.experiment_id)
    try:
        return str(client.create_experiment(name, artifact_location=local_artifact_root(tracking_uri, name)))
    except MlflowException:
        # Another job created it between the lookup and the create.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)


def git_commit(explicit: str | None) -> str:
    """The commit being trained: the flag/env value, else the repository's HEAD, else 'unknown'."""
    if explicit:
        return explicit
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def log_dataset(
    conversations: Sequence[dict[str, Any]],
    held_out: Sequence[bool],
    *,
    name: str,
    source_uri: str,
    digest: str,
    synthetic: dict[str, Any] | None = None,
) -> None:
    """Log the dataset as a run input: every conversation, its split, and the content-hash digest."""
    import json

    import mlflow
    import mlflow.data
    import pandas as pd

    frame = pd.DataFrame(
        {
            "id": [str(c.get("id", i)) for i, c in enumerate(conversations)],
            "messages": [json.dumps(c["messages"], ensure_ascii=False) for c in conversations],
            "split": ["held_out" if h else "train" for h in held_out],
        }
    )
    source: Any
    if synthetic is not None:
        from mlflow.data.code_dataset_source import CodeDatasetSource

        source = CodeDatasetSource(tags={"generator": "trainer.data.synthetic_conversations", **synthetic})
    else:
        source = source_uri
    dataset = mlflow.data.from_pandas(frame, source=source, name=name, digest=digest)  # type: ignore[attr-defined]
    mlflow.log_input(dataset, context="training")


def artifact_location(artifact_uri: str) -> str:
    """A run's artifact URI as a plain location (a ``file://`` URI becomes a path)."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file":
        return parsed.path
    return artifact_uri


def registered_version(name: str, run_id: str) -> Any | None:
    """Return the version of ``name`` registered from run ``run_id``, or None when there is none yet."""
    from mlflow import MlflowClient

    found = [v for v in MlflowClient().search_model_versions(f"name = '{name}'") if v.run_id == run_id]
    return min(found, key=lambda v: int(v.version)) if found else None


def register(name: str, run_id: str, source: str, tags: dict[str, str]) -> str:
    """Register the attempt's weights at ``source`` as a new version of ``name``; return its number."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        client.create_registered_model(name, description="Registered by trainer.train")
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return str(client.create_model_version(name, source, run_id=run_id, tags=tags).version)


def point_alias(name: str, alias: str, version: str) -> None:
    """Point ``alias`` of ``name`` at ``version``."""
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(name, alias, version)


def resolve_version(name: str, version: str | None, alias: str | None) -> Any:
    """The ModelVersion for ``version`` or ``alias``; a clear error when there is none."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    if version is not None and not version.isdigit():
        # `--model-version candidate` reads as the alias: workflows may pass either.
        version, alias = None, version
    try:
        if version is not None:
            return client.get_model_version(name, version)
        return client.get_model_version_by_alias(name, alias or "candidate")
    except MlflowException as exc:
        which = f"version {version}" if version is not None else f"alias {alias or 'candidate'!r}"
        import mlflow

        raise TrainerError(
            f"registered model {name!r} has no {which} in MLflow at {mlflow.get_tracking_uri()} "
            f"({exc.message}); check --model-name and --model-version/--model-alias"
        ) from None
