"""Command-line flags of `trainer.train` and `trainer.evaluate`: the contract workflows rely on.

This module imports only the standard library so that a bad flag fails in well under a second,
before torch, transformers or MLflow are imported.
"""

from __future__ import annotations

import argparse
import math
import os

DEFAULT_MODEL_NAME = "support-chat"
DEFAULT_ALIAS = "candidate"
#: `--base-model` value that builds a random-initialised small Llama and trains its tokenizer.
TINY_BASE_MODEL = "tiny"
#: `--dataset` value that generates the synthetic customer-support chat dataset.
SYNTHETIC_DATASET = "synthetic"
#: Tracking store used when neither `--tracking-uri` nor MLFLOW_TRACKING_URI is set.
LOCAL_TRACKING_URI = "sqlite:///.mlops/mlflow.db"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number (the highest held-out perplexity that passes the gate), got {text!r}"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"must be a finite perplexity above 0 (perplexity is at least 1), got {text!r}"
        )
    return value


def _add_tracking_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI") or LOCAL_TRACKING_URI,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else %(default)s with artifacts "
        "in .mlops/mlartifacts)",
    )
    parser.add_argument(
        "--model-name",
        default=DEFAULT_MODEL_NAME,
        help="registered model name in the MLflow registry (default: %(default)s)",
    )
    parser.add_argument(
        "--result-file",
        default=None,
        help="write a JSON summary here (for Argo output parameters)",
    )


def train_parser() -> argparse.ArgumentParser:
    """Flags of ``python -m trainer.train``."""
    parser = argparse.ArgumentParser(
        prog="trainer.train",
        description="Fine-tune a causal LM under torchrun (DDP), track it in MLflow, register a "
        "model version with alias 'candidate'. Resumes from the newest complete checkpoint.",
    )
    _add_tracking_flags(parser)
    data = parser.add_argument_group("model and data")
    data.add_argument(
        "--base-model",
        default=TINY_BASE_MODEL,
        help="Hugging Face model directory, local path or s3:// prefix; 'tiny' builds a random "
        "small Llama with a tokenizer trained on the dataset (default: %(default)s)",
    )
    data.add_argument(
        "--dataset",
        default=SYNTHETIC_DATASET,
        help="chat dataset as JSONL ({'messages': [{'role', 'content'}...]} per line), local path "
        "or s3:// URI; 'synthetic' generates the customer-support set (default: %(default)s)",
    )
    data.add_argument(
        "--synthetic-conversations",
        type=_positive_int,
        default=600,
        help="conversations generated for --dataset synthetic (default: %(default)s)",
    )
    data.add_argument(
        "--eval-fraction",
        type=_fraction,
        default=0.1,
        help="share of conversations held out for evaluation, chosen by content hash (default: %(default)s)",
    )
    data.add_argument(
        "--seq-len",
        type=_positive_int,
        default=128,
        help="most tokens of one conversation; a longer one is cut there (default: %(default)s)",
    )
    run = parser.add_argument_group("optimisation")
    run.add_argument(
        "--max-steps", type=_positive_int, default=200, help="optimizer steps (default: %(default)s)"
    )
    run.add_argument(
        "--batch-size",
        type=_positive_int,
        default=8,
        help="conversations per rank per step (default: %(default)s)",
    )
    run.add_argument(
        "--learning-rate", type=_positive_float, default=1e-3, help="peak AdamW LR (default: %(default)s)"
    )
    run.add_argument(
        "--warmup-steps",
        type=_non_negative_int,
        default=10,
        help="linear warm-up steps, then linear decay to 10%% (default: %(default)s)",
    )
    run.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay (default: 0)")
    run.add_argument(
        "--grad-clip", type=float, default=1.0, help="max gradient norm, 0 = off (default: %(default)s)"
    )
    run.add_argument("--seed", type=int, default=0, help="seed for data, init and sampling (default: 0)")
    run.add_argument(
        "--dtype",
        choices=["auto", "float32", "bfloat16"],
        default="auto",
        help="autocast dtype: auto = bfloat16 on CUDA, float32 on CPU (default: %(default)s)",
    )
    ckpt = parser.add_argument_group("checkpoints")
    ckpt.add_argument(
        "--checkpoint-dir",
        default=os.environ.get("TRAINER_CHECKPOINT_DIR") or None,
        help="local path or s3:// prefix, one per job: resumed from on restart "
        "(default: $TRAINER_CHECKPOINT_DIR; unset = no checkpoints)",
    )
    ckpt.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=50,
        help="save a checkpoint every N steps and at the last step (default: %(default)s)",
    )
    ckpt.add_argument(
        "--keep-checkpoints",
        type=_positive_int,
        default=2,
        help="complete checkpoints kept, older ones are deleted (default: %(default)s)",
    )
    track = parser.add_argument_group("tracking")
    track.add_argument("--experiment", default=None, help="MLflow experiment name (default: the model name)")
    track.add_argument("--run-name", default=None, help="MLflow run name (default: MLflow's)")
    track.add_argument(
        "--alias",
        default=DEFAULT_ALIAS,
        help="registry alias set on the new version (default: %(default)s)",
    )
    track.add_argument(
        "--git-commit",
        default=os.environ.get("GIT_COMMIT") or None,
        help="tag git_commit (default: $GIT_COMMIT, else `git rev-parse HEAD`, else 'unknown')",
    )
    track.add_argument(
        "--image-digest",
        default=os.environ.get("IMAGE_DIGEST") or None,
        help="tag image_digest (default: $IMAGE_DIGEST, else 'unknown')",
    )
    track.add_argument(
        "--metrics-port",
        type=_non_negative_int,
        default=int(os.environ.get("TRAINER_METRICS_PORT", "0") or 0),
        help="Prometheus /metrics port on rank 0, 0 = off (default: $TRAINER_METRICS_PORT or 0)",
    )
    track.add_argument(
        "--metrics-host",
        default="0.0.0.0",
        help="address the metrics server binds (default: %(default)s, for the pod's Prometheus scrape)",
    )
    track.add_argument(
        "--log-every", type=_positive_int, default=1, help="log loss every N steps (default: 1)"
    )
    track.add_argument(
        "--work-dir",
        default=None,
        help="local scratch for downloads and the saved model (default: a temporary directory)",
    )
    return parser


