"""The MLflow model registry as promote and rollback see it: versions, their gate, environment aliases.

The tracking URI comes from `MLFLOW_TRACKING_URI`; `MLFLOW_ARTIFACTS_DESTINATION` maps the
`mlflow-artifacts:/` URIs of a server that proxies artifacts to the S3 path they live at.
MLflow's client retries an unreachable server for minutes by default; unless the caller
has set them, this module lowers the retries and the timeout so "registry unreachable" is
reported in seconds.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from mlops.conventions import write_inputs
from mlops.conventions.errors import MlopsError
from mlops.conventions.registry_names import (
    GATE_METRIC,
    GATE_METRIC_TAG,
    GATE_PASSED_TAG,
    GATE_THRESHOLD_TAG,
    GATE_VALUE_TAG,
    WEIGHTS_DIGEST,
    WEIGHTS_DIGEST_TAG,
)

ARTIFACTS_DESTINATION_ENV = "MLFLOW_ARTIFACTS_DESTINATION"
"""The tracking server's `--artifacts-destination`, for versions whose source is `mlflow-artifacts:/...`."""


class RegistryError(MlopsError):
    """The registry is unreachable, or the model or version is not in it."""


class RegistryUnavailableError(RegistryError):
    """No registry to ask: `MLFLOW_TRACKING_URI` is unset, or the server is unreachable or failing.

    Rollback tells this apart from "the registry answered no": going back is a git change,
    so it goes ahead without the registry and says what it could not check.
    """


@dataclass
class ModelVersion:
    """A registered model version with what promote needs from it."""

    model: str
    version: str
    run_id: str | None
    source: str
    weights_uri: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)


def tracking_uri() -> str:
    """Return `MLFLOW_TRACKING_URI`; raise when unset (./mlruns would be a silent surprise) or schemeless."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        raise RegistryUnavailableError(
            "MLFLOW_TRACKING_URI is not set: point it at the MLflow server (http://host:5000)"
        )
    return write_inputs.check_tracking_uri(uri)


def _weights_uri(client: Any, source: str) -> str:
    """Return where the version's HF-format weights are: a concrete URI, never `runs:/` or `models:/`."""
    if source.startswith("runs:/"):
        run_part, _, sub = source[len("runs:/") :].partition("/")
        base = client.get_run(run_part).info.artifact_uri.rstrip("/")
        source = f"{base}/{sub}" if sub else base
    elif source.startswith("models:/") and "/" not in source[len("models:/") :].strip("/"):
        # MLflow 3 registers a logged model as `models:/<model id>`: its files lie at the logged
        # model's own location, not under the run's artifacts (the trainer's versions name the
        # attempt's folder, `model/attempt-<id>`, which no run id alone could tell).
        source = _logged_model_location(client, source)
    if source.startswith("mlflow-artifacts:"):
        source = _served_artifact_location(source)
    return source


def _logged_model_location(client: Any, source: str) -> str:
    """Return where the logged model `models:/<model id>` stores its files."""
    from mlflow.exceptions import MlflowException

    model_id = source[len("models:/") :].strip("/")
    try:
        return str(client.get_logged_model(model_id).artifact_location)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise
        raise RegistryError(
            f"the version's source {source} names logged model {model_id!r}, which MLflow does not have: "
            "register the model with the platform's trainer, whose versions name their weights' folder"
        ) from exc


def _served_artifact_location(uri: str) -> str:
    """Map `mlflow-artifacts:/<path>` to where the server stores it (`$MLFLOW_ARTIFACTS_DESTINATION/<path>`).

    A server run with `--serve-artifacts` hands out `mlflow-artifacts:` URIs that only it can
    resolve; the model server's init container copies from S3 directly, so the version file
    must name the bucket path.
    """
    destination = os.environ.get(ARTIFACTS_DESTINATION_ENV, "").strip().rstrip("/")
    if not destination:
        raise RegistryError(
            f"the weights are at {uri}, a location only the MLflow server resolves: set "
            f"{ARTIFACTS_DESTINATION_ENV} to that server's --artifacts-destination "
            "(e.g. s3://mlops-dev-mlflow-artifacts) so the version file names the S3 path"
        )
    return f"{destination}/{urlparse(uri).path.lstrip('/')}"


