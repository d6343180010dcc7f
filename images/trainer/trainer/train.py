"""`python -m trainer.train`: DDP fine-tuning under torchrun, tracked and registered in MLflow."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer import data, distributed, storage
from trainer.distributed import World
from trainer.errors import TrainerError, report
from trainer.options import SYNTHETIC_DATASET, TINY_BASE_MODEL, train_parser
from trainer.run_tracker import RunTracker, fail_active_run

PROG = "trainer.train"


def check_inputs(args: Any) -> None:
    """Fail fast, before torch is imported or anything is logged, on inputs that cannot work."""
    if args.dataset != SYNTHETIC_DATASET:
        storage.check_file(args.dataset, "dataset", "--dataset")
        if not storage.is_s3(args.dataset):
            data.split(data.load_jsonl(Path(args.dataset), args.dataset), args.eval_fraction)
    if args.base_model != TINY_BASE_MODEL:
        storage.check_model_dir(args.base_model, "--base-model")
    if args.checkpoint_dir and storage.is_s3(args.checkpoint_dir):
        storage.Location(args.checkpoint_dir)  # validates the bucket part of the URI


def _log(world: World, message: str) -> None:
    if world.is_main:
        print(f"[{PROG}] {message}", flush=True)


def _quiet_libraries() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_dataset(
    uri: str, scratch: Path, eval_fraction: float, conversations: int, seed: int
) -> data.LoadedDataset:
    """Fetch (or generate) the dataset, hash it, and split off the held-out conversations."""
    synthetic = None
    if uri == SYNTHETIC_DATASET:
        synthetic = {"conversations": conversations, "seed": seed}
        path = data.write_jsonl(
            data.synthetic_conversations(conversations, seed), scratch / "synthetic.jsonl"
        )
    else:
        path = storage.fetch_file(uri, scratch / "dataset.jsonl")
    records = data.load_jsonl(path, uri)
    train, _held_out = data.split(records, eval_fraction)
    return data.LoadedDataset(
        path=path,
        sha256=data.content_hash(path),
        conversations=records,
        train=train,
        held_out_flags=[data.is_held_out(c, eval_fraction) for c in records],
        synthetic=synthetic,
    )


def load_model(model_dir: Path, torch_dtype: Any) -> tuple[Any, Any]:
    """A causal LM and its tokenizer from a Hugging Face directory; adds a chat template if it has none."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.tiny import CHAT_TEMPLATE

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch_dtype)
    except (OSError, ValueError) as exc:
        raise TrainerError(f"cannot load a causal LM from {model_dir}: {exc}") from None
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _tiny_base(
    world: World, dataset: data.LoadedDataset, scratch: Path, seq_len: int, seed: int
) -> tuple[Any, Any]:
    """Rank 0 trains the tokenizer and shares its files, so every rank (on any node) has the same one."""
    from transformers import AutoTokenizer

    from trainer import tiny

    files: dict[str, bytes] | None = None
    if world.is_main:
        tokenizer = tiny.train_tokenizer(
            [m["content"] for c in dataset.train for m in c["messages"]], tiny.TINY_VOCAB_SIZE
        )
        tokenizer.save_pretrained(scratch / "tiny-tokenizer")
        files = {p.name: p.read_bytes() for p in (scratch / "tiny-tokenizer").iterdir() if p.is_file()}
    files = distributed.share(world, files)
    assert files is not None
    target = scratch / "tiny-tokenizer"
    target.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (target / name).write_bytes(content)
    shared: Any = AutoTokenizer.from_pretrained(target)
    return tiny.build_model(shared, max(tiny.TINY_CONTEXT, seq_len), seed), shared


