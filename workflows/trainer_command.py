"""The trainer's command lines, defined once for the PyTorchJob and for `mlops workflows run-local`.

Both the compiled WorkflowTemplate (called with Argo expressions as values) and the local run
(called with real values) build their command lines here, so the flags cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping

TRAIN_MODULE = "trainer.train"
EVALUATE_MODULE = "trainer.evaluate"
METRICS_PORT = "9090"
"""Rank 0 serves `trainer_*` metrics here; base/monitoring's PodMonitor scrapes the port named `metrics`."""


def train_args(
    values: Mapping[str, str],
    *,
    run_name: str,
    checkpoint_dir: str,
    result_file: str,
    metrics_port: str = METRICS_PORT,
) -> list[str]:
    """Return the arguments of `python -m trainer.train` for the workflow parameters in `values`.

    `checkpoint_dir` is one per run: a restarted or retried job resumes from its newest checkpoint.
    """
    return [
        "--model-name", values["model-name"],
        "--base-model", values["base-model"],
        "--dataset", values["dataset"],
        "--learning-rate", values["learning-rate"],
        "--max-steps", values["max-steps"],
        "--batch-size", values["batch-size"],
        "--seq-len", values["seq-len"],
        "--checkpoint-every", values["checkpoint-every"],
        "--checkpoint-dir", checkpoint_dir,
        "--run-name", run_name,
        "--result-file", result_file,
        "--metrics-port", metrics_port,
    ]  # fmt: skip


def torchrun(nproc_per_node: str, module: str, args: list[str], *, standalone: bool = False) -> list[str]:
    """Return a `torchrun` command line; `standalone` for one machine (free rendezvous port)."""
    head = ["torchrun", *(["--standalone"] if standalone else []), f"--nproc_per_node={nproc_per_node}"]
    return [*head, "-m", module, *args]


def evaluate_args(values: Mapping[str, str], *, model_version: str) -> list[str]:
    """Return the arguments of `python -m trainer.evaluate`: the gate for one registered version.

    The held-out split comes from the data the version's run trained on (checked by its hash).
    """
    return [
        "--model-name", values["model-name"],
        "--model-version", model_version,
        "--threshold", values["eval-threshold"],
    ]  # fmt: skip


def promote_args(values: Mapping[str, str], *, model_version: str, workflow: str) -> list[str]:
    """Return the flags of `mlops promote` for the workflow's promotion.

    The git-bot image's entrypoint runs `mlops promote --remote origin --branch main <these>
    --automated` in a fresh clone; `run-local` runs the same in a clone of its remote.
    """
    return [
        "--env", values["target-env"],
        "--model", values["model-name"],
        "--version", model_version,
        "--workflow", workflow,
    ]  # fmt: skip