def evaluate_parser() -> argparse.ArgumentParser:
    """Flags of ``python -m trainer.evaluate``."""
    parser = argparse.ArgumentParser(
        prog="trainer.evaluate",
        description="The promotion gate: held-out perplexity of a registered model version, logged "
        "to its run and written as model-version tags; exits 1 when above --threshold.",
    )
    _add_tracking_flags(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--model-version",
        default=None,
        help="registered model version number (a non-number is read as an alias)",
    )
    which.add_argument(
        "--model-alias",
        default=None,
        help=f"registry alias to evaluate (default when no version is given: {DEFAULT_ALIAS})",
    )
    parser.add_argument(
        "--threshold",
        type=_threshold,
        required=True,
        help="the gate: highest held-out perplexity that passes",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        help="dataset to take the held-out split from (default: the one the run trained on, "
        "checked against its content hash)",
    )
    parser.add_argument(
        "--eval-fraction",
        type=_fraction,
        default=None,
        help="held-out share (default: the run's eval_fraction param)",
    )
    parser.add_argument(
        "--seq-len",
        type=_positive_int,
        default=None,
        help="most tokens of one conversation (default: the run's)",
    )
    parser.add_argument(
        "--batch-size", type=_positive_int, default=8, help="conversations per forward pass (default: 8)"
    )
    parser.add_argument(
        "--work-dir", default=None, help="local scratch for the downloaded model (default: temporary)"
    )
    return parser