class _Sampler:
    """Global batches drawn from a per-epoch permutation; its position is (epoch, offset)."""

    def __init__(self, rows: int, global_batch: int, seed: int) -> None:
        if rows < global_batch:
            raise TrainerError(
                f"the training split has {rows} conversations, fewer than one global batch of "
                f"{global_batch} (--batch-size x ranks); use a smaller --batch-size, or more data"
            )
        self.rows = rows
        self.global_batch = global_batch
        self.seed = seed
        self._epoch: int | None = None
        self._order: Any = None

    def take(self, epoch: int, offset: int) -> tuple[Any, int, int]:
        """The next global batch's row indices and the position after it."""
        import torch

        if offset + self.global_batch > self.rows:
            epoch, offset = epoch + 1, 0
        if self._epoch != epoch:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            self._order = torch.randperm(self.rows, generator=generator)
            self._epoch = epoch
        return self._order[offset : offset + self.global_batch], epoch, offset + self.global_batch


def _schedule(warmup: int, total: int) -> Any:
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        remaining = max(total - warmup, 1)
        return max(0.1, 1.0 - 0.9 * (step - warmup) / remaining)

    return factor


@dataclass
class _Progress:
    step: int = 0
    epoch: int = 0
    offset: int = 0
    loss: float | None = None
    first_loss: float | None = None
    throughput: list[float] = field(default_factory=list)


def _params(
    args: Any, world: World, dataset: data.LoadedDataset, model: Any, examples: data.ChatExamples
) -> dict[str, Any]:
    skip = {
        "result_file",
        "work_dir",
        "tracking_uri",
        "git_commit",
        "image_digest",
        "metrics_port",
        "metrics_host",
    }
    params = {k: v for k, v in vars(args).items() if k not in skip and v is not None}
    config = model.config
    params.update(
        world_size=world.size,
        global_batch_size=args.batch_size * world.size,
        dataset_uri=args.dataset,
        dataset_sha256=dataset.sha256,
        dataset_conversations=len(dataset.conversations),
        train_conversations=len(dataset.train),
        held_out_conversations=sum(dataset.held_out_flags),
        train_sequences=len(examples),
        train_truncated=examples.truncated,
        train_assistant_tokens=int((examples.labels != data.IGNORE_INDEX).sum()),
        model_type=config.model_type,
        model_parameters=sum(p.numel() for p in model.parameters()),
        vocab_size=config.vocab_size,
        hidden_size=getattr(config, "hidden_size", None),
        num_hidden_layers=getattr(config, "num_hidden_layers", None),
    )
    return {k: v for k, v in params.items() if v is not None}


