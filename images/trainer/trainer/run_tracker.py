"""Rank 0's record of a training run: the MLflow run, its registered version, the Prometheus metrics.

train.py decides what to train and when a step is done; this module decides what MLflow and
Prometheus hear about it (tracking.py holds the platform's MLflow conventions it follows).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from trainer.data import LoadedDataset


class Progress(Protocol):
    """What the training loop has reached; the summary reports it."""

    step: int
    loss: float | None
    first_loss: float | None
    throughput: list[float]


class RunTracker:
    """Rank 0's MLflow run and Prometheus metrics of one training run."""

    def __init__(self, args: Any, log: Callable[[str], None]) -> None:
        from trainer import tracking
        from trainer.metrics import TrainerMetrics

        self.args = args
        self.log = log
        self.metrics = TrainerMetrics()
        self.run_id = ""
        self.resumed_from: int | None = None
        tracking.configure(args.tracking_uri)
        self.experiment_id = tracking.experiment_id(args.experiment or args.model_name, args.tracking_uri)
        self.git_commit = tracking.git_commit(args.git_commit)
        self.image_digest = args.image_digest or "unknown"

    def start(self, restored: Any, dataset: LoadedDataset, params: dict[str, Any]) -> None:
        """Open the MLflow run (the checkpoint's own run when it resumes) and record the run's inputs."""
        import mlflow
        from mlflow.exceptions import MlflowException

        from trainer import tracking

        run_id = None
        if restored is not None and restored.state.run_id:
            try:
                mlflow.MlflowClient().get_run(restored.state.run_id)
                run_id = restored.state.run_id
            except MlflowException:
                self.log(f"run {restored.state.run_id} of the checkpoint is not in MLflow; new run")
        active = mlflow.start_run(
            run_id=run_id, experiment_id=self.experiment_id, run_name=self.args.run_name
        )
        self.run_id = active.info.run_id
        if restored is not None:
            self.resumed_from = restored.step
            mlflow.set_tag("resumed_from_step", str(restored.step))
        if run_id is None:
            mlflow.log_params(params)
            mlflow.set_tags(
                {
                    "git_commit": self.git_commit,
                    "image_digest": self.image_digest,
                    "dataset_hash": dataset.hash,
                    "base_model": self.args.base_model,
                    "model_name": self.args.model_name,
                }
            )
            tracking.log_dataset(
                dataset.conversations,
                dataset.held_out_flags,
                name=dataset.name,
                source_uri=self.args.dataset,
                digest=dataset.hash,
                synthetic=dataset.synthetic,
            )
        self.log(
            f"MLflow run {self.run_id} in experiment {self.experiment_id} at {self.args.tracking_uri}",
        )

    def step(self, step: int, loss: float, tokens_per_second: float, learning_rate: float) -> None:
        """Report one optimizer step to Prometheus, and every `--log-every` steps to MLflow."""
        import mlflow

        self.metrics.step(step, loss, tokens_per_second)
        if step % self.args.log_every == 0 or step == self.args.max_steps:
            mlflow.log_metrics(
                {"loss": loss, "tokens_per_second": tokens_per_second, "learning_rate": learning_rate},
                step=step,
            )
            self.log(
                f"step {step}/{self.args.max_steps} loss {loss:.4f} tokens/s {tokens_per_second:.0f}",
            )

    def finish(
        self, model: Any, tokenizer: Any, scratch: Path, progress: Progress, dataset: LoadedDataset
    ) -> dict[str, Any]:
        """Log the model, register it under the alias, end the run, and return the run's summary."""
        import mlflow

        from trainer import tracking, weights_manifest

        steady = progress.throughput[1:] or progress.throughput
        mean_tps = sum(steady) / len(steady) if steady else 0.0
        mlflow.log_metrics({"final_loss": progress.loss or 0.0, "mean_tokens_per_second": mean_tps})
        registered = tracking.registered_version(self.args.model_name, self.run_id)
        if registered is not None:
            # A restart after an earlier attempt registered (the pod was killed while exiting): that
            # version names its attempt's files and their digest, which stay exactly as they are.
            version, source = str(registered.version), registered.source
            weights_digest = dict(registered.tags or {}).get(weights_manifest.DIGEST_TAG, "")
            self.log(f"run {self.run_id} is registered already as version {version} ({source}); no upload")
        else:
            source, weights_digest = self._upload(model, tokenizer, scratch)
            version = tracking.register(
                self.args.model_name,
                self.run_id,
                source,
                {
                    "git_commit": self.git_commit,
                    "image_digest": self.image_digest,
                    "dataset_hash": dataset.hash,
                    weights_manifest.DIGEST_TAG: weights_digest,
                },
            )
        tracking.point_alias(self.args.model_name, self.args.alias, version)
        mlflow.set_tag("registered_model_version", version)
        mlflow.end_run()
        self.metrics.stop()
        self.log(f"registered {self.args.model_name} version {version} (alias {self.args.alias})")
        return {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "model_name": self.args.model_name,
            "model_version": version,
            "model_alias": self.args.alias,
            "model_uri": f"models:/{self.args.model_name}/{version}",
            "artifact_uri": source,
            "weights_digest": weights_digest,
            "final_step": progress.step,
            "final_loss": progress.loss,
            "first_loss": progress.first_loss,
            "mean_tokens_per_second": mean_tps,
            "resumed_from_step": self.resumed_from,
            "dataset_hash": dataset.hash,
            "tracking_uri": self.args.tracking_uri,
            "git_commit": self.git_commit,
            "image_digest": self.image_digest,
        }

    def _upload(self, model: Any, tokenizer: Any, scratch: Path) -> tuple[str, str]:
        """Save the model, upload it to this attempt's own folder; return (its location, weights digest)."""
        import mlflow

        from trainer import tracking, weights_manifest

        attempt = tracking.new_attempt_path()
        out = scratch / "model"
        shutil.rmtree(out, ignore_errors=True)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        # Digest the files this process wrote, before they leave it (trainer.weights_manifest).
        manifest = weights_manifest.manifest(out)
        manifest_file = scratch / f"{Path(attempt).name}{weights_manifest.MANIFEST_SUFFIX}"
        manifest_file.write_text(manifest, encoding="utf-8")
        mlflow.log_artifacts(str(out), artifact_path=attempt)
        mlflow.log_artifact(str(manifest_file), artifact_path=str(Path(attempt).parent))
        self.log(f"weights uploaded to {attempt} of run {self.run_id}")
        return tracking.artifact_location(mlflow.get_artifact_uri(attempt)), weights_manifest.digest(manifest)


def fail_active_run() -> None:
    """Mark rank 0's MLflow run FAILED; a restarted job resumes it and sets it RUNNING again."""
    if "mlflow" in sys.modules:
        import mlflow

        if mlflow.active_run() is not None:
            mlflow.end_run(status="FAILED")