def _is_missing(exc: Any) -> bool:
    """Whether MLflow answered "no such model, version or alias" (some say INVALID_PARAMETER_VALUE)."""
    code = str(getattr(exc, "error_code", ""))
    return "RESOURCE_DOES_NOT_EXIST" in code or (
        "INVALID_PARAMETER_VALUE" in code and "not found" in str(getattr(exc, "message", "")).lower()
    )


class Registry:
    """A thin wrapper over `MlflowClient` that turns its failures into one-line errors."""

    def __init__(self, uri: str | None = None) -> None:
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        from mlflow import MlflowClient

        self.uri = write_inputs.check_tracking_uri(uri) if uri else tracking_uri()
        self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        """Call the client; re-raise "not found" answers, turn every other failure into one line."""
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args)
        except MlflowException as exc:
            if _is_missing(exc):
                raise
            first = str(exc.message).splitlines()[0][:300]
            if exc.error_code in ("INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE") or "Max retries" in first:
                raise RegistryUnavailableError(
                    f"MLflow registry at {self.uri} is unreachable or failing ({what}): {first}: "
                    "check MLFLOW_TRACKING_URI and the server"
                ) from exc
            raise RegistryError(f"MLflow registry at {self.uri}: {what} failed: {first}") from exc
        except OSError as exc:
            raise RegistryUnavailableError(
                f"MLflow registry at {self.uri} is unreachable ({what}): {exc}: check MLFLOW_TRACKING_URI"
            ) from exc

    def _missing(self, exc: Exception) -> bool:
        from mlflow.exceptions import MlflowException

        return isinstance(exc, MlflowException) and _is_missing(exc)

    def model_version(self, model: str, version: str) -> ModelVersion:
        """Return `model` version `version`; raise naming what is missing."""
        mv = self._get_version(model, version)
        source = mv.source or ""
        weights = self._call("resolve artifact location", _weights_uri, self._client, source)
        return ModelVersion(
            model=model,
            version=str(mv.version),
            run_id=mv.run_id or None,
            source=source,
            weights_uri=weights,
            tags=dict(mv.tags or {}),
            aliases=list(getattr(mv, "aliases", []) or []),
        )

    def run_of(self, model: str, version: str) -> str | None:
        """Return the MLflow run that produced `model` version `version` (None when it names none)."""
        return self._get_version(model, version).run_id or None

    def weights_digest(self, model: str, version: str) -> str | None:
        """Return the trainer's `weights_digest` tag of the version when well-formed, else None."""
        digest = dict(self._get_version(model, version).tags or {}).get(WEIGHTS_DIGEST_TAG)
        return digest if digest and WEIGHTS_DIGEST.fullmatch(digest) else None

    def require_version(self, model: str, version: str) -> None:
        """Raise naming what is missing unless `model` version `version` is registered."""
        self._get_version(model, version)

    def _get_version(self, model: str, version: str) -> Any:
        """Return MLflow's record of `model` version `version`; raise naming what is missing."""
        try:
            mv = self._call("get model version", self._client.get_model_version, model, version)
        except RegistryError:
            raise
        except Exception as exc:
            if not self._missing(exc):
                raise
            try:
                self._call("get registered model", self._client.get_registered_model, model)
            except RegistryError:
                raise
            except Exception as inner:
                if self._missing(inner):
                    raise RegistryError(
                        f"registered model {model!r} does not exist in the MLflow registry at {self.uri}: "
                        "train and register it first"
                    ) from inner
                raise
            latest = self.versions(model)
            raise RegistryError(
                f"version {version} of registered model {model!r} does not exist in the MLflow registry "
                f"at {self.uri} (versions: {', '.join(latest) or 'none'})"
            ) from exc
        return mv

    def versions(self, model: str) -> list[str]:
        """Return the model's version numbers, ascending."""
        found = self._call("search model versions", self._client.search_model_versions, f"name='{model}'")
        return sorted((str(v.version) for v in found), key=int)

    def alias_version(self, model: str, alias: str) -> str | None:
        """Return the version `alias` points at, or None when the alias is not set."""
        try:
            mv = self._call("get alias", self._client.get_model_version_by_alias, model, alias)
        except RegistryError:
            raise
        except Exception as exc:
            if self._missing(exc):
                return None
            raise
        return str(mv.version)

    def run_metric(self, run_id: str, key: str) -> float | None:
        """Return the latest value of metric `key` of run `run_id`, or None when the run never logged it."""
        run = self._call("get run", self._client.get_run, run_id)
        value = run.data.metrics.get(key)
        return None if value is None else float(value)

    def set_alias(self, model: str, alias: str, version: str) -> None:
        """Point `alias` at `version`."""
        self._call("set alias", self._client.set_registered_model_alias, model, alias, version)