def run(args: Any, world: World) -> dict[str, Any] | None:
    """Train, checkpoint, log and register; returns the result on rank 0, None on the others."""
    _quiet_libraries()
    import torch

    from trainer.checkpoint import Checkpoints, TrainerState, set_rng_state

    scratch = Path(args.work_dir or tempfile.mkdtemp(prefix="trainer-")) / f"rank-{world.rank}"
    scratch.mkdir(parents=True, exist_ok=True)
    device = distributed.start(world)
    torch.manual_seed(args.seed + world.rank)

    dataset = load_dataset(args.dataset, scratch, args.eval_fraction, args.synthetic_conversations, args.seed)
    _log(
        world,
        f"dataset {args.dataset}: {len(dataset.conversations)} conversations, "
        f"{len(dataset.train)} for training, hash {dataset.hash}",
    )

    checkpoints = (
        Checkpoints(args.checkpoint_dir, world, scratch / "checkpoints", args.keep_checkpoints)
        if args.checkpoint_dir
        else None
    )
    resume_step = distributed.share(world, checkpoints.latest() if checkpoints and world.is_main else None)
    restored = checkpoints.load(resume_step) if checkpoints and resume_step is not None else None

    if restored is not None:
        model, tokenizer = load_model(restored.model_dir, torch.float32)
        _log(
            world, f"resumed from checkpoint {checkpoints.uri if checkpoints else ''} at step {restored.step}"
        )
    elif args.base_model == TINY_BASE_MODEL:
        model, tokenizer = _tiny_base(world, dataset, scratch, args.seq_len, args.seed)
    else:
        model, tokenizer = load_model(
            storage.fetch_dir(args.base_model, scratch / "base-model"), torch.float32
        )
    max_positions = getattr(model.config, "max_position_embeddings", args.seq_len)
    if args.seq_len > max_positions:
        raise TrainerError(f"--seq-len {args.seq_len} is longer than the model's context of {max_positions}")

    examples = data.chat_examples(dataset.train, tokenizer, args.seq_len)
    if examples.truncated:
        _log(
            world,
            f"{examples.truncated} conversations are longer than --seq-len {args.seq_len} and cut "
            f"there; {examples.left_out} of them keep no assistant token and are left out",
        )
    sampler = _Sampler(len(examples), args.batch_size * world.size, args.seed)
    model.to(device)
    model.train()
    trained: Any = model
    if world.distributed:
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(args.warmup_steps, args.max_steps))
    progress = _Progress()
    if restored is not None:
        optimizer.load_state_dict(restored.optimizer)
        scheduler.load_state_dict(restored.scheduler)
        if restored.rng is not None:
            set_rng_state(restored.rng)
        progress = _Progress(
            step=restored.state.step,
            epoch=restored.state.epoch,
            offset=restored.state.offset,
            loss=restored.state.loss,
        )

    tracker = RunTracker(args, log=lambda message: _log(world, message)) if world.is_main else None
    if tracker is not None:
        tracker.start(restored, dataset, _params(args, world, dataset, model, examples))
    if tracker is not None and args.metrics_port:
        port = tracker.metrics.serve(args.metrics_port, args.metrics_host)
        _log(world, f"serving Prometheus metrics on :{port}/metrics")

    use_bf16 = args.dtype == "bfloat16" or (args.dtype == "auto" and device.type == "cuda")
    while progress.step < args.max_steps:
        started = time.perf_counter()
        indices, progress.epoch, progress.offset = sampler.take(progress.epoch, progress.offset)
        mine = indices[world.rank * args.batch_size : (world.rank + 1) * args.batch_size]
        input_ids, labels = examples.batch(mine)
        # Loss on the assistant's tokens only: the labels hold IGNORE_INDEX everywhere else.
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss = trained(input_ids=input_ids.to(device), labels=labels.to(device)).loss
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        mean_loss = float(distributed.mean(world, loss.detach().float()).item())
        elapsed = time.perf_counter() - started
        progress.step += 1
        progress.loss = mean_loss
        if progress.first_loss is None:
            progress.first_loss = mean_loss
        # Positions the model ran on (this rank's, padding to the batch's longest included) x ranks.
        tokens_per_second = input_ids.numel() * world.size / elapsed
        progress.throughput.append(tokens_per_second)
        if not math.isfinite(mean_loss):
            raise TrainerError(f"loss is {mean_loss} at step {progress.step}; lower --learning-rate")
        if tracker is not None:
            tracker.step(progress.step, mean_loss, tokens_per_second, float(scheduler.get_last_lr()[0]))
        if checkpoints is not None and (
            progress.step % args.checkpoint_every == 0 or progress.step == args.max_steps
        ):
            state = TrainerState(
                step=progress.step,
                epoch=progress.epoch,
                offset=progress.offset,
                run_id=tracker.run_id if tracker else None,
                world_size=world.size,
                loss=mean_loss,
            )
            checkpoints.save(state, model, tokenizer, optimizer, scheduler)
            _log(world, f"checkpoint {checkpoints.uri}/step-{progress.step:08d} saved")
            if tracker is not None:
                tracker.metrics.checkpoints_saved.inc()

    result = None
    if tracker is not None:
        result = tracker.finish(model, tokenizer, scratch, progress, dataset)
    distributed.barrier(world)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, check inputs, train; exit 2 with a clear message on a user error."""
    args = train_parser().parse_args(argv)
    world: World | None = None
    try:
        world = distributed.from_env()
        check_inputs(args)
        result = run(args, world)
    except TrainerError as exc:
        fail_active_run()
        return report(exc, PROG)
    except BaseException:
        fail_active_run()
        raise
    finally:
        if world is not None:
            distributed.stop(world)
    if result is not None and args.result_file:
        Path(args.result_file).parent.mkdir(parents=True, exist_ok=True)
        Path(args.result_file).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if result is not None:
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
