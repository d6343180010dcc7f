"""The parameters a person fills in when starting `train-and-promote` from the Argo UI.

One definition serves the compiled WorkflowTemplate (names, defaults, descriptions, enums)
and `mlops workflows run-local` (the same defaults), so the two cannot disagree.

Every parameter has a pattern: an enum's values, or a regular expression that the whole value
must match. The workflow's first step (`check-parameters`) and `run-local` refuse a value that
does not match, before anything is built or created. The patterns admit no quote, blank or
line break, and the PyTorchJob reads values only through `toJson` (train_and_promote.py), so
even a value that escaped the check could not add a field to it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlops.conventions import write_inputs
from mlops.conventions.deployment import CANARY_SUFFIX, VERSION_FILE_NAME
from mlops.conventions.paths import ENVS

from .environments import BASE, Environment

REPO_ROOT = Path(__file__).resolve().parents[1]

_S3_URI = r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9._=+/-]*)?"
_WORD_PATH = r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*"
"""A Hugging Face Hub id (`org/name`) or a word the trainer knows (`tiny`, `synthetic`)."""
_LOCAL_PATH = r"/[A-Za-z0-9._/-]+"
"""A path on the machine (`mlops workflows run-local` trains from local files)."""
_NUMBER = r"[0-9]{1,12}(\.[0-9]{1,12})?([eE][-+]?[0-9]{1,3})?"
_COUNT = r"[1-9][0-9]{0,6}"


@dataclass(frozen=True)
class WorkflowParameter:
    """One workflow argument: what the Argo UI shows in the submit form.

    Attributes:
        name: the parameter name (`{{workflow.parameters.<name>}}`).
        default: the value the form starts with.
        description: one line telling a person what the value means.
        enum: the allowed values (the UI shows a drop-down), or None for free text.
        pattern: for free text, the regular expression the whole value must match.
    """

    name: str
    default: str
    description: str
    enum: tuple[str, ...] | None = None
    pattern: str | None = None

    def __post_init__(self) -> None:
        if (self.enum is None) == (self.pattern is None):
            raise ValueError(f"parameter {self.name}: give either an enum or a pattern")
        if not re.fullmatch(self.regex, self.default):
            raise ValueError(f"parameter {self.name}: default {self.default!r} does not match {self.regex}")

    @property
    def regex(self) -> str:
        """The regular expression a value must match in full (an enum's values as alternatives)."""
        if self.enum is not None:
            return "(" + "|".join(re.escape(value) for value in self.enum) + ")"
        assert self.pattern is not None
        return self.pattern

    @property
    def ref(self) -> str:
        """The Argo expression that reads this parameter anywhere in the workflow."""
        return "{{workflow.parameters." + self.name + "}}"


def model_names(repo: Path = REPO_ROOT, envs: tuple[str, ...] = ENVS) -> tuple[str, ...]:
    """Return the models deployed in `envs` (`overlays/<env>/models/<model>/model-version.yaml`), sorted.

    A `<model>-canary/` folder is a second deployment of `<model>`, never a model to train,
    and a folder without a version file deploys nothing: neither is listed.

    Raises:
        ValueError: when none of `envs` has a model folder yet.
    """
    names = {
        path.parent.name
        for env in envs
        for path in (repo / "overlays" / env / "models").glob(f"*/{VERSION_FILE_NAME}")
        if not path.parent.name.endswith(CANARY_SUFFIX)
    }
    if not names:
        raise ValueError(
            f"no model folder under {repo}/overlays/{{{','.join(envs)}}}/models/: add one before compiling"
        )
    return tuple(sorted(names))


def parameters(env: Environment, repo: Path = REPO_ROOT) -> tuple[WorkflowParameter, ...]:
    """Return the workflow's parameters in the order the Argo UI lists them, with `env`'s defaults.

    The model drop-down of an environment's form lists that environment's models; the base
    (placeholder environment) lists every environment's, so the first step's check accepts any.
    """
    models = model_names(repo, (env.name,) if env.name in ENVS else ENVS)
    model = "support-chat" if "support-chat" in models else models[0]
    return (
        WorkflowParameter(
            "model-name", model, "Model to train: one of the model folders under overlays/.", models
        ),
        WorkflowParameter(
            "base-model",
            f"s3://{env.bucket('model-weights')}/base-models/{model}/",
            "Base model to fine-tune: an s3:// prefix holding Hugging Face weights, or a Hub id.",
            pattern=f"{_S3_URI}|{_WORD_PATH}|{_LOCAL_PATH}",
        ),
        WorkflowParameter(
            "dataset",
            f"s3://{env.bucket('datasets')}/{model}/train.jsonl",
            "Training data: an s3:// URI (versioned bucket); its content hash is logged to MLflow.",
            pattern=f"{_S3_URI}|{_WORD_PATH}|{_LOCAL_PATH}",
        ),
        WorkflowParameter(
            "learning-rate", "2e-5", "Peak learning rate (AdamW, linear decay).", pattern=_NUMBER
        ),
        WorkflowParameter("max-steps", "2000", "Optimizer steps to train for.", pattern=_COUNT),
        WorkflowParameter("batch-size", "8", "Sequences per GPU per step.", pattern=_COUNT),
        WorkflowParameter(
            "seq-len",
            "1024",
            "Most tokens of one training conversation; a longer one is cut.",
            pattern=_COUNT,
        ),
        WorkflowParameter(
            "checkpoint-every",
            "200",
            "Save a checkpoint every N steps; a restarted job resumes from the newest one.",
            pattern=_COUNT,
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
            "Gate: the highest held-out perplexity (over the assistant's tokens) a new version may have "
            "to be promoted.",
            pattern=_NUMBER,
        ),
        WorkflowParameter(
            "git-revision",
            "main",
            "Branch, tag or commit of this repository to build the trainer from and train with.",
            pattern=write_inputs.BRANCH_PATTERN,
        ),
    )


def patterns(repo: Path = REPO_ROOT) -> dict[str, str]:
    """Return `{name: regex}` for every parameter: what the first step checks each value against."""
    return {p.name: p.regex for p in parameters(BASE, repo)}


def defaults(env: Environment, repo: Path = REPO_ROOT) -> dict[str, str]:
    """Return `{name: default}` for every parameter: what a run gets when nobody edits the form."""
    return {p.name: p.default for p in parameters(env, repo)}


def refs(repo: Path = REPO_ROOT) -> dict[str, str]:
    """Return `{name: "{{workflow.parameters.<name>}}"}`: how a template reads each parameter."""
    return {p.name: p.ref for p in parameters(BASE, repo)}