@dataclass
class AliasSync:
    """What `point_alias` found and did: the alias, the version it names now and the one before."""

    model: str
    alias: str
    version: str
    previous: str | None

    @property
    def changed(self) -> bool:
        """Whether the alias was moved (False: it already named the version)."""
        return self.previous != self.version


def point_alias(registry: Registry, model: str, alias: str, version: str) -> AliasSync:
    """Point `alias` of `model` at `version`, unless it already names it; return what was done.

    The version must be registered: a version file naming one the registry does not have
    (a typo in a hand edit, the wrong registry) raises and leaves every alias as it was.
    """
    registry.require_version(model, version)
    previous = registry.alias_version(model, alias)
    if previous != version:
        try:
            registry.set_alias(model, alias, version)
        except RegistryError:
            # Two promotes of one version write the same alias row at once; the loser's insert
            # fails on the store's unique constraint (`UNIQUE constraint failed` in SQLite). The
            # alias already naming the version is the outcome asked for, not a failure.
            if registry.alias_version(model, alias) != version:
                raise
    return AliasSync(model=model, alias=alias, version=version, previous=previous)


def require_gate_passed(mv: ModelVersion, uri: str) -> None:
    """Raise unless the version's evaluation gate passed (`gate_passed == "true"`)."""
    passed = mv.tags.get(GATE_PASSED_TAG)
    if passed == "true":
        return
    if passed is None:
        raise RegistryError(
            f"version {mv.version} of {mv.model!r} has no {GATE_PASSED_TAG} tag in the MLflow registry at "
            f"{uri}: run the evaluation step on it before promoting"
        )
    metric = mv.tags.get(GATE_METRIC_TAG, "gate metric")
    raise RegistryError(
        f"version {mv.version} of {mv.model!r} did not pass its evaluation gate "
        f"({GATE_PASSED_TAG}={passed!r}, "
        f"{metric} {mv.tags.get(GATE_VALUE_TAG, '?')} against threshold "
        f"{mv.tags.get(GATE_THRESHOLD_TAG, '?')}): "
        "promote a version whose gate passed"
    )


