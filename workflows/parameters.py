"""The parameters a person fills in when starting `train-and-promote` from the Argo UI.

One definition serves the compiled WorkflowTemplate (names, defaults, descriptions, enums)
and `mlops workflows run-local` (the same defaults), so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from environments import BASE, Environment
from mlops.paths import ENVS

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class WorkflowParameter:
    """One workflow argument: what the Argo UI shows in the submit form.

    Attributes:
        name: the parameter name (`{{workflow.parameters.<name>}}`).
        default: the value the form starts with.
        description: one line telling a person what the value means.
        enum: the allowed values (the UI shows a drop-down), or None for free text.
    """

    name: str
    default: str
    description: str
    enum: tuple[str, ...] | None = None

    @property
    def ref(self) -> str:
        """The Argo expression that reads this parameter anywhere in the workflow."""
        return "{{workflow.parameters." + self.name + "}}"


def model_names(repo: Path = REPO_ROOT) -> tuple[str, ...]:
    """Return every model that has an overlay folder (`overlays/<env>/models/<model>/`), sorted.

    Raises:
        ValueError: when no environment has a model folder yet.
    """
    names = {
        path.name for env in ENVS for path in (repo / "overlays" / env / "models").glob("*") if path.is_dir()
    }
    if not names:
        raise ValueError(f"no model folder under {repo}/overlays/<env>/models/: add one before compiling")
    return tuple(sorted(names))


def parameters(env: Environment, repo: Path = REPO_ROOT) -> tuple[WorkflowParameter, ...]:
    """Return the workflow's parameters in the order the Argo UI lists them, with `env`'s defaults."""
    models = model_names(repo)
    model = "support-chat" if "support-chat" in models else models[0]
    return (
        WorkflowParameter(
            "model-name", model, "Model to train: one of the model folders under overlays/.", models
        ),
        WorkflowParameter(
            "base-model",
            f"s3://{env.bucket('model-weights')}/base-models/{model}/",
            "Base model to fine-tune: an s3:// prefix holding Hugging Face weights, or a Hub id.",
        ),
        WorkflowParameter(
            "dataset",
            f"s3://{env.bucket('datasets')}/{model}/train.jsonl",
            "Training data: an s3:// URI (versioned bucket); its content hash is logged to MLflow.",
        ),
        WorkflowParameter("learning-rate", "2e-5", "Peak learning rate (AdamW, linear decay)."),
        WorkflowParameter("max-steps", "2000", "Optimizer steps to train for."),
        WorkflowParameter("batch-size", "8", "Sequences per GPU per step."),
        WorkflowParameter("seq-len", "1024", "Tokens per training sequence."),
        WorkflowParameter(
            "checkpoint-every",
            "200",
            "Save a checkpoint every N steps; a restarted job resumes from the newest one.",
        ),
        WorkflowParameter(
            "num-workers",
            "1",
            "Worker pods besides the master (the job runs on 1 + N GPU nodes).",
            ("0", "1", "2", "3", "7"),
        ),
        WorkflowParameter(
            "gpus-per-worker", "1", "GPUs per pod (torchrun processes per pod).", ("1", "2", "4", "8")
        ),
        WorkflowParameter(
            "target-env",
            env.default_target_env,
            "Environment to promote to when the gate passes (prod opens a pull request).",
            ("dev", "prod"),
        ),
        WorkflowParameter(
            "eval-threshold",
            "30",
            "Gate: the highest held-out perplexity a new version may have to be promoted.",
        ),
        WorkflowParameter(
            "git-revision",
            "main",
            "Branch, tag or commit of this repository to build the trainer from and train with.",
        ),
    )


def defaults(env: Environment, repo: Path = REPO_ROOT) -> dict[str, str]:
    """Return `{name: default}` for every parameter: what a run gets when nobody edits the form."""
    return {p.name: p.default for p in parameters(env, repo)}


def refs(repo: Path = REPO_ROOT) -> dict[str, str]:
    """Return `{name: "{{workflow.parameters.<name>}}"}`: how a template reads each parameter."""
    return {p.name: p.ref for p in parameters(BASE, repo)}
