"""`python -m trainer.evaluate`: the promotion gate, held-out perplexity of a registered version."""

from __future__ import annotations

import json
import math
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainer import data, distributed, storage
from trainer.distributed import World
from trainer.errors import GATE_FAILED, TrainerError, report
from trainer.options import SYNTHETIC_DATASET, evaluate_parser

PROG = "trainer.evaluate"


def _log(world: World, message: str) -> None:
    if world.is_main:
        print(f"[{PROG}] {message}", flush=True)


def _held_out(args: Any, run: Any, scratch: Path) -> tuple[list[dict[str, Any]], str]:
    """The held-out conversations: from --dataset, else from the run's dataset checked by its hash."""
    params = run.data.params
    fraction = args.eval_fraction or float(params.get("eval_fraction", "0.1"))
    uri = args.dataset or params.get("dataset_uri")
    if not uri:
        raise TrainerError(f"run {run.info.run_id} has no dataset_uri param; give --dataset")
    if uri == SYNTHETIC_DATASET:
        path = data.write_jsonl(
            data.synthetic_conversations(
                int(params.get("synthetic_conversations", "600")), int(params.get("seed", "0"))
            ),
            scratch / "synthetic.jsonl",
        )
    else:
        storage.check_file(uri, "dataset", "--dataset" if args.dataset else f"run {run.info.run_id} dataset")
        path = storage.fetch_file(uri, scratch / "dataset.jsonl")
    trained_on = run.data.tags.get("dataset_hash")
    digest = data.dataset_hash(data.content_hash(path))
    if not args.dataset and trained_on and digest != trained_on:
        raise TrainerError(
            f"dataset {uri} has hash {digest} but run {run.info.run_id} trained on {trained_on}; "
            "the data changed since training, give the held-out data with --dataset"
        )
    _train, held_out = data.split(data.load_jsonl(path, uri), fraction)
    return held_out, digest


def perplexity(
    model: Any, examples: data.ChatExamples, world: World, batch_size: int, device: Any
) -> tuple[float, int]:
    """exp(mean next-token NLL) over the assistant's tokens, each rank taking every world.size-th row.

    The tokens the training loss sees and no others, so the gate measures how well the model
    answers, not how well it recalls the system prompt and the users' questions.
    """
    import torch

    mine = torch.arange(world.rank, len(examples), world.size)
    nll = torch.zeros(2, dtype=torch.float64)
    model.eval()
    with torch.no_grad():
        for start in range(0, len(mine), batch_size):
            input_ids, labels = examples.batch(mine[start : start + batch_size])
            logits = model(input_ids=input_ids.to(device)).logits[:, :-1].float()
            targets = labels[:, 1:].to(device)
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.size(-1)),
                targets.reshape(-1),
                ignore_index=data.IGNORE_INDEX,
                reduction="sum",
            )
            nll[0] += float(loss)
            nll[1] += int((targets != data.IGNORE_INDEX).sum())
    nll = distributed.total(world, nll)
    tokens = int(nll[1].item())
    if tokens == 0:
        raise TrainerError("the held-out split has no tokens to evaluate on")
    return math.exp(float(nll[0].item()) / tokens), tokens


def run(args: Any, world: World) -> dict[str, Any]:
    """Evaluate the version and, on rank 0, record the gate; returns the result on every rank."""
    import mlflow

    from trainer import tracking

    # The version and the data are checked before torch and transformers are imported.
    tracking.configure(args.tracking_uri)
    version = tracking.resolve_version(args.model_name, args.model_version, args.model_alias)
    client = mlflow.MlflowClient()
    run_info = client.get_run(version.run_id)
    scratch = Path(args.work_dir or tempfile.mkdtemp(prefix="trainer-eval-")) / f"rank-{world.rank}"
    scratch.mkdir(parents=True, exist_ok=True)
    held_out, digest = _held_out(args, run_info, scratch)

    from trainer.train import _quiet_libraries, load_model

    _quiet_libraries()
    import torch

    device = distributed.start(world)
    model_dir = Path(mlflow.artifacts.download_artifacts(artifact_uri=version.source, dst_path=str(scratch)))
    model, tokenizer = load_model(model_dir, torch.float32)
    model.to(device)
    seq_len = args.seq_len or int(run_info.data.params.get("seq_len", "128"))
    examples = data.chat_examples(held_out, tokenizer, seq_len)
    value, tokens = perplexity(model, examples, world, args.batch_size, device)
    passed = value <= args.threshold
    _log(
        world,
        f"{args.model_name} version {version.version}: held-out perplexity {value:.4f} over {tokens} "
        f"assistant tokens, threshold {args.threshold} -> {'passed' if passed else 'FAILED'}",
    )
    if world.is_main:
        client.log_metric(version.run_id, tracking.GATE_METRIC, value)
        for key, tag in {
            "gate_metric": tracking.GATE_METRIC,
            "gate_threshold": str(args.threshold),
            "gate_value": f"{value:.6f}",
            "gate_passed": "true" if passed else "false",
        }.items():
            client.set_model_version_tag(args.model_name, str(version.version), key, tag)
    return {
        "run_id": version.run_id,
        "model_name": args.model_name,
        "model_version": str(version.version),
        "gate_metric": tracking.GATE_METRIC,
        "eval_perplexity": value,
        "threshold": args.threshold,
        "gate_passed": passed,
        "held_out_tokens": tokens,
        "dataset_hash": digest,
        "tracking_uri": args.tracking_uri,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags (a non-numeric --threshold stops here), evaluate; 0 passed, 1 gate missed, 2 error."""
    args = evaluate_parser().parse_args(argv)
    world: World | None = None
    try:
        world = distributed.from_env()
        result = run(args, world)
    except TrainerError as exc:
        return report(exc, PROG)
    finally:
        if world is not None:
            distributed.stop(world)
    if world.is_main:
        if args.result_file:
            Path(args.result_file).parent.mkdir(parents=True, exist_ok=True)
            Path(args.result_file).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(result), flush=True)
    return 0 if result["gate_passed"] else GATE_FAILED


if __name__ == "__main__":
    sys.exit(main())