def _gate_number(mv: ModelVersion, tag: str) -> float | None:
    try:
        value = float(mv.tags.get(tag, ""))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def require_gate_recorded(registry: Registry, mv: ModelVersion) -> None:
    """Raise unless the gate verdict follows from what the evaluation step recorded on the version's run.

    `gate_passed` is a tag: promote re-derives it instead of trusting it. The metric must be
    the platform's gate metric, its value at or under the threshold, and the version's run must
    have logged that same value as metric `eval_perplexity`. The registry lets only the trainer
    identity write runs and version tags (images/mlflow/registry_access), so a verdict another
    client set, or one whose numbers say "failed", is refused.
    """
    where = f"version {mv.version} of {mv.model!r} in the MLflow registry at {registry.uri}"
    metric = mv.tags.get(GATE_METRIC_TAG)
    if metric != GATE_METRIC:
        raise RegistryError(
            f"{where}: tag {GATE_METRIC_TAG}={metric!r}, expected {GATE_METRIC!r}: "
            "the gate verdict was not written by the evaluation step; run it on this version"
        )
    value, threshold = _gate_number(mv, GATE_VALUE_TAG), _gate_number(mv, GATE_THRESHOLD_TAG)
    if value is None or threshold is None:
        raise RegistryError(
            f"{where}: tags {GATE_VALUE_TAG}={mv.tags.get(GATE_VALUE_TAG)!r} and "
            f"{GATE_THRESHOLD_TAG}={mv.tags.get(GATE_THRESHOLD_TAG)!r} must be numbers: "
            "run the evaluation step on this version"
        )
    if value > threshold:
        raise RegistryError(
            f"{where}: {GATE_PASSED_TAG} says passed, but {GATE_METRIC} {value} is above threshold "
            f"{threshold}: the verdict does not follow from the recorded numbers; promote a version "
            "whose gate passed"
        )
    logged = registry.run_metric(mv.run_id, GATE_METRIC) if mv.run_id else None
    if logged is None or not math.isclose(logged, value, rel_tol=1e-6, abs_tol=1e-6):
        raise RegistryError(
            f"{where}: tag {GATE_VALUE_TAG}={value} but run {mv.run_id or '(none)'} logged "
            f"{GATE_METRIC}={logged}: the gate tags were not recorded by the evaluation step; run it on "
            "this version"
        )


def require_weights_in_artifact_store(mv: ModelVersion) -> None:
    """Raise unless the version's weights lie in the registry's own artifact store.

    A version's source is whatever its registering client wrote: `s3://someone-elses-bucket/x`
    registers as well as the trainer's `mlflow-artifacts:/...`. vLLM copies whatever
    `weightsUri` names, so promote only writes a location under the artifact destination of
    the environment's MLflow (`MLFLOW_ARTIFACTS_DESTINATION`, which the workflow sets to the
    environment's `mlops-<env>-mlflow-artifacts` bucket). A local path (a laptop's SQLite
    registry, `mlops demo`) names nothing a cluster could fetch and is left to the local run.
    """
    weights = mv.weights_uri
    if urlparse(weights).scheme in ("", "file"):
        return
    destination = os.environ.get(ARTIFACTS_DESTINATION_ENV, "").strip().rstrip("/")
    where = f"version {mv.version} of {mv.model!r} has its weights at {weights}"
    if not destination:
        raise RegistryError(
            f"{where}: set {ARTIFACTS_DESTINATION_ENV} to the environment's MLflow artifact destination "
            "(e.g. s3://mlops-dev-mlflow-artifacts) so promote can check the weights are the registry's own"
        )
    if not weights.startswith(destination + "/"):
        raise RegistryError(
            f"{where}, outside the registry's artifact store {destination}: promote only versions whose "
            "weights the environment's MLflow stored (register the model through the trainer)"
        )


def require_weights_digest(mv: ModelVersion, uri: str) -> str:
    """Return the version's weights digest (tag `weights_digest`); raise when absent or malformed.

    The trainer writes the tag when it registers the version, from the files it saved
    (trainer.weights_manifest); the registry lets only the trainer identity write version tags
    (images/mlflow/registry_access). A bucket writer cannot change it, so the model server's
    fetch, which checks the downloaded files against it, refuses weights swapped in the bucket.
    """
    digest = mv.tags.get(WEIGHTS_DIGEST_TAG)
    where = f"version {mv.version} of {mv.model!r} in the MLflow registry at {uri}"
    if digest is None:
        raise RegistryError(
            f"{where} has no {WEIGHTS_DIGEST_TAG} tag: the model server could not verify its weights; "
            "register the model with the platform's trainer (python -m trainer.train), which records it"
        )
    if not WEIGHTS_DIGEST.fullmatch(digest):
        raise RegistryError(
            f"{where}: tag {WEIGHTS_DIGEST_TAG}={digest[:80]!r} is not sha256:<64 lowercase hex>: "
            "the trainer did not write it; register the model again with the platform's trainer"
        )
    return digest
